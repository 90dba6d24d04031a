//! A small binding of the Web Locks API (`navigator.locks`) and of the timers, of our own:
//! web-sys's `LockManager` needs `--cfg=web_sys_unstable_apis`, which a library cannot set.
//!
//! Web Locks are shared by every tab, frame and worker of an origin (more exactly, of a
//! storage partition: the same set of contexts that share `localStorage`), and the browser
//! releases the locks of a context that goes away (a tab closed, a worker terminated).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use tokencache_core::{Error, Result};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// The origin's lock manager, `navigator.locks`.
    #[derive(Debug, Clone)]
    pub(crate) type LockManager;

    /// `locks.request(name, options, callback)`: calls `callback` with the lock (or with
    /// `null` when `options.ifAvailable` is set and the lock is held) and holds the lock
    /// until the promise `callback` returns settles. Its own promise settles with that one.
    #[wasm_bindgen(method, catch, js_name = request)]
    fn request_with_options(
        this: &LockManager,
        name: &str,
        options: &Object,
        callback: &JsValue,
    ) -> std::result::Result<Promise, JsValue>;

    /// The global `setTimeout` (windows and workers alike); returns the timer's id.
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &Function, timeout_ms: i32) -> JsValue;

    /// The global `clearTimeout`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
}

/// `navigator.locks`, or `None` when this context has none (an old browser, or a context
/// that is not secure: Web Locks need HTTPS or localhost).
pub(crate) fn lock_manager() -> Option<LockManager> {
    let navigator = Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
    if !navigator.is_object() {
        return None;
    }
    let locks = Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    locks.is_object().then(|| locks.unchecked_into())
}

/// The options of an exclusive request: `{mode: "exclusive", ifAvailable}`. Never `steal`.
fn exclusive(if_available: bool) -> Object {
    let options = Object::new();
    // Setting a property of a fresh plain object cannot fail.
    let _ = Reflect::set(&options, &"mode".into(), &"exclusive".into());
    let _ = Reflect::set(&options, &"ifAvailable".into(), &if_available.into());
    options
}

/// A failed lock request as a tokencache error: the exception's name only.
fn lock_error(e: &JsValue) -> Error {
    let name = Reflect::get(e, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    let message = format!("Web Locks request failed: {name}");
    match name.as_str() {
        "SecurityError" | "InvalidStateError" | "AbortError" => Error::unavailable(message),
        _ => Error::unexpected(message),
    }
}

/// What a lock callback left for the future that asked for the lock.
struct Slot<T> {
    /// The future was dropped before the callback ran: the callback does nothing.
    cancelled: bool,
    /// What the callback produced.
    outcome: Option<T>,
}

/// Marks the slot cancelled when the future that owns it is dropped, and hands what the
/// callback produced but nobody took to `abandon`.
struct CancelOnDrop<T> {
    slot: Rc<RefCell<Slot<T>>>,
    abandon: Option<Box<dyn FnOnce(T)>>,
}

impl<T> CancelOnDrop<T> {
    fn new(abandon: impl FnOnce(T) + 'static) -> Self {
        CancelOnDrop {
            slot: Rc::new(RefCell::new(Slot {
                cancelled: false,
                outcome: None,
            })),
            abandon: Some(Box::new(abandon)),
        }
    }

    /// What the callback produced, taken.
    fn take(&self) -> Option<T> {
        self.slot.borrow_mut().outcome.take()
    }
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        let left = {
            let mut slot = self.slot.borrow_mut();
            slot.cancelled = true;
            slot.outcome.take()
        };
        if let (Some(left), Some(abandon)) = (left, self.abandon.take()) {
            abandon(left);
        }
    }
}

impl LockManager {
    /// Waits for the exclusive lock `name`, runs `op` while holding it (one synchronous
    /// turn) and releases it when `op` returns. When the future is dropped before the lock
    /// was granted, `op` never runs.
    pub(crate) async fn run_exclusive<T: 'static>(
        &self,
        name: &str,
        op: impl FnOnce() -> T + 'static,
    ) -> Result<T> {
        let guard = CancelOnDrop::new(drop);
        let slot = guard.slot.clone();
        let callback = Closure::once_into_js(move |_lock: JsValue| {
            if !slot.borrow().cancelled {
                let out = op();
                slot.borrow_mut().outcome = Some(out);
            }
            // Returning `undefined` releases the lock at once.
        });
        let request = self
            .request_with_options(name, &exclusive(false), &callback)
            .map_err(|e| lock_error(&e))?;
        JsFuture::from(request).await.map_err(|e| lock_error(&e))?;
        guard
            .take()
            .ok_or_else(|| Error::unexpected("a Web Lock was granted but its callback never ran"))
    }

    /// Asks for the exclusive lock `name` if nobody holds it, without waiting.
    ///
    /// `granted` runs in the lock's callback: with `false` when the lock is held elsewhere,
    /// with `true` when it is ours; it returns the outcome and, to keep holding the lock, a
    /// promise that releases it when it settles (`None`: release at once). Returns the
    /// outcome and the request's own promise, which settles once the lock was let go.
    /// When the future is dropped before the callback ran, the lock is released at once;
    /// when it is dropped after, the outcome goes to `abandon`.
    pub(crate) async fn try_exclusive<T: 'static>(
        &self,
        name: &str,
        granted: impl FnOnce(bool) -> (T, Option<Promise>) + 'static,
        abandon: impl FnOnce(T) + 'static,
    ) -> Result<(T, Promise)> {
        let guard = CancelOnDrop::new(abandon);
        let slot = guard.slot.clone();
        // Resolved by the callback, so that we learn it ran without waiting for the
        // release (the request's own promise settles only then).
        let (signal, signal_resolve) = pending()?;
        let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
            let hold = if slot.borrow().cancelled {
                None
            } else {
                let (out, hold) = granted(!lock.is_null());
                slot.borrow_mut().outcome = Some(out);
                hold
            };
            let _ = signal_resolve.call0(&JsValue::UNDEFINED);
            hold.map_or(JsValue::UNDEFINED, JsValue::from)
        });
        let request = self
            .request_with_options(name, &exclusive(true), &callback)
            .map_err(|e| lock_error(&e))?;
        // The request rejects (without calling back) when the lock manager refuses it.
        let first = Promise::race(&Array::of2(&signal, &request));
        JsFuture::from(first).await.map_err(|e| lock_error(&e))?;
        let outcome = guard
            .take()
            .ok_or_else(|| Error::unexpected("a Web Lock request settled without its callback"))?;
        Ok((outcome, request))
    }
}

/// A promise that stays pending until its resolve function is called.
pub(crate) fn pending() -> Result<(Promise, Function)> {
    let mut resolve_fn = None;
    let promise = Promise::new(&mut |resolve, _reject| resolve_fn = Some(resolve));
    let resolve =
        resolve_fn.ok_or_else(|| Error::unexpected("a Promise did not run its executor"))?;
    Ok((promise, resolve))
}
