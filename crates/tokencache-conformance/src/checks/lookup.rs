//! Checks of `CacheManager` reads: exact and scope-subset matching, the choice among
//! several matches, expiry, MRRT, ID tokens and refresh tokens by audience.

use serde_json::json;
use tokencache_core::{CacheKey, Cacheable, EntryBody, GetOptions, IdTokenEntry};

use crate::harness::{
    assert_manifest, decoded, entry, get, manifest_lines, raw, set, with_rt, Check, Subject,
    MANIFEST_CLIENT, T0,
};

const API: &str = "https://api.example.com/v2?x=1#f";

fn opts() -> GetOptions {
    GetOptions::default()
}

/// The body auth0-spa-js keeps once the access token expired.
fn cut_down(rt: &str, audience: &str, scope: &str) -> serde_json::Value {
    json!({"refresh_token": rt, "audience": audience, "scope": scope})
}

/// A lookup by the exact key returns the stored body unchanged; another audience or
/// client is a miss.
pub async fn get_exact_key(s: Subject) {
    let (t, cache, clock) = Check::new("get_exact_key", s);
    let m = t.manager(&cache, &clock);
    let mut e = with_rt(entry("c1", API, "openid read", "at-1", 3600.0), "rt-1");
    e = e.with_id_token("id-1", decoded("u1"));
    e.oauth_token_scope = Some("openid read offline_access".into());
    set(&t, &m, e.clone()).await;
    set(&t, &m, entry("c1", API, "openid", "at-2", 3600.0)).await;
    let got = get(&t, &m, "c1", Some(API), Some("openid read"), opts()).await;
    t.json_eq(&got, Some(EntryBody::from(e)), "get of the exact key");
    let got = get(&t, &m, "c1", Some(API), Some("openid"), opts()).await;
    t.eq(
        got.and_then(|b| b.access_token.clone()),
        Some("at-2".into()),
        "get of the other exact key",
    );
    t.that(
        get(&t, &m, "c1", Some("https://other"), Some("openid"), opts())
            .await
            .is_none(),
        "another audience must miss",
    );
    t.that(
        get(&t, &m, "c2", Some(API), Some("openid"), opts())
            .await
            .is_none(),
        "another client must miss",
    );
    t.that(
        get(&t, &m, "c", Some(API), Some("openid"), opts())
            .await
            .is_none(),
        "a client id that is a prefix must miss",
    );
}

/// A lookup by a subset of the stored scopes (in any order) finds the entry; so does a
/// lookup without scope.
pub async fn get_by_scope_subset(s: Subject) {
    let (t, cache, clock) = Check::new("get_by_scope_subset", s);
    let m = t.manager(&cache, &clock);
    let e = with_rt(
        entry("c1", API, "openid profile read", "at-1", 3600.0),
        "rt-1",
    );
    set(&t, &m, e.clone()).await;
    let want = Some(EntryBody::from(e));
    for scope in [
        Some("read openid"),
        Some("profile"),
        Some("read profile openid"),
        None,
    ] {
        let got = get(&t, &m, "c1", Some(API), scope, opts()).await;
        t.json_eq(&got, &want, &format!("get with scope {scope:?}"));
    }
    // Nothing was written for the lookups.
    let lookup = t.key(&["c1", API, "read openid"]);
    t.that(
        raw(&t, &*cache, &lookup).await.is_none(),
        "a subset lookup must not write at the lookup key",
    );
    assert_manifest(&t, &m, &[&t.key(&["c1", API, "openid profile read"])]).await;
}

