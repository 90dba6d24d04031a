//! The model test: random sequences of manager operations ([`ops`]), run on a
//! `CacheManager` over the cache under test and on [`reference::Model`], a small,
//! independent re-implementation of the design's semantics over a `BTreeMap`. Every
//! result and the final state must agree.
//!
//! Cases are generated with proptest's `TestRunner` and `ValueTree`, and run (and
//! shrunk) with `.await`, so no executor is needed and the test also runs in a browser.

mod ops;
mod reference;

use std::future::Future;
use std::sync::Arc;

use proptest::collection::vec;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tokencache_core::{Cache, CacheManager, Clock, ManualClock};

use crate::support::MANIFEST_CLIENT;
use crate::{fresh, Mode};
use ops::{on_manager, op, Op};
use reference::Model;

const SHRINK_STEPS: u32 = 1024;
const DEFAULT_SEED: u64 = 0x746f_6b65_6e63_6163;

enum CaseResult {
    Pass,
    Fail(String),
    /// Listing mode, but the cache does not list its keys.
    NotApplicable,
}

async fn run_case<F, Fut>(make: &F, mode: Mode, ops: &[Op]) -> CaseResult
where
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: Future<Output = Arc<dyn Cache>>,
{
    let clock = crate::checks::new_clock();
    let Some(cache) = fresh(make, clock.clone(), mode).await else {
        return CaseResult::NotApplicable;
    };
    let manager = match CacheManager::builder(cache.clone())
        .clock(clock.clone())
        .client_id(MANIFEST_CLIENT)
        .build()
    {
        Ok(m) => m,
        Err(e) => return CaseResult::Fail(format!("building the manager: {e}")),
    };
    let mut model = Model::new(mode);
    let now_s = |c: &ManualClock| c.now_ms().div_euclid(1000);
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = model.forget_dropped(&*cache, now_s(&clock)).await {
            return CaseResult::Fail(format!("before op {i}: {e}"));
        }
        let want = model.apply(op, now_s(&clock));
        let got = on_manager(&manager, &clock, op).await;
        if got != want {
            return CaseResult::Fail(format!(
                "op {i} {op:?}:\n  manager: {got:?}\n  model:   {want:?}"
            ));
        }
    }
    if let Err(e) = model.forget_dropped(&*cache, now_s(&clock)).await {
        return CaseResult::Fail(format!("at the end: {e}"));
    }
    match model.compare_state(&*cache).await {
        Ok(()) => CaseResult::Pass,
        Err(e) => CaseResult::Fail(e),
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

/// Runs `cases` model-test cases in `mode`; `false` when the mode does not apply (listing
/// mode over a cache that cannot list). Panics with a minimal failing sequence.
pub(crate) async fn run<F, Fut>(make: &F, cases: u32, mode: Mode) -> bool
where
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: Future<Output = Arc<dyn Cache>>,
{
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
        let mut failure = match run_case(make, mode, &tree.current()).await {
            CaseResult::Pass => continue,
            CaseResult::NotApplicable => return false,
            CaseResult::Fail(msg) => msg,
        };
        let first_len = tree.current().len();
        let mut minimal = tree.current();
        let mut steps = 0;
        if tree.simplify() {
            while steps < SHRINK_STEPS {
                steps += 1;
                let candidate = tree.current();
                match run_case(make, mode, &candidate).await {
                    CaseResult::Fail(msg) => {
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
            "conformance model test failed ({} mode, seed {seed}, case {case}; shrunk from {first_len} to {} ops in {steps} steps):\n{}\n{failure}",
            if mode == Mode::Listing { "listing" } else { "manifest" },
            minimal.len(),
            listing.join("\n"),
        );
    }
    true
}
