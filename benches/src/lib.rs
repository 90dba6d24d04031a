//! The workloads that every tokencache benchmark runs: the criterion benches in this
//! package and the `tokencache bench` command use the same data and the same operations,
//! so their numbers compare with each other and with the auth0-spa-js baseline
//! (`shared/baselines/auth0-spa-js/bench.mjs`), whose data shapes they mirror:
//!
//! - one client, [`CLIENT_ID`]; every entry has `token_type: "Bearer"`, `expires_in: 86400`,
//!   an access token `at-<tag>` and a refresh token `rt-<tag>`;
//! - `N` "other" entries at audiences `https://other-<i>.test` with scope [`OTHER_SCOPE`],
//!   plus one target entry at [`TARGET_AUDIENCE`] with scope [`TARGET_SCOPE`];
//! - the clock stands still during a run (auth0-spa-js's constant `nowProvider`), so
//!   nothing expires.
//!
//! The workloads ([`Op`]):
//!
//! | name | operation | auth0-spa-js row |
//! |---|---|---|
//! | `set` | `set` overwriting one fixed key with a fresh entry | `set` |
//! | `exact_hit` | `get` of the target's exact key | `get exact hit` |
//! | `subset_N` | `get` by scopes `read openid`: the exact key misses, the target is found among `N` other keys | `get scope subset` |
//! | `miss_N` | `get` at an absent audience: nothing matches | `get miss` |
//! | `clear_N` | `clear(Some(client))` of `N` other entries and the target | — |
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::sync::Arc;
//! use tokencache_benches::{run, Op, RunConfig, Workload};
//! # use tokencache_conformance::{MapCache, NoListing};
//!
//! let cache = Arc::new(NoListing(MapCache::new()));
//! let w = Workload::new(Op::Subset, 10);
//! let m = run(cache, &w, &RunConfig::quick()).await?;
//! assert_eq!(m.workload, "subset_10");
//! assert!(m.ops_per_sec > 0.0 && m.p50_ns <= m.p99_ns);
//! # Ok::<(), tokencache_core::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Clock, Error, GetOptions, ManualClock, Result,
    SystemClock,
};

/// The client id of every benchmark entry.
pub const CLIENT_ID: &str = "bench-client";
/// The audience of the target entry.
pub const TARGET_AUDIENCE: &str = "https://api.test";
/// The scopes of the target entry.
pub const TARGET_SCOPE: &str = "openid profile email read write";
/// The scopes of every other entry.
pub const OTHER_SCOPE: &str = "openid profile email";
/// The scopes a subset lookup asks for: a subset of [`TARGET_SCOPE`] only.
pub const SUBSET_SCOPE: &str = "read openid";
/// The audience of the miss workload: no entry has it.
pub const ABSENT_AUDIENCE: &str = "https://absent.test";
/// The scopes the miss workload asks for.
pub const MISS_SCOPE: &str = "openid";
/// The scopes of the entry the `set` workload overwrites.
pub const SET_SCOPE: &str = "openid bench-set";
/// Lifetime of every entry, in seconds.
pub const EXPIRES_IN: f64 = 86_400.0;
/// The numbers of other keys of the subset workloads (as in the auth0-spa-js baseline).
pub const SUBSET_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
/// The number of other keys present for `set` and `exact_hit`.
pub const SMALL_SIZE: usize = 10;
/// The number of other entries the `clear` workload removes (besides the target).
pub const CLEAR_SIZE: usize = 100;

/// An entry of the benchmark client, shaped as the baseline's: `at-<tag>`, `rt-<tag>`,
/// `Bearer`, 86400 s.
///
/// ```
/// let e = tokencache_benches::entry("https://api.test", "openid", "target");
/// assert_eq!(e.access_token, "at-target");
/// assert_eq!(e.refresh_token.as_deref(), Some("rt-target"));
/// ```
pub fn entry(audience: &str, scope: &str, tag: impl fmt::Display) -> CacheEntry {
    let mut e = CacheEntry::new(CLIENT_ID, audience, scope, format!("at-{tag}"), EXPIRES_IN)
        .with_refresh_token(format!("rt-{tag}"));
    e.token_type = Some("Bearer".to_owned());
    e
}

/// The audience of the `i`-th other entry: `https://other-<i>.test`.
pub fn other_audience(i: usize) -> String {
    format!("https://other-{i}.test")
}

/// The key of the target entry.
pub fn exact_key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(TARGET_AUDIENCE), Some(TARGET_SCOPE))
}

/// The key of a subset lookup: the target's audience, scopes [`SUBSET_SCOPE`].
pub fn subset_key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(TARGET_AUDIENCE), Some(SUBSET_SCOPE))
}

