//! The page module of the three-tab refresh test: many tabs of one origin, each running
//! many concurrent [`CacheManager::get_or_refresh`] calls over one [`LocalStorageCache`],
//! refresh a token family once, by calling an identity provider over `fetch`.
//!
//! Built for the browser and driven by `tests/tabs.rs` (run both with
//! `scripts/tabs-test.sh`):
//!
//! ```text
//! cargo build --target wasm32-unknown-unknown -p tokencache-web --example tabs
//! wasm-bindgen --target web --out-dir PKG $CARGO_TARGET_DIR/wasm32-unknown-unknown/debug/examples/tabs.wasm
//! ```
//!
//! The manager is built as the `tokencache` facade builds it: `CacheManager::builder` over
//! the cache with no lock of its own, so that refreshes run under the cache's own
//! `refresh_lock()`, the [`WebLock`](tokencache_web::WebLock) that the origin's tabs share.
//!
//! Exports (see `tests/tabs/page.js` for how the page uses them):
//!
//! - `seed(refresh_token, expires_in)`: stores the test's token entry with a refresh token;
//! - `stampede(idp_url, tasks)`: `tasks` concurrent `get_or_refresh` calls, resolving to a
//!   report (every call's access token or error);
//! - `exchanges()`: every exchange this tab's refresh function made at the provider;
//! - `uses_web_locks()`: whether the cache's updates and leases use Web Locks.
//!
//! The reports carry the test provider's tokens, for the native test to compare; nothing
//! here logs them.
#![cfg(target_arch = "wasm32")]
#![forbid(unsafe_code)]
// The core shares caches as `Arc<dyn Cache>`; browser values are not `Send` (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use std::cell::RefCell;
use std::sync::Arc;

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokencache_core::{
    CacheEntry, CacheKey, CacheManager, GetOptions, RefreshError, RefreshOptions, RefreshRequest,
};
use tokencache_web::LocalStorageCache;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The client id of the test's token family.
pub const CLIENT_ID: &str = "tabs-test-client";
/// The audience of the test's entry.
pub const AUDIENCE: &str = "https://api.tabs.test";
/// The scope of the test's entry.
pub const SCOPE: &str = "openid offline_access read:tabs";
/// The access token of the seeded entry (expired under [`LEEWAY_S`] from the start).
pub const SEEDED_ACCESS_TOKEN: &str = "seeded-access-token";
/// The leeway of every read: an access token that expires within it counts as expired,
/// so that an entry seeded with less than this lifetime needs a refresh at once (expiry
/// is compared in whole seconds).
pub const LEEWAY_S: i64 = 60;

/// One exchange the refresh function made at the provider.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Exchange {
    /// The refresh token presented.
    presented: String,
    /// `Date.now()` before the request was sent.
    started_ms: f64,
    /// `Date.now()` when the answer was read (`None`: no answer yet).
    answered_ms: Option<f64>,
    /// The HTTP status (0 for a network failure).
    status: u16,
    /// The tokens of a successful answer.
    access_token: Option<String>,
    refresh_token: Option<String>,
}

thread_local! {
    /// The exchanges of this tab, in order.
    static EXCHANGES: RefCell<Vec<Exchange>> = const { RefCell::new(Vec::new()) };
}

/// What [`stampede`] resolves to.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    /// `Date.now()` when the calls began.
    started_ms: f64,
    /// `Date.now()` when the last call ended.
    finished_ms: f64,
    /// Each call's access token (`None` when it failed).
    access_tokens: Vec<Option<String>>,
    /// The failed calls' errors (kind and message; they never contain tokens).
    errors: Vec<String>,
}

/// A successful answer of the provider's token endpoint.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: f64,
}

/// An error answer of the provider's token endpoint (only the code is read).
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

fn js_err(e: tokencache_core::Error) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value).map_err(|e| js_sys::Error::new(&e.to_string()))?;
    js_sys::JSON::parse(&text)
}

/// The manager over this page's `localStorage`, built as the facade builds it: the
/// refresh lock is the cache's own (its `WebLock`) and the refresh policy the default.
fn manager() -> Result<CacheManager, JsValue> {
    let cache = LocalStorageCache::new().map_err(js_err)?;
    CacheManager::builder(Arc::new(cache))
        .client_id(CLIENT_ID)
        .build()
        .map_err(js_err)
}

fn key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(AUDIENCE), Some(SCOPE))
}

/// Whether the page's `LocalStorageCache` uses Web Locks for its updates and leases (it
/// does in a secure context of a browser that has them).
#[wasm_bindgen]
pub fn uses_web_locks() -> Result<bool, JsValue> {
    let cache = LocalStorageCache::new().map_err(js_err)?;
    Ok(cache.uses_web_locks() && cache.web_lock().uses_web_locks())
}

/// Stores the test's entry: an access token of `expires_in` seconds (under [`LEEWAY_S`]:
/// expired for every read of this module) and `refresh_token`.
#[wasm_bindgen]
pub async fn seed(refresh_token: String, expires_in: f64) -> Result<(), JsValue> {
    let entry = CacheEntry::new(CLIENT_ID, AUDIENCE, SCOPE, SEEDED_ACCESS_TOKEN, expires_in)
        .with_refresh_token(refresh_token);
    manager()?.set(entry).await.map_err(js_err)
}

