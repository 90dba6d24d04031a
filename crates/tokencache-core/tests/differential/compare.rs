//! Comparison: both sides' outcomes of the same documents, made comparable where the
//! design makes them differ in form only, and checked equal result by result and key by key.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::js::{run_js, run_js_one};
use crate::runner::run_rust;
use crate::scenario::Outcome;

/// Makes both outcomes comparable where the design makes them differ in form only:
/// - `refreshTokensByAudience`: auth0-spa-js lists the tokens in the insertion order of
///   the keys they were found under, we in the lexicographic order of the keys (so that
///   every backend answers the same); both are sets of distinct tokens, so they are
///   compared sorted.
/// - with `floor_expires_at` (scenarios with a fractional `expires_in` only):
///   auth0-spa-js stores a fractional `expiresAt`, we store it rounded down; the expiry
///   decision is the same (see golden.rs), so the stored value is compared rounded down.
fn normalize(doc: &Value, mut o: Outcome, floor_expires_at: bool) -> Outcome {
    for (op, r) in doc["ops"].as_array().unwrap().iter().zip(&mut o.results) {
        if op["op"] == "refreshTokensByAudience" {
            if let Value::Array(tokens) = r {
                tokens.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    if floor_expires_at {
        for v in o.store.values_mut() {
            if let Some(x) = v.get("expiresAt").and_then(Value::as_f64) {
                v["expiresAt"] = json!(x.floor() as i64);
            }
        }
    }
    o
}

/// `Err` with a readable account of the first difference.
fn compare(doc: &Value, js: &Outcome, rust: &Outcome) -> Result<(), String> {
    let ops = doc["ops"].as_array().unwrap();
    assert_eq!(
        js.results.len(),
        ops.len(),
        "auth0-spa-js: one result per op"
    );
    assert_eq!(rust.results.len(), ops.len(), "ours: one result per op");
    for (i, (a, b)) in js.results.iter().zip(&rust.results).enumerate() {
        if a != b {
            return Err(format!(
                "op #{i} {}\n  auth0-spa-js: {a}\n  ours:         {b}",
                ops[i]
            ));
        }
    }
    let keys: BTreeSet<&String> = js.store.keys().chain(rust.store.keys()).collect();
    for k in keys {
        let (a, b) = (js.store.get(k), rust.store.get(k));
        if a != b {
            return Err(format!(
                "stored value at {k:?}\n  auth0-spa-js: {}\n  ours:         {}",
                a.map_or("(absent)".into(), Value::to_string),
                b.map_or("(absent)".into(), Value::to_string)
            ));
        }
    }
    Ok(())
}

/// Runs `docs` on both sides; panics listing the scenarios that differ (the first five
/// are saved under cargo's test tmpdir to replay).
pub fn assert_same(docs: &[Value], floor_expires_at: bool) -> (Vec<Outcome>, Vec<Outcome>) {
    let js = run_js(docs);
    let rust: Vec<Outcome> = docs.iter().map(run_rust).collect();
    let mut failures = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let a = normalize(doc, js[i].clone(), floor_expires_at);
        let b = normalize(doc, rust[i].clone(), floor_expires_at);
        if let Err(why) = compare(doc, &a, &b) {
            failures.push((i, why));
        }
    }
    if !failures.is_empty() {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let mut report = String::new();
        for (i, why) in failures.iter().take(5) {
            let path = dir.join(format!("differential-failure-{i}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(&docs[*i]).unwrap()).unwrap();
            report.push_str(&format!(
                "\nscenario {i} (mode {}, saved to {}):\n{why}\n",
                docs[*i]["mode"],
                path.display()
            ));
        }
        panic!(
            "{} of {} scenarios differ from auth0-spa-js:{report}",
            failures.len(),
            docs.len()
        );
    }
    (js, rust)
}

/// Both sides of one scenario, unnormalized: for tests that show a difference.
pub fn both(d: &Value) -> (Outcome, Outcome) {
    (run_js_one(d), run_rust(d))
}
