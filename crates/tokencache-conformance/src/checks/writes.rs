//! Checks of `CacheManager` writes: the stored form, remove, clear, refresh-token
//! maintenance, matching order, the manifest and concurrency.

use std::sync::Arc;

use futures::future::join_all;
use serde_json::json;
use tokencache_core::{
    Cache, CacheEntry, CacheManager, Cacheable, ErrorKind, GetOptions, ManualClock,
};

use crate::support::{
    assert_manifest, decoded, entry, get, key, manager, manifest_lines, present, raw, set, stored,
    with_rt, Check, MANIFEST_CLIENT, T0,
};
use crate::NoListing;

/// `set` stores `{body, expiresAt}` at `@@auth0spajs@@::client::audience::scope`, the ID
/// token at `@@auth0spajs@@::client::@@user@@`, and (manifest mode) the manifest
/// `{keys}` at `@@auth0spajs@@::<manager client id>`: the JSON auth0-spa-js writes.
pub async fn set_writes_auth0_spa_js_keys_and_json(cache: Arc<dyn Cache>, clock: Arc<ManualClock>) {
    let t = Check::new("set_writes_auth0_spa_js_keys_and_json", &*cache);
    let m = manager(&t, &cache, &clock);
    let mut e = with_rt(
        entry("c1", "https://api/", "openid read", "at", 86400.0),
        "rt",
    );
    e = e.with_id_token("idt", decoded("u"));
    set(&t, &m, e).await;
    let k = "@@auth0spajs@@::c1::https://api/::openid read";
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
    let idk = "@@auth0spajs@@::c1::@@user@@";
    let want_id = json!({"id_token": "idt", "decodedToken": {"claims": {"sub": "u", "__raw": "raw-u"}, "user": {"name": "user u"}}});
    t.json_eq(
        raw(&t, &*cache, idk).await,
        &want_id,
        "the stored ID token entry",
    );
    let manifest_key = "@@auth0spajs@@::app";
    if t.listing() {
        let mut keys = t.ok(cache.all_keys().await, "all_keys").unwrap_or_default();
        keys.sort();
        t.eq(
            keys,
            vec![idk.to_owned(), k.to_owned()],
            "listing mode: the keys written, and no manifest",
        );
    } else {
        t.eq(m.manifest_key(), Some(manifest_key), "the manifest key");
        let man = raw(&t, &*cache, manifest_key).await;
        let want_m = json!({"keys": [k, idk]});
        t.json_eq(man, &want_m, "the stored manifest");
    }
}

/// `remove` deletes the entry and its manifest line; removing a missing key is fine.
pub async fn remove_deletes_the_key_and_its_manifest_line(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("remove_deletes_the_key_and_its_manifest_line", &*cache);
    let m = manager(&t, &cache, &clock);
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
        raw(&t, &*cache, &key(&["c1", "api", "a"])).await.is_none(),
        "the removed entry is gone",
    );
    assert_manifest(&t, &m, &[&key(&["c1", "api", "a b"]), &key(&["c1", "api"])]).await;
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
        raw(&t, &*cache, &key(&["c1", "api"])).await.is_none(),
        "the entry without scope is gone",
    );
    assert_manifest(&t, &m, &[&key(&["c1", "api", "a b"])]).await;
    t.that(
        raw(&t, &*cache, &key(&["c1", "api", "a b"]))
            .await
            .is_some(),
        "the other entry is kept",
    );
}

/// `remove(client, None, None)` would name the manifest's key: `InvalidKey`, nothing removed.
pub async fn remove_without_audience_and_scope_is_invalid_key(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("remove_without_audience_and_scope_is_invalid_key", &*cache);
    let m = manager(&t, &cache, &clock);
    let e = with_rt(entry(MANIFEST_CLIENT, "api", "a", "at", 600.0), "rt");
    set(&t, &m, e).await;
    let before = raw(&t, &*cache, &key(&[MANIFEST_CLIENT])).await;
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
        raw(&t, &*cache, &key(&[MANIFEST_CLIENT])).await,
        before,
        "the value at the client key is unchanged",
    );
    t.that(
        raw(&t, &*cache, &key(&[MANIFEST_CLIENT, "api", "a"]))
            .await
            .is_some(),
        "the entry is kept",
    );
    assert_manifest(&t, &m, &[&key(&[MANIFEST_CLIENT, "api", "a"])]).await;
}

async fn fill_three_clients(t: &Check, m: &CacheManager) -> Vec<String> {
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
            keys.push(key(&[c, aud, scope]));
        }
        t.ok(
            m.set_id_token(c, &format!("id-{c}"), decoded(c)).await,
            "set_id_token",
        );
        keys.push(key(&[c, "@@user@@"]));
    }
    keys
}