/// A lookup whose scopes are not all stored, or of another audience (even one that
/// extends the stored one), is a miss.
pub async fn get_uncovered_scope_misses(s: Subject) {
    let (t, cache, clock) = Check::new("get_uncovered_scope_misses", s);
    let m = t.manager(&cache, &clock);
    set(
        &t,
        &m,
        with_rt(entry("c1", "api", "openid read", "at", 3600.0), "rt"),
    )
    .await;
    set(
        &t,
        &m,
        with_rt(
            entry("c1", "api-2", "openid read write", "at", 3600.0),
            "rt",
        ),
    )
    .await;
    for (aud, scope) in [
        ("api", "openid write"),
        ("api", "openid read write"),
        ("api", "openi"),
        ("api", "openid read "),
        ("ap", "openid"),
        ("api-", "openid"),
    ] {
        t.that(
            get(&t, &m, "c1", Some(aud), Some(scope), opts())
                .await
                .is_none(),
            format_args!("get({aud:?}, {scope:?}) must miss"),
        );
    }
}

/// An entry stored without scope (`prefix::client::audience`) is found by its exact key
/// only, never by a scope lookup.
pub async fn get_never_matches_stored_empty_scope(s: Subject) {
    let (t, cache, clock) = Check::new("get_never_matches_stored_empty_scope", s);
    let m = t.manager(&cache, &clock);
    set(&t, &m, with_rt(entry("c1", "api", "", "at", 3600.0), "rt")).await;
    t.that(
        raw(&t, &*cache, &t.key(&["c1", "api"])).await.is_some(),
        "an entry without scope is stored at prefix::client::audience",
    );
    t.that(
        get(&t, &m, "c1", Some("api"), Some("openid"), opts())
            .await
            .is_none(),
        "a scope lookup must not match an entry stored without scope",
    );
    let got = get(&t, &m, "c1", Some("api"), None, opts()).await;
    t.eq(
        got.and_then(|b| b.access_token.clone()),
        Some("at".into()),
        "the exact key finds it",
    );
    let got = get(&t, &m, "c1", Some("api"), Some(""), opts()).await;
    t.eq(
        got.and_then(|b| b.access_token.clone()),
        Some("at".into()),
        "an empty scope is the same as none",
    );
}

/// Expiry is `expiresAt - leeway < now_s`, strictly, with `now_s = floor(now_ms / 1000)`:
/// an entry is valid through the whole second `expiresAt` and expired at `expiresAt + 1`.
/// (This also checks that physical expiry keeps entries through their last second.)
pub async fn expiry_boundary_is_strict(s: Subject) {
    let (t, cache, clock) = Check::new("expiry_boundary_is_strict", s);
    let m = t.manager(&cache, &clock);
    let with = with_rt(entry("c1", "api", "with", "at-1", 60.0), "rt-1");
    let without = entry("c1", "api", "without", "at-2", 60.0);
    set(&t, &m, with.clone()).await;
    set(&t, &m, without.clone()).await;
    clock.set_ms((T0 + 60) * 1000 + 999);
    for e in [&with, &without] {
        let got = get(&t, &m, "c1", Some("api"), Some(&e.scope), opts()).await;
        t.json_eq(
            &got,
            Some(EntryBody::from(e.clone())),
            "valid during the second expiresAt",
        );
    }
    clock.set_ms((T0 + 61) * 1000);
    let got = get(&t, &m, "c1", Some("api"), Some("with"), opts()).await;
    t.json_eq(
        &got,
        Some(cut_down("rt-1", "api", "with")),
        "expired at expiresAt + 1 (with a refresh token)",
    );
    let got = get(&t, &m, "c1", Some("api"), Some("without"), opts()).await;
    t.that(
        got.is_none(),
        "expired at expiresAt + 1 (without a refresh token)",
    );
    t.that(
        raw(&t, &*cache, &t.key(&["c1", "api", "without"]))
            .await
            .is_none(),
        "the expired entry without refresh token is removed",
    );
}

