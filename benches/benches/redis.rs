//! The shared workloads on the Redis backend: `CacheManager` over `RedisCache`, each
//! beside raw redis-rs commands on the same connection, in the same run:
//!
//! - `redis/exact_hit`: `raw_get` (a GET of the stored bytes) vs `manager`;
//! - `redis/set`: `raw_set` (a SET of the value the manager writes, built and encoded the
//!   same way) vs `manager` (encode, then one script: SET with TTL and the index update);
//! - `redis/subset_N`, `redis/miss_N`, `redis/clear_N`: `manager`;
//! - `redis/all_keys`: listing a 10-key namespace among 1,000 and among 1,000,000
//!   unrelated keys;
//! - `redis/get_64_tasks`: 64 tasks sharing the one multiplexed connection; the report at
//!   the end sets it against `redis-benchmark -t get -c 64` on the same server;
//! - `redis/near_exact_hit`: the exact hit through a manager over a `RedisCache` with its
//!   near cache (`near_manager`) beside the same over the memory backend
//!   (`memory_manager`), each backend's `get` alone (`near_get`, `memory_get`) and a raw
//!   GET of the stored bytes (`raw_get`), all on one runtime; the report gives
//!   near / memory (target: at most 3).
//!
//! Run under scripts/redis.sh, which starts the server and sets TOKENCACHE_REDIS_URL:
//! `scripts/redis.sh cargo bench -p tokencache-benches --bench redis`
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokencache_benches::workloads::{
    frozen_clock, set_key, Op, Prepared, Workload, SMALL_SIZE, SUBSET_SIZES,
};
use tokencache_benches::{bench_workloads, criterion, runtime, set_value, Group};
use tokencache_core::{Cache, JsonCodec, ValueCodec};
use tokencache_memory::MemoryCache;
use tokencache_redis::redis::{self, aio::ConnectionLike};
use tokencache_redis::RedisCache;

const TASKS: usize = 64;
const GETS_PER_TASK: u64 = 50;

fn url() -> String {
    std::env::var("TOKENCACHE_REDIS_URL").unwrap_or_else(|_| {
        panic!("TOKENCACHE_REDIS_URL is not set: run `scripts/redis.sh cargo bench -p tokencache-benches --bench redis`")
    })
}

fn namespace(what: &str) -> String {
    format!("bench-{}-{what}", std::process::id())
}

async fn raw_get(mut conn: impl ConnectionLike + Send, key: &str) -> Vec<u8> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("raw GET")
}

async fn raw_set(mut conn: impl ConnectionLike + Send, key: &str, bytes: &[u8]) {
    redis::cmd("SET")
        .arg(key)
        .arg(bytes)
        .query_async::<()>(&mut conn)
        .await
        .expect("raw SET")
}

