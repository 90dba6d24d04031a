//! Opening a cache from a spec string: `memory`, `sqlite:PATH[?ns=NAME]`,
//! `redis://HOST:PORT/?ns=NAME`.
//!
//! Keys come from the environment, never from the command line: `TOKENCACHE_KEY` (64 hex
//! digits or base64 of 32 bytes) with its id in `TOKENCACHE_KEY_ID` (default 1). SQLite
//! caches are always encrypted; a Redis cache is encrypted when `TOKENCACHE_KEY` is set.
//! The values are bound to the namespace (`ns`, default [`DEFAULT_NAMESPACE`] for SQLite).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use tokencache_core::{Cache, Error, Result, ValueCodec};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_memory::MemoryCache;
use tokencache_redis::RedisCache;
use tokencache_sqlite::SqliteCache;

/// The environment variable that holds the encryption key.
pub const KEY_ENV: &str = "TOKENCACHE_KEY";
/// The environment variable that holds the id of [`KEY_ENV`]'s key (default 1).
pub const KEY_ID_ENV: &str = "TOKENCACHE_KEY_ID";
/// The environment variable that holds the new key of `rotate-key`.
pub const NEW_KEY_ENV: &str = "TOKENCACHE_NEW_KEY";
/// The environment variable that holds the id of the new key (default: the old id + 1).
pub const NEW_KEY_ID_ENV: &str = "TOKENCACHE_NEW_KEY_ID";
/// The namespace of an SQLite spec without `?ns=`.
pub const DEFAULT_NAMESPACE: &str = "tokencache";

/// Where a cache lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Spec {
    /// An in-process `MemoryCache` (empty at start, gone at exit).
    Memory,
    /// An encrypted SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The namespace the values are encrypted for.
        namespace: String,
    },
    /// A Redis server (`redis://` or `rediss://`).
    Redis {
        /// The server URL without the `ns` parameter.
        url: String,
        /// The namespace of the cache on that server.
        namespace: String,
    },
}

impl Spec {
    /// The backend's name: `memory`, `sqlite` or `redis`.
    pub fn backend(&self) -> &'static str {
        match self {
            Spec::Memory => "memory",
            Spec::Sqlite { .. } => "sqlite",
            Spec::Redis { .. } => "redis",
        }
    }
}

impl FromStr for Spec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Spec> {
        if s == "memory" {
            return Ok(Spec::Memory);
        }
        if let Some(rest) = s.strip_prefix("sqlite:") {
            let (path, namespace) = split_namespace(rest);
            if path.is_empty() {
                return Err(Error::config("sqlite spec without a path: use sqlite:PATH"));
            }
            return Ok(Spec::Sqlite {
                path: path.into(),
                namespace: namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            });
        }
        if s.starts_with("redis://") || s.starts_with("rediss://") {
            let (url, namespace) = split_namespace(s);
            let namespace = namespace.filter(|n| !n.is_empty()).ok_or_else(|| {
                Error::config("redis spec without a namespace: use redis://HOST:PORT/?ns=NAME")
            })?;
            return Ok(Spec::Redis { url, namespace });
        }
        Err(Error::config(
            "unknown cache spec: use memory, sqlite:PATH or redis://HOST:PORT/?ns=NAME",
        ))
    }
}

/// Takes the `ns` query parameter out of `s`: the rest, and the namespace.
fn split_namespace(s: &str) -> (String, Option<String>) {
    let Some((base, query)) = s.split_once('?') else {
        return (s.to_owned(), None);
    };
    let mut namespace = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("ns=") {
            Some(ns) => {
                namespace = Some(ns.to_owned());
                false
            }
            None => !p.is_empty(),
        })
        .collect();
    let rest = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (rest, namespace)
}

/// Shows the spec without secrets: a Redis URL loses its user and password.
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Memory => f.write_str("memory"),
            Spec::Sqlite { path, namespace } => {
                write!(f, "sqlite:{}?ns={namespace}", path.display())
            }
            Spec::Redis { url, namespace } => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                let sep = if host.contains('?') { '&' } else { '?' };
                write!(f, "{scheme}://{host}{sep}ns={namespace}")
            }
        }
    }
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spec({self})")
    }
}

/// How [`open_with`] gets the encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// From [`KEY_ENV`]; required for SQLite.
    FromEnv,
    /// From [`KEY_ENV`] if set, else a fresh random key (benchmarks on their own data).
    EnvOrRandom,
}

