//! The shared workloads on the memory backend: `CacheManager` over `MemoryCache`, each
//! beside raw moka (its future and its sync cache of `String` to `Cacheable`) doing the same
//! work with
//! the key built the same way (`CacheKey::to_key` on every call), in the same run:
//!
//! - `memory/exact_hit`: `raw_moka_get` (moka's future cache), `raw_moka_sync_get`
//!   (moka's sync cache, the one `MemoryCache` calls) and `raw_memory_cache_get` (the
//!   backend alone) vs `manager`;
//! - `memory/set`: `raw_moka_insert` and `raw_moka_sync_insert` of the value the manager
//!   writes, built the same way, vs `manager`;
//! - `memory/subset_N`, `memory/miss_N`: `raw_keys_with_prefix` (the ordered index the
//!   lookup lists) vs `manager`;
//! - `memory/clear_N`: `manager` (the target: `clear` of 100 entries within 50 µs);
//! - `memory/all_keys_N`: `manager` (the cache's own listing);
//! - `memory/exact_hit_threads`: exact hits through one manager shared by 1 and by 2
//!   threads, as time per hit of all threads together (throughput = 1 / time; the
//!   target: 2 threads at least 1.7 times the throughput of one), through `get` (which
//!   returns a counted `Arc` of the body) and through `get_with` (which shows it in
//!   place), against raw moka's sync get.
//!
//! `cargo bench -p tokencache-benches --bench memory`
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokencache_benches::workloads::{
    frozen_clock, set_key, Op, Prepared, Workload, SMALL_SIZE, SUBSET_SIZES,
};
use tokencache_benches::{
    bench_workloads, criterion, current_thread_runtime, hit_with, set_value, Group,
};
use tokencache_core::{Cache, CacheKey, Cacheable, DEFAULT_PREFIX, SEPARATOR};
use tokencache_memory::MemoryCache;

/// The prefix the manager lists for a subset lookup of `key`: `prefix::client::audience::`.
fn listing_prefix(key: &CacheKey) -> String {
    format!(
        "{DEFAULT_PREFIX}{SEPARATOR}{}{SEPARATOR}{}{SEPARATOR}",
        key.client_id(),
        key.audience().unwrap_or_default()
    )
}

fn workloads(c: &mut Criterion) {
    let rt = current_thread_runtime();
    let baseline = |g: &mut Group<'_>, p: &Prepared, cache: &Arc<MemoryCache>| {
        let key = p.key().clone();
        match p.workload().op {
            Op::ExactHit => {
                let raw = moka::future::Cache::<String, Cacheable>::new(100_000);
                let value = rt.block_on(cache.get(&key.to_key())).expect("get");
                rt.block_on(raw.insert(key.to_key(), value.expect("the target is stored")));
                g.bench_function("raw_moka_get", |b| {
                    b.to_async(&rt).iter(|| async {
                        black_box(raw.get(&black_box(&key).to_key()).await.expect("stored"))
                    })
                });
                // Moka's sync cache, the engine `MemoryCache` calls: the same get, no
                // future of moka's.
                let raw_sync = moka::sync::Cache::<String, Cacheable>::new(100_000);
                let value = rt.block_on(cache.get(&key.to_key())).expect("get");
                raw_sync.insert(key.to_key(), value.expect("the target is stored"));
                g.bench_function("raw_moka_sync_get", |b| {
                    b.to_async(&rt).iter(|| async {
                        black_box(raw_sync.get(&black_box(&key).to_key()).expect("stored"))
                    })
                });
                g.bench_function("raw_memory_cache_get", |b| {
                    b.to_async(&rt).iter(|| async {
                        black_box(cache.get(&black_box(&key).to_key()).await.expect("get"))
                    })
                });
            }
            Op::Set => {
                let raw = moka::future::Cache::<String, Cacheable>::new(100_000);
                let clock = frozen_clock();
                let n = AtomicU64::new(0);
                g.bench_function("raw_moka_insert", |b| {
                    b.to_async(&rt).iter(|| {
                        let value = set_value(&*clock, n.fetch_add(1, Ordering::Relaxed));
                        let raw = &raw;
                        async move { raw.insert(set_key().to_key(), value).await }
                    })
                });
                let raw_sync = moka::sync::Cache::<String, Cacheable>::new(100_000);
                g.bench_function("raw_moka_sync_insert", |b| {
                    b.to_async(&rt).iter(|| {
                        let value = set_value(&*clock, n.fetch_add(1, Ordering::Relaxed));
                        let raw_sync = &raw_sync;
                        async move { raw_sync.insert(set_key().to_key(), value) }
                    })
                });
            }
            Op::Subset | Op::Miss => {
                let prefix = listing_prefix(&key);
                g.bench_function("raw_keys_with_prefix", |b| {
                    b.to_async(&rt).iter(|| async {
                        black_box(
                            cache
                                .keys_with_prefix(black_box(&prefix))
                                .await
                                .expect("list"),
                        )
                    })
                });
            }
            Op::Clear | Op::AllKeys => {}
        }
    };
    bench_workloads(
        c,
        &rt,
        "memory",
        &Workload::standard_set(&SUBSET_SIZES),
        |clock| Arc::new(MemoryCache::builder().clock(clock).build()),
        baseline,
    );
}

