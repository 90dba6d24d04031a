//! Three Chromium tabs × 20 tasks → one refresh call.
//!
//! Tabs of one origin in one headless Chromium context (so they share `localStorage` and
//! Web Locks) each run 20 concurrent `CacheManager::get_or_refresh` calls through a
//! manager over `LocalStorageCache`, built as the `tokencache` facade builds it (the
//! cache's own `WebLock` as the refresh lock). The refresh function calls the mock
//! identity provider of `tokencache-conformance` over `fetch`. The page's module is the
//! example `examples/tabs.rs`; `tests/tabs/driver.mjs` drives the tabs with
//! playwright-core, and this test serves the page, runs the provider, decides each step
//! and checks what the tabs, the provider and `localStorage` say.
//!
//! - [`three_tabs_twenty_tasks_one_refresh_call`]: the seeded access token has expired
//!   (under the calls' 60 s leeway); the three tabs start together while the provider is
//!   slow to answer; the provider sees exactly one exchange and no reuse, the 60 calls
//!   all get its new access token, and `localStorage` holds its new refresh token.
//! - [`a_closed_holder_tab_hands_the_refresh_on`]: the tab that holds the lease is closed
//!   after the provider rotated the token and before it answered (the provider's
//!   `hang_after`); the two other tabs, waiting on the lease meanwhile without calling
//!   the provider, refresh once after it ended, with the refresh token still stored
//!   (spent, but within the provider's reuse interval), and all their 40 calls get that
//!   refresh's access token. The lease ends when the tab closes (the browser lets its Web
//!   Lock go; the next holder replaces the unexpired lease record), before its ttl runs out.
//! - [`without_a_reuse_interval_a_closed_holder_costs_the_family`]: the same crash with a
//!   provider without a reuse interval: the next holder's exchange is a reuse, the
//!   provider revokes the family, and every call of both tabs fails cleanly (the refused
//!   refresh token removed from `localStorage`, no second exchange).
//!
//! Not part of `cargo test` (`test = false` in Cargo.toml): run it with
//! `scripts/tabs-test.sh`, which builds the wasm bundle (its folder in
//! `TOKENCACHE_TABS_PKG`), installs Chromium and playwright-core, and runs
//! `cargo test -p tokencache-web --test tabs`. Anything missing is a failure, never a skip.
//!
//! No token is printed: failures name the call, never the values.
#![cfg(not(target_arch = "wasm32"))]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokencache_conformance::idp::{MockIdp, Stats};

/// Tabs of every scenario.
const TABS: usize = 3;
/// Concurrent `get_or_refresh` calls in each tab.
const TASKS: usize = 20;
/// The storage key of the test's entry (client, audience and scope of `examples/tabs.rs`).
const ENTRY_KEY: &str =
    "@@auth0spajs@@::tabs-test-client::https://api.tabs.test::openid offline_access read:tabs";
/// The start of the storage keys of `WebLock` lease records.
const LEASE_KEY_PREFIX: &str = "@@tokencache-lease@@::";
/// The name of the refresh lock of the test's token family, in its lease record's key.
const LOCK_NAME: &str = "refresh::tabs-test-client::https://api.tabs.test";
/// The seeded entry's access token (`SEEDED_ACCESS_TOKEN` of `examples/tabs.rs`).
const SEEDED_ACCESS_TOKEN: &str = "seeded-access-token";
/// The seeded entry's lifetime: below the calls' 60 s leeway, so expired from the start.
const SEEDED_EXPIRES_IN: f64 = 30.0;
/// The lifetime of the provider's access tokens: well above the leeway.
const IDP_EXPIRES_IN: u64 = 3600;
/// The provider's reuse interval: longer than the default 15 s lease, as the core's
/// refresh policy asks.
const REUSE_INTERVAL: Duration = Duration::from_secs(30);
/// The longest wait for one answer of the driver.
const STEP_TIMEOUT: Duration = Duration::from_secs(45);

// ---------------------------------------------------------------------------------------
// Paths and prerequisites

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn support_dir() -> PathBuf {
    crate_dir().join("tests").join("tabs")
}

