//! Golden JSON: values and key strings written by the real auth0-spa-js 2.x package
//! (tests/fixtures, made by tests/fixtures/generate.mjs) read, re-serialize and are
//! rewritten exactly as auth0-spa-js does.

mod common;

use std::sync::Arc;

use common::{fixture, fixture_json, JsonMapCache};
use proptest::prelude::*;
use serde_json::{json, Value};
use tokencache_core::{
    CacheEntry, CacheKey, CacheManager, Cacheable, DecodedToken, ErrorKind, GetOptions,
    ManualClock, DEFAULT_PREFIX, ID_TOKEN_SUFFIX,
};

/// The clock generate.mjs ran at (not a whole second).
const NOW_MS: i64 = 1_700_000_000_500;
const FULL_KEY: &str = "@@auth0spajs@@::app-client::https://api.example.test::openid profile email offline_access read:items";

fn parse(name: &str) -> Cacheable {
    Cacheable::from_json(fixture(name).as_bytes())
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

fn reserialized(c: &Cacheable) -> Value {
    serde_json::from_slice(&c.to_json().unwrap()).unwrap()
}

fn manager(cache: Arc<JsonMapCache>, clock: Arc<ManualClock>) -> CacheManager {
    CacheManager::builder(cache)
        .clock(clock)
        .client_id("app-client")
        .build()
        .unwrap()
}

#[test]
fn every_fixture_parses_and_reserializes_to_equal_json() {
    let cases = [
        ("entry_full.json", "entry"),
        ("entry_stripped.json", "entry"),
        ("entry_unknown_fields.json", "entry"),
        ("entry_unknown_fields.after_strip.json", "entry"),
        ("entry_unknown_fields.after_update.json", "entry"),
        ("id_token.json", "id_token"),
        ("manifest.json", "manifest"),
    ];
    for (name, kind) in cases {
        let c = parse(name);
        let got_kind = match &c {
            Cacheable::Entry(_) => "entry",
            Cacheable::IdToken(_) => "id_token",
            Cacheable::Manifest(_) => "manifest",
        };
        assert_eq!(got_kind, kind, "{name}");
        assert_eq!(
            reserialized(&c),
            fixture_json(name),
            "{name} changed in a round trip"
        );
    }
}

#[test]
fn full_entry_fields_are_read() {
    let c = parse("entry_full.json");
    let e = c.as_entry().unwrap();
    assert_eq!(e.expires_at, NOW_MS / 1000 + 86400);
    let b = &e.body;
    assert_eq!(b.client_id.as_deref(), Some("app-client"));
    assert_eq!(b.audience.as_deref(), Some("https://api.example.test"));
    assert_eq!(b.access_token.as_deref(), Some("at-full-0001"));
    assert_eq!(b.refresh_token(), Some("rt-full-0001"));
    assert_eq!(b.token_type.as_deref(), Some("Bearer"));
    assert_eq!(b.expires_in, Some(86400.0));
    assert_eq!(
        b.oauth_token_scope.as_deref(),
        Some("openid profile email offline_access read:items")
    );
    let d = b.decoded_token.as_ref().unwrap();
    assert_eq!(d.claims["__raw"], json!(b.id_token.as_deref().unwrap()));
    assert_eq!(d.user["sub"], json!("auth0|123"));
    assert!(b.extra.is_empty());
    assert!(c.has_refresh_token());
    let id = parse("id_token.json");
    assert_eq!(
        id.as_id_token().unwrap().decoded_token.claims["sub"],
        json!("auth0|123")
    );
}

/// What our manager writes for the same calls is what auth0-spa-js wrote.
#[tokio::test]
async fn manager_writes_the_same_json_as_auth0_spa_js() {
    let full = fixture_json("entry_full.json");
    let entry: CacheEntry = serde_json::from_value(full["body"].clone()).unwrap();
    // What Auth0Client gave setIdToken (verifyIdToken's result: encoded, header, claims, user).
    let id_token = fixture_json("id_token.json");
    let decoded: DecodedToken = serde_json::from_value(id_token["decodedToken"].clone()).unwrap();
    assert!(decoded.extra.contains_key("encoded") && decoded.extra.contains_key("header"));

    // A cache that lists its keys: the entry, then its stripped form after expiry.
    let cache = Arc::new(JsonMapCache::listing());
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let m = manager(cache.clone(), clock.clone());
    m.set(entry.clone()).await.unwrap();
    assert_eq!(cache.raw_json(FULL_KEY).unwrap(), full);
    clock.advance_ms(86_401_000);
    let key = CacheKey::from_key(FULL_KEY).unwrap();
    let got = m.get(&key, GetOptions::default()).await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&*got).unwrap(),
        fixture_json("entry_stripped.get_result.json")
    );
    assert_eq!(
        cache.raw_json(FULL_KEY).unwrap(),
        fixture_json("entry_stripped.json")
    );

    // A cache that cannot list its keys: the manifest and the id token entry.
    let cache = Arc::new(JsonMapCache::non_listing());
    let m = manager(cache.clone(), Arc::new(ManualClock::new(NOW_MS)));
    m.set(entry.clone()).await.unwrap();
    let mut other = entry.clone();
    other.audience = "https://other.example.test".into();
    other.scope = "openid".into();
    other.refresh_token = None;
    m.set(other).await.unwrap();
    m.set_id_token("app-client", entry.id_token.as_deref().unwrap(), decoded)
        .await
        .unwrap();
    assert_eq!(
        cache.raw_json("@@auth0spajs@@::app-client").unwrap(),
        fixture_json("manifest.json")
    );
    assert_eq!(
        cache
            .raw_json("@@auth0spajs@@::app-client::@@user@@")
            .unwrap(),
        id_token
    );
}

