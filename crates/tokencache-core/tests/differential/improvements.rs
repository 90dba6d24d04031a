//! Deliberate differences from auth0-spa-js (docs/design.md, "Deliberate differences"):
//! each test runs a scenario on both sides and shows auth0-spa-js's behaviour next to
//! ours. The random scenarios stay clear of these situations (see the generator).

use serde_json::{json, Value};

use crate::compare::both;
use crate::scenario::{access_token, decoded, doc, entry, get, is_invalid_key, API, P};

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

/// A lookup with an empty scope string (not an absent one): a deliberate, documented
/// difference (docs/design.md treats `""` as absent everywhere).
#[test]
fn design_empty_scope_is_absent_in_lookups() {
    // docs/design.md: an empty part and an absent one are the same thing everywhere.
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
