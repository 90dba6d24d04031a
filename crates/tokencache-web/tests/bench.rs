//! BENCHMARK (not a unit test of speed): get and set through the Rust LocalStorageCache
//! against auth0-spa-js 2.28.3's LocalStorageCache, on the same entries in the same page,
//! timed with `performance.now()`. Prints its figures (run with `-- --nocapture`, in a
//! release build: `scripts/web-test.sh` does both); asserts only that every read hit.
#![cfg(target_arch = "wasm32")]
// The core shares caches as `Arc<dyn Cache>`; browser values are not `Send` (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use serde_json::json;
use std::sync::Arc;

use tokencache_core::{Cache, Cacheable, KeyManifestEntry, Update, ValueCodec};
use tokencache_web::{LocalStorageCache, SessionStorageCache};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/tests/support/auth0.js")]
extern "C" {
    #[wasm_bindgen(catch)]
    async fn load_auth0() -> Result<(), JsValue>;
    fn spa_local_storage_cache() -> JsValue;
    #[wasm_bindgen(catch)]
    fn spa_bench_get(cache: &JsValue, keys: Vec<String>, iters: u32) -> Result<f64, JsValue>;
    fn spa_bench_set(cache: &JsValue, keys: Vec<String>, values: Vec<String>, iters: u32) -> f64;
    fn raw_bench_get_item(keys: Vec<String>, iters: u32) -> f64;
    fn raw_bench_json_parse(keys: Vec<String>, iters: u32) -> f64;
}

const ENTRIES: usize = 8;

/// (rounds, operations per round). Each figure is the best round: the machine running
/// the browser may be shared, and the fastest round is the least disturbed one.
fn plan() -> (u32, u32) {
    if cfg!(debug_assertions) {
        (2, 500)
    } else {
        (9, 4_000)
    }
}

/// Deterministic token-like text of `len` base64url characters.
fn token(seed: usize, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = (seed as u64).wrapping_mul(6364136223846793005) ^ 1442695040888963407;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            ALPHABET[(x >> 58) as usize] as char
        })
        .collect()
}

/// A realistic token entry (~3 KB of JSON): JWT-sized tokens, a decoded id token.
fn entry(i: usize) -> Cacheable {
    let id_token = format!(
        "{}.{}.{}",
        token(i, 36),
        token(i + 100, 600),
        token(i + 200, 342)
    );
    let claims = json!({
        "__raw": id_token, "iss": "https://tenant.example.test/", "sub": format!("auth0|user{i}"),
        "aud": "client-id", "iat": 1_800_000_000, "exp": 1_800_036_000, "sid": token(i + 300, 32),
        "nonce": token(i + 400, 43), "name": "Ada Lovelace", "nickname": "ada",
        "picture": "https://s.example.test/avatar.png", "email": "ada@example.test",
        "email_verified": true, "updated_at": "2026-11-01T10:00:00.000Z"
    });
    let mut user = claims.clone();
    for k in ["__raw", "iss", "aud", "iat", "exp", "sid", "nonce"] {
        user.as_object_mut().unwrap().remove(k);
    }
    let v = json!({
        "body": {
            "client_id": "client-id",
            "access_token": format!("{}.{}.{}", token(i + 500, 36), token(i + 600, 500), token(i + 700, 342)),
            "id_token": id_token,
            "scope": "openid profile email offline_access read:messages",
            "expires_in": 86400,
            "token_type": "Bearer",
            "refresh_token": token(i + 800, 48),
            "audience": "https://api.example.test",
            "oauthTokenScope": "openid profile email offline_access read:messages",
            "decodedToken": {
                "encoded": {"header": token(i, 36), "payload": token(i + 100, 600), "signature": token(i + 200, 342)},
                "header": {"alg": "RS256", "typ": "JWT", "kid": token(i + 900, 22)},
                "claims": claims,
                "user": user
            }
        },
        "expiresAt": 1_800_086_400
    });
    Cacheable::from_json(v.to_string().as_bytes()).unwrap()
}

fn now() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

