//! [`CacheLocation`]: where a built-in cache keeps the tokens, parsed from a spec string
//! (`memory`, `sqlite:PATH?ns=NAME`, `redis://HOST:PORT/?ns=NAME`, ...) and opened.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use tokencache_core::{Cache, Clock, Error, Result};

#[cfg(feature = "crypto")]
use crate::KeySource;

/// The namespace of an SQLite location whose spec has no `ns`.
pub const DEFAULT_SQLITE_NAMESPACE: &str = "tokencache";

/// Where a built-in cache keeps the tokens: auth0-spa-js's `cacheLocation`, plus the
/// native stores, each with the `KeySource` of its encryption key, so that a location
/// holds everything it needs to [open](CacheLocation::open).
///
/// Each variant exists when its backend feature is on (and, for browser storage, on
/// wasm32; for SQLite and Redis, on native targets).
///
/// A location parses from a spec string ([`FromStr`]) and shows as one ([`fmt::Display`],
/// without passwords). The key source is never part of the string: a parsed SQLite or
/// Redis location takes its key from `TOKENCACHE_KEY` (`KeySource::env()`); change it
/// with `CacheLocation::with_keys`.
///
/// | spec | location |
/// |---|---|
/// | `memory` | [`CacheLocation::Memory`] |
/// | `sqlite:PATH[?ns=NAME]` | `CacheLocation::Sqlite` (namespace default `tokencache`) |
/// | `redis://[USER:PASSWORD@]HOST:PORT[/DB]?ns=NAME[&near=BYTES]`, `rediss://…` | `CacheLocation::Redis` |
/// | `redis+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT/?ns=NAME[&near=BYTES]`, `rediss+cluster://…` | `CacheLocation::RedisCluster` |
///
/// `near=BYTES` puts the Redis backend's near cache in front (an in-process copy of
/// recent reads, at most BYTES, kept consistent by Redis's client tracking; see
/// `RedisCacheBuilder::near_cache`).
///
/// ```
/// use tokencache::CacheLocation;
///
/// let memory: CacheLocation = "memory".parse()?;
/// assert_eq!(memory.to_string(), "memory");
/// # #[cfg(all(feature = "sqlite", feature = "redis"))] {
/// let file: CacheLocation = "sqlite:tokens.db".parse()?;
/// assert_eq!(file.to_string(), "sqlite:tokens.db?ns=tokencache");
/// let redis: CacheLocation = "redis://user:secret@127.0.0.1:6379/?ns=tenant-1".parse()?;
/// assert_eq!(redis.to_string(), "redis://127.0.0.1:6379/?ns=tenant-1"); // no password
/// let cluster: CacheLocation = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000/?ns=t".parse()?;
/// assert_eq!(cluster.backend(), "redis-cluster");
/// let near: CacheLocation = "redis://127.0.0.1:6379/?ns=t&near=16777216".parse()?;
/// assert_eq!(near.to_string(), "redis://127.0.0.1:6379/?ns=t&near=16777216");
/// # }
/// assert!("floppy:/a".parse::<CacheLocation>().is_err());
/// # Ok::<(), tokencache::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum CacheLocation {
    /// In this process's memory ([`memory::MemoryCache`](crate::memory::MemoryCache)): the
    /// default, as in auth0-spa-js.
    #[cfg(feature = "memory")]
    Memory,
    /// The page's `localStorage` (`web::LocalStorageCache`).
    #[cfg(all(feature = "web", target_arch = "wasm32"))]
    LocalStorage,
    /// The page's `sessionStorage` (`web::SessionStorageCache`).
    #[cfg(all(feature = "web", target_arch = "wasm32"))]
    SessionStorage,
    /// An SQLite file (created when missing).
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    Sqlite {
        /// The database file.
        path: std::path::PathBuf,
        /// The namespace the values are bound to (encrypted for).
        namespace: String,
        /// Where the encryption key comes from.
        keys: KeySource,
    },
    /// One namespace of a standalone Redis server.
    #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
    Redis {
        /// `redis://[USER:PASSWORD@]HOST:PORT[/DB]` or `rediss://…`, without `ns`.
        url: String,
        /// The namespace (tenant, session) of this cache.
        namespace: String,
        /// Where the encryption key comes from.
        keys: KeySource,
        /// The near cache's bound in bytes (`near=BYTES`), if there is one.
        near: Option<u64>,
    },
    /// One namespace of a Redis Cluster.
    #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
    RedisCluster {
        /// Some or all of the cluster's nodes, each a `redis://` or `rediss://` URL.
        urls: Vec<String>,
        /// The namespace (tenant, session) of this cache.
        namespace: String,
        /// Where the encryption key comes from.
        keys: KeySource,
        /// The near cache's bound in bytes (`near=BYTES`), if there is one.
        near: Option<u64>,
    },
}

