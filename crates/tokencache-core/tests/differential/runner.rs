//! The Rust side: a scenario document run through our `CacheManager`, over a cache that
//! keeps every value as a JSON string as the harness's does.

use std::sync::Arc;

use futures::executor::block_on;
use serde_json::{json, Map, Value};
use tokencache_core::{
    CacheEntry, CacheKey, CacheManager, Clock, DecodedToken, GetOptions, ManualClock,
};

use crate::common::JsonMapCache;
use crate::scenario::Outcome;

/// Our manager part-way through a scenario: ops are applied one at a time, so the
/// scenario generator can look at the state it has produced so far.
pub struct RustRun {
    cache: Arc<JsonMapCache>,
    clock: Arc<ManualClock>,
    manager: CacheManager,
    client_id: String,
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

impl RustRun {
    /// A fresh run for the document's `mode`, `startMs` and `clientId` (its ops are not
    /// applied).
    pub fn start(doc: &Value) -> RustRun {
        let cache = if doc["mode"] == "manifest" {
            JsonMapCache::non_listing()
        } else {
            JsonMapCache::listing()
        };
        let clock = ManualClock::new(doc["startMs"].as_i64().expect("startMs"));
        RustRun::with(cache, clock, s(&doc["clientId"]).unwrap_or("c1"))
    }

    fn with(cache: JsonMapCache, clock: ManualClock, client_id: &str) -> RustRun {
        let (cache, clock) = (Arc::new(cache), Arc::new(clock));
        let manager = CacheManager::builder(cache.clone())
            .clock(clock.clone())
            .client_id(client_id)
            .build()
            .unwrap();
        RustRun {
            cache,
            clock,
            manager,
            client_id: client_id.to_owned(),
        }
    }

    /// An independent run in the same state (stored values, key order, time).
    pub fn fork(&self) -> RustRun {
        RustRun::with(
            self.cache.copy(),
            ManualClock::new(self.clock.now_ms()),
            &self.client_id,
        )
    }

    /// Applies one op; its result as auth0-spa-js would give it (`null` for nothing), or
    /// `{"error": kind}`.
    pub fn apply(&self, op: &Value) -> Value {
        match block_on(self.call(op)) {
            Ok(v) => v,
            Err(e) => json!({ "error": e.kind().as_str() }),
        }
    }

    /// Every stored key with its JSON value.
    pub fn store(&self) -> Map<String, Value> {
        self.cache.snapshot()
    }

    async fn call(&self, op: &Value) -> tokencache_core::Result<Value> {
        let m = &self.manager;
        let key = || {
            CacheKey::new(
                s(&op["clientId"]).unwrap(),
                s(&op["audience"]),
                s(&op["scope"]),
            )
        };
        Ok(match s(&op["op"]).unwrap() {
            "set" => {
                let entry: CacheEntry = serde_json::from_value(op["entry"].clone()).unwrap();
                m.set(entry).await?;
                Value::Null
            }
            "get" => {
                let opts = GetOptions {
                    expiry_adjustment_seconds: op["leeway"].as_i64().unwrap_or(0),
                    use_mrrt: op["useMrrt"].as_bool().unwrap_or(false),
                    cache_only: op["cacheMode"] == "cache-only",
                };
                match m.get(&key(), opts).await? {
                    Some(body) => serde_json::to_value(&*body).unwrap(),
                    None => Value::Null,
                }
            }
            "setIdToken" => {
                let decoded: DecodedToken =
                    serde_json::from_value(op["decodedToken"].clone()).unwrap();
                m.set_id_token(
                    s(&op["clientId"]).unwrap(),
                    s(&op["idToken"]).unwrap(),
                    decoded,
                )
                .await?;
                Value::Null
            }
            "getIdToken" => match m.get_id_token(&key()).await? {
                Some(t) => serde_json::to_value(&t).unwrap(),
                None => Value::Null,
            },
            "remove" => {
                m.remove(
                    s(&op["clientId"]).unwrap(),
                    s(&op["audience"]),
                    s(&op["scope"]),
                )
                .await?;
                Value::Null
            }
            "clear" => {
                m.clear(s(&op["clientId"])).await?;
                Value::Null
            }
            "stripRefreshToken" => {
                m.strip_refresh_token(s(&op["refreshToken"]).unwrap())
                    .await?;
                Value::Null
            }
            "updateEntry" => {
                m.update_entry(
                    s(&op["oldRefreshToken"]).unwrap(),
                    s(&op["newRefreshToken"]).unwrap(),
                    s(&op["clientId"]).unwrap(),
                    op["useMrrt"].as_bool().unwrap_or(false),
                )
                .await?;
                Value::Null
            }
            "refreshTokensByAudience" => json!(
                m.refresh_tokens_by_audience(
                    s(&op["audience"]).unwrap(),
                    s(&op["clientId"]).unwrap()
                )
                .await?
            ),
            "advance" => {
                // lib.mjs: nowMs += Math.round(seconds * 1000) — the same f64 arithmetic.
                let seconds = op["seconds"].as_f64().unwrap();
                self.clock.advance_ms((seconds * 1000.0).round() as i64);
                Value::Null
            }
            other => panic!("unknown op {other}"),
        })
    }
}

/// Runs a whole scenario document through our `CacheManager`.
pub fn run_rust(doc: &Value) -> Outcome {
    let run = RustRun::start(doc);
    let results = doc["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| run.apply(op))
        .collect();
    Outcome {
        results,
        store: run.store(),
    }
}
