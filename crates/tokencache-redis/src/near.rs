//! The near cache ([`RedisCacheBuilder::near_cache`](crate::RedisCacheBuilder::near_cache)):
//! an in-process L1 of decoded values in front of Redis, kept consistent by Redis's
//! server-assisted client-side caching.
//!
//! # How it stays consistent
//!
//! - **Tracking.** A dedicated RESP3 connection per server (every master of a cluster)
//!   runs `CLIENT TRACKING ON BCAST PREFIX tokencache:{namespace}:v:`: the server pushes an
//!   `invalidate` message for every write to an entry of the namespace, by any client.
//!   The message is handled in the connection's reader, as it arrives: the key leaves
//!   the L1.
//! - **No stale populate.** Every invalidation or local write of a key increments the
//!   generation counter of its stripe (one of 64, by hash); every flush increments a
//!   flush count. A miss takes both before its `GET` is sent, and the value read enters
//!   the L1 only if neither changed and tracking is up (checked under the lock the
//!   invalidations take). An invalidation that arrives before the populate thus refuses
//!   it; one that arrives after removes it. (The server also reports the cache's own
//!   writes: the echo of a write may refuse the populate of a get that follows it; the
//!   next get populates.)
//! - **Lost tracking, empty L1.** When a tracking connection drops, the L1 is flushed at
//!   once and serves nothing until every tracking connection is back, which flushes it
//!   once more. A connection that goes silent without closing (a network partition) is
//!   caught by the health `PING` every 250 ms (250 ms timeout), and a change of the
//!   cluster's masters by the same check: the same happens then.
//! - **Own writes.** Every write of the cache (`set`, `update` fenced or not, `remove`,
//!   `remove_many`, `remove_prefix`, `clear_namespace`) takes its keys out of the L1 when
//!   it returns, whatever its outcome: the next `get` reads Redis.
//! - **Expiry.** An L1 entry ends when its Redis TTL would, by the same policy.
//!
//! Only `get` is served from the L1; updates, listings and scripts always read Redis.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value};
use tokencache_core::{Cacheable, Error, Result};
use tokio::sync::Notify;

use crate::conn::{map_connect_error, ConnectOptions};

/// How often the tracking connections are checked (a `PING` each; on a cluster, the
/// masters too).
const HEALTH_EVERY: Duration = Duration::from_millis(250);
/// The longest a health `PING` may take (or the command timeout, if shorter): a tracking
/// connection that went silent without closing is given up within about half a second.
const PING_TIMEOUT: Duration = Duration::from_millis(250);
/// The longest wait between two attempts to restore tracking.
const MAX_RETRY: Duration = Duration::from_secs(2);
/// What an L1 entry weighs beside its key and stored bytes.
pub(crate) const ENTRY_OVERHEAD: u64 = 64;

/// What the near cache of a [`RedisCache`](crate::RedisCache) has done, from
/// [`RedisCache::near_cache_stats`](crate::RedisCache::near_cache_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheStats {
    /// `get`s answered from the L1 (no Redis round trip).
    pub hits: u64,
    /// `get`s that read Redis.
    pub misses: u64,
    /// Keys the server's invalidation messages named, plus full flushes it asked for.
    pub invalidations: u64,
    /// Times tracking was established (1 after connect; each restore adds 1).
    pub subscriptions: u64,
    /// Whether tracking is up now (the L1 serves only then).
    pub tracking: bool,
    /// Entries in the L1.
    pub entries: u64,
    /// Their weight in bytes (key, stored value and a fixed overhead each), at most the
    /// bound given to [`near_cache`](crate::RedisCacheBuilder::near_cache).
    pub weighted_bytes: u64,
    /// That bound.
    pub max_bytes: u64,
}

#[derive(Clone)]
struct Slot {
    value: Cacheable,
    /// The flush count when it was stored: a later flush makes it invisible at once.
    flushes: u64,
    expires: Option<Instant>,
    /// Key length, stored length and [`ENTRY_OVERHEAD`].
    weight: u32,
}

