//! SQLite backend: the encrypted cache against raw rusqlite doing the same work on the
//! same kind of table with the same settings, in the same run.
//!
//! Targets: encrypted get within 1.5x of a raw point read of a blob of the same size;
//! encrypted set within 1.5x of a raw upsert with the same durability; listing one
//! client's 10 keys among 100,000 entries within 2x of the same among 1,000.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rusqlite::{params, Connection, OptionalExtension};
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Cacheable, DecodedToken, EntryBody, GetOptions,
    ValueCodec, WrappedCacheEntry,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

const DDL: &str = "CREATE TABLE IF NOT EXISTS raw_entries (
    key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL,
    expires_at INTEGER, has_refresh_token INTEGER NOT NULL DEFAULT 0)";
const KEY: &str = "@@auth0spajs@@::client0::https://api::openid profile read";

/// A directory removed when dropped (the benches package has no `tempfile`).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("tokencache-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn codec() -> Arc<EncryptedCodec> {
    Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [7; 32])),
        "bench",
    ))
}

/// A realistic entry: JWT-sized access and ID tokens, a refresh token, decoded claims.
fn cache_entry(client: &str, scope: &str) -> CacheEntry {
    let mut claims = serde_json::Map::new();
    for (k, v) in [
        ("sub", "auth0|0123456789abcdef"),
        ("name", "Benchmark User"),
        ("email", "bench@example.com"),
        ("iss", "https://tenant.example.auth0.com/"),
    ] {
        claims.insert(k.into(), v.into());
    }
    claims.insert("__raw".into(), "i".repeat(900).into());
    let decoded = DecodedToken {
        claims: claims.clone(),
        user: claims,
        extra: Default::default(),
    };
    CacheEntry::new(client, "https://api", scope, "a".repeat(800), 86_400.0)
        .with_refresh_token("r".repeat(48))
        .with_id_token("i".repeat(900), decoded)
}

fn stored_value(client: &str) -> Cacheable {
    WrappedCacheEntry::new(
        EntryBody::from(cache_entry(client, "openid profile read")),
        4_000_000_000,
    )
    .into()
}

fn raw_connection(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.pragma_update(None, "secure_delete", "ON").unwrap();
    c.execute(DDL, []).unwrap();
    c
}

fn raw_get(c: &Connection, key: &str) -> Option<Vec<u8>> {
    c.prepare_cached("SELECT value FROM raw_entries WHERE key = ?1")
        .unwrap()
        .query_row([key], |r| r.get(0))
        .optional()
        .unwrap()
}

fn raw_upsert(c: &Connection, key: &str, value: &[u8]) {
    c.prepare_cached(
        "INSERT INTO raw_entries (key, value, expires_at, has_refresh_token)
         VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value,
             expires_at = excluded.expires_at, has_refresh_token = excluded.has_refresh_token",
    )
    .unwrap()
    .execute(params![key, value, 4_000_000_000i64])
    .unwrap();
}

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// A thread that owns a connection and runs the jobs it receives.
struct Worker(std::sync::mpsc::Sender<Job>);

impl Worker {
    fn start(conn: Connection) -> Worker {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for job in rx {
                job(&conn);
            }
        });
        Worker(tx)
    }

    async fn get(&self, key: &'static str) -> Vec<u8> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0
            .send(Box::new(move |c| {
                let _ = tx.send(raw_get(c, key).unwrap());
            }))
            .unwrap();
        rx.await.unwrap()
    }
}

