//! A transport-neutral bridge between a webview's auth0-spa-js and a native tokencache
//! [`Cache`](tokencache_core::Cache).
//!
//! auth0-spa-js 2.x accepts any object with `get`, `set`, `remove` and an optional
//! `allKeys` as its `cache` option. The companion JavaScript package
//! (`@tokencache/bridge`, in `js/tokencache-bridge` of the repository) builds that object
//! on top of a message transport (Tauri `invoke`, a Capacitor plugin, a WKWebView script
//! message handler, an Android web message listener, HTTP or a WebSocket). Each call
//! becomes one JSON [`Request`]; the native shell hands it to a [`BridgeHandler`] and sends
//! the [`Response`] back. The handler confines the webview to one key prefix, bounds
//! value sizes and key counts, stores only values that decode as cache values, and never
//! puts a token, a value or a key in an error message.
//!
//! The protocol (messages, operations, error kinds, limits, security notes) is specified
//! in `docs/bridge-protocol.md` of the repository, so that a shell in any language can
//! implement it.
//!
//! With the `http` feature, `http::serve` answers `POST /tokencache` on a loopback
//! address, for development and tests.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod handler;
mod protocol;

#[cfg(feature = "http")]
pub mod http;

pub use handler::{
    BridgeHandler, BridgeHandlerBuilder, DEFAULT_MAX_KEYS, DEFAULT_MAX_KEY_BYTES,
    DEFAULT_MAX_VALUE_BYTES,
};
pub use protocol::{
    kind_from_name, kind_name, BridgeError, Op, Request, RequestId, Response, ResponseValue,
};

/// The examples of this crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