/// The leeway (`expiry_adjustment_seconds`) makes an entry expire that many seconds early.
pub async fn expiry_honours_leeway(s: Subject) {
    let (t, cache, clock) = Check::new("expiry_honours_leeway", s);
    let m = t.manager(&cache, &clock);
    let e = with_rt(entry("c1", "api", "s", "at", 100.0), "rt");
    set(&t, &m, e.clone()).await;
    clock.advance_ms(30_000);
    let got = get(&t, &m, "c1", Some("api"), Some("s"), opts().leeway(70)).await;
    t.json_eq(
        &got,
        Some(EntryBody::from(e.clone())),
        "valid when expiresAt - leeway == now_s",
    );
    let got = get(&t, &m, "c1", Some("api"), Some("s"), opts().leeway(71)).await;
    t.json_eq(
        &got,
        Some(cut_down("rt", "api", "s")),
        "expired when expiresAt - leeway < now_s",
    );
    let got = get(&t, &m, "c1", Some("api"), Some("s"), opts()).await;
    t.json_eq(
        &got,
        Some(cut_down("rt", "api", "s")),
        "the cut-down entry stays cut down",
    );
}

/// An expired entry with a refresh token found by a scope lookup is rewritten as
/// `{refresh_token, audience, scope}` at the key where it was found (never at the lookup
/// key), with the same `expiresAt`; a second lookup returns the same.
pub async fn expired_with_refresh_token_is_cut_down_where_found(s: Subject) {
    let (t, cache, clock) = Check::new("expired_with_refresh_token_is_cut_down_where_found", s);
    let m = t.manager(&cache, &clock);
    let e = with_rt(entry("c1", API, "openid read write", "at", 60.0), "rt-1")
        .with_id_token("id", decoded("u"));
    set(&t, &m, e).await;
    clock.advance_ms(61_000);
    let found = t.key(&["c1", API, "openid read write"]);
    let want_body = cut_down("rt-1", API, "openid read write");
    for round in ["first", "second"] {
        let got = get(&t, &m, "c1", Some(API), Some("read"), opts()).await;
        t.json_eq(
            &got,
            Some(&want_body),
            &format!("{round} get of an expired entry"),
        );
        let stored = raw(&t, &*cache, &found).await;
        t.json_eq(
            &stored,
            json!({"body": want_body, "expiresAt": T0 + 60}),
            &format!("stored entry after the {round} get"),
        );
        t.that(
            raw(&t, &*cache, &t.key(&["c1", API, "read"]))
                .await
                .is_none(),
            "nothing may be written at the lookup key",
        );
        assert_manifest(&t, &m, &[&found]).await;
    }
}

/// An expired entry without a refresh token is a miss in every step: it is removed with
/// its manifest line and the lookup goes on as if it had not been stored (deliberately
/// unlike auth0-spa-js, which returns none).
pub async fn expired_without_refresh_token_is_removed_with_its_manifest_line(s: Subject) {
    let (t, cache, clock) = Check::new(
        "expired_without_refresh_token_is_removed_with_its_manifest_line",
        s,
    );
    let m = t.manager(&cache, &clock);
    set(&t, &m, entry("c1", "api", "openid", "at-1", 100.0)).await;
    set(
        &t,
        &m,
        with_rt(entry("c1", "api", "openid read", "at-2", 1000.0), "rt"),
    )
    .await;
    // Expired under the leeway, though not yet by the clock (so physical expiry cannot
    // have dropped it): the manager must remove it, and look further as if it had not
    // been stored, so the scope lookup finds the other entry.
    let got = get(
        &t,
        &m,
        "c1",
        Some("api"),
        Some("openid"),
        opts().leeway(200),
    )
    .await;
    t.eq(
        got.and_then(|b| b.access_token.clone()),
        Some("at-2".into()),
        "an expired entry without refresh token is a miss: the scope lookup goes on",
    );
    t.that(
        raw(&t, &*cache, &t.key(&["c1", "api", "openid"]))
            .await
            .is_none(),
        "the expired entry must be removed",
    );
    assert_manifest(&t, &m, &[&t.key(&["c1", "api", "openid read"])]).await;
    // Expired by the clock, found by a scope lookup.
    set(&t, &m, entry("c1", "api", "profile email", "at-3", 10.0)).await;
    clock.advance_ms(11_000);
    let got = get(&t, &m, "c1", Some("api"), Some("email"), opts()).await;
    t.that(
        got.is_none(),
        "an entry expired by the clock without refresh token must be a miss",
    );
    t.that(
        raw(&t, &*cache, &t.key(&["c1", "api", "profile email"]))
            .await
            .is_none(),
        "the expired entry must be removed",
    );
    let got = get(&t, &m, "c1", Some("api"), Some("openid"), opts()).await;
    t.eq(
        got.and_then(|b| b.access_token.clone()),
        Some("at-2".into()),
        "the valid entry is still found",
    );
}

