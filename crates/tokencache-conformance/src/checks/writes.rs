//! Checks of `CacheManager` writes: the stored form, `remove`, `clear`, refresh-token
//! maintenance and invalid keys.

use serde_json::json;
use tokencache_core::{CacheEntry, CacheManager, Cacheable, ErrorKind, GetOptions, Keys};

use crate::harness::{
    assert_manifest, decoded, entry, present, raw, set, stored, with_rt, Check, Subject,
    MANIFEST_CLIENT, T0,
};

/// `set` stores `{body, expiresAt}` at `prefix::client::audience::scope`, the ID token at
/// `prefix::client::@@user@@`, and (manifest mode) the manifest `{keys}` at
/// `prefix::<manager client id>`: the JSON auth0-spa-js writes (its prefix is
/// `@@auth0spajs@@`).
pub async fn set_writes_auth0_spa_js_keys_and_json(s: Subject) {
    let (t, cache, clock) = Check::new("set_writes_auth0_spa_js_keys_and_json", s);
    let m = t.manager(&cache, &clock);
    let mut e = with_rt(
        entry("c1", "https://api/", "openid read", "at", 86400.0),
        "rt",
    );
    e = e.with_id_token("idt", decoded("u"));
    set(&t, &m, e).await;
    let k = &t.key(&["c1", "https://api/", "openid read"]);
    let want = json!({
        "body": {
            "client_id": "c1", "audience": "https://api/", "scope": "openid read",
            "access_token": "at", "expires_in": 86400, "token_type": "Bearer",
            "refresh_token": "rt", "id_token": "idt",
            "decodedToken": {"claims": {"sub": "u", "__raw": "raw-u"}, "user": {"name": "user u"}}
        },
        "expiresAt": T0 + 86400
    });
    t.json_eq(raw(&t, &*cache, k).await, &want, "the stored token entry");
    t.ok(
        m.set_id_token("c1", "idt", decoded("u")).await,
        "set_id_token",
    );
    let idk = &t.key(&["c1", "@@user@@"]);
    let want_id = json!({"id_token": "idt", "decodedToken": {"claims": {"sub": "u", "__raw": "raw-u"}, "user": {"name": "user u"}}});
    t.json_eq(
        raw(&t, &*cache, idk).await,
        &want_id,
        "the stored ID token entry",
    );
    let manifest_key = &t.key(&[MANIFEST_CLIENT]);
    if t.listing() {
        let mut keys = t
            .ok(
                cache.keys_with_prefix(&t.key_space()).await,
                "keys_with_prefix",
            )
            .unwrap_or_default()
            .to_strings();
        keys.sort();
        t.eq(
            keys,
            vec![idk.to_owned(), k.to_owned()],
            "listing mode: the keys written, and no manifest",
        );
    } else {
        t.eq(
            m.manifest_key(),
            Some(manifest_key.as_str()),
            "the manifest key",
        );
        let man = raw(&t, &*cache, manifest_key).await;
        let want_m = json!({"keys": [k, idk]});
        t.json_eq(man, &want_m, "the stored manifest");
    }
}

/// `remove` deletes the entry and its manifest line; removing a missing key is fine.
pub async fn remove_deletes_the_key_and_its_manifest_line(s: Subject) {
    let (t, cache, clock) = Check::new("remove_deletes_the_key_and_its_manifest_line", s);
    let m = t.manager(&cache, &clock);
    set(&t, &m, with_rt(entry("c1", "api", "a", "at", 600.0), "rt")).await;
    set(
        &t,
        &m,
        with_rt(entry("c1", "api", "a b", "at", 600.0), "rt"),
    )
    .await;
    set(&t, &m, with_rt(entry("c1", "api", "", "at", 600.0), "rt")).await;
    t.ok(m.remove("c1", Some("api"), Some("a")).await, "remove");
    t.that(
        raw(&t, &*cache, &t.key(&["c1", "api", "a"]))
            .await
            .is_none(),
        "the removed entry is gone",
    );
    assert_manifest(
        &t,
        &m,
        &[&t.key(&["c1", "api", "a b"]), &t.key(&["c1", "api"])],
    )
    .await;
    t.ok(
        m.remove("c1", Some("api"), Some("a")).await,
        "removing it again",
    );
    t.ok(
        m.remove("c9", Some("api"), Some("zz")).await,
        "removing a key never written",
    );
    t.ok(
        m.remove("c1", Some("api"), None).await,
        "remove of an entry without scope",
    );
    t.that(
        raw(&t, &*cache, &t.key(&["c1", "api"])).await.is_none(),
        "the entry without scope is gone",
    );
    assert_manifest(&t, &m, &[&t.key(&["c1", "api", "a b"])]).await;
    t.that(
        raw(&t, &*cache, &t.key(&["c1", "api", "a b"]))
            .await
            .is_some(),
        "the other entry is kept",
    );
}

