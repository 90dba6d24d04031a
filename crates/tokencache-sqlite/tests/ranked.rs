//! The lookup by scope subset over `SqliteCache::best_with_prefix` (real files, real
//! ciphertext): it reads the candidates' plaintext metadata in one statement and decrypts
//! the chosen entry only, answers what the listing lookup answers (checked against
//! `MapCache`, which has no such method), and falls back to reading every candidate when
//! the chosen value does not authenticate or does not match its metadata.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rusqlite::Connection;
use tokencache_conformance::MapCache;
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Cacheable, GetOptions, ManualClock, Result,
    ValueCodec,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

const NOW_MS: i64 = 1_700_000_000_000;
const API: &str = "https://api";

/// An encrypting codec that counts its decryptions.
#[derive(Debug)]
struct Counting {
    inner: EncryptedCodec,
    decodes: Arc<AtomicUsize>,
}

impl ValueCodec for Counting {
    fn encode(&self, key: &str, value: &Cacheable) -> Result<Vec<u8>> {
        self.inner.encode(key, value)
    }
    fn decode(&self, key: &str, bytes: &[u8]) -> Result<Cacheable> {
        self.decodes.fetch_add(1, Ordering::Relaxed);
        self.inner.decode(key, bytes)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clock: Arc<ManualClock>,
    cache: Arc<SqliteCache>,
    manager: CacheManager,
    decodes: Arc<AtomicUsize>,
}

fn codec(id: u32, byte: u8) -> EncryptedCodec {
    EncryptedCodec::new(KeyRing::new(DataKey::new(id, [byte; 32])), "tokencache")
}

async fn fixture(inline_reads: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ranked.db");
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let decodes = Arc::new(AtomicUsize::new(0));
    let codec = Counting {
        inner: codec(1, 1),
        decodes: decodes.clone(),
    };
    let cache = SqliteCache::builder(&path)
        .codec(Arc::new(codec))
        .clock(clock.clone())
        .inline_reads(inline_reads)
        .build()
        .await
        .unwrap();
    let cache = Arc::new(cache);
    let manager = CacheManager::builder(cache.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    Fixture {
        _dir: dir,
        path,
        clock,
        cache,
        manager,
        decodes,
    }
}

fn entry(scope: &str, expires_in: f64, rt: bool) -> CacheEntry {
    let e = CacheEntry::new("app", API, scope, format!("at {scope}"), expires_in);
    if rt {
        e.with_refresh_token(format!("rt {scope}"))
    } else {
        e
    }
}

fn key(scope: &str) -> CacheKey {
    CacheKey::new("app", Some(API), Some(scope))
}

fn storage_key(scope: &str) -> String {
    key(scope).to_key()
}

/// The access token `manager` finds for `scope`.
async fn lookup(manager: &CacheManager, scope: &str) -> Option<String> {
    manager
        .get(&key(scope), GetOptions::default())
        .await
        .unwrap()
        .and_then(|b| b.access_token.clone())
}

/// Twelve candidates for "read" (and entries of other scopes, audiences and clients): the
/// best is neither the first nor the last key.
fn candidates() -> Vec<CacheEntry> {
    let mut entries = vec![
        entry("openid read", 30.0, true), // expires first
        entry("read write", 3600.0, true),
        entry("email profile read", 3600.0, true),
        entry("openid", 3600.0, true), // no candidate: lacks "read"
    ];
    for i in 0..8 {
        entries.push(entry(&format!("read s{i} t{i}"), 3600.0, i % 2 == 0));
    }
    let mut elsewhere = CacheEntry::new("app", "https://other", "read", "at other", 3600.0);
    elsewhere.refresh_token = Some("rt other".into());
    entries.push(elsewhere);
    entries.push(CacheEntry::new("app2", API, "read", "at app2", 3600.0));
    entries
}

async fn store(manager: &CacheManager, entries: Vec<CacheEntry>) {
    for e in entries {
        manager.set(e).await.unwrap();
    }
}

/// The reference: the same entries in a `MapCache` (no `best_with_prefix`: the manager
/// lists the keys and reads every candidate), at the same time.
async fn reference(entries: Vec<CacheEntry>, clock: Arc<ManualClock>) -> CacheManager {
    let manager = CacheManager::builder(Arc::new(MapCache::new()))
        .clock(clock)
        .build()
        .unwrap();
    store(&manager, entries).await;
    manager
}

async fn check_one_decryption_per_lookup(inline_reads: bool) {
    let f = fixture(inline_reads).await;
    store(&f.manager, candidates()).await;
    let map = reference(candidates(), f.clock.clone()).await;
    for (scope, advance_s) in [("read", 0), ("read", 31), ("openid", 0), ("write read", 0)] {
        f.clock.advance(std::time::Duration::from_secs(advance_s));
        let before = f.decodes.load(Ordering::Relaxed);
        let found = lookup(&f.manager, scope).await;
        let decrypted = f.decodes.load(Ordering::Relaxed) - before;
        assert_eq!(
            found,
            lookup(&map, scope).await,
            "{scope} after {advance_s} s"
        );
        assert!(found.is_some(), "{scope}");
        // The exact key misses, then one range read and one decryption. ("openid" is
        // stored: an exact hit, one decryption too.)
        assert_eq!(decrypted, 1, "{scope} after {advance_s} s: {found:?}");
    }
    assert_eq!(f.manager.skipped_values(), 0);
    let reads = f.cache.stats();
    if inline_reads {
        // Served on the calling task; a read that overruns its time budget (a loaded
        // machine) is handed to a worker by design, so not every one need be inline.
        assert!(reads.inline_reads > reads.worker_reads, "{reads:?}");
    } else {
        assert_eq!(reads.inline_reads, 0, "{reads:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_lookup_decrypts_the_chosen_entry_only() {
    check_one_decryption_per_lookup(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_lookup_on_the_worker_threads_decrypts_the_chosen_entry_only() {
    check_one_decryption_per_lookup(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_with_prefix_lists_every_key_with_its_metadata_and_reads_the_best() {
    let f = fixture(true).await;
    store(&f.manager, candidates()).await;
    let prefix = format!("{}::app::{API}::", tokencache_core::DEFAULT_PREFIX);
    // Rank: the length of the key (the shortest is "openid"'s).
    let rank = |k: &str, _: tokencache_core::ValueMeta| Some(k.len() as u64);
    let ranked = f
        .cache
        .best_with_prefix(&prefix, &rank)
        .await
        .unwrap()
        .expect("SQLite ranks");
    let mut keys = f
        .cache
        .keys_with_prefix(&prefix)
        .await
        .unwrap()
        .unwrap()
        .to_strings();
    keys.sort();
    let listed: Vec<String> = ranked.listed.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(listed, keys, "every key of the prefix, in key order");
    for (k, meta) in &ranked.listed {
        let value = f.cache.get(k).await.unwrap().unwrap();
        assert_eq!(*meta, tokencache_core::ValueMeta::of(&value), "{k}");
    }
    let (i, value) = ranked.best.expect("a best key");
    assert_eq!(ranked.listed[i].0, storage_key("openid"));
    let value = value.unwrap().unwrap();
    assert_eq!(
        value.as_entry().unwrap().body.access_token.as_deref(),
        Some("at openid")
    );
    // No candidate: no value read.
    let none = |_: &str, _: tokencache_core::ValueMeta| None;
    let ranked = f.cache.best_with_prefix(&prefix, &none).await.unwrap();
    let ranked = ranked.unwrap();
    assert!(ranked.best.is_none());
    assert_eq!(ranked.listed.len(), keys.len());
}

/// A manager over the same file whose values are encrypted under a key id the fixture's
/// ring does not hold: what it writes does not authenticate for the fixture.
async fn stranger(f: &Fixture) -> CacheManager {
    let cache = SqliteCache::builder(&f.path)
        .codec(Arc::new(codec(9, 9)))
        .clock(f.clock.clone())
        .build()
        .await
        .unwrap();
    CacheManager::builder(Arc::new(cache))
        .clock(f.clock.clone())
        .build()
        .unwrap()
}

/// Runs `sql` with the given key on the cache's file, as another program could.
fn tamper(path: &std::path::Path, sql: &str, key: &str) {
    let n = Connection::open(path).unwrap().execute(sql, [key]).unwrap();
    assert_eq!(n, 1, "{sql}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_value_that_does_not_match_its_metadata_sends_the_lookup_to_every_candidate() {
    let f = fixture(true).await;
    store(
        &f.manager,
        vec![
            entry("read a", 3600.0, true),
            entry("read b c", 3600.0, true),
            entry("read d e f", 3600.0, true),
        ],
    )
    .await;
    // The best candidate's row says it holds no refresh token: its value says otherwise.
    tamper(
        &f.path,
        "UPDATE tokencache_entries SET has_refresh_token = 0 WHERE key = ?1",
        &storage_key("read a"),
    );
    let before = f.decodes.load(Ordering::Relaxed);
    assert_eq!(
        lookup(&f.manager, "read").await.as_deref(),
        Some("at read a")
    );
    // The chosen one, then all three.
    assert_eq!(f.decodes.load(Ordering::Relaxed) - before, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_value_that_does_not_authenticate_is_skipped_and_counted() {
    let f = fixture(true).await;
    store(
        &f.manager,
        vec![
            entry("read b c", 3600.0, true),
            entry("read d e f", 3600.0, true),
        ],
    )
    .await;
    // Another writer, under a key id this ring does not hold, stores the best candidate.
    let stranger = stranger(&f).await;
    stranger.set(entry("read a", 3600.0, true)).await.unwrap();
    assert_eq!(
        lookup(&f.manager, "read").await.as_deref(),
        Some("at read b c")
    );
    // Read once by the ranked read, once by the listing lookup: counted there.
    assert_eq!(f.manager.skipped_values(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_candidates_without_a_refresh_token_are_removed_by_their_metadata() {
    let f = fixture(true).await;
    store(
        &f.manager,
        vec![
            entry("read a", 10.0, false),
            entry("read b", 10.0, false),
            entry("read c d", 3600.0, true),
            entry("openid", 10.0, false), // no candidate: stays
        ],
    )
    .await;
    // A stranger's expired entry without a refresh token: its metadata says "remove",
    // its value does not authenticate, so the removal skips it.
    let stranger = stranger(&f).await;
    stranger.set(entry("read e", 10.0, false)).await.unwrap();
    f.clock.advance(std::time::Duration::from_secs(11));
    assert_eq!(
        lookup(&f.manager, "read").await.as_deref(),
        Some("at read c d")
    );
    let mut left = f.cache.all_keys().await.unwrap().unwrap().to_strings();
    left.sort();
    assert_eq!(
        left,
        vec![
            storage_key("openid"),
            storage_key("read c d"),
            storage_key("read e")
        ]
    );
    assert_eq!(f.manager.skipped_values(), 1);
}