impl CacheLocation {
    /// The backend's name: `memory`, `localStorage`, `sessionStorage`, `sqlite`, `redis`
    /// or `redis-cluster`.
    pub fn backend(&self) -> &'static str {
        match self {
            #[cfg(feature = "memory")]
            CacheLocation::Memory => "memory",
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::LocalStorage => "localStorage",
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::SessionStorage => "sessionStorage",
            #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
            CacheLocation::Sqlite { .. } => "sqlite",
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::Redis { .. } => "redis",
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::RedisCluster { .. } => "redis-cluster",
        }
    }

    /// The key source of a location that has one (SQLite, Redis).
    #[cfg(feature = "crypto")]
    pub fn keys(&self) -> Option<&KeySource> {
        match self {
            #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
            CacheLocation::Sqlite { keys, .. } => Some(keys),
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::Redis { keys, .. } | CacheLocation::RedisCluster { keys, .. } => {
                Some(keys)
            }
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// This location with its values encrypted by `keys` (or stored in plaintext, with
    /// [`KeySource::Plaintext`]). Locations without encryption ignore it.
    ///
    /// ```
    /// use tokencache::{CacheLocation, KeySource};
    ///
    /// let location: CacheLocation = "memory".parse()?;
    /// assert!(location.with_keys(KeySource::Plaintext).keys().is_none());
    /// # Ok::<(), tokencache::Error>(())
    /// ```
    #[cfg(feature = "crypto")]
    pub fn with_keys(mut self, new: KeySource) -> Self {
        // Without SQLite and Redis (on wasm32) no location takes keys.
        let _ = &new;
        match &mut self {
            #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
            CacheLocation::Sqlite { keys, .. } => *keys = new,
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::Redis { keys, .. } | CacheLocation::RedisCluster { keys, .. } => {
                *keys = new
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
        self
    }

    /// Opens the built-in cache at this location (an SQLite file is created when
    /// missing). Caches with physical expiry take their time from `clock`, which must be
    /// the manager's.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use tokencache::{CacheLocation, SystemClock};
    ///
    /// let location: CacheLocation = "memory".parse()?;
    /// let cache = location.open(Arc::new(SystemClock)).await?;
    /// assert!(cache.all_keys().await?.is_some_and(|keys| keys.is_empty()));
    /// # Ok::<(), tokencache::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn open(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        let _ = &clock;
        match self {
            #[cfg(feature = "memory")]
            CacheLocation::Memory => Ok(Arc::new(
                crate::memory::MemoryCache::builder().clock(clock).build(),
            )),
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::LocalStorage => Ok(Arc::new(crate::web::LocalStorageCache::new()?)),
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::SessionStorage => Ok(Arc::new(crate::web::SessionStorageCache::new()?)),
            #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
            CacheLocation::Sqlite {
                path,
                namespace,
                keys,
            } => {
                let b = crate::sqlite::SqliteCache::builder(path).clock(clock);
                // Plaintext is named, never a default: `keys.codec` is `None` only for
                // `KeySource::Plaintext`.
                let b = match keys.codec(namespace)? {
                    Some(codec) => b.codec(codec),
                    None => b.plaintext(),
                };
                Ok(Arc::new(b.build().await?))
            }
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::Redis {
                url,
                namespace,
                keys,
                near,
            } => Ok(Arc::new(
                redis_builder(namespace, keys, *near, clock)?
                    .connect(url)
                    .await?,
            )),
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::RedisCluster {
                urls,
                namespace,
                keys,
                near,
            } => Ok(Arc::new(
                redis_builder(namespace, keys, *near, clock)?
                    .connect_cluster(urls)
                    .await?,
            )),
        }
    }

    /// Re-encrypts every value of an SQLite location under `new_key`: the location's own
    /// key (its [`KeySource`](crate::KeySource)) decrypts, `new_key` encrypts, in one transaction. Returns
    /// how many values were rewritten and which could not be read (left as they were; see
    /// [`SqliteCache::rotate`](crate::sqlite::SqliteCache::rotate)). Afterwards the
    /// location opens with `new_key` only.
    ///
    /// A missing file is an [`ErrorKind::Config`](crate::ErrorKind::Config) error, other
    /// locations and plaintext ones [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    pub async fn rotate_key(
        &self,
        new_key: crate::crypto::DataKey,
    ) -> Result<crate::sqlite::Rotation> {
        let unsupported =
            || Error::unsupported("only an encrypted sqlite cache has a key to rotate");
        let CacheLocation::Sqlite {
            path,
            namespace,
            keys,
        } = self
        else {
            return Err(unsupported());
        };
        if !path.is_file() {
            return Err(Error::config(format!(
                "no sqlite cache at {}",
                path.display()
            )));
        }
        let mut ring = keys.key_ring()?.ok_or_else(unsupported)?;
        ring.rotate(new_key)?;
        let codec = Arc::new(crate::crypto::EncryptedCodec::new(ring, namespace.clone()));
        crate::sqlite::SqliteCache::open(path, codec)
            .await?
            .rotate()
            .await
    }
}

#[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
fn redis_builder(
    namespace: &str,
    keys: &KeySource,
    near: Option<u64>,
    clock: Arc<dyn Clock>,
) -> Result<crate::redis::RedisCacheBuilder> {
    let mut b = crate::redis::RedisCache::builder(namespace).clock(clock);
    if let Some(codec) = keys.codec(namespace)? {
        b = b.codec(codec);
    }
    if let Some(max_bytes) = near {
        b = b.near_cache(max_bytes);
    }
    Ok(b)
}

impl FromStr for CacheLocation {
    type Err = Error;

    /// Parses a spec (see [`CacheLocation`]); anything else is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    fn from_str(s: &str) -> Result<CacheLocation> {
        if s == "memory" {
            return parse_memory();
        }
        if let Some(rest) = s.strip_prefix("sqlite:") {
            return parse_sqlite(rest);
        }
        match s.split_once("://") {
            Some((scheme @ ("redis" | "rediss" | "redis+cluster" | "rediss+cluster"), _)) => {
                parse_redis(scheme, s)
            }
            _ => Err(Error::config(
                "unknown cache location: use memory, sqlite:PATH[?ns=NAME], redis://HOST:PORT/?ns=NAME \
                 or redis+cluster://HOST:PORT,HOST:PORT/?ns=NAME",
            )),
        }
    }
}

