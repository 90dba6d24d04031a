//! Checks of the raw [`Cache`] contract, without a manager.

use std::sync::Arc;

use serde_json::json;
use tokencache_core::{
    Cache, Cacheable, Clock, EntryBody, IdTokenEntry, KeyManifestEntry, Keys, WrappedCacheEntry,
};

use crate::harness::{decoded, entry, key, Check, Subject};

fn token_entry(at: &str, rt: Option<&str>, expires_at: i64) -> Cacheable {
    let mut e = entry("c1", "https://api.example.com/", "openid read", at, 3600.0);
    e.refresh_token = rt.map(str::to_owned);
    Cacheable::Entry(WrappedCacheEntry::new(EntryBody::from(e), expires_at))
}

fn far_future() -> i64 {
    // Far beyond the clock of any check, so that physical expiry never drops it.
    crate::checks::START_MS / 1000 + 10 * 365 * 86_400
}

async fn round_trip(t: &Check, cache: &dyn Cache, k: &str, v: Cacheable, what: &str) {
    t.ok(cache.set(k, v.clone()).await, what);
    let got = t.ok(cache.get(k).await, what);
    t.that(
        got.is_some(),
        format_args!("{what}: the value written is missing"),
    );
    t.json_eq(&got, Some(&v), what);
    t.eq(got, Some(v.clone()), what);
    t.eq(read_with(t, cache, k, what).await, vec![Some(v)], what);
}

/// Every value `read_with` shows for `k`: one, what `get` returns.
async fn read_with(t: &Check, cache: &dyn Cache, k: &str, what: &str) -> Vec<Option<Cacheable>> {
    let mut shown = Vec::new();
    t.ok(
        cache
            .read_with(k, &mut |value| shown.push(value.cloned()))
            .await,
        what,
    );
    shown
}

/// A token entry, a key manifest and an ID token entry read back equal to what was written,
/// through `get` and through `read_with`.
pub async fn raw_round_trip_of_every_kind(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_round_trip_of_every_kind", s);
    let e = token_entry("at-1", Some("rt-1"), far_future());
    round_trip(
        &t,
        &*cache,
        &key(&["c1", "https://api.example.com/", "openid read"]),
        e,
        "token entry",
    )
    .await;
    let m = Cacheable::Manifest(KeyManifestEntry {
        keys: vec![key(&["c1", "a", "s"]), key(&["c1", "@@user@@"])],
    });
    round_trip(&t, &*cache, &key(&["c1"]), m, "key manifest").await;
    let id = Cacheable::IdToken(IdTokenEntry {
        id_token: "id-token-1".into(),
        decoded_token: decoded("user-1"),
    });
    round_trip(&t, &*cache, &key(&["c1", "@@user@@"]), id, "id token entry").await;
    t.that(
        t.ok(
            cache.get(&key(&["c1", "never-written"])).await,
            "get of a missing key",
        )
        .is_none(),
        "a key never written must be a miss",
    );
    let shown = read_with(&t, &*cache, &key(&["c1", "never-written"]), "read_with").await;
    t.eq(
        shown,
        vec![None],
        "read_with of a missing key shows None, once",
    );
}

/// A second `set` at a key replaces the first value (also with another kind of value).
pub async fn raw_overwrite_replaces_value(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_overwrite_replaces_value", s);
    let k = key(&["c1", "aud", "s"]);
    round_trip(
        &t,
        &*cache,
        &k,
        token_entry("at-1", Some("rt-1"), far_future()),
        "first write",
    )
    .await;
    round_trip(
        &t,
        &*cache,
        &k,
        token_entry("at-2", None, far_future() + 1),
        "overwrite",
    )
    .await;
    let id = Cacheable::IdToken(IdTokenEntry {
        id_token: "id-2".into(),
        decoded_token: decoded("u"),
    });
    round_trip(&t, &*cache, &k, id, "overwrite with another kind").await;
}