/// Exact hits from `threads` threads sharing one manager: `iters` hits in all, split
/// evenly; the time is the wall time of the slowest thread (each on its own
/// current-thread runtime, built before timing).
fn threaded_hits(p: &Prepared, threads: u64, iters: u64) -> Duration {
    threaded(threads, iters, |i| async move {
        p.run_once(i).await.expect("exact hit");
    })
}

/// `iters` runs of `op` split evenly over `threads` threads, each on its own
/// current-thread runtime (built before timing); the wall time of the slowest thread.
fn threaded<F: std::future::Future<Output = ()>>(
    threads: u64,
    iters: u64,
    op: impl Fn(u64) -> F + Sync,
) -> Duration {
    let per_thread = iters.div_ceil(threads);
    let start = Barrier::new(threads as usize);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (start, op) = (&start, &op);
                s.spawn(move || {
                    let rt = current_thread_runtime();
                    start.wait();
                    let t = Instant::now();
                    rt.block_on(async {
                        for i in 0..per_thread {
                            op(i).await;
                        }
                    });
                    t.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn threads(c: &mut Criterion) {
    let rt = current_thread_runtime();
    let clock = frozen_clock();
    let cache = Arc::new(MemoryCache::builder().clock(clock.clone()).build());
    let p = rt
        .block_on(Workload::new(Op::ExactHit, SMALL_SIZE).prepare_with_clock(cache, clock))
        .expect("workload prepared");
    // The same hits on raw moka (its sync cache, the key built the same way): how far
    // moka itself scales on one key.
    let raw = moka::sync::Cache::<String, Cacheable>::new(100_000);
    let key = p.key().clone();
    let value = rt.block_on(p.manager().cache().get(&key.to_key()));
    raw.insert(
        key.to_key(),
        value.expect("get").expect("the target is stored"),
    );
    let mut g = c.benchmark_group("memory/exact_hit_threads");
    for n in [1u64, 2] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("manager_{n}_threads"), |b| {
            b.iter_custom(|iters| threaded_hits(&p, n, iters))
        });
        // The same hot entry through `get_with`: shown in place, no count of it taken.
        g.bench_function(format!("manager_get_with_{n}_threads"), |b| {
            b.iter_custom(|iters| threaded(n, iters, |_| hit_with(p.manager(), &key)))
        });
        g.bench_function(format!("raw_moka_sync_{n}_threads"), |b| {
            b.iter_custom(|iters| {
                threaded(n, iters, |_| {
                    let (raw, key) = (&raw, &key);
                    async move {
                        black_box(raw.get(&black_box(key).to_key()).expect("stored"));
                    }
                })
            })
        });
    }
    g.finish();
    rt.block_on(p.cleanup()).expect("cleanup");
}

criterion_group! { name = memory; config = criterion(); targets = workloads, threads }
criterion_main!(memory);