/// The key of the miss workload.
pub fn miss_key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(ABSENT_AUDIENCE), Some(MISS_SCOPE))
}

/// A clock that stands at the current time and does not move: entries set during a run
/// are valid for a day both for the manager and for a backend that expires entries on
/// its own clock.
pub fn frozen_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemClock.now_ms()))
}

/// A manager over `cache` with `clock`, with a key manifest for [`CLIENT_ID`] if the
/// cache cannot list its keys.
pub fn manager(cache: Arc<dyn Cache>, clock: Arc<dyn Clock>) -> Result<CacheManager> {
    CacheManager::builder(cache)
        .clock(clock)
        .client_id(CLIENT_ID)
        .build()
}

/// Stores `others` other entries and the target entry through `manager`.
pub async fn populate(manager: &CacheManager, others: usize) -> Result<()> {
    for i in 0..others {
        manager
            .set(entry(&other_audience(i), OTHER_SCOPE, i))
            .await?;
    }
    manager
        .set(entry(TARGET_AUDIENCE, TARGET_SCOPE, "target"))
        .await
}

/// An operation of the workload set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `set` overwriting one fixed key ([`SET_SCOPE`]) with a fresh entry.
    Set,
    /// `get` of the target's exact key.
    ExactHit,
    /// `get` by a subset of the target's scopes.
    Subset,
    /// `get` at an absent audience.
    Miss,
    /// `clear(Some(CLIENT_ID))` of the populated entries.
    Clear,
}

impl Op {
    /// The name of the operation, as in workload names.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::ExactHit => "exact_hit",
            Op::Subset => "subset",
            Op::Miss => "miss",
            Op::Clear => "clear",
        }
    }
}

/// One workload: an operation and the number of other keys present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// The operation timed.
    pub op: Op,
    /// How many other entries of the client are stored besides the target.
    pub others: usize,
}

impl Workload {
    /// A workload of `op` with `others` other keys.
    pub fn new(op: Op, others: usize) -> Self {
        Workload { op, others }
    }

    /// The fixed workload set: `set`, `exact_hit` (with [`SMALL_SIZE`] other keys),
    /// `subset_N` for each of `sizes`, `miss_N` for the largest size, and `clear_N` with
    /// [`CLEAR_SIZE`] entries (or the largest size, if smaller).
    ///
    /// ```
    /// use tokencache_benches::{Workload, SUBSET_SIZES};
    /// let names: Vec<String> = Workload::standard_set(&SUBSET_SIZES).iter().map(|w| w.name()).collect();
    /// assert_eq!(names, ["set", "exact_hit", "subset_10", "subset_100", "subset_1000",
    ///                    "subset_10000", "miss_10000", "clear_100"]);
    /// ```
    pub fn standard_set(sizes: &[usize]) -> Vec<Workload> {
        let largest = sizes.iter().copied().max().unwrap_or(SMALL_SIZE);
        let mut set = vec![
            Workload::new(Op::Set, SMALL_SIZE.min(largest)),
            Workload::new(Op::ExactHit, SMALL_SIZE.min(largest)),
        ];
        set.extend(sizes.iter().map(|&n| Workload::new(Op::Subset, n)));
        set.push(Workload::new(Op::Miss, largest));
        set.push(Workload::new(Op::Clear, CLEAR_SIZE.min(largest)));
        set
    }

    /// The workload's name: `set`, `exact_hit`, or `<op>_<N>` for the operations whose
    /// cost depends on the number of keys.
    pub fn name(&self) -> String {
        match self.op {
            Op::Set | Op::ExactHit => self.op.as_str().to_owned(),
            op => format!("{}_{}", op.as_str(), self.others),
        }
    }

    /// A manager over `cache`, emptied of the benchmark client's keys and populated for
    /// this workload, ready for [`Prepared::run_once`].
    pub async fn prepare(&self, cache: Arc<dyn Cache>) -> Result<Prepared> {
        self.prepare_with_clock(cache, frozen_clock()).await
    }

    /// [`Workload::prepare`] with the manager on `clock` (give the backend the same clock).
    pub async fn prepare_with_clock(
        &self,
        cache: Arc<dyn Cache>,
        clock: Arc<dyn Clock>,
    ) -> Result<Prepared> {
        let manager = manager(cache, clock)?;
        manager.clear(Some(CLIENT_ID)).await?;
        populate(&manager, self.others).await?;
        let prepared = Prepared {
            workload: *self,
            manager,
            key: match self.op {
                Op::Subset => subset_key(),
                Op::Miss => miss_key(),
                _ => exact_key(),
            },
        };
        prepared.check().await?;
        Ok(prepared)
    }
}

