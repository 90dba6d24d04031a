//! End to end: the real `Auth0Client` of @auth0/auth0-spa-js 2.28.3, in headless Chromium,
//! logs in with its `cache` in an encrypted SQLite file behind the bridge.
//!
//! One Rust server on 127.0.0.1 (a free port) is at once
//! - the bridge: `POST /tokencache` answered by a [`BridgeHandler`] over a
//!   `tokencache-sqlite` cache encrypted with `tokencache-crypto`'s `EncryptedCodec`;
//! - a fake authorization server: `/authorize` (a code, PKCE S256), `/oauth/token`
//!   (`authorization_code` with the code verifier checked, `refresh_token` with rotating
//!   single-use refresh tokens), `/v2/logout`; unsigned but well-formed ID tokens;
//! - the web server of the test page, the bridge's JavaScript package
//!   (`js/tokencache-bridge`) and auth0-spa-js (from `tests/e2e/node_modules`).
//!
//! `tests/e2e/driver.mjs` drives the page with playwright-core and stops at each checkpoint
//! until this test has checked the server, the SQLite file and a native `CacheManager` over
//! the same file. It runs once with a cache that lists its keys, once with one that does
//! not (auth0-spa-js then keeps its key manifest in the store).
//!
//! The flow: loginWithRedirect, handleRedirectCallback (one code exchange), getTokenSilently
//! from the cache (no token call), the page's clock moved past the access token's expiry
//! (auth0-spa-js's `nowProvider`), getTokenSilently refreshing with the cached refresh token
//! (one refresh grant, the token rotated in the store), getUser, native code storing a token
//! the page then finds, a reload, logout (the store is empty). Along the way: no token in
//! plaintext in the database files (main, -wal, -shm), nothing in localStorage, and the
//! native `CacheManager` finding the SDK's tokens by scope subset.
//!
//! Run it with `scripts/e2e-test.sh`, which installs Chromium and the npm packages. Without
//! node, Chromium or the packages the test fails; it never skips.
#![cfg(feature = "http")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tokencache_bridge::http::PATH as BRIDGE_PATH;
use tokencache_bridge::BridgeHandler;
use tokencache_conformance::NoListing;
use tokencache_core::{Cache, CacheEntry, CacheKey, CacheManager, GetOptions};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

const CLIENT_ID: &str = "tokencache-e2e-client";
const AUDIENCE: &str = "https://orders.e2e.example";
/// The API scope, in the scope the page asks for.
const API_SCOPE: &str = "read:orders";
/// The scope the page asks for; auth0-spa-js adds `openid` and (refresh tokens)
/// `offline_access`.
const PAGE_SCOPE: &str = "profile email read:orders";
/// The scope the tokens are issued for.
const GRANTED_SCOPE: [&str; 5] = ["openid", "profile", "email", "offline_access", API_SCOPE];
/// Short: the test moves the page's clock past it instead of waiting.
const EXPIRES_IN: u64 = 120;
/// The API of the entry native code writes for the page to find.
const NATIVE_AUDIENCE: &str = "https://invoices.e2e.example";
/// The scope the page asks for at [`NATIVE_AUDIENCE`]; auth0-spa-js adds its default scope.
const NATIVE_PAGE_SCOPE: &str = "read:invoices";
const SUB: &str = "auth0|e2e-user-7";
const EMAIL: &str = "ada.e2e@orders.e2e.example";
const NAME: &str = "Ada E2E";
/// The longest wait for one checkpoint of the driver.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The bridge's cache lists its keys: the page's cache has `allKeys`.
    Listing,
    /// The bridge's cache cannot list keys: auth0-spa-js keeps its key manifest.
    Manifest,
}

#[test]
fn auth0_spa_js_in_chromium_with_a_listing_bridge() {
    run(Mode::Listing);
}

#[test]
fn auth0_spa_js_in_chromium_in_manifest_mode() {
    run(Mode::Manifest);
}

// ---------------------------------------------------------------------------------------
// Paths and prerequisites

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn support_dir() -> PathBuf {
    crate_dir().join("tests").join("e2e")
}

fn auth0_esm() -> PathBuf {
    support_dir().join("node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.esm.js")
}

fn bridge_js() -> PathBuf {
    crate_dir().join("../../js/tokencache-bridge/index.js")
}

