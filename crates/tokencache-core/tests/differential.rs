//! Differential test: random operation scenarios run through our `CacheManager` and
//! through the real auth0-spa-js 2.x `CacheManager` (in Node), comparing every result and
//! the final stored JSON of every key.
//!
//! Needs `node` and `npm` on PATH (missing ones fail the test, loudly). The pinned package
//! is installed once with `npm ci` into a copy of `<workspace>/../shared/baselines/auth0-spa-js`
//! under cargo's `CARGO_TARGET_TMPDIR`; set `TOKENCACHE_A0_DIR` to a directory that already
//! has it installed (such as /tmp/a0) to skip the install. `TOKENCACHE_DIFF_SEED` and
//! `TOKENCACHE_DIFF_SCENARIOS` change the seed and the number of scenarios per mode.
//!
//! Where DESIGN.md ("Improvements") says we deliberately differ, the random scenarios avoid
//! the difference, and an `improvement_*` test shows it on both sides.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use common::JsonMapCache;
use futures::executor::block_on;
use serde_json::{json, Map, Value};
use tokencache_core::{CacheEntry, CacheKey, CacheManager, DecodedToken, GetOptions, ManualClock};

// ---- the real package, in Node ------------------------------------------------------

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_tool(tool: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{tool} --version` failed ({}): the differential test needs Node.js and npm on PATH",
            o.status
        ),
        Err(e) => panic!(
            "cannot run `{tool}` ({e}): the differential test needs Node.js (18+) and npm on PATH; \
             install them (e.g. `apt-get install -y nodejs npm`) — this test never skips"
        ),
    }
}

fn has_package(dir: &Path) -> bool {
    dir.join("node_modules/@auth0/auth0-spa-js/package.json")
        .is_file()
}

/// A directory with the baseline's `lib.mjs` and the pinned package installed.
fn baseline_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        check_tool("node");
        if let Ok(dir) = std::env::var("TOKENCACHE_A0_DIR") {
            let dir = PathBuf::from(dir);
            assert!(
                has_package(&dir) && dir.join("lib.mjs").is_file(),
                "TOKENCACHE_A0_DIR={} has no lib.mjs or no node_modules/@auth0/auth0-spa-js",
                dir.display()
            );
            return dir;
        }
        // <workspace>/../shared: the workspace is two levels above this crate.
        let shared = manifest_dir().join("../../../shared/baselines/auth0-spa-js");
        let shared = shared.canonicalize().unwrap_or_else(|e| {
            panic!(
                "the auth0-spa-js baseline is not at {} ({e}); set TOKENCACHE_A0_DIR",
                shared.display()
            )
        });
        let copy = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("auth0-spa-js-baseline");
        let same = |name: &str| match (
            std::fs::read(shared.join(name)),
            std::fs::read(copy.join(name)),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if has_package(&copy) && same("package-lock.json") && same("lib.mjs") {
            return copy;
        }
        check_tool("npm");
        let _ = std::fs::remove_dir_all(&copy);
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(&shared).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
            }
        }
        eprintln!(
            "installing the pinned auth0-spa-js with `npm ci` into {}",
            copy.display()
        );
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&copy)
            .status()
            .unwrap_or_else(|e| panic!("cannot run npm: {e}"));
        assert!(
            status.success() && has_package(&copy),
            "`npm ci` failed in {} ({status}); set TOKENCACHE_A0_DIR to an installed copy",
            copy.display()
        );
        copy
    })
}

/// The version pinned in the baseline's package.json.
fn pinned_version() -> String {
    let pkg: Value =
        serde_json::from_slice(&std::fs::read(baseline_dir().join("package.json")).unwrap())
            .unwrap();
    pkg["dependencies"]["@auth0/auth0-spa-js"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What one scenario produced: a result per op and every stored key's JSON.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    results: Vec<Value>,
    store: Map<String, Value>,
}

/// Runs every document through auth0-spa-js, in one Node process.
fn run_js(docs: &[Value]) -> Vec<Outcome> {
    let dir = baseline_dir();
    let mut child = Command::new("node")
        .arg(manifest_dir().join("tests/differential/run.mjs"))
        .arg(dir.join("lib.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node: {e}"));
    let input = serde_json::to_vec(docs).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "node run.mjs failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("run.mjs printed JSON");
    assert_eq!(runs.len(), docs.len());
    let version = pinned_version();
    runs.into_iter()
        .map(|r| {
            assert_eq!(
                r["version"].as_str(),
                Some(version.as_str()),
                "package version"
            );
            Outcome {
                results: serde_json::from_value(r["results"].clone()).unwrap(),
                store: serde_json::from_value(r["store"].clone()).unwrap(),
            }
        })
        .collect()
}

// ---- our manager ------------------------------------------------------------------

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

/// Runs a scenario document (the same format) through our `CacheManager`.
fn run_rust(doc: &Value) -> Outcome {
    let manifest = doc["mode"] == "manifest";
    let cache = Arc::new(if manifest {
        JsonMapCache::non_listing()
    } else {
        JsonMapCache::listing()
    });
    let clock = Arc::new(ManualClock::new(doc["startMs"].as_i64().unwrap()));
    let m = CacheManager::builder(cache.clone())
        .clock(clock.clone())
        .client_id(s(&doc["clientId"]).unwrap_or("c1"))
        .build()
        .unwrap();
    let mut results = Vec::new();
    for op in doc["ops"].as_array().unwrap() {
        let r = block_on(apply(&m, &clock, op));
        results.push(match r {
            Ok(v) => v,
            Err(e) => json!({ "error": e.kind().as_str() }),
        });
    }
    Outcome {
        results,
        store: cache.snapshot(),
    }
}

async fn apply(
    m: &CacheManager,
    clock: &ManualClock,
    op: &Value,
) -> tokencache_core::Result<Value> {
    let key = || {
        CacheKey::new(
            s(&op["clientId"]).unwrap(),
            s(&op["audience"]),
            s(&op["scope"]),
        )
    };
    Ok(match s(&op["op"]).unwrap() {
        "set" => {
            let entry: CacheEntry = serde_json::from_value(op["entry"].clone()).unwrap();
            m.set(entry).await?;
            Value::Null
        }
        "get" => {
            let opts = GetOptions {
                expiry_adjustment_seconds: op["leeway"].as_i64().unwrap_or(0),
                use_mrrt: op["useMrrt"].as_bool().unwrap_or(false),
                cache_only: op["cacheMode"] == "cache-only",
            };
            match m.get(&key(), opts).await? {
                Some(body) => serde_json::to_value(&*body).unwrap(),
                None => Value::Null,
            }
        }
        "setIdToken" => {
            let decoded: DecodedToken = serde_json::from_value(op["decodedToken"].clone()).unwrap();
            m.set_id_token(
                s(&op["clientId"]).unwrap(),
                s(&op["idToken"]).unwrap(),
                decoded,
            )
            .await?;
            Value::Null
        }
        "getIdToken" => match m.get_id_token(&key()).await? {
            Some(t) => serde_json::to_value(&t).unwrap(),
            None => Value::Null,
        },
        "remove" => {
            m.remove(
                s(&op["clientId"]).unwrap(),
                s(&op["audience"]),
                s(&op["scope"]),
            )
            .await?;
            Value::Null
        }
        "clear" => {
            m.clear(s(&op["clientId"])).await?;
            Value::Null
        }
        "stripRefreshToken" => {
            m.strip_refresh_token(s(&op["refreshToken"]).unwrap())
                .await?;
            Value::Null
        }
        "updateEntry" => {
            m.update_entry(
                s(&op["oldRefreshToken"]).unwrap(),
                s(&op["newRefreshToken"]).unwrap(),
                s(&op["clientId"]).unwrap(),
                op["useMrrt"].as_bool().unwrap_or(false),
            )
            .await?;
            Value::Null
        }
        "refreshTokensByAudience" => json!(
            m.refresh_tokens_by_audience(s(&op["audience"]).unwrap(), s(&op["clientId"]).unwrap())
                .await?
        ),
        "advance" => {
            // lib.mjs: nowMs += Math.round(seconds * 1000) — the same f64 arithmetic.
            let seconds = op["seconds"].as_f64().unwrap();
            clock.advance_ms((seconds * 1000.0).round() as i64);
            Value::Null
        }
        other => panic!("unknown op {other}"),
    })
}

// ---- comparison -------------------------------------------------------------------

/// Makes both outcomes comparable where the design makes them differ in form only:
/// - `refreshTokensByAudience`: auth0-spa-js lists the tokens in the insertion order of
///   the keys they were found under, we in the lexicographic order of the keys (DESIGN,
///   so that every backend answers the same); both are sets of distinct tokens, so they
///   are compared sorted.
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

/// Runs `docs` on both sides; panics listing the scenarios that differ.
fn assert_same(docs: &[Value], floor_expires_at: bool) -> (Vec<Outcome>, Vec<Outcome>) {
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

// ---- the scenario generator ---------------------------------------------------------

/// splitmix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Client ids that are not substrings of each other or of any other key part (auth0-spa-js
/// `clear` uses a substring test).
const CLIENTS: [&str; 3] = ["alpha-app", "bravo-app", "charlie-app"];
const AUDIENCES: [&str; 3] = ["https://api.one.test", "https://api.two.test", "urn:three"];
/// Stored scopes; "" stores at `prefix::client::audience` (no scope part).
const SCOPES: [&str; 5] = [
    "openid profile email",
    "read:items write:items",
    "admin",
    "openid profile",
    "",
];
const EXPIRES_IN: [f64; 6] = [1.0, 30.0, 60.0, 600.0, 3600.0, 86400.0];
const FRACTIONAL_EXPIRES_IN: [f64; 5] = [0.5, 1.25, 59.9, 600.5, 3599.75];
const LEEWAYS: [i64; 6] = [0, 0, 0, 30, 60, 3600];
const ADVANCE_MS: [i64; 10] = [
    0, 500, 999, 1000, 1500, 29_000, 30_000, 61_000, 600_000, 3_600_000,
];

struct Stored {
    client: &'static str,
    audience: &'static str,
    scope: &'static str,
    had_refresh_token: bool,
    had_no_refresh_token: bool,
}

/// Generates one scenario, keeping to the cases where auth0-spa-js and the design agree:
/// - a lookup (`get`, `getIdToken`) is emitted only when at most one key ever stored could
///   match it by scope (auth0-spa-js takes the first match in key order, we rank matches);
/// - an MRRT lookup only when at most one key of the client ever held a refresh token,
///   and no key the lookup can find ever held an entry without one (an expired entry
///   without a refresh token is a miss in every step for us, so we go on to the MRRT
///   fallback where auth0-spa-js answers none);
/// - `clear(client)` in manifest mode only when every key ever stored is that client's
///   (auth0-spa-js deletes the whole manifest); no `remove` in manifest mode (auth0-spa-js
///   leaves the manifest line); audiences and scopes are never empty together, no empty
///   client id, no empty audience before a scope (keys that would mis-parse).
struct Gen {
    rng: Rng,
    manifest: bool,
    fractional: bool,
    n: usize,
    ever: BTreeMap<String, Stored>,
    refresh_tokens: Vec<String>,
}

impl Gen {
    /// The keys ever stored that a lookup can find: by scope, and (without a scope) the
    /// key without a scope part, which the exact lookup finds first.
    fn findable<'a>(
        &'a self,
        client: &'a str,
        audience: &'a str,
        wanted: &'a [&'a str],
    ) -> impl Iterator<Item = &'a Stored> + 'a {
        self.ever
            .values()
            .filter(move |k| k.client == client && k.audience == audience)
            .filter(move |k| {
                if k.scope.is_empty() {
                    return wanted.is_empty();
                }
                let have: HashSet<&str> = k.scope.split(' ').collect();
                wanted.iter().all(|w| have.contains(w))
            })
    }

    fn candidates(&self, client: &str, audience: &str, wanted: &[&str]) -> usize {
        self.findable(client, audience, wanted).count()
    }

    /// Whether a key the lookup can find ever held an entry without a refresh token.
    fn may_find_without_refresh_token(
        &self,
        client: &str,
        audience: Option<&str>,
        scope: Option<&str>,
    ) -> bool {
        let Some(audience) = audience else {
            return false;
        };
        let wanted: Vec<&str> = scope.map_or(vec![], |s| s.split(' ').collect());
        let found = self
            .findable(client, audience, &wanted)
            .any(|k| k.had_no_refresh_token);
        found
    }

    fn mrrt_ok(&self, client: &str) -> bool {
        self.ever
            .values()
            .filter(|k| k.client == client && k.had_refresh_token)
            .count()
            <= 1
    }

    /// A lookup key (client, audience, scope) that at most one stored key can match.
    fn lookup(&mut self) -> Option<(&'static str, Option<&'static str>, Option<String>)> {
        for _ in 0..10 {
            // Mostly the client and audience of a stored key, and a subset of its scope.
            let stored: Vec<(&'static str, &'static str, &'static str)> = self
                .ever
                .values()
                .filter(|k| !k.audience.is_empty())
                .map(|k| (k.client, k.audience, k.scope))
                .collect();
            let (client, audience, stored_scope) = if !stored.is_empty() && self.rng.chance(70) {
                *self.rng.pick(&stored)
            } else {
                (
                    *self.rng.pick(&CLIENTS),
                    *self.rng.pick(&AUDIENCES),
                    *self.rng.pick(&SCOPES),
                )
            };
            if self.rng.chance(5) {
                return Some((client, None, None)); // the bare client key (the manifest's)
            }
            let scope = match self.rng.below(10) {
                0 => None,
                1 => Some("openid delete:items".to_owned()),
                2 if !stored_scope.is_empty() => Some(stored_scope.to_owned()),
                _ => {
                    // A non-empty subset of a stored scope, in random order.
                    let base_scope = if stored_scope.is_empty() {
                        *self.rng.pick(&SCOPES[..4])
                    } else {
                        stored_scope
                    };
                    let base: Vec<&str> = base_scope.split(' ').collect();
                    let mut subset: Vec<&str> = base
                        .iter()
                        .copied()
                        .filter(|_| self.rng.chance(60))
                        .collect();
                    if subset.is_empty() {
                        subset.push(base[self.rng.below(base.len())]);
                    }
                    for i in (1..subset.len()).rev() {
                        let j = self.rng.below(i + 1);
                        subset.swap(i, j);
                    }
                    Some(subset.join(" "))
                }
            };
            let wanted: Vec<&str> = scope.as_deref().map_or(vec![], |s| s.split(' ').collect());
            if self.candidates(client, audience, &wanted) <= 1 {
                return Some((client, Some(audience), scope));
            }
        }
        None
    }

    fn rt(&mut self) -> String {
        self.rng.pick(&self.refresh_tokens).clone()
    }

    fn op(&mut self) -> Value {
        self.n += 1;
        let n = self.n;
        let roll = self.rng.below(100);
        match roll {
            0..=29 => {
                let client = *self.rng.pick(&CLIENTS);
                let audience = *self.rng.pick(&AUDIENCES);
                let scope = *self.rng.pick(&SCOPES);
                let expires_in = if self.fractional && self.rng.chance(70) {
                    *self.rng.pick(&FRACTIONAL_EXPIRES_IN)
                } else {
                    *self.rng.pick(&EXPIRES_IN)
                };
                let mut e = json!({
                    "client_id": client, "audience": audience, "scope": scope,
                    "access_token": format!("at-{n}"), "expires_in": expires_in,
                });
                let has_rt = self.rng.chance(50);
                if has_rt {
                    e["refresh_token"] = json!(self.rt());
                }
                if self.rng.chance(30) {
                    let id = format!("idt-{n}");
                    e["id_token"] = json!(id);
                    e["decodedToken"] = decoded(&id, n);
                }
                if self.rng.chance(50) {
                    e["token_type"] = json!("Bearer");
                }
                if self.rng.chance(30) {
                    e["oauthTokenScope"] = json!(scope);
                }
                let key = CacheKey::new(client, Some(audience), Some(scope)).to_key();
                let s = self.ever.entry(key).or_insert(Stored {
                    client,
                    audience,
                    scope,
                    had_refresh_token: false,
                    had_no_refresh_token: false,
                });
                s.had_refresh_token |= has_rt;
                s.had_no_refresh_token |= !has_rt;
                json!({"op": "set", "entry": e})
            }
            30..=54 => match self.lookup() {
                Some((client, audience, scope)) => {
                    let use_mrrt = self.mrrt_ok(client)
                        && !self.may_find_without_refresh_token(client, audience, scope.as_deref())
                        && self.rng.chance(40);
                    json!({
                        "op": "get", "clientId": client, "audience": audience, "scope": scope,
                        "leeway": *self.rng.pick(&LEEWAYS), "useMrrt": use_mrrt,
                        "cacheMode": match self.rng.below(4) { 0 => json!("cache-only"), 1 => json!("on"), _ => Value::Null },
                    })
                }
                None => self.advance(),
            },
            55..=60 => match self.lookup() {
                Some((client, audience, scope)) => json!({
                    "op": "getIdToken", "clientId": client, "audience": audience, "scope": scope,
                }),
                None => self.advance(),
            },
            61..=65 => {
                let client = *self.rng.pick(&CLIENTS);
                let id = format!("idt-{n}");
                let key = CacheKey::id_token(tokencache_core::DEFAULT_PREFIX, client).to_key();
                self.ever.entry(key).or_insert(Stored {
                    client,
                    audience: "",
                    scope: "",
                    had_refresh_token: false,
                    had_no_refresh_token: false,
                });
                json!({"op": "setIdToken", "clientId": client, "idToken": id, "decodedToken": decoded(&id, n)})
            }
            66..=77 => self.advance(),
            78..=81 => json!({"op": "stripRefreshToken", "refreshToken": self.rt()}),
            82..=86 => {
                let old = self.rt();
                let new = if self.rng.chance(50) {
                    let t = format!("rt-new-{n}");
                    self.refresh_tokens.push(t.clone());
                    t
                } else {
                    self.rt()
                };
                json!({
                    "op": "updateEntry", "oldRefreshToken": old, "newRefreshToken": new,
                    "clientId": *self.rng.pick(&CLIENTS), "useMrrt": self.rng.chance(30),
                })
            }
            87..=92 => json!({
                "op": "refreshTokensByAudience",
                "audience": *self.rng.pick(&AUDIENCES),
                "clientId": *self.rng.pick(&CLIENTS),
            }),
            93..=96 if self.manifest => match self.lookup() {
                // No remove in manifest mode (see above): one more lookup instead.
                Some((client, audience, scope)) => {
                    let use_mrrt = self.mrrt_ok(client)
                        && !self.may_find_without_refresh_token(client, audience, scope.as_deref());
                    json!({
                        "op": "get", "clientId": client, "audience": audience, "scope": scope,
                        "leeway": 0, "useMrrt": use_mrrt,
                    })
                }
                None => self.advance(),
            },
            93..=96 => {
                let scope = match self.rng.below(3) {
                    0 => Value::Null,
                    _ => json!(*self.rng.pick(&SCOPES)),
                };
                json!({
                    "op": "remove", "clientId": *self.rng.pick(&CLIENTS),
                    "audience": *self.rng.pick(&AUDIENCES), "scope": scope,
                })
            }
            _ => {
                let client = *self.rng.pick(&CLIENTS);
                let only_this_client = self.ever.values().all(|k| k.client == client);
                if self.rng.chance(50) && (!self.manifest || only_this_client) {
                    self.ever.retain(|_, k| k.client != client);
                    json!({"op": "clear", "clientId": client})
                } else {
                    self.ever.clear();
                    json!({"op": "clear", "clientId": null})
                }
            }
        }
    }

    fn advance(&mut self) -> Value {
        let ms = *self.rng.pick(&ADVANCE_MS);
        json!({"op": "advance", "seconds": ms as f64 / 1000.0})
    }
}

fn decoded(id_token: &str, n: usize) -> Value {
    let sub = format!("auth0|user-{}", n % 3);
    json!({
        "claims": {"__raw": id_token, "sub": sub, "exp": 1_700_003_600, "email_verified": n % 2 == 0},
        "user": {"sub": sub, "name": format!("User {}", n % 3)},
    })
}

fn scenario(rng: &mut Rng, manifest: bool, fractional: bool) -> Value {
    let seed = rng.next();
    let mut g = Gen {
        rng: Rng(seed),
        manifest,
        fractional,
        n: 0,
        ever: BTreeMap::new(),
        refresh_tokens: vec!["rt-1".into(), "rt-2".into(), "rt-3".into()],
    };
    let len = 10 + g.rng.below(51);
    let ops: Vec<Value> = (0..len).map(|_| g.op()).collect();
    json!({
        "mode": if manifest { "manifest" } else { "allKeys" },
        // Not a whole second: expiresAt uses floor(now / 1000).
        "startMs": 1_700_000_000_000i64 + g.rng.below(1000) as i64,
        "clientId": *g.rng.pick(&CLIENTS),
        "ops": ops,
    })
}

const DEFAULT_SEED: u64 = 0x7c0c_ac4e_2024_0001;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

// ---- the tests ---------------------------------------------------------------------

/// Random scenarios in both modes (a cache that lists its keys; one that does not, so
/// both managers keep a manifest): every result and every stored value must be equal.
/// Entries use integer `expires_in`, so the stored JSON compares exactly.
#[test]
fn random_scenarios_match_auth0_spa_js() {
    let seed = env_u64("TOKENCACHE_DIFF_SEED", DEFAULT_SEED);
    let per_mode = env_u64("TOKENCACHE_DIFF_SCENARIOS", 500) as usize;
    let mut rng = Rng(seed);
    let docs: Vec<Value> = (0..2 * per_mode)
        .map(|i| scenario(&mut rng, i % 2 == 1, false))
        .collect();
    let (_, rust) = assert_same(&docs, false);

    // Figures, and a guard that the scenarios exercise what they claim to.
    let mut by_op: BTreeMap<String, usize> = BTreeMap::new();
    let (mut hits, mut stripped, mut misses, mut rts) = (0, 0, 0, 0);
    for (doc, out) in docs.iter().zip(&rust) {
        for (op, r) in doc["ops"].as_array().unwrap().iter().zip(&out.results) {
            *by_op
                .entry(op["op"].as_str().unwrap().to_owned())
                .or_default() += 1;
            if op["op"] == "get" {
                match r {
                    Value::Null => misses += 1,
                    r if r.get("access_token").is_some() => hits += 1,
                    _ => stripped += 1,
                }
            }
            if op["op"] == "refreshTokensByAudience" && r.as_array().is_some_and(|a| !a.is_empty())
            {
                rts += 1;
            }
        }
    }
    let total: usize = by_op.values().sum();
    eprintln!(
        "differential: seed {seed:#x}, {} scenarios ({per_mode} per mode), {total} ops compared; \
         gets: {hits} hits, {stripped} refresh-only, {misses} misses; \
         {rts} non-empty refresh token lists; ops by kind: {by_op:?}",
        docs.len()
    );
    assert!(
        hits > 50 && stripped > 20 && misses > 50 && rts > 20,
        "scenarios too weak"
    );
}

/// A fractional `expires_in` (auth0-spa-js accepts one and stores a fractional
/// `expiresAt`): the same results, and the same stored values once `expiresAt` is rounded
/// down (we store whole seconds; the expiry decision is the same).
#[test]
fn fractional_expires_in_has_the_same_semantics() {
    let mut rng = Rng(DEFAULT_SEED ^ 0xf4ac);
    let docs: Vec<Value> = (0..80)
        .map(|i| scenario(&mut rng, i % 2 == 1, true))
        .collect();
    let fractional = docs
        .iter()
        .flat_map(|d| d["ops"].as_array().unwrap())
        .filter(|op| {
            op["entry"]["expires_in"]
                .as_f64()
                .is_some_and(|x| x.fract() != 0.0)
        })
        .count();
    assert!(fractional > 100, "only {fractional} fractional entries");
    assert_same(&docs, true);
}

// ---- documented improvements: auth0-spa-js shows the old behaviour, we the new ----------

const P: &str = "@@auth0spajs@@";
const API: &str = "https://api.one.test";

fn entry(
    client: &str,
    audience: &str,
    scope: &str,
    at: &str,
    expires_in: i64,
    rt: Option<&str>,
) -> Value {
    let mut e = json!({
        "client_id": client, "audience": audience, "scope": scope,
        "access_token": at, "expires_in": expires_in,
    });
    if let Some(rt) = rt {
        e["refresh_token"] = json!(rt);
    }
    json!({"op": "set", "entry": e})
}

fn get(client: &str, audience: Option<&str>, scope: Option<&str>, use_mrrt: bool) -> Value {
    json!({"op": "get", "clientId": client, "audience": audience, "scope": scope, "leeway": 0, "useMrrt": use_mrrt})
}

fn doc(mode: &str, ops: Vec<Value>) -> Value {
    json!({"mode": mode, "startMs": 1_700_000_000_250i64, "clientId": "alpha-app", "ops": ops})
}

/// Both sides of one scenario.
fn both(d: &Value) -> (Outcome, Outcome) {
    let js = run_js(std::slice::from_ref(d)).remove(0);
    (js, run_rust(d))
}

fn access_token(r: &Value) -> Option<&str> {
    r.get("access_token").and_then(Value::as_str)
}

fn is_invalid_key(r: &Value) -> bool {
    r["error"] == tokencache_core::ErrorKind::InvalidKey.as_str()
}

/// Several stored keys match: auth0-spa-js takes the first in insertion order, so an
/// expired first match hides a valid later one; we take the valid one.
#[test]
fn improvement_order_independent_matching() {
    let d = doc(
        "allKeys",
        vec![
            entry("alpha-app", API, "openid profile", "at-short", 60, None),
            entry(
                "alpha-app",
                API,
                "openid profile email",
                "at-long",
                3600,
                None,
            ),
            json!({"op": "advance", "seconds": 120}),
            get("alpha-app", Some(API), Some("openid"), false),
        ],
    );
    let (js, rust) = both(&d);
    assert_eq!(
        js.results[3],
        Value::Null,
        "auth0-spa-js: the expired first match"
    );
    assert_eq!(
        access_token(&rust.results[3]),
        Some("at-long"),
        "ours: the valid match"
    );

    // MRRT: auth0-spa-js returns the first entry with a refresh token in key order; we rank
    // (valid first, then fewest scopes, then smallest key), whatever the insertion order.
    let d = doc(
        "allKeys",
        vec![
            entry(
                "alpha-app",
                "urn:three",
                "openid profile email",
                "at-1",
                10,
                Some("rt-first"),
            ),
            entry("alpha-app", API, "admin", "at-2", 3600, Some("rt-best")),
            json!({"op": "advance", "seconds": 60}),
            get(
                "alpha-app",
                Some("https://api.two.test"),
                Some("read:items"),
                true,
            ),
        ],
    );
    let (js, rust) = both(&d);
    assert_eq!(js.results[3]["refresh_token"], "rt-first");
    assert_eq!(rust.results[3]["refresh_token"], "rt-best");
    assert_eq!(
        rust.results[3],
        json!({"refresh_token": "rt-best", "audience": API, "scope": "admin"})
    );
}

/// `clear("app")`: auth0-spa-js removes every key containing "app" (so also "app-2"'s);
/// we remove exactly that client's keys. `clear("")`: auth0-spa-js clears every client; we
/// refuse it.
#[test]
fn improvement_clear_exact_client_and_empty_client_refused() {
    let d = doc(
        "allKeys",
        vec![
            entry("app", API, "openid", "at-1", 3600, None),
            entry("app-2", API, "openid", "at-2", 3600, None),
            json!({"op": "clear", "clientId": "app"}),
        ],
    );
    let (js, rust) = both(&d);
    let other = format!("{P}::app-2::{API}::openid");
    assert!(
        js.store.is_empty(),
        "auth0-spa-js also cleared app-2: {:?}",
        js.store
    );
    assert_eq!(rust.store.keys().collect::<Vec<_>>(), vec![&other]);

    let d = doc(
        "allKeys",
        vec![
            entry("app", API, "openid", "at-1", 3600, None),
            json!({"op": "clear", "clientId": ""}),
        ],
    );
    let (js, rust) = both(&d);
    assert_eq!(js.results[1], Value::Null);
    assert!(js.store.is_empty());
    assert!(is_invalid_key(&rust.results[1]), "{}", rust.results[1]);
    assert_eq!(rust.store.len(), 1);
}

/// `remove` leaves the manifest line in auth0-spa-js, which then hides a valid entry from
/// subset lookup; ours updates the manifest.
#[test]
fn improvement_remove_updates_the_manifest() {
    let removed = format!("{P}::alpha-app::{API}::openid profile");
    let kept = format!("{P}::alpha-app::{API}::openid profile email");
    let d = doc(
        "manifest",
        vec![
            entry("alpha-app", API, "openid profile", "at-1", 3600, None),
            entry("alpha-app", API, "openid profile email", "at-2", 3600, None),
            json!({"op": "remove", "clientId": "alpha-app", "audience": API, "scope": "openid profile"}),
            get("alpha-app", Some(API), Some("openid"), false),
        ],
    );
    let (js, rust) = both(&d);
    let manifest = format!("{P}::alpha-app");
    assert_eq!(
        js.store[&manifest],
        json!({"keys": [removed, kept]}),
        "dangling line"
    );
    assert_eq!(
        js.results[3],
        Value::Null,
        "auth0-spa-js: hidden by the dangling line"
    );
    assert_eq!(rust.store[&manifest], json!({"keys": [kept]}));
    assert_eq!(access_token(&rust.results[3]), Some("at-2"));
}

/// In manifest mode auth0-spa-js's `clear(client)` deletes the whole manifest, so other
/// clients' entries can no longer be found by subset; ours removes that client's lines.
#[test]
fn improvement_manifest_clear_client_keeps_other_clients() {
    let d = doc(
        "manifest",
        vec![
            entry("alpha-app", API, "openid profile", "at-a", 3600, None),
            entry("bravo-app", API, "openid profile", "at-b", 3600, None),
            json!({"op": "clear", "clientId": "bravo-app"}),
            get("alpha-app", Some(API), Some("openid"), false),
        ],
    );
    let (js, rust) = both(&d);
    let manifest = format!("{P}::alpha-app");
    let alpha = format!("{P}::alpha-app::{API}::openid profile");
    assert!(
        !js.store.contains_key(&manifest),
        "auth0-spa-js deleted the manifest"
    );
    assert!(js.store.contains_key(&alpha));
    assert_eq!(
        js.results[3],
        Value::Null,
        "auth0-spa-js can no longer find alpha's entry"
    );
    assert_eq!(rust.store[&manifest], json!({"keys": [alpha]}));
    assert_eq!(access_token(&rust.results[3]), Some("at-a"));
}

/// `remove(client, None, None)` names the bare client key, the manifest's own: auth0-spa-js
/// deletes the manifest; we refuse and remove nothing.
#[test]
fn improvement_remove_without_audience_and_scope_refused() {
    let d = doc(
        "manifest",
        vec![
            entry("alpha-app", API, "openid", "at-1", 3600, None),
            json!({"op": "remove", "clientId": "alpha-app", "audience": null, "scope": null}),
        ],
    );
    let (js, rust) = both(&d);
    let manifest = format!("{P}::alpha-app");
    assert_eq!(js.results[1], Value::Null);
    assert!(
        !js.store.contains_key(&manifest),
        "auth0-spa-js removed the manifest"
    );
    assert!(is_invalid_key(&rust.results[1]), "{}", rust.results[1]);
    assert!(rust.store.contains_key(&manifest));
}

/// Keys that would not parse back to their parts: auth0-spa-js stores them (and later
/// reads them as other parts); we refuse them with InvalidKey and store nothing.
#[test]
fn improvement_keys_that_would_misparse_are_refused() {
    let d = doc(
        "allKeys",
        vec![
            // No audience: stored at prefix::client::openid, which reads as audience "openid".
            entry("alpha-app", "", "openid", "at-1", 3600, None),
            // A client id with the separator.
            entry("alpha::app", API, "openid", "at-2", 3600, None),
            // An id token of the empty client: stored at prefix::@@user@@.
            json!({"op": "setIdToken", "clientId": "", "idToken": "idt", "decodedToken": decoded("idt", 1)}),
            get("alpha-app", None, Some("openid"), false),
        ],
    );
    let (js, rust) = both(&d);
    assert!(js.store.contains_key(&format!("{P}::alpha-app::openid")));
    assert!(js
        .store
        .contains_key(&format!("{P}::alpha::app::{API}::openid")));
    assert!(js.store.contains_key(&format!("{P}::@@user@@")));
    assert_eq!(access_token(&js.results[3]), Some("at-1"));
    for (i, r) in rust.results.iter().enumerate() {
        assert!(is_invalid_key(r), "op {i}: {r}");
    }
    assert!(rust.store.is_empty(), "{:?}", rust.store);
}

// ---- parity in corners the random scenarios do not reach ---------------------------

/// A lookup with an empty scope string (not an absent one): a deliberate, documented
/// difference (DESIGN.md treats `""` as absent everywhere).
#[test]
fn design_empty_scope_is_absent_in_lookups() {
    // DESIGN.md: "An absent part and an empty string are the same thing everywhere".
    // auth0-spa-js keeps a lookup scope of "" and splits it into [""], which no stored
    // scope contains, so its get(c, aud, "") is a miss although get(c, aud, None) hits.
    // We treat "" as absent: both find the entry.
    let d = doc(
        "allKeys",
        vec![
            entry(
                "alpha-app",
                API,
                "openid profile",
                "at-1",
                3600,
                Some("rt-1"),
            ),
            get("alpha-app", Some(API), Some(""), false),
            get("alpha-app", Some(API), None, false),
        ],
    );
    let (js, rust) = both(&d);
    assert_eq!(js.results[1], Value::Null, "auth0-spa-js: a miss");
    assert_ne!(
        js.results[2],
        Value::Null,
        "auth0-spa-js: a hit without a scope"
    );
    assert_eq!(rust.results[1], js.results[2], "ours: \"\" is absent");
    assert_eq!(rust.results[2], js.results[2]);
    assert_eq!(rust.store, js.store);
}

/// A decoded ID token without `user` (or `claims`): auth0-spa-js stores the object as
/// given; we must not add members on write.
#[test]
fn parity_decoded_token_without_user_is_stored_as_given() {
    let decoded_claims_only = json!({"claims": {"__raw": "idt-1", "sub": "auth0|1"}});
    let mut e = entry("alpha-app", API, "openid", "at-1", 3600, None);
    e["entry"]["id_token"] = json!("idt-1");
    e["entry"]["decodedToken"] = decoded_claims_only.clone();
    let d = doc(
        "allKeys",
        vec![
            json!({"op": "setIdToken", "clientId": "alpha-app", "idToken": "idt-1", "decodedToken": decoded_claims_only}),
            e,
            json!({"op": "getIdToken", "clientId": "alpha-app", "audience": null, "scope": null}),
        ],
    );
    let (js, rust) = both(&d);
    let id_key = format!("{P}::alpha-app::@@user@@");
    assert!(js.store[&id_key]["decodedToken"].get("user").is_none());
    assert_eq!(
        rust.store, js.store,
        "stored JSON differs from auth0-spa-js"
    );
    assert_eq!(rust.results, js.results);
}

/// An expired entry without a refresh token at the exact key: auth0-spa-js removes it and
/// answers none; for us it is a miss in every step, so the MRRT fallback answers (as it
/// would on a cache whose physical expiry already dropped the entry).
#[test]
fn improvement_expired_without_refresh_token_is_a_miss_in_every_step() {
    let d = doc(
        "allKeys",
        vec![
            entry("alpha-app", API, "openid", "at-short", 60, None),
            entry(
                "alpha-app",
                "urn:three",
                "admin",
                "at-long",
                3600,
                Some("rt-1"),
            ),
            json!({"op": "advance", "seconds": 120}),
            get("alpha-app", Some(API), Some("openid"), true),
        ],
    );
    let (js, rust) = both(&d);
    assert_eq!(js.results[3], Value::Null, "auth0-spa-js: none");
    assert_eq!(
        rust.results[3],
        json!({"refresh_token": "rt-1", "audience": "urn:three", "scope": "admin"}),
        "ours: the MRRT fallback"
    );
    assert_eq!(js.store, rust.store, "both removed the expired entry");
}
