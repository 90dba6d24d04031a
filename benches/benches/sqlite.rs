//! The shared workloads on the SQLite backend: `CacheManager` over an encrypted
//! `SqliteCache` (WAL, `synchronous=FULL`), each beside raw rusqlite doing the same work on
//! a table of the same shape in the same file, with the same settings, in the same run:
//!
//! - `sqlite/exact_hit`: `raw_rusqlite_read` of a blob as large as the encrypted value, on
//!   the calling thread and in `spawn_blocking`, and `raw_rusqlite_read_decrypt` (the
//!   read on the calling thread, then the decryption and decoding of the value: the floor
//!   of an encrypted read), vs `manager`;
//! - `sqlite/set`: `raw_rusqlite_upsert` of fresh bytes of that size (as encryption makes
//!   fresh bytes every time), on the calling thread and in `spawn_blocking`, vs `cache`
//!   (`SqliteCache::set` of the entry) and `manager`;
//! - `sqlite/subset_N`, `sqlite/miss_N`, `sqlite/clear_N`: `manager`;
//! - `sqlite/keys_with_prefix`: one client's 10 keys among 1,000 and among 100,000 rows;
//! - `sqlite/subset_vs_exact`: through `CacheManager::get`, `exact/N` and `subset/N` with
//!   N = 10, 1,000, 100,000 other encrypted entries of the client (written straight into
//!   the table: 100,000 `set`s would take 100,000 fsyncs); the same two through a wrapper
//!   that hides `Cache::best_with_prefix` (`exact_unranked/N`, `subset_unranked/N`: the
//!   lookup that lists the keys, then reads and decrypts every candidate, as before that
//!   method); beside raw rusqlite floors on the calling thread: `raw_exact/N` (read,
//!   decrypt, decode), `raw_subset/N` (the three statements the listing lookup asks for,
//!   one transaction each), `raw_subset_one_transaction/N` and `raw_subset_one_statement/N`
//!   (one range read that answers both steps of the lookup);
//! - `sqlite/set_interleaved`: `raw_rusqlite_upsert` of fresh bytes on the calling thread
//!   and in `spawn_blocking`, `cache` (`SqliteCache::set`) and `manager`
//!   (`CacheManager::set`), `synchronous=FULL`;
//! - `sqlite/writers_full`: `tasks/1` and `tasks/16`, tasks each setting keys of their own
//!   through one `SqliteCache` (`synchronous=FULL`) at the same time; times per `set`.
//!
//! The last three groups are *interleaved*: every iteration of each of their functions
//! runs every operation of the group back to back and times its own, so that all see
//! the same file and the same machine (on a shared machine disk and CPU speeds drift by
//! several times within seconds); each prints the median of its paired ratios to the
//! group's first operation (`interleaved <name>: ... x <first>`).
//!
//! `cargo bench -p tokencache-benches --bench sqlite`
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rusqlite::{params, Connection, OptionalExtension};
use tokencache_benches::workloads::{
    self, entry, exact_key, frozen_clock, other_audience, subset_key, Op, Prepared, Workload,
    CLIENT_ID, OTHER_SCOPE, SUBSET_SIZES, TARGET_AUDIENCE, TARGET_SCOPE,
};
use tokencache_benches::{bench_workloads, criterion, runtime, set_value, Group};
use tokencache_core::{
    async_trait, Cache, CacheKey, CacheManager, Cacheable, Clock, Fence, GetOptions, ManualClock,
    RefreshLock, UpdateFn, Updated, ValueCodec, WrappedCacheEntry,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

fn codec() -> Arc<EncryptedCodec> {
    Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [7; 32])),
        "bench",
    ))
}

fn raw_connection(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open");
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .expect("WAL");
    c.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    c.pragma_update(None, "secure_delete", "ON")
        .expect("secure_delete");
    c.execute(
        "CREATE TABLE IF NOT EXISTS raw_entries (
            key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL,
            expires_at INTEGER, has_refresh_token INTEGER NOT NULL DEFAULT 0)",
        [],
    )
    .expect("table");
    c
}

