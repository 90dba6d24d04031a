//! RedisCache against raw redis-rs on the same server and connection.
//!
//! Run under scripts/redis.sh (it starts the server and sets TOKENCACHE_REDIS_URL):
//!
//! ```text
//! scripts/redis.sh cargo bench -p tokencache-benches --bench redis
//! ```
//!
//! Workloads, each beside its baseline:
//! - `redis_get`: `RedisCache::get` (GET + decode) vs a raw GET of the same bytes;
//! - `redis_set`: `RedisCache::set` (encode + script: SET with TTL + index ZADD) vs a raw SET;
//! - `redis_all_keys`: `all_keys` of a 10-key namespace with 1,000 vs 1,000,000 unrelated
//!   keys in the database;
//! - `redis_get_64_tasks`: 64 tasks sharing the one multiplexed connection, doing cache
//!   gets, vs `redis-benchmark -t get -c 64 -n 200000 -q` against the same server.
//!
//! - `redis_workloads`: the shared workload set of `tokencache_benches` (manager `set`,
//!   `exact_hit`, `subset_N`, `miss_N`) on a `RedisCache`, comparable with the other backends.
//!
//! At the end it prints the ratios against the targets (get <= 1.3x raw, set <= 2x raw,
//! all_keys among 1M <= 2x among 1k, 64-task throughput >= 50% of redis-benchmark).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tokencache_benches::{frozen_clock, Op, Workload, SMALL_SIZE};
use tokencache_core::{
    Cache, Cacheable, Clock, DecodedToken, EntryBody, JsonCodec, SystemClock, ValueCodec,
    WrappedCacheEntry,
};
use tokencache_redis::redis::{self, aio::ConnectionLike};
use tokencache_redis::RedisCache;

const TASKS: usize = 64;
const GETS_PER_TASK: u64 = 50;

fn url() -> String {
    std::env::var("TOKENCACHE_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "TOKENCACHE_REDIS_URL is not set: run `scripts/redis.sh cargo bench -p tokencache-benches --bench redis`"
        )
    })
}

/// A realistic token entry: JWT-sized access and ID tokens, a refresh token, claims.
fn sample_entry(now_s: i64) -> Cacheable {
    let jwt = |tag: &str| {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.{}",
            tag.repeat(400),
            "s".repeat(342)
        )
    };
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "auth0|1234567890".into());
    claims.insert("email".into(), "someone@example.com".into());
    claims.insert("__raw".into(), jwt("i").into());
    let body = EntryBody {
        client_id: Some("client-abc".into()),
        audience: Some("https://api.example.com".into()),
        scope: Some("openid profile email offline_access read:things".into()),
        access_token: Some(jwt("a")),
        expires_in: Some(86_400.0),
        id_token: Some(jwt("i")),
        token_type: Some("Bearer".into()),
        refresh_token: None,
        decoded_token: Some(DecodedToken {
            claims: claims.clone(),
            user: claims,
            ..Default::default()
        }),
        ..Default::default()
    };
    WrappedCacheEntry::new(body, now_s + 86_400).into()
}

async fn raw_get(conn: &mut (impl ConnectionLike + Send), key: &str) -> Vec<u8> {
    redis::cmd("GET")
        .arg(key)
        .query_async::<Vec<u8>>(conn)
        .await
        .expect("raw GET")
}

/// A raw redis-rs SET of `bytes` at `key`.
async fn raw_set(conn: &mut (impl ConnectionLike + Send), key: &str, bytes: &[u8]) {
    redis::cmd("SET")
        .arg(key)
        .arg(bytes)
        .query_async::<()>(conn)
        .await
        .expect("raw SET")
}

/// Adds unrelated keys until the database holds `n` of them (pipelined, 10,000 a batch).
async fn populate_unrelated(conn: &mut (impl ConnectionLike + Send), from: u64, to: u64) {
    let mut i = from;
    while i < to {
        let end = (i + 10_000).min(to);
        let mut pipe = redis::pipe();
        for j in i..end {
            pipe.cmd("SET")
                .arg(format!("bench:unrelated:{j}"))
                .arg("x")
                .ignore();
        }
        pipe.query_async::<()>(conn).await.expect("populate");
        i = end;
    }
}

async fn remove_unrelated(conn: &mut (impl ConnectionLike + Send), n: u64) {
    let mut i = 0;
    while i < n {
        let end = (i + 10_000).min(n);
        let mut cmd = redis::cmd("UNLINK");
        for j in i..end {
            cmd.arg(format!("bench:unrelated:{j}"));
        }
        cmd.query_async::<()>(conn).await.expect("cleanup");
        i = end;
    }
}