/// Snapshot of the raw values at `keys` and of the listing or manifest.
async fn snapshot(
    t: &Check,
    m: &tokencache_core::CacheManager,
    keys: &[String],
) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for k in keys {
        out.insert(
            k.clone(),
            crate::harness::to_json(&raw(t, &**m.cache(), k).await),
        );
    }
    let mut listed = if t.listing() {
        t.ok(
            m.cache().keys_with_prefix(&t.key_space()).await,
            "keys_with_prefix",
        )
        .unwrap_or_default()
        .to_strings()
    } else {
        manifest_lines(t, m).await.unwrap_or_default()
    };
    listed.sort();
    out.insert("<listed>".into(), json!(listed));
    serde_json::Value::Object(out)
}

/// With `use_mrrt` and not `cache_only`, a miss returns `{refresh_token, audience, scope}`
/// of an entry of the same client with a refresh token (any audience, expired or not),
/// and writes nothing.
pub async fn mrrt_fallback_returns_a_refresh_token_of_the_client(s: Subject) {
    let (t, cache, clock) = Check::new("mrrt_fallback_returns_a_refresh_token_of_the_client", s);
    let m = t.manager(&cache, &clock);
    set(
        &t,
        &m,
        with_rt(entry("c1", "api-1", "openid read", "at-1", 60.0), "rt-1"),
    )
    .await;
    set(&t, &m, entry("c1", "api-0", "openid", "at-0", 6000.0)).await;
    set(
        &t,
        &m,
        with_rt(entry("c10", "api-3", "openid", "at-10", 6000.0), "rt-10"),
    )
    .await;
    set(
        &t,
        &m,
        with_rt(entry("c2", "api-2", "openid", "at-2", 6000.0), "rt-2"),
    )
    .await;
    let keys: Vec<String> = [
        ["c1", "api-1", "openid read"],
        ["c1", "api-0", "openid"],
        ["c10", "api-3", "openid"],
        ["c2", "api-2", "openid"],
    ]
    .iter()
    .map(|p| t.key(p))
    .collect();
    let before = snapshot(&t, &m, &keys).await;
    let mrrt = opts().mrrt(true);
    let want = Some(cut_down("rt-1", "api-1", "openid read"));
    for round in ["valid", "expired"] {
        let got = get(&t, &m, "c1", Some("api-other"), Some("openid"), mrrt).await;
        t.json_eq(
            &got,
            &want,
            &format!("MRRT fallback for another audience ({round})"),
        );
        let got = get(&t, &m, "c1", Some("api-1"), Some("email"), mrrt).await;
        t.json_eq(
            &got,
            &want,
            &format!("MRRT fallback for an uncovered scope ({round})"),
        );
        let got = get(&t, &m, "c1", None, None, mrrt).await;
        t.json_eq(
            &got,
            &want,
            &format!("MRRT fallback without audience ({round})"),
        );
        t.json_eq(
            snapshot(&t, &m, &keys).await,
            &before,
            &format!("the MRRT fallback must write nothing ({round})"),
        );
        clock.advance_ms(120_000); // now c1's entry with the refresh token is expired
    }
    t.that(
        get(&t, &m, "c", Some("api-1"), Some("openid"), mrrt)
            .await
            .is_none(),
        "MRRT for a client with no refresh token (whose id prefixes others') must miss",
    );
    t.that(
        get(&t, &m, "c3", Some("api-1"), Some("openid"), mrrt)
            .await
            .is_none(),
        "MRRT for an unknown client must miss",
    );
}