/// Every exchange this tab's refresh function made, oldest first.
#[wasm_bindgen]
pub fn exchanges() -> Result<JsValue, JsValue> {
    EXCHANGES.with(|e| to_js(&*e.borrow()))
}

/// Runs `tasks` concurrent `get_or_refresh` calls of the test's key through one manager,
/// with a refresh function that exchanges the refresh token at `idp_url`'s
/// `/oauth/token`; resolves to the report of every call.
#[wasm_bindgen]
pub async fn stampede(idp_url: String, tasks: u32) -> Result<JsValue, JsValue> {
    let manager = manager()?;
    let key = key();
    let opts = RefreshOptions::default().get(GetOptions::default().leeway(LEEWAY_S));
    let started_ms = js_sys::Date::now();
    let calls =
        (0..tasks).map(|_| manager.get_or_refresh(&key, opts, |req| exchange(&idp_url, req)));
    let outcomes = join_all(calls).await;
    let finished_ms = js_sys::Date::now();
    let mut report = Report {
        started_ms,
        finished_ms,
        access_tokens: Vec::with_capacity(outcomes.len()),
        errors: Vec::new(),
    };
    for outcome in outcomes {
        match outcome {
            Ok(body) => report.access_tokens.push(body.access_token.clone()),
            Err(e) => {
                report.access_tokens.push(None);
                report.errors.push(e.to_string());
            }
        }
    }
    to_js(&report)
}

/// Sets the answer of exchange `index` in the log.
fn record_answer(index: usize, status: u16, tokens: Option<(&str, Option<&str>)>) {
    EXCHANGES.with(|e| {
        if let Some(x) = e.borrow_mut().get_mut(index) {
            x.answered_ms = Some(js_sys::Date::now());
            x.status = status;
            x.access_token = tokens.map(|(at, _)| at.to_owned());
            x.refresh_token = tokens.and_then(|(_, rt)| rt.map(str::to_owned));
        }
    });
}

/// The refresh function: `POST {idp_url}/oauth/token` with the refresh-token grant (a
/// form body, so a simple CORS request), its answer as a [`CacheEntry`].
async fn exchange(idp_url: &str, req: RefreshRequest) -> Result<CacheEntry, RefreshError> {
    let index = EXCHANGES.with(|e| {
        let mut e = e.borrow_mut();
        e.push(Exchange {
            presented: req.refresh_token.clone(),
            started_ms: js_sys::Date::now(),
            answered_ms: None,
            status: 0,
            access_token: None,
            refresh_token: None,
        });
        e.len() - 1
    });
    let (status, text) = match post_form(idp_url, &req).await {
        Ok(answer) => answer,
        Err(e) => {
            record_answer(index, 0, None);
            return Err(RefreshError::Transient(e.into()));
        }
    };
    match status {
        200 => {
            let t: TokenResponse = serde_json::from_str(&text).map_err(|_| {
                record_answer(index, status, None);
                RefreshError::Fatal("the token endpoint answered 200 without tokens".into())
            })?;
            record_answer(
                index,
                status,
                Some((&t.access_token, t.refresh_token.as_deref())),
            );
            let mut entry = CacheEntry::new(
                req.client_id,
                req.audience,
                req.scope,
                t.access_token,
                t.expires_in,
            );
            entry.refresh_token = t.refresh_token;
            Ok(entry)
        }
        _ => {
            record_answer(index, status, None);
            let code = serde_json::from_str::<ErrorResponse>(&text)
                .map(|e| e.error)
                .unwrap_or_default();
            let why = format!("the token endpoint answered {status} {code}");
            Err(match status {
                400 | 401 if code == "invalid_grant" => RefreshError::InvalidGrant(why.into()),
                s if s >= 500 => RefreshError::Transient(why.into()),
                _ => RefreshError::Fatal(why.into()),
            })
        }
    }
}

/// The `fetch` of the exchange: the status and the body's text, or why it failed (never
/// with the request's tokens).
async fn post_form(idp_url: &str, req: &RefreshRequest) -> Result<(u16, String), String> {
    let enc = |s: &str| String::from(js_sys::encode_uri_component(s));
    let body = format!(
        "grant_type=refresh_token&client_id={}&refresh_token={}&scope={}",
        enc(&req.client_id),
        enc(&req.refresh_token),
        enc(&req.scope)
    );
    let failed = |what: &str| format!("the token request failed: {what}");
    let window = web_sys::window().ok_or_else(|| failed("no window"))?;
    let headers = web_sys::Headers::new().map_err(|_| failed("no Headers"))?;
    headers
        .set("Content-Type", "application/x-www-form-urlencoded")
        .map_err(|_| failed("Content-Type"))?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&body));
    let url = format!("{}/oauth/token", idp_url.trim_end_matches('/'));
    let request =
        web_sys::Request::new_with_str_and_init(&url, &init).map_err(|_| failed("bad request"))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| failed("network error"))?
        .dyn_into()
        .map_err(|_| failed("not a Response"))?;
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(|_| failed("no body"))?)
        .await
        .map_err(|_| failed("body not read"))?
        .as_string()
        .unwrap_or_default();
    Ok((status, text))
}