fn config(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("sqlite");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

fn get_and_set(c: &mut Criterion) {
    let rt = runtime();
    let dir = TempDir::new("getset");
    let path = dir.path().join("bench.db");
    let codec = codec();
    let cache = rt
        .block_on(SqliteCache::open(&path, codec.clone()))
        .unwrap();
    let value = stored_value("client0");
    rt.block_on(cache.set(KEY, value.clone())).unwrap();
    // A raw table in the same file, holding a blob as large as the encrypted value.
    let blob = codec.encode(KEY, &value).unwrap();
    let raw = raw_connection(&path);
    raw_upsert(&raw, KEY, &blob);
    let raw_shared = Arc::new(Mutex::new(raw_connection(&path)));
    eprintln!("stored value: {} bytes encrypted", blob.len());

    let mut g = config(c);
    g.bench_function("get/encrypted", |b| {
        b.to_async(&rt)
            .iter(|| async { cache.get(KEY).await.unwrap().unwrap() })
    });
    g.bench_function("get/raw_rusqlite", |b| {
        b.iter(|| raw_get(&raw, KEY).unwrap())
    });
    g.bench_function("get/raw_rusqlite_spawn_blocking", |b| {
        b.to_async(&rt).iter(|| {
            let c = raw_shared.clone();
            async move {
                tokio::task::spawn_blocking(move || raw_get(&c.lock().unwrap(), KEY).unwrap())
                    .await
                    .unwrap()
            }
        })
    });
    // Where the time of an encrypted get goes besides SQLite: decrypting, then JSON.
    let json = value.to_json().unwrap();
    g.bench_function("codec/decrypt_and_decode", |b| {
        b.iter(|| codec.decode(KEY, &blob).unwrap())
    });
    g.bench_function("codec/json_decode_only", |b| {
        b.iter(|| Cacheable::from_json(&json).unwrap())
    });
    // The other way to keep SQLite off the executor: one dedicated thread fed by a channel.
    let worker = Worker::start(raw_connection(&path));
    g.bench_function("get/raw_rusqlite_worker_thread", |b| {
        b.to_async(&rt).iter(|| worker.get(KEY))
    });
    g.bench_function("set/encrypted", |b| {
        b.to_async(&rt)
            .iter(|| async { cache.set(KEY, value.clone()).await.unwrap() })
    });
    // The raw upserts write entirely new bytes each time, as encryption does (fresh nonce,
    // fresh ciphertext): SQLite skips rewriting cells and overflow pages whose bytes did
    // not change, and with an unchanged page, the WAL write and sync.
    let counter = Arc::new(AtomicU64::new(1));
    let fresh_blob = |blob: &[u8]| {
        let mut x = counter
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        blob.iter()
            .map(|_| {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>()
    };
    g.bench_function("set/raw_rusqlite", |b| {
        b.iter(|| raw_upsert(&raw, KEY, &fresh_blob(&blob)))
    });
    g.bench_function("set/raw_rusqlite_spawn_blocking", |b| {
        b.to_async(&rt).iter(|| {
            let c = raw_shared.clone();
            let blob = fresh_blob(&blob);
            async move {
                tokio::task::spawn_blocking(move || raw_upsert(&c.lock().unwrap(), KEY, &blob))
                    .await
                    .unwrap()
            }
        })
    });
    g.finish();
}

/// A cache holding `total` entries, 10 per client, written straight into its table.
fn populated(rt: &tokio::runtime::Runtime, path: &Path, total: usize) -> SqliteCache {
    let codec = codec();
    let cache = rt.block_on(SqliteCache::open(path, codec.clone())).unwrap();
    let mut c = Connection::open(path).unwrap();
    let tx = c.transaction().unwrap();
    {
        let blob = codec.encode("x", &stored_value("x")).unwrap();
        let mut ins = tx
            .prepare(
                "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
                 VALUES (?1, ?2, 4000000000, 1)",
            )
            .unwrap();
        for i in 0..total {
            let key = format!(
                "@@auth0spajs@@::client{}::https://api::scope{}",
                i / 10,
                i % 10
            );
            // The listing benchmark reads keys only; the values need not decrypt.
            ins.execute(params![key, blob]).unwrap();
        }
    }
    tx.commit().unwrap();
    cache
}

fn listing(c: &mut Criterion) {
    let rt = runtime();
    let dir = TempDir::new("listing");
    let mut g = config(c);
    for total in [1_000usize, 100_000] {
        let cache = populated(&rt, &dir.path().join(format!("list{total}.db")), total);
        let prefix = "@@auth0spajs@@::client42::";
        assert_eq!(
            rt.block_on(cache.keys_with_prefix(prefix))
                .unwrap()
                .unwrap()
                .len(),
            10
        );
        g.bench_with_input(
            BenchmarkId::new("keys_with_prefix_10_among", total),
            &total,
            |b, _| {
                b.to_async(&rt)
                    .iter(|| async { cache.keys_with_prefix(prefix).await.unwrap() })
            },
        );
    }
    g.finish();
}

fn manager(c: &mut Criterion) {
    let rt = runtime();
    let dir = TempDir::new("manager");
    let mut g = config(c);
    for others in [100usize, 1_000] {
        let cache = Arc::new(
            rt.block_on(SqliteCache::open(
                dir.path().join(format!("manager{others}.db")),
                codec(),
            ))
            .unwrap(),
        );
        let manager = CacheManager::new(cache).unwrap();
        rt.block_on(async {
            for i in 0..others {
                manager
                    .set(cache_entry(&format!("other{i}"), "openid profile read"))
                    .await
                    .unwrap();
            }
            manager
                .set(cache_entry("client0", "openid profile read write"))
                .await
                .unwrap();
        });
        let exact = CacheKey::new(
            "client0",
            Some("https://api"),
            Some("openid profile read write"),
        );
        let subset = CacheKey::new("client0", Some("https://api"), Some("read"));
        g.bench_with_input(
            BenchmarkId::new("manager_get_exact", others),
            &others,
            |b, _| {
                b.to_async(&rt).iter(|| async {
                    manager
                        .get(&exact, GetOptions::default())
                        .await
                        .unwrap()
                        .unwrap()
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("manager_get_scope_subset", others),
            &others,
            |b, _| {
                b.to_async(&rt).iter(|| async {
                    manager
                        .get(&subset, GetOptions::default())
                        .await
                        .unwrap()
                        .unwrap()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, get_and_set, listing, manager);
criterion_main!(benches);