/// Without `use_mrrt`, or with `cache_only`, a miss stays a miss.
pub async fn mrrt_fallback_is_off_with_cache_only_or_without_use_mrrt(s: Subject) {
    let (t, cache, clock) = Check::new(
        "mrrt_fallback_is_off_with_cache_only_or_without_use_mrrt",
        s,
    );
    let m = t.manager(&cache, &clock);
    set(
        &t,
        &m,
        with_rt(entry("c1", "api-1", "openid read", "at-1", 600.0), "rt-1"),
    )
    .await;
    for o in [
        opts(),
        opts().mrrt(true).cache_only(true),
        opts().cache_only(true),
    ] {
        t.that(
            get(&t, &m, "c1", Some("api-2"), Some("openid"), o)
                .await
                .is_none(),
            format_args!("{o:?} must not fall back"),
        );
    }
}

/// A lookup whose exact key holds the manifest (`get(client, None, None)` in manifest
/// mode) or an ID token returns none, with no fallback.
pub async fn get_of_the_manifest_key_returns_none(s: Subject) {
    let (t, cache, clock) = Check::new("get_of_the_manifest_key_returns_none", s);
    let m = t.manager(&cache, &clock);
    set(
        &t,
        &m,
        with_rt(entry(MANIFEST_CLIENT, "api", "openid", "at", 600.0), "rt"),
    )
    .await;
    let got = get(&t, &m, MANIFEST_CLIENT, None, None, opts().mrrt(true)).await;
    if t.listing() {
        // No manifest: the exact key is a miss and the MRRT fallback applies.
        t.json_eq(
            &got,
            Some(cut_down("rt", "api", "openid")),
            "listing mode: get(client) falls back to MRRT",
        );
    } else {
        t.that(
            got.is_none(),
            "get of the manifest key must return none, without MRRT fallback",
        );
        t.that(
            matches!(
                raw(&t, &*cache, &t.key(&[MANIFEST_CLIENT])).await,
                Some(Cacheable::Manifest(_))
            ),
            "the manifest is still there",
        );
    }
    t.that(
        get(&t, &m, MANIFEST_CLIENT, None, None, opts())
            .await
            .is_none(),
        "get(client) without MRRT is none",
    );
}

/// `set_id_token` stores `{id_token, decodedToken}` at `prefix::client::@@user@@` (and
/// in the manifest) and `get_id_token` reads it back; `clear(client)` removes it.
pub async fn id_token_round_trip(s: Subject) {
    let (t, cache, clock) = Check::new("id_token_round_trip", s);
    let m = t.manager(&cache, &clock);
    t.ok(
        m.set_id_token("c1", "id-1", decoded("u1")).await,
        "set_id_token",
    );
    let want = IdTokenEntry {
        id_token: "id-1".into(),
        decoded_token: decoded("u1"),
    };
    let id_key = t.key(&["c1", "@@user@@"]);
    t.json_eq(
        raw(&t, &*cache, &id_key).await,
        &want,
        "the stored ID token entry",
    );
    for k in [
        CacheKey::new("c1", None, None),
        CacheKey::new("c1", Some("api"), Some("openid")),
    ] {
        let got = t.ok(m.get_id_token(&k).await, "get_id_token");
        t.eq(got.as_ref(), Some(&want), "get_id_token");
    }
    t.that(
        t.ok(
            m.get_id_token(&CacheKey::new("c2", None, None)).await,
            "get_id_token",
        )
        .is_none(),
        "another client has no ID token",
    );
    assert_manifest(&t, &m, &[&id_key]).await;
    t.ok(
        m.set_id_token("c1", "id-2", decoded("u2")).await,
        "set_id_token again",
    );
    let got = t.ok(
        m.get_id_token(&CacheKey::new("c1", None, None)).await,
        "get_id_token",
    );
    t.eq(
        got.map(|g| g.id_token),
        Some("id-2".into()),
        "the second ID token replaces the first",
    );
    assert_manifest(&t, &m, &[&id_key]).await;
    t.ok(m.clear(Some("c1")).await, "clear(c1)");
    t.that(
        raw(&t, &*cache, &id_key).await.is_none(),
        "clear(client) removes its ID token",
    );
    assert_manifest(&t, &m, &[]).await;
}

