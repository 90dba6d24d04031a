//! A small runner that measures a workload on a cache: latency percentiles from timed
//! operations and throughput from batches timed as a whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokencache_core::{Cache, Result};

use crate::refresh::{PreparedRefresh, RefreshOp};
use crate::workload::{Op, Prepared, Workload};

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

/// The operation a [`Measurement`] timed: one of the standard set or a refresh
/// workload. It serializes as the operation's name (`exact_hit`, `refresh_lock`) and
/// compares equal to the [`Op`] it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum MeasuredOp {
    /// An operation of the standard set ([`run`]).
    Cache(Op),
    /// A refresh workload ([`run_refresh`]).
    Refresh(RefreshOp),
}

impl MeasuredOp {
    /// The operation's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MeasuredOp::Cache(op) => op.as_str(),
            MeasuredOp::Refresh(op) => op.as_str(),
        }
    }
}

impl From<Op> for MeasuredOp {
    fn from(op: Op) -> Self {
        MeasuredOp::Cache(op)
    }
}

impl From<RefreshOp> for MeasuredOp {
    fn from(op: RefreshOp) -> Self {
        MeasuredOp::Refresh(op)
    }
}

impl PartialEq<Op> for MeasuredOp {
    fn eq(&self, other: &Op) -> bool {
        *self == MeasuredOp::Cache(*other)
    }
}

/// What [`run`] or [`run_refresh`] measured for one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The workload's name ([`Workload::name`], [`RefreshOp::as_str`]).
    pub workload: String,
    /// The operation.
    pub op: MeasuredOp,
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
/// timed as a whole (ops/s from the median batch). The benchmark client's keys are
/// removed before and after.
pub async fn run(cache: Arc<dyn Cache>, w: &Workload, cfg: &RunConfig) -> Result<Measurement> {
    let prepared = w.prepare(cache).await?;
    let result = measure(&prepared, cfg).await;
    let cleaned = prepared.cleanup().await;
    let m = result?;
    cleaned?;
    Ok(m)
}

/// Runs the refresh workload `op` on `cache` and measures it as [`run`] does: a warm-up,
/// a latency pass (p50, p99) and a throughput pass. The benchmark client's keys are
/// removed before and after.
pub async fn run_refresh(
    cache: Arc<dyn Cache>,
    op: RefreshOp,
    cfg: &RunConfig,
) -> Result<Measurement> {
    let prepared = op.prepare(cache).await?;
    let result = measure(&prepared, cfg).await;
    let cleaned = prepared.cleanup().await;
    let m = result?;
    cleaned?;
    Ok(m)
}

/// What [`measure`] times: a prepared workload of either kind.
trait Subject {
    fn name(&self) -> String;
    fn op(&self) -> MeasuredOp;
    fn others(&self) -> usize;
    async fn run_once(&self, i: u64) -> Result<()>;
    async fn reset(&self) -> Result<()>;
    async fn check(&self) -> Result<()>;
}

impl Subject for Prepared {
    fn name(&self) -> String {
        self.workload().name()
    }
    fn op(&self) -> MeasuredOp {
        self.workload().op.into()
    }
    fn others(&self) -> usize {
        self.workload().others
    }
    async fn run_once(&self, i: u64) -> Result<()> {
        Prepared::run_once(self, i).await
    }
    async fn reset(&self) -> Result<()> {
        Prepared::reset(self).await
    }
    async fn check(&self) -> Result<()> {
        Prepared::check(self).await
    }
}

impl Subject for PreparedRefresh {
    fn name(&self) -> String {
        self.op().as_str().to_owned()
    }
    fn op(&self) -> MeasuredOp {
        PreparedRefresh::op(self).into()
    }
    fn others(&self) -> usize {
        0
    }
    async fn run_once(&self, i: u64) -> Result<()> {
        PreparedRefresh::run_once(self, i).await
    }
    async fn reset(&self) -> Result<()> {
        Ok(())
    }
    async fn check(&self) -> Result<()> {
        PreparedRefresh::check(self).await
    }
}

/// The number of batches of the throughput pass.
const THROUGHPUT_BATCHES: u64 = 10;

/// The throughput pass of [`run`]: up to 10 batches of `per_batch` runs of `op`, each
/// batch timed as a whole (no per-operation timer), at least 3 and no more once
/// `max_time` has passed; the mean time per operation of the median batch, in
/// nanoseconds (as the auth0-spa-js baseline reports the median of its timed runs).
/// Also for a baseline timed beside the workloads, in the same way.
pub async fn throughput_ns<F: std::future::Future<Output = Result<()>>>(
    per_batch: u64,
    max_time: Duration,
    mut op: impl FnMut() -> F,
) -> Result<f64> {
    let per_batch = per_batch.max(1);
    let mut batches = Vec::with_capacity(THROUGHPUT_BATCHES as usize);
    let start = Instant::now();
    while (batches.len() as u64) < THROUGHPUT_BATCHES {
        let t = Instant::now();
        for _ in 0..per_batch {
            op().await?;
        }
        batches.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
        if batches.len() >= 3 && start.elapsed() >= max_time {
            break;
        }
    }
    batches.sort_unstable_by(f64::total_cmp);
    Ok(batches[batches.len() / 2])
}

async fn measure<S: Subject>(p: &S, cfg: &RunConfig) -> Result<Measurement> {
    let op = p.op();
    let (warmup, iterations) = if op == Op::Clear {
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

    // Throughput pass (`throughput_ns`). The `clear` workload refills the cache between
    // operations, so its mean comes from the latency samples instead.
    let mean_ns = if op == Op::Clear {
        samples.iter().map(|&s| s as f64).sum::<f64>() / done as f64
    } else {
        let per_batch = (done / THROUGHPUT_BATCHES).max(1);
        throughput_ns(per_batch, cfg.max_time, || {
            let n = i;
            i += 1;
            p.run_once(n)
        })
        .await?
    };
    p.check().await?;

    samples.sort_unstable();
    let mean_ns = mean_ns.max(1.0);
    Ok(Measurement {
        workload: p.name(),
        op,
        others: p.others(),
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
    use crate::data::CLIENT_ID;
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
            let cache = Arc::new(NoListing(MapCache::default()));
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
    fn every_refresh_workload_runs_and_leaves_no_key() {
        futures::executor::block_on(async {
            let cache = Arc::new(NoListing(MapCache::default()));
            for op in RefreshOp::ALL {
                let m = run_refresh(cache.clone(), op, &RunConfig::quick())
                    .await
                    .unwrap();
                assert_eq!(m.workload, op.as_str());
                assert_eq!(m.op, MeasuredOp::Refresh(op));
                assert_ne!(m.op, Op::ExactHit);
                assert_eq!(serde_json::to_value(&m).unwrap()["op"], op.as_str());
                assert!(m.iterations >= RunConfig::MIN_ITERATIONS, "{m:?}");
                assert!(m.p50_ns > 0.0 && m.p50_ns <= m.p99_ns, "{m:?}");
                let mk = format!("{}::{CLIENT_ID}", tokencache_core::DEFAULT_PREFIX);
                assert!(cache.get(&mk).await.unwrap().is_none(), "{}", op.as_str());
            }
        });
    }
}