fn raw_read(c: &Connection, key: &str) -> Option<Vec<u8>> {
    c.prepare_cached("SELECT value FROM raw_entries WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .expect("raw read")
}

fn raw_upsert(c: &Connection, key: &str, value: &[u8]) {
    c.prepare_cached(
        "INSERT INTO raw_entries (key, value, expires_at, has_refresh_token)
         VALUES (?1, ?2, 4000000000, 1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value,
             expires_at = excluded.expires_at, has_refresh_token = excluded.has_refresh_token",
    )
    .and_then(|mut s| s.execute(params![key, value]))
    .expect("raw upsert");
}

/// `len` fresh pseudo-random bytes (xorshift64): SQLite skips rewriting pages whose bytes
/// did not change, and encryption never writes the same bytes twice.
fn fresh_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The raw baselines of `exact_hit` and `set`, in the cache's own file.
fn baseline(
    rt: &tokio::runtime::Runtime,
    g: &mut Group<'_>,
    p: &Prepared,
    cache: &Arc<SqliteCache>,
) {
    if !matches!(p.workload().op, Op::ExactHit | Op::Set) {
        return; // (the key of the other workloads holds no value to copy)
    }
    let key = p.key().to_key();
    let value = rt
        .block_on(cache.get(&key))
        .expect("get")
        .expect("the target is stored");
    let blob = cache.codec().encode(&key, &value).expect("encode");
    let conn = raw_connection(cache.path());
    raw_upsert(&conn, &key, &blob);
    let shared = Arc::new(Mutex::new(raw_connection(cache.path())));
    match p.workload().op {
        Op::ExactHit => {
            g.bench_function("raw_rusqlite_read", |b| {
                b.iter(|| raw_read(&conn, &key).expect("stored"))
            });
            let codec = cache.codec().clone();
            g.bench_function("raw_rusqlite_read_decrypt", |b| {
                b.iter(|| {
                    let bytes = raw_read(&conn, &key).expect("stored");
                    codec.decode(&key, &bytes).expect("decrypts")
                })
            });
            g.bench_function("raw_rusqlite_read_spawn_blocking", |b| {
                b.to_async(rt).iter(|| {
                    let (c, key) = (shared.clone(), key.clone());
                    async move {
                        tokio::task::spawn_blocking(move || {
                            raw_read(&c.lock().expect("connection"), &key).expect("stored")
                        })
                        .await
                        .expect("task")
                    }
                })
            });
        }
        Op::Set => {
            let n = AtomicU64::new(0);
            g.bench_function("raw_rusqlite_upsert", |b| {
                b.iter(|| {
                    let bytes = fresh_bytes(n.fetch_add(1, Ordering::Relaxed), blob.len());
                    raw_upsert(&conn, &key, &bytes)
                })
            });
            let clock = frozen_clock();
            g.bench_function("cache", |b| {
                b.to_async(rt).iter(|| {
                    let value = set_value(&*clock, n.fetch_add(1, Ordering::Relaxed));
                    let (cache, key) = (cache.clone(), &key);
                    async move { cache.set(key, value).await.expect("set") }
                })
            });
            g.bench_function("raw_rusqlite_upsert_spawn_blocking", |b| {
                b.to_async(rt).iter(|| {
                    let bytes = fresh_bytes(n.fetch_add(1, Ordering::Relaxed), blob.len());
                    let (c, key) = (shared.clone(), key.clone());
                    async move {
                        tokio::task::spawn_blocking(move || {
                            raw_upsert(&c.lock().expect("connection"), &key, &bytes)
                        })
                        .await
                        .expect("task")
                    }
                })
            });
        }
        Op::Subset | Op::Miss | Op::Clear | Op::AllKeys => {}
    }
}

fn workloads(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let n = AtomicU64::new(0);
    bench_workloads(
        c,
        &rt,
        "sqlite",
        &Workload::standard_set(&SUBSET_SIZES),
        |clock| {
            let path = dir
                .path()
                .join(format!("w{}.db", n.fetch_add(1, Ordering::Relaxed)));
            let open = SqliteCache::builder(path)
                .codec(codec())
                .clock(clock)
                .build();
            Arc::new(rt.block_on(open).expect("open"))
        },
        |g, p, cache| baseline(&rt, g, p, cache),
    );
}

/// A cache holding `total` rows, 10 per client, written straight into its table (the
/// listing reads keys only, so every row holds the same ciphertext).
fn populated(rt: &tokio::runtime::Runtime, path: &Path, total: usize) -> SqliteCache {
    let codec = codec();
    let cache = rt
        .block_on(SqliteCache::open(path, codec.clone()))
        .expect("open");
    let value =
        tokencache_core::Cacheable::from(tokencache_core::KeyManifestEntry { keys: vec![] });
    let blob = codec.encode("x", &value).expect("encode");
    let mut c = Connection::open(path).expect("open");
    let tx = c.transaction().expect("transaction");
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
                 VALUES (?1, ?2, 4000000000, 1)",
            )
            .expect("insert");
        for i in 0..total {
            let key = format!(
                "@@auth0spajs@@::client{}::https://api::scope{}",
                i / 10,
                i % 10
            );
            ins.execute(params![key, blob]).expect("insert");
        }
    }
    tx.commit().expect("commit");
    cache
}