/// How many generation counters the keys are spread over (by hash).
const STRIPES: usize = 64;

struct State {
    /// Incremented by every invalidation of a key of the stripe.
    stripes: [u64; STRIPES],
    up: bool,
}

fn stripe(key: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
    (hash % STRIPES as u64) as usize
}

/// What the cache, the tracking connections' readers and the supervisor share.
struct Shared {
    l1: moka::sync::Cache<String, Slot>,
    max_bytes: u64,
    /// The Redis key prefix of the namespace's entries (the tracked prefix).
    entry_prefix: String,
    state: Mutex<State>,
    /// Incremented (under the state lock) by every flush, also by tracking going up or
    /// down; read without it by hits.
    flushes: AtomicU64,
    /// The subscription round: a disconnection of an older round's connection is old news.
    round: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    subscriptions: AtomicU64,
}

impl Shared {
    /// An empty L1, tracking down.
    fn new(max_bytes: u64, entry_prefix: &str) -> Arc<Shared> {
        let l1 = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            // Plain LRU: a value just read is always admitted.
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .weigher(|_: &String, v: &Slot| v.weight)
            .build();
        Arc::new(Shared {
            l1,
            max_bytes,
            entry_prefix: entry_prefix.to_owned(),
            state: Mutex::new(State {
                stripes: [0; STRIPES],
                up: false,
            }),
            flushes: AtomicU64::new(0),
            round: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Empties the L1 and sets whether tracking is up.
    fn set_up(&self, up: bool) {
        let mut state = self.state();
        state.up = up;
        self.flushes.fetch_add(1, Ordering::AcqRel);
        self.l1.invalidate_all();
    }

    fn invalidate(&self, keys: &[&str]) {
        let mut state = self.state();
        for key in keys {
            state.stripes[stripe(key)] += 1;
            self.l1.invalidate(*key);
        }
    }

    /// Empties the L1.
    fn flush(&self) {
        let _state = self.state();
        self.flushes.fetch_add(1, Ordering::AcqRel);
        self.l1.invalidate_all();
    }

    /// An invalidation message (or a disconnection) from a tracking connection of `round`.
    fn on_push(&self, round: u64, info: PushInfo, wake: &Notify) {
        match info.kind {
            PushKind::Invalidate => {
                let mut keys = Vec::new();
                let mut flush = false;
                collect_keys(&info.data, &self.entry_prefix, &mut keys, &mut flush);
                self.invalidations
                    .fetch_add(keys.len() as u64 + u64::from(flush), Ordering::Relaxed);
                if flush {
                    self.flush();
                } else {
                    self.invalidate(&keys);
                }
            }
            PushKind::Disconnection if round == self.round.load(Ordering::Acquire) => {
                tracing::debug!("near cache: a tracking connection dropped; L1 flushed");
                self.set_up(false);
                wake.notify_one();
            }
            _ => {}
        }
    }
}

/// The cache keys an invalidation message names; `flush` when it names none in
/// particular (a `FLUSHDB`, or a key this cache cannot map).
fn collect_keys<'a>(data: &'a [Value], prefix: &str, keys: &mut Vec<&'a str>, flush: &mut bool) {
    for v in data {
        match v {
            Value::Nil => *flush = true,
            Value::Array(items) | Value::Set(items) => collect_keys(items, prefix, keys, flush),
            Value::BulkString(bytes) => match std::str::from_utf8(bytes) {
                Ok(k) => match k.strip_prefix(prefix) {
                    Some(key) => keys.push(key),
                    None => *flush = true,
                },
                Err(_) => *flush = true,
            },
            Value::SimpleString(k) => match k.strip_prefix(prefix) {
                Some(key) => keys.push(key),
                None => *flush = true,
            },
            _ => *flush = true,
        }
    }
}

/// Where the tracking connections go.
#[derive(Clone)]
pub(crate) enum Targets {
    Standalone {
        url: String,
    },
    Cluster {
        /// The cache's own cluster connection, to find the masters.
        conn: ClusterConnection,
        /// A node's URL: scheme and credentials for every master.
        url: String,
    },
}

/// The tracking side: how to (re)open the tracking connections.
struct Tracker {
    targets: Targets,
    opts: ConnectOptions,
    connect_timeout: Duration,
    command_timeout: Duration,
    name: String,
    wake: Arc<Notify>,
}

/// The open tracking connections of one round.
struct Round {
    conns: Vec<MultiplexedConnection>,
    masters: Vec<(String, u16)>,
}

/// The near cache of one [`RedisCache`](crate::RedisCache).
pub(crate) struct NearCache {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    closed: Arc<AtomicBool>,
}

impl fmt::Debug for NearCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NearCache")
            .field("max_bytes", &self.shared.max_bytes)
            .field("entries", &self.shared.l1.entry_count())
            .field("tracking", &self.shared.state().up)
            .finish()
    }
}

