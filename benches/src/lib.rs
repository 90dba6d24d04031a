//! What the criterion bench files of this package share: the workloads of
//! `tokencache-workloads`, run through `CacheManager` on one backend, each in a criterion
//! group beside the raw baseline the bench file adds for it, so that every group reads
//! as a ratio measured in the same run.
//!
//! Group names are `<backend>/<workload>` (`memory/exact_hit`, `sqlite/subset_1000`);
//! the manager's function is `manager`, a baseline's is `raw_<what>`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use tokencache_core::{Cache, Clock};
use tokencache_workloads::{frozen_clock, Op, Prepared, Workload};

pub use tokencache_workloads as workloads;

/// A criterion group of one workload on one backend.
pub type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// A single-threaded tokio runtime: for in-process caches, whose operations never wait
/// on another thread (as the memory backend's criterion groups had it before).
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A multi-threaded tokio runtime with two workers (the machines these run on have two
/// cores): for backends that answer from other threads or over the network.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The value the `set` workload writes for iteration `i`, built the way the manager
/// builds it (the entry, its body, its expiry from `clock`): what a raw baseline stores.
pub fn set_value(clock: &dyn Clock, i: u64) -> tokencache_core::Cacheable {
    use tokencache_workloads::{entry, EXPIRES_IN, SET_SCOPE, TARGET_AUDIENCE};
    let expires_at = clock.now_ms().div_euclid(1000) + EXPIRES_IN as i64;
    tokencache_core::WrappedCacheEntry::new(
        tokencache_core::EntryBody::from(entry(TARGET_AUDIENCE, SET_SCOPE, i)),
        expires_at,
    )
    .into()
}

/// An exact hit of `key` through [`CacheManager::get_with`](tokencache_core::CacheManager::get_with),
/// which shows the body in place: the closure reads the access token's length.
pub async fn hit_with(manager: &tokencache_core::CacheManager, key: &tokencache_core::CacheKey) {
    let shown = manager
        .get_with(
            std::hint::black_box(key),
            tokencache_core::GetOptions::default(),
            |body| body.access_token.as_deref().map_or(0, str::len),
        )
        .await;
    std::hint::black_box(shown.expect("get").expect("a hit"));
}

/// The criterion settings of every bench file: 1 s warm-up, 3 s of measurement.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// Runs each of `workloads` through a `CacheManager` over a cache from `open` (given the
/// frozen clock the manager uses), in group `<backend>/<workload>` as function `manager`,
/// after calling `baseline` with the prepared workload and the cache to add the raw
/// baselines of that workload to the same group.
///
/// The `clear` workload refills the cache between timed operations, untimed.
pub fn bench_workloads<C: Cache + 'static>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    backend: &str,
    workloads: &[Workload],
    mut open: impl FnMut(Arc<dyn Clock>) -> Arc<C>,
    mut baseline: impl FnMut(&mut Group<'_>, &Prepared, &Arc<C>),
) {
    for w in workloads {
        let clock: Arc<dyn Clock> = frozen_clock();
        let cache = open(clock.clone());
        let p = rt
            .block_on(w.prepare_with_clock(cache.clone(), clock))
            .expect("workload prepared");
        let mut g = c.benchmark_group(format!("{backend}/{}", w.name()));
        if w.op == Op::Clear {
            g.sample_size(20);
        }
        baseline(&mut g, &p, &cache);
        let n = AtomicU64::new(0);
        g.bench_function("manager", |b| {
            if w.op != Op::Clear {
                return b.to_async(rt).iter(|| {
                    let i = n.fetch_add(1, Ordering::Relaxed);
                    let p = &p;
                    async move { p.run_once(i).await.expect("workload operation") }
                });
            }
            b.to_async(rt).iter_custom(|iters| {
                let p = &p;
                async move {
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        let t = Instant::now();
                        p.run_once(i).await.expect("clear");
                        total += t.elapsed();
                        p.reset().await.expect("refill");
                    }
                    total
                }
            })
        });
        g.finish();
        rt.block_on(p.check()).expect("still the expected answer");
        rt.block_on(p.cleanup()).expect("cleanup");
    }
}
