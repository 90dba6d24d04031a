//! The random scenario generator: seeded, reproducible scenario documents that stay in
//! the region where auth0-spa-js and our design agree, so that any difference the
//! differential test finds is a bug.
//!
//! What it keeps away from, and why (each is a deliberate difference, shown on both sides
//! by an `improvement_*` test):
//! - a lookup (`get`, `getIdToken`) is emitted only when at most one key ever stored could
//!   match it by scope (auth0-spa-js takes the first match in key order, we rank matches);
//! - an MRRT lookup only when at most one key of the client ever held a refresh token
//!   (the same, for the refresh-token fallback);
//! - `clear(client)` in manifest mode only when every key ever stored is that client's
//!   (auth0-spa-js deletes the whole manifest); no `remove` in manifest mode
//!   (auth0-spa-js leaves the manifest line); audiences and scopes never empty together, no
//!   empty client id, no empty audience before a scope (keys that would not parse back);
//! - **an expired entry without a refresh token met by a `get` that would then find
//!   something else.** Our rule is that such an entry is a miss in every step: `get`
//!   removes it (and its manifest line) and then goes on exactly as if it had not been
//!   stored, so that the MRRT fallback (with `useMrrt`) returns the refresh token of
//!   another entry of the client. auth0-spa-js removes it and returns nothing; only its
//!   next call falls back. The generator therefore looks at the state the scenario has
//!   reached so far (our manager runs it op by op, see [`RustRun`]) and, before emitting a
//!   `get`, asks a copy of it: does this `get` remove an entry, and would the same `get`
//!   right after find anything (or remove another)? If so, the `get` is emitted without
//!   `useMrrt`; if even that would find something (another entry by scope), an `advance`
//!   takes its place. The question has the same answer whether the manager returns nothing
//!   after the removal (auth0-spa-js's rule) or falls back at once (ours), so the random
//!   scenarios pass under both; `generator_avoids_an_expired_match_without_refresh_token`
//!   shows the situation on both sides.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use tokencache_core::CacheKey;

use crate::runner::RustRun;
use crate::scenario::decoded;

/// splitmix64: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
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

/// A key the scenario has stored at some point.
struct Stored {
    client: &'static str,
    audience: &'static str,
    scope: &'static str,
    had_refresh_token: bool,
}

/// What the generator avoided, over all the scenarios it made.
#[derive(Debug, Default, Clone, Copy)]
pub struct Avoided {
    /// `get`s emitted without `useMrrt` because their match was an expired entry without a
    /// refresh token and the fallback would have found one.
    pub mrrt_after_expired: usize,
    /// `get`s replaced by an `advance` because, after removing such an entry, the same
    /// lookup would find another entry.
    pub lookup_after_expired: usize,
}

/// Random scenarios: `count` documents, every second one in manifest mode (a cache that
/// cannot list its keys), the others over a cache that lists them. With `fractional`, most
/// entries have a fractional `expires_in`.
pub fn generate(rng: &mut Rng, count: usize, fractional: bool) -> (Vec<Value>, Avoided) {
    let mut avoided = Avoided::default();
    let docs = (0..count)
        .map(|i| scenario(rng, i % 2 == 1, fractional, &mut avoided))
        .collect();
    (docs, avoided)
}

fn scenario(rng: &mut Rng, manifest: bool, fractional: bool, avoided: &mut Avoided) -> Value {
    let mut rng = Rng(rng.next());
    let mut doc = json!({
        "mode": if manifest { "manifest" } else { "allKeys" },
        // Not a whole second: expiresAt uses floor(now / 1000).
        "startMs": 1_700_000_000_000i64 + rng.below(1000) as i64,
        "clientId": *rng.pick(&CLIENTS),
    });
    let live = RustRun::start(&doc);
    let mut g = Gen {
        rng,
        manifest,
        fractional,
        n: 0,
        ever: BTreeMap::new(),
        refresh_tokens: vec!["rt-1".into(), "rt-2".into(), "rt-3".into()],
        live,
        avoided,
    };
    let len = 10 + g.rng.below(51);
    let ops: Vec<Value> = (0..len)
        .map(|_| {
            let op = g.op();
            g.live.apply(&op);
            op
        })
        .collect();
    doc["ops"] = json!(ops);
    doc
}