impl Drop for NearCache {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// A ticket of a miss: the generations of its key when its read started (none while
/// tracking is down).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket(Option<(u64, u64)>);

impl NearCache {
    /// Opens the tracking connections (errors are the connect's) and starts the task
    /// that keeps them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        targets: Targets,
        opts: ConnectOptions,
        namespace: &str,
        entry_prefix: &str,
        max_bytes: u64,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<NearCache> {
        let shared = Shared::new(max_bytes, entry_prefix);
        let wake = Arc::new(Notify::new());
        let tracker = Tracker {
            targets,
            opts,
            connect_timeout,
            command_timeout,
            name: client_name(namespace),
            wake: wake.clone(),
        };
        let round = tracker.subscribe(&shared).await?;
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(supervise(
            Arc::downgrade(&shared),
            tracker,
            round,
            closed.clone(),
        ));
        Ok(NearCache {
            shared,
            wake,
            closed,
        })
    }

    /// The value of `key` if the L1 holds it (and may serve it).
    pub(crate) fn get(&self, key: &str) -> Option<Cacheable> {
        let s = &self.shared;
        if let Some(slot) = s.l1.get(key) {
            if slot.flushes == s.flushes.load(Ordering::Acquire)
                && slot.expires.is_none_or(|end| Instant::now() < end)
            {
                s.hits.fetch_add(1, Ordering::Relaxed);
                return Some(slot.value);
            }
        }
        None
    }

    /// Starts a miss of `key`: to be taken before the `GET` is sent.
    pub(crate) fn ticket(&self, key: &str) -> Ticket {
        self.shared.misses.fetch_add(1, Ordering::Relaxed);
        let i = stripe(key);
        let state = self.shared.state();
        let flushes = self.shared.flushes.load(Ordering::Acquire);
        Ticket(state.up.then_some((flushes, state.stripes[i])))
    }

    /// Stores what a miss read, unless anything was invalidated since its ticket (or
    /// tracking is down). `ttl_ms`: as the write scripts take it (`0` none, `-1` expired).
    pub(crate) fn populate(
        &self,
        ticket: Ticket,
        key: &str,
        value: &Cacheable,
        stored_len: usize,
        ttl_ms: i64,
    ) {
        let Some((flushes, generation)) = ticket.0 else {
            return;
        };
        let expires = match ttl_ms {
            0 => None,
            ms if ms < 0 => return,
            ms => Some(Instant::now() + Duration::from_millis(ms.unsigned_abs())),
        };
        let s = &self.shared;
        let weight = key.len() as u64 + stored_len as u64 + ENTRY_OVERHEAD;
        let Ok(weight) = u32::try_from(weight) else {
            return;
        };
        if u64::from(weight) > s.max_bytes {
            return;
        }
        let i = stripe(key);
        let state = s.state();
        if state.up
            && s.flushes.load(Ordering::Acquire) == flushes
            && state.stripes[i] == generation
        {
            s.l1.insert(
                key.to_owned(),
                Slot {
                    value: value.clone(),
                    flushes,
                    expires,
                    weight,
                },
            );
        }
    }