/// Without an ID token entry, `get_id_token` with a scope and an audience returns the
/// `id_token`/`decodedToken` of the entry `get` finds; without both, none.
pub async fn id_token_falls_back_to_the_entry(s: Subject) {
    let (t, cache, clock) = Check::new("id_token_falls_back_to_the_entry", s);
    let m = t.manager(&cache, &clock);
    set(
        &t,
        &m,
        entry("c1", "api", "openid profile", "at", 600.0).with_id_token("id-e", decoded("ue")),
    )
    .await;
    set(&t, &m, entry("c1", "api-2", "openid", "at", 600.0)).await;
    let want = IdTokenEntry {
        id_token: "id-e".into(),
        decoded_token: decoded("ue"),
    };
    let got = t.ok(
        m.get_id_token(&CacheKey::new("c1", Some("api"), Some("profile")))
            .await,
        "get_id_token",
    );
    t.eq(
        got.as_ref(),
        Some(&want),
        "the ID token of the entry found by scope",
    );
    for (aud, scope) in [
        (None, None),
        (Some("api"), None),
        (Some("api"), Some("")),
        (None, Some("openid")),
        (Some("api-2"), Some("openid")),
        (Some("api"), Some("email")),
    ] {
        let got = t.ok(
            m.get_id_token(&CacheKey::new("c1", aud, scope)).await,
            "get_id_token",
        );
        t.that(
            got.is_none(),
            format_args!("get_id_token({aud:?}, {scope:?}) must be none"),
        );
    }
    t.ok(
        m.set_id_token("c1", "id-own", decoded("uo")).await,
        "set_id_token",
    );
    let got = t.ok(
        m.get_id_token(&CacheKey::new("c1", Some("api"), Some("profile")))
            .await,
        "get_id_token",
    );
    t.eq(
        got.map(|g| g.id_token),
        Some("id-own".into()),
        "the ID token entry comes first",
    );
}

/// `refresh_tokens_by_audience` returns the distinct refresh tokens of the client's
/// entries for exactly that audience, in the lexicographic order of their keys.
pub async fn refresh_tokens_by_audience_are_distinct_in_key_order(s: Subject) {
    let (t, cache, clock) = Check::new("refresh_tokens_by_audience_are_distinct_in_key_order", s);
    let m = t.manager(&cache, &clock);
    for (c, aud, scope, rt) in [
        ("c1", "api", "c", Some("rt-2")),
        ("c1", "api", "b", Some("rt-2")),
        ("c1", "api-2", "a", Some("rt-9")),
        ("c10", "api", "a", Some("rt-8")),
        ("c1", "api", "d", None),
        ("c1", "api", "a", Some("rt-1")),
        ("c1", "api", "", Some("rt-0")),
    ] {
        let mut e = entry(c, aud, scope, "at", 600.0);
        e.refresh_token = rt.map(str::to_owned);
        set(&t, &m, e).await;
    }
    t.ok(
        m.set_id_token("c1", "id", decoded("u")).await,
        "set_id_token",
    );
    let got = t.ok(
        m.refresh_tokens_by_audience("api", "c1").await,
        "refresh_tokens_by_audience",
    );
    t.eq(
        got,
        vec!["rt-0".to_owned(), "rt-1".into(), "rt-2".into()],
        "refresh tokens of c1 for api",
    );
    let got = t.ok(
        m.refresh_tokens_by_audience("api", "c2").await,
        "refresh_tokens_by_audience",
    );
    t.eq(
        got,
        Vec::<String>::new(),
        "refresh tokens of an unknown client",
    );
}

