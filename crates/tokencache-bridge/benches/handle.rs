//! The cost of one bridge round trip on the native side: `handle_json` of a `get` that hits
//! a MemoryCache (parse the request, check the key, read the cache, write the response), beside
//! a direct `MemoryCache::get` of the same value.
//!
//! `cargo bench -p tokencache-bridge --bench handle`
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tokencache_bridge::BridgeHandler;
use tokencache_core::{Cache, Cacheable};
use tokencache_memory::MemoryCache;

const KEY: &str = "@@auth0spajs@@::app::https://api.example.com::openid profile email read:orders";

fn handle_get(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cache = Arc::new(MemoryCache::new());
    let handler = BridgeHandler::new(cache.clone());
    let value = format!(
        r#"{{"body":{{"client_id":"app","audience":"https://api.example.com","scope":"openid profile email read:orders","access_token":"{at}","expires_in":86400,"token_type":"Bearer","refresh_token":"v1.{rt}","oauthTokenScope":"openid profile email read:orders"}},"expiresAt":2000000000}}"#,
        at = "a".repeat(900),
        rt = "r".repeat(60),
    );
    rt.block_on(cache.set(KEY, Cacheable::from_json(value.as_bytes()).expect("value")))
        .expect("set");
    let request = format!(r#"{{"id":42,"op":"get","key":"{KEY}"}}"#);
    assert!(rt
        .block_on(handler.handle_json(&request))
        .contains(r#""ok":true,"value""#));

    let mut group = c.benchmark_group("bridge_get");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("handle_json", |b| {
        b.iter(|| rt.block_on(handler.handle_json(black_box(&request))))
    });
    group.bench_function("memory_cache_get", |b| {
        b.iter(|| rt.block_on(cache.get(black_box(KEY))))
    });
    group.finish();
}

criterion_group!(benches, handle_get);
criterion_main!(benches);
