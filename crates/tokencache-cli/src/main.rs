//! `tokencache`: benchmark the backends, inspect caches, migrate and re-key them.
//!
//! A cache is named by a location (see `tokencache::CacheLocation`): `memory`,
//! `sqlite:PATH[?ns=NAME]`, `redis://HOST:PORT/?ns=NAME`, `rediss://…`,
//! `redis+cluster://HOST:PORT,HOST:PORT/?ns=NAME`. Keys come from the environment, never
//! from the command line; tokens are shown redacted unless `--reveal` is given; keys and
//! tokens are never logged.
#![forbid(unsafe_code)]

mod auth0;
mod bench;
mod exit;
mod import;
mod inspect;
mod migrate;
mod target;

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokencache::{CacheLocation, Clock as _, Error, SystemClock, DEFAULT_PREFIX};

use crate::exit::{CliResult, Failure, EXIT_CODES_HELP};
use crate::target::{key_source, parse_location, CacheAndArg, CacheArgs};

const AFTER_HELP: &str = "\
Caches:
  memory                                   an empty in-process cache (for bench)
  sqlite:PATH[?ns=NAME]                    an encrypted SQLite file (namespace default: tokencache)
  redis://[USER:PASSWORD@]HOST:PORT[/DB]?ns=NAME, rediss://...
  redis+cluster://HOST:PORT,HOST:PORT/?ns=NAME, rediss+cluster://...
  &near=BYTES after ns=NAME: a Redis near cache (an in-process copy of reads, at most BYTES)
  A command takes its cache as the first argument, or from --cache or TOKENCACHE_CACHE.

Keys (never on the command line, never printed):
  TOKENCACHE_KEY      the encryption key: 64 hex digits or the base64 of 32 bytes,
                      e.g. from `openssl rand -hex 32` or a secret manager
  TOKENCACHE_KEY_ID   its key id (default 1)
  --key-env VAR       read the key from VAR (and its id from VAR_ID) instead
  --plaintext         the cache is not encrypted (the auth0-spa-js JSON, e.g. plain Redis)
  TOKENCACHE_NEW_KEY  the new key of rotate-key (id TOKENCACHE_NEW_KEY_ID, default old id + 1)

Logging: RUST_LOG (e.g. RUST_LOG=debug), or -v (info), -vv (debug), -vvv (trace), on stderr.
";

