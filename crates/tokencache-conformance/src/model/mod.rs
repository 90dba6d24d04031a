//! The model test: random sequences of manager operations ([`ops`]), run on a
//! `CacheManager` over the cache under test and on [`reference::Model`], a small,
//! independent re-implementation of the design's semantics over a `BTreeMap`. Every
//! result and the final state must agree.
//!
//! Cases are generated with proptest's `TestRunner` and `ValueTree`, and run (and
//! shrunk) with `.await`, so no executor is needed and the test also runs in a browser.

mod ops;
mod reference;

use proptest::collection::vec;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tokencache_core::{CacheManager, Clock, ManualClock};

use crate::harness::MANIFEST_CLIENT;
use crate::{Fixture, Mode, Suite};
use ops::{on_manager, op, Op};
use reference::Model;

const SHRINK_STEPS: u32 = 1024;
const DEFAULT_SEED: u64 = 0x746f_6b65_6e63_6163;

/// Runs one case on a fresh cache of the suite's fixture, and tears the cache down.
async fn run_case<F: Fixture>(suite: &Suite<F>, mode: Mode, ops: &[Op]) -> Result<(), String> {
    let clock = crate::checks::new_clock();
    let (cache, made) = suite
        .fresh(clock.clone() as std::sync::Arc<dyn Clock>, mode)
        .await
        .map_err(|e| format!("creating the cache: {e}"))?;
    let result = check_case(suite, &cache, &clock, mode, ops).await;
    drop(cache);
    let torn = suite
        .fixture
        .tear_down(made)
        .await
        .map_err(|e| format!("tearing the cache down: {e}"));
    result.and(torn)
}

async fn check_case<F: Fixture>(
    suite: &Suite<F>,
    cache: &std::sync::Arc<dyn tokencache_core::Cache>,
    clock: &std::sync::Arc<ManualClock>,
    mode: Mode,
    ops: &[Op],
) -> Result<(), String> {
    let mut builder = CacheManager::builder(cache.clone())
        .clock(clock.clone())
        .prefix(suite.prefix.clone())
        .client_id(MANIFEST_CLIENT);
    if suite.unserialized_writes {
        builder = builder.unserialized_writes_for_tests();
    }
    let manager = builder
        .build()
        .map_err(|e| format!("building the manager: {e}"))?;
    let physical_expiry = suite.fixture.capabilities().physical_expiry;
    let mut model = Model::new(mode, &suite.prefix);
    let now_s = |c: &ManualClock| c.now_ms().div_euclid(1000);
    // Physical expiry may run by real time (moka's timers do): an entry written with
    // 250 ms left by the check's clock is gone 250 ms later, even if the check's clock
    // has not moved. So a cache may have dropped whatever the check's clock would doom
    // within the real time this case has taken so far (rounded up, plus a second).
    let real = RealTime::start();
    let droppable_s = |c: &ManualClock| now_s(c) + real.elapsed_s() + 1;
    for (i, op) in ops.iter().enumerate() {
        model
            .forget_dropped(&**cache, droppable_s(clock), physical_expiry)
            .await
            .map_err(|e| format!("before op {i}: {e}"))?;
        let want = model.apply(op, now_s(clock));
        let got = on_manager(&manager, clock, op).await;
        if got != want {
            return Err(format!(
                "op {i} {op:?}:\n  manager: {got:?}\n  model:   {want:?}"
            ));
        }
    }
    model
        .forget_dropped(&**cache, droppable_s(clock), physical_expiry)
        .await
        .map_err(|e| format!("at the end: {e}"))?;
    model
        .compare_state(&**cache, droppable_s(clock), physical_expiry)
        .await
}

/// The real time a case has taken, in whole seconds rounded up (always 0 on wasm32, where
/// no backend expires values by real time).
struct RealTime {
    #[cfg(not(target_arch = "wasm32"))]
    started: std::time::Instant,
}

impl RealTime {
    fn start() -> RealTime {
        RealTime {
            #[cfg(not(target_arch = "wasm32"))]
            started: std::time::Instant::now(),
        }
    }

    fn elapsed_s(&self) -> i64 {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let ms = self.started.elapsed().as_millis();
            i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX / 2)
        }
        #[cfg(target_arch = "wasm32")]
        0
    }
}

fn seed() -> u64 {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(s) = std::env::var("TOKENCACHE_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return s;
    }
    DEFAULT_SEED
}

/// Runs `cases` model-test cases in `mode`. Panics with a minimal failing sequence.
pub(crate) async fn run<F: Fixture>(suite: &Suite<F>, cases: u32, mode: Mode) {
    let seed = seed();
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = vec(op(), 1..64);
    for case in 0..cases {
        let mut tree = match strategy.new_tree(&mut runner) {
            Ok(t) => t,
            Err(e) => panic!("model test: cannot generate a case: {e}"),
        };
        let mut failure = match run_case(suite, mode, &tree.current()).await {
            Ok(()) => continue,
            Err(msg) => msg,
        };
        let first_len = tree.current().len();
        let mut minimal = tree.current();
        let mut steps = 0;
        if tree.simplify() {
            while steps < SHRINK_STEPS {
                steps += 1;
                let candidate = tree.current();
                match run_case(suite, mode, &candidate).await {
                    Err(msg) => {
                        failure = msg;
                        minimal = candidate;
                        if !tree.simplify() {
                            break;
                        }
                    }
                    _ => {
                        if !tree.complicate() {
                            break;
                        }
                    }
                }
            }
        }
        let listing: Vec<String> = minimal
            .iter()
            .enumerate()
            .map(|(i, op)| format!("  {i}: {op:?}"))
            .collect();
        panic!(
            "conformance model test failed ({mode} mode, prefix {:?}, seed {seed}, case {case}; shrunk from {first_len} to {} ops in {steps} steps):\n{}\n{failure}",
            suite.prefix,
            minimal.len(),
            listing.join("\n"),
        );
    }
}