/// Lets the page breathe between phases: the test runner polls the page, and a main thread
/// busy for too long makes it time out.
async fn yield_to_browser() {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

/// A codec that does not parse: `get` through it costs the storage read and the transfer
/// of the bytes into wasm memory, without serde.
#[derive(Debug)]
struct NoParse;

impl ValueCodec for NoParse {
    fn encode(&self, _key: &str, _value: &Cacheable) -> tokencache_core::Result<Vec<u8>> {
        unreachable!("the benchmark only reads through this codec")
    }
    fn decode(&self, _key: &str, bytes: &[u8]) -> tokencache_core::Result<Cacheable> {
        Ok(Cacheable::Manifest(KeyManifestEntry {
            keys: Vec::with_capacity(usize::from(bytes.is_empty())),
        }))
    }
    fn is_text(&self) -> bool {
        true
    }
}

/// Keeps the fastest per-operation time (microseconds) of each measured row.
#[derive(Default)]
struct Rows(Vec<(&'static str, f64)>);

impl Rows {
    fn record(&mut self, name: &'static str, ms: f64, ops: u32) {
        let us = ms * 1000.0 / f64::from(ops);
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, best)) => *best = best.min(us),
            None => self.0.push((name, us)),
        }
    }
    fn get(&self, name: &str) -> f64 {
        self.0.iter().find(|(n, _)| *n == name).unwrap().1
    }
}

const SPA_GET: &str = "get  auth0-spa-js LocalStorageCache";
const RUST_GET: &str = "get  Rust LocalStorageCache";
const RUST_GET_NO_MEMO: &str = "get  Rust LocalStorageCache, read memo off";
const SPA_SET: &str = "set  auth0-spa-js LocalStorageCache";
const RUST_SET: &str = "set  Rust LocalStorageCache";
const RUST_UPDATE: &str = "update Rust LocalStorageCache (Web Lock)";
const RUST_UPDATE_SESSION: &str = "update Rust SessionStorageCache (no lock)";