/// Improvement: when several stored keys match, the choice does not depend on insertion
/// order: valid first, then expired with a refresh token, then expired without; then
/// the fewest scopes; then the smallest key. An expired first match never hides a valid one.
pub async fn improvement_matching_is_order_independent(s: Subject) {
    let (t, cache, clock) = Check::new("improvement_matching_is_order_independent", s);
    let m = t.manager(&cache, &clock);
    // (audience, [(scope, expires_in, refresh token)], lookup scope, leeway, expected scope, expected refresh token)
    type Case = (
        &'static str,
        [(&'static str, f64, Option<&'static str>); 2],
        &'static str,
        i64,
    );
    let cases: [Case; 4] = [
        (
            "valid-beats-expired",
            [("a b", 10.0, Some("rt")), ("a b c", 1000.0, None)],
            "a",
            0,
        ),
        (
            "fewest-scopes",
            [("a b c", 1000.0, None), ("a b", 1000.0, None)],
            "a",
            0,
        ),
        (
            "smallest-key",
            [("b a y", 1000.0, None), ("a b x", 1000.0, None)],
            "a",
            0,
        ),
        (
            "rt-beats-no-rt",
            [("a c", 100.0, None), ("a b c", 100.0, Some("rt"))],
            "a",
            300,
        ),
    ];
    let expected = ["a b c", "a b", "a b x", "a b c"];
    for (client, reverse) in [("order-1", false), ("order-2", true)] {
        for (aud, pair, _, _) in &cases {
            let mut pair = pair.to_vec();
            if reverse {
                pair.reverse();
            }
            for (scope, exp, rt) in pair {
                let mut e = entry(client, aud, scope, &format!("at-{aud}-{scope}"), exp);
                e.refresh_token = rt.map(str::to_owned);
                set(&t, &m, e).await;
            }
        }
    }
    clock.advance_ms(20_000);
    for client in ["order-1", "order-2"] {
        for ((aud, pair, lookup, leeway), want) in cases.iter().zip(expected) {
            let got = get(
                &t,
                &m,
                client,
                Some(aud),
                Some(lookup),
                GetOptions::default().leeway(*leeway),
            )
            .await;
            let got_scope = got.as_ref().and_then(|b| b.scope.clone());
            t.eq(
                got_scope.as_deref(),
                Some(want),
                &format!("{aud}: the chosen entry (insertion order of {client})"),
            );
            if *aud == "rt-beats-no-rt" {
                t.eq(
                    got.and_then(|b| b.refresh_token.clone()),
                    Some("rt".into()),
                    "the expired entry with a refresh token is chosen, cut down",
                );
                t.that(
                    raw(&t, &*cache, &t.key(&[client, aud, "a c"]))
                        .await
                        .is_none(),
                    "the matching entry that expired without a refresh token is removed",
                );
            }
            let _ = pair;
        }
    }
    // MRRT: a valid entry with a refresh token beats an expired one.
    for (client, order) in [("mrrt-1", [0, 1]), ("mrrt-2", [1, 0])] {
        let es = [
            with_rt(entry(client, "api-a", "a b", "at", 10.0), "rt-expired"),
            with_rt(entry(client, "api-b", "a b c", "at", 1000.0), "rt-valid"),
        ];
        for i in order {
            set(&t, &m, es[i].clone()).await;
        }
    }
    clock.advance_ms(20_000);
    for client in ["mrrt-1", "mrrt-2"] {
        let got = get(
            &t,
            &m,
            client,
            Some("api-z"),
            Some("a"),
            GetOptions::default().mrrt(true),
        )
        .await;
        t.eq(
            got.and_then(|b| b.refresh_token.clone()),
            Some("rt-valid".into()),
            &format!("MRRT choice ({client})"),
        );
    }
}