fn listing(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("sqlite/keys_with_prefix");
    for total in [1_000usize, 100_000] {
        let cache = populated(&rt, &dir.path().join(format!("list{total}.db")), total);
        let prefix = "@@auth0spajs@@::client42::";
        let listed = rt.block_on(cache.keys_with_prefix(prefix)).expect("list");
        assert_eq!(listed.map(|k| k.len()), Some(10));
        g.bench_with_input(BenchmarkId::new("10_among", total), &total, |b, _| {
            b.to_async(&rt)
                .iter(|| async { cache.keys_with_prefix(prefix).await.expect("list") })
        });
    }
    g.finish();
}

/// A cache that forwards everything but [`Cache::best_with_prefix`]: a manager over it
/// looks up by scope as over a cache without that method (it lists the keys, then reads
/// and decrypts every candidate).
struct Unranked(Arc<SqliteCache>);

#[async_trait]
impl Cache for Unranked {
    async fn get(&self, key: &str) -> tokencache_core::Result<Option<Cacheable>> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: Cacheable) -> tokencache_core::Result<()> {
        self.0.set(key, value).await
    }
    async fn remove(&self, key: &str) -> tokencache_core::Result<()> {
        self.0.remove(key).await
    }
    async fn remove_many(&self, keys: &[Arc<str>]) -> tokencache_core::Result<()> {
        self.0.remove_many(keys).await
    }
    async fn all_keys(&self) -> tokencache_core::Result<Option<tokencache_core::Keys>> {
        self.0.all_keys().await
    }
    async fn keys_with_prefix(
        &self,
        prefix: &str,
    ) -> tokencache_core::Result<Option<tokencache_core::Keys>> {
        self.0.keys_with_prefix(prefix).await
    }
    fn lists_keys(&self) -> bool {
        self.0.lists_keys()
    }
    async fn update(
        &self,
        key: &str,
        fence: Option<&Fence>,
        f: UpdateFn,
    ) -> tokencache_core::Result<Updated> {
        self.0.update(key, fence, f).await
    }
    fn atomic_updates(&self) -> bool {
        self.0.atomic_updates()
    }
    async fn remove_prefix(&self, prefix: &str) -> tokencache_core::Result<Option<u64>> {
        self.0.remove_prefix(prefix).await
    }
    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        self.0.refresh_lock()
    }
}

/// A cache on `path` holding `others` encrypted entries of the benchmark client at other
/// audiences (as `populate` stores them, but written straight into the table in one
/// transaction), and the target entry stored through its manager.
fn scaled(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    others: usize,
) -> (Arc<SqliteCache>, tokencache_core::CacheManager) {
    let clock = frozen_clock();
    let open = SqliteCache::builder(path)
        .codec(codec())
        .clock(clock.clone())
        .build();
    let cache = Arc::new(rt.block_on(open).expect("open"));
    let now_s = clock.now_s();
    let mut c = Connection::open(path).expect("open");
    let tx = c.transaction().expect("transaction");
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
                 VALUES (?1, ?2, ?3, 1)",
            )
            .expect("insert");
        for i in 0..others {
            let audience = other_audience(i);
            let key = CacheKey::new(CLIENT_ID, Some(&audience), Some(OTHER_SCOPE)).to_key();
            let value: Cacheable =
                WrappedCacheEntry::from_entry(entry(&audience, OTHER_SCOPE, i), now_s)
                    .expect("entry")
                    .into();
            let blob = cache.codec().encode(&key, &value).expect("encode");
            ins.execute(params![key, blob, value.expires_at()])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    let manager = workloads::manager(cache.clone(), clock).expect("manager");
    rt.block_on(manager.set(entry(TARGET_AUDIENCE, TARGET_SCOPE, "target")))
        .expect("set the target");
    (cache, manager)
}

