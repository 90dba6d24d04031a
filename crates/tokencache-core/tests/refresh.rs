//! `CacheManager::get_or_refresh` inside one process: the fast path takes no lock, one
//! refresh serves every waiting task (a failure included), a refused refresh token is
//! removed, a holder whose lease ended cannot write, a busy lock ends in `LockTimeout`,
//! and the policy is checked when the manager is built.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::JsonMapCache;
use tokencache_core::{
    CacheEntry, CacheKey, CacheManager, ErrorKind, GetOptions, InProcessLock, Lease, ManualClock,
    RefreshError, RefreshLock, RefreshOptions, RefreshPolicy, RefreshRequest, TryAcquire,
};

const NOW_MS: i64 = 1_700_000_000_000;
const CLIENT: &str = "app";
const AUD: &str = "https://api";
/// The refresh lock of the token family of `key()`.
const FAMILY: &str = "refresh::app::https://api";

fn key() -> CacheKey {
    CacheKey::new(CLIENT, Some(AUD), Some("openid read"))
}

fn tokens(at: &str, rt: &str, expires_in: f64) -> CacheEntry {
    CacheEntry::new(CLIENT, AUD, "openid read", at, expires_in).with_refresh_token(rt)
}

fn policy() -> RefreshPolicy {
    RefreshPolicy::default()
        .refresh_timeout(Duration::from_millis(500))
        .lease(Duration::from_millis(1_000))
        .wait(Duration::from_millis(3_000))
}

struct Rig {
    clock: Arc<ManualClock>,
    cache: Arc<JsonMapCache>,
    manager: Arc<CacheManager>,
}

fn rig(lock: Option<Arc<dyn RefreshLock>>) -> Rig {
    rig_with(lock, policy())
}

/// Generous timing, for tests whose tasks must all arrive while one refresh is in flight.
fn patient() -> RefreshPolicy {
    RefreshPolicy::default()
}

fn rig_with(lock: Option<Arc<dyn RefreshLock>>, policy: RefreshPolicy) -> Rig {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let cache = Arc::new(JsonMapCache::listing());
    let mut b = CacheManager::builder(cache.clone())
        .clock(clock.clone())
        .refresh_policy(policy);
    if let Some(lock) = lock {
        b = b.refresh_lock(lock);
    }
    Rig {
        clock,
        cache,
        manager: Arc::new(b.build().unwrap()),
    }
}

/// A provider that counts its calls and rotates `rt-N` to `rt-N+1`.
#[derive(Default)]
struct Provider {
    calls: AtomicUsize,
}

impl Provider {
    async fn exchange(&self, req: RefreshRequest) -> Result<CacheEntry, RefreshError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        // Long enough that every task arrives while the refresh is in flight.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let next: u32 = req.refresh_token.trim_start_matches("rt-").parse().unwrap();
        Ok(tokens(
            &format!("at-{n}"),
            &format!("rt-{}", next + 1),
            3600.0,
        ))
    }
}

/// A refresh that must not happen.
async fn never(_: RefreshRequest) -> Result<CacheEntry, RefreshError> {
    Err(RefreshError::Fatal("must not be called".into()))
}

/// Takes the token family's refresh lock for 60 s, as another holder would.
async fn hold_family(lock: &dyn RefreshLock) -> Lease {
    match lock
        .try_acquire(FAMILY, Duration::from_secs(60))
        .await
        .unwrap()
    {
        TryAcquire::Held(lease) => lease,
        TryAcquire::Busy { .. } => panic!("the lock is free"),
    }
}

