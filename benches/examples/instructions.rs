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
//! Operations: `manager_get`, `raw_moka_get`, `raw_memory_cache_get`, `manager_set`,
//! `raw_memory_cache_get_direct`, `raw_moka_insert`, `manager_clear_100`, `manager_subset_100`.
use std::hint::black_box;
use std::sync::Arc;

use tokencache_benches::workloads::{exact_key, frozen_clock, set_key, Op, Workload, SMALL_SIZE};
use tokencache_benches::{current_thread_runtime, set_value};
use tokencache_core::{Cache, Cacheable};
use tokencache_memory::MemoryCache;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map(String::as_str).unwrap_or("manager_get");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
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
