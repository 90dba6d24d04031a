//! Test support for the integration tests of tokencache-core (golden, differential).
#![allow(dead_code)] // each test binary uses a part

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::Value;
use tokencache_core::{
    async_trait, decode_or_miss, Cache, Cacheable, JsonCodec, Keys, Result, ValueCodec,
};

/// A cache that keeps every value as a JSON string (as localStorage does), so the stored
/// state is exactly what a browser would hold. With `listing`, `all_keys` returns the keys
/// in insertion order (re-setting a key keeps its place; remove + set moves it to the end),
/// the order of a JavaScript `Map`, of `Object.keys` over string keys and of
/// auth0-spa-js's `InMemoryCache`. Without, the manager keeps a key manifest.
#[derive(Debug)]
pub struct JsonMapCache {
    listing: bool,
    entries: Mutex<Vec<(String, String)>>,
}

impl JsonMapCache {
    /// A cache that lists its keys.
    pub fn listing() -> Self {
        JsonMapCache {
            listing: true,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// A cache that cannot list its keys.
    pub fn non_listing() -> Self {
        JsonMapCache {
            listing: false,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// A separate cache holding the same keys and values, in the same order, that lists
    /// its keys exactly when this one does.
    pub fn copy(&self) -> Self {
        JsonMapCache {
            listing: self.listing,
            entries: Mutex::new(self.entries.lock().unwrap().clone()),
        }
    }

    /// Stores raw JSON text at `key`, as another writer (auth0-spa-js) would.
    pub fn put_raw(&self, key: &str, json: &str) {
        let mut e = self.entries.lock().unwrap();
        match e.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = json.to_owned(),
            None => e.push((key.to_owned(), json.to_owned())),
        }
    }

    /// The stored JSON at `key`, parsed.
    pub fn raw_json(&self, key: &str) -> Option<Value> {
        let e = self.entries.lock().unwrap();
        e.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| serde_json::from_str(v).expect("stored text is JSON"))
    }

    /// Every stored key with its parsed JSON value.
    pub fn snapshot(&self) -> serde_json::Map<String, Value> {
        let e = self.entries.lock().unwrap();
        e.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::from_str(v).expect("stored text is JSON"),
                )
            })
            .collect()
    }
}

#[async_trait]
impl Cache for JsonMapCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let text = {
            let e = self.entries.lock().unwrap();
            e.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        };
        match text {
            Some(t) => decode_or_miss(&JsonCodec, key, t.as_bytes()),
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let bytes = JsonCodec.encode(key, &value)?;
        self.put_raw(key, &String::from_utf8(bytes).expect("JSON is UTF-8"));
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.entries.lock().unwrap().retain(|(k, _)| k != key);
        Ok(())
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        if !self.listing {
            return Ok(None);
        }
        let e = self.entries.lock().unwrap();
        Ok(Some(e.iter().map(|(k, _)| k.clone()).collect()))
    }

    fn lists_keys(&self) -> bool {
        self.listing
    }
}

/// `tests/fixtures/<name>`, as text.
pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `tests/fixtures/<name>`, parsed.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}
