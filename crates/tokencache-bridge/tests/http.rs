//! The loopback HTTP transport, spoken to with plain HTTP/1.1 over a TCP socket.
#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use tokencache_bridge::http::{serve, HttpOptions};
use tokencache_bridge::BridgeHandler;
use tokencache_core::Cache;
use tokencache_memory::MemoryCache;

/// Sends one request; returns the status code and the body.
fn send(addr: SocketAddr, method: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut req = format!("{method} /tokencache HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out[9..12].parse().expect("status");
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_tokencache_round_trip_on_loopback() {
    let cache = Arc::new(MemoryCache::new());
    let handler = Arc::new(BridgeHandler::new(cache.clone()));
    let options = HttpOptions {
        port: 0,
        allowed_origin: Some("http://localhost:5173".into()),
    };
    let server = serve(handler, options).expect("serve");
    let addr = server.addr();
    assert!(addr.ip().is_loopback());
    assert_eq!(server.url(), format!("http://{addr}/tokencache"));

    let set = r#"{"id":1,"op":"set","key":"@@auth0spajs@@::app","value":{"keys":["@@auth0spajs@@::app::a"]}}"#;
    let (status, body) = tokio::task::spawn_blocking(move || send(addr, "POST", &[JSON], set))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"id":1,"ok":true}"#));
    assert!(cache.get("@@auth0spajs@@::app").await.unwrap().is_some());

    let (status, body) = tokio::task::spawn_blocking(move || {
        send(
            addr,
            "POST",
            &[JSON, ("Origin", "http://localhost:5173")],
            r#"{"id":2,"op":"allKeys"}"#,
        )
    })
    .await
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"id":2,"ok":true,"value":["@@auth0spajs@@::app"]}"#)
    );

    let checks = tokio::task::spawn_blocking(move || {
        [
            // Another origin, a non-JSON body type, another method.
            send(
                addr,
                "POST",
                &[JSON, ("Origin", "https://evil.example")],
                r#"{"op":"allKeys"}"#,
            )
            .0,
            send(
                addr,
                "POST",
                &[("Content-Type", "text/plain")],
                r#"{"op":"allKeys"}"#,
            )
            .0,
            send(addr, "GET", &[], "").0,
            send(addr, "OPTIONS", &[("Origin", "http://localhost:5173")], "").0,
        ]
    })
    .await
    .unwrap();
    assert_eq!(checks, [403, 415, 405, 204]);
    server.shutdown();
    // tiny_http closes its listener on a thread of its own, shortly after.
    let stopped = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        TcpStream::connect(addr).is_err()
    });
    assert!(stopped, "the server stopped listening");
}