fn chromium() -> PathBuf {
    std::env::var_os("TOKENCACHE_TABS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// The folder of the wasm-bindgen output (`tabs.js`, `tabs_bg.wasm`); fails (never skips)
/// when it or anything else the test needs is missing.
fn prerequisites() -> PathBuf {
    let hint = "run scripts/tabs-test.sh, which builds and installs it";
    let pkg = std::env::var_os("TOKENCACHE_TABS_PKG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("TOKENCACHE_TABS_PKG (the wasm bundle's folder) is not set; {hint}")
        });
    let node = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("node is needed ({e}); {hint}"));
    assert!(node.status.success(), "node --version failed; {hint}");
    assert!(
        chromium().is_file(),
        "Chromium not found at {}; {hint}",
        chromium().display()
    );
    for needed in [
        pkg.join("tabs.js"),
        pkg.join("tabs_bg.wasm"),
        support_dir().join("node_modules/playwright-core/package.json"),
    ] {
        assert!(needed.is_file(), "{} is missing; {hint}", needed.display());
    }
    pkg
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as f64
}

// ---------------------------------------------------------------------------------------
// The page server: the test page and the wasm bundle, on one loopback origin

/// Serves the test page (`tests/tabs/index.html`, `page.js`) and every file of the wasm
/// bundle (under `/pkg/`) on `127.0.0.1` (a free port); any other request is a 404 that
/// the test reports.
struct PageServer {
    base: String,
    unexpected: Arc<Mutex<Vec<String>>>,
    stopped: Arc<AtomicBool>,
}

impl PageServer {
    fn start(pkg: &Path) -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let pkg = Arc::new(pkg.to_owned());
        let unexpected = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        {
            let (unexpected, stopped) = (unexpected.clone(), stopped.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (pkg, unexpected) = (pkg.clone(), unexpected.clone());
                    std::thread::spawn(move || serve_file(conn, &pkg, &unexpected));
                }
            });
        }
        PageServer {
            base,
            unexpected,
            stopped,
        }
    }

    fn unexpected(&self) -> Vec<String> {
        self.unexpected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

/// The file a request path names, and its content type: the page's two files, or a file
/// of the bundle (a relative path of plain names only: no `..`).
fn file_of(path: &str, pkg: &Path) -> Option<(PathBuf, &'static str)> {
    let file = match path {
        "/tabs/index.html" => support_dir().join("index.html"),
        "/tabs/page.js" => support_dir().join("page.js"),
        _ => {
            let rel = Path::new(path.strip_prefix("/pkg/")?);
            let plain = rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain {
                return None;
            }
            pkg.join(rel)
        }
    };
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => return None,
    };
    file.is_file().then_some((file, content_type))
}

/// Answers one `GET` (one request per connection).
fn serve_file(mut conn: TcpStream, pkg: &Path, unexpected: &Mutex<Vec<String>>) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let found = if method == "GET" {
        file_of(path, pkg)
    } else {
        None
    };
    let (status, content_type, body) = match found {
        Some((file, content_type)) => match std::fs::read(&file) {
            Ok(bytes) => ("200 OK", content_type, bytes),
            Err(e) => (
                "500 Internal Server Error",
                "text/plain",
                format!("{}: {e}", file.display()).into_bytes(),
            ),
        },
        None => {
            if path != "/favicon.ico" {
                unexpected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{method} {path}"));
            }
            ("404 Not Found", "text/plain", Vec::new())
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
    let _ = conn.flush();
}

// ---------------------------------------------------------------------------------------
// The driver: node driver.mjs, one command and one answer per line

struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    answers: Receiver<String>,
}

impl Driver {
    fn spawn(base: &str, idp: &str) -> Driver {
        let mut child = Command::new("node")
            .arg(support_dir().join("driver.mjs"))
            .arg(base)
            .arg(idp)
            .current_dir(support_dir())
            .env("TOKENCACHE_TABS_CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node driver.mjs");
        let stdout = child.stdout.take().expect("the driver's stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Driver {
            child,
            stdin,
            answers,
        }
    }

