//! The small map behind `MemoryCache` on wasm32 (moka panics in the browser). Built
//! natively too, for its unit tests.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use tokencache_core::{Cacheable, Clock, Error, Keys, Result, Retention};

use crate::weight::weigh_within;

struct Slot {
    value: Cacheable,
    /// From when the value may be dropped (ms since the epoch, by
    /// [`Retention::deadline_ms`]); `None`: never by time.
    deadline_ms: Option<i64>,
    weight: u64,
    /// Last write or read, for least-recently-used eviction.
    used: u64,
}

impl Slot {
    fn expired(&self, now_ms: i64) -> bool {
        self.deadline_ms.is_some_and(|d| now_ms >= d)
    }

    /// Not to be evicted for room: it holds a refresh token and has not expired.
    fn protected(&self, now_ms: i64) -> bool {
        self.value.has_refresh_token() && !self.expired(now_ms)
    }
}

/// A size-bounded ordered map with per-entry expiry checked against the clock on read.
pub(crate) struct MapStore {
    entries: BTreeMap<String, Slot>,
    total: u64,
    capacity: u64,
    tick: u64,
    clock: Arc<dyn Clock>,
    retention: Retention,
}

impl MapStore {
    pub(crate) fn new(capacity: u64, clock: Arc<dyn Clock>, retention: Retention) -> Self {
        MapStore {
            entries: BTreeMap::new(),
            total: 0,
            capacity,
            tick: 0,
            clock,
            retention,
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    pub(crate) fn get(&mut self, key: &str) -> Option<Cacheable> {
        let now = self.now_ms();
        let tick = self.next_tick();
        let slot = self.entries.get_mut(key)?;
        if slot.expired(now) {
            self.remove(key);
            return None;
        }
        slot.used = tick;
        Some(slot.value.clone())
    }

    pub(crate) fn set(&mut self, key: &str, value: Cacheable) -> Result<()> {
        let weight = weigh_within(key, &value, self.capacity)?;
        let old = self.entries.get(key).map_or(0, |s| s.weight);
        let over = (self.total - old + weight).saturating_sub(self.capacity);
        if over > 0 {
            self.make_room(key, over)?;
        }
        let slot = Slot {
            deadline_ms: self.retention.deadline_ms(&value),
            value,
            weight,
            used: self.next_tick(),
        };
        if let Some(old) = self.entries.insert(key.to_owned(), slot) {
            self.total -= old.weight;
        }
        self.total += weight;
        Ok(())
    }

    /// Frees at least `needed` bytes, keeping `key`: expired entries first, then the least
    /// recently used, never an entry that holds a refresh token and has not expired. When
    /// that cannot free enough, nothing is removed and the write fails.
    fn make_room(&mut self, key: &str, needed: u64) -> Result<()> {
        let now = self.now_ms();
        let mut candidates: Vec<(bool, u64, u64, &String)> = self
            .entries
            .iter()
            .filter(|(k, s)| k.as_str() != key && !s.protected(now))
            .map(|(k, s)| (!s.expired(now), s.used, s.weight, k))
            .collect();
        candidates.sort_unstable();
        let mut freed = 0;
        let mut chosen = Vec::new();
        for (_, _, weight, k) in candidates {
            if freed >= needed {
                break;
            }
            freed += weight;
            chosen.push(k.clone());
        }
        if freed < needed {
            return Err(Error::quota_exceeded(
                "the memory cache is full of entries that hold refresh tokens",
            ));
        }
        for k in chosen {
            self.remove(&k);
        }
        Ok(())
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.total -= old.weight;
        }
    }

    /// Drops every expired entry.
    pub(crate) fn purge_expired(&mut self) {
        let now = self.now_ms();
        let mut freed = 0;
        self.entries.retain(|_, s| {
            let keep = !s.expired(now);
            if !keep {
                freed += s.weight;
            }
            keep
        });
        self.total -= freed;
    }

    /// The unexpired keys that start with `prefix`, in order.
    pub(crate) fn keys_with_prefix(&self, prefix: &str) -> Keys {
        let now = self.now_ms();
        self.entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, s)| !s.expired(now))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn weighted_size(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokencache_core::{CacheEntry, EntryBody, ErrorKind, ManualClock, WrappedCacheEntry};

    use crate::weight::weigh;

    use super::*;

    const NOW_MS: i64 = 1_700_000_000_000;

    fn store(capacity: u64, retention: Retention) -> (MapStore, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(NOW_MS));
        (MapStore::new(capacity, clock.clone(), retention), clock)
    }

    fn entry(rt: bool, expires_in_s: i64, size: usize) -> Cacheable {
        let mut e = CacheEntry::new("c", "a", "s", "x".repeat(size), 0.0);
        if rt {
            e = e.with_refresh_token("r");
        }
        Cacheable::Entry(WrappedCacheEntry::new(
            EntryBody::from(e),
            NOW_MS / 1000 + expires_in_s,
        ))
    }