/// Fields we do not know (and extra members of decodedToken) survive the manager's
/// read-modify-writes, exactly as auth0-spa-js rewrote them.
#[tokio::test]
async fn unknown_fields_survive_strip_refresh_token_and_update_entry() {
    let original = fixture("entry_unknown_fields.json");
    let parsed = parse("entry_unknown_fields.json");
    let body = &parsed.as_entry().unwrap().body;
    assert!(body.extra.contains_key("x_future_field"));
    assert!(body.extra.contains_key("dpop_jkt"));
    assert!(body
        .decoded_token
        .as_ref()
        .unwrap()
        .extra
        .contains_key("header"));

    for listing in [true, false] {
        let cache = Arc::new(if listing {
            JsonMapCache::listing()
        } else {
            JsonMapCache::non_listing()
        });
        let m = manager(cache.clone(), Arc::new(ManualClock::new(NOW_MS)));
        cache.put_raw(FULL_KEY, &original);
        if !listing {
            cache.put_raw(
                "@@auth0spajs@@::app-client",
                &json!({ "keys": [FULL_KEY] }).to_string(),
            );
        }
        m.strip_refresh_token("rt-full-0001").await.unwrap();
        assert_eq!(
            cache.raw_json(FULL_KEY).unwrap(),
            fixture_json("entry_unknown_fields.after_strip.json"),
            "strip_refresh_token (listing: {listing})"
        );

        cache.put_raw(FULL_KEY, &original);
        m.update_entry("rt-full-0001", "rt-rotated-0002", "app-client", false)
            .await
            .unwrap();
        assert_eq!(
            cache.raw_json(FULL_KEY).unwrap(),
            fixture_json("entry_unknown_fields.after_update.json"),
            "update_entry (listing: {listing})"
        );

        // A valid read returns the unknown fields too.
        let key = CacheKey::from_key(FULL_KEY).unwrap();
        let got = m.get(&key, GetOptions::default()).await.unwrap().unwrap();
        assert_eq!(
            got.extra["x_future_field"],
            json!({"nested":[1,2.5,"three"],"flag":false})
        );
    }
}

/// auth0-spa-js stores `expiresAt = floor(now_s) + expires_in`, fractional when
/// `expires_in` is. We read it rounded down: every field else round-trips, and the
/// expiry decision (`expiresAt - leeway < now_s`, with whole-second now_s and leeway)
/// is the same at both sides of the boundary.
#[tokio::test]
async fn fractional_expires_in_reads_with_the_same_expiry() {
    let raw = fixture_json("entry_fractional_expires_in.json");
    let js_expires_at = raw["expiresAt"].as_f64().unwrap();
    assert_ne!(js_expires_at.fract(), 0.0, "the fixture must be fractional");
    let c = parse("entry_fractional_expires_in.json");
    let e = c.as_entry().unwrap();
    assert_eq!(e.body.expires_in, Some(3599.75));
    assert_eq!(e.expires_at, js_expires_at.floor() as i64);
    let mut expected = raw.clone();
    expected["expiresAt"] = json!(js_expires_at.floor() as i64);
    assert_eq!(reserialized(&c), expected);

    for leeway in [0i64, 1, 60] {
        for now_s in [
            e.expires_at - leeway - 1,
            e.expires_at - leeway,
            e.expires_at - leeway + 1,
        ] {
            // auth0-spa-js: `wrappedEntry.expiresAt - expiryAdjustmentSeconds < nowSeconds`.
            let js_expired = js_expires_at - (leeway as f64) < now_s as f64;
            let cache = Arc::new(JsonMapCache::listing());
            let m = manager(
                cache.clone(),
                Arc::new(ManualClock::new(now_s * 1000 + 999)),
            );
            cache.put_raw(FULL_KEY, &raw.to_string());
            let key = CacheKey::from_key(FULL_KEY).unwrap();
            let got = m
                .get(&key, GetOptions::default().leeway(leeway))
                .await
                .unwrap();
            // No refresh token in this fixture: expired means removed.
            assert_eq!(got.is_none(), js_expired, "now_s {now_s} leeway {leeway}");
            assert_eq!(cache.raw_json(FULL_KEY).is_none(), js_expired);
        }
    }
}