    /// Sends one command and returns the answer's data. The command is never printed (a
    /// seed command holds a refresh token).
    fn call(&mut self, command: Value) -> Value {
        let op = command["op"].as_str().unwrap_or("?").to_owned();
        let stdin = self.stdin.as_mut().expect("the driver's stdin");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("driver command {op}: cannot write to the driver ({e})"));
        let line = match self.answers.recv_timeout(STEP_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("driver command {op}: no answer within {STEP_TIMEOUT:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("driver command {op}: the driver exited without answering")
            }
        };
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("driver command {op}: an answer that is not JSON ({e})"));
        if answer["ok"] != true {
            panic!("driver command {op} failed: {}", answer["error"]);
        }
        answer["data"].clone()
    }

    /// Ends the driver (it closes the browser) and returns its exit status.
    fn finish(mut self) -> ExitStatus {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "{}", json!({"op": "exit"}));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the driver did not exit within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // A test that panicked leaves the driver running: end it, and its browser with it
        // (the end of stdin makes it close the browser; kill after a grace period).
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
// What the tabs report

/// One exchange a tab's refresh function made at the provider.
#[derive(Debug)]
struct Exchange {
    tab: usize,
    presented: String,
    started_ms: f64,
    answered_ms: Option<f64>,
    status: u64,
    access_token: Option<String>,
    refresh_token: Option<String>,
}

impl Exchange {
    fn parse(tab: usize, v: &Value) -> Exchange {
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        Exchange {
            tab,
            presented: text("presented").expect("the presented refresh token"),
            started_ms: v["startedMs"].as_f64().expect("startedMs"),
            answered_ms: v["answeredMs"].as_f64(),
            status: v["status"].as_u64().expect("status"),
            access_token: text("accessToken"),
            refresh_token: text("refreshToken"),
        }
    }
}

/// Every exchange of the tabs `tabs`, in tab order.
fn exchanges(driver: &mut Driver, tabs: &[usize]) -> Vec<Exchange> {
    let data = driver.call(json!({"op": "exchanges", "tabs": tabs}));
    let per_tab = data["exchanges"].as_array().expect("a list per tab");
    assert_eq!(per_tab.len(), tabs.len());
    tabs.iter()
        .zip(per_tab)
        .flat_map(|(&tab, list)| {
            list.as_array()
                .expect("a list of exchanges")
                .iter()
                .map(move |x| Exchange::parse(tab, x))
        })
        .collect()
}

/// One tab's report of its calls.
struct Report {
    tab: usize,
    started_ms: f64,
    finished_ms: f64,
    access_tokens: Vec<Option<String>>,
    errors: Vec<String>,
}

/// The reports of the tabs `tabs`, once all their calls ended.
fn results(driver: &mut Driver, tabs: &[usize]) -> Vec<Report> {
    let data = driver.call(json!({"op": "results", "tabs": tabs}));
    let reports = data["reports"].as_array().expect("a report per tab");
    assert_eq!(reports.len(), tabs.len());
    tabs.iter()
        .zip(reports)
        .map(|(&tab, r)| Report {
            tab,
            started_ms: r["startedMs"].as_f64().expect("startedMs"),
            finished_ms: r["finishedMs"].as_f64().expect("finishedMs"),
            access_tokens: r["accessTokens"]
                .as_array()
                .expect("accessTokens")
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect(),
            errors: r["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .map(|e| e.as_str().unwrap_or("?").to_owned())
                .collect(),
        })
        .collect()
}

/// What one tab sees in `localStorage`: the test's entry and the lease record of its
/// refresh lock.
struct Stored {
    /// Every raw item (to look for spent tokens anywhere).
    items: Vec<(String, String)>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    /// `(epoch, expiresAtMs)` of the lease record.
    lease: Option<(u64, f64)>,
}

fn storage(driver: &mut Driver, tab: usize) -> Stored {
    let data = driver.call(json!({"op": "storage", "tab": tab}));
    let items: Vec<(String, String)> = data["items"]
        .as_object()
        .expect("the items")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string item").to_owned()))
        .collect();
    let item = |key: &str| {
        items
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| serde_json::from_str::<Value>(v).expect("a JSON item"))
    };
    let entry = item(ENTRY_KEY).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let leases: Vec<&String> = items
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(LEASE_KEY_PREFIX))
        .collect();
    assert!(
        leases.len() <= 1 && leases.iter().all(|k| k.ends_with(LOCK_NAME)),
        "unexpected lease records: {leases:?}"
    );
    let lease = leases.first().and_then(|k| item(k)).map(|r| {
        (
            r["epoch"].as_u64().expect("an epoch"),
            r["expiresAtMs"].as_f64().expect("an expiry"),
        )
    });
    Stored {
        access_token: text(&entry["body"]["access_token"]),
        refresh_token: text(&entry["body"]["refresh_token"]),
        items,
        lease,
    }
}