fn chromium() -> PathBuf {
    std::env::var_os("TOKENCACHE_E2E_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails (never skips) when something the test needs is missing.
fn check_prerequisites() {
    let hint = "run scripts/e2e-test.sh, which installs it";
    let node = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("node is needed for the end-to-end test ({e}); {hint}"));
    assert!(node.status.success(), "node --version failed; {hint}");
    assert!(
        chromium().is_file(),
        "Chromium not found at {}; {hint}",
        chromium().display()
    );
    for needed in [
        auth0_esm(),
        support_dir().join("node_modules/playwright-core/package.json"),
        bridge_js(),
    ] {
        assert!(needed.is_file(), "{} is missing; {hint}", needed.display());
    }
}

// ---------------------------------------------------------------------------------------
// Tokens

fn random_string(prefix: &str) -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random bytes");
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// base64url(SHA-256(verifier)): the PKCE S256 challenge.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// What auth0-spa-js checks in an ID token: an RS256 header, iss, aud, azp, sub, nonce,
/// exp and iat. It does not check the signature, so it is random bytes here.
fn id_token(issuer: &str, nonce: Option<&str>) -> String {
    let now = now_seconds();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "e2e"});
    let mut claims = json!({
        "iss": issuer,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": SUB,
        "email": EMAIL,
        "name": NAME,
        "iat": now,
        "exp": now + 3600,
        "jti": random_string(""),
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{}", part(&header), part(&claims), random_string(""))
}

/// One token response of the fake authorization server.
#[derive(Clone)]
struct Issued {
    access_token: String,
    refresh_token: String,
    id_token: String,
}

impl Issued {
    fn secrets(&self) -> [&str; 3] {
        [&self.access_token, &self.refresh_token, &self.id_token]
    }
}

struct PendingCode {
    challenge: String,
    nonce: String,
    redirect_uri: String,
    scope: String,
}

/// What the server saw and issued.
#[derive(Default)]
struct ServerState {
    codes: HashMap<String, PendingCode>,
    /// Refresh tokens not yet used (each one is good for one refresh), with their scope.
    live_refresh_tokens: HashMap<String, String>,
    issued: Vec<Issued>,
    authorize_calls: usize,
    token_calls: usize,
    code_grants: usize,
    /// The refresh token presented in each `refresh_token` grant, in order.
    refresh_grants: Vec<String>,
    logout_calls: usize,
    /// Loads of the test page (each one builds a bridge cache, which probes `allKeys`).
    page_loads: usize,
    /// Bridge requests by op.
    bridge_ops: BTreeMap<String, usize>,
    /// Every request the server refused, and why.
    rejected: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// The server: bridge + authorization server + static files

struct Ctx {
    base: String,
    handler: Arc<BridgeHandler>,
    runtime: tokio::runtime::Handle,
    state: Mutex<ServerState>,
}

impl Ctx {
    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn redirect_uri(&self) -> String {
        format!("{}/e2e/index.html", self.base)
    }

    fn issuer(&self) -> String {
        format!("{}/", self.base)
    }
}

struct Server {
    addr: SocketAddr,
    ctx: Arc<Ctx>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(handler: Arc<BridgeHandler>, runtime: tokio::runtime::Handle) -> Server {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let addr = server.server_addr().to_ip().expect("an IP address");
        assert!(addr.ip().is_loopback());
        let ctx = Arc::new(Ctx {
            base: format!("http://{addr}"),
            handler,
            runtime,
            state: Mutex::new(ServerState::default()),
        });
        let thread = {
            let (server, ctx) = (server.clone(), ctx.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    route(&ctx, request);
                }
            })
        };
        Server {
            addr,
            ctx,
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
    tiny_http::Response::from_data(body.into())
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
}

fn json_response(status: u16, body: &Value) -> Response {
    text(status, "application/json", body.to_string())
}

fn redirect(location: &str) -> Response {
    text(302, "text/plain", "").with_header(header("Location", location))
}

fn file(path: &Path, content_type: &str) -> Response {
    match std::fs::read(path) {
        Ok(bytes) => text(200, content_type, bytes),
        Err(e) => text(500, "text/plain", format!("{}: {e}", path.display())),
    }
}

fn params(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn route(ctx: &Ctx, mut request: tiny_http::Request) {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let method = request.method().clone();
    let js = "text/javascript; charset=utf-8";
    let response = match (&method, path) {
        (tiny_http::Method::Get, "/e2e/index.html") => {
            ctx.state().page_loads += 1;
            file(
                &support_dir().join("index.html"),
                "text/html; charset=utf-8",
            )
        }
        (tiny_http::Method::Get, "/e2e/page.js") => file(&support_dir().join("page.js"), js),
        (tiny_http::Method::Get, "/vendor/auth0-spa-js.production.esm.js") => {
            file(&auth0_esm(), js)
        }
        (tiny_http::Method::Get, "/js/tokencache-bridge/index.js") => file(&bridge_js(), js),
        (tiny_http::Method::Get, "/e2e/config.json") => json_response(
            200,
            &json!({
                "domain": ctx.base,
                "clientId": CLIENT_ID,
                "audience": AUDIENCE,
                "scope": PAGE_SCOPE,
                "redirectUri": ctx.redirect_uri(),
                "listsKeys": ctx.handler.lists_keys(),
                "nativeAudience": NATIVE_AUDIENCE,
                "nativeScope": NATIVE_PAGE_SCOPE,
            }),
        ),
        (tiny_http::Method::Get, "/favicon.ico") => text(404, "text/plain", ""),
        (tiny_http::Method::Post, p) if p == BRIDGE_PATH => bridge(ctx, &mut request),
        (tiny_http::Method::Get, "/authorize") => authorize(ctx, &params(query)),
        (tiny_http::Method::Post, "/oauth/token") => {
            let mut body = String::new();
            match request.as_reader().read_to_string(&mut body) {
                Ok(_) => token(ctx, &params(&body)),
                Err(_) => text(400, "text/plain", "unreadable body"),
            }
        }
        (tiny_http::Method::Get, "/v2/logout") => logout(ctx, &params(query)),
        _ => {
            ctx.state()
                .rejected
                .push(format!("unexpected request {method} {path}"));
            text(404, "text/plain", "not found")
        }
    };
    let _ = request.respond(response);
}

fn bridge(ctx: &Ctx, request: &mut tiny_http::Request) -> Response {
    let is_json = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Content-Type") && h.value.as_str().starts_with("application/json"));
    if !is_json {
        ctx.state()
            .rejected
            .push("bridge request without JSON".into());
        return text(415, "text/plain", "");
    }
    let mut body = String::new();
    if request.as_reader().read_to_string(&mut body).is_err() {
        return text(400, "text/plain", "");
    }
    let op = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["op"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "<none>".into());
    *ctx.state().bridge_ops.entry(op).or_default() += 1;
    let answer = ctx.runtime.block_on(ctx.handler.handle_json(&body));
    text(200, "application/json", answer)
}

fn authorize(ctx: &Ctx, p: &HashMap<String, String>) -> Response {
    let mut state = ctx.state();
    state.authorize_calls += 1;
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    let scope: HashSet<&str> = get("scope").split(' ').collect();
    let problem = if get("client_id") != CLIENT_ID {
        Some("unknown client_id")
    } else if get("response_type") != "code" || get("response_mode") != "query" {
        Some("response_type must be code, response_mode query")
    } else if get("redirect_uri") != ctx.redirect_uri() {
        Some("redirect_uri is not the registered one")
    } else if get("code_challenge_method") != "S256" || get("code_challenge").len() != 43 {
        Some("PKCE S256 is required")
    } else if get("state").is_empty() || get("nonce").is_empty() {
        Some("state and nonce are required")
    } else if get("audience") != AUDIENCE {
        Some("unknown audience")
    } else if scope != HashSet::from(GRANTED_SCOPE) {
        Some("scope must be openid profile email offline_access and the API scope")
    } else {
        None
    };
    if let Some(problem) = problem {
        state.rejected.push(format!("/authorize: {problem}"));
        return text(400, "text/plain", problem);
    }
    let code = random_string("code_");
    state.codes.insert(
        code.clone(),
        PendingCode {
            challenge: get("code_challenge").to_owned(),
            nonce: get("nonce").to_owned(),
            redirect_uri: get("redirect_uri").to_owned(),
            scope: get("scope").to_owned(),
        },
    );
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", get("state"))
        .finish();
    redirect(&format!("{}?{query}", get("redirect_uri")))
}

fn oauth_error(state: &mut ServerState, status: u16, error: &str, why: &str) -> Response {
    state.rejected.push(format!("/oauth/token: {why}"));
    json_response(status, &json!({"error": error, "error_description": why}))
}

fn token(ctx: &Ctx, p: &HashMap<String, String>) -> Response {
    let mut state = ctx.state();
    state.token_calls += 1;
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != CLIENT_ID {
        return oauth_error(&mut state, 401, "invalid_client", "unknown client_id");
    }
    let (nonce, scope) = match get("grant_type") {
        "authorization_code" => {
            state.code_grants += 1;
            // A code is good for one exchange, used or not.
            let Some(pending) = state.codes.remove(get("code")) else {
                return oauth_error(&mut state, 403, "invalid_grant", "unknown or used code");
            };
            if get("redirect_uri") != pending.redirect_uri {
                return oauth_error(&mut state, 403, "invalid_grant", "redirect_uri mismatch");
            }
            if s256(get("code_verifier")) != pending.challenge {
                return oauth_error(
                    &mut state,
                    403,
                    "invalid_grant",
                    "the code_verifier does not match the code_challenge",
                );
            }
            (Some(pending.nonce), pending.scope)
        }
        "refresh_token" => {
            let presented = get("refresh_token").to_owned();
            state.refresh_grants.push(presented.clone());
            // Rotation: each refresh token works once.
            let Some(scope) = state.live_refresh_tokens.remove(&presented) else {
                return oauth_error(
                    &mut state,
                    403,
                    "invalid_grant",
                    "Unknown or invalid refresh token.",
                );
            };
            (None, scope)
        }
        _ => return oauth_error(&mut state, 400, "unsupported_grant_type", "unknown grant"),
    };
    let issued = Issued {
        access_token: random_string("at_"),
        refresh_token: random_string("rt_"),
        id_token: id_token(&ctx.issuer(), nonce.as_deref()),
    };
    state
        .live_refresh_tokens
        .insert(issued.refresh_token.clone(), scope.clone());
    state.issued.push(issued.clone());
    json_response(
        200,
        &json!({
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "id_token": issued.id_token,
            "token_type": "Bearer",
            "expires_in": EXPIRES_IN,
            "scope": scope,
        }),
    )
}

fn logout(ctx: &Ctx, p: &HashMap<String, String>) -> Response {
    let mut state = ctx.state();
    state.logout_calls += 1;
    let return_to = p.get("returnTo").cloned().unwrap_or_default();
    if p.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || !return_to.starts_with(&format!("{}/", ctx.base))
    {
        state
            .rejected
            .push("/v2/logout: bad client_id or returnTo".into());
        return text(400, "text/plain", "bad logout request");
    }
    redirect(&return_to)
}

// ---------------------------------------------------------------------------------------
// The driver process

struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Driver {
    fn spawn(base: &str) -> Driver {
        let mut child = Command::new("node")
            .arg("driver.mjs")
            .arg(base)
            .current_dir(support_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node driver.mjs");
        let stdout = child.stdout.take().expect("driver stdout");
        let stderr = child.stderr.take().expect("driver stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[driver] {line}");
            }
        });
        Driver {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The data of the next checkpoint, which must be `step`.
    fn expect(&mut self, step: &str) -> Value {
        let line = self
            .lines
            .recv_timeout(STEP_TIMEOUT)
            .unwrap_or_else(|e| panic!("no '{step}' from the driver in {STEP_TIMEOUT:?}: {e}"));
        let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("the driver printed something else than JSON ({e}): {line}")
        });
        assert_ne!(
            message["step"], "error",
            "the driver failed: {}",
            message["data"]["message"]
        );
        assert_eq!(message["step"], step, "unexpected step: {line}");
        message["data"].clone()
    }

    fn proceed(&mut self) {
        let stdin = self.stdin.as_mut().expect("driver stdin");
        stdin.write_all(b"continue\n").expect("write to the driver");
        stdin.flush().expect("flush to the driver");
    }

    /// Waits (bounded) for the driver to exit on its own; its exit status.
    fn finish(mut self) -> std::process::ExitStatus {
        self.stdin.take();
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("driver status") {
                return status;
            }
            assert!(Instant::now() < deadline, "the driver did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Closing stdin stops the driver (it closes Chromium); kill it if it lingers.
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Checks on the store

/// Every file of the SQLite database (main file, -wal, -shm), concatenated.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("read the temp dir") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("tokens.db") {
            all.extend(std::fs::read(&path).expect("read a database file"));
            files += 1;
        }
    }
    assert!(files >= 1, "no database file in {}", dir.display());
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// No issued token (nor the user's e-mail, a claim of the ID token) is stored in
/// plaintext; the keys are (a positive control: the scan reads the rows).
fn assert_no_plaintext(dir: &Path, issued: &[Issued], expected_key: &str) {
    let bytes = database_bytes(dir);
    assert!(
        contains(&bytes, expected_key),
        "the scan does not see the stored key in the database files"
    );
    for (i, tokens) in issued.iter().enumerate() {
        for (what, secret) in ["access token", "refresh token", "ID token"]
            .iter()
            .zip(tokens.secrets())
        {
            assert!(
                !contains(&bytes, secret),
                "the {what} of token response {i} is in the SQLite files in plaintext"
            );
            // The ID token's payload (base64url) and the claims themselves.
            let payload = secret.split('.').nth(1).unwrap_or(secret);
            assert!(
                !contains(&bytes, payload),
                "an ID token payload is in plaintext"
            );
        }
    }
    assert!(
        !contains(&bytes, EMAIL),
        "the user's e-mail is in plaintext"
    );
}

fn api_key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(AUDIENCE), Some(API_SCOPE))
}