/// The value at `key` in the cache's own table.
fn raw_value(c: &Connection, key: &str) -> Option<Vec<u8>> {
    c.prepare_cached("SELECT value FROM tokencache_entries WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .expect("raw read")
}

/// The keys in `[from, to)` of the cache's own table.
fn raw_range(c: &Connection, from: &str, to: &str) -> Vec<String> {
    c.prepare_cached("SELECT key FROM tokencache_entries WHERE key >= ?1 AND key < ?2 ORDER BY key")
        .and_then(|mut s| {
            s.query_map(params![from, to], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .expect("raw range")
}

/// One operation of an interleaved group: called with the number of the run, it returns
/// the future that does it once.
type Run<'a> = Box<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a>;

/// An operation of an interleaved group: its criterion function's name, how many elements
/// one run handles (criterion's throughput, and the times per element), and the run.
struct Timed<'a> {
    name: String,
    elements: u64,
    run: Run<'a>,
}

fn timed<'a, F: Future<Output = ()> + 'a>(
    name: impl Into<String>,
    elements: u64,
    run: impl Fn(u64) -> F + 'a,
) -> Timed<'a> {
    Timed {
        name: name.into(),
        elements,
        run: Box::new(move |i| Box::pin(run(i))),
    }
}

/// Runs `ops` as criterion functions of `g` such that every iteration of every function
/// runs every operation once, back to back, in an order that rotates with the iteration,
/// and each function times its own operation only. All operations then see the same file
/// (its WAL, its checkpoints) and the same machine, whose disk and CPU speeds drift by
/// several times within seconds when it is shared, so that the ratio of their times
/// compares like with like. Then prints, for each operation, the median of its time per
/// element over criterion's samples and the median of its ratio to the first operation's
/// time in the same sample.
fn interleaved(g: &mut Group<'_>, rt: &tokio::runtime::Runtime, ops: &[Timed<'_>]) {
    // Per sample (one `iter_custom` call, warm-up included): each operation's mean time
    // per element.
    let samples: Mutex<Vec<Vec<f64>>> = Mutex::default();
    for (me, op) in ops.iter().enumerate() {
        g.throughput(Throughput::Elements(op.elements));
        g.bench_function(op.name.as_str(), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let samples = &samples;
                async move {
                    let mut totals = vec![Duration::ZERO; ops.len()];
                    for i in 0..iters {
                        for k in 0..ops.len() {
                            let j = (k + i as usize) % ops.len();
                            let t = Instant::now();
                            (ops[j].run)(i).await;
                            totals[j] += t.elapsed();
                        }
                    }
                    let per_element = totals
                        .iter()
                        .zip(ops)
                        .map(|(t, op)| t.as_nanos() as f64 / (iters * op.elements) as f64)
                        .collect();
                    samples.lock().expect("samples").push(per_element);
                    totals[me]
                }
            })
        });
    }
    let samples = samples.into_inner().expect("samples");
    if samples.is_empty() {
        return; // every function of the group was filtered out
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (j, op) in ops.iter().enumerate() {
        let time = median(samples.iter().map(|s| s[j]).collect());
        let ratio = median(samples.iter().map(|s| s[j] / s[0]).collect());
        eprintln!(
            "interleaved {}: median {:.2} µs per element; {:.2} x {} (median of {} paired samples)",
            op.name,
            time / 1000.0,
            ratio,
            ops[0].name,
            samples.len()
        );
    }
}