/// The error of a spec whose backend this build leaves out.
#[allow(dead_code)]
fn not_built(feature: &str) -> Error {
    Error::config(format!(
        "this build has no {feature} backend (enable the `{feature}` feature)"
    ))
}

#[cfg(feature = "memory")]
fn parse_memory() -> Result<CacheLocation> {
    Ok(CacheLocation::Memory)
}

#[cfg(not(feature = "memory"))]
fn parse_memory() -> Result<CacheLocation> {
    Err(not_built("memory"))
}

#[cfg(not(all(feature = "sqlite", not(target_arch = "wasm32"))))]
fn parse_sqlite(_: &str) -> Result<CacheLocation> {
    Err(not_built("sqlite"))
}

#[cfg(not(all(feature = "redis", not(target_arch = "wasm32"))))]
fn parse_redis(_: &str, _: &str) -> Result<CacheLocation> {
    Err(not_built("redis"))
}

#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
fn parse_sqlite(rest: &str) -> Result<CacheLocation> {
    let (path, namespace) = split_namespace(rest);
    if path.is_empty() {
        return Err(Error::config(
            "sqlite location without a path: use sqlite:PATH",
        ));
    }
    Ok(CacheLocation::Sqlite {
        path: path.into(),
        namespace: namespace
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_SQLITE_NAMESPACE.to_owned()),
        keys: KeySource::env(),
    })
}