/// Improvement: one state gives one answer, whether or not the cache already dropped an
/// expired entry by itself. The same sequence runs on the subject's cache, on a
/// [`MapCache`](crate::MapCache) that keeps every entry and on one with physical expiry
/// that drops an expired entry without a refresh token at once (each in the subject's
/// mode); every answer must be the same, and the one of the rule that such an entry is a
/// miss in every step: the scope lookup and the MRRT fallback go on as if it had not been
/// stored (auth0-spa-js answers none where it still holds the entry).
pub async fn improvement_one_answer_with_or_without_physical_expiry(s: Subject) {
    let (t, cache, clock) = Check::new("improvement_one_answer_with_or_without_physical_expiry", s);
    let mode = |c: crate::MapCache| -> std::sync::Arc<dyn tokencache_core::Cache> {
        if t.listing() {
            std::sync::Arc::new(c)
        } else {
            std::sync::Arc::new(crate::NoListing(c))
        }
    };
    let caches = [
        ("the cache under test", cache.clone()),
        (
            "a map without physical expiry",
            mode(crate::MapCache::new()),
        ),
        (
            "a map with physical expiry",
            mode(crate::MapCache::with_physical_expiry(clock.clone())),
        ),
    ];
    let managers: Vec<_> = caches
        .iter()
        .map(|(name, c)| (*name, t.manager(c, &clock)))
        .collect();
    let set_all = |e: tokencache_core::CacheEntry| {
        let (t, managers) = (&t, &managers);
        async move {
            for (_, m) in managers {
                set(t, m, e.clone()).await;
            }
        }
    };
    let get_all = |aud: &'static str,
                   scope: &'static str,
                   o: GetOptions,
                   want: Option<serde_json::Value>,
                   what: &'static str| {
        let (t, managers) = (&t, &managers);
        async move {
            for (name, m) in managers {
                let got = get(t, m, "c1", Some(aud), Some(scope), o).await;
                t.json_eq(&got, &want, &format!("{what}, on {name}"));
            }
        }
    };
    set_all(entry("c1", "api", "openid read", "at-a", 60.0)).await;
    set_all(with_rt(
        entry("c1", "api-2", "openid", "at-b", 6000.0),
        "rt-b",
    ))
    .await;
    set_all(entry("c1", "api", "openid read write", "at-c", 6000.0)).await;
    clock.advance_ms(61_000);
    let c_body = crate::harness::to_json(&EntryBody::from(entry(
        "c1",
        "api",
        "openid read write",
        "at-c",
        6000.0,
    )));
    get_all(
        "api",
        "openid read",
        opts().mrrt(true),
        Some(c_body.clone()),
        "the exact key expired without a refresh token: the scope lookup finds another entry",
    )
    .await;
    get_all(
        "api",
        "openid read",
        opts(),
        Some(c_body),
        "the same lookup again",
    )
    .await;
    for (name, m) in &managers {
        t.that(
            raw(&t, &**m.cache(), &t.key(&["c1", "api", "openid read"]))
                .await
                .is_none(),
            format_args!("the expired entry without a refresh token is gone, on {name}"),
        );
        t.ok(
            m.remove("c1", Some("api"), Some("openid read write")).await,
            "remove",
        );
    }
    set_all(entry("c1", "api", "email", "at-d", 10.0)).await;
    clock.advance_ms(11_000);
    let mrrt_body = cut_down("rt-b", "api-2", "openid");
    get_all(
        "api",
        "email",
        opts().mrrt(true),
        Some(mrrt_body.clone()),
        "expired without a refresh token and no other match: the MRRT fallback",
    )
    .await;
    get_all(
        "api",
        "email",
        opts(),
        None,
        "expired without a refresh token, without MRRT: none",
    )
    .await;
    set_all(entry("c1", "api-3", "x", "at-e", 100.0)).await;
    get_all(
        "api-3",
        "x",
        opts().mrrt(true).leeway(200),
        Some(mrrt_body),
        "expired under the leeway without a refresh token: the MRRT fallback",
    )
    .await;
}