/// `remove(client, None, None)` would name the manifest's key: `InvalidKey`, nothing removed.
pub async fn remove_without_audience_and_scope_is_invalid_key(s: Subject) {
    let (t, cache, clock) = Check::new("remove_without_audience_and_scope_is_invalid_key", s);
    let m = t.manager(&cache, &clock);
    let e = with_rt(entry(MANIFEST_CLIENT, "api", "a", "at", 600.0), "rt");
    set(&t, &m, e).await;
    let before = raw(&t, &*cache, &t.key(&[MANIFEST_CLIENT])).await;
    t.err(
        m.remove(MANIFEST_CLIENT, None, None).await,
        ErrorKind::InvalidKey,
        "remove(client, None, None)",
    );
    t.err(
        m.remove(MANIFEST_CLIENT, Some(""), Some("")).await,
        ErrorKind::InvalidKey,
        "remove(client, \"\", \"\")",
    );
    t.eq(
        raw(&t, &*cache, &t.key(&[MANIFEST_CLIENT])).await,
        before,
        "the value at the client key is unchanged",
    );
    t.that(
        raw(&t, &*cache, &t.key(&[MANIFEST_CLIENT, "api", "a"]))
            .await
            .is_some(),
        "the entry is kept",
    );
    assert_manifest(&t, &m, &[&t.key(&[MANIFEST_CLIENT, "api", "a"])]).await;
}

pub(super) async fn fill_three_clients(t: &Check, m: &CacheManager) -> Vec<String> {
    let mut keys = Vec::new();
    for c in ["c", "c-2", "cc", MANIFEST_CLIENT] {
        for (aud, scope) in [("api", "openid"), ("api-2", "openid read")] {
            set(
                t,
                m,
                with_rt(
                    entry(c, aud, scope, &format!("at-{c}"), 600.0),
                    &format!("rt-{c}"),
                ),
            )
            .await;
            keys.push(t.key(&[c, aud, scope]));
        }
        t.ok(
            m.set_id_token(c, &format!("id-{c}"), decoded(c)).await,
            "set_id_token",
        );
        keys.push(t.key(&[c, "@@user@@"]));
    }
    keys
}

/// `clear(None)` removes every key of the manager's prefix and the manifest; keys of
/// another prefix stay.
pub async fn clear_all_removes_every_key_and_the_manifest(s: Subject) {
    let (t, cache, clock) = Check::new("clear_all_removes_every_key_and_the_manifest", s);
    let m = t.manager(&cache, &clock);
    let keys = fill_three_clients(&t, &m).await;
    let foreign = "other-prefix::c::api::openid";
    t.ok(
        cache
            .set(
                foreign,
                stored(&entry("c", "api", "openid", "at", 600.0), T0),
            )
            .await,
        "raw set",
    );
    t.ok(m.clear(None).await, "clear(None)");
    t.eq(
        present(&t, &*cache, &keys).await,
        Vec::<String>::new(),
        "keys left after clear(None)",
    );
    t.that(
        raw(&t, &*cache, &t.key(&[MANIFEST_CLIENT])).await.is_none(),
        "the manifest is removed",
    );
    t.that(
        raw(&t, &*cache, foreign).await.is_some(),
        "a key of another prefix must stay",
    );
    if t.listing() {
        let left = t
            .ok(
                cache.keys_with_prefix(&t.key_space()).await,
                "keys_with_prefix",
            )
            .unwrap_or_default();
        t.eq(left, Keys::new(), "keys listed after clear(None)");
        let left = t
            .ok(
                cache.keys_with_prefix("other-prefix::").await,
                "keys_with_prefix",
            )
            .unwrap_or_default()
            .to_strings();
        t.eq(
            left,
            vec![foreign.to_owned()],
            "keys of another prefix after clear(None)",
        );
    }
}