/// Lookups through `CacheManager::get` and their raw rusqlite floors on the calling
/// thread, on the cache's own table, interleaved: `raw_exact` (a read, then the
/// decryption and decoding of the value), `exact` and `subset` (the manager: the lookup by
/// scope is the exact key that misses, then one `Cache::best_with_prefix`),
/// `exact_unranked` and `subset_unranked` (the manager over a wrapper without
/// `best_with_prefix`), `raw_subset` (the statements the listing lookup asks the cache
/// for: the exact key that misses, the range of the client's and audience's keys, the read
/// and decryption of the one found, each in its own transaction as separate cache calls
/// are),
/// `raw_subset_one_transaction` (the same statements in one read transaction: what one
/// cache call for the whole lookup could do) and `raw_subset_one_statement` (one range
/// read of the audience's keys with their values and plaintext expiry, which holds the
/// exact key when it is stored and the candidates otherwise, then one decryption: what a
/// cache call that lists entries with their metadata could do).
fn lookups(g: &mut Group<'_>, rt: &tokio::runtime::Runtime, path: &Path, others: usize) {
    let (cache, manager) = scaled(rt, path, others);
    let listed = rt.block_on(cache.all_keys()).expect("list");
    assert_eq!(listed.map(|k| k.len()), Some(others + 1));
    let conn = raw_connection(cache.path());
    let codec = cache.codec().clone();
    let (exact, subset) = (exact_key().to_key(), subset_key().to_key());
    let from = format!(
        "{}::{CLIENT_ID}::{TARGET_AUDIENCE}::",
        tokencache_core::DEFAULT_PREFIX
    );
    let to = format!("{};", &from[..from.len() - 1]);
    assert_eq!(raw_range(&conn, &from, &to), vec![exact.clone()]);
    let raw_exact = || {
        let bytes = raw_value(&conn, &exact).expect("stored");
        codec.decode(&exact, &bytes).expect("decrypts");
    };
    let raw_subset = |c: &Connection| {
        assert!(raw_value(c, &subset).is_none());
        let keys = raw_range(c, &from, &to);
        let bytes = raw_value(c, &keys[0]).expect("stored");
        codec.decode(&keys[0], &bytes).expect("decrypts");
    };
    let raw_one_statement = || {
        // Steps 1 and 2 of the lookup from one range read of the audience's keys (the
        // exact key, were it stored, would be among them), with the plaintext expiry to
        // rank them; then one decryption.
        let rows: Vec<(String, Vec<u8>, Option<i64>)> = conn
            .prepare_cached(
                "SELECT key, value, expires_at FROM tokencache_entries
                 WHERE key >= ?1 AND key < ?2 ORDER BY key",
            )
            .and_then(|mut s| {
                s.query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .expect("raw range");
        assert!(rows.iter().all(|(k, _, _)| *k != subset));
        let (key, bytes, _) = rows.iter().max_by_key(|r| r.2).expect("a candidate");
        codec.decode(key, bytes).expect("decrypts");
    };
    let unranked =
        workloads::manager(Arc::new(Unranked(cache.clone())), frozen_clock()).expect("manager");
    let ops = [
        timed(format!("raw_exact/{others}"), 1, |_| async { raw_exact() }),
        get_target(format!("exact/{others}"), &manager, exact_key()),
        get_target(format!("subset/{others}"), &manager, subset_key()),
        get_target(format!("exact_unranked/{others}"), &unranked, exact_key()),
        get_target(format!("subset_unranked/{others}"), &unranked, subset_key()),
        timed(format!("raw_subset/{others}"), 1, |_| async {
            raw_subset(&conn)
        }),
        timed(
            format!("raw_subset_one_transaction/{others}"),
            1,
            |_| async {
                let tx = conn.unchecked_transaction().expect("begin");
                raw_subset(&tx);
                tx.commit().expect("commit");
            },
        ),
        timed(format!("raw_subset_one_statement/{others}"), 1, |_| async {
            raw_one_statement()
        }),
    ];
    interleaved(g, rt, &ops);
    let stats = cache.stats();
    eprintln!(
        "sqlite/subset_vs_exact/{others}: {} reads on the calling task, {} on the cache's \
         threads, {} pauses after a slow read",
        stats.inline_reads, stats.worker_reads, stats.inline_pauses
    );
}

/// A timed `CacheManager::get` of `key` through `manager`, which must find the target.
fn get_target(name: String, manager: &CacheManager, key: CacheKey) -> Timed<'_> {
    timed(name, 1, move |_| {
        let key = key.clone();
        async move {
            let found = manager.get(&key, GetOptions::default()).await;
            let found = found.expect("get").expect("found");
            assert_eq!(found.access_token.as_deref(), Some("at-target"));
        }
    })
}

fn subset_vs_exact(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("sqlite/subset_vs_exact");
    for others in [10usize, 1_000, 100_000] {
        lookups(
            &mut g,
            &rt,
            &dir.path().join(format!("scale{others}.db")),
            others,
        );
    }
    g.finish();
}

/// One `set` of an encrypted entry vs one raw upsert of as many fresh bytes in the same
/// file with the same settings (`synchronous=FULL`) on the calling thread, interleaved;
/// the raw upsert in `spawn_blocking` (which, like the cache, keeps the fsync off the
/// executor and pays for waking a thread and being woken); and the manager's `set`.
fn set_interleaved(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = frozen_clock();
    let path = dir.path().join("interleaved.db");
    let open = SqliteCache::builder(&path)
        .codec(codec())
        .clock(clock.clone())
        .synchronous(tokencache_sqlite::Synchronous::Full)
        .build();
    let cache = Arc::new(rt.block_on(open).expect("open"));
    let manager = workloads::manager(cache.clone(), clock.clone()).expect("manager");
    let key = workloads::set_key().to_key();
    let len = cache
        .codec()
        .encode(&key, &set_value(&*clock, 0))
        .expect("encode")
        .len();
    let conn = raw_connection(&path);
    let shared = Arc::new(Mutex::new(raw_connection(&path)));
    let n = AtomicU64::new(1);
    let next = || n.fetch_add(1, Ordering::Relaxed);
    let mut g = c.benchmark_group("sqlite/set_interleaved");
    let ops = [
        timed("raw_rusqlite_upsert", 1, |_| {
            let bytes = fresh_bytes(next(), len);
            let (conn, key) = (&conn, &key);
            async move { raw_upsert(conn, key, &bytes) }
        }),
        timed("raw_rusqlite_upsert_spawn_blocking", 1, |_| {
            let bytes = fresh_bytes(next(), len);
            let (shared, key) = (shared.clone(), key.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    raw_upsert(&shared.lock().expect("connection"), &key, &bytes)
                })
                .await
                .expect("task")
            }
        }),
        timed("cache", 1, |_| {
            let value = set_value(&*clock, next());
            let (cache, key) = (&cache, &key);
            async move { cache.set(key, value).await.expect("set") }
        }),
        timed("manager", 1, |_| {
            let e = entry(TARGET_AUDIENCE, workloads::SET_SCOPE, next());
            let manager = &manager;
            async move { manager.set(e).await.expect("set") }
        }),
    ];
    interleaved(&mut g, &rt, &ops);
    g.finish();
}