/// `remove` deletes the value; removing a missing key is not an error.
pub async fn raw_remove_deletes_and_missing_key_is_ok(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_remove_deletes_and_missing_key_is_ok", s);
    let (k, other) = (key(&["c1", "aud", "s"]), key(&["c1", "aud", "s2"]));
    round_trip(
        &t,
        &*cache,
        &k,
        token_entry("at", Some("rt"), far_future()),
        "write",
    )
    .await;
    round_trip(
        &t,
        &*cache,
        &other,
        token_entry("at-o", Some("rt"), far_future()),
        "write",
    )
    .await;
    t.ok(cache.remove(&k).await, "remove");
    t.that(
        t.ok(cache.get(&k).await, "get").is_none(),
        "the removed key is still there",
    );
    t.that(
        t.ok(cache.get(&other).await, "get").is_some(),
        "remove deleted another key",
    );
    t.ok(
        cache.remove(&k).await,
        "removing a key that is already gone",
    );
    t.ok(
        cache.remove(&key(&["never", "written"])).await,
        "removing a key never written",
    );
}

/// `remove_many` removes exactly the keys it is given (missing ones included, an empty
/// list is a no-op), whatever batching the backend does.
pub async fn raw_remove_many_removes_exactly_those_keys(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_remove_many_removes_exactly_those_keys", s);
    let keys: Vec<String> = (0..5)
        .map(|i| key(&["c1", "aud", &format!("s{i}")]))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        let value = token_entry(&format!("at-{i}"), Some("rt"), far_future());
        round_trip(&t, &*cache, k, value, "write").await;
    }
    t.ok(cache.remove_many(&[]).await, "remove_many of nothing");
    let gone: Vec<Arc<str>> = vec![
        keys[1].as_str().into(),
        keys[3].as_str().into(),
        key(&["never", "written"]).into(),
    ];
    t.ok(cache.remove_many(&gone).await, "remove_many");
    for (i, k) in keys.iter().enumerate() {
        let present = t.ok(cache.get(k).await, "get").is_some();
        t.that(
            present == (i != 1 && i != 3),
            "remove_many removed a key it was not given, or kept one it was",
        );
    }
}

/// `lists_keys()` is true exactly when `all_keys` returns `Some`; a listing cache lists
/// exactly the keys it holds, and `keys_with_prefix` exactly those with the prefix.
pub async fn raw_listing_is_exact(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_listing_is_exact", s);
    let listed = t.ok(cache.all_keys().await, "all_keys of an empty cache");
    t.eq(
        listed.is_some(),
        cache.lists_keys(),
        "lists_keys() must say whether all_keys returns Some",
    );
    if !cache.lists_keys() {
        let p = t.ok(cache.keys_with_prefix("@@").await, "keys_with_prefix");
        t.that(
            p.is_none(),
            "a cache that does not list keys must return None from keys_with_prefix",
        );
        return;
    }
    t.eq(listed, Some(Keys::new()), "all_keys of a fresh cache");
    let keys = [
        key(&["c1", "a", "s"]),
        key(&["c1", "a", "s t"]),
        key(&["c1", "@@user@@"]),
        key(&["c2", "a"]),
        key(&["c1"]),
    ];
    for (i, k) in keys.iter().enumerate() {
        t.ok(
            cache
                .set(k, token_entry(&format!("at-{i}"), Some("rt"), far_future()))
                .await,
            "set",
        );
    }
    t.ok(cache.remove(&keys[1]).await, "remove");
    let mut want: Vec<String> = keys.iter().filter(|k| **k != keys[1]).cloned().collect();
    want.sort();
    let mut got = t
        .ok(cache.all_keys().await, "all_keys")
        .unwrap_or_default()
        .to_strings();
    got.sort();
    t.eq(got, want.clone(), "all_keys after 5 sets and 1 remove");
    let mut got = t
        .ok(
            cache.keys_with_prefix(&key(&["c1", ""])).await,
            "keys_with_prefix",
        )
        .unwrap_or_default()
        .to_strings();
    got.sort();
    let want_c1: Vec<String> = want
        .iter()
        .filter(|k| k.starts_with(&key(&["c1", ""])))
        .cloned()
        .collect();
    t.eq(got, want_c1, "keys_with_prefix(\"@@auth0spajs@@::c1::\")");
    let mut got = t
        .ok(cache.keys_with_prefix("").await, "keys_with_prefix(\"\")")
        .unwrap_or_default()
        .to_strings();
    got.sort();
    t.eq(got, want, "keys_with_prefix(\"\") lists every key");
}

