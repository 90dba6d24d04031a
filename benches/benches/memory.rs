//! The workload set on the memory backend: `CacheManager` over `MemoryCache`, with raw moka
//! (`moka::future::Cache<String, Cacheable>` holding the identical value at the same key)
//! as the baseline in the same run.
//!
//! Ids read as ratios: `exact_hit/raw_moka_get` vs `exact_hit/manager_get`,
//! `set/raw_moka_insert` vs `set/manager_set`, `subset_N/raw_keys_with_prefix` (the
//! memory cache's ordered index alone) vs `subset_N/manager_get`, `miss_N/...`,
//! `clear_N/manager_clear`.
//!
//! Run: `cargo bench -p tokencache-benches --bench memory`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tokencache_benches::{
    entry, frozen_clock, Op, Prepared, Workload, CLEAR_SIZE, CLIENT_ID, SET_SCOPE, SMALL_SIZE,
    SUBSET_SIZES, TARGET_AUDIENCE,
};
use tokencache_core::{Cache, CacheKey, Cacheable, Clock, DEFAULT_PREFIX, SEPARATOR};
use tokencache_memory::MemoryCache;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A fresh `MemoryCache` and a manager over it on the same frozen clock, populated for `w`.
/// `CacheManager::get` of the workload's lookup key, as benchmark `manager_get` of `g`.
fn bench_manager_get(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    p: &Prepared,
) {
    g.bench_function("manager_get", |b| {
        b.to_async(rt).iter(|| async {
            black_box(
                p.manager()
                    .get(black_box(p.key()), Default::default())
                    .await
                    .expect("get"),
            )
        })
    });
}

fn prepare(rt: &tokio::runtime::Runtime, w: Workload) -> (Arc<MemoryCache>, Prepared) {
    let clock: Arc<dyn Clock> = frozen_clock();
    let cache = Arc::new(MemoryCache::builder().clock(clock.clone()).build());
    let prepared = rt
        .block_on(w.prepare_with_clock(cache.clone(), clock))
        .expect("workload prepared");
    (cache, prepared)
}

/// The prefix the manager lists for a subset lookup of `key`: `prefix::client::audience::`.
fn listing_prefix(key: &CacheKey) -> String {
    format!(
        "{DEFAULT_PREFIX}{SEPARATOR}{}{SEPARATOR}{}{SEPARATOR}",
        key.client_id(),
        key.audience().unwrap_or_default()
    )
}

/// A raw moka cache holding the memory cache's value at `key`.
fn raw_moka_with(
    rt: &tokio::runtime::Runtime,
    cache: &MemoryCache,
    key: &str,
) -> (moka::future::Cache<String, Cacheable>, Cacheable) {
    let value = rt
        .block_on(cache.get(key))
        .expect("get")
        .expect("the target entry is stored");
    let raw = moka::future::Cache::new(100_000);
    rt.block_on(raw.insert(key.to_owned(), value.clone()));
    (raw, value)
}

fn exact_hit(c: &mut Criterion) {
    let rt = runtime();
    let (cache, p) = prepare(&rt, Workload::new(Op::ExactHit, SMALL_SIZE));
    let key_str = p.key().to_key();
    let (raw, _) = raw_moka_with(&rt, &cache, &key_str);

    let mut g = c.benchmark_group("exact_hit");
    g.bench_function("raw_moka_get", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(raw.get(black_box(key_str.as_str())).await) })
    });
    bench_manager_get(&mut g, &rt, &p);
    g.finish();
}

fn set(c: &mut Criterion) {
    let rt = runtime();
    let (cache, p) = prepare(&rt, Workload::new(Op::Set, SMALL_SIZE));
    let target = p.key().to_key();
    let (raw, _) = raw_moka_with(&rt, &cache, &target);
    // The same value the manager writes, built the same way (the entry, its body, the key).
    let set_key = CacheKey::new(CLIENT_ID, Some(TARGET_AUDIENCE), Some(SET_SCOPE)).to_key();
    let expires_at = frozen_clock().now_ms() / 1000 + 86_400;

    let mut g = c.benchmark_group("set");
    let mut i = 0u64;
    g.bench_function("raw_moka_insert", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let value = Cacheable::Entry(tokencache_core::WrappedCacheEntry::new(
                tokencache_core::EntryBody::from(entry(TARGET_AUDIENCE, SET_SCOPE, i)),
                expires_at,
            ));
            let raw = &raw;
            let key = set_key.clone();
            async move { raw.insert(key, value).await }
        })
    });
    let mut i = 0u64;
    g.bench_function("manager_set", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let p = &p;
            async move { p.run_once(i).await.expect("set") }
        })
    });
    g.finish();
}

/// `subset_N` and `miss_N`: the manager's lookup and, for scale, the index listing alone.
fn lookups(c: &mut Criterion) {
    let rt = runtime();
    let largest = *SUBSET_SIZES.iter().max().unwrap_or(&SMALL_SIZE);
    let workloads = SUBSET_SIZES
        .iter()
        .map(|&n| Workload::new(Op::Subset, n))
        .chain([Workload::new(Op::Miss, largest)]);
    for w in workloads {
        let (cache, p) = prepare(&rt, w);
        let prefix = listing_prefix(p.key());
        let mut g = c.benchmark_group(w.name());
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
        bench_manager_get(&mut g, &rt, &p);
        g.finish();
    }
}

fn clear(c: &mut Criterion) {
    let rt = runtime();
    let (_cache, p) = prepare(&rt, Workload::new(Op::Clear, CLEAR_SIZE));
    let mut g = c.benchmark_group(Workload::new(Op::Clear, CLEAR_SIZE).name());
    g.sample_size(20);
    g.bench_function("manager_clear", |b| {
        b.to_async(&rt).iter_custom(|iters| {
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
}

criterion_group! {
    name = memory;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = exact_hit, set, lookups, clear
}
criterion_main!(memory);