fn str_list(v: &Value) -> Vec<String> {
    let mut list: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect();
    list.sort();
    list
}

// ---------------------------------------------------------------------------------------
// The flow

fn run(mode: Mode) {
    check_prerequisites();
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");

    // One encrypted SQLite file, opened twice with the same key: once for the webview
    // (behind the bridge), once for the app's native code.
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("tokens.db");
    let key = DataKey::generate(1).expect("a data key");
    let codec = || {
        Arc::new(EncryptedCodec::new(
            KeyRing::new(key.clone()),
            "tokencache-e2e",
        ))
    };
    let (webview_store, native_store) = runtime.block_on(async {
        let a = SqliteCache::open(&db, codec())
            .await
            .expect("open the SQLite file");
        let b = SqliteCache::open(&db, codec())
            .await
            .expect("open it again");
        (a, b)
    });
    let (bridge_cache, native_cache): (Arc<dyn Cache>, Arc<dyn Cache>) = match mode {
        Mode::Listing => (Arc::new(webview_store.clone()), Arc::new(native_store)),
        Mode::Manifest => (
            Arc::new(NoListing(webview_store.clone())),
            Arc::new(NoListing(native_store)),
        ),
    };
    let handler = Arc::new(BridgeHandler::new(bridge_cache));
    assert_eq!(handler.lists_keys(), mode == Mode::Listing);
    // Native code: auth0-spa-js's cache semantics in Rust, over the same file. In manifest
    // mode it reads and keeps the same key manifest as the SDK.
    let native = CacheManager::builder(native_cache)
        .client_id(CLIENT_ID)
        .build()
        .expect("a CacheManager");
    // Every key in the file, whatever the mode.
    let stored_keys = || -> Vec<String> {
        let mut keys = runtime
            .block_on(webview_store.all_keys())
            .expect("list the file")
            .expect("SQLite lists its keys")
            .to_strings();
        keys.sort();
        keys
    };

    let server = Server::start(handler, runtime.handle().clone());
    let ctx = server.ctx.clone();
    let base = ctx.base.clone();
    assert_eq!(base, format!("http://{}", server.addr));
    let mut driver = Driver::spawn(&base);

    // 1. The page started; the bridge cache asked the native side whether it lists keys.
    let data = driver.expect("started");
    assert_eq!(data["cacheHasAllKeys"], mode == Mode::Listing, "{data}");
    assert_eq!(
        data["secureContext"], true,
        "http://127.0.0.1 is a secure context"
    );
    assert_eq!(
        str_list(&data["storage"]["localStorage"]),
        Vec::<String>::new()
    );
    assert_eq!(ctx.state().bridge_ops.get("allKeys"), Some(&1), "one probe");
    assert!(stored_keys().is_empty());
    driver.proceed();

    // 2. loginWithRedirect -> /authorize -> handleRedirectCallback: one code exchange.
    let data = driver.expect("logged_in");
    let redirected = data["redirectedTo"].as_str().expect("a URL");
    assert!(
        redirected.starts_with(&ctx.redirect_uri()) && redirected.contains("code="),
        "{redirected}"
    );
    assert_eq!(data["callback"]["url"], ctx.redirect_uri().as_str());
    // Nothing of the SDK in localStorage; the login transaction left sessionStorage.
    assert_eq!(
        str_list(&data["storage"]["localStorage"]),
        Vec::<String>::new()
    );
    assert!(
        !str_list(&data["storage"]["sessionStorage"])
            .iter()
            .any(|k| k.starts_with("a0.spajs.txs")),
        "{data}"
    );
    let first = {
        let state = ctx.state();
        assert_eq!(state.rejected, Vec::<String>::new());
        assert_eq!(
            (state.authorize_calls, state.token_calls, state.code_grants),
            (1, 1, 1)
        );
        assert!(state.refresh_grants.is_empty());
        assert_eq!(state.issued.len(), 1);
        state.issued[0].clone()
    };
    let keys = stored_keys();
    let entry_key = keys
        .iter()
        .find(|k| k.contains(AUDIENCE))
        .expect("the SDK's token entry is in the SQLite file")
        .clone();
    let parsed = CacheKey::from_key(&entry_key).expect("an auth0-spa-js key");
    let entry_scope: HashSet<&str> = parsed.scope().expect("a scope").split(' ').collect();
    assert_eq!(entry_scope, HashSet::from(GRANTED_SCOPE));
    let user_key = format!("@@auth0spajs@@::{CLIENT_ID}::@@user@@");
    let manifest_key = format!("@@auth0spajs@@::{CLIENT_ID}");
    let mut expected = vec![entry_key.clone(), user_key.clone()];
    if mode == Mode::Manifest {
        expected.push(manifest_key.clone());
    }
    expected.sort();
    assert_eq!(keys, expected);
    if mode == Mode::Manifest {
        // auth0-spa-js's manifest, written through the bridge, lists its two keys.
        let manifest = runtime
            .block_on(webview_store.get(&manifest_key))
            .expect("read the manifest")
            .expect("a manifest");
        let mut listed = manifest.as_manifest().expect("a key manifest").keys.clone();
        listed.sort();
        let mut sdk_keys = vec![entry_key.clone(), user_key.clone()];
        sdk_keys.sort();
        assert_eq!(listed, sdk_keys);
    }
    assert_no_plaintext(dir.path(), std::slice::from_ref(&first), &entry_key);
    // The native CacheManager finds the SDK's tokens by a subset of the scopes.
    let body = runtime
        .block_on(native.get(&api_key(), GetOptions::default()))
        .expect("native get")
        .expect("the native side finds the SDK's entry by scope subset");
    assert_eq!(
        body.access_token.as_deref(),
        Some(first.access_token.as_str())
    );
    assert_eq!(
        body.refresh_token.as_deref(),
        Some(first.refresh_token.as_str())
    );
    let id = runtime
        .block_on(native.get_id_token(&CacheKey::new(CLIENT_ID, None, None)))
        .expect("native get_id_token")
        .expect("the SDK's ID token");
    assert_eq!(id.id_token, first.id_token);
    driver.proceed();

    // 3. getTokenSilently: the cached access token, no call to /oauth/token.
    let data = driver.expect("cached");
    assert_eq!(data["token"], first.access_token.as_str());
    assert_eq!(ctx.state().token_calls, 1, "served from the cache");
    driver.proceed();

    // 4. After expiry: exactly one refresh_token grant, with the current refresh token;
    //    the next getTokenSilently is served from the cache.
    let data = driver.expect("refreshed");
    let second = {
        let state = ctx.state();
        assert_eq!(state.rejected, Vec::<String>::new());
        assert_eq!(state.refresh_grants, vec![first.refresh_token.clone()]);
        // Rotation: the used refresh token is dead, only the new one works.
        let live: Vec<&String> = state.live_refresh_tokens.keys().collect();
        assert_eq!(live, vec![&state.issued[1].refresh_token]);
        assert_eq!((state.token_calls, state.code_grants), (2, 1));
        assert_eq!(state.issued.len(), 2);
        state.issued[1].clone()
    };
    assert!(data["offsetMs"].as_u64().expect("offset") > EXPIRES_IN * 1000);
    assert_eq!(data["token"], second.access_token.as_str());
    assert_eq!(data["again"], second.access_token.as_str());
    // The rotated refresh token replaced the used one in the shared store.
    let body = runtime
        .block_on(native.get(&api_key(), GetOptions::default()))
        .expect("native get")
        .expect("the refreshed entry");
    assert_eq!(
        body.access_token.as_deref(),
        Some(second.access_token.as_str())
    );
    assert_eq!(
        body.refresh_token.as_deref(),
        Some(second.refresh_token.as_str())
    );
    for key in stored_keys() {
        let value = runtime
            .block_on(webview_store.get(&key))
            .expect("read a value")
            .expect("a value");
        let text = serde_json::to_string(&value).expect("JSON");
        assert!(
            !text.contains(&first.refresh_token),
            "the used refresh token is still stored"
        );
        assert!(
            !text.contains(&first.access_token),
            "the old access token is still stored"
        );
    }
    assert_no_plaintext(dir.path(), &[first.clone(), second.clone()], &entry_key);
    driver.proceed();

    // 5. getUser: the profile from the (refreshed) ID token.
    let data = driver.expect("user");
    assert_eq!(data["user"]["sub"], SUB);
    assert_eq!(data["user"]["email"], EMAIL);
    assert_eq!(data["user"]["name"], NAME);
    assert!(data["user"].get("nonce").is_none() && data["user"].get("iss").is_none());
    let id = runtime
        .block_on(native.get_id_token(&CacheKey::new(CLIENT_ID, None, None)))
        .expect("native get_id_token")
        .expect("an ID token");
    assert_eq!(id.id_token, second.id_token);
    // Native code stores a token for another API in the same store (in manifest mode, it
    // adds the key to the SDK's manifest).
    let native_token = random_string("at_native_");
    let mut native_scope = GRANTED_SCOPE.join(" ");
    native_scope.push(' ');
    native_scope.push_str(NATIVE_PAGE_SCOPE);
    runtime
        .block_on(native.set(CacheEntry::new(
            CLIENT_ID,
            NATIVE_AUDIENCE,
            &native_scope,
            &native_token,
            3600.0,
        )))
        .expect("native set");
    driver.proceed();

    // 6. A reload: a new client with nothing in memory finds the session natively stored.
    let data = driver.expect("reloaded");
    assert_eq!(data["token"], second.access_token.as_str());
    assert_eq!(
        data["nativeToken"],
        native_token.as_str(),
        "the page reads native's token"
    );
    assert_eq!(data["authenticated"], true);
    assert_eq!(data["user"]["email"], EMAIL);
    assert_eq!(
        str_list(&data["storage"]["localStorage"]),
        Vec::<String>::new()
    );
    assert_eq!(ctx.state().token_calls, 2);
    driver.proceed();

    // 7. logout: the store is empty, for the page and for native code.
    let data = driver.expect("logged_out");
    assert_eq!(data["token"], Value::Null);
    assert_eq!(data["authenticated"], false);
    assert_eq!(data["user"], Value::Null);
    assert_eq!(data["pageErrors"], json!([]));
    assert_eq!(
        stored_keys(),
        Vec::<String>::new(),
        "logout left keys in the store"
    );
    assert!(runtime
        .block_on(native.get(&api_key(), GetOptions::default()))
        .expect("native get")
        .is_none());
    let (token_calls, refresh_grants, ops) = {
        let state = ctx.state();
        assert_eq!(state.rejected, Vec::<String>::new());
        assert_eq!(state.logout_calls, 1);
        assert_eq!(state.token_calls, 2);
        // Page loads: start, back from /authorize, reload, back from /v2/logout.
        assert_eq!(state.page_loads, 4);
        let all_keys = state.bridge_ops.get("allKeys").copied().unwrap_or(0);
        if mode == Mode::Manifest {
            // Only the probe of each page load: auth0-spa-js used its manifest.
            assert_eq!(all_keys, state.page_loads);
        } else {
            assert!(all_keys > state.page_loads, "auth0-spa-js called allKeys");
        }
        (
            state.token_calls,
            state.refresh_grants.len(),
            state.bridge_ops.clone(),
        )
    };
    let bytes = database_bytes(dir.path());
    for tokens in [&first, &second] {
        for secret in tokens.secrets() {
            assert!(
                !contains(&bytes, secret),
                "a token is in plaintext after logout"
            );
        }
    }
    assert!(
        !contains(&bytes, &native_token),
        "native's token is in plaintext"
    );
    driver.proceed();

    let _ = driver.expect("done");
    let status = driver.finish();
    assert!(status.success(), "the driver exited with {status}");
    println!(
        "e2e {mode:?}: passed in {:.1} s; /oauth/token calls: {token_calls} (1 authorization_code, \
         {refresh_grants} refresh_token); bridge requests: {ops:?}",
        started.elapsed().as_secs_f64()
    );
}