struct Gen<'a> {
    rng: Rng,
    manifest: bool,
    fractional: bool,
    n: usize,
    ever: BTreeMap<String, Stored>,
    refresh_tokens: Vec<String>,
    /// Our manager, run over the ops emitted so far.
    live: RustRun,
    avoided: &'a mut Avoided,
}

impl Gen<'_> {
    fn candidates(&self, client: &str, audience: &str, wanted: &[&str]) -> usize {
        self.ever
            .values()
            .filter(|k| k.client == client && k.audience == audience && !k.scope.is_empty())
            .filter(|k| {
                let have: HashSet<&str> = k.scope.split(' ').collect();
                wanted.iter().all(|w| have.contains(w))
            })
            .count()
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
                });
                s.had_refresh_token |= has_rt;
                json!({"op": "set", "entry": e})
            }
            30..=54 => match self.lookup() {
                Some((client, audience, scope)) => {
                    let use_mrrt = self.mrrt_ok(client) && self.rng.chance(40);
                    let op = json!({
                        "op": "get", "clientId": client, "audience": audience, "scope": scope,
                        "leeway": *self.rng.pick(&LEEWAYS), "useMrrt": use_mrrt,
                        "cacheMode": match self.rng.below(4) { 0 => json!("cache-only"), 1 => json!("on"), _ => Value::Null },
                    });
                    self.checked_get(op)
                }
                None => self.advance(),
            },
            55..=60 => match self.lookup() {
                // getIdToken's own lookup is a get without useMrrt, and its scope and
                // audience are set whenever it looks: at most one candidate, the exact key
                // among them, so nothing else is there to find after a removal.
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
                    let op = json!({
                        "op": "get", "clientId": client, "audience": audience, "scope": scope,
                        "leeway": 0, "useMrrt": self.mrrt_ok(client),
                    });
                    self.checked_get(op)
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

    /// `get_op`, unless it meets an expired entry without a refresh token and then could
    /// find something else (see the module documentation): then the same `get` without
    /// `useMrrt`, or, if that too would find something, an `advance`.
    fn checked_get(&mut self, mut get_op: Value) -> Value {
        if !meets_expired_then_finds(&self.live, &get_op) {
            return get_op;
        }
        if get_op["useMrrt"] == true {
            get_op["useMrrt"] = json!(false);
            if !meets_expired_then_finds(&self.live, &get_op) {
                self.avoided.mrrt_after_expired += 1;
                return get_op;
            }
        }
        self.avoided.lookup_after_expired += 1;
        self.advance()
    }

    fn advance(&mut self) -> Value {
        let ms = *self.rng.pick(&ADVANCE_MS);
        json!({"op": "advance", "seconds": ms as f64 / 1000.0})
    }
}

/// Whether `get_op`, in the state `run` has reached, removes an expired entry without a
/// refresh token and could then find something else: asked of a copy of the state, it
/// removes an entry, and then removes more than that one entry, or the same `get` once
/// more finds something or removes another entry.
///
/// The answer does not depend on which rule the manager follows: returning nothing after
/// the removal (auth0-spa-js) or going on as if the entry had not been stored (ours). Under
/// the first, the second `get` shows what a fallback would find; under the second, the
/// first `get` already found it, and the second finds it again.
pub fn meets_expired_then_finds(run: &RustRun, get_op: &Value) -> bool {
    let probe = run.fork();
    let before = probe.store();
    probe.apply(get_op);
    let after = probe.store();
    // Token entries only (the manifest goes when its last line does).
    let removed = before
        .iter()
        .filter(|(k, v)| !after.contains_key(*k) && v.get("body").is_some())
        .count();
    match removed {
        0 => return false,
        1 => {}
        _ => return true,
    }
    let again = probe.apply(get_op);
    !again.is_null() || probe.store() != after
}