/// How many `set`s each writer task does per run of `writers`.
const SETS_PER_TASK: u64 = 16;

/// `tasks` tasks that each set [`SETS_PER_TASK`] keys of their own through `cache`, at the
/// same time.
async fn write_concurrently(cache: &Arc<SqliteCache>, clock: &Arc<ManualClock>, tasks: usize) {
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (cache, clock) = (cache.clone(), clock.clone());
            tokio::spawn(async move {
                for i in 0..SETS_PER_TASK {
                    let key = format!("writer-{t}::key-{}", i % 8);
                    cache.set(&key, set_value(&*clock, i)).await.expect("set");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("writer task");
    }
}

/// 1 vs 16 tasks setting keys of their own through one `SqliteCache` with
/// `synchronous=FULL`, interleaved; times are per `set`, so their ratio is the ratio of
/// the throughputs.
fn writers(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = frozen_clock();
    let open = SqliteCache::builder(dir.path().join("writers.db"))
        .codec(codec())
        .synchronous(tokencache_sqlite::Synchronous::Full)
        .build();
    let cache = Arc::new(rt.block_on(open).expect("open"));
    let mut g = c.benchmark_group("sqlite/writers_full");
    g.sample_size(20);
    let ops: Vec<Timed<'_>> = [1usize, 16]
        .into_iter()
        .map(|tasks| {
            let (cache, clock) = (&cache, &clock);
            timed(
                format!("tasks/{tasks}"),
                tasks as u64 * SETS_PER_TASK,
                move |_| write_concurrently(cache, clock, tasks),
            )
        })
        .collect();
    interleaved(&mut g, &rt, &ops);
    g.finish();
    let stats = cache.stats();
    eprintln!(
        "sqlite/writers_full: {} writes in {} transactions, at most {} in one",
        stats.queued_writes, stats.batches, stats.largest_batch
    );
}

criterion_group! {
    name = sqlite;
    config = criterion().sample_size(30);
    targets = workloads, listing, subset_vs_exact, set_interleaved, writers
}
criterion_main!(sqlite);
