//! SqliteCache on real files: listing, purge, rotation, integrity, migration, secrecy on disk.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokencache_core::{
    Cache, CacheEntry, Cacheable, Clock, EntryBody, ErrorKind, JsonCodec, KeyManifestEntry,
    ManualClock, Retention, ValueCodec, WrappedCacheEntry,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::{SqliteCache, MAX_BUSY_TIMEOUT, SCHEMA_VERSION};

const NOW_MS: i64 = 1_700_000_000_000;
const NOW_S: i64 = NOW_MS / 1000;

fn ring(id: u32, byte: u8) -> KeyRing {
    KeyRing::new(DataKey::new(id, [byte; 32]))
}

fn encrypted(keys: KeyRing) -> Arc<dyn ValueCodec> {
    Arc::new(EncryptedCodec::new(keys, "sqlite-tests"))
}

fn entry(at: &str, rt: Option<&str>, expires_at: i64) -> Cacheable {
    let mut e = CacheEntry::new("client", "https://api", "read", at, 3600.0);
    if let Some(rt) = rt {
        e = e.with_refresh_token(rt);
    }
    WrappedCacheEntry::new(EntryBody::from(e), expires_at).into()
}

async fn open(path: &Path, codec: Arc<dyn ValueCodec>, clock: Arc<dyn Clock>) -> SqliteCache {
    SqliteCache::builder(path)
        .codec(codec)
        .clock(clock)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_listing_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let cache = SqliteCache::open(&path, encrypted(ring(1, 7)))
        .await
        .unwrap();
    assert!(cache.lists_keys());
    assert_eq!(
        cache.all_keys().await.unwrap().map(Vec::from),
        Some(Vec::<String>::new())
    );
    assert_eq!(cache.get("missing").await.unwrap(), None);

    let keys = ["p::a::x", "p::a::y", "p::ab::x", "p::b::x", "q::a::x"];
    for k in keys.iter().rev() {
        cache.set(k, entry(k, None, NOW_S)).await.unwrap();
    }
    for k in keys {
        assert_eq!(cache.get(k).await.unwrap(), Some(entry(k, None, NOW_S)));
    }
    assert_eq!(
        cache.all_keys().await.unwrap().unwrap(),
        keys.map(String::from).to_vec()
    );
    assert_eq!(
        cache.keys_with_prefix("p::a::").await.unwrap().unwrap(),
        vec!["p::a::x", "p::a::y"]
    );
    assert_eq!(
        cache.keys_with_prefix("p::a").await.unwrap().unwrap(),
        vec!["p::a::x", "p::a::y", "p::ab::x"]
    );
    // Overwrite, then remove (twice: a missing key is not an error).
    cache
        .set("p::a::x", entry("new", Some("rt"), NOW_S + 5))
        .await
        .unwrap();
    assert_eq!(
        cache.get("p::a::x").await.unwrap(),
        Some(entry("new", Some("rt"), NOW_S + 5))
    );
    cache.remove("p::a::x").await.unwrap();
    cache.remove("p::a::x").await.unwrap();
    assert_eq!(cache.get("p::a::x").await.unwrap(), None);
    assert_eq!(cache.all_keys().await.unwrap().unwrap().len(), 4);

    // A second handle on the same file sees the same data.
    drop(cache);
    let again = SqliteCache::open(&path, encrypted(ring(1, 7)))
        .await
        .unwrap();
    assert_eq!(
        again.get("q::a::x").await.unwrap(),
        Some(entry("q::a::x", None, NOW_S))
    );

    // The file is in WAL mode and readable by its owner only.
    let c = Connection::open(&path).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}

