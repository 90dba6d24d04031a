//! The shared workloads on the SQLite backend: `CacheManager` over an encrypted
//! `SqliteCache` (WAL, `synchronous=FULL`), each beside raw rusqlite doing the same work on
//! a table of the same shape in the same file, with the same settings, in the same run:
//!
//! - `sqlite/exact_hit`: `raw_rusqlite_read` of a blob as large as the encrypted value, on
//!   the calling thread and in `spawn_blocking`, and `raw_rusqlite_read_decrypt` (the
//!   read on the calling thread, then the decryption and decoding of the value: the floor
//!   of an encrypted read), vs `manager`;
//! - `sqlite/set`: `raw_rusqlite_upsert` of fresh bytes of that size (as encryption makes
//!   fresh bytes every time), on the calling thread and in `spawn_blocking`, vs `cache`
//!   (`SqliteCache::set` of the entry) and `manager`;
//! - `sqlite/subset_N`, `sqlite/miss_N`, `sqlite/clear_N`: `manager`;
//! - `sqlite/keys_with_prefix`: one client's 10 keys among 1,000 and among 100,000 rows;
//! - `sqlite/subset_vs_exact`: `exact/N` and `subset/N` through `CacheManager::get` with
//!   N = 10, 1,000, 100,000 other encrypted entries of the client (written straight into
//!   the table: 100,000 `set`s would take 100,000 fsyncs), beside raw rusqlite floors on
//!   the calling thread: `raw_exact/N`, `raw_subset/N` (the three statements the manager's
//!   lookup by scope asks for, one transaction each) and `raw_subset_one_transaction/N`;
//! - `sqlite/set_interleaved`: `raw_rusqlite_upsert` and `cache` (`SqliteCache::set`), each
//!   timed while the other runs untimed between its iterations, so that both see the same
//!   file, WAL and checkpoint pattern (fsync times drift a lot on a shared disk);
//! - `sqlite/writers_full`: `tasks/1` and `tasks/16`, tasks each setting its own keys
//!   through one `SqliteCache` (`synchronous=FULL`) at the same time; one iteration is one
//!   `set` per task, so the throughput (elements/s) compares directly.
//!
//! `cargo bench -p tokencache-benches --bench sqlite`
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rusqlite::{params, Connection, OptionalExtension};
use tokencache_benches::workloads::{
    self, entry, exact_key, frozen_clock, other_audience, subset_key, Op, Prepared, Workload,
    CLIENT_ID, OTHER_SCOPE, SUBSET_SIZES, TARGET_AUDIENCE, TARGET_SCOPE,
};
use tokencache_benches::{bench_workloads, criterion, runtime, set_value, Group};
use tokencache_core::{
    Cache, CacheKey, Cacheable, Clock, GetOptions, ValueCodec, WrappedCacheEntry,
};
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
    if !matches!(p.workload().op, Op::ExactHit | Op::Set) {
        return; // (the key of the other workloads holds no value to copy)
    }
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
            let codec = cache.codec().clone();
            g.bench_function("raw_rusqlite_read_decrypt", |b| {
                b.iter(|| {
                    let bytes = raw_read(&conn, &key).expect("stored");
                    codec.decode(&key, &bytes).expect("decrypts")
                })
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
            let clock = frozen_clock();
            g.bench_function("cache", |b| {
                b.to_async(rt).iter(|| {
                    let value = set_value(&*clock, n.fetch_add(1, Ordering::Relaxed));
                    let (cache, key) = (cache.clone(), &key);
                    async move { cache.set(key, value).await.expect("set") }
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

/// A cache on `path` holding `others` encrypted entries of the benchmark client at other
/// audiences (as `populate` stores them, but written straight into the table in one
/// transaction), and the target entry stored through its manager.
fn scaled(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    others: usize,
) -> (Arc<SqliteCache>, tokencache_core::CacheManager) {
    let clock = frozen_clock();
    let open = SqliteCache::builder(path)
        .codec(codec())
        .clock(clock.clone())
        .build();
    let cache = Arc::new(rt.block_on(open).expect("open"));
    let now_s = clock.now_s();
    let mut c = Connection::open(path).expect("open");
    let tx = c.transaction().expect("transaction");
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
                 VALUES (?1, ?2, ?3, 1)",
            )
            .expect("insert");
        for i in 0..others {
            let audience = other_audience(i);
            let key = CacheKey::new(CLIENT_ID, Some(&audience), Some(OTHER_SCOPE)).to_key();
            let value: Cacheable =
                WrappedCacheEntry::from_entry(entry(&audience, OTHER_SCOPE, i), now_s)
                    .expect("entry")
                    .into();
            let blob = cache.codec().encode(&key, &value).expect("encode");
            ins.execute(params![key, blob, value.expires_at()])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    let manager = workloads::manager(cache.clone(), clock).expect("manager");
    rt.block_on(manager.set(entry(TARGET_AUDIENCE, TARGET_SCOPE, "target")))
        .expect("set the target");
    (cache, manager)
}

/// The value at `key` in the cache's own table.
fn raw_value(c: &Connection, key: &str) -> Option<Vec<u8>> {
    c.prepare_cached("SELECT value FROM tokencache_entries WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .expect("raw read")
}

/// The keys in `[from, to)` of the cache's own table.
fn raw_range(c: &Connection, from: &str, to: &str) -> Vec<String> {
    c.prepare_cached("SELECT key FROM tokencache_entries WHERE key >= ?1 AND key < ?2 ORDER BY key")
        .and_then(|mut s| {
            s.query_map(params![from, to], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .expect("raw range")
}

/// The floors of the two lookups with raw rusqlite on the calling thread, on the cache's
/// own table: `raw_exact` (a read, the decryption and decoding of the value) and
/// `raw_subset` (the statements `CacheManager::get` asks the cache for by scope: the
/// exact key that misses, the range of the client's and audience's keys, the read and
/// decryption of the one found), each statement its own transaction as separate cache
/// calls are; and `raw_subset_one_transaction`, the same statements in one read
/// transaction (what one cache call for the whole lookup could do).
fn raw_lookups(g: &mut Group<'_>, cache: &SqliteCache, others: usize) {
    let conn = raw_connection(cache.path());
    let codec = cache.codec().clone();
    let (exact, subset) = (exact_key().to_key(), subset_key().to_key());
    let from = format!(
        "{}::{CLIENT_ID}::{TARGET_AUDIENCE}::",
        tokencache_core::DEFAULT_PREFIX
    );
    let to = format!("{};", &from[..from.len() - 1]);
    let lookup = |c: &Connection| {
        assert!(raw_value(c, &subset).is_none());
        let keys = raw_range(c, &from, &to);
        let bytes = raw_value(c, &keys[0]).expect("stored");
        codec.decode(&keys[0], &bytes).expect("decrypts")
    };
    assert_eq!(raw_range(&conn, &from, &to), vec![exact.clone()]);
    g.bench_with_input(BenchmarkId::new("raw_exact", others), &others, |b, _| {
        b.iter(|| {
            let bytes = raw_value(&conn, &exact).expect("stored");
            codec.decode(&exact, &bytes).expect("decrypts")
        })
    });
    g.bench_with_input(BenchmarkId::new("raw_subset", others), &others, |b, _| {
        b.iter(|| lookup(&conn))
    });
    g.bench_with_input(
        BenchmarkId::new("raw_subset_one_transaction", others),
        &others,
        |b, _| {
            b.iter(|| {
                let tx = conn.unchecked_transaction().expect("begin");
                let found = lookup(&tx);
                tx.commit().expect("commit");
                found
            })
        },
    );
}

fn subset_vs_exact(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("sqlite/subset_vs_exact");
    for others in [10usize, 1_000, 100_000] {
        let (cache, manager) = scaled(&rt, &dir.path().join(format!("scale{others}.db")), others);
        let listed = rt.block_on(cache.all_keys()).expect("list");
        assert_eq!(listed.map(|k| k.len()), Some(others + 1));
        for (name, key) in [("exact", exact_key()), ("subset", subset_key())] {
            let found = rt
                .block_on(manager.get(&key, GetOptions::default()))
                .expect("get")
                .expect("the target is found");
            assert_eq!(found.access_token.as_deref(), Some("at-target"));
            g.bench_with_input(BenchmarkId::new(name, others), &others, |b, _| {
                b.to_async(&rt).iter(|| async {
                    manager
                        .get(&key, GetOptions::default())
                        .await
                        .expect("get")
                        .expect("found")
                })
            });
        }
        raw_lookups(&mut g, &cache, others);
        let stats = cache.stats();
        eprintln!(
            "sqlite/subset_vs_exact/{others}: {} reads on the calling task, {} on the \
             cache's threads, {} pauses after a slow read",
            stats.inline_reads, stats.worker_reads, stats.inline_pauses
        );
    }
    g.finish();
}

fn set_interleaved(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = frozen_clock();
    let path = dir.path().join("interleaved.db");
    let open = SqliteCache::builder(&path)
        .codec(codec())
        .synchronous(tokencache_sqlite::Synchronous::Full)
        .build();
    let cache = rt.block_on(open).expect("open");
    let key = workloads::set_key().to_key();
    rt.block_on(cache.set(&key, set_value(&*clock, 0)))
        .expect("set");
    let len = cache
        .codec()
        .encode(&key, &set_value(&*clock, 0))
        .expect("encode")
        .len();
    let conn = raw_connection(&path);
    let n = AtomicU64::new(1);
    let fresh = || fresh_bytes(n.fetch_add(1, Ordering::Relaxed), len);
    let value = || set_value(&*clock, n.fetch_add(1, Ordering::Relaxed));
    let mut g = c.benchmark_group("sqlite/set_interleaved");
    g.bench_function("raw_rusqlite_upsert", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (cache, conn, key) = (&cache, &conn, &key);
            let (fresh, value) = (&fresh, &value);
            async move {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    cache.set(key, value()).await.expect("set");
                    let bytes = fresh();
                    let t = Instant::now();
                    raw_upsert(conn, key, &bytes);
                    timed += t.elapsed();
                }
                timed
            }
        })
    });
    g.bench_function("cache", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (cache, conn, key) = (&cache, &conn, &key);
            let (fresh, value) = (&fresh, &value);
            async move {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    raw_upsert(conn, key, &fresh());
                    let v = value();
                    let t = Instant::now();
                    cache.set(key, v).await.expect("set");
                    timed += t.elapsed();
                }
                timed
            }
        })
    });
    g.finish();
}

fn writers(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = frozen_clock();
    let open = SqliteCache::builder(dir.path().join("writers.db"))
        .codec(codec())
        .synchronous(tokencache_sqlite::Synchronous::Full)
        .build();
    let cache = Arc::new(rt.block_on(open).expect("open"));
    let mut g = c.benchmark_group("sqlite/writers_full");
    for tasks in [1usize, 16] {
        g.throughput(Throughput::Elements(tasks as u64));
        g.bench_with_input(BenchmarkId::new("tasks", tasks), &tasks, |b, &tasks| {
            b.to_async(&rt).iter_custom(|iters| {
                let (cache, clock) = (cache.clone(), clock.clone());
                async move {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..tasks)
                        .map(|t| {
                            let (cache, clock) = (cache.clone(), clock.clone());
                            tokio::spawn(async move {
                                for i in 0..iters {
                                    let key = format!("writer-{t}::key-{}", i % 8);
                                    cache.set(&key, set_value(&*clock, i)).await.expect("set");
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await.expect("writer task");
                    }
                    start.elapsed()
                }
            })
        });
    }
    g.finish();
    let stats = cache.stats();
    eprintln!(
        "sqlite/writers_full: {} writes in {} transactions, at most {} in one",
        stats.queued_writes, stats.batches, stats.largest_batch
    );
}

criterion_group! {
    name = sqlite;
    config = criterion().sample_size(30);
    targets = workloads, listing, subset_vs_exact, set_interleaved, writers
}
criterion_main!(sqlite);