fn baseline(
    rt: &tokio::runtime::Runtime,
    g: &mut Group<'_>,
    p: &Prepared,
    cache: &Arc<RedisCache>,
) {
    let conn = cache.connection();
    match p.workload().op {
        Op::ExactHit => {
            let stored = cache.storage_key(&p.key().to_key());
            g.bench_function("raw_get", |b| {
                b.to_async(rt)
                    .iter(|| async { assert!(!raw_get(conn.clone(), &stored).await.is_empty()) })
            });
        }
        Op::Set => {
            let clock = frozen_clock();
            let n = AtomicU64::new(0);
            let raw_key = format!("{}:raw", cache.storage_key(&set_key().to_key()));
            g.bench_function("raw_set", |b| {
                b.to_async(rt).iter(|| {
                    let value = set_value(&*clock, n.fetch_add(1, Ordering::Relaxed));
                    let bytes = JsonCodec
                        .encode(&set_key().to_key(), &value)
                        .expect("encode");
                    let (conn, raw_key) = (conn.clone(), &raw_key);
                    async move { raw_set(conn, raw_key, &bytes).await }
                })
            });
            rt.block_on(async {
                let mut conn = conn.clone();
                redis::cmd("DEL")
                    .arg(&raw_key)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .expect("DEL");
        }
        Op::Subset | Op::Miss | Op::Clear | Op::AllKeys => {}
    }
}

fn workloads(c: &mut Criterion) {
    let rt = runtime();
    let url = url();
    let first = rt
        .block_on(RedisCache::connect(&url, &namespace("w")))
        .expect("connect");
    let mut opened = Vec::new();
    bench_workloads(
        c,
        &rt,
        "redis",
        &Workload::standard_set(&SUBSET_SIZES),
        |clock| {
            let ns = namespace(&format!("w{}", opened.len()));
            let cache = RedisCache::builder(ns)
                .clock(clock)
                .with_connection(&first.connection());
            let cache = Arc::new(cache.expect("namespace"));
            opened.push(cache.clone());
            cache
        },
        |g, p, cache| baseline(&rt, g, p, cache),
    );
    for cache in opened {
        rt.block_on(cache.clear_namespace()).expect("clear");
    }
}

/// Sets (or, with `to < from`, unlinks) the unrelated keys `bench:unrelated:{from..to}`.
async fn unrelated(conn: &mut (impl ConnectionLike + Send), from: u64, to: u64, remove: bool) {
    let mut i = from;
    while i < to {
        let end = (i + 10_000).min(to);
        let mut pipe = redis::pipe();
        for j in i..end {
            let key = format!("bench:unrelated:{j}");
            if remove {
                pipe.cmd("UNLINK").arg(key).ignore();
            } else {
                pipe.cmd("SET").arg(key).arg("x").ignore();
            }
        }
        pipe.query_async::<()>(conn).await.expect("unrelated keys");
        i = end;
    }
}

fn all_keys(c: &mut Criterion) {
    let rt = runtime();
    let cache = rt
        .block_on(RedisCache::connect(&url(), &namespace("list")))
        .expect("connect");
    let mut conn = cache.connection();
    rt.block_on(async {
        for i in 0..10 {
            let key = format!("@@auth0spajs@@::client-{i}::api::read");
            let value = set_value(&*frozen_clock(), i);
            cache.set(&key, value).await.expect("set");
        }
    });
    let mut g = c.benchmark_group("redis/all_keys");
    let mut populated = 0;
    for n in [1_000u64, 1_000_000] {
        rt.block_on(unrelated(&mut conn, populated, n, false));
        populated = n;
        g.bench_with_input(BenchmarkId::new("10_among", n), &n, |b, _| {
            b.to_async(&rt).iter(|| async {
                let keys = cache.all_keys().await.expect("all_keys").expect("lists");
                assert_eq!(keys.len(), 10);
            })
        });
    }
    g.finish();
    rt.block_on(unrelated(&mut conn, 0, populated, true));
    rt.block_on(cache.clear_namespace()).expect("clear");
}

fn get_64_tasks(c: &mut Criterion) {
    let rt = runtime();
    let cache = Arc::new(
        rt.block_on(RedisCache::connect(&url(), &namespace("tasks")))
            .expect("connect"),
    );
    let key: Arc<str> = set_key().to_key().into();
    rt.block_on(cache.set(&key, set_value(&*frozen_clock(), 0)))
        .expect("set");
    let mut g = c.benchmark_group("redis/get_64_tasks");
    g.throughput(Throughput::Elements(TASKS as u64 * GETS_PER_TASK));
    g.bench_function("cache_get", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (cache, key) = (cache.clone(), key.clone());
                    tokio::spawn(async move {
                        for _ in 0..GETS_PER_TASK {
                            assert!(cache.get(&key).await.expect("get").is_some());
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        })
    });
    g.finish();
    rt.block_on(cache.clear_namespace()).expect("clear");
}

/// Times `p`'s operation as function `name` of `g`.
fn bench_prepared(rt: &tokio::runtime::Runtime, g: &mut Group<'_>, name: &str, p: &Prepared) {
    let n = AtomicU64::new(0);
    g.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            async move { p.run_once(i).await.expect("exact hit") }
        })
    });
}