#[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
fn parse_redis(scheme: &str, s: &str) -> Result<CacheLocation> {
    let (url, namespace) = split_namespace(s);
    let namespace = namespace
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::config("redis location without a namespace: add ?ns=NAME"))?;
    let (url, near) = take_param(&url, "near");
    let near = near
        .map(|n| {
            n.parse::<u64>().map_err(|_| {
                Error::config("redis location: near=BYTES takes a whole number of bytes")
            })
        })
        .transpose()?;
    let keys = KeySource::env();
    let Some(node_scheme) = scheme.strip_suffix("+cluster") else {
        return Ok(CacheLocation::Redis {
            url,
            namespace,
            keys,
            near,
        });
    };
    // redis+cluster://[USERINFO@]H1:P1,H2:P2[/][?QUERY]: one URL per node.
    let rest = &url[scheme.len() + 3..];
    let (hosts, query) = rest
        .split_once('?')
        .map_or((rest, None), |(h, q)| (h, Some(q)));
    let hosts = hosts.trim_end_matches('/');
    let (userinfo, hosts) = hosts.rsplit_once('@').map_or(("", hosts), |(u, h)| (u, h));
    let urls: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|host| {
            let at = if userinfo.is_empty() { "" } else { "@" };
            let query = query.map(|q| format!("/?{q}")).unwrap_or_default();
            format!("{node_scheme}://{userinfo}{at}{host}{query}")
        })
        .collect();
    if urls.is_empty() || hosts.contains('/') {
        return Err(Error::config(
            "redis cluster location: use redis+cluster://HOST:PORT,HOST:PORT/?ns=NAME",
        ));
    }
    Ok(CacheLocation::RedisCluster {
        urls,
        namespace,
        keys,
        near,
    })
}

/// Takes the `ns` query parameter out of `s`: the rest, and the namespace.
#[cfg(all(
    any(feature = "sqlite", feature = "redis"),
    not(target_arch = "wasm32")
))]
fn split_namespace(s: &str) -> (String, Option<String>) {
    take_param(s, "ns")
}

/// Takes the query parameter `name` out of `s`: the rest, and its value (the last one).
#[cfg(all(
    any(feature = "sqlite", feature = "redis"),
    not(target_arch = "wasm32")
))]
fn take_param(s: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = s.split_once('?') else {
        return (s.to_owned(), None);
    };
    let mut value = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(
            |p| match p.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
                Some(v) => {
                    value = Some(v.to_owned());
                    false
                }
                None => !p.is_empty(),
            },
        )
        .collect();
    let rest = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (rest, value)
}

/// `&near=BYTES` when the location has a near cache.
#[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
fn near_suffix(near: &Option<u64>) -> String {
    near.map(|n| format!("&near={n}")).unwrap_or_default()
}

/// A Redis URL without its user and password.
#[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
fn without_credentials(url: &str) -> (&str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    (scheme, host)
}

/// The location as a spec string, without passwords (and without the key source, which
/// is never part of it).
impl fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "memory")]
            CacheLocation::Memory => f.write_str("memory"),
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::LocalStorage => f.write_str("localStorage"),
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::SessionStorage => f.write_str("sessionStorage"),
            #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
            CacheLocation::Sqlite {
                path, namespace, ..
            } => write!(f, "sqlite:{}?ns={namespace}", path.display()),
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::Redis {
                url,
                namespace,
                near,
                ..
            } => {
                let (scheme, host) = without_credentials(url);
                let sep = if host.contains('?') { '&' } else { '?' };
                let near = near_suffix(near);
                write!(f, "{scheme}://{host}{sep}ns={namespace}{near}")
            }
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::RedisCluster {
                urls,
                namespace,
                near,
                ..
            } => {
                let mut scheme = "redis";
                let hosts: Vec<&str> = urls
                    .iter()
                    .map(|u| {
                        let (s, host) = without_credentials(u);
                        scheme = s;
                        host.split(['/', '?']).next().unwrap_or(host)
                    })
                    .collect();
                let near = near_suffix(near);
                write!(
                    f,
                    "{scheme}+cluster://{}/?ns={namespace}{near}",
                    hosts.join(",")
                )
            }
        }
    }
}

/// The spec string and the key source, never a password or a key.
impl fmt::Debug for CacheLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheLocation({self}")?;
        #[cfg(feature = "crypto")]
        if let Some(keys) = self.keys() {
            write!(f, ", {keys:?}")?;
        }
        f.write_str(")")
    }
}

