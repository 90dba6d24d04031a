//! A development bridge: a MemoryCache served on 127.0.0.1 over HTTP, for a webview or a test
//! page using `fetchTransport` of the JavaScript package.
//!
//! `cargo run -p tokencache-bridge --features http --example serve -- [PORT] [ALLOWED_ORIGIN]`
//!
//! Prints the endpoint URL on stdout and serves until stdin closes.
use std::io::Read;
use std::sync::Arc;

use tokencache_bridge::http::{serve, HttpOptions};
use tokencache_bridge::BridgeHandler;
use tokencache_memory::MemoryCache;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let allowed_origin = args.next();
    let handler = Arc::new(BridgeHandler::new(Arc::new(MemoryCache::new())));
    let server = serve(
        handler,
        HttpOptions {
            port,
            allowed_origin,
        },
    )?;
    println!("{}", server.url());
    // Serve until the parent closes stdin.
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    server.shutdown();
    Ok(())
}