/// Opens `count` tabs and checks that each is a secure context whose cache uses Web Locks.
fn open_tabs(driver: &mut Driver, count: usize) {
    let data = driver.call(json!({"op": "open", "count": count}));
    let tabs = data["tabs"].as_array().expect("the opened tabs");
    assert_eq!(tabs.len(), count);
    for tab in tabs {
        assert_eq!(
            tab["secureContext"], true,
            "http://127.0.0.1 is a secure context: {tab}"
        );
        assert_eq!(
            tab["webLocks"], true,
            "the LocalStorageCache of every tab uses Web Locks: {tab}"
        );
    }
}

/// Checks the tabs' reports: every call of every tab got `access_token`, none failed.
fn assert_all_got(reports: &[Report], access_token: &str) {
    for report in reports {
        assert_eq!(
            report.errors,
            Vec::<String>::new(),
            "tab {}: calls failed",
            report.tab
        );
        assert_eq!(report.access_tokens.len(), TASKS, "tab {}", report.tab);
        for (i, got) in report.access_tokens.iter().enumerate() {
            assert!(
                got.as_deref() == Some(access_token),
                "tab {} call {i} got another access token than the one refresh's",
                report.tab
            );
        }
    }
}

/// Waits until the provider saw `calls` exchanges.
fn wait_for_calls(idp: &MockIdp, calls: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while idp.stats().calls < calls {
        assert!(
            Instant::now() < deadline,
            "the provider saw {:?} after {within:?}; waited for {calls} calls",
            idp.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// The scenarios

#[test]
fn three_tabs_twenty_tasks_one_refresh_call() {
    let pkg = prerequisites();
    let started = Instant::now();
    let idp = MockIdp::start(IDP_EXPIRES_IN, REUSE_INTERVAL).expect("start the mock provider");
    // A slow provider: the refresh is still in flight when every tab has begun its calls,
    // so that all three tabs need it (checked below), whatever the machine's speed.
    idp.hang_before(Duration::from_millis(700));
    let seeded_rt = idp.login();
    let server = PageServer::start(&pkg);
    let mut driver = Driver::spawn(&server.base, idp.url());
    open_tabs(&mut driver, TABS);

    // Tab 0 stores the entry; another tab sees it (one localStorage).
    driver.call(json!({
        "op": "seed", "tab": 0, "refreshToken": seeded_rt, "expiresIn": SEEDED_EXPIRES_IN,
    }));
    let before = storage(&mut driver, 2);
    assert!(
        before.refresh_token.as_deref() == Some(seeded_rt.as_str()),
        "tab 2 does not see the refresh token tab 0 stored"
    );
    assert_eq!(before.access_token.as_deref(), Some(SEEDED_ACCESS_TOKEN));
    assert_eq!(before.lease, None, "no lease before the calls");

    // The three tabs start their 20 calls each at the same moment.
    let all: Vec<usize> = (0..TABS).collect();
    let start = driver.call(json!({"op": "start", "tabs": all, "tasks": TASKS, "delayMs": 500}));
    let start_at_ms = start["startAtMs"].as_f64().expect("startAtMs");
    let reports = results(&mut driver, &all);
    let exchanges = exchanges(&mut driver, &all);

    // The provider: one exchange, no reuse, no refusal.
    assert_eq!(
        idp.stats(),
        Stats {
            calls: 1,
            successes: 1,
            reuse_detections: 0,
            refusals: 0
        },
        "the provider's counters"
    );
    // The tabs: one exchange in all, of the seeded refresh token, answered with tokens.
    assert_eq!(
        exchanges.len(),
        1,
        "exchanges by tab: {:?}",
        exchanges.iter().map(|x| x.tab).collect::<Vec<_>>()
    );
    let exchange = &exchanges[0];
    assert!(
        exchange.presented == seeded_rt,
        "the refresh did not present the seeded refresh token"
    );
    assert_eq!(exchange.status, 200);
    let new_at = exchange.access_token.clone().expect("a new access token");
    let new_rt = exchange.refresh_token.clone().expect("a new refresh token");
    let answered_ms = exchange.answered_ms.expect("the exchange was answered");
    assert!(new_at != SEEDED_ACCESS_TOKEN && new_rt != seeded_rt);
    // Every tab began its calls after the common start and before the refresh's answer
    // existed: each of them found the access token expired and needed the refresh.
    for report in &reports {
        assert!(
            report.started_ms >= start_at_ms - 1.0 && report.started_ms < answered_ms,
            "tab {} began its calls at {} (start {start_at_ms}, answer at {answered_ms})",
            report.tab,
            report.started_ms
        );
    }
    // All 60 calls got the new access token.
    assert_all_got(&reports, &new_at);

    // Every tab's localStorage: the new tokens, the spent refresh token nowhere, the lease
    // released.
    let mut lease_epoch = 0;
    for tab in 0..TABS {
        let stored = storage(&mut driver, tab);
        assert!(
            stored.refresh_token.as_deref() == Some(new_rt.as_str()),
            "tab {tab}: localStorage does not hold the new refresh token"
        );
        assert!(
            stored.access_token.as_deref() == Some(new_at.as_str()),
            "tab {tab}: localStorage does not hold the new access token"
        );
        assert!(
            !stored.items.iter().any(|(_, v)| v.contains(&seeded_rt)),
            "tab {tab}: the spent refresh token is still stored"
        );
        let (epoch, expires_at_ms) = stored.lease.expect("a lease record");
        assert!(epoch >= 1);
        assert_eq!(expires_at_ms, 0.0, "tab {tab}: the lease was not released");
        lease_epoch = epoch;
    }
    assert_eq!(server.unexpected(), Vec::<String>::new());
    let status = driver.finish();
    assert!(status.success(), "the driver exited with {status}");

    let finished = reports
        .iter()
        .map(|r| r.finished_ms)
        .fold(f64::MIN, f64::max);
    let first_start = reports
        .iter()
        .map(|r| r.started_ms)
        .fold(f64::MAX, f64::min);
    println!(
        "tabs: {TABS} tabs x {TASKS} calls: provider {:?}; the one exchange by tab {}; \
         tabs began within {:.0} ms; all calls done {:.0} ms after the first began; \
         lease epoch {}; {:.1} s in all",
        idp.stats(),
        exchange.tab,
        reports
            .iter()
            .map(|r| r.started_ms)
            .fold(f64::MIN, f64::max)
            - first_start,
        finished - first_start,
        lease_epoch,
        started.elapsed().as_secs_f64()
    );
}

/// What [`close_the_hung_holder`] leaves for the test to check.
struct AfterClose {
    idp: MockIdp,
    server: PageServer,
    driver: Driver,
    seeded_rt: String,
    /// The epoch of tab 0's lease and the expiry its record showed (ms since the epoch).
    held_epoch: u64,
    held_until_ms: f64,
    /// `now_ms()` just before tab 0 was closed, and the driver's time once it was.
    closing_ms: f64,
    closed_ms: f64,
    /// The reports of tabs 1 and 2.
    reports: Vec<Report>,
    /// The exchanges of tabs 1 and 2.
    exchanges: Vec<Exchange>,
}

/// Three tabs; tab 0 takes the lease and exchanges the seeded refresh token, the provider
/// rotates it and never answers (the holder dies after the provider rotated the token);
/// tabs 1 and 2 start their calls and wait on the lease, calling nobody; tab 0 is closed
/// mid-refresh, so the browser lets its Web Lock go; tabs 1 and 2 finish.
fn close_the_hung_holder(reuse_interval: Duration) -> AfterClose {
    let pkg = prerequisites();
    let idp = MockIdp::start(IDP_EXPIRES_IN, reuse_interval).expect("start the mock provider");
    let seeded_rt = idp.login();
    let server = PageServer::start(&pkg);
    let mut driver = Driver::spawn(&server.base, idp.url());
    open_tabs(&mut driver, TABS);
    driver.call(json!({
        "op": "seed", "tab": 0, "refreshToken": seeded_rt, "expiresIn": SEEDED_EXPIRES_IN,
    }));

    idp.hang_after(Duration::from_secs(90));
    driver.call(json!({"op": "start", "tabs": [0], "tasks": TASKS, "delayMs": 0}));
    wait_for_calls(&idp, 1, Duration::from_secs(15));
    // Let the provider's thread read the switch before it is turned off for the others.
    std::thread::sleep(Duration::from_millis(300));
    idp.hang_after(Duration::ZERO);

    // Tabs 1 and 2 start while tab 0 holds the lease: they wait, and call nobody.
    driver.call(json!({"op": "start", "tabs": [1, 2], "tasks": TASKS, "delayMs": 0}));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        idp.stats().calls,
        1,
        "a tab called the provider while tab 0 held the lease"
    );
    let during = storage(&mut driver, 1);
    assert!(
        during.refresh_token.as_deref() == Some(seeded_rt.as_str()),
        "the hung holder wrote a refresh token"
    );
    assert!(
        during
            .access_token
            .as_deref()
            .is_none_or(|at| at == SEEDED_ACCESS_TOKEN),
        "the hung holder wrote an access token"
    );
    let (held_epoch, held_until_ms) = during.lease.expect("tab 0's lease record");
    assert!(
        held_until_ms > now_ms(),
        "tab 0's lease record is not current"
    );
    assert!(exchanges(&mut driver, &[1, 2]).is_empty());

    // Tab 0 closes mid-refresh.
    let closing_ms = now_ms();
    let closed = driver.call(json!({"op": "close", "tab": 0}));
    let closed_ms = closed["closedAtMs"].as_f64().expect("closedAtMs");
    let reports = results(&mut driver, &[1, 2]);
    let exchanges = exchanges(&mut driver, &[1, 2]);
    AfterClose {
        idp,
        server,
        driver,
        seeded_rt,
        held_epoch,
        held_until_ms,
        closing_ms,
        closed_ms,
        reports,
        exchanges,
    }
}

#[test]
fn a_closed_holder_tab_hands_the_refresh_on() {
    let started = Instant::now();
    let AfterClose {
        idp,
        server,
        mut driver,
        seeded_rt,
        held_epoch,
        held_until_ms,
        closing_ms,
        closed_ms,
        reports,
        exchanges,
    } = close_the_hung_holder(REUSE_INTERVAL);

    // The provider: tab 0's exchange and one more, within the reuse interval: no reuse.
    assert_eq!(
        idp.stats(),
        Stats {
            calls: 2,
            successes: 2,
            reuse_detections: 0,
            refusals: 0
        },
        "the provider's counters"
    );
    assert_eq!(
        exchanges.len(),
        1,
        "exchanges by tab: {:?}",
        exchanges.iter().map(|x| x.tab).collect::<Vec<_>>()
    );
    let exchange = &exchanges[0];
    assert!(
        exchange.presented == seeded_rt,
        "the new holder did not present the refresh token still stored"
    );
    assert_eq!(exchange.status, 200);
    assert!(
        exchange.started_ms >= closing_ms,
        "tab {} called the provider before tab 0 was closed",
        exchange.tab
    );
    // The lease ended with the tab (the browser let its Web Lock go), not by its ttl.
    let handoff_ms = exchange.started_ms - closing_ms;
    assert!(
        exchange.started_ms < held_until_ms,
        "the refresh waited {handoff_ms} ms after the close, until tab 0's lease ran out: \
         the closed tab's Web Lock was not let go"
    );
    let new_at = exchange.access_token.clone().expect("a new access token");
    let new_rt = exchange.refresh_token.clone().expect("a new refresh token");
    assert_all_got(&reports, &new_at);
    for tab in [1, 2] {
        let stored = storage(&mut driver, tab);
        assert!(
            stored.refresh_token.as_deref() == Some(new_rt.as_str()),
            "tab {tab}: localStorage does not hold the new refresh token"
        );
        assert!(
            stored.access_token.as_deref() == Some(new_at.as_str()),
            "tab {tab}: localStorage does not hold the new access token"
        );
        let (epoch, expires_at_ms) = stored.lease.expect("a lease record");
        assert!(
            epoch > held_epoch,
            "tab {tab}: the lease was not taken again"
        );
        assert_eq!(expires_at_ms, 0.0, "tab {tab}: the lease was not released");
    }
    assert_eq!(server.unexpected(), Vec::<String>::new());
    let status = driver.finish();
    assert!(status.success(), "the driver exited with {status}");
    println!(
        "tabs: holder closed mid-refresh: provider {:?}; tab {} refreshed {:.0} ms after the \
         close began (close took {:.0} ms); its 40 calls done {:.0} ms after the close; \
         {:.1} s in all",
        idp.stats(),
        exchange.tab,
        handoff_ms,
        closed_ms - closing_ms,
        reports
            .iter()
            .map(|r| r.finished_ms)
            .fold(f64::MIN, f64::max)
            - closing_ms,
        started.elapsed().as_secs_f64()
    );
}

/// The same crash with a provider that has no reuse interval (Auth0's default): the spent
/// refresh token that the dead holder left cannot be used again, so the next holder's
/// exchange is a reuse and the provider revokes the family, whatever the client does (the
/// core's refresh docs say so). The test checks that the tabs then fail cleanly: one
/// exchange after the close (the reuse), every call of both tabs failed, the refused
/// refresh token removed from `localStorage` and the lease released.
#[test]
fn without_a_reuse_interval_a_closed_holder_costs_the_family() {
    let started = Instant::now();
    let AfterClose {
        idp,
        server,
        mut driver,
        seeded_rt,
        closing_ms,
        reports,
        exchanges,
        ..
    } = close_the_hung_holder(Duration::ZERO);

    // The provider: tab 0's exchange, then the reuse of its spent token.
    assert_eq!(
        idp.stats(),
        Stats {
            calls: 2,
            successes: 1,
            reuse_detections: 1,
            refusals: 1
        },
        "the provider's counters"
    );
    assert_eq!(
        exchanges.len(),
        1,
        "exchanges by tab: {:?}",
        exchanges.iter().map(|x| x.tab).collect::<Vec<_>>()
    );
    let exchange = &exchanges[0];
    assert!(
        exchange.presented == seeded_rt,
        "the new holder did not present the refresh token still stored"
    );
    assert_eq!(exchange.status, 400, "the reuse is refused");
    assert!(exchange.access_token.is_none() && exchange.refresh_token.is_none());
    assert!(
        exchange.started_ms >= closing_ms,
        "tab {} called the provider before tab 0 was closed",
        exchange.tab
    );
    // Every call failed: the exchanging tab's with the refusal, the other tab's (which took
    // the lease next) for want of a refresh token.
    for report in &reports {
        assert_eq!(report.access_tokens.len(), TASKS, "tab {}", report.tab);
        assert!(
            report.access_tokens.iter().all(Option::is_none),
            "tab {}: a call got an access token from a revoked family",
            report.tab
        );
        let kind = if report.tab == exchange.tab {
            "refresh failed: "
        } else {
            "missing refresh token: "
        };
        assert_eq!(report.errors.len(), TASKS, "tab {}", report.tab);
        assert!(
            report.errors.iter().all(|e| e.starts_with(kind)),
            "tab {}: expected every error to be `{kind}...`, got {:?}",
            report.tab,
            report.errors
        );
    }
    for tab in [1, 2] {
        let stored = storage(&mut driver, tab);
        assert_eq!(
            stored.refresh_token, None,
            "tab {tab}: the refused refresh token is still stored"
        );
        assert!(
            !stored.items.iter().any(|(_, v)| v.contains(&seeded_rt)),
            "tab {tab}: the refused refresh token is still stored"
        );
        let (_, expires_at_ms) = stored.lease.expect("a lease record");
        assert_eq!(expires_at_ms, 0.0, "tab {tab}: the lease was not released");
    }
    assert_eq!(server.unexpected(), Vec::<String>::new());
    let status = driver.finish();
    assert!(status.success(), "the driver exited with {status}");
    println!(
        "tabs: holder closed mid-refresh, no reuse interval: provider {:?}; tab {}'s exchange \
         refused, all 40 calls failed ({}); {:.1} s in all",
        idp.stats(),
        exchange.tab,
        reports
            .iter()
            .map(|r| format!(
                "tab {}: {}",
                r.tab,
                r.errors
                    .first()
                    .and_then(|e| e.split(':').next())
                    .unwrap_or("?")
            ))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
}
