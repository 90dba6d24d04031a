//! The memory cache's speed targets, each beside its baseline in the same run:
//!
//! - `exact_hit`: `CacheManager::get` of an exact key, `MemoryCache::get`, and a raw moka
//!   `get` of the same value (target: the manager within 2x of raw moka);
//! - `scope_subset`: a lookup by a subset of the scopes with 10,000 keys of other audiences
//!   present, through `keys_with_prefix` and through `CacheManager::get` (target: well
//!   under 50 us; auth0-spa-js takes ~10 ms).
//!
//! `cargo bench -p tokencache-memory --bench lookup`
#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

/// Nothing to measure on wasm32 (the browser figures come from tokencache-web's bench).
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;
    use std::sync::Arc;
    use std::time::Duration;

    use criterion::{criterion_group, Criterion};
    use tokencache_core::{Cache, CacheEntry, CacheKey, CacheManager, GetOptions};
    use tokencache_memory::MemoryCache;

    const OTHERS: usize = 10_000;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// A manager over a memory cache holding `OTHERS` entries of other audiences and three of
    /// `https://target`.
    fn populated(rt: &tokio::runtime::Runtime) -> (CacheManager, Arc<MemoryCache>) {
        let cache = Arc::new(MemoryCache::new());
        let manager = CacheManager::new(cache.clone()).expect("manager");
        rt.block_on(async {
            for i in 0..OTHERS {
                let audience = format!("https://api-{i:05}");
                let e = CacheEntry::new("app", audience, "openid read write", "at", 3600.0);
                manager.set(e).await.expect("set");
            }
            for scope in ["openid read", "openid read write", "openid profile email"] {
                let e = CacheEntry::new("app", "https://target", scope, "at", 3600.0)
                    .with_refresh_token("rt");
                manager.set(e).await.expect("set");
            }
        });
        (manager, cache)
    }

    fn exact_hit(c: &mut Criterion) {
        let rt = runtime();
        let (manager, cache) = populated(&rt);
        let key = CacheKey::new("app", Some("https://target"), Some("openid read write"));
        let raw_key = key.to_key();
        let value = rt
            .block_on(cache.get(&raw_key))
            .expect("get")
            .expect("stored");
        let raw: moka::future::Cache<String, tokencache_core::Cacheable> =
            moka::future::Cache::new(64 * 1024 * 1024);
        rt.block_on(raw.insert(raw_key.clone(), value));

        let mut g = c.benchmark_group("exact_hit");
        g.bench_function("raw_moka_get", |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(raw.get(black_box(raw_key.as_str())).await) })
        });
        g.bench_function("memory_cache_get", |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(cache.get(black_box(&raw_key)).await) })
        });
        g.bench_function("manager_get", |b| {
            b.to_async(&rt).iter(|| async {
                black_box(manager.get(black_box(&key), GetOptions::default()).await)
            })
        });
        g.finish();
    }

    fn scope_subset(c: &mut Criterion) {
        let rt = runtime();
        let (manager, cache) = populated(&rt);
        let key = CacheKey::new("app", Some("https://target"), Some("read"));
        let prefix = "@@auth0spajs@@::app::https://target::";
        let found = rt
            .block_on(manager.get(&key, GetOptions::default()))
            .expect("get");
        assert!(found.is_some(), "the subset lookup finds the entry");

        let mut g = c.benchmark_group("scope_subset_10k_other_keys");
        g.bench_function("keys_with_prefix", |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(cache.keys_with_prefix(black_box(prefix)).await) })
        });
        g.bench_function("manager_get", |b| {
            b.to_async(&rt).iter(|| async {
                black_box(manager.get(black_box(&key), GetOptions::default()).await)
            })
        });
        g.finish();
    }

    fn config() -> Criterion {
        Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
    }

    criterion_group! { name = benches; config = config(); targets = exact_hit, scope_subset }
}
