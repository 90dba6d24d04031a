//! Memory per stored entry, measured with a counting global allocator (`cap`, a safe
//! wrapper over the system allocator): 10,000 entries of three 1 KB tokens each must take
//! no more than 1.5 times the entry's JSON size (measured: about 1.24 x).
//!
//! The count covers everything allocated while the entries go in: the values, the keys,
//! moka's bookkeeping, the key index, and any table growth. Run it alone in its binary
//! (it is the only test here), so no other test allocates meanwhile.
#![cfg(not(target_arch = "wasm32"))]

use std::alloc::System;

use cap::Cap;
use serde_json::json;
use tokencache_core::{
    Cache, CacheEntry, CacheKey, Cacheable, DecodedToken, EntryBody, WrappedCacheEntry,
};
use tokencache_memory::MemoryCache;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const N: usize = 10_000;

/// A token of 1 KB, different for each entry.
fn token(kind: char, i: usize) -> String {
    let head = format!("{kind}{i:08}.");
    let mut s = String::with_capacity(1024);
    s.push_str(&head);
    s.extend(std::iter::repeat_n('x', 1024 - head.len()));
    s
}

fn key(i: usize) -> String {
    CacheKey::new(
        format!("client-{:04}", i % 7),
        Some(&format!("https://api-{i}.example.com/")),
        Some("openid profile email offline_access read:messages"),
    )
    .to_key()
}

/// A token response as auth0-spa-js caches it, with three 1 KB tokens; with `decoded`,
/// also a small decoded ID token (its claims and user profile, without `__raw`).
fn value(i: usize, decoded: bool) -> Cacheable {
    let mut e = CacheEntry::new(
        format!("client-{:04}", i % 7),
        format!("https://api-{i}.example.com/"),
        "openid profile email offline_access read:messages",
        token('a', i),
        86_400.0,
    )
    .with_refresh_token(token('r', i));
    e.id_token = Some(token('i', i));
    e.token_type = Some("Bearer".into());
    if decoded {
        let claims = json!({"sub": format!("auth0|{i}"), "name": "Jane Doe", "email": "jane@example.com",
            "iss": "https://tenant.example.com/", "aud": "client", "iat": 1_700_000_000, "exp": 1_700_086_400});
        let user =
            json!({"sub": format!("auth0|{i}"), "name": "Jane Doe", "email": "jane@example.com"});
        let d = DecodedToken {
            claims: claims.as_object().cloned().unwrap_or_default(),
            user: user.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        };
        e.decoded_token = Some(d);
    }
    Cacheable::Entry(WrappedCacheEntry::new(
        EntryBody::from(e),
        1_700_086_400 + i as i64,
    ))
}

/// Bytes allocated per entry for `N` entries, and the mean JSON size of one entry.
fn measure(rt: &tokio::runtime::Runtime, decoded: bool) -> (f64, f64) {
    // The mean JSON size over a sample (sizes differ only by the digits of `i`).
    let sample: Vec<usize> = (0..N).step_by(50).collect();
    let json: usize = sample
        .iter()
        .map(|&i| value(i, decoded).to_json().unwrap().len())
        .sum();
    let json = json as f64 / sample.len() as f64;
    let cache = MemoryCache::builder().max_capacity_bytes(1 << 30).build();
    let before = ALLOCATOR.allocated();
    rt.block_on(async {
        for i in 0..N {
            cache.set(&key(i), value(i, decoded)).await.unwrap();
        }
        cache.run_pending_tasks().await;
    });
    let after = ALLOCATOR.allocated();
    let count = rt.block_on(cache.entry_count());
    assert_eq!(
        count, N as u64,
        "nothing may be evicted during the measurement"
    );
    let weight = rt.block_on(cache.weighted_size()) as f64 / N as f64;
    let per_entry = (after - before) as f64 / N as f64;
    println!(
        "decoded token: {decoded}: {per_entry:.0} bytes per entry, JSON {json:.0} bytes, ratio {:.3}; \
         weigher estimate {weight:.0} bytes ({:+.1}% of measured)",
        per_entry / json,
        (weight / per_entry - 1.0) * 100.0
    );
    drop(cache);
    (per_entry, json)
}

#[test]
fn memory_per_entry_is_at_most_one_and_a_half_times_its_json() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (per_entry, json) = measure(&rt, false);
    assert!(
        per_entry > 3.0 * 1024.0,
        "three 1 KB tokens at least: {per_entry}"
    );
    assert!(
        per_entry <= 1.5 * json,
        "{per_entry} bytes per entry > 1.5 x {json}"
    );

    // With a decoded ID token too, serde_json's maps (a B-tree node per map) cost more than
    // their JSON: about 1.55 x, bounded here against regressions.
    let (per_entry, json) = measure(&rt, true);
    assert!(
        per_entry <= 1.6 * json,
        "{per_entry} bytes per entry > 1.6 x {json}"
    );
}
