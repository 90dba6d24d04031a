//! The checks of atomic updates: for caches whose [`Cache::atomic_updates`] is true, no
//! update is lost between concurrent writers, and no refresh token goes back to an older
//! one when managers that do not share a lock interleave. A cache without atomic updates
//! makes no such promise: the checks return at once.

use std::sync::Arc;

use tokencache_core::{Cache, CacheKey, Cacheable};

use crate::checks::concurrency::{concurrently, Call};
use crate::doubles::Yielding;
use crate::harness::{entry, raw, with_rt, Check, Subject};
use crate::support::{counted, increment};

/// The number of concurrent increments of the counter check.
const INCREMENTS: usize = 64;

/// Atomic updates: 64 concurrent `update`s that each add one line to a list stored at one
/// key (a counter `n += 1`) leave exactly 64 distinct lines.
///
/// The cache is wrapped in [`Yielding`](crate::Yielding), so that the updates interleave
/// even when its futures never wait; on native targets they run as tasks of a
/// multi-thread runtime.
pub async fn atomic_update_loses_no_increment(s: Subject) {
    let (t, cache, _clock) = Check::new("atomic_update_loses_no_increment", s);
    if !cache.atomic_updates() {
        return;
    }
    let yielding: Arc<dyn Cache> = Arc::new(Yielding(cache.clone()));
    let counter = t.key(&["counter", "api", "n"]);
    let calls: Vec<Call> = (0..INCREMENTS)
        .map(|_| {
            let (c, k) = (yielding.clone(), counter.clone());
            Box::pin(async move { c.update(&k, None, increment()).await.map(|_| ()) }) as Call
        })
        .collect();
    for r in concurrently(&t, calls).await {
        t.ok(r, "concurrent update");
    }
    let lines = match raw(&t, &*cache, &counter).await {
        Some(Cacheable::Manifest(m)) => m.keys,
        other => t.fail(format_args!(
            "the counter must hold a list after the updates, found {other:?}"
        )),
    };
    t.eq(
        lines,
        counted(INCREMENTS),
        "64 concurrent increments must count to 64 (a lost update repeats a number)",
    );
}

/// Invariant I2 across managers: two managers that share the cache but no lock (as two
/// processes would) interleave the cut-down of an expired entry (`get`) with
/// `update_entry` replacing its refresh token; every entry ends up with the new refresh
/// token and without its access token, whatever the order.
pub async fn atomic_newer_refresh_token_survives_two_managers(s: Subject) {
    let (t, cache, clock) = Check::new("atomic_newer_refresh_token_survives_two_managers", s);
    if !cache.atomic_updates() {
        return;
    }
    let yielding: Arc<dyn Cache> = Arc::new(Yielding(cache.clone()));
    let reader = Arc::new(t.manager(&yielding, &clock));
    let rotator = Arc::new(t.manager(&yielding, &clock));
    let n = 32;
    let client = |i: usize| format!("x{}", i % 4);
    for i in 0..n {
        let e = with_rt(
            entry(&client(i), "api", &format!("s{i}"), "at-old", 10.0),
            &format!("rt0-{i}"),
        );
        t.ok(reader.set(e).await, "set");
    }
    clock.advance_ms(11_000);
    let calls: Vec<Call> = (0..n)
        .flat_map(|i| {
            let lookup = CacheKey::new(client(i), Some("api"), Some(&format!("s{i}")));
            let (m1, m2, c) = (reader.clone(), rotator.clone(), client(i));
            [
                Box::pin(async move { m1.get(&lookup, Default::default()).await.map(|_| ()) })
                    as Call,
                Box::pin(async move {
                    m2.update_entry(&format!("rt0-{i}"), &format!("rt1-{i}"), &c, false)
                        .await
                }) as Call,
            ]
        })
        .collect();
    for r in concurrently(&t, calls).await {
        t.ok(r, "concurrent get or update_entry");
    }
    for i in 0..n {
        let key = t.key(&[&client(i), "api", &format!("s{i}")]);
        let (rt, at) = match raw(&t, &*cache, &key).await {
            Some(Cacheable::Entry(e)) => {
                (e.body.refresh_token.clone(), e.body.access_token.clone())
            }
            other => t.fail(format_args!(
                "entry {i} must still be stored, found {other:?}"
            )),
        };
        t.eq(
            rt,
            Some(format!("rt1-{i}")),
            "the newer refresh token must survive a concurrent cut-down by another manager",
        );
        t.eq(at, None, "the expired access token must be cut down");
    }
}