/// `keys_with_prefix` is a plain string-prefix test: `p::c1::` never returns `p::c10::..`,
/// and characters that are wildcards to SQL `LIKE`, Redis `SCAN MATCH` or regular
/// expressions (`% _ * ? [ ] \ .`) match only themselves.
pub async fn raw_prefix_listing_respects_boundaries(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_prefix_listing_respects_boundaries", s);
    if !cache.lists_keys() {
        return; // nothing to list in manifest mode
    }
    let keys = [
        "p::c1::a::s",
        "p::c1::b",
        "p::c10::a::s",
        "p::c1",
        "p::c2::a",
        "p::c%::a",
        "p::cX::a",
        "p::c_::a",
        "p::c*::a",
        "p::c?::a",
        "p::[c]::a",
        "p::c::a",
        "p::c\\::a",
        "p::c.::a",
        "q::c1::a::s",
        "P::c1::a",
    ];
    for k in keys {
        t.ok(
            cache
                .set(k, token_entry("at", Some("rt"), far_future()))
                .await,
            "set",
        );
    }
    for prefix in [
        "p::c1::",
        "p::c1",
        "p::c%",
        "p::c_",
        "p::c*",
        "p::c?",
        "p::[c]",
        "p::[",
        "p::c\\",
        "p::c.",
        "p::",
        "P::",
        "p::c1::a::s",
        "p::c1::a::s::",
        "zzz",
    ] {
        let mut got = t
            .ok(cache.keys_with_prefix(prefix).await, "keys_with_prefix")
            .unwrap_or_default()
            .to_strings();
        got.sort();
        let mut want: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with(prefix))
            .map(|k| k.to_string())
            .collect();
        want.sort();
        t.eq(got, want, &format!("keys_with_prefix({prefix:?})"));
    }
}

/// Tokens of 16 KiB (and a body of several of them) round-trip unchanged.
pub async fn raw_large_tokens_round_trip(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_large_tokens_round_trip", s);
    let big = |c: char| -> String { std::iter::repeat_n(c, 16 * 1024).collect() };
    let mut e = entry("c1", "aud", "openid", &big('a'), 60.0);
    e.refresh_token = Some(big('r'));
    e.id_token = Some(big('i'));
    let v = Cacheable::Entry(WrappedCacheEntry::new(EntryBody::from(e), far_future()));
    round_trip(
        &t,
        &*cache,
        &key(&["c1", "aud", "openid"]),
        v,
        "16 KiB tokens",
    )
    .await;
    let id = Cacheable::IdToken(IdTokenEntry {
        id_token: big('é'),
        decoded_token: decoded(&big('u')),
    });
    round_trip(
        &t,
        &*cache,
        &key(&["c1", "@@user@@"]),
        id,
        "16 KiB id token",
    )
    .await;
}

/// Unicode client ids, audiences and scopes, and audiences that are URLs with a query
/// and a fragment, work as keys and as values.
pub async fn raw_unicode_and_url_parts_round_trip(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_unicode_and_url_parts_round_trip", s);
    let cases = [
        (
            "ç客户-🔑",
            "https://api.example.com/v2?x=1#f",
            "openid 読む écrire",
        ),
        (
            "client",
            "https://api.example.com/v2?x=1&y=%20z#frag",
            "read:all write",
        ),
        ("клиент", "urn:aud ü", "😀"),
    ];
    let mut written = Vec::new();
    for (i, (client, aud, scope)) in cases.iter().enumerate() {
        let mut e = entry(client, aud, scope, &format!("at-ü-{i}"), 60.0);
        e.refresh_token = Some(format!("rt-€-{i}"));
        let v = Cacheable::Entry(WrappedCacheEntry::new(EntryBody::from(e), far_future()));
        let k = key(&[client, aud, scope]);
        round_trip(&t, &*cache, &k, v, &format!("key {k}")).await;
        written.push(k);
    }
    if cache.lists_keys() {
        let mut got = t
            .ok(cache.all_keys().await, "all_keys")
            .unwrap_or_default()
            .to_strings();
        got.sort();
        written.sort();
        t.eq(got, written, "all_keys lists the Unicode keys unchanged");
        let p = key(&["ç客户-🔑", ""]);
        let got = t
            .ok(cache.keys_with_prefix(&p).await, "keys_with_prefix")
            .unwrap_or_default()
            .to_strings();
        t.eq(
            got,
            vec![key(&[cases[0].0, cases[0].1, cases[0].2])],
            "keys_with_prefix of a Unicode client",
        );
    }
}

