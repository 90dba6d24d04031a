//! Checks of the key manifest (kept by a manager over a cache that cannot list its keys)
//! and of what needs one.

use std::sync::Arc;

use tokencache_core::{Cache, CacheManager, ErrorKind, GetOptions};

use super::writes::fill_three_clients;
use crate::harness::{
    assert_manifest, decoded, entry, get, manifest_lines, raw, set, Check, Subject, MANIFEST_CLIENT,
};
use crate::NoListing;

/// Improvement: in manifest mode `clear(Some(client))` removes that client's manifest
/// lines only, so the other clients' entries are still found by scope lookup.
pub async fn improvement_clear_client_keeps_other_clients_manifest_lines(s: Subject) {
    let (t, cache, clock) = Check::new(
        "improvement_clear_client_keeps_other_clients_manifest_lines",
        s,
    );
    let m = t.manager(&cache, &clock);
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
                    t.key(&[c, "api", "openid"]),
                    t.key(&[c, "api-2", "openid read"]),
                    t.key(&[c, "@@user@@"]),
                ]
            })
            .collect();
        want.sort();
        t.eq(lines, want, "manifest lines after clearing two clients");
    }
}

/// Improvement: `remove` deletes the manifest line too, so a later scope lookup is not
/// hidden by a dangling line; `remove` never deletes the manifest itself.
pub async fn improvement_remove_keeps_the_manifest_true(s: Subject) {
    let (t, cache, clock) = Check::new("improvement_remove_keeps_the_manifest_true", s);
    let m = t.manager(&cache, &clock);
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
    assert_manifest(&t, &m, &[&t.key(&["c1", "api", "openid read write"])]).await;
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

/// The manifest is deleted when its last line goes (by remove, clear or expiry); in
/// listing mode no manifest is ever written.
pub async fn manifest_is_deleted_when_empty(s: Subject) {
    let (t, cache, clock) = Check::new("manifest_is_deleted_when_empty", s);
    let m = t.manager(&cache, &clock);
    let mk = t.key(&[MANIFEST_CLIENT]);
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
    assert_manifest(&t, &m, &[&t.key(&["c2", "@@user@@"])]).await;
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
pub async fn manager_over_non_listing_cache_needs_client_id(s: Subject) {
    let (t, cache, clock) = Check::new("manager_over_non_listing_cache_needs_client_id", s);
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