/// An explicit `null` in an optional field (JSON another writer may produce; auth0-spa-js
/// reads it as absent) never makes a read fail.
#[test]
fn explicit_nulls_read_as_absent() {
    let c = parse("entry_nulls.json");
    let b = &c.as_entry().unwrap().body;
    assert_eq!(b.refresh_token, None);
    assert_eq!(b.id_token, None);
    assert!(b.decoded_token.is_none());
    assert_eq!(b.oauth_token_scope, None);
    assert_eq!(b.access_token.as_deref(), Some("at-full-0001"));
    assert!(!c.has_refresh_token());
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

/// `CacheKey::to_key` gives the strings auth0-spa-js's `CacheKey.toKey` gave for the same
/// inputs (empty parts left out), and `from_key` reads them back the way `fromKey` does.
#[test]
fn cache_keys_match_auth0_spa_js() {
    let doc = fixture_json("cache_keys.json");
    let cases = doc["keys"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let input = &case["input"];
        let mut key = CacheKey::new(
            input["clientId"].as_str().unwrap(),
            opt_str(&input["audience"]),
            opt_str(&input["scope"]),
        );
        if let Some(p) = opt_str(&input["prefix"]) {
            key = key.with_prefix(p);
        }
        if let Some(suffix) = opt_str(&input["suffix"]) {
            key = key.with_suffix(suffix);
        }
        let js_key = case["key"].as_str().unwrap();
        assert_eq!(key.to_key(), js_key, "to_key of {input}");

        let parsed = CacheKey::from_key(js_key).unwrap();
        let js = &case["from_key"];
        assert_eq!(parsed.prefix(), js["prefix"].as_str().unwrap(), "{js_key}");
        assert_eq!(
            parsed.client_id(),
            js["clientId"].as_str().unwrap(),
            "{js_key}"
        );
        // auth0-spa-js's fromKey does not know suffixes: it reads `@@user@@` as the audience.
        let js_audience = opt_str(&js["audience"]);
        if js_audience == Some(ID_TOKEN_SUFFIX) {
            assert!(
                parsed.is_id_token() && parsed.audience().is_none(),
                "{js_key}"
            );
        } else {
            assert_eq!(parsed.audience(), js_audience, "{js_key}");
        }
        assert_eq!(parsed.scope(), opt_str(&js["scope"]), "{js_key}");
        assert_eq!(parsed.to_key(), js_key, "from_key then to_key of {js_key}");
    }
}

#[test]
fn from_key_rejects_garbage_with_invalid_key() {
    for bad in [
        "",
        "no separator",
        "p::",
        "::c",
        "::",
        "p::c::",
        "p::::a",
        "p::c::a::",
        "p::c::a::s::extra",
        "p::c::a::s::@@user@@",
        ":::::",
    ] {
        let e = CacheKey::from_key(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey, "{bad:?}");
    }
}

fn part() -> impl Strategy<Value = String> {
    // Colons and separators on purpose; sometimes empty, sometimes the id token suffix.
    prop_oneof![
        4 => "[a-z:@ ]{0,6}",
        1 => Just(String::new()),
        1 => Just(ID_TOKEN_SUFFIX.to_owned()),
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn from_key_never_panics(s in any::<String>(), t in "[a-c:@ ]{0,24}") {
        for input in [&s, &t] {
            if let Err(e) = CacheKey::from_key(input) {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidKey);
            }
        }
    }

    #[test]
    fn to_key_from_key_round_trip_for_valid_keys(
        prefix in prop_oneof![Just(DEFAULT_PREFIX.to_owned()), "[a-z:@]{0,5}"],
        client in part(),
        audience in proptest::option::of(part()),
        scope in proptest::option::of(part()),
        id_token in any::<bool>(),
    ) {
        let mut key = CacheKey::new(client, audience.as_deref(), scope.as_deref()).with_prefix(prefix);
        if id_token {
            key = key.with_suffix(ID_TOKEN_SUFFIX);
        }
        if key.validate().is_ok() {
            let s = key.to_key();
            let back = CacheKey::from_key(&s);
            prop_assert!(back.is_ok(), "{:?} does not parse back", s);
            let back = back.unwrap();
            prop_assert_eq!(&back, &key);
            prop_assert_eq!(back.to_key(), s);
        }
    }
}