/// Fields this version does not know survive a round trip, in the body, in the decoded
/// token and in its claims; an explicit `null` reads as absent.
pub async fn raw_unknown_fields_are_preserved(s: Subject) {
    let (t, cache, _clock) = Check::new("raw_unknown_fields_are_preserved", s);
    let stored = json!({
        "body": {
            "client_id": "c1", "audience": "aud", "scope": "openid", "access_token": "at",
            "expires_in": 86400, "token_type": "Bearer", "refresh_token": "rt",
            "future_field": {"nested": [1, "two", null, true]}, "another": 1.5,
            "decodedToken": {"claims": {"sub": "u", "__raw": "raw", "custom": {"x": 1}},
                              "user": {"name": "n"}, "encoded": {"header": "h"}}
        },
        "expiresAt": far_future()
    });
    let v: Cacheable = match serde_json::from_value(stored.clone()) {
        Ok(v) => v,
        Err(e) => t.fail(format_args!("an auth0-spa-js entry does not parse: {e}")),
    };
    let k = key(&["c1", "aud", "openid"]);
    t.ok(cache.set(&k, v).await, "set");
    let got = t.ok(cache.get(&k).await, "get");
    t.json_eq(&got, &stored, "unknown fields after a round trip");
    let with_null = json!({"body": {"access_token": "at", "refresh_token": null, "x": null}, "expiresAt": far_future()});
    let v: Cacheable = match serde_json::from_value(with_null) {
        Ok(v) => v,
        Err(e) => t.fail(format_args!(
            "an entry with a null field does not parse: {e}"
        )),
    };
    t.ok(cache.set(&k, v).await, "set");
    let got = t.ok(cache.get(&k).await, "get");
    let body = got
        .as_ref()
        .and_then(|g| g.as_entry())
        .map(|e| e.body.refresh_token.clone());
    t.eq(
        body,
        Some(None),
        "an explicit null refresh token reads as absent",
    );
}

/// Physical expiry keeps what the capabilities promise: an entry with a refresh token is
/// never dropped for being expired, and a cache without physical expiry
/// ([`Capabilities::physical_expiry`](crate::Capabilities::physical_expiry) false) keeps
/// an expired entry without one too, until it is removed.
pub async fn raw_physical_expiry_matches_capabilities(s: Subject) {
    let (t, cache, clock) = Check::new("raw_physical_expiry_matches_capabilities", s);
    let now_s = clock.now_ms().div_euclid(1000);
    let with = key(&["c1", "aud", "with-rt"]);
    let without = key(&["c1", "aud", "without-rt"]);
    t.ok(
        cache
            .set(&with, token_entry("at-1", Some("rt-1"), now_s + 5))
            .await,
        "set",
    );
    t.ok(
        cache
            .set(&without, token_entry("at-2", None, now_s + 5))
            .await,
        "set",
    );
    clock.advance_ms(3_600_000);
    t.that(
        t.ok(cache.get(&with).await, "get").is_some(),
        "an expired entry with a refresh token must never be dropped by physical expiry",
    );
    let kept = t.ok(cache.get(&without).await, "get").is_some();
    if !t.subject.capabilities.physical_expiry {
        t.that(
            kept,
            "a cache whose capabilities say it has no physical expiry dropped an expired entry",
        );
    }
}
