//! `tokencache`: benchmark the backends, inspect caches, migrate and re-key them.
//!
//! A cache is named by a spec: `memory`, `sqlite:PATH[?ns=NAME]` (encrypted with the key
//! in `TOKENCACHE_KEY`, 64 hex digits or base64, id `TOKENCACHE_KEY_ID`, default 1) or
//! `redis://HOST:PORT/?ns=NAME` (encrypted too when `TOKENCACHE_KEY` is set). Tokens are
//! shown redacted unless `--reveal` is given; keys and tokens are never logged.
#![forbid(unsafe_code)]

mod auth0;
mod bench;
mod inspect;
mod open;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokencache_core::{Error, Result, DEFAULT_PREFIX};

use crate::open::Spec;

/// Pluggable token-cache storage with auth0-spa-js semantics: benchmarks and cache tools.
#[derive(Debug, Parser)]
#[command(name = "tokencache", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the workload set (set, exact hit, scope-subset lookups, miss, clear) and print
    /// ops/s, p50 and p99 per workload and backend.
    Bench(bench::BenchArgs),
    /// List the keys of a cache.
    Keys(CacheArg),
    /// Show the value at KEY, tokens redacted unless --reveal.
    Show {
        #[command(flatten)]
        cache: CacheArg,
        /// The full storage key (as `keys` prints it).
        key: String,
        /// Print tokens and the decoded ID token as stored.
        #[arg(long)]
        reveal: bool,
    },
    /// Remove the value at KEY.
    Remove {
        #[command(flatten)]
        cache: CacheArg,
        /// The full storage key.
        key: String,
    },
    /// Remove every key under the prefix, or one client's keys.
    Clear {
        #[command(flatten)]
        cache: CacheArg,
        /// Remove only this client's entries and ID token.
        #[arg(long)]
        client: Option<String>,
        /// The key prefix.
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
    },
    /// Re-encrypt an SQLite cache from TOKENCACHE_KEY to the key in TOKENCACHE_NEW_KEY
    /// (id TOKENCACHE_NEW_KEY_ID, default the old id + 1).
    RotateKey(CacheArg),
    /// Copy every key (values and expiry as they are) from one cache to another; both are
    /// opened with the same TOKENCACHE_KEY, and an SQLite target is created if needed.
    Migrate {
        /// The cache to copy from.
        #[arg(value_parser = parse_spec)]
        from: Spec,
        /// The cache to copy to.
        #[arg(value_parser = parse_spec)]
        to: Spec,
    },
}

/// The cache a subcommand works on.
#[derive(Debug, Args)]
struct CacheArg {
    /// The cache: memory, sqlite:PATH[?ns=NAME] or redis://HOST:PORT/?ns=NAME.
    #[arg(long, short, env = "TOKENCACHE_CACHE", hide_env_values = true, value_parser = parse_spec)]
    cache: Spec,
}

fn parse_spec(s: &str) -> std::result::Result<Spec, String> {
    s.parse().map_err(|e: Error| e.message().to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let write_err = |e: std::io::Error| Error::unavailable("cannot write to stdout").with_source(e);
    match command {
        Command::Bench(args) => {
            drop(out);
            bench::run(args).await
        }
        Command::Keys(c) => {
            let cache = open::open(&c.cache).await?;
            for key in inspect::keys(&*cache).await? {
                writeln!(out, "{key}").map_err(write_err)?;
            }
            Ok(())
        }
        Command::Show { cache, key, reveal } => {
            let cache = open::open(&cache.cache).await?;
            let value = cache
                .get(&key)
                .await?
                .ok_or_else(|| Error::invalid_key("no value at the given key"))?;
            let shown = serde_json::to_string_pretty(&inspect::render(&value, reveal)?)
                .map_err(|e| Error::serialization("cannot encode the value").with_source(e))?;
            writeln!(out, "{shown}").map_err(write_err)
        }
        Command::Remove { cache, key } => open::open(&cache.cache).await?.remove(&key).await,
        Command::Clear {
            cache,
            client,
            prefix,
        } => inspect::clear(open::open(&cache.cache).await?, &prefix, client.as_deref()).await,
        Command::RotateKey(c) => {
            let (n, id) = open::rotate_key(&c.cache).await?;
            writeln!(
                out,
                "re-encrypted {n} values under key id {id}; from now on set {}=<the new key> and {}={id}",
                open::KEY_ENV,
                open::KEY_ID_ENV
            )
            .map_err(write_err)
        }
        Command::Migrate { from, to } => {
            let src = open::open(&from).await?;
            let dst = open::open_with(&to, open::Keys::FromEnv).await?;
            let n = inspect::migrate(&*src, &*dst).await?;
            writeln!(out, "copied {n} keys from {from} to {to}").map_err(write_err)
        }
    }
}
