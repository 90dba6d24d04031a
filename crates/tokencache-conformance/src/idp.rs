//! A mock identity provider on loopback, for the refresh tests of every backend: it
//! speaks just enough OAuth 2.0 (`POST /oauth/token` with `grant_type=refresh_token`) to
//! be a real network peer of [`CacheManager::get_or_refresh`](tokencache_core::CacheManager::get_or_refresh),
//! from this process, from other processes and from a browser.
//!
//! What it models, as Auth0's refresh-token rotation does:
//!
//! - **Families.** [`MockIdp::login`] starts a family with its first refresh token.
//! - **Rotation.** Every exchange returns a new access token and a new refresh token; the
//!   exchanged one is spent.
//! - **Reuse detection.** A spent refresh token is accepted again only within the reuse
//!   interval (the answer then carries a new token of the same family); after it, the
//!   exchange is a reuse: the whole family is revoked and counted in
//!   [`Stats::reuse_detections`].
//! - **Hang switches.** [`MockIdp::hang_before`] delays an exchange before it happens,
//!   [`MockIdp::hang_after`] after it happened and before the answer (the holder that
//!   crashes after the provider rotated the token).
//!
//! `GET /stats` answers the counters as JSON, for tests whose callers run elsewhere.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokencache_core::{CacheEntry, RefreshError, RefreshRequest};

/// The counters of a [`MockIdp`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Exchanges asked for (every `POST /oauth/token`).
    pub calls: u64,
    /// Exchanges that returned tokens.
    pub successes: u64,
    /// Spent refresh tokens presented after the reuse interval (each revoked its family).
    pub reuse_detections: u64,
    /// Exchanges refused (`invalid_grant`): unknown, revoked or reused tokens.
    pub refusals: u64,
}

struct Token {
    family: u64,
    spent_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, Token>,
    revoked: HashSet<u64>,
    families: u64,
    issued: u64,
    stats: Stats,
}

struct Shared {
    state: Mutex<State>,
    reuse_interval: Duration,
    expires_in: u64,
    hang_before_ms: AtomicU64,
    hang_after_ms: AtomicU64,
    stopped: AtomicBool,
}

/// The mock provider; it serves until dropped.
pub struct MockIdp {
    shared: Arc<Shared>,
    url: String,
}

impl std::fmt::Debug for MockIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockIdp")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The answer of a successful exchange, as OAuth 2.0 spells it.
#[derive(Debug, Serialize, Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    token_type: String,
    scope: String,
}

