//! `CacheManager::get_or_refresh` on the memory and SQLite backends, in the same run as
//! the baseline it is held to:
//!
//! - `<backend>/refresh_fast_path`: `get_or_refresh` of a key whose access token is valid
//!   (one `get`, no lock; its refresh function is never called) vs `get` of the same key
//!   with the same options (the target: at most 1.05 times the `get`; the sizes of both
//!   futures are printed);
//! - `<backend>/refresh_lock`: `try_acquire` and `release` of the refresh lock the manager
//!   uses (memory: an in-process lock; SQLite: the lease row in the file);
//! - `<backend>/forced_refresh`: a forced `get_or_refresh` whose refresh function answers
//!   at once: the lock, the fenced write of the new entry, the family rewrite, the release.
//!
//! Wall time on a shared machine drifts with its load between criterion's functions, so
//! each backend also prints a *paired* ratio: batches of `get` and of `get_or_refresh`
//! timed alternately (ABBA), the median of the per-round
//! ratios. For instruction counts (stable under load), run the binary under callgrind with
//! `TOKENCACHE_REFRESH_INSTRUCTIONS=<get|get_or_refresh>:<N>` (memory
//! backend, N calls), once with N and once with 0, and divide the difference by N.
//!
//! `cargo bench -p tokencache-benches --bench refresh`
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use tokencache_benches::workloads::{frozen_clock, Op, RefreshOp, Workload, SMALL_SIZE};
use tokencache_benches::{criterion, current_thread_runtime, runtime};
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Clock, GetOptions, RefreshError, RefreshOptions,
    RefreshRequest,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_memory::MemoryCache;
use tokencache_sqlite::SqliteCache;

/// The refresh function of the fast path: never called (a valid token is cached).
async fn never(_req: RefreshRequest) -> Result<CacheEntry, RefreshError> {
    Err(RefreshError::Fatal("the fast path must not refresh".into()))
}

/// The fast-path variants the paired ratio and the instruction counts compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Get,
    GetOrRefresh,
}

impl Read {
    fn parse(s: &str) -> Option<Read> {
        match s {
            "get" => Some(Read::Get),
            "get_or_refresh" => Some(Read::GetOrRefresh),
            _ => None,
        }
    }
}

/// `n` reads of `key` as `how`, awaited one after the other; the time they took.
async fn reads(manager: &CacheManager, key: &CacheKey, how: Read, n: u64) -> Duration {
    let opts = RefreshOptions::default();
    let t = Instant::now();
    for _ in 0..n {
        let body = match how {
            Read::Get => manager
                .get(black_box(key), opts.get)
                .await
                .map(Option::unwrap),
            Read::GetOrRefresh => manager.get_or_refresh(black_box(key), opts, never).await,
        };
        black_box(body.expect("a valid access token"));
    }
    t.elapsed()
}

/// The median (and quartiles) over `rounds` of `time(b) / time(a)`, `batch` calls each,
/// in ABBA order so that a drifting load weighs on both alike.
fn paired_ratio(
    rt: &tokio::runtime::Runtime,
    manager: &CacheManager,
    key: &CacheKey,
    (a, b): (Read, Read),
    rounds: usize,
    batch: u64,
) -> [f64; 3] {
    let mut ratios: Vec<f64> = rt.block_on(async {
        let mut out = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let (ta, tb) = if r % 2 == 0 {
                let ta = reads(manager, key, a, batch).await;
                (ta, reads(manager, key, b, batch).await)
            } else {
                let tb = reads(manager, key, b, batch).await;
                (reads(manager, key, a, batch).await, tb)
            };
            out.push(tb.as_secs_f64() / ta.as_secs_f64());
        }
        out
    });
    ratios.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    [at(0.25), at(0.5), at(0.75)]
}

