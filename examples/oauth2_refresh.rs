//! An auth client that refreshes its tokens with the `oauth2` crate through
//! `CacheManager::get_or_refresh`: one refresh per token family however many callers ask,
//! the refresh token rotated in the cache, a refused refresh token removed, a provider
//! that hangs answered by a retry.
//!
//! Natively, the identity provider is the mock of `tokencache-conformance`, started on
//! loopback by the example itself, and the HTTP client is a few lines over a tokio
//! socket (plain HTTP/1.1, loopback only: a real client uses the HTTP client the
//! application already has). No token is printed.
//!
//! ```sh
//! cargo run --example oauth2_refresh --features oauth2
//! ```
//!
//! For the browser the same refresh code runs over `localStorage` with `fetch` as the
//! HTTP client (its `main` only wires it up: the mock provider is native):
//!
//! ```sh
//! cargo check --target wasm32-unknown-unknown --example oauth2_refresh --no-default-features --features oauth2,web,memory
//! ```

use std::sync::Arc;

use oauth2::basic::BasicClient;
use oauth2::{AsyncHttpClient, EndpointNotSet, EndpointSet, RefreshToken};
use tokencache::oauth2::{cache_entry, refresh_error, TokenContext};
use tokencache::{CacheKey, CacheManager, EntryBody, RefreshOptions, RefreshRequest};

/// A `BasicClient` with its token endpoint set: all a refresh needs.
type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

const CLIENT_ID: &str = "my-app";
const AUDIENCE: &str = "https://api.example.com";
const SCOPE: &str = "openid read:orders";

