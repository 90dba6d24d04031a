//! The concurrency check: no lost updates.

use std::sync::Arc;

use tokencache_core::{Cache, CacheManager, Cacheable, Result};

use crate::doubles::Yielding;
use crate::harness::{
    assert_manifest, decoded, entry, manifest_lines, present, raw, with_rt, Check, Subject,
};

/// One concurrent call of the check.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type Call = futures::future::BoxFuture<'static, Result<()>>;
#[cfg(target_arch = "wasm32")]
pub(crate) type Call = futures::future::LocalBoxFuture<'static, Result<()>>;

/// Runs `calls` concurrently and returns their results in order: as tasks of a
/// multi-thread runtime of its own (native targets), all joined on one task (wasm32).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn concurrently(t: &Check, calls: Vec<Call>) -> Vec<Result<()>> {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => t.fail(format_args!("cannot start a multi-thread runtime: {e}")),
    };
    let tasks: Vec<_> = calls.into_iter().map(|c| rt.spawn(c)).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(r) => out.push(r),
            Err(e) => {
                rt.shutdown_background();
                t.fail(format_args!("a concurrent call panicked: {e}"));
            }
        }
    }
    // Dropping a runtime blocks, which is not allowed inside the caller's runtime.
    rt.shutdown_background();
    out
}

/// A concurrent call: `f` of the manager.
#[cfg(not(target_arch = "wasm32"))]
fn boxed<F, Fut>(m: Arc<CacheManager>, f: F) -> Call
where
    F: FnOnce(Arc<CacheManager>) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    Box::pin(f(m))
}

/// A concurrent call: `f` of the manager.
#[cfg(target_arch = "wasm32")]
fn boxed<F, Fut>(m: Arc<CacheManager>, f: F) -> Call
where
    F: FnOnce(Arc<CacheManager>) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + 'static,
{
    Box::pin(f(m))
}

#[cfg(target_arch = "wasm32")]
pub(crate) async fn concurrently(_t: &Check, calls: Vec<Call>) -> Vec<Result<()>> {
    futures::future::join_all(calls).await
}

/// Improvement: concurrent calls on one manager never lose an entry write, a manifest
/// line or a newer entry (64 concurrent calls of `set`, `remove`, `get`, `set_id_token`
/// and `clear`); afterwards the manifest lists exactly the keys present.
///
/// The manager runs over the cache wrapped in [`Yielding`](crate::Yielding), so that its
/// calls interleave even when the cache's futures never wait; on native targets the calls
/// run as tasks of a multi-thread runtime, on wasm32 they are joined on one task.
pub async fn improvement_no_lost_updates_under_concurrency(s: Subject) {
    let (t, cache, clock) = Check::new("improvement_no_lost_updates_under_concurrency", s);
    let yielding: Arc<dyn Cache> = Arc::new(Yielding(cache.clone()));
    let m = Arc::new(t.manager(&yielding, &clock));
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
    let k = |i: usize| t.key(&[&client(i), "api", &format!("s{i}")]);

    // 64 concurrent sets: every one lands, with its manifest line.
    let calls: Vec<Call> = (0..64)
        .map(|i| {
            let e = mk(i);
            boxed(m.clone(), move |m| async move { m.set(e).await })
        })
        .collect();
    for r in concurrently(&t, calls).await {
        t.ok(r, "concurrent set");
    }
    let universe: Vec<String> = (0..128)
        .map(k)
        .chain((0..4).map(|c| t.key(&[&format!("c{c}"), "@@user@@"])))
        .collect();
    let want: Vec<String> = (0..64).map(k).collect();
    let mut got = present(&t, &*cache, &universe).await;
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    t.eq(got, want_sorted, "keys present after 64 concurrent sets");
    assert_manifest(&t, &m, &want.iter().map(String::as_str).collect::<Vec<_>>()).await;

    // 32 concurrent removes and 32 concurrent sets of new keys.
    let calls: Vec<Call> = (0..64)
        .map(|i| {
            if i % 2 == 0 {
                let (c, scope) = (client(i), format!("s{i}"));
                boxed(m.clone(), move |m| async move {
                    m.remove(&c, Some("api"), Some(&scope)).await
                })
            } else {
                let e = mk(64 + i);
                boxed(m.clone(), move |m| async move { m.set(e).await })
            }
        })
        .collect();
    for r in concurrently(&t, calls).await {
        t.ok(r, "concurrent remove or set");
    }
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

    // 32 lookups that find an expired entry and cut it down, each concurrent with a set
    // of a new entry at the same key: the new entries must all survive.
    let renewed: Vec<(String, String)> = (0..32)
        .map(|i| (format!("e{}", i % 4), format!("r{i}")))
        .collect();
    for (c, scope) in &renewed {
        let e = with_rt(entry(c, "api", scope, "at-old", 10.0), "rt-old");
        t.ok(m.set(e).await, "set");
    }
    clock.advance_ms(11_000);
    let calls: Vec<Call> = renewed
        .iter()
        .flat_map(|(c, scope)| {
            let lookup = tokencache_core::CacheKey::new(c.as_str(), Some("api"), Some(scope));
            let fresh = with_rt(
                entry(c, "api", scope, &format!("at-new-{scope}"), 600.0),
                "rt",
            );
            [
                boxed(m.clone(), move |m| async move {
                    m.get(&lookup, Default::default()).await.map(|_| ())
                }),
                boxed(m.clone(), move |m| async move { m.set(fresh).await }),
            ]
        })
        .collect();
    for r in concurrently(&t, calls).await {
        t.ok(r, "concurrent get or set");
    }
    for (c, scope) in &renewed {
        let stored = raw(&t, &*cache, &t.key(&[c, "api", scope])).await;
        let at = match &stored {
            Some(Cacheable::Entry(e)) => e.body.access_token.clone(),
            _ => None,
        };
        t.eq(
            at,
            Some(format!("at-new-{scope}")),
            "an entry set concurrently with the cut-down of an expired one must survive",
        );
    }
    let universe: Vec<String> = universe
        .into_iter()
        .chain(renewed.iter().map(|(c, scope)| t.key(&[c, "api", scope])))
        .collect();

    // A free mix, including clear: whatever the interleaving, the manifest stays true.
    let calls: Vec<Call> = (0..64)
        .map(|i| {
            let c = client(i);
            match i % 8 {
                0 => {
                    let c = client(i / 8);
                    boxed(m.clone(), move |m| async move { m.clear(Some(&c)).await })
                }
                1 | 2 => {
                    let scope = format!("s{}", 64 + i);
                    boxed(m.clone(), move |m| async move {
                        m.remove(&c, Some("api"), Some(&scope)).await
                    })
                }
                3 => boxed(m.clone(), move |m| async move {
                    m.set_id_token(&c, "id", decoded("u")).await
                }),
                _ => {
                    let e = mk(i);
                    boxed(m.clone(), move |m| async move { m.set(e).await })
                }
            }
        })
        .collect();
    for r in concurrently(&t, calls).await {
        t.ok(r, "concurrent mixed call");
    }
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
        let mut listed = t
            .ok(
                cache.keys_with_prefix(&t.key_space()).await,
                "keys_with_prefix",
            )
            .unwrap_or_default()
            .to_strings();
        listed.sort();
        t.eq(
            listed,
            got,
            "after concurrent mixed calls, the listing shows exactly the keys present",
        );
    }
}