#[wasm_bindgen_test]
async fn benchmark_rust_local_storage_cache_vs_auth0_spa_js() {
    if let Err(e) = load_auth0().await {
        panic!("cannot load @auth0/auth0-spa-js: {e:?}");
    }
    let (rounds, ops) = plan();
    let cache = LocalStorageCache::new().unwrap();
    cache.clear().unwrap();
    let no_memo = LocalStorageCache::new().unwrap().with_read_memo(false);
    let session: Arc<dyn Cache> = Arc::new(SessionStorageCache::new().unwrap());
    let cache_dyn: Arc<dyn Cache> = Arc::new(cache.clone());
    let no_parse = LocalStorageCache::new()
        .unwrap()
        .with_read_memo(false)
        .with_codec(Arc::new(NoParse));
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let keys: Vec<String> = (0..ENTRIES)
        .map(|i| format!("@@auth0spajs@@::client-id::https://api.example.test::scope{i}"))
        .collect();
    let values: Vec<Cacheable> = (0..ENTRIES).map(entry).collect();
    let values_json: Vec<String> = values.iter().map(|v| v.to_json_string().unwrap()).collect();
    let spa = spa_local_storage_cache();
    let n = ops as usize;
    let mut rows = Rows::default();

    for _ in 0..rounds {
        // set: both write the same values at the same keys.
        yield_to_browser().await;
        let ms = spa_bench_set(&spa, keys.clone(), values_json.clone(), ops);
        rows.record(SPA_SET, ms, ops);
        yield_to_browser().await;
        let t0 = now();
        for i in 0..n {
            let v = values[i % ENTRIES].clone();
            cache.set(&keys[i % ENTRIES], v).await.unwrap();
        }
        rows.record(RUST_SET, now() - t0, ops);

        // update: read, decode, decide, encode, write in one synchronous turn; for
        // localStorage inside the prefix's Web Lock (a round trip to the browser's lock
        // manager each), for sessionStorage without. Fewer of them: they are slower.
        let updates = (ops / 10).max(1);
        for (name, cache) in [(RUST_UPDATE, &cache_dyn), (RUST_UPDATE_SESSION, &session)] {
            yield_to_browser().await;
            let t0 = now();
            for i in 0..updates as usize {
                let v = values[i % ENTRIES].clone();
                let r = cache
                    .update(
                        &keys[i % ENTRIES],
                        None,
                        Box::new(move |_| Update::Put(v.clone())),
                    )
                    .await
                    .unwrap();
                assert!(matches!(r, tokencache_core::Updated::Put(_)));
            }
            rows.record(name, now() - t0, updates);
        }

        // get: both read the same items; auth0-spa-js wrote them last.
        yield_to_browser().await;
        spa_bench_set(&spa, keys.clone(), values_json.clone(), ENTRIES as u32);
        yield_to_browser().await;
        let ms = spa_bench_get(&spa, keys.clone(), ops).unwrap();
        rows.record(SPA_GET, ms, ops);
        yield_to_browser().await;
        let t0 = now();
        let mut hits = 0;
        for i in 0..n {
            let v = cache.get(&keys[i % ENTRIES]).await.unwrap();
            hits += usize::from(v.and_then(|v| v.expires_at()) == Some(1_800_086_400));
        }
        rows.record(RUST_GET, now() - t0, ops);
        assert_eq!(hits, n, "every Rust get must hit");
        // The full read of an item that changed since the last read (or with the memo off):
        // copy the item into wasm memory, parse it.
        yield_to_browser().await;
        let t0 = now();
        let mut hits = 0;
        for i in 0..n {
            let v = no_memo.get(&keys[i % ENTRIES]).await.unwrap();
            hits += usize::from(v.and_then(|v| v.expires_at()) == Some(1_800_086_400));
        }
        rows.record(RUST_GET_NO_MEMO, now() - t0, ops);
        assert_eq!(hits, n, "every Rust get must hit");

        // Where the time goes.
        yield_to_browser().await;
        rows.record(
            "  js:   localStorage.getItem alone",
            raw_bench_get_item(keys.clone(), ops),
            ops,
        );
        yield_to_browser().await;
        rows.record(
            "  js:   JSON.parse alone",
            raw_bench_json_parse(keys.clone(), ops),
            ops,
        );
        yield_to_browser().await;
        let t0 = now();
        for i in 0..n {
            assert!(no_parse.get(&keys[i % ENTRIES]).await.unwrap().is_some());
        }
        rows.record(
            "  rust: get, memo off, codec parses nothing",
            now() - t0,
            ops,
        );
        yield_to_browser().await;
        let t0 = now();
        let mut len = 0;
        for i in 0..n {
            len += storage.get_item(&keys[i % ENTRIES]).unwrap().unwrap().len();
        }
        rows.record(
            "  rust: web-sys Storage::get_item to String",
            now() - t0,
            ops,
        );
        assert!(len > 0);
        let t0 = now();
        for i in 0..n {
            let v = Cacheable::from_json(values_json[i % ENTRIES].as_bytes()).unwrap();
            assert!(v.as_entry().is_some());
        }
        rows.record(
            "  rust: Cacheable::from_json alone (serde)",
            now() - t0,
            ops,
        );
        yield_to_browser().await;
        let t0 = now();
        let mut bytes = 0;
        for i in 0..n {
            bytes += values[i % ENTRIES].to_json().unwrap().len();
        }
        rows.record("  rust: Cacheable::to_json alone (serde)", now() - t0, ops);
        assert!(bytes >= n * values_json[0].len() / 2);
    }

    let build = if cfg!(debug_assertions) {
        "DEBUG build, not representative: run scripts/web-test.sh, which benchmarks a release build"
    } else {
        "release build"
    };
    console_log!(
        "BENCHMARK tokencache-web vs @auth0/auth0-spa-js 2.28.3 LocalStorageCache ({build}; \
         best of {rounds} rounds of {ops} ops, over {ENTRIES} entries of ~{} bytes of JSON)",
        values_json[0].len()
    );
    for (name, us) in &rows.0 {
        console_log!("BENCHMARK   {name:<44} {us:>8.2} us/op");
    }
    console_log!(
        "BENCHMARK get ratio Rust/auth0-spa-js = {:.2}x (target <= 1.5x); read memo off: {:.2}x; \
         set ratio = {:.2}x",
        rows.get(RUST_GET) / rows.get(SPA_GET),
        rows.get(RUST_GET_NO_MEMO) / rows.get(SPA_GET),
        rows.get(RUST_SET) / rows.get(SPA_SET)
    );
    cache.clear().unwrap();
    SessionStorageCache::new().unwrap().clear().unwrap();
}