    /// Takes `keys` out of the L1 (this cache wrote them).
    pub(crate) fn invalidate<S: AsRef<str>>(&self, keys: &[S]) {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.shared.invalidate(&keys);
    }

    /// Empties the L1 (this cache removed many keys).
    pub(crate) fn flush(&self) {
        self.shared.flush();
    }

    pub(crate) fn stats(&self) -> NearCacheStats {
        let s = &self.shared;
        s.l1.run_pending_tasks();
        NearCacheStats {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            invalidations: s.invalidations.load(Ordering::Relaxed),
            subscriptions: s.subscriptions.load(Ordering::Relaxed),
            tracking: s.state().up,
            entries: s.l1.entry_count(),
            weighted_bytes: s.l1.weighted_size(),
            max_bytes: s.max_bytes,
        }
    }
}

/// The `CLIENT SETNAME` of the tracking connections: printable, no spaces.
fn client_name(namespace: &str) -> String {
    let ns: String = namespace
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!("tokencache-near:{ns}")
}

impl Tracker {
    /// Opens every tracking connection of a new round, then marks tracking up (which
    /// flushes the L1).
    async fn subscribe(&self, shared: &Arc<Shared>) -> Result<Round> {
        let round = shared.round.fetch_add(1, Ordering::AcqRel) + 1;
        let (url, masters) = match &self.targets {
            Targets::Standalone { url } => (url, Vec::new()),
            Targets::Cluster { conn, url } => (url, self.masters(conn.clone()).await?),
        };
        let nodes: Vec<Option<(&str, u16)>> = if masters.is_empty() {
            vec![None]
        } else {
            masters
                .iter()
                .map(|(h, p)| Some((h.as_str(), *p)))
                .collect()
        };
        let mut conns = Vec::with_capacity(nodes.len());
        for node in nodes {
            let client = self.opts.resp3_client(url, node)?;
            conns.push(self.track(client, shared, round).await?);
        }
        shared.subscriptions.fetch_add(1, Ordering::Relaxed);
        shared.set_up(true);
        tracing::debug!(
            connections = conns.len(),
            "near cache: tracking up, L1 starts empty"
        );
        Ok(Round { conns, masters })
    }

    /// One tracking connection: RESP3, invalidations handled as they arrive.
    async fn track(
        &self,
        client: Client,
        shared: &Arc<Shared>,
        round: u64,
    ) -> Result<MultiplexedConnection> {
        let weak = Arc::downgrade(shared);
        let wake = self.wake.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_push_sender(move |info: PushInfo| {
                if let Some(shared) = weak.upgrade() {
                    shared.on_push(round, info, &wake);
                }
                Ok::<(), std::convert::Infallible>(())
            });
        let open = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(&self.name)
                .query_async::<()>(&mut conn)
                .await?;
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("BCAST")
                .arg("PREFIX")
                .arg(&shared.entry_prefix)
                .query_async::<()>(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(conn)
        };
        match tokio::time::timeout(self.connect_timeout, open).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(map_connect_error(e)),
            Err(_) => {
                Err(Error::unavailable("redis near cache: tracking connect timed out").temporary())
            }
        }
    }