fn near_exact_hit(c: &mut Criterion) {
    let rt = runtime();
    let w = Workload::new(Op::ExactHit, SMALL_SIZE);
    let clock = frozen_clock();
    let memory = Arc::new(MemoryCache::builder().clock(clock.clone()).build());
    let on_memory = rt
        .block_on(w.prepare_with_clock(memory.clone(), clock))
        .expect("memory workload");
    let clock = frozen_clock();
    let near = Arc::new(
        rt.block_on(
            RedisCache::builder(namespace("near"))
                .clock(clock.clone())
                .near_cache(64 * 1024 * 1024)
                .connect(&url()),
        )
        .expect("connect with a near cache"),
    );
    let on_near = rt
        .block_on(w.prepare_with_clock(near.clone(), clock))
        .expect("near workload");
    let key = on_near.key().to_key();
    let stored = near.storage_key(&key);
    let conn = near.connection();

    let mut g = c.benchmark_group("redis/near_exact_hit");
    bench_prepared(&rt, &mut g, "memory_manager", &on_memory);
    bench_prepared(&rt, &mut g, "near_manager", &on_near);
    g.bench_function("memory_get", |b| {
        b.to_async(&rt)
            .iter(|| async { assert!(memory.get(&key).await.expect("get").is_some()) })
    });
    g.bench_function("near_get", |b| {
        b.to_async(&rt)
            .iter(|| async { assert!(near.get(&key).await.expect("get").is_some()) })
    });
    g.bench_function("raw_get", |b| {
        b.to_async(&rt)
            .iter(|| async { assert!(!raw_get(conn.clone(), &stored).await.is_empty()) })
    });
    g.finish();
    let stats = near.near_cache_stats().expect("near cache on");
    println!(
        "near cache: {} hits, {} misses, {} entries ({} of {} bytes)",
        stats.hits, stats.misses, stats.entries, stats.weighted_bytes, stats.max_bytes
    );
    assert!(
        stats.hits > 100 * stats.misses,
        "the near cache's hits were not served from memory: {stats:?}"
    );
    rt.block_on(on_near.check())
        .expect("still the expected answer");
    rt.block_on(on_near.cleanup()).expect("cleanup");
    rt.block_on(near.clear_namespace()).expect("clear");
}

/// The directory criterion writes its estimates to.
fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// The median (ns) criterion measured for `group/function`.
fn median_ns(group: &str, function: &str) -> Option<f64> {
    let dir = criterion_dir()
        .join(group.replace('/', "_"))
        .join(function.replace('/', "_"));
    let text = std::fs::read_to_string(dir.join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// `redis-benchmark -t get -c 64 -n 200000 -q` against the server: GETs per second.
fn redis_benchmark_rps(url: &str) -> Option<f64> {
    let addr = url.trim_start_matches("redis://");
    let addr = addr.rsplit('@').next()?.split('/').next()?;
    let (host, port) = addr.rsplit_once(':')?;
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-h", host, "-p", port, "-t", "get", "-c", "64", "-n", "200000", "-q",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.split(['\r', '\n']).rfind(|l| l.starts_with("GET:"))?;
    line.trim_start_matches("GET:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The ratios against their targets, from the medians criterion just wrote.
fn report(_: &mut Criterion) {
    let ratio = |g: &str, a: &str, b: &str| Some(median_ns(g, a)? / median_ns(g, b)?);
    let line = |name: &str, v: Option<f64>, target: &str| match v {
        Some(v) => println!("{name:<46} {v:>8.2}   target {target}"),
        None => println!("{name:<46} not measured (filtered out?)"),
    };
    println!("\n== RedisCache vs raw redis (medians) ==");
    line(
        "exact_hit: manager / raw GET",
        ratio("redis/exact_hit", "manager", "raw_get"),
        "<= 1.3",
    );
    line(
        "set: manager / raw SET",
        ratio("redis/set", "manager", "raw_set"),
        "<= 2.0",
    );
    line(
        "all_keys: among 1,000,000 / among 1,000",
        ratio("redis/all_keys", "10_among/1000000", "10_among/1000"),
        "<= 2.0",
    );
    let ours = median_ns("redis/get_64_tasks", "cache_get")
        .map(|ns| (TASKS as f64 * GETS_PER_TASK as f64) / (ns / 1e9));
    let theirs = redis_benchmark_rps(&url());
    if let (Some(a), Some(b)) = (ours, theirs) {
        println!("64 tasks, one connection: {a:.0} gets/s; redis-benchmark -c 64: {b:.0}/s");
    }
    line(
        "64-task gets / redis-benchmark",
        ours.zip(theirs).map(|(a, b)| a / b),
        ">= 0.5",
    );
    let g = "redis/near_exact_hit";
    for f in [
        "memory_manager",
        "near_manager",
        "memory_get",
        "near_get",
        "raw_get",
    ] {
        if let Some(ns) = median_ns(g, f) {
            println!("near_exact_hit/{f:<40} {ns:>8.0} ns");
        }
    }
    line(
        "near exact hit: near / memory (manager)",
        ratio(g, "near_manager", "memory_manager"),
        "<= 3.0",
    );
    line(
        "near exact hit: near / memory (backend get)",
        ratio(g, "near_get", "memory_get"),
        "<= 3.0",
    );
    line(
        "near exact hit: raw GET / near (manager)",
        ratio(g, "raw_get", "near_manager"),
        "(how much a hit saves)",
    );
}

criterion_group! {
    name = redis_benches;
    config = criterion().sample_size(50);
    targets = workloads, all_keys, get_64_tasks, near_exact_hit, report
}
criterion_main!(redis_benches);
