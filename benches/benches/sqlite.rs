//! The shared workloads on the SQLite backend: `CacheManager` over an encrypted
//! `SqliteCache` (WAL, `synchronous=FULL`), each beside raw rusqlite doing the same work on
//! a table of the same shape in the same file, with the same settings, in the same run:
//!
//! - `sqlite/exact_hit`: `raw_rusqlite_read` of a blob as large as the encrypted value, on
//!   the calling thread and in `spawn_blocking` (our reads leave the executor too), vs
//!   `manager`;
//! - `sqlite/set`: `raw_rusqlite_upsert` of fresh bytes of that size (as encryption makes
//!   fresh bytes every time), on the calling thread and in `spawn_blocking`, vs `manager`;
//! - `sqlite/subset_N`, `sqlite/miss_N`, `sqlite/clear_N`: `manager`;
//! - `sqlite/keys_with_prefix`: one client's 10 keys among 1,000 and among 100,000 rows.
//!
//! `cargo bench -p tokencache-benches --bench sqlite`
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rusqlite::{params, Connection, OptionalExtension};
use tokencache_benches::workloads::{Op, Prepared, Workload, SUBSET_SIZES};
use tokencache_benches::{bench_workloads, criterion, runtime, Group};
use tokencache_core::{Cache, ValueCodec};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

fn codec() -> Arc<EncryptedCodec> {
    Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [7; 32])),
        "bench",
    ))
}

fn raw_connection(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open");
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .expect("WAL");
    c.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    c.pragma_update(None, "secure_delete", "ON")
        .expect("secure_delete");
    c.execute(
        "CREATE TABLE IF NOT EXISTS raw_entries (
            key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL,
            expires_at INTEGER, has_refresh_token INTEGER NOT NULL DEFAULT 0)",
        [],
    )
    .expect("table");
    c
}

fn raw_read(c: &Connection, key: &str) -> Option<Vec<u8>> {
    c.prepare_cached("SELECT value FROM raw_entries WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .expect("raw read")
}

fn raw_upsert(c: &Connection, key: &str, value: &[u8]) {
    c.prepare_cached(
        "INSERT INTO raw_entries (key, value, expires_at, has_refresh_token)
         VALUES (?1, ?2, 4000000000, 1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value,
             expires_at = excluded.expires_at, has_refresh_token = excluded.has_refresh_token",
    )
    .and_then(|mut s| s.execute(params![key, value]))
    .expect("raw upsert");
}

/// `len` fresh pseudo-random bytes (xorshift64): SQLite skips rewriting pages whose bytes
/// did not change, and encryption never writes the same bytes twice.
fn fresh_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The raw baselines of `exact_hit` and `set`, in the cache's own file.
fn baseline(
    rt: &tokio::runtime::Runtime,
    g: &mut Group<'_>,
    p: &Prepared,
    cache: &Arc<SqliteCache>,
) {
    let key = p.key().to_key();
    let value = rt
        .block_on(cache.get(&key))
        .expect("get")
        .expect("the target is stored");
    let blob = cache.codec().encode(&key, &value).expect("encode");
    let conn = raw_connection(cache.path());
    raw_upsert(&conn, &key, &blob);
    let shared = Arc::new(Mutex::new(raw_connection(cache.path())));
    match p.workload().op {
        Op::ExactHit => {
            g.bench_function("raw_rusqlite_read", |b| {
                b.iter(|| raw_read(&conn, &key).expect("stored"))
            });
            g.bench_function("raw_rusqlite_read_spawn_blocking", |b| {
                b.to_async(rt).iter(|| {
                    let (c, key) = (shared.clone(), key.clone());
                    async move {
                        tokio::task::spawn_blocking(move || {
                            raw_read(&c.lock().expect("connection"), &key).expect("stored")
                        })
                        .await
                        .expect("task")
                    }
                })
            });
        }
        Op::Set => {
            let n = AtomicU64::new(0);
            g.bench_function("raw_rusqlite_upsert", |b| {
                b.iter(|| {
                    let bytes = fresh_bytes(n.fetch_add(1, Ordering::Relaxed), blob.len());
                    raw_upsert(&conn, &key, &bytes)
                })
            });
            g.bench_function("raw_rusqlite_upsert_spawn_blocking", |b| {
                b.to_async(rt).iter(|| {
                    let bytes = fresh_bytes(n.fetch_add(1, Ordering::Relaxed), blob.len());
                    let (c, key) = (shared.clone(), key.clone());
                    async move {
                        tokio::task::spawn_blocking(move || {
                            raw_upsert(&c.lock().expect("connection"), &key, &bytes)
                        })
                        .await
                        .expect("task")
                    }
                })
            });
        }
        Op::Subset | Op::Miss | Op::Clear | Op::AllKeys => {}
    }
}

fn workloads(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let n = AtomicU64::new(0);
    bench_workloads(
        c,
        &rt,
        "sqlite",
        &Workload::standard_set(&SUBSET_SIZES),
        |clock| {
            let path = dir
                .path()
                .join(format!("w{}.db", n.fetch_add(1, Ordering::Relaxed)));
            let open = SqliteCache::builder(path)
                .codec(codec())
                .clock(clock)
                .build();
            Arc::new(rt.block_on(open).expect("open"))
        },
        |g, p, cache| baseline(&rt, g, p, cache),
    );
}

/// A cache holding `total` rows, 10 per client, written straight into its table (the
/// listing reads keys only, so every row holds the same ciphertext).
fn populated(rt: &tokio::runtime::Runtime, path: &Path, total: usize) -> SqliteCache {
    let codec = codec();
    let cache = rt
        .block_on(SqliteCache::open(path, codec.clone()))
        .expect("open");
    let value =
        tokencache_core::Cacheable::from(tokencache_core::KeyManifestEntry { keys: vec![] });
    let blob = codec.encode("x", &value).expect("encode");
    let mut c = Connection::open(path).expect("open");
    let tx = c.transaction().expect("transaction");
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
                 VALUES (?1, ?2, 4000000000, 1)",
            )
            .expect("insert");
        for i in 0..total {
            let key = format!(
                "@@auth0spajs@@::client{}::https://api::scope{}",
                i / 10,
                i % 10
            );
            ins.execute(params![key, blob]).expect("insert");
        }
    }
    tx.commit().expect("commit");
    cache
}

fn listing(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("sqlite/keys_with_prefix");
    for total in [1_000usize, 100_000] {
        let cache = populated(&rt, &dir.path().join(format!("list{total}.db")), total);
        let prefix = "@@auth0spajs@@::client42::";
        let listed = rt.block_on(cache.keys_with_prefix(prefix)).expect("list");
        assert_eq!(listed.map(|k| k.len()), Some(10));
        g.bench_with_input(BenchmarkId::new("10_among", total), &total, |b, _| {
            b.to_async(&rt)
                .iter(|| async { cache.keys_with_prefix(prefix).await.expect("list") })
        });
    }
    g.finish();
}

criterion_group! { name = sqlite; config = criterion().sample_size(30); targets = workloads, listing }
criterion_main!(sqlite);
