//! Atomic updates and the refresh lock (`WebLock`) of the browser caches, in headless
//! Chromium: no lost increment, lease exclusivity and expiry, fences, lease records kept
//! out of the cache's keys, and the Web Locks shared with another context of the origin
//! (a dedicated worker: wasm-bindgen-test runs in one page and cannot open tabs; a worker
//! is another thread of the origin and shares its Web Locks exactly as a tab does).
#![cfg(target_arch = "wasm32")]
// The core shares caches as `Arc<dyn Cache>`; browser values are not `Send` (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{join_all, select, Either};
use tokencache_conformance::support::{
    busy, counted, entry_with_refresh_token, fenced_rotate, held, increment,
};
use tokencache_conformance::Yielding;
use tokencache_core::{
    update_by_get_and_set, Cache, CacheManager, Cacheable, ErrorKind, Lease, RefreshLock,
    TryAcquire, Update, Updated,
};
use tokencache_web::{
    LocalStorageCache, SessionStorageCache, StorageCache, StorageKind, LEASE_KEY_PREFIX,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

// A dedicated worker of this origin that takes, probes and lets go of Web Locks on request.
const WORKER = `
  const held = new Map();
  onmessage = async (e) => {
    const { op, name, id } = e.data;
    if (op === "hold") {
      navigator.locks.request(name, { mode: "exclusive" }, () => new Promise((release) => {
        held.set(name, release);
        postMessage({ id, ok: true });
      }));
    } else if (op === "release") {
      const release = held.get(name);
      held.delete(name);
      if (release) release();
      postMessage({ id, ok: release !== undefined });
    } else if (op === "probe") {
      const free = await navigator.locks.request(name, { mode: "exclusive", ifAvailable: true },
        (lock) => lock !== null);
      postMessage({ id, ok: free });
    }
  };
`;
export function start_worker() {
  const url = URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" }));
  return new Worker(url);
}
let next = 0;
export function ask(worker, op, name) {
  const id = next++;
  return new Promise((resolve) => {
    const listener = (e) => {
      if (e.data.id === id) {
        worker.removeEventListener("message", listener);
        resolve(e.data.ok);
      }
    };
    worker.addEventListener("message", listener);
    worker.postMessage({ op, name, id });
  });
}
export function stop_worker(worker) { worker.terminate(); }

export function hide_web_locks() {
  Object.defineProperty(navigator, "locks", { configurable: true, get: () => undefined });
}
export function restore_web_locks() { delete navigator.locks; }
"#)]
extern "C" {
    fn sleep(ms: u32) -> js_sys::Promise;
    fn start_worker() -> JsValue;
    fn ask(worker: &JsValue, op: &str, name: &str) -> js_sys::Promise;
    fn stop_worker(worker: &JsValue);
    fn hide_web_locks();
    fn restore_web_locks();
}

async fn pause(ms: u32) {
    JsFuture::from(sleep(ms)).await.unwrap();
}

/// Acquires `name` right after a worker's probe found its Web Lock free. The probe takes
/// the Web Lock for an instant, and its release can reach this page a few milliseconds
/// after the probe's answer, so a try may still find it busy: tried again for up to a
/// second before the acquisition must succeed.
async fn acquire_after_probe(lock: &dyn RefreshLock, name: &str, ttl: Duration) -> Lease {
    for _ in 0..50 {
        match lock.try_acquire(name, ttl).await.unwrap() {
            TryAcquire::Held(lease) => return lease,
            TryAcquire::Busy { .. } => pause(20).await,
        }
    }
    held(lock.try_acquire(name, ttl).await.unwrap())
}

/// A worker of this origin, for Web Locks held by another context.
struct Worker(JsValue);

impl Worker {
    fn start() -> Self {
        Worker(start_worker())
    }
    async fn ask(&self, op: &str, name: &str) -> bool {
        JsFuture::from(ask(&self.0, op, name))
            .await
            .unwrap()
            .as_bool()
            .unwrap()
    }
    /// Takes the lock `name` (waiting for it) and keeps it.
    async fn hold(&self, name: &str) {
        assert!(self.ask("hold", name).await);
    }
    async fn release(&self, name: &str) {
        assert!(self.ask("release", name).await, "the worker held {name}");
    }
    /// Whether the lock `name` is free (taken and let go at once if it is).
    async fn lock_is_free(&self, name: &str) -> bool {
        self.ask("probe", name).await
    }
    /// Whether the lock `name` is free for the worker within a second. A Web Lock this
    /// page let go reaches the browser's lock manager a few milliseconds after the page's
    /// own `request` promise settles, so a probe at once may still find it held.
    async fn lock_is_freed(&self, name: &str) -> bool {
        for _ in 0..50 {
            if self.lock_is_free(name).await {
                return true;
            }
            pause(20).await;
        }
        self.lock_is_free(name).await
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        stop_worker(&self.0);
    }
}

fn local() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn session() -> web_sys::Storage {
    web_sys::window()
        .unwrap()
        .session_storage()
        .unwrap()
        .unwrap()
}

fn local_cache(prefix: &str) -> LocalStorageCache {
    let cache = LocalStorageCache::new().unwrap().with_prefix(prefix);
    assert!(cache.uses_web_locks(), "Chromium has navigator.locks");
    cache.clear().unwrap();
    cache
}

async fn counter(cache: &dyn Cache, key: &str) -> Vec<String> {
    match cache.get(key).await.unwrap() {
        Some(Cacheable::Manifest(m)) => m.keys,
        other => panic!("the counter holds {other:?}"),
    }
}

/// 64 concurrent increments, alternating between two cache objects over the same storage
/// (as two tabs' caches), each wrapped so that the calls interleave.
async fn sixty_four_increments(a: Arc<dyn Cache>, b: Arc<dyn Cache>, key: &str) -> Vec<String> {
    let a: Arc<dyn Cache> = Arc::new(Yielding(a));
    let b: Arc<dyn Cache> = Arc::new(Yielding(b));
    let updates = (0..64).map(|i| {
        let cache = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { cache.update(key, None, increment()).await }
    });
    for r in join_all(updates).await {
        assert!(matches!(r.unwrap(), Updated::Put(_)));
    }
    counter(&*a, key).await
}

#[wasm_bindgen_test]
async fn sixty_four_concurrent_increments_count_to_64() {
    let key = "@@t-count@@::c::api::n";
    for memo in [true, false] {
        let a = local_cache("@@t-count@@").with_read_memo(memo);
        let b = LocalStorageCache::new().unwrap().with_prefix("@@t-count@@");
        assert!(a.atomic_updates());
        let lines = sixty_four_increments(Arc::new(a.clone()), Arc::new(b), key).await;
        assert_eq!(lines, counted(64), "read memo {memo}");
        a.clear().unwrap();
    }
    let s = SessionStorageCache::new()
        .unwrap()
        .with_prefix("@@t-count@@");
    s.clear().unwrap();
    assert!(!s.uses_web_locks() && s.atomic_updates());
    let lines = sixty_four_increments(Arc::new(s.clone()), Arc::new(s.clone()), key).await;
    assert_eq!(lines, counted(64));
    s.clear().unwrap();

    // The control: the same interleaved increments as get-then-set lose updates, so the
    // count above is something a non-atomic update fails.
    let c = local_cache("@@t-count@@");
    let y = Yielding(c.clone());
    let racing = (0..64).map(|_| update_by_get_and_set(&y, key, increment()));
    for r in join_all(racing).await {
        r.unwrap();
    }
    assert!(
        counter(&c, key).await.len() < 64,
        "get-then-set lost no update"
    );
    c.clear().unwrap();
}

#[wasm_bindgen_test]
async fn updates_wait_for_the_update_lock_held_by_another_context() {
    let cache = local_cache("@@t-wait@@");
    let key = "@@t-wait@@::c::api::n";
    let lock = cache
        .update_lock_name()
        .expect("localStorage updates use a Web Lock");
    assert_eq!(
        SessionStorageCache::new().unwrap().update_lock_name(),
        None,
        "sessionStorage is one tab's"
    );
    let worker = Worker::start();
    worker.hold(&lock).await;

    let done = Rc::new(Cell::new(false));
    let (c, d) = (cache.clone(), done.clone());
    wasm_bindgen_futures::spawn_local(async move {
        let r = c.update(key, None, increment()).await.unwrap();
        assert!(matches!(r, Updated::Put(_)));
        d.set(true);
    });
    pause(150).await;
    assert!(
        !done.get(),
        "the update ran while another context held its lock"
    );
    assert_eq!(local().get_item(key).unwrap(), None);

    // An update dropped while it waits never runs.
    let dropped = cache.update(key, None, increment());
    match select(dropped, JsFuture::from(sleep(20))).await {
        Either::Left(_) => panic!("the update ran while another context held its lock"),
        Either::Right((_, dropped)) => drop(dropped),
    }
    // remove_prefix waits too.
    let removing = cache.remove_prefix("@@t-wait@@::");
    assert!(matches!(
        select(removing, JsFuture::from(sleep(20))).await,
        Either::Right(_)
    ));

    worker.release(&lock).await;
    for _ in 0..100 {
        if done.get() {
            break;
        }
        pause(10).await;
    }
    assert!(
        done.get(),
        "the update never ran after the lock was released"
    );
    pause(50).await;
    assert_eq!(
        counter(&cache, key).await,
        counted(1),
        "the dropped update ran"
    );
    cache.clear().unwrap();
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

const ENTRY_KEY: &str = "@@t-lease@@::app::https://api::read";

fn with_rt(rt: &str) -> Cacheable {
    entry_with_refresh_token(rt, 1_900_000_000)
}

/// A fenced write of the refresh token `rt` where the stored one is still `old`.
async fn rotate(cache: &dyn Cache, lease: &Lease, old: &str, rt: &str) -> Updated {
    fenced_rotate(cache, ENTRY_KEY, lease, old, with_rt(rt))
        .await
        .unwrap()
}

#[wasm_bindgen_test]
async fn a_lease_is_exclusive_and_busy_says_when_to_retry() {
    let cache = local_cache("@@t-lease@@");
    let lock = cache.refresh_lock().expect("a refresh lock");
    let other = LocalStorageCache::new()
        .unwrap()
        .with_prefix("@@t-lease@@")
        .web_lock();
    let name = "refresh::app::https://api";
    let ttl = Duration::from_secs(10);
    let before = now_ms();
    let first = held(lock.try_acquire(name, ttl).await.unwrap());
    assert_eq!(first.fence.lock, name);
    assert_ne!(first.fence.holder, [0; 16]);
    assert!(first.expires_at_ms >= before + 10_000 && first.expires_at_ms <= now_ms() + 10_000);
    // Held: busy for this lock object, for another one over the same storage, and the
    // Web Lock is taken for every context of the origin.
    let wait = busy(lock.try_acquire(name, ttl).await.unwrap());
    assert!(wait > Duration::from_secs(9) && wait <= ttl, "{wait:?}");
    let wait = busy(
        other
            .try_acquire(name, Duration::from_secs(2))
            .await
            .unwrap(),
    );
    assert_eq!(
        wait,
        Duration::from_secs(2),
        "retry_after is at most the ttl asked for"
    );
    let worker = Worker::start();
    assert!(!worker.lock_is_free(&other.lease_key(name)).await);
    // Another name is independent.
    let m = held(lock.try_acquire("refresh::other", ttl).await.unwrap());
    lock.release(m).await.unwrap();
    // Released: free everywhere, and the next holder gets a larger epoch.
    lock.release(first.clone()).await.unwrap();
    assert!(worker.lock_is_freed(&other.lease_key(name)).await);
    let second = acquire_after_probe(&other, name, ttl).await;
    assert!(second.fence.epoch > first.fence.epoch);
    assert_ne!(second.fence.holder, first.fence.holder);
    other.release(second).await.unwrap();
    cache.clear().unwrap();
}

#[wasm_bindgen_test]
async fn an_expired_lease_is_taken_again_and_its_late_holder_changes_nothing() {
    let cache = local_cache("@@t-lease@@");
    let lock = cache.web_lock();
    let name = "refresh::expiry";
    cache.set(ENTRY_KEY, with_rt("rt0")).await.unwrap();
    let paused = held(
        lock.try_acquire(name, Duration::from_millis(200))
            .await
            .unwrap(),
    );
    assert!(matches!(
        lock.try_acquire(name, Duration::from_millis(200))
            .await
            .unwrap(),
        TryAcquire::Busy { .. }
    ));
    // The holder pauses past its lease: the Web Lock was let go by the timer.
    pause(400).await;
    let worker = Worker::start();
    assert!(worker.lock_is_freed(&lock.lease_key(name)).await);
    let live = acquire_after_probe(&lock, name, Duration::from_secs(10)).await;
    assert!(live.fence.epoch > paused.fence.epoch);
    // The late holder: its fenced write is refused and writes nothing; it can neither
    // extend nor release the new lease.
    let item = local().get_item(ENTRY_KEY).unwrap();
    assert_eq!(
        rotate(&cache, &paused, "rt0", "late").await,
        Updated::FenceLost
    );
    assert_eq!(local().get_item(ENTRY_KEY).unwrap(), item);
    assert!(!lock.extend(&paused, Duration::from_secs(10)).await.unwrap());
    lock.release(paused.clone()).await.unwrap();
    assert!(matches!(
        lock.try_acquire(name, Duration::from_secs(10))
            .await
            .unwrap(),
        TryAcquire::Busy { .. }
    ));
    assert!(!worker.lock_is_free(&lock.lease_key(name)).await);
    // The live holder writes.
    assert_eq!(
        rotate(&cache, &live, "rt0", "rt1").await,
        Updated::Put(with_rt("rt1"))
    );
    assert_eq!(cache.get(ENTRY_KEY).await.unwrap(), Some(with_rt("rt1")));
    // Once released, its fence is spent too.
    lock.release(live.clone()).await.unwrap();
    assert_eq!(
        rotate(&cache, &live, "rt1", "rt2").await,
        Updated::FenceLost
    );
    assert_eq!(cache.get(ENTRY_KEY).await.unwrap(), Some(with_rt("rt1")));
    cache.clear().unwrap();
}

#[wasm_bindgen_test]
async fn extend_keeps_a_lease_past_its_first_ttl() {
    let cache = local_cache("@@t-lease@@");
    let lock = cache.web_lock();
    let name = "refresh::extend";
    cache.set(ENTRY_KEY, with_rt("rt0")).await.unwrap();
    let lease = held(
        lock.try_acquire(name, Duration::from_millis(500))
            .await
            .unwrap(),
    );
    assert!(lock.extend(&lease, Duration::from_secs(5)).await.unwrap());
    let record = local().get_item(&lock.lease_key(name)).unwrap().unwrap();
    assert!(
        !record.contains(&lease.expires_at_ms.to_string()),
        "the expiry moved"
    );
    pause(800).await;
    // Still held (record and Web Lock), and its fence still writes.
    assert!(matches!(
        lock.try_acquire(name, Duration::from_secs(1))
            .await
            .unwrap(),
        TryAcquire::Busy { .. }
    ));
    assert!(!Worker::start().lock_is_free(&lock.lease_key(name)).await);
    assert_eq!(
        rotate(&cache, &lease, "rt0", "rt1").await,
        Updated::Put(with_rt("rt1"))
    );
    lock.release(lease.clone()).await.unwrap();
    assert!(!lock.extend(&lease, Duration::from_secs(2)).await.unwrap());
    cache.clear().unwrap();
}

#[wasm_bindgen_test]
async fn a_web_lock_held_by_another_context_is_busy_until_that_context_goes_away() {
    let lock = local_cache("@@t-lease@@").web_lock();
    let name = "refresh::worker";
    let worker = Worker::start();
    worker.hold(&lock.lease_key(name)).await;
    let wait = busy(
        lock.try_acquire(name, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(5),
        "{wait:?}"
    );
    // The worker ends (as a tab closes): the browser lets its locks go.
    drop(worker);
    let mut taken = None;
    for _ in 0..100 {
        match lock
            .try_acquire(name, Duration::from_secs(5))
            .await
            .unwrap()
        {
            TryAcquire::Held(lease) => {
                taken = Some(lease);
                break;
            }
            TryAcquire::Busy { .. } => pause(10).await,
        }
    }
    let lease = taken.expect("the lock of a terminated worker was never let go");
    lock.release(lease).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_fence_of_another_cache_prefix_or_a_damaged_record_writes_nothing() {
    let cache = local_cache("@@t-lease@@");
    let stranger = local_cache("@@t-lease-other@@").web_lock();
    let name = "refresh::fences";
    cache.set(ENTRY_KEY, with_rt("rt0")).await.unwrap();
    let foreign = held(
        stranger
            .try_acquire(name, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    assert_eq!(
        rotate(&cache, &foreign, "rt0", "x").await,
        Updated::FenceLost
    );
    stranger.release(foreign).await.unwrap();

    let lock = cache.web_lock();
    let lease = held(
        lock.try_acquire(name, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let record_key = lock.lease_key(name);
    let record = local()
        .get_item(&record_key)
        .unwrap()
        .expect("a lease record");
    assert!(!record.contains("rt0"));
    local().set_item(&record_key, "{\"holder\":").unwrap();
    assert_eq!(rotate(&cache, &lease, "rt0", "x").await, Updated::FenceLost);
    assert_eq!(cache.get(ENTRY_KEY).await.unwrap(), Some(with_rt("rt0")));
    // The next holder replaces the damaged record, with a larger epoch still.
    lock.release(lease.clone()).await.unwrap();
    let next = held(
        lock.try_acquire(name, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    assert!(next.fence.epoch > lease.fence.epoch);
    assert_eq!(
        rotate(&cache, &next, "rt0", "rt1").await,
        Updated::Put(with_rt("rt1"))
    );
    lock.release(next).await.unwrap();
    cache.clear().unwrap();
}

#[wasm_bindgen_test]
async fn lease_records_are_never_cache_keys() {
    let cache = local_cache("@@t-rec@@");
    let lock = cache.web_lock();
    let name = "refresh::listing";
    let key = "@@t-rec@@::app::https://api::read";
    cache.set(key, with_rt("rt0")).await.unwrap();
    let lease = held(
        lock.try_acquire(name, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let record_key = lock.lease_key(name);
    assert!(record_key.starts_with(LEASE_KEY_PREFIX));
    assert!(local().get_item(&record_key).unwrap().is_some());
    assert_eq!(cache.all_keys().await.unwrap().unwrap(), [key]);
    for prefix in ["", "@@", "@@t-rec@@", LEASE_KEY_PREFIX, &record_key] {
        let keys = cache.keys_with_prefix(prefix).await.unwrap().unwrap();
        assert!(
            keys.iter().all(|k| !k.starts_with(LEASE_KEY_PREFIX)),
            "{prefix:?}: {keys:?}"
        );
    }
    // Writes of cache values to a reserved key are refused.
    for err in [
        cache.set(&record_key, with_rt("x")).await.unwrap_err(),
        cache
            .update(&record_key, None, increment())
            .await
            .unwrap_err(),
        cache.remove(&record_key).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{err}");
    }
    // clear(), remove_prefix and a manager's clear leave the record, and the lease holds.
    cache.clear().unwrap();
    assert_eq!(cache.remove_prefix("").await.unwrap(), Some(0));
    let manager = CacheManager::builder(Arc::new(cache.clone()))
        .prefix("@@t-rec@@")
        .build()
        .unwrap();
    manager.clear(None).await.unwrap();
    assert!(local().get_item(&record_key).unwrap().is_some());
    let item = cache
        .update(
            key,
            Some(&lease.fence),
            Box::new(|_| Update::Put(with_rt("rt1"))),
        )
        .await
        .unwrap();
    assert_eq!(item, Updated::Put(with_rt("rt1")));
    lock.release(lease).await.unwrap();
    cache.clear().unwrap();
}

#[wasm_bindgen_test]
async fn remove_prefix_removes_exactly_the_prefix_in_one_step() {
    let cache = local_cache("@@t-rp@@");
    for k in [
        "@@t-rp@@::a::1",
        "@@t-rp@@::a::2",
        "@@t-rp@@::a::3",
        "@@t-rp@@::b::1",
    ] {
        cache.set(k, with_rt("rt")).await.unwrap();
    }
    assert_eq!(cache.remove_prefix("@@t-rp@@::a::").await.unwrap(), Some(3));
    assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["@@t-rp@@::b::1"]);
    assert_eq!(cache.remove_prefix("@@t-rp@@::a::").await.unwrap(), Some(0));
    cache.clear().unwrap();
}

/// A binary codec whose every value fails authentication once the item was touched.
fn encrypted(prefix: &str) -> LocalStorageCache {
    let key = tokencache_crypto::DataKey::parse(1, &"33".repeat(32)).unwrap();
    let codec = tokencache_crypto::EncryptedCodec::new(
        tokencache_crypto::KeyRing::new(key),
        "tokencache-web-locks",
    );
    local_cache(prefix).with_codec(Arc::new(codec))
}

#[wasm_bindgen_test]
async fn an_update_of_a_value_that_fails_authentication_is_an_error_and_writes_nothing() {
    let cache = encrypted("@@t-auth@@");
    let key = "@@t-auth@@::app::https://api::read";
    cache.set(key, with_rt("rt0")).await.unwrap();
    let item = local().get_item(key).unwrap().unwrap();
    // Another key's ciphertext: authentic bytes, bound to the wrong key.
    let moved = "@@t-auth@@::app::https://api::other";
    local().set_item(moved, &item).unwrap();
    for k in [key, moved] {
        if k == key {
            // Flip one base64 character of the ciphertext.
            let mut damaged = item.clone().into_bytes();
            let last = damaged.len() - 3;
            damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
            local()
                .set_item(key, &String::from_utf8(damaged).unwrap())
                .unwrap();
        }
        let before = local().get_item(k).unwrap();
        let runs = Rc::new(Cell::new(0));
        let r = runs.clone();
        let err = cache
            .update(
                k,
                None,
                Box::new(move |_| {
                    r.set(r.get() + 1);
                    Update::Put(with_rt("overwrite"))
                }),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{k}: {err}");
        assert!(!err.to_string().contains("rt0"));
        assert_eq!(
            runs.get(),
            0,
            "{k}: the function saw a value that failed authentication"
        );
        assert_eq!(
            local().get_item(k).unwrap(),
            before,
            "{k}: something was written"
        );
    }
    cache.clear().unwrap();
}

async fn record_only_lease_checks<K: StorageKind>(
    cache: StorageCache<K>,
    storage: web_sys::Storage,
) {
    let lock = cache.web_lock();
    assert!(!lock.uses_web_locks());
    let name = "refresh::record";
    cache.set(ENTRY_KEY, with_rt("rt0")).await.unwrap();
    let paused = held(
        lock.try_acquire(name, Duration::from_millis(200))
            .await
            .unwrap(),
    );
    let wait = busy(
        lock.try_acquire(name, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(200),
        "{wait:?}"
    );
    assert_eq!(cache.all_keys().await.unwrap().unwrap(), [ENTRY_KEY]);
    assert!(storage.get_item(&lock.lease_key(name)).unwrap().is_some());
    pause(300).await;
    let live = held(
        lock.try_acquire(name, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    assert!(live.fence.epoch > paused.fence.epoch);
    assert_eq!(
        rotate(&cache, &paused, "rt0", "late").await,
        Updated::FenceLost
    );
    lock.release(paused).await.unwrap();
    assert!(matches!(
        lock.try_acquire(name, Duration::from_secs(5))
            .await
            .unwrap(),
        TryAcquire::Busy { .. }
    ));
    assert_eq!(
        rotate(&cache, &live, "rt0", "rt1").await,
        Updated::Put(with_rt("rt1"))
    );
    lock.release(live.clone()).await.unwrap();
    assert_eq!(
        rotate(&cache, &live, "rt1", "rt2").await,
        Updated::FenceLost
    );
    held(
        lock.try_acquire(name, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    cache.clear().unwrap();
    storage.remove_item(&lock.lease_key(name)).unwrap();
}

#[wasm_bindgen_test]
async fn session_storage_leases_are_the_record_alone() {
    let cache = SessionStorageCache::new()
        .unwrap()
        .with_prefix("@@t-lease@@");
    cache.clear().unwrap();
    record_only_lease_checks(cache, session()).await;
}

#[wasm_bindgen_test]
async fn without_web_locks_updates_stay_atomic_and_leases_are_the_record_alone() {
    hide_web_locks();
    let made = LocalStorageCache::new();
    restore_web_locks();
    let cache = made.unwrap().with_prefix("@@t-lease@@");
    assert!(!cache.uses_web_locks());
    assert_eq!(cache.update_lock_name(), None);
    cache.clear().unwrap();
    let key = "@@t-lease@@::c::api::n";
    let lines = sixty_four_increments(Arc::new(cache.clone()), Arc::new(cache.clone()), key).await;
    assert_eq!(lines, counted(64));
    cache.clear().unwrap();
    record_only_lease_checks(cache, local()).await;
}

#[wasm_bindgen_test]
async fn debug_output_shows_no_holder_id() {
    let lock = local_cache("@@t-debug@@").web_lock();
    let lease = held(
        lock.try_acquire("refresh::debug", Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let hex: String = lease
        .fence
        .holder
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let raw = local()
        .get_item(&lock.lease_key("refresh::debug"))
        .unwrap()
        .unwrap();
    assert!(raw.contains(&hex), "the record names the holder");
    for shown in [format!("{lease:?}"), format!("{lock:?}")] {
        assert!(!shown.contains(&hex), "{shown}");
        assert!(
            !shown.contains(&format!("{:?}", lease.fence.holder)),
            "{shown}"
        );
    }
    lock.release(lease).await.unwrap();
}

#[wasm_bindgen_test]
async fn after_release_the_lease_is_free_at_once() {
    let lock = local_cache("@@t-again@@").web_lock();
    let mut epoch = 0;
    for _ in 0..100 {
        let lease = held(
            lock.try_acquire("refresh::again", Duration::from_secs(5))
                .await
                .unwrap(),
        );
        assert!(lease.fence.epoch > epoch);
        epoch = lease.fence.epoch;
        lock.release(lease).await.unwrap();
    }
}