/// The body for `key` with a valid access token: from the cache, or refreshed at the
/// provider by `client` over `http` (once per token family, whoever else asks meanwhile).
/// The same code on every target; only the HTTP client differs.
async fn access_token<C>(
    manager: &CacheManager,
    client: &TokenClient,
    http: &C,
    key: &CacheKey,
    opts: RefreshOptions,
) -> tokencache::Result<Arc<EntryBody>>
where
    C: for<'c> AsyncHttpClient<'c>,
    for<'c> <C as AsyncHttpClient<'c>>::Error: Send + Sync,
{
    manager
        .get_or_refresh(key, opts, |req: RefreshRequest| async move {
            let ctx = TokenContext::from(&req);
            let refresh_token = RefreshToken::new(req.refresh_token);
            let response = client
                .exchange_refresh_token(&refresh_token)
                .add_scopes(ctx.scopes())
                .request_async(http)
                .await
                .map_err(refresh_error)?;
            Ok(cache_entry(&response, &ctx)?)
        })
        .await
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    //! The provider on loopback and a minimal HTTP/1.1 client for it.

    use std::io;
    use std::net::IpAddr;
    use std::time::Duration;

    use oauth2::{HttpRequest, HttpResponse};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// The largest answer read.
    const MAX_ANSWER: u64 = 1 << 20;

    /// One request over a new connection (`Connection: close`), `http://` to a loopback
    /// address only, answers with `Content-Length` or read to the end (no chunked
    /// encoding). Errors name what failed, never the request or the answer.
    pub async fn loopback_http(request: HttpRequest) -> io::Result<HttpResponse> {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if uri.scheme_str() != Some("http") || !loopback {
            return Err(io::Error::other(
                "this example's HTTP client speaks plain http to loopback addresses only",
            ));
        }
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        let port = uri.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());

        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
            request.method(),
            request.body().len()
        );
        for (name, value) in request.headers() {
            if matches!(name.as_str(), "host" | "connection" | "content-length") {
                continue;
            }
            let value = value
                .to_str()
                .map_err(|_| io::Error::other("a request header is not ASCII"))?;
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");

        let host = host.trim_matches(|c| c == '[' || c == ']');
        let mut conn = TcpStream::connect((host, port)).await?;
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(request.body()).await?;
        let mut raw = Vec::new();
        conn.take(MAX_ANSWER).read_to_end(&mut raw).await?;
        parse_answer(&raw)
    }

    /// An HTTP/1.1 answer: status line, headers, body.
    fn parse_answer(raw: &[u8]) -> io::Result<HttpResponse> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("the answer has no end of headers"))?;
        let head =
            std::str::from_utf8(&raw[..split]).map_err(|_| bad("the headers are not UTF-8"))?;
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("the answer has no status line"))?;
        let mut answer = oauth2::http::Response::builder().status(status);
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad("a header line has no colon"))?;
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("chunked answers are not supported"));
            }
            if name.eq_ignore_ascii_case("content-length") {
                let n: usize = value.parse().map_err(|_| bad("a bad Content-Length"))?;
                if n > body.len() {
                    return Err(bad("the answer ended early"));
                }
                body.truncate(n);
            }
            answer = answer.header(name, value);
        }
        answer.body(body).map_err(io::Error::other)
    }

    /// Waits `d`.
    pub async fn sleep(d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// The walk-through against the mock provider on loopback.
#[cfg(not(target_arch = "wasm32"))]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Duration;

    use oauth2::{ClientId, TokenUrl};
    use tokencache::{CacheEntry, CacheLocation, ErrorKind, GetOptions, RefreshPolicy};
    use tokencache_conformance::idp::MockIdp;

    // The provider: access tokens for an hour, spent refresh tokens accepted again for
    // 2 s (its reuse interval). Real providers: Auth0's "Reuse Interval", e.g. 30 s.
    let reuse_interval = Duration::from_secs(2);
    let idp = MockIdp::start(3600, reuse_interval)?;
    let client = BasicClient::new(ClientId::new(CLIENT_ID.into()))
        .set_token_uri(TokenUrl::new(format!("{}/oauth/token", idp.url()))?);
    let http = native::loopback_http;

    // The lease fits in the reuse interval: a holder that dies after the provider rotated
    // the token leaves a refresh token the next holder can still use once. Short times
    // here so that the example runs fast; the defaults are 10 s / 15 s / 20 s.
    let policy = RefreshPolicy::default()
        .refresh_timeout(Duration::from_millis(500))
        .lease(Duration::from_secs(1))
        .wait(Duration::from_millis(1500))
        .reuse_interval(reuse_interval);
    let manager = tokencache::builder()
        .client_id(CLIENT_ID)
        .cache_location(CacheLocation::Memory)
        .refresh_policy(policy)
        .build()
        .await?;
    let key = CacheKey::new(CLIENT_ID, Some(AUDIENCE), Some(SCOPE));
    // Refresh a minute before the access token expires.
    let opts = RefreshOptions::default().get(GetOptions::default().leeway(60));

    // What the login left: a refresh token, and an access token that has expired.
    let first_rt = idp.login();
    manager
        .set(
            CacheEntry::new(CLIENT_ID, AUDIENCE, SCOPE, "expired", 0.0)
                .with_refresh_token(&first_rt),
        )
        .await?;

    // 1. No valid access token: one refresh through the oauth2 client.
    let body = access_token(&manager, &client, &http, &key, opts).await?;
    assert_eq!(idp.stats().successes, 1);
    assert_ne!(body.access_token.as_deref(), Some("expired"));
    assert_ne!(body.refresh_token.as_deref(), Some(first_rt.as_str()));
    println!("refreshed: a new access token, the refresh token rotated (1 exchange)");

    // 2. The fast path: a valid access token costs one cache read, no exchange.
    let again = access_token(&manager, &client, &http, &key, opts).await?;
    assert_eq!(again.access_token, body.access_token);
    assert_eq!(idp.stats().calls, 1);
    println!("valid token: answered from the cache (still 1 exchange)");

    // 3. Eight callers at once that all want a new token: they share one refresh.
    let forced = opts.force(true);
    let callers = (0..8).map(|_| access_token(&manager, &client, &http, &key, forced));
    let bodies = futures::future::join_all(callers).await;
    let firsts: Vec<_> = bodies
        .into_iter()
        .map(|b| b.map(|b| b.access_token.clone()))
        .collect::<Result<_, _>>()?;
    assert!(firsts.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(idp.stats().successes, 2);
    assert_eq!(idp.stats().reuse_detections, 0);
    println!("8 concurrent callers: one refresh shared by all (2 exchanges)");

    // 4. A provider that hangs past the refresh timeout: a temporary RefreshFailed,
    //    nothing written. The hung exchange still goes through a little later and spends
    //    the cached refresh token; the retry presents it again within the provider's
    //    reuse interval, which takes it once more: no reuse detected, no revoked family.
    idp.hang_before(Duration::from_millis(800));
    let e = access_token(&manager, &client, &http, &key, forced)
        .await
        .expect_err("the provider hangs");
    assert_eq!(e.kind(), ErrorKind::RefreshFailed);
    assert!(e.is_temporary(), "{e}");
    println!("provider hangs: RefreshFailed, temporary: retry later ({e})");
    idp.hang_before(Duration::ZERO);
    native::sleep(Duration::from_millis(800)).await; // the hung exchange happens meanwhile
    assert_eq!(idp.stats().successes, 3);
    let body = access_token(&manager, &client, &http, &key, forced).await?;
    assert!(body.access_token.is_some());
    assert_eq!(idp.stats().successes, 4);
    assert_eq!(idp.stats().reuse_detections, 0);
    println!("retried within the reuse interval: refreshed");

    // 5. A refresh token the provider refuses (revoked, say): RefreshFailed, not
    //    temporary, and the refresh token is gone from the cache: log the user in again.
    let other = CacheKey::new(CLIENT_ID, Some("https://other.example.com"), Some("read"));
    manager
        .set(
            CacheEntry::new(
                CLIENT_ID,
                "https://other.example.com",
                "read",
                "expired",
                0.0,
            )
            .with_refresh_token("a-token-the-provider-never-issued"),
        )
        .await?;
    let e = access_token(&manager, &client, &http, &other, opts)
        .await
        .expect_err("the provider refuses it");
    assert_eq!(e.kind(), ErrorKind::RefreshFailed);
    assert!(!e.is_temporary(), "{e}");
    assert!(
        !format!("{e:?}").contains("never-issued"),
        "no token in errors"
    );
    let e = access_token(&manager, &client, &http, &other, opts)
        .await
        .expect_err("nothing to refresh with");
    assert_eq!(e.kind(), ErrorKind::MissingRefreshToken);
    println!("refused refresh token: RefreshFailed, removed from the cache: log in again");

    let stats = idp.stats();
    println!(
        "provider: {} exchanges, {} refused, {} reuse detections",
        stats.calls, stats.refusals, stats.reuse_detections
    );
    Ok(())
}

#[cfg(target_arch = "wasm32")]
mod browser {
    //! `fetch` as the oauth2 crate's HTTP client, and the wiring over `localStorage`.

    use std::fmt;

    use oauth2::{ClientId, HttpRequest, HttpResponse, TokenUrl};
    use tokencache::{CacheKey, RefreshOptions, RefreshPolicy};
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    use super::{access_token, BasicClient, AUDIENCE, CLIENT_ID, SCOPE};

    /// A failed `fetch`, by the step that failed (never the request or the answer).
    #[derive(Debug)]
    pub struct FetchError(&'static str);

    impl fmt::Display for FetchError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "fetch failed: {}", self.0)
        }
    }

    impl std::error::Error for FetchError {}

    /// One request through the page's `fetch`.
    pub async fn fetch_http(request: HttpRequest) -> Result<HttpResponse, FetchError> {
        let init = web_sys::RequestInit::new();
        init.set_method(request.method().as_str());
        let headers = web_sys::Headers::new().map_err(|_| FetchError("headers"))?;
        for (name, value) in request.headers() {
            let value = value
                .to_str()
                .map_err(|_| FetchError("a header is not ASCII"))?;
            headers
                .set(name.as_str(), value)
                .map_err(|_| FetchError("a header was refused"))?;
        }
        init.set_headers(&headers);
        init.set_body(&js_sys::Uint8Array::from(request.body().as_slice()));
        let req = web_sys::Request::new_with_str_and_init(&request.uri().to_string(), &init)
            .map_err(|_| FetchError("the request was refused"))?;
        let window = web_sys::window().ok_or(FetchError("no window"))?;
        let answer: web_sys::Response = JsFuture::from(window.fetch_with_request(&req))
            .await
            .map_err(|_| FetchError("no answer"))?
            .dyn_into()
            .map_err(|_| FetchError("not a Response"))?;
        let bytes = JsFuture::from(answer.array_buffer().map_err(|_| FetchError("body"))?)
            .await
            .map_err(|_| FetchError("body"))?;
        let mut out = oauth2::http::Response::builder().status(answer.status());
        if let Ok(Some(ct)) = answer.headers().get("content-type") {
            out = out.header("content-type", ct);
        }
        out.body(js_sys::Uint8Array::new(&bytes).to_vec())
            .map_err(|_| FetchError("a bad answer"))
    }

    /// The access token for the page's API calls, refreshed through `fetch` when needed,
    /// with the tokens in `localStorage` (one refresh across the tabs of the origin:
    /// the cache's own lock is a Web Lock).
    pub async fn run(token_url: &str) -> Result<(), Box<dyn std::error::Error>> {
        let client = BasicClient::new(ClientId::new(CLIENT_ID.into()))
            .set_token_uri(TokenUrl::new(token_url.to_owned())?);
        let manager = tokencache::builder()
            .client_id(CLIENT_ID)
            .cache_location(tokencache::CacheLocation::LocalStorage)
            .refresh_policy(RefreshPolicy::default())
            .build()
            .await?;
        let key = CacheKey::new(CLIENT_ID, Some(AUDIENCE), Some(SCOPE));
        let http = fetch_http;
        let body = access_token(&manager, &client, &http, &key, RefreshOptions::default()).await?;
        let _bearer = body.access_token.as_deref();
        Ok(())
    }
}

/// In the browser: the wiring only (the mock provider runs natively). Point the token
/// URL at a provider that allows the page's origin.
#[cfg(target_arch = "wasm32")]
fn main() {
    wasm_bindgen_futures::spawn_local(async {
        if let Err(e) = browser::run("http://127.0.0.1:8080/oauth/token").await {
            web_sys::console::error_1(&e.to_string().into());
        }
    });
}
