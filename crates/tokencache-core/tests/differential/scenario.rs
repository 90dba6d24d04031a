//! The scenario document both sides run, what a run produces, and builders for
//! hand-written scenarios.
//!
//! A document is the JSON `runScenario` of `tools/auth0-spa-js/lib.mjs` takes:
//! `{"mode": "allKeys" | "manifest", "startMs", "clientId", "ops": [..]}`, each op an
//! object named by its `"op"` member (`set`, `get`, `setIdToken`, `getIdToken`, `remove`,
//! `clear`, `stripRefreshToken`, `updateEntry`, `refreshTokensByAudience`, `advance`) with
//! the arguments of the call under their auth0-spa-js names. The harness README lists them.

use serde_json::{json, Map, Value};

/// The default key prefix, for keys written out in assertions.
pub const P: &str = tokencache_core::DEFAULT_PREFIX;
/// An audience of hand-written scenarios.
pub const API: &str = "https://api.one.test";

/// What one scenario produced: a result per op and every stored key's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub results: Vec<Value>,
    pub store: Map<String, Value>,
}

/// A `set` of a token entry.
pub fn entry(
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

/// A `get` without leeway.
pub fn get(client: &str, audience: Option<&str>, scope: Option<&str>, use_mrrt: bool) -> Value {
    json!({"op": "get", "clientId": client, "audience": audience, "scope": scope, "leeway": 0, "useMrrt": use_mrrt})
}

/// A scenario of `ops` for the manifest client "alpha-app", starting at a time that is not a
/// whole second.
pub fn doc(mode: &str, ops: Vec<Value>) -> Value {
    json!({"mode": mode, "startMs": 1_700_000_000_250i64, "clientId": "alpha-app", "ops": ops})
}

/// A decoded ID token as auth0-spa-js keeps it (`claims` with `__raw`, and `user`).
pub fn decoded(id_token: &str, n: usize) -> Value {
    let sub = format!("auth0|user-{}", n % 3);
    json!({
        "claims": {"__raw": id_token, "sub": sub, "exp": 1_700_003_600, "email_verified": n % 2 == 0},
        "user": {"sub": sub, "name": format!("User {}", n % 3)},
    })
}

/// The access token of a `get` result, if it has one.
pub fn access_token(r: &Value) -> Option<&str> {
    r.get("access_token").and_then(Value::as_str)
}

/// Whether a result is our `InvalidKey` error.
pub fn is_invalid_key(r: &Value) -> bool {
    r["error"] == tokencache_core::ErrorKind::InvalidKey.as_str()
}