#[test]
fn prefix_queries_use_the_primary_key_index() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.db");
    rt.block_on(SqliteCache::open(&path, Arc::new(JsonCodec)))
        .unwrap();
    let c = Connection::open(&path).unwrap();
    for sql in [
        "EXPLAIN QUERY PLAN SELECT key FROM tokencache_entries WHERE key >= ?1 AND key < ?2 ORDER BY key",
        "EXPLAIN QUERY PLAN SELECT value FROM tokencache_entries WHERE key = ?1",
    ] {
        let plan: Vec<String> = c
            .prepare(sql)
            .unwrap()
            .query_map(
                rusqlite::params_from_iter(["a", "b"].iter().take(sql.matches('?').count())),
                |r| r.get::<_, String>(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(plan.contains("USING") && plan.contains("INDEX"), "{plan}");
        assert!(plan.contains("key>?") || plan.contains("key=?"), "{plan}");
        assert!(!plan.contains("SCAN"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}

mod prefix_model {
    use super::*;
    use proptest::prelude::*;

    /// Characters around the edges of UTF-8 byte order and of the successor computation.
    fn key_char() -> impl Strategy<Value = char> {
        prop::sample::select(vec![
            'a',
            'b',
            ':',
            ';',
            '\u{0}',
            '\u{7F}',
            '\u{80}',
            'é',
            'ê',
            '\u{7FF}',
            '\u{800}',
            '\u{D7FF}',
            '\u{E000}',
            '\u{FFFF}',
            '\u{10000}',
            '\u{10FFFF}',
        ])
    }

    fn key() -> impl Strategy<Value = String> {
        prop::collection::vec(key_char(), 0..5).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn keys_with_prefix_equals_a_filter(keys in prop::collection::btree_set(key(), 0..20), prefix in key()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            rt.block_on(async {
                let cache = SqliteCache::open(dir.path().join("p.db"), Arc::new(JsonCodec)).await.unwrap();
                let v = Cacheable::from(KeyManifestEntry { keys: vec![] });
                for k in &keys {
                    cache.set(k, v.clone()).await.unwrap();
                }
                let want: Vec<String> = keys.iter().filter(|k| k.starts_with(&prefix)).cloned().collect();
                let got = cache.keys_with_prefix(&prefix).await.unwrap().unwrap();
                prop_assert_eq!(got, want);
                let all = cache.all_keys().await.unwrap().unwrap();
                prop_assert_eq!(all, keys.iter().cloned().collect::<Vec<_>>());
                Ok(())
            })?;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_expired_entries_and_keeps_refresh_tokens_until_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let path = dir.path().join("purge.db");
    let cache = open(&path, encrypted(ring(1, 1)), clock.clone()).await;
    cache
        .set("expired", entry("a", None, NOW_S - 1))
        .await
        .unwrap();
    cache
        .set("expires-now", entry("b", None, NOW_S))
        .await
        .unwrap();
    cache
        .set("valid", entry("c", None, NOW_S + 60))
        .await
        .unwrap();
    cache
        .set("expired-rt", entry("d", Some("rt"), NOW_S - 1))
        .await
        .unwrap();
    cache
        .set("empty-rt", entry("e", Some(""), NOW_S - 1))
        .await
        .unwrap();
    cache
        .set("manifest", KeyManifestEntry { keys: vec![] }.into())
        .await
        .unwrap();

    // Expired strictly before now, no refresh token ("" counts as none).
    assert_eq!(cache.purge().await.unwrap(), 2);
    assert_eq!(
        cache.all_keys().await.unwrap().unwrap(),
        vec!["expired-rt", "expires-now", "manifest", "valid"]
    );
    clock.advance(Duration::from_secs(3600 * 24 * 365));
    // Default retention: refresh-token entries stay forever; manifests too.
    assert_eq!(cache.purge().await.unwrap(), 2);
    assert_eq!(
        cache.all_keys().await.unwrap().unwrap(),
        vec!["expired-rt", "manifest"]
    );
    drop(cache);

    // With a retention: kept while expires_at >= now - retention.
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let cache = SqliteCache::builder(dir.path().join("retention.db"))
        .codec(encrypted(ring(1, 1)))
        .clock(clock.clone())
        .refresh_token_retention(Retention::after(Duration::from_secs(100)))
        .build()
        .await
        .unwrap();
    cache
        .set("rt", entry("d", Some("rt"), NOW_S - 1))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(99));
    assert_eq!(cache.purge().await.unwrap(), 0);
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.purge().await.unwrap(), 1);
    assert_eq!(cache.get("rt").await.unwrap(), None);
}

/// `purge` deletes exactly the rows the core's policy says are past their deadline, for
/// several retentions and clock positions, with sub-second clocks and retentions too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_follows_the_retention_policy() {
    let dir = tempfile::tempdir().unwrap();
    let retentions = [
        Retention::NEVER,
        Retention::after(Duration::ZERO),
        Retention::after(Duration::from_millis(1_500)),
        Retention::after(Duration::from_secs(60)),
        Retention::after(Duration::MAX),
    ];
    for (i, retention) in retentions.into_iter().enumerate() {
        let clock = Arc::new(ManualClock::new(NOW_MS));
        let cache = SqliteCache::builder(dir.path().join(format!("policy-{i}.db")))
            .plaintext()
            .clock(clock.clone())
            .refresh_token_retention(retention)
            .build()
            .await
            .unwrap();
        let mut values = vec![(
            "manifest".to_owned(),
            Cacheable::from(KeyManifestEntry { keys: vec![] }),
        )];
        for rt in [None, Some(""), Some("rt")] {
            for expires_at in [NOW_S - 90, NOW_S - 2, NOW_S - 1, NOW_S, NOW_S + 1] {
                values.push((format!("{rt:?} {expires_at}"), entry("at", rt, expires_at)));
            }
        }
        for step_ms in [0, 500, 499, 1, 1_000, 2_000, 60_000] {
            for (key, value) in &values {
                cache.set(key, value.clone()).await.unwrap();
            }
            clock.advance_ms(step_ms);
            let now_ms = clock.now_ms();
            let kept: Vec<&str> = values
                .iter()
                .filter(|(_, v)| retention.deadline_ms(v).is_none_or(|d| now_ms < d))
                .map(|(k, _)| k.as_str())
                .collect();
            let purged = cache.purge().await.unwrap();
            assert_eq!(
                purged,
                values.len() - kept.len(),
                "{retention:?} at {now_ms}"
            );
            let mut kept = kept;
            kept.sort();
            assert_eq!(
                cache.all_keys().await.unwrap().unwrap(),
                kept,
                "{retention:?} at {now_ms}"
            );
        }
    }
}

/// A busy timeout SQLite cannot take is a configuration error, not a panic in a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_busy_timeout_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    for timeout in [
        Duration::MAX,
        MAX_BUSY_TIMEOUT + Duration::from_millis(1),
        Duration::from_secs(u64::from(u32::MAX)),
    ] {
        let err = SqliteCache::builder(dir.path().join("busy.db"))
            .plaintext()
            .busy_timeout(timeout)
            .build()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{timeout:?}: {err}");
    }
    // The largest one SQLite takes works.
    let cache = SqliteCache::builder(dir.path().join("busy.db"))
        .plaintext()
        .busy_timeout(MAX_BUSY_TIMEOUT)
        .build()
        .await
        .unwrap();
    cache
        .set("k", KeyManifestEntry { keys: vec![] }.into())
        .await
        .unwrap();
    assert_eq!(
        cache.all_keys().await.unwrap().map(Vec::from),
        Some(vec!["k".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_moves_every_row_to_the_active_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotate.db");
    let old = SqliteCache::open(&path, encrypted(ring(1, 1)))
        .await
        .unwrap();
    for i in 0..50 {
        old.set(&format!("k{i:02}"), entry(&format!("at{i}"), None, NOW_S))
            .await
            .unwrap();
    }
    assert_eq!(
        old.rotate().await.unwrap().rewritten,
        0,
        "nothing under an old key"
    );

    let mut keys = ring(1, 1);
    keys.rotate(DataKey::new(2, [2; 32])).unwrap();
    let new = SqliteCache::open(&path, encrypted(keys)).await.unwrap();
    new.set("k00", entry("fresh", None, NOW_S)).await.unwrap(); // already under key 2
    assert_eq!(
        new.get("k10").await.unwrap(),
        Some(entry("at10", None, NOW_S))
    );
    assert_eq!(new.rotate().await.unwrap().rewritten, 49);
    assert_eq!(new.rotate().await.unwrap().rewritten, 0);

    let c = Connection::open(&path).unwrap();
    let ids: Vec<Option<u32>> = c
        .prepare("SELECT value FROM tokencache_entries")
        .unwrap()
        .query_map([], |r| {
            Ok(EncryptedCodec::key_id_of(&r.get::<_, Vec<u8>>(0)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids.len(), 50);
    assert!(ids.iter().all(|id| *id == Some(2)), "{ids:?}");

    // Key 2 alone reads everything now.
    let only_new = SqliteCache::open(&path, encrypted(ring(2, 2)))
        .await
        .unwrap();
    assert_eq!(
        only_new.get("k49").await.unwrap(),
        Some(entry("at49", None, NOW_S))
    );
    // The old key alone reads nothing: an integrity error, not a miss.
    assert_eq!(
        old.get("k49").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reports_values_it_cannot_read_and_rewrites_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotate-bad.db");
    let old = SqliteCache::open(&path, encrypted(ring(1, 1)))
        .await
        .unwrap();
    old.set("a", entry("a", None, NOW_S)).await.unwrap();
    old.set("b", entry("b", None, NOW_S)).await.unwrap();
    // "z" was written under a key the new ring does not hold.
    let stranger = SqliteCache::open(&path, encrypted(ring(9, 9)))
        .await
        .unwrap();
    stranger.set("z", entry("z", None, NOW_S)).await.unwrap();
    let z_before = raw_values(&path)
        .into_iter()
        .find(|(k, _)| k == "z")
        .unwrap();

    let mut keys = ring(1, 1);
    keys.rotate(DataKey::new(2, [2; 32])).unwrap();
    let new = SqliteCache::open(&path, encrypted(keys)).await.unwrap();
    let done = new.rotate().await.unwrap();
    assert_eq!(done.rewritten, 2);
    assert_eq!(done.unreadable, vec!["z".to_owned()]);
    // The unreadable value is left byte for byte; the others moved to the new key.
    let after = raw_values(&path);
    assert!(after.contains(&z_before));
    let only_new = SqliteCache::open(&path, encrypted(ring(2, 2)))
        .await
        .unwrap();
    assert!(only_new.get("a").await.unwrap().is_some());
    assert!(only_new.get("b").await.unwrap().is_some());
    assert_eq!(new.rotate().await.unwrap().rewritten, 0);
}

fn raw_values(path: &Path) -> Vec<(String, Vec<u8>)> {
    Connection::open(path)
        .unwrap()
        .prepare("SELECT key, value FROM tokencache_entries ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_an_error_and_garbage_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tamper.db");
    let cache = SqliteCache::open(&path, encrypted(ring(1, 1)))
        .await
        .unwrap();
    cache.set("b", entry("at-b", None, NOW_S)).await.unwrap();
    let c = Connection::open(&path).unwrap();
    // Flip a bit of b's ciphertext.
    let mut v: Vec<u8> = c
        .query_row(
            "SELECT value FROM tokencache_entries WHERE key = 'b'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    v[30] ^= 0x10;
    c.execute(
        "UPDATE tokencache_entries SET value = ?1 WHERE key = 'b'",
        [&v],
    )
    .unwrap();
    let err = cache.get("b").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(!err.to_string().contains("at-b"));
    // A row copied onto another key fails too.
    c.execute(
        "INSERT INTO tokencache_entries (key, value) SELECT 'copy', value FROM tokencache_entries WHERE key = 'b'",
        [],
    )
    .unwrap();
    assert_eq!(
        cache.get("copy").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );

    // Without encryption, a value that is not a cache value is a miss.
    let plain = SqliteCache::open(dir.path().join("plain.db"), Arc::new(JsonCodec))
        .await
        .unwrap();
    plain.set("x", entry("at", None, NOW_S)).await.unwrap();
    Connection::open(plain.path())
        .unwrap()
        .execute(
            "UPDATE tokencache_entries SET value = x'7b7d' WHERE key = 'x'",
            [],
        )
        .unwrap();
    assert_eq!(plain.get("x").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_a_version_0_file_and_refuses_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE app_settings (k TEXT, v TEXT); INSERT INTO app_settings VALUES ('theme', 'dark');")
            .unwrap();
    }
    let cache = SqliteCache::open(&path, encrypted(ring(1, 1)))
        .await
        .unwrap();
    cache.set("k", entry("at", None, NOW_S)).await.unwrap();
    let c = Connection::open(&path).unwrap();
    let v: u32 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let theme: String = c
        .query_row("SELECT v FROM app_settings WHERE k = 'theme'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(theme, "dark");

    c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = SqliteCache::open(&path, encrypted(ring(1, 1)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);

    // Not a database at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let err = SqliteCache::open(&junk, Arc::new(JsonCodec))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected);
}

/// Every file SQLite keeps for the database: the database, the WAL and the shared memory.
fn database_files(path: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let p = format!("{}{suffix}", path.display());
            std::fs::read(&p).ok().map(|b| (p, b))
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn write_overwrite_delete(cache: &SqliteCache) {
    for i in 0..300 {
        let key = format!("@@auth0spajs@@::client{}::api::read", i % 100);
        let at = format!("PLAINTEXT-ACCESS-TOKEN-{i:05}-zzzz");
        let rt = format!("PLAINTEXT-REFRESH-TOKEN-{i:05}-zzzz");
        cache.set(&key, entry(&at, Some(&rt), NOW_S)).await.unwrap();
    }
    for i in 0..50 {
        cache
            .remove(&format!("@@auth0spajs@@::client{i}::api::read"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_bytes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.db");
    let cache = SqliteCache::open(&path, encrypted(ring(1, 3)))
        .await
        .unwrap();
    write_overwrite_delete(&cache).await;
    let scan = |stage: &str| {
        let files = database_files(&path);
        assert!(
            files.iter().any(|(p, _)| p.ends_with("-wal")),
            "{stage}: WAL exists"
        );
        for (p, bytes) in files {
            assert!(!find(&bytes, b"PLAINTEXT-"), "{stage}: token bytes in {p}");
            assert!(!find(&bytes, b"TOKEN-0"), "{stage}: token bytes in {p}");
        }
    };
    scan("before checkpoint");
    Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    scan("after checkpoint");
    assert_eq!(cache.all_keys().await.unwrap().unwrap().len(), 50);

    // The scan does find plaintext when there is some: the same workload without
    // encryption leaves the tokens in the files.
    let plain_path = dir.path().join("plain.db");
    let plain = SqliteCache::open(&plain_path, Arc::new(JsonCodec))
        .await
        .unwrap();
    write_overwrite_delete(&plain).await;
    let found = database_files(&plain_path)
        .iter()
        .any(|(_, b)| find(b, b"PLAINTEXT-ACCESS-TOKEN-00299"));
    assert!(found, "control: plaintext is visible without encryption");
}