#[cfg(all(test, feature = "memory", feature = "sqlite", feature = "redis"))]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn parse(s: &str) -> CacheLocation {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn specs_parse_and_show_again() {
        assert!(matches!(parse("memory"), CacheLocation::Memory));
        let CacheLocation::Sqlite {
            path,
            namespace,
            keys,
        } = parse("sqlite:rel.db?ns=app")
        else {
            panic!("not sqlite")
        };
        assert_eq!((path.to_str(), namespace.as_str()), (Some("rel.db"), "app"));
        assert_eq!(
            format!("{keys:?}"),
            "KeySource::Env(TOKENCACHE_KEY, id from TOKENCACHE_KEY_ID)"
        );
        let CacheLocation::Redis { url, namespace, .. } =
            parse("redis://127.0.0.1:6379/?ns=t1&protocol=resp3")
        else {
            panic!("not redis")
        };
        assert_eq!(url, "redis://127.0.0.1:6379/?protocol=resp3");
        assert_eq!(namespace, "t1");
        let CacheLocation::RedisCluster {
            urls, namespace, ..
        } = parse("rediss+cluster://u:pw@h1:7000,h2:7001/?ns=t2")
        else {
            panic!("not a cluster")
        };
        assert_eq!(urls, ["rediss://u:pw@h1:7000", "rediss://u:pw@h2:7001"]);
        assert_eq!(namespace, "t2");
        let CacheLocation::Redis { url, near, .. } =
            parse("redis://h:1/?ns=a&near=1048576&protocol=resp3")
        else {
            panic!("not redis")
        };
        assert_eq!(
            (url.as_str(), near),
            ("redis://h:1/?protocol=resp3", Some(1 << 20))
        );
        let CacheLocation::RedisCluster { urls, near, .. } =
            parse("redis+cluster://h1:1,h2:2/?ns=a&near=4096")
        else {
            panic!("not a cluster")
        };
        assert_eq!(urls, ["redis://h1:1", "redis://h2:2"]);
        assert_eq!(near, Some(4096));
        assert!(matches!(
            parse("redis://h:1/?ns=a"),
            CacheLocation::Redis { near: None, .. }
        ));
        for (spec, shown) in [
            ("memory", "memory"),
            ("sqlite:/tmp/x.db", "sqlite:/tmp/x.db?ns=tokencache"),
            ("sqlite:x.db?ns=a", "sqlite:x.db?ns=a"),
            ("redis://h:1/?ns=a", "redis://h:1/?ns=a"),
            ("rediss://h:1/2?ns=a", "rediss://h:1/2?ns=a"),
            (
                "redis+cluster://h1:1,h2:2/?ns=a",
                "redis+cluster://h1:1,h2:2/?ns=a",
            ),
            ("redis://h:1/?near=4096&ns=a", "redis://h:1/?ns=a&near=4096"),
            (
                "redis+cluster://h1:1,h2:2/?ns=a&near=65536",
                "redis+cluster://h1:1,h2:2/?ns=a&near=65536",
            ),
        ] {
            assert_eq!(parse(spec).to_string(), shown, "{spec}");
            assert_eq!(parse(shown).to_string(), shown, "{shown} parses back");
        }
    }

    #[test]
    fn bad_specs_are_config_errors() {
        for bad in [
            "",
            "sqlite:",
            "sqlite:?ns=a",
            "mem",
            "http://x",
            "redis://h:1/",
            "redis://h:1/?ns=",
            "redis+cluster://?ns=a",
            "redis+cluster://h1:1/db/?ns=a",
            "redis://h:1/?ns=a&near=",
            "redis://h:1/?ns=a&near=1MB",
            "redis+cluster://h1:1/?ns=a&near=-1",
        ] {
            let e = bad.parse::<CacheLocation>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn no_password_is_shown() {
        for spec in [
            "redis://user:hunter2@h:1/?ns=a",
            "redis+cluster://user:hunter2@h1:1,h2:2/?ns=a",
        ] {
            let l = parse(spec);
            assert!(!l.to_string().contains("hunter2"), "{l}");
            assert!(!format!("{l:?}").contains("hunter2"), "{l:?}");
        }
    }

    #[test]
    fn with_keys_replaces_the_key_source() {
        let l = parse("sqlite:x.db").with_keys(KeySource::Plaintext);
        assert!(l.keys().is_some_and(KeySource::is_plaintext));
        assert!(format!("{l:?}").ends_with("KeySource::Plaintext)"), "{l:?}");
    }
}