/// The three groups on caches from `open` (each given the frozen clock its manager uses).
fn bench_backend(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    backend: &str,
    mut open: impl FnMut(Arc<dyn Clock>) -> Arc<dyn Cache>,
) {
    // The fast path: the exact-hit workload's manager and key, read both ways.
    let clock: Arc<dyn Clock> = frozen_clock();
    let p = rt
        .block_on(
            Workload::new(Op::ExactHit, SMALL_SIZE).prepare_with_clock(open(clock.clone()), clock),
        )
        .expect("workload prepared");
    let (manager, key) = (p.manager(), p.key());
    let get = GetOptions::default();
    let opts = RefreshOptions::default().get(get);
    let fast = rt
        .block_on(manager.get_or_refresh(key, opts, never))
        .expect("a valid access token, no refresh");
    assert_eq!(fast.access_token.as_deref(), Some("at-target"));
    println!(
        "{backend}: future sizes: get {} B, get_or_refresh {} B",
        std::mem::size_of_val(&manager.get(key, get)),
        std::mem::size_of_val(&manager.get_or_refresh(key, opts, never)),
    );

    let mut g = c.benchmark_group(format!("{backend}/refresh_fast_path"));
    g.bench_function("get", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(manager.get(black_box(key), get).await.expect("get")) })
    });
    g.bench_function("get_or_refresh", |b| {
        b.to_async(rt).iter(|| async {
            black_box(
                manager
                    .get_or_refresh(black_box(key), opts, never)
                    .await
                    .expect("fast path"),
            )
        })
    });
    g.finish();
    let batch = if backend == "memory" { 2_000 } else { 100 };
    let [q1, median, q3] =
        paired_ratio(rt, manager, key, (Read::Get, Read::GetOrRefresh), 41, batch);
    println!(
        "{backend}/refresh_fast_path paired: get_or_refresh / get = {median:.3} (quartiles {q1:.3}-{q3:.3}; 41 ABBA rounds of {batch} calls)"
    );
    rt.block_on(p.check()).expect("still the target");
    rt.block_on(p.cleanup()).expect("cleanup");

    // The lock, and a whole refresh.
    for op in RefreshOp::ALL {
        let clock: Arc<dyn Clock> = frozen_clock();
        let p = rt
            .block_on(op.prepare_with_clock(open(clock.clone()), clock))
            .expect("refresh workload prepared");
        let n = AtomicU64::new(0);
        let mut g = c.benchmark_group(format!("{backend}/{}", op.as_str()));
        g.bench_function("manager", |b| {
            b.to_async(rt).iter(|| {
                let i = n.fetch_add(1, Ordering::Relaxed);
                let p = &p;
                async move { p.run_once(i).await.expect("refresh workload") }
            })
        });
        g.finish();
        rt.block_on(p.check()).expect("the refreshed tokens");
        rt.block_on(p.cleanup()).expect("cleanup");
    }
}

fn memory(c: &mut Criterion) {
    let rt = current_thread_runtime();
    bench_backend(c, &rt, "memory", |clock| {
        Arc::new(MemoryCache::builder().clock(clock).build())
    });
}

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let n = AtomicU64::new(0);
    let codec = Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [7; 32])),
        "bench",
    ));
    bench_backend(c, &rt, "sqlite", |clock| {
        let path = dir
            .path()
            .join(format!("r{}.db", n.fetch_add(1, Ordering::Relaxed)));
        let open = SqliteCache::builder(path)
            .codec(codec.clone())
            .clock(clock)
            .build();
        Arc::new(rt.block_on(open).expect("open"))
    });
}

/// `N` reads of the exact-hit target on the memory backend as `how`, for callgrind.
fn instructions(spec: &str) {
    let (how, n) = spec
        .split_once(':')
        .and_then(|(how, n)| Some((Read::parse(how)?, n.parse::<u64>().ok()?)))
        .expect("TOKENCACHE_REFRESH_INSTRUCTIONS=<get|get_or_refresh>:<N>");
    let rt = current_thread_runtime();
    let clock: Arc<dyn Clock> = frozen_clock();
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::builder().clock(clock.clone()).build());
    let p = rt
        .block_on(Workload::new(Op::ExactHit, SMALL_SIZE).prepare_with_clock(cache, clock))
        .expect("workload prepared");
    rt.block_on(reads(p.manager(), p.key(), how, n));
}

criterion_group! { name = refresh; config = criterion(); targets = memory, sqlite }

fn main() {
    if let Ok(spec) = std::env::var("TOKENCACHE_REFRESH_INSTRUCTIONS") {
        instructions(&spec);
        return;
    }
    refresh();
    Criterion::default().configure_from_args().final_summary();
}