/// Improvement: `clear(Some(client))` removes exactly that client's entries and ID token,
/// not those of `client-2` or of client ids that start with it.
pub async fn improvement_clear_client_removes_exactly_its_keys(s: Subject) {
    let (t, cache, clock) = Check::new("improvement_clear_client_removes_exactly_its_keys", s);
    let m = t.manager(&cache, &clock);
    let keys = fill_three_clients(&t, &m).await;
    t.ok(m.clear(Some("c")).await, "clear(c)");
    let want: Vec<String> = keys
        .iter()
        .filter(|k| !k.starts_with(&t.key(&["c", ""])))
        .cloned()
        .collect();
    t.eq(
        present(&t, &*cache, &keys).await,
        want.clone(),
        "keys left after clear(c)",
    );
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_manifest(&t, &m, &want).await;
}

/// `clear(Some(""))` is `InvalidKey` (auth0-spa-js would clear every client); nothing is removed.
pub async fn clear_with_empty_client_is_invalid_key(s: Subject) {
    let (t, cache, clock) = Check::new("clear_with_empty_client_is_invalid_key", s);
    let m = t.manager(&cache, &clock);
    let keys = fill_three_clients(&t, &m).await;
    t.err(
        m.clear(Some("")).await,
        ErrorKind::InvalidKey,
        "clear(Some(\"\"))",
    );
    t.eq(
        present(&t, &*cache, &keys).await,
        keys.clone(),
        "keys left after the refused clear",
    );
    let all: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_manifest(&t, &m, &all).await;
}

fn body_json(t: &Check, v: &Option<Cacheable>) -> serde_json::Value {
    match v {
        Some(Cacheable::Entry(e)) => {
            json!({"body": crate::harness::to_json(&e.body), "expiresAt": e.expires_at})
        }
        other => t.fail(format_args!("expected a token entry, found {other:?}")),
    }
}

/// `strip_refresh_token(rt)` removes `rt` from every entry (any client) that holds it,
/// keeping the rest of each entry and its `expiresAt`.
pub async fn strip_refresh_token_keeps_the_rest(s: Subject) {
    let (t, cache, clock) = Check::new("strip_refresh_token_keeps_the_rest", s);
    let m = t.manager(&cache, &clock);
    let entries: Vec<CacheEntry> = vec![
        with_rt(entry("c1", "api", "a", "at-1", 600.0), "rt-x").with_id_token("id", decoded("u")),
        with_rt(entry("c2", "api", "a", "at-2", 700.0), "rt-x"),
        with_rt(entry("c1", "api", "b", "at-3", 800.0), "rt-y"),
        entry("c1", "api-2", "a", "at-4", 900.0),
    ];
    for e in &entries {
        set(&t, &m, e.clone()).await;
    }
    clock.advance_ms(5_000);
    t.ok(m.strip_refresh_token("rt-x").await, "strip_refresh_token");
    for (i, e) in entries.iter().enumerate() {
        let mut want_e = e.clone();
        if e.refresh_token.as_deref() == Some("rt-x") {
            want_e.refresh_token = None;
        }
        let k = t.key(&[&e.client_id, &e.audience, &e.scope]);
        let got = raw(&t, &*cache, &k).await;
        t.json_eq(
            body_json(&t, &got),
            body_json(&t, &Some(stored(&want_e, T0))),
            &format!("entry {i} after strip_refresh_token"),
        );
    }
}