/// Pluggable token-cache storage with auth0-spa-js semantics: benchmarks and cache tools.
#[derive(Debug, Parser)]
#[command(name = "tokencache", version, about, after_help = format!("{AFTER_HELP}\n{EXIT_CODES_HELP}"))]
struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace (default: RUST_LOG, else warnings).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the workloads (set, exact hit, scope-subset lookups, miss, clear) and print
    /// ops/s, mean, p50 and p99 per workload and backend.
    Bench(bench::BenchArgs),
    /// List the keys of a cache, sorted.
    Keys {
        #[command(flatten)]
        cache: CacheArgs,
        /// Print one JSON array of strings.
        #[arg(long)]
        json: bool,
    },
    /// Show the value at KEY, tokens redacted unless --reveal.
    #[command(override_usage = "tokencache show [OPTIONS] [CACHE] <KEY>")]
    Show {
        #[command(flatten)]
        at: CacheAndArg,
        /// Print tokens and the decoded ID token as stored.
        #[arg(long)]
        reveal: bool,
        /// Print one JSON object: {"key", "kind", "value"}.
        #[arg(long)]
        json: bool,
    },
    /// Remove the value at KEY and print what was removed.
    #[command(override_usage = "tokencache remove [OPTIONS] [CACHE] <KEY>")]
    Remove {
        #[command(flatten)]
        at: CacheAndArg,
        /// Print what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove every key under the prefix, or one client's keys, and print them.
    Clear {
        #[command(flatten)]
        cache: CacheArgs,
        /// Remove only this client's entries and ID token.
        #[arg(long)]
        client: Option<String>,
        /// The key prefix.
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        /// Print what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-encrypt an SQLite cache from its key (TOKENCACHE_KEY) to a new one
    /// (TOKENCACHE_NEW_KEY, id TOKENCACHE_NEW_KEY_ID, default the old id + 1).
    RotateKey {
        #[command(flatten)]
        cache: CacheArgs,
        /// Read the new key from this variable (its id from VAR_ID).
        #[arg(long, value_name = "VAR", default_value = "TOKENCACHE_NEW_KEY")]
        new_key_env: String,
    },
    /// Read, decrypt and authenticate every value and list those that fail (a wrong key,
    /// a tampered value, one that does not decode): exit 0 only when none does, else 5.
    Verify {
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Store the values of a JSON dump (storage key -> value, as auth0-spa-js keeps them,
    /// e.g. its localStorage); creates an SQLite cache; all or nothing.
    #[command(override_usage = "tokencache import [OPTIONS] [CACHE] <FILE>")]
    Import {
        #[command(flatten)]
        at: CacheAndArg,
    },
    /// Copy every value from one cache to another (creating an SQLite destination),
    /// changing the key or the encryption on the way; all or nothing.
    Migrate(MigrateArgs),
}

/// Options of `migrate`.
#[derive(Debug, Args)]
struct MigrateArgs {
    /// The cache to copy from.
    #[arg(value_parser = parse_location)]
    from: CacheLocation,
    /// The cache to copy to (an SQLite file is created).
    #[arg(value_parser = parse_location)]
    to: CacheLocation,
    /// The source's key is in this variable (its id in VAR_ID).
    #[arg(long, value_name = "VAR", default_value = tokencache::KEY_ENV)]
    from_key_env: String,
    /// The source is not encrypted.
    #[arg(long, conflicts_with = "from_key_env")]
    from_plaintext: bool,
    /// Encrypt the destination with the key in this variable (its id in VAR_ID).
    #[arg(long, value_name = "VAR", default_value = tokencache::KEY_ENV)]
    to_key_env: String,
    /// Write the destination unencrypted (the auth0-spa-js JSON).
    #[arg(long, conflicts_with = "to_key_env")]
    to_plaintext: bool,
    /// No progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long, short)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            tracing::debug!(exit = failure.exit as u8, kind = %failure.error.kind(), "failed");
            eprintln!("error: {failure}");
            failure.exit.into()
        }
    }
}

/// Logs on stderr: `-v` levels win over RUST_LOG, which wins over the default (warnings).
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        1 => EnvFilter::new("info"),
        2 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Writes `text` and a newline to stdout.
fn say(text: impl std::fmt::Display) -> CliResult {
    writeln!(std::io::stdout().lock(), "{text}").map_err(|e| {
        Error::unavailable("cannot write to stdout")
            .with_source(e)
            .into()
    })
}

fn to_json(value: &impl serde::Serialize) -> CliResult<String> {
    serde_json::to_string(value).map_err(|e| {
        Error::serialization("cannot encode the output")
            .with_source(e)
            .into()
    })
}

async fn run(command: Command) -> CliResult {
    match command {
        Command::Bench(args) => Ok(bench::run(args).await?),
        Command::Keys { cache, json } => {
            let location = cache.location()?;
            let cache = target::open_existing(&location).await?;
            let all = inspect::keys(&*cache).await?;
            if json {
                return say(to_json(&all)?);
            }
            all.iter().try_for_each(say)
        }
        Command::Show { at, reveal, json } => {
            let (location, key) = at.resolve()?;
            let cache = target::open_existing(&location).await?;
            let value = inspect::value(&*cache, &key).await?;
            if json {
                return say(to_json(&inspect::show_json(&key, &value, reveal)?)?);
            }
            let now_s = SystemClock.now_ms().div_euclid(1000);
            let text = inspect::show_text(&key, &value, reveal, now_s)?;
            say(text.trim_end())
        }
        Command::Remove { at, dry_run } => {
            let (location, key) = at.resolve()?;
            let cache = target::open_existing(&location).await?;
            if inspect::keys(&*cache).await?.binary_search(&key).is_err() {
                return Err(Failure::not_found("no value at the given key"));
            }
            if dry_run {
                return say(format!("would remove {key}"));
            }
            cache.remove(&key).await?;
            say(format!("removed {key}"))
        }
        Command::Clear {
            cache,
            client,
            prefix,
            dry_run,
        } => {
            let location = cache.location()?;
            let cache = target::open_existing(&location).await?;
            if client.as_deref() == Some("") {
                return Err(Failure::usage("--client needs a client id"));
            }
            let (verb, removed) = if dry_run {
                let all = inspect::keys(&*cache).await?;
                (
                    "would remove",
                    inspect::clear_selection(&all, &prefix, client.as_deref()),
                )
            } else {
                (
                    "removed",
                    inspect::clear(cache, &prefix, client.as_deref()).await?,
                )
            };
            for key in &removed {
                say(format!("{verb} {key}"))?;
            }
            say(format!("{verb} {} keys", removed.len()))
        }
        Command::RotateKey { cache, new_key_env } => {
            let old_keys = cache.keys.source();
            let location = cache.location()?;
            if !matches!(location, CacheLocation::Sqlite { .. }) {
                return Err(Error::unsupported(
                    "only an encrypted sqlite cache has a key to rotate",
                )
                .into());
            }
            target::require_file(&location)?;
            let old_id = old_keys.key_ring()?.map_or(0, |r| r.active_id());
            let new_id_env = format!("{new_key_env}_ID");
            let default_id = old_id.checked_add(1).ok_or_else(|| {
                Error::config(format!("set {new_id_env}: the old key id is the largest"))
            })?;
            let new_key = tokencache::env_key(&new_key_env, &new_id_env, default_id)?;
            let new_id = new_key.id();
            if let CacheLocation::Sqlite { path, .. } = &location {
                if !path.is_file() {
                    return Err(Failure::not_found(format!(
                        "no sqlite cache at {}",
                        path.display()
                    )));
                }
            }
            let done = location.rotate_key(new_key).await?;
            say(format!(
                "re-encrypted {} values under key id {new_id}; from now on set {}=<the new key> and {}={new_id}",
                done.rewritten,
                tokencache::KEY_ENV,
                tokencache::KEY_ID_ENV
            ))?;
            if done.unreadable.is_empty() {
                return Ok(());
            }
            for key in &done.unreadable {
                eprintln!("unreadable (left as it was): {key}");
            }
            Err(Error::integrity(format!(
                "{} values do not decode or authenticate with the old key; they were left as they were",
                done.unreadable.len()
            ))
            .into())
        }
        Command::Verify { cache } => {
            let location = cache.location()?;
            let cache = target::open_existing(&location).await?;
            let found = inspect::verify(&*cache).await?;
            for (key, why) in &found.bad {
                say(format!("{why}: {key}"))?;
            }
            say(format!(
                "verified {} values; {} do not decode or authenticate, {} gone while reading",
                found.readable + found.bad.len(),
                found.bad.len(),
                found.gone,
            ))?;
            if found.bad.is_empty() {
                Ok(())
            } else {
                Err(Error::integrity(format!(
                    "{} values do not decode or authenticate",
                    found.bad.len()
                ))
                .into())
            }
        }
        Command::Import { at } => {
            let (location, file) = at.resolve()?;
            let values = import::parse(&import::read(file.as_ref())?)?;
            let bar = migrate::progress(false, values.len() as u64);
            let n = migrate::write_all(&location, &values, &bar).await;
            bar.finish_and_clear();
            say(format!("imported {} values into {location}", n?))
        }
        Command::Migrate(m) => {
            let from = m
                .from
                .with_keys(key_source(&m.from_key_env, m.from_plaintext));
            let to = m.to.with_keys(key_source(&m.to_key_env, m.to_plaintext));
            let outcome = migrate::migrate(&from, &to, m.quiet).await?;
            for (key, reason) in &outcome.skipped {
                tracing::info!(key, reason = reason.describe(), "skipped");
            }
            say(format!("{} from {from} to {to}", outcome.summary()))
        }
    }
}
