//! A loopback HTTP transport for development and tests: `POST /tokencache` with a request's
//! JSON answers the response's JSON (feature `http`).
//!
//! The server binds 127.0.0.1 only. Requests must be `Content-Type: application/json`, so
//! that a browser page of another origin cannot send one without a CORS preflight, and a
//! request whose `Origin` header is not the configured [`HttpOptions::allowed_origin`] is
//! refused with 403. It answers one request at a time on its own thread.
//!
//! ```
//! use std::sync::Arc;
//! use tokencache_bridge::{http, BridgeHandler};
//! use tokencache_memory::MemoryCache;
//!
//! let handler = Arc::new(BridgeHandler::new(Arc::new(MemoryCache::new())));
//! let server = http::serve(handler, http::HttpOptions::default())?;
//! assert!(server.addr().ip().is_loopback());
//! println!("POST http://{}/tokencache", server.addr());
//! server.shutdown();
//! # Ok::<(), tokencache_core::Error>(())
//! ```

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokencache_core::{Error, Result};

use crate::handler::BridgeHandler;

/// The path the server answers.
pub const PATH: &str = "/tokencache";

/// Options of [`serve`].
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// The port on 127.0.0.1; 0 (the default) picks a free one.
    pub port: u16,
    /// The one browser origin (`http://localhost:5173`) allowed to call the server, with
    /// CORS headers. `None`: only clients that send no `Origin` header (Node, curl, tests).
    pub allowed_origin: Option<String>,
}

/// A running server; [`HttpServer::shutdown`] (or dropping it) stops it.
pub struct HttpServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// The address the server listens on (always loopback).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of the bridge endpoint.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the bridge HTTP thread panicked");
            }
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts answering bridge requests with `handler` on 127.0.0.1.
///
/// Called inside a Tokio runtime, requests run on that runtime (for caches that need
/// one, such as SQLite or Redis); otherwise on a small executor of their own.
pub fn serve(handler: Arc<BridgeHandler>, options: HttpOptions) -> Result<HttpServer> {
    let server = tiny_http::Server::http((Ipv4Addr::LOCALHOST, options.port))
        .map_err(|e| Error::unavailable("cannot bind the bridge HTTP server").with_source(e))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::unexpected("the bridge HTTP server has no IP address"))?;
    let server = Arc::new(server);
    let runtime = tokio::runtime::Handle::try_current().ok();
    let thread = {
        let server = server.clone();
        std::thread::Builder::new()
            .name("tokencache-bridge-http".into())
            .spawn(move || {
                for request in server.incoming_requests() {
                    answer(&handler, &options, runtime.as_ref(), request);
                }
            })
            .map_err(|e| Error::unavailable("cannot start the bridge HTTP thread").with_source(e))?
    };
    tracing::info!(%addr, "bridge HTTP server listening");
    Ok(HttpServer {
        addr,
        server,
        thread: Some(thread),
    })
}

fn header<'a>(request: &'a tiny_http::Request, name: &'static str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn answer(
    handler: &BridgeHandler,
    options: &HttpOptions,
    runtime: Option<&tokio::runtime::Handle>,
    mut request: tiny_http::Request,
) {
    let origin = header(&request, "Origin").map(str::to_owned);
    let cors = match (&origin, &options.allowed_origin) {
        (None, _) => None,
        (Some(o), Some(allowed)) if o == allowed => Some(allowed.clone()),
        (Some(_), _) => {
            respond(request, status(403), None);
            return;
        }
    };
    let path = request.url().split('?').next().unwrap_or_default();
    if path != PATH {
        respond(request, status(404), cors);
        return;
    }
    match request.method() {
        tiny_http::Method::Options => {
            let r = with(status(204), "Access-Control-Allow-Methods", "POST");
            let r = with(r, "Access-Control-Allow-Headers", "content-type");
            respond(request, r, cors);
        }
        tiny_http::Method::Post => {
            let json = header(&request, "Content-Type")
                .is_some_and(|c| c.trim_start().starts_with("application/json"));
            if !json {
                respond(request, status(415), cors);
                return;
            }
            let limit = handler.max_request_bytes();
            let mut body = String::new();
            let read = request
                .as_reader()
                .take(limit as u64 + 1)
                .read_to_string(&mut body);
            if read.is_err() || body.len() > limit {
                respond(request, status(413), cors);
                return;
            }
            let fut = handler.handle_json(&body);
            let text = match runtime {
                Some(rt) => rt.block_on(fut),
                None => futures::executor::block_on(fut),
            };
            let r = tiny_http::Response::from_string(text);
            let r = with(r, "Content-Type", "application/json");
            let r = with(r, "Cache-Control", "no-store");
            respond(request, r, cors);
        }
        _ => respond(request, status(405), cors),
    }
}

fn status(code: u16) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_string(String::new()).with_status_code(code)
}

/// `response` with a header added; an invalid header (not possible for the constant names
/// and an origin that arrived as a header) is left out.
fn with<R: Read>(
    response: tiny_http::Response<R>,
    name: &str,
    value: &str,
) -> tiny_http::Response<R> {
    match tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}

fn respond<R: Read>(
    request: tiny_http::Request,
    response: tiny_http::Response<R>,
    cors: Option<String>,
) {
    let response = match cors {
        Some(origin) => with(
            with(response, "Access-Control-Allow-Origin", &origin),
            "Vary",
            "Origin",
        ),
        None => response,
    };
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "cannot answer a bridge HTTP request");
    }
}
