//! Runs one memory-backend operation N times, for instruction counts under callgrind
//! (robust on a loaded machine, unlike wall time): run it with N and with 0 and divide
//! the difference of the totals by N.
//!
//! ```text
//! cargo build --release -p tokencache-benches --example instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions manager_get 100000
//! ```
//!
//! Operations: `manager_get`, `raw_moka_get`, `raw_moka_sync_get`, `raw_memory_cache_get`,
//! `raw_memory_cache_get_direct`, `manager_set`, `raw_moka_insert`, `raw_moka_sync_insert`,
//! `manager_clear_100`, `manager_subset_100`.
//!
//! `instructions scaling ROUNDS` instead times exact hits (wall time, not for callgrind)
//! from 1 and from 2 threads sharing one cache, each thread on its own current-thread
//! runtime, alternating in every round, and prints the median time per hit and the
//! throughput of 2 threads over 1, for the manager, the backend alone and raw moka.
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tokencache_benches::workloads::{exact_key, frozen_clock, set_key, Op, Workload, SMALL_SIZE};
use tokencache_benches::{current_thread_runtime, set_value};
use tokencache_core::{Cache, Cacheable};
use tokencache_memory::MemoryCache;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map(String::as_str).unwrap_or("manager_get");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    if op == "scaling" {
        return scaling(n);
    }
    let rt = current_thread_runtime();
    let clock = frozen_clock();
    let cache = Arc::new(MemoryCache::builder().clock(clock.clone()).build());
    let workload = match op {
        "manager_set" | "raw_moka_insert" => Workload::new(Op::Set, SMALL_SIZE),
        "manager_clear_100" => Workload::new(Op::Clear, 100),
        "manager_subset_100" => Workload::new(Op::Subset, 100),
        _ => Workload::new(Op::ExactHit, SMALL_SIZE),
    };
    let p = rt
        .block_on(workload.prepare_with_clock(cache.clone(), clock.clone()))
        .expect("prepared");
    let raw = moka::future::Cache::<String, Cacheable>::new(100_000);
    let raw_sync = moka::sync::Cache::<String, Cacheable>::new(100_000);
    let key = exact_key();
    rt.block_on(async {
        let value = cache
            .get(&key.to_key())
            .await
            .expect("get")
            .expect("stored");
        raw_sync.insert(key.to_key(), value.clone());
        raw.insert(key.to_key(), value).await;
        for i in 0..n {
            match op {
                "manager_get" | "manager_set" | "manager_subset_100" => {
                    p.run_once(i).await.expect("op")
                }
                "manager_clear_100" => {
                    p.run_once(i).await.expect("clear");
                    p.reset().await.expect("refill");
                }
                "raw_moka_get" => {
                    black_box(raw.get(&black_box(&key).to_key()).await);
                }
                "raw_memory_cache_get" => {
                    // Through `Arc<MemoryCache>`'s forwarding impl (a second boxed future),
                    // as a manager holding `Arc<dyn Cache>` calls it with `self.cache.get`.
                    black_box(cache.get(&black_box(&key).to_key()).await.expect("get"));
                }
                "raw_memory_cache_get_direct" => {
                    let direct: &MemoryCache = &cache;
                    black_box(direct.get(&black_box(&key).to_key()).await.expect("get"));
                }

                "raw_moka_sync_get" => {
                    black_box(raw_sync.get(&black_box(&key).to_key()));
                }
                "raw_moka_sync_insert" => {
                    let value = set_value(&*clock, i);
                    raw_sync.insert(set_key().to_key(), value);
                }
                "raw_moka_insert" => {
                    let value = set_value(&*clock, i);
                    raw.insert(set_key().to_key(), value).await;
                }
                other => panic!("unknown operation {other}"),
            }
        }
    });
}

/// `per_thread` runs of `op` on each of `threads` threads (each on its own current-thread
/// runtime, built before timing): the wall time of the slowest thread.
fn threaded<F: std::future::Future<Output = ()>>(
    threads: usize,
    per_thread: u64,
    op: &(impl Fn() -> F + Sync),
) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let start = &start;
                s.spawn(move || {
                    let rt = current_thread_runtime();
                    start.wait();
                    let t = Instant::now();
                    rt.block_on(async {
                        for _ in 0..per_thread {
                            op().await;
                        }
                    });
                    t.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// See the module docs.
fn scaling(rounds: u64) {
    const HITS: u64 = 200_000;
    let rt = current_thread_runtime();
    let clock = frozen_clock();
    let cache = Arc::new(MemoryCache::builder().clock(clock.clone()).build());
    let p = rt
        .block_on(Workload::new(Op::ExactHit, SMALL_SIZE).prepare_with_clock(cache.clone(), clock))
        .expect("prepared");
    let key = exact_key();
    let value = rt
        .block_on(cache.get(&key.to_key()))
        .expect("get")
        .expect("stored");
    let raw_sync = moka::sync::Cache::<String, Cacheable>::new(100_000);
    raw_sync.insert(key.to_key(), value);
    let manager = || async {
        p.run_once(0).await.expect("exact hit");
    };
    let backend = || async {
        black_box(cache.get(&black_box(&key).to_key()).await.expect("get"));
    };
    let raw = || async {
        black_box(raw_sync.get(&black_box(&key).to_key()));
    };
    let mut times: [[Vec<f64>; 2]; 3] = Default::default();
    for _ in 0..rounds.max(1) {
        for threads in [1usize, 2] {
            let per = HITS / threads as u64;
            let ns = |d: Duration| d.as_nanos() as f64 / HITS as f64;
            times[0][threads - 1].push(ns(threaded(threads, per, &manager)));
            times[1][threads - 1].push(ns(threaded(threads, per, &backend)));
            times[2][threads - 1].push(ns(threaded(threads, per, &raw)));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (name, t) in ["manager", "memory_cache_get", "raw_moka_sync_get"]
        .iter()
        .zip(times.iter_mut())
    {
        let (one, two) = (median(&mut t[0]), median(&mut t[1]));
        println!(
            "{name}: 1 thread {one:.0} ns/hit, 2 threads {two:.0} ns/hit together: throughput x{:.2}",
            one / two
        );
    }
}