    /// The cluster's masters (host, port), sorted.
    async fn masters(&self, mut conn: ClusterConnection) -> Result<Vec<(String, u16)>> {
        let slots: Value =
            crate::cache::run_bounded(self.command_timeout, "cluster slots", async {
                redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut masters = parse_masters(&slots);
        masters.sort();
        masters.dedup();
        if masters.is_empty() {
            return Err(
                Error::unavailable("redis near cache: the cluster lists no master").temporary(),
            );
        }
        Ok(masters)
    }

    /// Whether the round's connections still answer (and, on a cluster, the masters
    /// are the same).
    async fn healthy(&self, round: &mut Round) -> bool {
        for conn in &mut round.conns {
            let ping = tokio::time::timeout(
                self.command_timeout.min(PING_TIMEOUT),
                redis::cmd("PING").query_async::<Value>(conn),
            )
            .await;
            if !matches!(ping, Ok(Ok(_))) {
                tracing::debug!("near cache: a tracking connection does not answer");
                return false;
            }
        }
        if let Targets::Cluster { conn, .. } = &self.targets {
            // The cache's connection being down does not make the L1 wrong: keep it.
            if let Ok(masters) = self.masters(conn.clone()).await {
                if masters != round.masters {
                    tracing::debug!("near cache: the cluster's masters changed");
                    return false;
                }
            }
        }
        true
    }
}

/// The (host, port) of each slot range's master in a `CLUSTER SLOTS` answer.
fn parse_masters(slots: &Value) -> Vec<(String, u16)> {
    let Value::Array(ranges) = slots else {
        return Vec::new();
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let mut out = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let Some(Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let (Some(host), Some(Value::Int(port))) = (master.first().and_then(text), master.get(1))
        else {
            continue;
        };
        if let (false, Ok(port)) = (host.is_empty(), u16::try_from(*port)) {
            out.push((host, port));
        }
    }
    out
}

/// Keeps tracking up while the cache lives: health checks, and after a loss, new
/// connections (the L1 empty meanwhile).
async fn supervise(weak: Weak<Shared>, tracker: Tracker, round: Round, closed: Arc<AtomicBool>) {
    let mut round = Some(round);
    let mut retry = Duration::from_millis(20);
    loop {
        if closed.load(Ordering::Acquire) {
            return;
        }
        match round.as_mut() {
            Some(current) => {
                let woken = tokio::time::timeout(HEALTH_EVERY, tracker.wake.notified()).await;
                if closed.load(Ordering::Acquire) {
                    return;
                }
                let Some(shared) = weak.upgrade() else { return };
                let up = shared.state().up;
                if woken.is_err() && up && tracker.healthy(current).await {
                    continue;
                }
                if woken.is_ok() && up {
                    continue;
                }
                shared.set_up(false);
                round = None;
            }
            None => {
                let Some(shared) = weak.upgrade() else { return };
                match tracker.subscribe(&shared).await {
                    Ok(r) => {
                        round = Some(r);
                        retry = Duration::from_millis(20);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "near cache: tracking not restored yet");
                        drop(shared);
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(MAX_RETRY);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_core::KeyManifestEntry;

    const PREFIX: &str = "tokencache:{t}:v:";

    fn value(tag: &str) -> Cacheable {
        Cacheable::Manifest(KeyManifestEntry {
            keys: vec![tag.to_owned()],
        })
    }

    /// A near cache without connections, tracking up.
    fn near() -> NearCache {
        let shared = Shared::new(1 << 20, PREFIX);
        shared.set_up(true);
        NearCache {
            shared,
            wake: Arc::new(Notify::new()),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn disconnect() -> PushInfo {
        PushInfo {
            kind: PushKind::Disconnection,
            data: Vec::new(),
        }
    }

    fn invalidate_push(keys: &[&str]) -> PushInfo {
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(
                keys.iter()
                    .map(|k| Value::BulkString(format!("{PREFIX}{k}").into_bytes()))
                    .collect(),
            )],
        }
    }

    #[test]
    fn a_read_populates_unless_an_invalidation_came_meanwhile() {
        let near = near();
        let t = near.ticket("a");
        near.populate(t, "a", &value("1"), 10, 0);
        assert_eq!(near.get("a"), Some(value("1")));

        // The server's invalidation arrives between the GET and the populate.
        let t = near.ticket("b");
        near.shared.on_push(1, invalidate_push(&["b"]), &near.wake);
        near.populate(t, "b", &value("old"), 10, 0);
        assert_eq!(near.get("b"), None);
        // An invalidation after the populate removes it.
        let t = near.ticket("b");
        near.populate(t, "b", &value("2"), 10, 0);
        assert_eq!(near.get("b"), Some(value("2")));
        near.shared.on_push(1, invalidate_push(&["b"]), &near.wake);
        assert_eq!(near.get("b"), None);
        assert_eq!(near.get("a"), Some(value("1")), "other keys stay");

        // A local write, a flush.
        let t = near.ticket("c");
        near.invalidate(&["c"]);
        near.populate(t, "c", &value("old"), 10, 0);
        assert_eq!(near.get("c"), None);
        let t = near.ticket("c");
        near.flush();
        near.populate(t, "c", &value("old"), 10, 0);
        assert_eq!(near.get("c"), None);
        assert_eq!(near.get("a"), None, "flushed");
    }

    #[test]
    fn lost_tracking_empties_the_l1_and_refuses_reads_until_back() {
        let near = near();
        near.shared.round.store(7, Ordering::Release);
        let t = near.ticket("a");
        near.populate(t, "a", &value("1"), 10, 0);
        let during = near.ticket("b");
        // A disconnection of an older round is old news.
        near.shared.on_push(6, disconnect(), &near.wake);
        assert_eq!(near.get("a"), Some(value("1")));
        near.shared.on_push(7, disconnect(), &near.wake);
        assert_eq!(near.get("a"), None);
        assert!(!near.stats().tracking);
        // Reads while down are not kept, nor reads begun before.
        let down = near.ticket("c");
        near.populate(down, "c", &value("1"), 10, 0);
        near.shared.set_up(true);
        near.populate(during, "b", &value("1"), 10, 0);
        assert_eq!((near.get("b"), near.get("c")), (None, None));
        assert_eq!(near.stats().entries, 0);
    }

    #[test]
    fn a_flush_message_or_a_foreign_key_empties_the_l1() {
        for data in [
            vec![Value::Nil],
            vec![Value::Array(vec![Value::BulkString(b"other:key".to_vec())])],
            vec![Value::Array(vec![Value::BulkString(vec![0xff, 0xfe])])],
        ] {
            let near = near();
            let t = near.ticket("a");
            near.populate(t, "a", &value("1"), 10, 0);
            let info = PushInfo {
                kind: PushKind::Invalidate,
                data,
            };
            near.shared.on_push(1, info, &near.wake);
            assert_eq!(near.get("a"), None);
        }
    }

    #[test]
    fn expired_and_oversized_values_are_not_kept() {
        let near = near();
        let t = near.ticket("gone");
        near.populate(t, "gone", &value("1"), 10, -1);
        let t = near.ticket("short");
        near.populate(t, "short", &value("1"), 10, 1);
        let t = near.ticket("big");
        near.populate(t, "big", &value("1"), 2 << 20, 0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            (near.get("gone"), near.get("short"), near.get("big")),
            (None, None, None)
        );
    }

    #[test]
    fn cluster_slots_give_each_master_once() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |a: i64, b: i64, master: Value, replica: Value| {
            Value::Array(vec![Value::Int(a), Value::Int(b), master, replica])
        };
        let slots = Value::Array(vec![
            range(0, 100, node("10.0.0.1", 7000), node("10.0.0.9", 7009)),
            range(101, 200, node("10.0.0.2", 7001), node("10.0.0.8", 7008)),
            range(201, 16383, node("10.0.0.1", 7000), node("10.0.0.7", 7007)),
        ]);
        let mut masters = parse_masters(&slots);
        masters.sort();
        masters.dedup();
        assert_eq!(
            masters,
            [("10.0.0.1".to_owned(), 7000), ("10.0.0.2".to_owned(), 7001)]
        );
    }

    #[test]
    fn debug_shows_no_value() {
        let near = near();
        let t = near.ticket("a");
        near.populate(t, "a", &value("SECRET-VALUE"), 10, 0);
        let debug = format!("{near:?}");
        assert!(debug.contains("entries"), "{debug}");
        assert!(!debug.contains("SECRET-VALUE"), "{debug}");
    }
}
