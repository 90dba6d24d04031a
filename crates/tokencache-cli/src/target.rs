//! The cache a command works on: a location given as a positional argument or with
//! `--cache` / `TOKENCACHE_CACHE`, and where its key comes from.

use std::sync::Arc;

use clap::Args;
use tokencache::{Cache, CacheLocation, KeySource, SystemClock, KEY_ENV};

use crate::exit::{CliResult, Failure};

/// `--cache` / `TOKENCACHE_CACHE`: the cache when no positional CACHE is given.
#[derive(Debug, Args)]
pub struct CacheFlag {
    /// The cache, when not given as the positional CACHE.
    #[arg(long = "cache", short = 'c', env = "TOKENCACHE_CACHE", hide_env_values = true, value_name = "CACHE", value_parser = parse_location)]
    flag: Option<CacheLocation>,
}

/// Where the key of a cache comes from: `--key-env VAR` or `--plaintext`.
#[derive(Debug, Args)]
pub struct KeyOpts {
    /// Read the key from this environment variable (64 hex digits or base64 of 32
    /// bytes; its id from VAR_ID, default 1).
    #[arg(long, value_name = "VAR", default_value = KEY_ENV)]
    key_env: String,
    /// The values are not encrypted (the auth0-spa-js JSON), e.g. a plain Redis cache.
    #[arg(long, conflicts_with = "key_env")]
    plaintext: bool,
}

impl KeyOpts {
    /// The key source these options name.
    pub fn source(&self) -> KeySource {
        key_source(&self.key_env, self.plaintext)
    }
}

/// The key in `var` (id in `var_ID`), or plaintext.
pub fn key_source(var: &str, plaintext: bool) -> KeySource {
    if plaintext {
        KeySource::Plaintext
    } else {
        KeySource::env_vars(var, format!("{var}_ID"))
    }
}

/// `[CACHE]`: a command's cache, and where its key comes from.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// The cache (or --cache / TOKENCACHE_CACHE).
    #[arg(value_name = "CACHE", value_parser = parse_location)]
    cache: Option<CacheLocation>,
    #[command(flatten)]
    flag: CacheFlag,
    /// Where the key comes from.
    #[command(flatten)]
    pub keys: KeyOpts,
}

impl CacheArgs {
    /// The location, with its key source.
    pub fn location(self) -> CliResult<CacheLocation> {
        Ok(resolve(self.cache, self.flag)?.with_keys(self.keys.source()))
    }
}

/// `[CACHE] ARG`: the cache (unless --cache or TOKENCACHE_CACHE names it) and a key or
/// file, and where the cache's key comes from.
#[derive(Debug, Args)]
pub struct CacheAndArg {
    /// The cache, then the argument; or only the argument, with --cache / TOKENCACHE_CACHE.
    #[arg(value_name = "CACHE")]
    first: String,
    /// The full storage key, as `keys` prints it (show, remove); the dump file, `-` for
    /// standard input (import).
    #[arg(value_name = "ARG")]
    second: Option<String>,
    #[command(flatten)]
    flag: CacheFlag,
    #[command(flatten)]
    keys: KeyOpts,
}

impl CacheAndArg {
    /// The location, with its key source, and the argument.
    pub fn resolve(self) -> CliResult<(CacheLocation, String)> {
        let (location, arg) = cache_and_key(self.first, self.second, self.flag)?;
        Ok((location.with_keys(self.keys.source()), arg))
    }
}

/// Parses a cache location for clap.
pub fn parse_location(s: &str) -> Result<CacheLocation, String> {
    s.parse::<CacheLocation>()
        .map_err(|e| e.message().to_owned())
}

/// The location of a command: the positional one, else `--cache` / `TOKENCACHE_CACHE`.
fn resolve(positional: Option<CacheLocation>, flag: CacheFlag) -> CliResult<CacheLocation> {
    positional.or(flag.flag).ok_or_else(|| {
        Failure::usage(
            "no cache given: name it (e.g. sqlite:tokens.db), or set --cache or TOKENCACHE_CACHE",
        )
    })
}

/// A missing SQLite file is "not found": commands other than `migrate` never create one.
pub fn require_file(location: &CacheLocation) -> CliResult {
    match location {
        CacheLocation::Sqlite { path, .. } if !path.is_file() => Err(Failure::not_found(format!(
            "no sqlite cache at {} (migrate creates one)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Opens an existing cache (see [`require_file`]).
pub async fn open_existing(location: &CacheLocation) -> CliResult<Arc<dyn Cache>> {
    require_file(location)?;
    tracing::info!(cache = %location, "opening");
    Ok(location.open(Arc::new(SystemClock)).await?)
}

/// `[CACHE] KEY`: with two positionals, the cache and the key; with one, the key, the
/// cache coming from `--cache` / `TOKENCACHE_CACHE`.
fn cache_and_key(
    first: String,
    second: Option<String>,
    flag: CacheFlag,
) -> CliResult<(CacheLocation, String)> {
    match second {
        Some(key) => {
            let location = parse_location(&first).map_err(Failure::usage)?;
            Ok((location, key))
        }
        None => Ok((resolve(None, flag)?, first)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_positional_is_the_key_two_are_cache_and_key() {
        let none = || CacheFlag { flag: None };
        let (loc, key) = cache_and_key("memory".into(), Some("k".into()), none()).unwrap();
        assert_eq!((loc.to_string().as_str(), key.as_str()), ("memory", "k"));
        let flag = CacheFlag {
            flag: Some(CacheLocation::Memory),
        };
        let (loc, key) = cache_and_key("k".into(), None, flag).unwrap();
        assert_eq!((loc.to_string().as_str(), key.as_str()), ("memory", "k"));
        let e = cache_and_key("k".into(), None, none()).unwrap_err();
        assert_eq!(e.exit, crate::exit::Exit::Usage);
        let e = cache_and_key("floppy:a".into(), Some("k".into()), none()).unwrap_err();
        assert_eq!(e.exit, crate::exit::Exit::Usage);
    }

    #[test]
    fn key_source_names_the_variable_and_its_id() {
        let s = key_source("NEW_KEY", false);
        assert_eq!(
            format!("{s:?}"),
            "KeySource::Env(NEW_KEY, id from NEW_KEY_ID)"
        );
        assert!(key_source("X", true).is_plaintext());
    }
}