/// Opens the cache `spec` names. An SQLite file must exist already.
pub async fn open(spec: &Spec) -> Result<Arc<dyn Cache>> {
    if let Spec::Sqlite { path, .. } = spec {
        if !path.is_file() {
            return Err(Error::config(format!(
                "no sqlite cache at {} (migrate creates one)",
                path.display()
            )));
        }
    }
    open_with(spec, Keys::FromEnv).await
}

/// Opens the cache `spec` names, creating an SQLite file if needed.
pub async fn open_with(spec: &Spec, keys: Keys) -> Result<Arc<dyn Cache>> {
    match spec {
        Spec::Memory => Ok(Arc::new(MemoryCache::new())),
        Spec::Sqlite { path, namespace } => {
            let key = match keys {
                Keys::FromEnv => key_from_env()?,
                Keys::EnvOrRandom if std::env::var_os(KEY_ENV).is_some() => key_from_env()?,
                Keys::EnvOrRandom => DataKey::generate(1)?,
            };
            let codec = Arc::new(EncryptedCodec::new(KeyRing::new(key), namespace.clone()));
            Ok(Arc::new(SqliteCache::open(path, codec).await?))
        }
        Spec::Redis { url, namespace } => {
            let mut builder = RedisCache::builder(namespace.clone());
            if std::env::var_os(KEY_ENV).is_some() {
                let codec: Arc<dyn ValueCodec> = Arc::new(EncryptedCodec::new(
                    KeyRing::new(key_from_env()?),
                    namespace.clone(),
                ));
                builder = builder.codec(codec);
            }
            Ok(Arc::new(builder.connect(url).await?))
        }
    }
}

/// Re-encrypts every value of the SQLite cache `spec` from the key in [`KEY_ENV`] to the
/// one in [`NEW_KEY_ENV`] (id [`NEW_KEY_ID_ENV`], default the old id + 1). Returns the
/// number of values re-encrypted and the new key's id.
pub async fn rotate_key(spec: &Spec) -> Result<(usize, u32)> {
    let Spec::Sqlite { path, namespace } = spec else {
        return Err(Error::unsupported(
            "only an encrypted sqlite cache has a key to rotate",
        ));
    };
    if !path.is_file() {
        return Err(Error::config(format!(
            "no sqlite cache at {}",
            path.display()
        )));
    }
    let old = key_from_env()?;
    let new_id = match env_id(NEW_KEY_ID_ENV)? {
        Some(id) => id,
        None => old.id().checked_add(1).ok_or_else(|| {
            Error::config(format!(
                "set {NEW_KEY_ID_ENV}: the old key id is the largest"
            ))
        })?,
    };
    let new = DataKey::from_env(new_id, NEW_KEY_ENV)?;
    let mut ring = KeyRing::new(old);
    ring.rotate(new)?;
    let cache =
        SqliteCache::open(path, Arc::new(EncryptedCodec::new(ring, namespace.clone()))).await?;
    Ok((cache.rotate().await?, new_id))
}

/// The key in [`KEY_ENV`] with the id in [`KEY_ID_ENV`] (default 1).
fn key_from_env() -> Result<DataKey> {
    DataKey::from_env(env_id(KEY_ID_ENV)?.unwrap_or(1), KEY_ENV)
}

fn env_id(var: &str) -> Result<Option<u32>> {
    match std::env::var(var) {
        Err(_) => Ok(None),
        Ok(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::config(format!("{var} must be a number (a key id)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("memory".parse::<Spec>().unwrap(), Spec::Memory);
        assert_eq!(
            "sqlite:/tmp/x.db".parse::<Spec>().unwrap(),
            Spec::Sqlite {
                path: "/tmp/x.db".into(),
                namespace: DEFAULT_NAMESPACE.into()
            }
        );
        assert_eq!(
            "sqlite:rel.db?ns=app".parse::<Spec>().unwrap(),
            Spec::Sqlite {
                path: "rel.db".into(),
                namespace: "app".into()
            }
        );
        assert_eq!(
            "redis://127.0.0.1:6379/?ns=t1&protocol=resp3"
                .parse::<Spec>()
                .unwrap(),
            Spec::Redis {
                url: "redis://127.0.0.1:6379/?protocol=resp3".into(),
                namespace: "t1".into()
            }
        );
        for bad in [
            "",
            "sqlite:",
            "sqlite:?ns=a",
            "mem",
            "http://x",
            "redis://h:1/",
            "redis://h:1/?ns=",
        ] {
            let e = bad.parse::<Spec>().unwrap_err();
            assert_eq!(e.kind(), tokencache_core::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn display_hides_redis_credentials() {
        let s: Spec = "redis://user:hunter2@h:1/?ns=a".parse().unwrap();
        assert_eq!(s.to_string(), "redis://h:1/?ns=a");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
