//! What an entry weighs: its estimated heap bytes, which the capacity bounds. Shared by
//! the moka-based cache and the wasm32 map.

use std::mem::size_of;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokencache_core::{Cacheable, DecodedToken, EntryBody, Error, Result};

/// Bookkeeping per stored entry beyond the key and the value: moka's entry record,
/// access-order and timer-wheel nodes and hash-table slot, the slot moka holds (with the
/// value's cell), the read path's entry, and the node of the ordered key index. Calibrated against the allocation-counting test in `tests/memory.rs`, which
/// measures about this much on top of the key and value bytes counted below.
pub(crate) const ENTRY_OVERHEAD: u64 = 320;

/// Slots in a leaf node of the `BTreeMap` behind `serde_json::Map`.
const BTREE_NODE_SLOTS: usize = 11;

/// The estimated heap bytes of one stored entry: the key once (one shared `Arc<str>`) and
/// its three handles (moka's, the read path's and the ordered index's), the value's heap
/// (see [`value_heap`]) and [`ENTRY_OVERHEAD`].
///
/// It is an estimate, not a measurement: string capacities are exact, JSON maps (claims of a
/// decoded ID token, unknown fields) are counted per slot of a `BTreeMap` node.
pub(crate) fn weigh(key: &str, value: &Cacheable) -> u64 {
    let key_bytes = key.len() + 2 * size_of::<usize>() + 3 * size_of::<Arc<str>>();
    (key_bytes + size_of::<Cacheable>() + value_heap(value)) as u64 + ENTRY_OVERHEAD
}

/// What `value` at `key` weighs ([`weigh`]), or `QuotaExceeded` when that is more than
/// the whole `capacity`: the check of every write, native and wasm32.
pub(crate) fn weigh_within(key: &str, value: &Cacheable, capacity: u64) -> Result<u64> {
    let weight = weigh(key, value);
    if weight > capacity {
        tracing::debug!(weight, capacity, "entry larger than the memory cache");
        return Err(Error::quota_exceeded(format!(
            "an entry of about {weight} bytes does not fit in a memory cache of {capacity} bytes"
        )));
    }
    Ok(weight)
}

/// The heap bytes a value owns, outside the value itself.
fn value_heap(value: &Cacheable) -> usize {
    match value {
        Cacheable::Entry(e) => 2 * size_of::<usize>() + size_of::<EntryBody>() + body_heap(&e.body),
        Cacheable::Manifest(m) => {
            m.keys.capacity() * size_of::<String>()
                + m.keys.iter().map(String::capacity).sum::<usize>()
        }
        Cacheable::IdToken(t) => t.id_token.capacity() + decoded_heap(&t.decoded_token),
    }
}

fn opt_str(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::capacity)
}

fn body_heap(b: &Arc<EntryBody>) -> usize {
    [
        &b.client_id,
        &b.audience,
        &b.scope,
        &b.access_token,
        &b.id_token,
        &b.token_type,
        &b.refresh_token,
        &b.oauth_token_scope,
    ]
    .into_iter()
    .map(opt_str)
    .sum::<usize>()
        + b.decoded_token.as_ref().map_or(0, decoded_heap)
        + map_heap(&b.extra)
}

fn decoded_heap(d: &DecodedToken) -> usize {
    map_heap(&d.claims) + map_heap(&d.user) + map_heap(&d.extra)
}

fn map_heap(m: &Map<String, Value>) -> usize {
    if m.is_empty() {
        return 0;
    }
    let slots = m.len().div_ceil(BTREE_NODE_SLOTS) * BTREE_NODE_SLOTS;
    slots * (size_of::<String>() + size_of::<Value>())
        + m.iter()
            .map(|(k, v)| k.capacity() + json_heap(v))
            .sum::<usize>()
}

fn json_heap(v: &Value) -> usize {
    match v {
        Value::String(s) => s.capacity(),
        Value::Array(a) => {
            a.capacity() * size_of::<Value>() + a.iter().map(json_heap).sum::<usize>()
        }
        Value::Object(m) => map_heap(m),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_core::{CacheEntry, WrappedCacheEntry};

    fn entry(rt: bool, expires_at: i64) -> Cacheable {
        let mut e = CacheEntry::new("c", "a", "s", "x".repeat(1000), 60.0);
        if rt {
            e = e.with_refresh_token("r".repeat(1000));
        }
        Cacheable::Entry(WrappedCacheEntry::new(EntryBody::from(e), expires_at))
    }

    #[test]
    fn weight_counts_the_token_bytes() {
        let small = weigh("k", &entry(false, 0));
        let big = weigh("k", &entry(true, 0));
        assert!(small > 1000 + ENTRY_OVERHEAD, "{small}");
        assert!(big >= small + 1000, "{big} vs {small}");
        // The key's bytes count once: moka, the read path and the index share them.
        assert!(weigh("kkkk", &entry(false, 0)) == small + 3);
    }
}