/// `update_entry(old, new, client, false)` replaces `old` by `new` in that client's
/// entries; with `use_mrrt` every refresh token of the client; `expiresAt` kept.
pub async fn update_entry_replaces_refresh_tokens(s: Subject) {
    let (t, cache, clock) = Check::new("update_entry_replaces_refresh_tokens", s);
    let m = t.manager(&cache, &clock);
    let entries: Vec<CacheEntry> = vec![
        with_rt(entry("c1", "api", "a", "at-1", 600.0), "rt-old"),
        with_rt(entry("c1", "api-2", "b", "at-2", 700.0), "rt-other"),
        with_rt(entry("c10", "api", "a", "at-3", 800.0), "rt-old"),
        entry("c1", "api-3", "c", "at-4", 900.0),
    ];
    for e in &entries {
        set(&t, &m, e.clone()).await;
    }
    let check = |rts: [Option<&'static str>; 4], what: &'static str| {
        let (t, cache, entries) = (&t, &cache, &entries);
        async move {
            for (e, rt) in entries.iter().zip(rts) {
                let mut want_e = e.clone();
                want_e.refresh_token = rt.map(str::to_owned);
                let got = raw(t, &**cache, &t.key(&[&e.client_id, &e.audience, &e.scope])).await;
                t.json_eq(
                    body_json(t, &got),
                    body_json(t, &Some(stored(&want_e, T0))),
                    what,
                );
            }
        }
    };
    t.ok(
        m.update_entry("rt-old", "rt-new", "c1", false).await,
        "update_entry",
    );
    check(
        [Some("rt-new"), Some("rt-other"), Some("rt-old"), None],
        "after update_entry without MRRT",
    )
    .await;
    t.ok(
        m.update_entry("unknown", "rt-m", "c1", true).await,
        "update_entry with MRRT",
    );
    check(
        [Some("rt-m"), Some("rt-m"), Some("rt-old"), None],
        "after update_entry with MRRT",
    )
    .await;
}

/// A client id, audience or scope containing `::` or ending in `:` (the key would not
/// parse back), or a scope without audience, is an `InvalidKey` error and nothing is stored.
pub async fn invalid_key_parts_are_rejected(s: Subject) {
    let (t, cache, clock) = Check::new("invalid_key_parts_are_rejected", s);
    let m = t.manager(&cache, &clock);
    for (c, aud, scope) in [
        ("a::b", "api", "openid"),
        ("a:", "api", "openid"),
        ("c1", "x::y", "openid"),
        ("c1", "https:", "openid"),
        ("c1", "api", "s::t"),
        ("c1", "api", "openid:"),
        ("c1", "", "openid"),
        ("", "api", "openid"),
    ] {
        let what = format!("set({c:?}, {aud:?}, {scope:?})");
        t.err(
            m.set(entry(c, aud, scope, "at", 600.0)).await,
            ErrorKind::InvalidKey,
            &what,
        );
        let lookup = tokencache_core::CacheKey::new(c, Some(aud), Some(scope));
        t.err(
            m.get(&lookup, GetOptions::default()).await,
            ErrorKind::InvalidKey,
            &format!("get of {what}"),
        );
        t.err(
            m.remove(c, Some(aud), Some(scope)).await,
            ErrorKind::InvalidKey,
            &format!("remove of {what}"),
        );
    }
    for c in ["a::b", "a:", ""] {
        t.err(
            m.set_id_token(c, "id", decoded("u")).await,
            ErrorKind::InvalidKey,
            &format!("set_id_token({c:?})"),
        );
    }
    if t.listing() {
        t.eq(
            t.ok(
                cache.keys_with_prefix(&t.key_space()).await,
                "keys_with_prefix",
            ),
            Some(Keys::new()),
            "nothing may be stored",
        );
    } else {
        t.that(
            raw(&t, &*cache, &t.key(&[MANIFEST_CLIENT])).await.is_none(),
            "no manifest may be written",
        );
    }
    for k in [
        t.key(&["a", "b", "api", "openid"]),
        t.key(&["c1", "x", "y", "openid"]),
        t.key(&["a:", "api", "openid"]),
    ] {
        t.that(
            raw(&t, &*cache, &k).await.is_none(),
            format_args!("nothing may be stored at {k}"),
        );
    }
}