    #[test]
    fn expiry_is_checked_on_read() {
        let (mut m, clock) = store(1 << 20, Retention::after(Duration::from_secs(60)));
        m.set("plain", entry(false, 10, 10)).unwrap();
        m.set("rt", entry(true, 10, 10)).unwrap();
        clock.advance(Duration::from_millis(10_999));
        assert!(m.get("plain").is_some(), "still in its expiresAt second");
        clock.advance(Duration::from_millis(1));
        assert!(m.get("plain").is_none());
        assert_eq!(m.keys_with_prefix(""), vec!["rt".to_owned()]);
        clock.advance(Duration::from_secs(59));
        assert!(
            m.get("rt").is_some(),
            "refresh token kept for the retention"
        );
        clock.advance(Duration::from_secs(1));
        assert!(m.get("rt").is_none());
        assert_eq!(m.len(), 0);
        assert_eq!(m.weighted_size(), 0);
    }

    /// The map keeps and drops exactly what the core's policy says (the moka cache has
    /// the same test in `tests/behaviour.rs`).
    #[test]
    fn the_map_follows_the_retention_policy() {
        for retention in [
            Retention::NEVER,
            Retention::after(Duration::ZERO),
            Retention::after(Duration::from_millis(1_500)),
            Retention::after(Duration::MAX),
        ] {
            let (mut m, clock) = store(1 << 20, retention);
            let mut values = Vec::new();
            for rt in [false, true] {
                for expires_in_s in [-3, -1, 0, 1, 3] {
                    let key = format!("{rt} {expires_in_s}");
                    m.set(&key, entry(rt, expires_in_s, 10)).unwrap();
                    values.push((key, entry(rt, expires_in_s, 10)));
                }
            }
            for step_ms in [0, 999, 1, 500, 1_000, 2_000, 10_000] {
                clock.advance_ms(step_ms);
                let now_ms = clock.now_ms();
                for (key, value) in &values {
                    let past = retention.deadline_ms(value).is_some_and(|d| now_ms >= d);
                    assert_eq!(
                        m.get(key).is_some(),
                        !past,
                        "{retention:?} {key} at +{}ms",
                        now_ms - NOW_MS
                    );
                }
            }
        }
    }

    #[test]
    fn refresh_tokens_are_kept_for_ever_by_default() {
        let (mut m, clock) = store(1 << 20, Retention::NEVER);
        m.set("rt", entry(true, 10, 10)).unwrap();
        m.set("manifest", Cacheable::Manifest(Default::default()))
            .unwrap();
        clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
        m.purge_expired();
        assert!(m.get("rt").is_some());
        assert!(m.get("manifest").is_some());
    }

    #[test]
    fn capacity_evicts_least_recently_used_but_not_refresh_tokens() {
        let one = weigh("k1", &entry(false, 100, 1000));
        let (mut m, _) = store(3 * one + one / 2, Retention::NEVER);
        m.set("k1", entry(true, 100, 1000)).unwrap(); // a little heavier: holds an RT
        m.set("k2", entry(false, 100, 1000)).unwrap();
        m.set("k3", entry(false, 100, 1000)).unwrap();
        assert!(m.get("k2").is_some()); // k3 is now the least recently used
        m.set("k4", entry(false, 100, 1000)).unwrap();
        assert_eq!(m.keys_with_prefix(""), ["k1", "k2", "k4"]);
        assert!(m.weighted_size() <= 3 * one + one / 2);

        // Only refresh-token entries left besides the one written: refused, nothing lost.
        let (mut m, _) = store(2 * one + one / 2, Retention::NEVER);
        m.set("k1", entry(true, 100, 1000)).unwrap();
        m.set("k2", entry(true, 100, 1000)).unwrap();
        let e = m.set("k3", entry(false, 100, 1000)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(m.keys_with_prefix(""), ["k1", "k2"]);
        // Replacing an entry in place needs no room.
        m.set("k2", entry(true, 100, 1000)).unwrap();
    }

    #[test]
    fn expired_entries_go_first() {
        let one = weigh("k1", &entry(false, 100, 1000));
        let (mut m, clock) = store(2 * one + one / 2, Retention::after(Duration::ZERO));
        m.set("old-rt", entry(true, 1, 1000)).unwrap();
        m.set("fresh", entry(false, 100, 1000)).unwrap();
        clock.advance(Duration::from_secs(2));
        m.set("new", entry(false, 100, 1000)).unwrap();
        assert_eq!(m.keys_with_prefix(""), ["fresh", "new"]);
    }

    #[test]
    fn an_entry_larger_than_the_capacity_is_refused() {
        let (mut m, _) = store(4000, Retention::NEVER);
        m.set("k", entry(false, 100, 10)).unwrap();
        let e = m.set("k", entry(false, 100, 5000)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        let kept = m.get("k").unwrap();
        assert_eq!(
            kept.as_entry()
                .unwrap()
                .body
                .access_token
                .as_ref()
                .unwrap()
                .len(),
            10
        );
    }

    #[test]
    fn prefix_boundaries() {
        let (mut m, _) = store(1 << 20, Retention::NEVER);
        for k in ["a::b", "a::b::c", "a::b:", "a::c", "a::a", "a::b\u{10ffff}"] {
            m.set(k, Cacheable::Manifest(Default::default())).unwrap();
        }
        assert_eq!(m.keys_with_prefix("a::b::"), ["a::b::c"]);
        assert_eq!(
            m.keys_with_prefix("a::b"),
            ["a::b", "a::b:", "a::b::c", "a::b\u{10ffff}"]
        );
        m.remove("a::b");
        assert_eq!(m.keys_with_prefix("a::b").len(), 3);
        assert_eq!(m.keys_with_prefix("").len(), 5);
    }
}