async fn gets_on_64_tasks(cache: &Arc<RedisCache>, key: &Arc<str>) {
    let mut handles = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let cache = cache.clone();
        let key = key.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..GETS_PER_TASK {
                let v = cache.get(&key).await.expect("get");
                assert!(v.is_some());
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}

fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// The median (ns) criterion measured for `group/function`.
fn median_ns(dir: &Path, group: &str, function: &str) -> Option<f64> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// `redis-benchmark -t get -c 64 -n 200000 -q` against the server: GET requests per second.
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
    let line = text
        .split(['\r', '\n'])
        .rfind(|l| l.starts_with("GET:") && l.contains("requests per second"))?;
    line.trim_start_matches("GET:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The median over interleaved rounds of `time(a) / time(b)`: both run in the same short
/// windows, alternating which goes first, so that load from other processes on the
/// machine weighs on both alike.
fn paired_ratio<A, FA, B, FB>(rt: &tokio::runtime::Runtime, mut a: A, mut b: B) -> f64
where
    A: FnMut() -> FA,
    FA: std::future::Future<Output = ()>,
    B: FnMut() -> FB,
    FB: std::future::Future<Output = ()>,
{
    const ROUNDS: usize = 41;
    const OPS: usize = 200;
    let mut ratios = Vec::with_capacity(ROUNDS);
    rt.block_on(async {
        for round in 0..ROUNDS {
            let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
            for first in [round % 2 == 0, round % 2 == 1] {
                let t = Instant::now();
                for _ in 0..OPS {
                    if first {
                        a().await
                    } else {
                        b().await
                    }
                }
                if first {
                    ta = t.elapsed();
                } else {
                    tb = t.elapsed();
                }
            }
            ratios.push(ta.as_secs_f64() / tb.as_secs_f64());
        }
    });
    ratios.sort_by(f64::total_cmp);
    ratios[ROUNDS / 2]
}

fn report(name: &str, value: Option<f64>, target: &str, ok: impl Fn(f64) -> bool) {
    match value {
        Some(v) => println!(
            "{name:<44} {v:>8.2}   target {target:<8} {}",
            if ok(v) { "met" } else { "MISSED" }
        ),
        None => println!("{name:<44} not measured (filtered out?)"),
    }
}

fn main() {
    let url = url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ns = format!("bench-{}", std::process::id());
    let cache = Arc::new(
        rt.block_on(RedisCache::connect(&url, &ns))
            .expect("connect to TOKENCACHE_REDIS_URL"),
    );
    let mut conn = cache.connection();
    let now_s = SystemClock.now_ms() / 1000;
    let value = sample_entry(now_s);
    let key: Arc<str> = "@@auth0spajs@@::client-abc::https://api.example.com::openid profile email offline_access read:things".into();
    let bytes = JsonCodec.encode(&key, &value).expect("encode");
    let raw_key = format!("bench:raw:{ns}");
    rt.block_on(async {
        cache.set(&key, value.clone()).await.expect("set");
        redis::cmd("SET")
            .arg(&raw_key)
            .arg(&bytes)
            .query_async::<()>(&mut conn)
            .await
            .expect("raw SET");
    });
    println!("value size: {} bytes", bytes.len());

    // Interleaved measurements of the two per-operation ratios (see `paired_ratio`).
    let paired_get = paired_ratio(
        &rt,
        || async {
            assert!(cache.get(&key).await.expect("get").is_some());
        },
        || {
            let mut conn = conn.clone();
            let raw_key = raw_key.clone();
            async move { assert!(!raw_get(&mut conn, &raw_key).await.is_empty()) }
        },
    );
    let paired_set = paired_ratio(
        &rt,
        || async { cache.set(&key, value.clone()).await.expect("set") },
        || {
            let mut conn = conn.clone();
            let (raw_key, bytes) = (raw_key.clone(), bytes.clone());
            async move { raw_set(&mut conn, &raw_key, &bytes).await }
        },
    );

    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();

    {
        let mut g = c.benchmark_group("redis_get");
        g.bench_function("tokencache", |b| {
            b.to_async(&rt).iter(|| async {
                let v = cache.get(&key).await.expect("get");
                assert!(v.is_some());
            })
        });
        g.bench_function("raw", |b| {
            b.to_async(&rt).iter(|| {
                let mut conn = conn.clone();
                let raw_key = raw_key.clone();
                async move {
                    let v = raw_get(&mut conn, &raw_key).await;
                    assert!(!v.is_empty());
                }
            })
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("redis_set");
        g.bench_function("tokencache", |b| {
            b.to_async(&rt)
                .iter(|| async { cache.set(&key, value.clone()).await.expect("set") })
        });
        g.bench_function("raw", |b| {
            b.to_async(&rt).iter(|| {
                let mut conn = conn.clone();
                let (raw_key, bytes) = (raw_key.clone(), bytes.clone());
                async move { raw_set(&mut conn, &raw_key, &bytes).await }
            })
        });
        g.finish();
    }
    {
        // A namespace of 10 keys among 1,000, then 1,000,000 unrelated keys.
        let small = Arc::new(
            rt.block_on(RedisCache::connect(&url, &format!("{ns}-10")))
                .expect("connect"),
        );
        rt.block_on(async {
            for i in 0..10 {
                small
                    .set(
                        &format!("@@auth0spajs@@::client-{i}::api::read"),
                        value.clone(),
                    )
                    .await
                    .expect("set");
            }
        });
        let mut g = c.benchmark_group("redis_all_keys");
        let mut populated = 0;
        for (name, n) in [("among_1k", 1_000u64), ("among_1m", 1_000_000)] {
            let t = Instant::now();
            rt.block_on(populate_unrelated(&mut conn, populated, n));
            populated = n;
            let dbsize: u64 = rt
                .block_on(redis::cmd("DBSIZE").query_async(&mut conn))
                .expect("DBSIZE");
            println!(
                "{name}: {dbsize} keys in the database (loaded in {:?})",
                t.elapsed()
            );
            g.bench_function(name, |b| {
                b.to_async(&rt).iter(|| async {
                    let keys = small.all_keys().await.expect("all_keys").expect("lists");
                    assert_eq!(keys.len(), 10);
                })
            });
        }
        g.finish();
        rt.block_on(async {
            remove_unrelated(&mut conn, populated).await;
            small.clear_namespace().await.expect("clear");
        });
    }
    {
        let mut g = c.benchmark_group("redis_get_64_tasks");
        g.throughput(Throughput::Elements(TASKS as u64 * GETS_PER_TASK));
        g.bench_function("tokencache", |b| {
            b.to_async(&rt).iter(|| gets_on_64_tasks(&cache, &key))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("redis_workloads");
        for w in [
            Workload::new(Op::Set, SMALL_SIZE),
            Workload::new(Op::ExactHit, SMALL_SIZE),
            Workload::new(Op::Subset, 10),
            Workload::new(Op::Subset, 1_000),
            Workload::new(Op::Miss, 1_000),
        ] {
            let clock: Arc<dyn Clock> = frozen_clock();
            let wcache = Arc::new(
                RedisCache::builder(format!("{ns}-{}", w.name()))
                    .clock(clock.clone())
                    .with_connection(&cache.connection())
                    .expect("namespace"),
            );
            let p = rt
                .block_on(w.prepare_with_clock(wcache.clone(), clock))
                .expect("workload prepared");
            let n = AtomicU64::new(0);
            g.bench_function(format!("{}/manager", w.name()), |b| {
                b.to_async(&rt).iter(|| {
                    let i = n.fetch_add(1, Ordering::Relaxed);
                    let p = &p;
                    async move { p.run_once(i).await.expect("workload operation") }
                })
            });
            rt.block_on(wcache.clear_namespace()).expect("clear");
        }
        g.finish();
    }
    c.final_summary();

    rt.block_on(async {
        cache.clear_namespace().await.expect("clear");
        redis::cmd("DEL")
            .arg(&raw_key)
            .query_async::<()>(&mut conn)
            .await
            .expect("DEL");
    });

    let ratio = |g: &str, a: &str, b: &str| Some(median_ns(&dir, g, a)? / median_ns(&dir, g, b)?);
    let ours_rps = median_ns(&dir, "redis_get_64_tasks", "tokencache")
        .map(|ns| (TASKS as f64 * GETS_PER_TASK as f64) / (ns / 1e9));
    let bench_rps = redis_benchmark_rps(&url);
    println!();
    println!("== RedisCache vs raw redis (medians) ==");
    report(
        "get / raw GET",
        ratio("redis_get", "tokencache", "raw"),
        "<= 1.3",
        |v| v <= 1.3,
    );
    report(
        "set (with index) / raw SET",
        ratio("redis_set", "tokencache", "raw"),
        "<= 2.0",
        |v| v <= 2.0,
    );
    report(
        "all_keys: among 1,000,000 / among 1,000",
        ratio("redis_all_keys", "among_1m", "among_1k"),
        "<= 2.0",
        |v| v <= 2.0,
    );
    report(
        "get / raw GET, interleaved rounds",
        Some(paired_get),
        "<= 1.3",
        |v| v <= 1.3,
    );
    report(
        "set / raw SET, interleaved rounds",
        Some(paired_set),
        "<= 2.0",
        |v| v <= 2.0,
    );
    if let Some(r) = ours_rps {
        println!("64 tasks, one connection: {r:.0} gets/s");
    }
    match bench_rps {
        Some(r) => println!("redis-benchmark -t get -c 64 -n 200000: {r:.0} requests/s"),
        None => println!("redis-benchmark: not run (not installed?)"),
    }
    report(
        "64-task get throughput / redis-benchmark",
        ours_rps.zip(bench_rps).map(|(a, b)| a / b),
        ">= 0.5",
        |v| v >= 0.5,
    );
}