impl MockIdp {
    /// Starts a provider on a free loopback port whose access tokens live `expires_in`
    /// seconds and whose spent refresh tokens stay usable for `reuse_interval`.
    pub fn start(expires_in: u64, reuse_interval: Duration) -> std::io::Result<MockIdp> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            reuse_interval,
            expires_in,
            hang_before_ms: AtomicU64::new(0),
            hang_after_ms: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let serving = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if serving.stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = serving.clone();
                    std::thread::spawn(move || serve(&s, conn));
                }
            }
        });
        Ok(MockIdp { shared, url })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts a new token family; returns its first refresh token.
    pub fn login(&self) -> String {
        let mut st = self.shared.state.lock().unwrap();
        st.families += 1;
        let family = st.families;
        issue(&mut st, family)
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.state.lock().unwrap().stats
    }

    /// Delays every exchange by `d` before it happens.
    pub fn hang_before(&self, d: Duration) {
        self.shared
            .hang_before_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Delays every answer by `d` after the exchange happened.
    pub fn hang_after(&self, d: Duration) {
        self.shared
            .hang_after_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// A client of this provider (also made from a URL, in another process).
    pub fn client(&self) -> IdpClient {
        IdpClient::new(&self.url)
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn issue(st: &mut State, family: u64) -> String {
    st.issued += 1;
    let rt = format!("rt-{family}-{}", st.issued);
    st.tokens.insert(
        rt.clone(),
        Token {
            family,
            spent_at: None,
        },
    );
    rt
}

/// The exchange itself: `Ok((access token, refresh token))` or the `invalid_grant`
/// description.
fn exchange(shared: &Shared, rt: &str) -> Result<(String, String), &'static str> {
    let mut st = shared.state.lock().unwrap();
    st.stats.calls += 1;
    let Some(token) = st.tokens.get_mut(rt) else {
        st.stats.refusals += 1;
        return Err("unknown refresh token");
    };
    let family = token.family;
    let now = Instant::now();
    let reused = token
        .spent_at
        .is_some_and(|at| now.duration_since(at) > shared.reuse_interval);
    if token.spent_at.is_none() {
        token.spent_at = Some(now);
    }
    if reused {
        st.revoked.insert(family);
        st.stats.reuse_detections += 1;
        st.stats.refusals += 1;
        return Err("refresh token reused: the family is revoked");
    }
    if st.revoked.contains(&family) {
        st.stats.refusals += 1;
        return Err("the token family was revoked");
    }
    st.stats.successes += 1;
    let new_rt = issue(&mut st, family);
    Ok((format!("at-{family}-{}", st.issued), new_rt))
}

fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn respond(conn: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

fn serve(shared: &Shared, mut conn: TcpStream) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(64 * 1024)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body);
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (method, path) {
        ("GET", "/stats") => {
            let stats = shared.state.lock().unwrap().stats;
            respond(&mut conn, "200 OK", &serde_json::to_string(&stats).unwrap());
        }
        ("OPTIONS", _) => respond(&mut conn, "204 No Content", ""),
        ("POST", "/oauth/token") => {
            if form_value(&body, "grant_type").as_deref() != Some("refresh_token") {
                respond(
                    &mut conn,
                    "400 Bad Request",
                    r#"{"error":"unsupported_grant_type"}"#,
                );
                return;
            }
            let rt = form_value(&body, "refresh_token").unwrap_or_default();
            let scope = form_value(&body, "scope").unwrap_or_default();
            let before = shared.hang_before_ms.load(Ordering::SeqCst);
            if before > 0 {
                std::thread::sleep(Duration::from_millis(before));
            }
            let outcome = exchange(shared, &rt);
            let after = shared.hang_after_ms.load(Ordering::SeqCst);
            if after > 0 {
                std::thread::sleep(Duration::from_millis(after));
            }
            match outcome {
                Ok((access_token, refresh_token)) => {
                    let answer = TokenResponse {
                        access_token,
                        refresh_token,
                        expires_in: shared.expires_in,
                        token_type: "Bearer".into(),
                        scope,
                    };
                    respond(
                        &mut conn,
                        "200 OK",
                        &serde_json::to_string(&answer).unwrap(),
                    );
                }
                Err(why) => respond(
                    &mut conn,
                    "400 Bad Request",
                    &serde_json::json!({"error": "invalid_grant", "error_description": why})
                        .to_string(),
                ),
            }
        }
        _ => respond(&mut conn, "404 Not Found", r#"{"error":"not_found"}"#),
    }
}

/// A client of a [`MockIdp`] (in this process or another), usable as the refresh
/// function of `get_or_refresh`. Each call runs its blocking HTTP exchange on a thread
/// of its own, so it needs no particular async runtime.
#[derive(Debug, Clone)]
pub struct IdpClient {
    addr: String,
}

impl IdpClient {
    /// A client of the provider at `url` (`http://127.0.0.1:PORT`).
    pub fn new(url: &str) -> IdpClient {
        IdpClient {
            addr: url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
        }
    }

    fn post(addr: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let mut conn = TcpStream::connect(addr)?;
        write!(
            conn,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// The provider's counters (`GET /stats`).
    pub fn stats(&self) -> std::io::Result<Stats> {
        let mut conn = TcpStream::connect(&self.addr)?;
        write!(
            conn,
            "GET /stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).map_err(std::io::Error::other)
    }

    /// Exchanges `req.refresh_token`; the answer as a [`CacheEntry`] of the request's
    /// client, audience and scope.
    pub async fn refresh(&self, req: RefreshRequest) -> Result<CacheEntry, RefreshError> {
        let (tx, rx) = futures::channel::oneshot::channel();
        let addr = self.addr.clone();
        let body = format!(
            "grant_type=refresh_token&client_id={}&refresh_token={}&scope={}",
            percent_encode(&req.client_id),
            percent_encode(&req.refresh_token),
            percent_encode(&req.scope)
        );
        std::thread::spawn(move || {
            let _ = tx.send(Self::post(&addr, "/oauth/token", &body));
        });
        let (status, body) = rx
            .await
            .map_err(|e| RefreshError::Transient(Box::new(e)))?
            .map_err(|e| RefreshError::Transient(Box::new(e)))?;
        match status {
            200 => {
                let t: TokenResponse =
                    serde_json::from_str(&body).map_err(|e| RefreshError::Fatal(Box::new(e)))?;
                Ok(CacheEntry::new(
                    req.client_id,
                    req.audience,
                    req.scope,
                    t.access_token,
                    t.expires_in as f64,
                )
                .with_refresh_token(t.refresh_token))
            }
            400 if body.contains("invalid_grant") => {
                Err(RefreshError::InvalidGrant("invalid_grant".into()))
            }
            s if s >= 500 || s == 0 => Err(RefreshError::Transient(
                format!("the provider answered {s}").into(),
            )),
            s => Err(RefreshError::Fatal(
                format!("the provider answered {s}").into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(rt: &str) -> RefreshRequest {
        RefreshRequest {
            client_id: "app".into(),
            audience: "https://api".into(),
            scope: "openid read".into(),
            refresh_token: rt.into(),
        }
    }

    #[test]
    fn rotation_reuse_detection_and_revocation() {
        futures::executor::block_on(async {
            let idp = MockIdp::start(60, Duration::from_millis(200)).unwrap();
            let client = idp.client();
            let rt0 = idp.login();
            let first = client.refresh(req(&rt0)).await.unwrap();
            let rt1 = first.refresh_token.clone().unwrap();
            assert_ne!(rt1, rt0);
            assert_eq!(first.scope, "openid read");
            // Within the reuse interval the spent token still works.
            let again = client.refresh(req(&rt0)).await.unwrap();
            assert!(again.refresh_token.is_some());
            std::thread::sleep(Duration::from_millis(250));
            // After it: reuse, and the family is revoked.
            assert!(matches!(
                client.refresh(req(&rt0)).await,
                Err(RefreshError::InvalidGrant(_))
            ));
            assert!(matches!(
                client.refresh(req(&rt1)).await,
                Err(RefreshError::InvalidGrant(_))
            ));
            let stats = client.stats().unwrap();
            assert_eq!(stats, idp.stats());
            assert_eq!(stats.calls, 4);
            assert_eq!(stats.successes, 2);
            assert_eq!(stats.reuse_detections, 1);
            // Another family is not affected.
            let other = idp.login();
            assert!(client.refresh(req(&other)).await.is_ok());
            assert!(matches!(
                client.refresh(req("rt-unknown")).await,
                Err(RefreshError::InvalidGrant(_))
            ));
        });
    }

    #[test]
    fn form_values_are_percent_decoded() {
        let body = format!("a=1&scope={}", percent_encode("openid read:x"));
        assert_eq!(form_value(&body, "scope").as_deref(), Some("openid read:x"));
        assert_eq!(form_value("a=b+c%2", "a").as_deref(), Some("b c%2"));
    }
}
