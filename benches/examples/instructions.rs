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
//! Operations: `manager_get`, `manager_get_with`, `raw_moka_get`, `raw_moka_sync_get`, `raw_memory_cache_get`,
//! `raw_memory_cache_get_direct`, `manager_set`, `raw_moka_insert`, `raw_moka_sync_insert`,
//! `manager_clear_100`, `manager_subset_100`, `all_keys_100` (the cache's own listing of
//! 101 keys: the kept listing), `overwrite_100` (a `set` of one of them in place, the
//! value it holds) and `overwrite_all_keys_100` (that `set`, then the listing, which is
//! built anew: the difference is what building it costs).
//!
//! `instructions scaling ROUNDS` instead times exact hits (wall time, not for callgrind)
//! from 1 and from 2 threads sharing one cache, each thread on its own current-thread
//! runtime, alternating in every round, and prints, for the manager, the backend alone
//! and raw moka, the median wall time per hit and the throughput of 2 threads over 1;
//! and, since other processes share the cores, the same ratio from each thread's CPU
//! time per hit (Linux schedstat), which is what 2 threads with a core each would reach:
//! contention on shared cache lines shows there as more CPU time per hit. A fourth line,
//! `manager_key_per_thread`, times exact hits through the same manager where each thread
//! reads a key of its own (two entries, as two users' tokens), which shares the cache but
//! not the entry. A fifth, `nothing_shared`, builds and hashes the key with no data shared
//! between the threads: the most two threads can gain on this machine. A sixth,
//! `manager_get_with`, reads the one hot entry through `CacheManager::get_with`, which
//! shows the body in place instead of returning a counted `Arc` of it.
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tokencache_benches::workloads::{
    entry, exact_key, frozen_clock, other_audience, set_key, Op, Workload, CLIENT_ID, OTHER_SCOPE,
    SMALL_SIZE,
};
use tokencache_benches::{current_thread_runtime, hit_with, set_value};
use tokencache_core::{Cache, CacheKey, Cacheable, GetOptions};
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
        "all_keys_100" | "overwrite_100" | "overwrite_all_keys_100" => {
            Workload::new(Op::AllKeys, 100)
        }
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
        raw.insert(key.to_key(), value.clone()).await;
        let (listed, target) = (key.to_key(), value);
        for i in 0..n {
            match op {
                "manager_get" | "manager_set" | "manager_subset_100" | "all_keys_100" => {
                    p.run_once(i).await.expect("op")
                }
                "manager_clear_100" => {
                    p.run_once(i).await.expect("clear");
                    p.reset().await.expect("refill");
                }
                "raw_moka_get" => {
                    black_box(raw.get(&black_box(&key).to_key()).await);
                }
                "manager_get_with" => hit_with(p.manager(), &key).await,
                "raw_memory_cache_get" => {
                    // Through `Arc<MemoryCache>`'s forwarding impl (a second boxed future),
                    // as a manager holding `Arc<dyn Cache>` calls it with `self.cache.get`.
                    black_box(cache.get(&black_box(&key).to_key()).await.expect("get"));
                }
                "raw_memory_cache_get_direct" => {
                    let direct: &MemoryCache = &cache;
                    black_box(direct.get(&black_box(&key).to_key()).await.expect("get"));
                }

                "overwrite_100" => {
                    // The target overwritten in place (the value it holds): a change.
                    cache.set(&listed, target.clone()).await.expect("set");
                }
                "overwrite_all_keys_100" => {
                    // The same, then a listing: it is built anew (after the change).
                    cache.set(&listed, target.clone()).await.expect("set");
                    black_box(cache.all_keys().await.expect("list"));
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

/// This thread's CPU time so far and its time spent waiting for a CPU, in nanoseconds
/// (Linux's `/proc/thread-self/schedstat`; zeros elsewhere).
fn schedstat() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0));
    (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
}

/// What one timed run of [`threaded`] took: the wall time of the slowest thread, and the
/// most CPU time and the most time waiting for a CPU of any thread.
#[derive(Clone, Copy, Default)]
struct Timed {
    wall: Duration,
    cpu_ns: u64,
    waited_ns: u64,
}

/// `per_thread` runs of `op` on each of `threads` threads (each on its own current-thread
/// runtime, built before timing); `op` is given the thread's number.
fn threaded<F: std::future::Future<Output = ()>>(
    threads: usize,
    per_thread: u64,
    op: &(impl Fn(usize) -> F + Sync),
) -> Timed {
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let start = &start;
                s.spawn(move || {
                    let rt = current_thread_runtime();
                    start.wait();
                    let (cpu, waited) = schedstat();
                    let t = Instant::now();
                    rt.block_on(async {
                        for _ in 0..per_thread {
                            op(thread).await;
                        }
                    });
                    let wall = t.elapsed();
                    let (cpu2, waited2) = schedstat();
                    Timed {
                        wall,
                        cpu_ns: cpu2 - cpu,
                        waited_ns: waited2 - waited,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread"))
            .fold(Timed::default(), |a, b| Timed {
                wall: a.wall.max(b.wall),
                cpu_ns: a.cpu_ns.max(b.cpu_ns),
                waited_ns: a.waited_ns.max(b.waited_ns),
            })
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
    let manager = |_| async {
        p.run_once(0).await.expect("exact hit");
    };
    // Thread 0 reads the target entry, thread 1 one of the other entries.
    let own_keys = [
        exact_key(),
        CacheKey::new(CLIENT_ID, Some(&other_audience(0)), Some(OTHER_SCOPE)),
    ];
    rt.block_on(p.manager().set(entry(&other_audience(0), OTHER_SCOPE, 0)))
        .expect("the second entry");
    let key_per_thread = |thread: usize| {
        let (p, key) = (&p, &own_keys[thread]);
        async move {
            let body = p.manager().get(black_box(key), GetOptions::default()).await;
            black_box(body.expect("get").expect("a hit"));
        }
    };
    // The same hot entry through `get_with`: the body shown in place, no count taken.
    let manager_get_with = |_| hit_with(p.manager(), &key);
    let backend = |_| async {
        black_box(cache.get(&black_box(&key).to_key()).await.expect("get"));
    };
    let raw = |_| async {
        black_box(raw_sync.get(&black_box(&key).to_key()));
    };
    // The machine's own ceiling: work that shares nothing between the threads (the same
    // key string built and hashed, on each thread's own copy).
    let alone = |_| async {
        let k = black_box(&key).to_key();
        black_box(BuildHasherDefault::<DefaultHasher>::default().hash_one(black_box(&k)));
    };
    // [workload][threads - 1]: (wall ns per hit, CPU ns per hit of the busiest thread,
    // share of the run the busiest thread waited for a CPU).
    let mut times: [[Vec<(f64, f64, f64)>; 2]; 6] = Default::default();
    for _ in 0..rounds.max(1) {
        for threads in [1usize, 2] {
            let per = HITS / threads as u64;
            let per_hit = |t: Timed| {
                (
                    t.wall.as_nanos() as f64 / HITS as f64,
                    t.cpu_ns as f64 / per as f64,
                    t.waited_ns as f64 / t.wall.as_nanos().max(1) as f64,
                )
            };
            times[0][threads - 1].push(per_hit(threaded(threads, per, &manager)));
            times[1][threads - 1].push(per_hit(threaded(threads, per, &backend)));
            times[2][threads - 1].push(per_hit(threaded(threads, per, &raw)));
            times[3][threads - 1].push(per_hit(threaded(threads, per, &key_per_thread)));
            times[4][threads - 1].push(per_hit(threaded(threads, per, &alone)));
            times[5][threads - 1].push(per_hit(threaded(threads, per, &manager_get_with)));
        }
    }
    let median = |v: &mut Vec<(f64, f64, f64)>, f: fn(&(f64, f64, f64)) -> f64| {
        let mut xs: Vec<f64> = v.iter().map(f).collect();
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    println!("median of {rounds} rounds, {HITS} hits a run");
    for (name, t) in [
        "manager",
        "memory_cache_get",
        "raw_moka_sync_get",
        "manager_key_per_thread",
        "nothing_shared",
        "manager_get_with",
    ]
    .iter()
    .zip(times.iter_mut())
    {
        let wall = (median(&mut t[0], |x| x.0), median(&mut t[1], |x| x.0));
        let cpu = (median(&mut t[0], |x| x.1), median(&mut t[1], |x| x.1));
        let waited = median(&mut t[1], |x| x.2);
        println!(
            "{name}: wall {:.0} / {:.0} ns per hit (1 / 2 threads): x{:.2}; \
             CPU per hit of one thread {:.0} / {:.0} ns: x{:.2} with a core each \
             (2-thread runs waited {:.0}% of the time for a CPU)",
            wall.0,
            wall.1,
            wall.0 / wall.1,
            cpu.0,
            cpu.1,
            2.0 * cpu.0 / cpu.1,
            100.0 * waited
        );
    }
}