/// A workload ready to run on one cache.
#[derive(Debug)]
pub struct Prepared {
    workload: Workload,
    manager: CacheManager,
    key: CacheKey,
}

impl Prepared {
    /// The manager the workload runs through.
    pub fn manager(&self) -> &CacheManager {
        &self.manager
    }

    /// The key a `get` workload looks up.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// Checks that a lookup gives the expected answer (the target entry, or nothing for
    /// the miss workload), so that a benchmark never times a wrong answer.
    pub async fn check(&self) -> Result<()> {
        let wanted = match self.workload.op {
            Op::Set | Op::Clear => return Ok(()),
            Op::Miss => None,
            Op::ExactHit | Op::Subset => Some("at-target"),
        };
        let got = self.manager.get(&self.key, GetOptions::default()).await?;
        let got = got.as_ref().and_then(|b| b.access_token.as_deref());
        if got != wanted {
            return Err(Error::unexpected(format!(
                "workload {} found {} where {} was expected",
                self.workload.name(),
                if got.is_some() { "an entry" } else { "nothing" },
                if wanted.is_some() {
                    "the target entry"
                } else {
                    "nothing"
                },
            )));
        }
        Ok(())
    }

    /// Refills the cache after a `clear` (untimed setup of the next iteration). A no-op
    /// for the other workloads.
    pub async fn reset(&self) -> Result<()> {
        if self.workload.op == Op::Clear {
            populate(&self.manager, self.workload.others).await?;
        }
        Ok(())
    }

    /// Runs the timed operation once; `i` numbers the iteration (the `set` workload
    /// writes `at-<i>`).
    pub async fn run_once(&self, i: u64) -> Result<()> {
        match self.workload.op {
            Op::Set => self.manager.set(entry(TARGET_AUDIENCE, SET_SCOPE, i)).await,
            Op::ExactHit | Op::Subset | Op::Miss => self
                .manager
                .get(&self.key, GetOptions::default())
                .await
                .map(drop),
            Op::Clear => self.manager.clear(Some(CLIENT_ID)).await,
        }
    }

    /// Removes the benchmark client's keys from the cache.
    pub async fn cleanup(&self) -> Result<()> {
        self.manager.clear(Some(CLIENT_ID)).await
    }
}

/// How long [`run`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunConfig {
    /// Untimed iterations before measuring.
    pub warmup: u64,
    /// Timed iterations (per pass; the latency and the throughput pass each run this many).
    pub iterations: u64,
    /// Timed iterations of the `clear` workload, whose every iteration refills the cache.
    pub clear_iterations: u64,
    /// A pass stops early, after at least [`RunConfig::MIN_ITERATIONS`], once it ran this long.
    pub max_time: Duration,
}

impl RunConfig {
    /// The fewest timed iterations of a pass, whatever `max_time` says.
    pub const MIN_ITERATIONS: u64 = 10;

    /// Settings for a quick check, not for numbers: 20 iterations.
    pub fn quick() -> Self {
        RunConfig {
            warmup: 5,
            iterations: 20,
            clear_iterations: 10,
            max_time: Duration::from_secs(1),
        }
    }
}

impl Default for RunConfig {
    /// 1,000 warm-up and 20,000 timed iterations (200 for `clear`), at most 1 s per pass.
    fn default() -> Self {
        RunConfig {
            warmup: 1_000,
            iterations: 20_000,
            clear_iterations: 200,
            max_time: Duration::from_secs(1),
        }
    }
}

/// What [`run`] measured for one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The workload's name ([`Workload::name`]).
    pub workload: String,
    /// The operation.
    pub op: Op,
    /// The number of other keys present.
    pub others: usize,
    /// Timed iterations of the latency pass.
    pub iterations: u64,
    /// Operations per second, from the median of batches timed as a whole (no
    /// per-operation timer).
    pub ops_per_sec: f64,
    /// Mean time per operation in nanoseconds: `1e9 / ops_per_sec`.
    pub mean_ns: f64,
    /// Median latency of one operation, in nanoseconds.
    pub p50_ns: f64,
    /// 99th-percentile latency of one operation, in nanoseconds.
    pub p99_ns: f64,
}

/// The `q`-quantile (0..=1) of sorted `samples`, by the nearest-rank method.
fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// Runs workload `w` on `cache` and measures it: a warm-up, a latency pass that times
/// every operation (p50, p99) and, except for `clear`, a throughput pass of 10 batches
/// timed as a whole (ops/s from the median batch). The benchmark client's keys are removed before and after.
pub async fn run(cache: Arc<dyn Cache>, w: &Workload, cfg: &RunConfig) -> Result<Measurement> {
    let prepared = w.prepare(cache).await?;
    let result = measure(&prepared, cfg).await;
    let cleaned = prepared.cleanup().await;
    let m = result?;
    cleaned?;
    Ok(m)
}