fn stored_rt(cache: &JsonMapCache) -> Option<String> {
    cache.raw_json(&key().to_key())?["body"]["refresh_token"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn a_valid_access_token_takes_no_lock_and_calls_nothing() {
    let lock = Arc::new(InProcessLock::new());
    let r = rig(Some(lock.clone()));
    r.manager.set(tokens("at-0", "rt-0", 3600.0)).await.unwrap();
    // The lock is held by someone else: the fast path does not care.
    let _held = hold_family(&*lock).await;
    let body = r
        .manager
        .get_or_refresh(&key(), RefreshOptions::default(), never)
        .await
        .unwrap();
    assert_eq!(body.access_token.as_deref(), Some("at-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_share_one_refresh() {
    let r = rig(None);
    r.manager.set(tokens("at-0", "rt-0", 60.0)).await.unwrap();
    r.clock.advance(Duration::from_secs(61));
    let provider = Arc::new(Provider::default());
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let (m, p) = (r.manager.clone(), provider.clone());
            tokio::spawn(async move {
                m.get_or_refresh(&key(), RefreshOptions::default(), |req| async move {
                    p.exchange(req).await
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        let body = t.await.unwrap().unwrap();
        assert_eq!(body.access_token.as_deref(), Some("at-1"));
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    assert_eq!(stored_rt(&r.cache).as_deref(), Some("rt-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_is_shared_by_every_waiting_task() {
    let r = rig_with(None, patient());
    r.manager.set(tokens("at-0", "rt-0", 60.0)).await.unwrap();
    r.clock.advance(Duration::from_secs(61));
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let (m, calls, started) = (r.manager.clone(), calls.clone(), started.clone());
            tokio::spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                let all_started = started.clone();
                m.get_or_refresh(&key(), RefreshOptions::default(), |_| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // Fail only once every task is waiting on this flight.
                    while all_started.load(Ordering::SeqCst) < 1_000 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Err::<CacheEntry, _>(RefreshError::Transient("the provider is down".into()))
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        let e = t.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RefreshFailed);
        assert!(e.is_temporary());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Nothing was written: the refresh token is still there for the next try.
    assert_eq!(stored_rt(&r.cache).as_deref(), Some("rt-0"));
}

#[tokio::test]
async fn a_refused_refresh_token_is_removed_from_the_family() {
    let r = rig(None);
    r.manager.set(tokens("at-0", "rt-0", 60.0)).await.unwrap();
    r.manager
        .set(CacheEntry::new(CLIENT, AUD, "openid", "at-x", 60.0).with_refresh_token("rt-0"))
        .await
        .unwrap();
    r.clock.advance(Duration::from_secs(61));
    let e = r
        .manager
        .get_or_refresh(&key(), RefreshOptions::default(), |_| async {
            Err::<CacheEntry, _>(RefreshError::InvalidGrant("invalid_grant".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RefreshFailed);
    assert!(!e.to_string().contains("rt-0"), "{e}");
    assert_eq!(stored_rt(&r.cache), None);
    let other = CacheKey::new(CLIENT, Some(AUD), Some("openid")).to_key();
    assert!(r.cache.raw_json(&other).unwrap()["body"]["refresh_token"].is_null());
    // Now there is nothing to refresh with.
    let e = r
        .manager
        .get_or_refresh(&key(), RefreshOptions::default(), never)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingRefreshToken);
}

#[tokio::test]
async fn the_family_gets_the_new_token_and_a_response_without_one_keeps_the_old() {
    let r = rig(None);
    r.manager.set(tokens("at-0", "rt-0", 60.0)).await.unwrap();
    r.manager
        .set(CacheEntry::new(CLIENT, AUD, "openid", "at-x", 3600.0).with_refresh_token("rt-0"))
        .await
        .unwrap();
    r.clock.advance(Duration::from_secs(61));
    let provider = Provider::default();
    r.manager
        .get_or_refresh(&key(), RefreshOptions::default(), |req| {
            provider.exchange(req)
        })
        .await
        .unwrap();
    let other = CacheKey::new(CLIENT, Some(AUD), Some("openid")).to_key();
    assert_eq!(
        r.cache.raw_json(&other).unwrap()["body"]["refresh_token"],
        "rt-1"
    );
    // force: refresh although the access token is valid; no refresh token in the answer.
    let body = r
        .manager
        .get_or_refresh(&key(), RefreshOptions::default().force(true), |_| async {
            let mut e = tokens("at-forced", "", 3600.0);
            e.refresh_token = None;
            Ok(e)
        })
        .await
        .unwrap();
    assert_eq!(body.access_token.as_deref(), Some("at-forced"));
    assert_eq!(stored_rt(&r.cache).as_deref(), Some("rt-1"));
}

#[tokio::test]
async fn a_holder_whose_lease_ended_cannot_write() {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let lock = Arc::new(InProcessLock::with_clock(clock.clone()));
    let cache = Arc::new(JsonMapCache::listing());
    let manager = CacheManager::builder(cache.clone())
        .clock(clock.clone())
        .refresh_lock(lock.clone())
        .refresh_policy(policy())
        .build()
        .unwrap();
    manager.set(tokens("at-0", "rt-0", 60.0)).await.unwrap();
    clock.advance(Duration::from_secs(61));
    let (lock2, clock2, cache2) = (lock.clone(), clock.clone(), cache.clone());
    let body = manager
        .get_or_refresh(&key(), RefreshOptions::default(), |_| async move {
            // The holder pauses past its lease; another one takes the lock and writes.
            clock2.advance(Duration::from_millis(1_500));
            let TryAcquire::Held(other) = lock2
                .try_acquire(FAMILY, Duration::from_secs(1))
                .await
                .unwrap()
            else {
                panic!("the paused holder's lease has ended")
            };
            assert!(other.fence.epoch >= 2);
            let m2 = CacheManager::builder(cache2.clone())
                .clock(clock2.clone())
                .build()
                .unwrap();
            m2.set(tokens("at-other", "rt-other", 3600.0))
                .await
                .unwrap();
            Ok(tokens("at-late", "rt-late", 3600.0))
        })
        .await
        .unwrap();
    // The late result was not stored; the caller gets the valid token the store holds.
    assert_eq!(stored_rt(&cache).as_deref(), Some("rt-other"));
    assert_eq!(body.access_token.as_deref(), Some("at-other"));
}

#[tokio::test]
async fn a_lock_held_for_the_whole_wait_is_a_lock_timeout_and_no_refresh() {
    let lock = Arc::new(InProcessLock::new());
    let r = rig(Some(lock.clone()));
    r.manager.set(tokens("at-0", "rt-0", 60.0)).await.unwrap();
    r.clock.advance(Duration::from_secs(61));
    let _held = hold_family(&*lock).await;
    let e = r
        .manager
        .get_or_refresh(&key(), RefreshOptions::default(), never)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LockTimeout);
    assert_eq!(stored_rt(&r.cache).as_deref(), Some("rt-0"));
}

#[tokio::test]
async fn a_refresh_that_hangs_times_out_and_writes_nothing() {
    let r = rig(None);
    r.manager.set(tokens("at-0", "rt-0", 60.0)).await.unwrap();
    r.clock.advance(Duration::from_secs(61));
    let e = r
        .manager
        .get_or_refresh(&key(), RefreshOptions::default(), |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(tokens("at-never", "rt-never", 3600.0))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RefreshFailed);
    assert_eq!(stored_rt(&r.cache).as_deref(), Some("rt-0"));
    // The lease was released: the next call refreshes at once.
    let body = r
        .manager
        .get_or_refresh(&key(), RefreshOptions::default(), |_| async {
            Ok(tokens("at-1", "rt-1", 3600.0))
        })
        .await
        .unwrap();
    assert_eq!(body.access_token.as_deref(), Some("at-1"));
}

#[test]
fn the_policy_is_checked_when_the_manager_is_built() {
    let cache = Arc::new(JsonMapCache::listing());
    for bad in [
        RefreshPolicy::default().lease(Duration::from_secs(10)), // == refresh timeout
        RefreshPolicy::default().wait(Duration::from_secs(15)),  // == lease
        RefreshPolicy::default().reuse_interval(Duration::from_secs(14)),
    ] {
        let e = CacheManager::builder(cache.clone())
            .refresh_policy(bad)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{bad:?}");
    }
    assert!(CacheManager::builder(cache)
        .refresh_policy(RefreshPolicy::default().reuse_interval(Duration::from_secs(15)))
        .build()
        .is_ok());
}

#[tokio::test]
async fn without_any_token_it_is_missing_refresh_token() {
    let r = rig(None);
    let e = r
        .manager
        .get_or_refresh(
            &key(),
            RefreshOptions::default().get(GetOptions::default().mrrt(true)),
            never,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingRefreshToken);
    assert!(r.cache.snapshot().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_hands_the_flight_on_after_its_lease() {
    // The lock runs by the system clock: the cancelled leader's lease ends by itself.
    let r = rig(Some(Arc::new(InProcessLock::new())));
    r.manager.set(tokens("at-0", "rt-0", 60.0)).await.unwrap();
    r.clock.advance(Duration::from_secs(61));
    let m = r.manager.clone();
    let leader = tokio::spawn(async move {
        m.get_or_refresh(&key(), RefreshOptions::default(), |_| async {
            std::future::pending::<()>().await;
            unreachable!()
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = r.manager.clone();
    let waiter = tokio::spawn(async move {
        m.get_or_refresh(&key(), RefreshOptions::default(), |req| async move {
            assert_eq!(req.refresh_token, "rt-0");
            Ok(tokens("at-1", "rt-1", 3600.0))
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let body = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter was handed the flight")
        .unwrap()
        .unwrap();
    assert_eq!(body.access_token.as_deref(), Some("at-1"));
    assert_eq!(stored_rt(&r.cache).as_deref(), Some("rt-1"));
}