/// `clear(None)` removes every key of the manager's prefix and the manifest; keys of
/// another prefix stay.
pub async fn clear_all_removes_every_key_and_the_manifest(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("clear_all_removes_every_key_and_the_manifest", &*cache);
    let m = manager(&t, &cache, &clock);
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
        raw(&t, &*cache, &key(&[MANIFEST_CLIENT])).await.is_none(),
        "the manifest is removed",
    );
    t.that(
        raw(&t, &*cache, foreign).await.is_some(),
        "a key of another prefix must stay",
    );
    if t.listing() {
        let left = t.ok(cache.all_keys().await, "all_keys").unwrap_or_default();
        t.eq(left, vec![foreign.to_owned()], "all_keys after clear(None)");
    }
}

/// Improvement: `clear(Some(client))` removes exactly that client's entries and ID token,
/// not those of `client-2` or of client ids that start with it.
pub async fn improvement_clear_client_removes_exactly_its_keys(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("improvement_clear_client_removes_exactly_its_keys", &*cache);
    let m = manager(&t, &cache, &clock);
    let keys = fill_three_clients(&t, &m).await;
    t.ok(m.clear(Some("c")).await, "clear(c)");
    let want: Vec<String> = keys
        .iter()
        .filter(|k| !k.starts_with(&key(&["c", ""])))
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
pub async fn clear_with_empty_client_is_invalid_key(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("clear_with_empty_client_is_invalid_key", &*cache);
    let m = manager(&t, &cache, &clock);
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

/// Improvement: in manifest mode `clear(Some(client))` removes that client's manifest
/// lines only, so the other clients' entries are still found by scope lookup.
pub async fn improvement_clear_client_keeps_other_clients_manifest_lines(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new(
        "improvement_clear_client_keeps_other_clients_manifest_lines",
        &*cache,
    );
    let m = manager(&t, &cache, &clock);
    fill_three_clients(&t, &m).await;
    t.ok(
        m.clear(Some(MANIFEST_CLIENT)).await,
        "clear(the manifest's own client)",
    );
    t.ok(m.clear(Some("c")).await, "clear(c)");
    for c in ["c-2", "cc"] {
        let got = get(
            &t,
            &m,
            c,
            Some("api-2"),
            Some("read"),
            GetOptions::default(),
        )
        .await;
        t.eq(
            got.and_then(|b| b.access_token.clone()),
            Some(format!("at-{c}")),
            "another client's entry found by scope",
        );
    }
    if !t.listing() {
        let mut lines = manifest_lines(&t, &m).await.unwrap_or_default();
        lines.sort();
        let mut want: Vec<String> = ["c-2", "cc"]
            .iter()
            .flat_map(|c| {
                [
                    key(&[c, "api", "openid"]),
                    key(&[c, "api-2", "openid read"]),
                    key(&[c, "@@user@@"]),
                ]
            })
            .collect();
        want.sort();
        t.eq(lines, want, "manifest lines after clearing two clients");
    }
}

fn body_json(t: &Check, v: &Option<Cacheable>) -> serde_json::Value {
    match v {
        Some(Cacheable::Entry(e)) => {
            json!({"body": crate::support::to_json(&e.body), "expiresAt": e.expires_at})
        }
        other => t.fail(format_args!("expected a token entry, found {other:?}")),
    }
}

/// `strip_refresh_token(rt)` removes `rt` from every entry (any client) that holds it,
/// keeping the rest of each entry and its `expiresAt`.
pub async fn strip_refresh_token_keeps_the_rest(cache: Arc<dyn Cache>, clock: Arc<ManualClock>) {
    let t = Check::new("strip_refresh_token_keeps_the_rest", &*cache);
    let m = manager(&t, &cache, &clock);
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
        let k = key(&[&e.client_id, &e.audience, &e.scope]);
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
pub async fn update_entry_replaces_refresh_tokens(cache: Arc<dyn Cache>, clock: Arc<ManualClock>) {
    let t = Check::new("update_entry_replaces_refresh_tokens", &*cache);
    let m = manager(&t, &cache, &clock);
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
                let got = raw(t, &**cache, &key(&[&e.client_id, &e.audience, &e.scope])).await;
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

/// `refresh_tokens_by_audience` returns the distinct refresh tokens of the client's
/// entries for exactly that audience, in the lexicographic order of their keys.
pub async fn refresh_tokens_by_audience_are_distinct_in_key_order(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new(
        "refresh_tokens_by_audience_are_distinct_in_key_order",
        &*cache,
    );
    let m = manager(&t, &cache, &clock);
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
pub async fn improvement_matching_is_order_independent(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("improvement_matching_is_order_independent", &*cache);
    let m = manager(&t, &cache, &clock);
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
                    raw(&t, &*cache, &key(&[client, aud, "a c"]))
                        .await
                        .is_some(),
                    "the entry not chosen is untouched",
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

/// Improvement: `remove` deletes the manifest line too, so a later scope lookup is not
/// hidden by a dangling line; `remove` never deletes the manifest itself.
pub async fn improvement_remove_keeps_the_manifest_true(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("improvement_remove_keeps_the_manifest_true", &*cache);
    let m = manager(&t, &cache, &clock);
    set(&t, &m, entry("c1", "api", "openid read", "at-1", 600.0)).await;
    set(
        &t,
        &m,
        entry("c1", "api", "openid read write", "at-2", 600.0),
    )
    .await;
    t.ok(
        m.remove("c1", Some("api"), Some("openid read")).await,
        "remove",
    );
    assert_manifest(&t, &m, &[&key(&["c1", "api", "openid read write"])]).await;
    let got = get(
        &t,
        &m,
        "c1",
        Some("api"),
        Some("read"),
        GetOptions::default(),
    )
    .await;
    t.eq(
        got.and_then(|b| b.access_token.clone()),
        Some("at-2".into()),
        "the remaining entry is found by scope",
    );
    t.ok(
        m.remove("c1", Some("api"), Some("openid read write")).await,
        "remove the last entry",
    );
    assert_manifest(&t, &m, &[]).await;
}

/// Improvement: concurrent calls on one manager never lose an entry write or a
/// manifest line (64 concurrent tasks of `set`, `remove`, `set_id_token` and `clear`);
/// afterwards the manifest lists exactly the keys present.
pub async fn improvement_no_lost_updates_under_concurrency(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("improvement_no_lost_updates_under_concurrency", &*cache);
    let m = manager(&t, &cache, &clock);
    let client = |i: usize| format!("c{}", i % 4);
    let mk = |i: usize| {
        with_rt(
            entry(
                &client(i),
                "api",
                &format!("s{i}"),
                &format!("at-{i}"),
                600.0,
            ),
            "rt",
        )
    };
    let k = |i: usize| key(&[&client(i), "api", &format!("s{i}")]);
    // 64 concurrent sets: every one lands, with its manifest line.
    let results = join_all((0..64).map(|i| m.set(mk(i)))).await;
    results.into_iter().for_each(|r| t.ok(r, "concurrent set"));
    let universe: Vec<String> = (0..128)
        .map(k)
        .chain((0..4).map(|c| key(&[&format!("c{c}"), "@@user@@"])))
        .collect();
    let want: Vec<String> = (0..64).map(k).collect();
    let mut got = present(&t, &*cache, &universe).await;
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    t.eq(
        got.clone(),
        want_sorted.clone(),
        "keys present after 64 concurrent sets",
    );
    assert_manifest(&t, &m, &want.iter().map(String::as_str).collect::<Vec<_>>()).await;
    // 32 concurrent removes and 32 concurrent sets of new keys.
    let ops = (0..64).map(|i| {
        let m = &m;
        async move {
            if i % 2 == 0 {
                m.remove(&client(i), Some("api"), Some(&format!("s{i}")))
                    .await
            } else {
                m.set(mk(64 + i)).await
            }
        }
    });
    join_all(ops)
        .await
        .into_iter()
        .for_each(|r| t.ok(r, "concurrent remove or set"));
    let mut want: Vec<String> = (0..64)
        .filter(|i| i % 2 == 1)
        .flat_map(|i| [k(i), k(64 + i)])
        .collect();
    want.sort();
    let mut got = present(&t, &*cache, &universe).await;
    got.sort();
    t.eq(
        got,
        want.clone(),
        "keys present after concurrent removes and sets",
    );
    assert_manifest(&t, &m, &want.iter().map(String::as_str).collect::<Vec<_>>()).await;
    // A free mix, including clear: whatever the interleaving, the manifest stays true.
    let ops = (0..64).map(|i| {
        let m = &m;
        async move {
            match i % 8 {
                0 => m.clear(Some(&client(i / 8))).await,
                1 | 2 => {
                    m.remove(&client(i), Some("api"), Some(&format!("s{}", 64 + i)))
                        .await
                }
                3 => m.set_id_token(&client(i), "id", decoded("u")).await,
                _ => m.set(mk(i)).await,
            }
        }
    });
    join_all(ops)
        .await
        .into_iter()
        .for_each(|r| t.ok(r, "concurrent mixed call"));
    let mut got = present(&t, &*cache, &universe).await;
    got.sort();
    if let Some(mut lines) = manifest_lines(&t, &m).await {
        lines.sort();
        t.eq(
            lines,
            got,
            "after concurrent mixed calls, the manifest lists exactly the keys present",
        );
    } else {
        let mut listed = t.ok(cache.all_keys().await, "all_keys").unwrap_or_default();
        listed.sort();
        t.eq(
            listed,
            got,
            "after concurrent mixed calls, all_keys lists exactly the keys present",
        );
    }
}

/// A client id, audience or scope containing `::` or ending in `:` (the key would not
/// parse back), or a scope without audience, is an `InvalidKey` error and nothing is stored.
pub async fn invalid_key_parts_are_rejected(cache: Arc<dyn Cache>, clock: Arc<ManualClock>) {
    let t = Check::new("invalid_key_parts_are_rejected", &*cache);
    let m = manager(&t, &cache, &clock);
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
            t.ok(cache.all_keys().await, "all_keys"),
            Some(Vec::new()),
            "nothing may be stored",
        );
    } else {
        t.that(
            raw(&t, &*cache, &key(&[MANIFEST_CLIENT])).await.is_none(),
            "no manifest may be written",
        );
    }
    for k in [
        "@@auth0spajs@@::a::b::api::openid",
        "@@auth0spajs@@::c1::x::y::openid",
        "@@auth0spajs@@::a:::api::openid",
    ] {
        t.that(
            raw(&t, &*cache, k).await.is_none(),
            format_args!("nothing may be stored at {k}"),
        );
    }
}

/// The manifest is deleted when its last line goes (by remove, clear or expiry); in
/// listing mode no manifest is ever written.
pub async fn manifest_is_deleted_when_empty(cache: Arc<dyn Cache>, clock: Arc<ManualClock>) {
    let t = Check::new("manifest_is_deleted_when_empty", &*cache);
    let m = manager(&t, &cache, &clock);
    let mk = key(&[MANIFEST_CLIENT]);
    set(&t, &m, entry("c1", "api", "a", "at", 600.0)).await;
    t.ok(
        m.set_id_token("c2", "id", decoded("u")).await,
        "set_id_token",
    );
    t.eq(
        raw(&t, &*cache, &mk).await.is_some(),
        !t.listing(),
        "a manifest exists exactly in manifest mode",
    );
    t.ok(m.remove("c1", Some("api"), Some("a")).await, "remove");
    assert_manifest(&t, &m, &[&key(&["c2", "@@user@@"])]).await;
    t.ok(m.clear(Some("c2")).await, "clear(c2)");
    t.that(
        raw(&t, &*cache, &mk).await.is_none(),
        "the manifest is deleted after clear removed its last line",
    );
    set(&t, &m, entry("c1", "api", "b", "at", 600.0)).await;
    let got = get(
        &t,
        &m,
        "c1",
        Some("api"),
        Some("b"),
        GetOptions::default().leeway(700),
    )
    .await;
    t.that(
        got.is_none(),
        "the entry expired under the leeway without refresh token is a miss",
    );
    t.that(
        raw(&t, &*cache, &mk).await.is_none(),
        "the manifest is deleted after expiry removed its last line",
    );
}

/// A manager over a cache that cannot list its keys needs a (non-empty) client id for
/// the manifest: without one, building it is a `Config` error.
pub async fn manager_over_non_listing_cache_needs_client_id(
    cache: Arc<dyn Cache>,
    clock: Arc<ManualClock>,
) {
    let t = Check::new("manager_over_non_listing_cache_needs_client_id", &*cache);
    let hidden: Arc<dyn Cache> = Arc::new(NoListing(cache.clone()));
    t.err(
        CacheManager::builder(hidden.clone())
            .clock(clock.clone())
            .build(),
        ErrorKind::Config,
        "builder without client id",
    );
    t.err(
        CacheManager::new(hidden.clone()),
        ErrorKind::Config,
        "CacheManager::new",
    );
    t.err(
        CacheManager::builder(hidden.clone()).client_id("").build(),
        ErrorKind::Config,
        "builder with an empty client id",
    );
    let m = t.ok(
        CacheManager::builder(hidden).client_id("app").build(),
        "builder with a client id",
    );
    t.eq(
        m.manifest_key(),
        Some("@@auth0spajs@@::app"),
        "the manifest key",
    );
    if cache.lists_keys() {
        let m = t.ok(
            CacheManager::new(cache.clone()),
            "CacheManager::new over a listing cache",
        );
        t.eq(m.manifest_key(), None, "a listing cache keeps no manifest");
    }
}