/// The number of batches of the throughput pass.
const THROUGHPUT_BATCHES: u64 = 10;

async fn measure(p: &Prepared, cfg: &RunConfig) -> Result<Measurement> {
    let w = p.workload;
    let (warmup, iterations) = if w.op == Op::Clear {
        (
            cfg.warmup.min(cfg.clear_iterations / 10 + 1),
            cfg.clear_iterations,
        )
    } else {
        (cfg.warmup, cfg.iterations)
    };
    let iterations = iterations.max(1);
    let mut i = 0u64;
    for _ in 0..warmup {
        p.run_once(i).await?;
        p.reset().await?;
        i += 1;
    }

    // Latency pass: every operation timed on its own.
    let mut samples = Vec::with_capacity(usize::try_from(iterations).unwrap_or(0));
    let pass = Instant::now();
    while (samples.len() as u64) < iterations {
        let t = Instant::now();
        p.run_once(i).await?;
        samples.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        p.reset().await?;
        i += 1;
        if samples.len() as u64 >= RunConfig::MIN_ITERATIONS && pass.elapsed() >= cfg.max_time {
            break;
        }
    }
    let done = samples.len() as u64;

    // Throughput pass: batches of operations, each timed as a whole (no per-operation
    // timer); the median batch gives the mean time per operation, as the auth0-spa-js
    // baseline reports the median of its timed runs. The `clear` workload refills the
    // cache between operations, so its mean comes from the latency samples instead.
    let mean_ns = if w.op == Op::Clear {
        samples.iter().map(|&s| s as f64).sum::<f64>() / done as f64
    } else {
        let per_batch = (done / THROUGHPUT_BATCHES).max(1);
        let mut batches = Vec::with_capacity(THROUGHPUT_BATCHES as usize);
        let start = Instant::now();
        while (batches.len() as u64) < THROUGHPUT_BATCHES {
            let t = Instant::now();
            for _ in 0..per_batch {
                p.run_once(i).await?;
                i += 1;
            }
            batches.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
            if batches.len() >= 3 && start.elapsed() >= cfg.max_time {
                break;
            }
        }
        batches.sort_unstable_by(f64::total_cmp);
        batches[batches.len() / 2]
    };
    p.check().await?;

    samples.sort_unstable();
    let mean_ns = mean_ns.max(1.0);
    Ok(Measurement {
        workload: w.name(),
        op: w.op,
        others: w.others,
        iterations: done,
        ops_per_sec: 1e9 / mean_ns,
        mean_ns,
        p50_ns: quantile(&samples, 0.50),
        p99_ns: quantile(&samples, 0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_conformance::{MapCache, NoListing};

    #[test]
    fn quantiles_by_nearest_rank() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&s, 0.5), 50.0);
        assert_eq!(quantile(&s, 0.99), 99.0);
        assert_eq!(quantile(&[7], 0.99), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn every_workload_runs_and_leaves_no_key() {
        futures::executor::block_on(async {
            let cache = Arc::new(NoListing(MapCache::new()));
            for w in Workload::standard_set(&[10, 50]) {
                let m = run(cache.clone(), &w, &RunConfig::quick()).await.unwrap();
                assert_eq!(m.workload, w.name());
                assert!(m.iterations >= RunConfig::MIN_ITERATIONS, "{m:?}");
                assert!(
                    m.ops_per_sec > 0.0 && m.p50_ns > 0.0 && m.p50_ns <= m.p99_ns,
                    "{m:?}"
                );
                // The manifest is gone, so the client's keys are gone too.
                let mk = format!("{}::{CLIENT_ID}", tokencache_core::DEFAULT_PREFIX);
                assert!(cache.get(&mk).await.unwrap().is_none(), "{}", w.name());
            }
        });
    }

    #[test]
    fn a_wrong_answer_is_an_error() {
        futures::executor::block_on(async {
            let cache: Arc<dyn Cache> = Arc::new(NoListing(MapCache::new()));
            let p = Workload::new(Op::Subset, 3).prepare(cache).await.unwrap();
            p.manager()
                .remove(CLIENT_ID, Some(TARGET_AUDIENCE), Some(TARGET_SCOPE))
                .await
                .unwrap();
            let e = p.check().await.unwrap_err();
            assert_eq!(e.kind(), tokencache_core::ErrorKind::Unexpected);
        });
    }
}
