//! The extra measurements of `tokencache bench`: the memory backend's bytes per entry,
//! moka's own time for the memory backend's `set` and `exact_hit` work (its baselines), and a
//! Redis server filled with unrelated keys (namespace isolation).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokencache::memory::MemoryCache;
use tokencache::{Cache, CacheKey, Cacheable, Clock, EntryBody, Error, Result, WrappedCacheEntry};
use tokencache_workloads::{
    entry, exact_key, frozen_clock, manager, other_audience, throughput_ns, EXPIRES_IN,
    OTHER_SCOPE, SET_SCOPE, TARGET_AUDIENCE,
};

/// The resident set size of this process in bytes (Linux `/proc/self/status`).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// What [`memory_bytes_per_entry`] measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MemoryFootprint {
    /// Entries stored.
    pub entries: usize,
    /// Growth of the process's resident memory per entry (what the process really pays:
    /// moka's nodes, the key index, the allocator), when the platform tells it.
    pub rss_bytes_per_entry: Option<f64>,
    /// Moka's weighted size per entry (the estimate its capacity bound uses).
    pub weighted_bytes_per_entry: f64,
}

/// Stores `entries` benchmark entries (as the workloads shape them) through a manager in
/// a new memory cache and measures the bytes per entry.
pub async fn memory_bytes_per_entry(entries: usize) -> Result<MemoryFootprint> {
    let before = resident_bytes();
    let clock = frozen_clock();
    let cache = Arc::new(
        MemoryCache::builder()
            .clock(clock.clone())
            .max_capacity_bytes(u64::MAX / 2)
            .build(),
    );
    let m = manager(cache.clone(), clock)?;
    for i in 0..entries {
        m.set(entry(&other_audience(i), OTHER_SCOPE, i)).await?;
    }
    cache.run_pending_tasks().await;
    let after = resident_bytes();
    let stored = cache.entry_count().await;
    if stored < entries as u64 {
        return Err(Error::unexpected(format!(
            "the memory cache holds {stored} of {entries} entries"
        )));
    }
    let n = entries.max(1) as f64;
    let footprint = MemoryFootprint {
        entries,
        rss_bytes_per_entry: before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / n),
        weighted_bytes_per_entry: cache.weighted_size().await as f64 / n,
    };
    // Keep the cache alive until measured; the keys are listed to be sure it is whole.
    drop(cache.all_keys().await?);
    Ok(footprint)
}

/// Moka alone doing the memory backend's part of the `set` and `exact_hit` rows, measured
/// in the same run as the table: the baselines those rows are held to. (The memory
/// backend's `set` of a key it holds swaps the value in place and costs less than moka's
/// insert; its `exact_hit` is moka's get plus the manager's work.)
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MokaFloor {
    /// Mean time of `set`'s work on a moka sync cache: build the entry the workload
    /// writes, its key string, the stored value, and insert it (an overwrite of the one
    /// key, as in the workload), in nanoseconds.
    pub insert_ns: f64,
    /// Mean time of `exact_hit`'s work: build the key string and get the value (a clone),
    /// in nanoseconds.
    pub get_ns: f64,
}

/// Measures [`MokaFloor`]: a warm-up batch, then the throughput pass of the workloads
/// ([`throughput_ns`]) with batches of `batch` operations.
pub async fn moka_floor(batch: u64, max_time: Duration) -> Result<MokaFloor> {
    let cache = moka::sync::Cache::<String, Cacheable>::new(100_000);
    let clock = frozen_clock();
    let stored = |i: u64| -> (String, Cacheable) {
        let e = entry(TARGET_AUDIENCE, SET_SCOPE, i);
        let key = CacheKey::new(&e.client_id, Some(&e.audience), Some(&e.scope)).to_key();
        let expires_at = clock.now_ms().div_euclid(1000) + EXPIRES_IN as i64;
        (
            key,
            WrappedCacheEntry::new(EntryBody::from(e), expires_at).into(),
        )
    };
    let mut i = 0u64;
    let mut insert = || {
        let (key, value) = stored(i);
        cache.insert(key, value);
        i += 1;
        std::future::ready(Ok(()))
    };
    (0..batch).for_each(|_| drop(insert()));
    let insert_ns = throughput_ns(batch, max_time, insert).await?;
    let target = exact_key();
    cache.insert(target.to_key(), stored(0).1);
    let get = || {
        std::hint::black_box(cache.get(&std::hint::black_box(&target).to_key()));
        std::future::ready(Ok(()))
    };
    (0..batch).for_each(|_| drop(get()));
    let get_ns = throughput_ns(batch, max_time, get).await?;
    Ok(MokaFloor { insert_ns, get_ns })
}

/// The prefix of the unrelated keys put in the Redis server.
pub const UNRELATED_PREFIX: &str = "tokencache-bench-unrelated:";
/// Keys per `MSET`/`DEL` command.
const BATCH: usize = 1_000;
/// Commands written before their replies are read.
const PIPELINE: usize = 50;

/// A minimal RESP connection to a standalone Redis server, for filling it fast with
/// pipelined commands (the backend's own client has no business writing foreign keys).
pub struct Filler {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl std::fmt::Debug for Filler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filler").finish_non_exhaustive()
    }
}

/// `host:port` and the optional password of a `redis://[user[:password]@]host[:port]/…`
/// URL; other schemes (TLS, cluster) are not supported by the filler.
pub fn parse_plain_url(url: &str) -> Result<(String, Option<(String, String)>)> {
    let rest = url.strip_prefix("redis://").ok_or_else(|| {
        Error::config(
            "--redis-unrelated needs a plain standalone redis:// URL (not TLS, not a cluster)",
        )
    })?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (auth, host) = match authority.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, authority),
    };
    let host = if host.is_empty() {
        "127.0.0.1:6379".to_owned()
    } else if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:6379")
    };
    let auth = auth.map(|a| match a.split_once(':') {
        Some((u, p)) => (
            if u.is_empty() { "default" } else { u }.to_owned(),
            p.to_owned(),
        ),
        None => ("default".to_owned(), a.to_owned()),
    });
    Ok((host, auth))
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn io_error(e: std::io::Error) -> Error {
    Error::unavailable("the Redis filler connection failed").with_source(e)
}

impl Filler {
    /// Connects to the server of `url` (see [`parse_plain_url`]).
    pub fn connect(url: &str) -> Result<Filler> {
        let (host, auth) = parse_plain_url(url)?;
        let stream = TcpStream::connect(&host).map_err(io_error)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(io_error)?;
        let reader = BufReader::new(stream.try_clone().map_err(io_error)?);
        let mut f = Filler {
            writer: stream,
            reader,
        };
        if let Some((user, password)) = auth {
            f.send(&[command(&[b"AUTH", user.as_bytes(), password.as_bytes()])])?;
        }
        Ok(f)
    }

    /// Writes `commands` at once and reads one single-line reply per command; returns the
    /// integer replies' sum.
    fn send(&mut self, commands: &[Vec<u8>]) -> Result<i64> {
        let mut buf = Vec::new();
        for c in commands {
            buf.extend_from_slice(c);
        }
        self.writer.write_all(&buf).map_err(io_error)?;
        let mut sum = 0;
        for _ in commands {
            let mut line = String::new();
            self.reader.read_line(&mut line).map_err(io_error)?;
            match line.as_bytes().first() {
                Some(b'+') => {}
                Some(b':') => sum += line[1..].trim().parse::<i64>().unwrap_or(0),
                _ => {
                    return Err(Error::unavailable(format!(
                        "the Redis server refused a filler command: {}",
                        line.trim()
                    )))
                }
            }
        }
        Ok(sum)
    }

    /// The number of keys in the server's database.
    pub fn dbsize(&mut self) -> Result<i64> {
        self.send(&[command(&[b"DBSIZE"])])
    }

    fn batched(&mut self, n: usize, mut make: impl FnMut(usize, usize) -> Vec<u8>) -> Result<i64> {
        let mut pending = Vec::with_capacity(PIPELINE);
        let mut sum = 0;
        let mut start = 0;
        while start < n {
            let end = (start + BATCH).min(n);
            pending.push(make(start, end));
            if pending.len() == PIPELINE {
                sum += self.send(&pending)?;
                pending.clear();
            }
            start = end;
        }
        if !pending.is_empty() {
            sum += self.send(&pending)?;
        }
        Ok(sum)
    }

    /// Stores `n` unrelated keys ([`UNRELATED_PREFIX`]`<i>`) with pipelined `MSET`s.
    pub fn fill(&mut self, n: usize) -> Result<Duration> {
        let t = Instant::now();
        self.batched(n, |start, end| {
            let keys: Vec<String> = (start..end)
                .map(|i| format!("{UNRELATED_PREFIX}{i}"))
                .collect();
            let mut args: Vec<&[u8]> = vec![b"MSET"];
            for k in &keys {
                args.push(k.as_bytes());
                args.push(b"unrelated-value");
            }
            command(&args)
        })?;
        Ok(t.elapsed())
    }

    /// Removes the `n` unrelated keys; returns how many were removed.
    pub fn clean(&mut self, n: usize) -> Result<i64> {
        self.batched(n, |start, end| {
            let keys: Vec<String> = (start..end)
                .map(|i| format!("{UNRELATED_PREFIX}{i}"))
                .collect();
            let mut args: Vec<&[u8]> = vec![b"UNLINK"];
            args.extend(keys.iter().map(|k| k.as_bytes()));
            command(&args)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_only() {
        assert_eq!(
            parse_plain_url("redis://127.0.0.1:6390/?ns=x").unwrap(),
            ("127.0.0.1:6390".to_owned(), None)
        );
        assert_eq!(
            parse_plain_url("redis://u:p@h/0").unwrap(),
            ("h:6379".to_owned(), Some(("u".to_owned(), "p".to_owned())))
        );
        assert_eq!(
            parse_plain_url("redis://:secret@h:1").unwrap().1,
            Some(("default".to_owned(), "secret".to_owned()))
        );
        for bad in ["rediss://h:1", "redis+cluster://h:1,h:2"] {
            let e = parse_plain_url(bad).unwrap_err();
            assert_eq!(e.kind(), tokencache::ErrorKind::Config);
            assert!(!e.message().contains("secret"));
        }
    }

    #[test]
    fn resp_encoding() {
        assert_eq!(
            command(&[b"MSET", b"k", b"v"]),
            b"*3\r\n$4\r\nMSET\r\n$1\r\nk\r\n$1\r\nv\r\n".to_vec()
        );
    }

    #[tokio::test]
    async fn bytes_per_entry_of_a_small_cache() {
        let f = memory_bytes_per_entry(2_000).await.unwrap();
        assert_eq!(f.entries, 2_000);
        // An entry holds two tokens, a key and moka's bookkeeping: hundreds of bytes.
        assert!(
            f.weighted_bytes_per_entry > 100.0 && f.weighted_bytes_per_entry < 10_000.0,
            "{f:?}"
        );
    }

    #[test]
    fn fills_and_cleans_a_real_server() {
        let url = std::env::var("TOKENCACHE_REDIS_URL")
            .expect("TOKENCACHE_REDIS_URL is not set: run the tests with scripts/redis.sh");
        let mut f = Filler::connect(&url).unwrap();
        let before = f.dbsize().unwrap();
        f.fill(2_500).unwrap();
        assert!(f.dbsize().unwrap() >= before + 2_500);
        assert_eq!(f.clean(2_500).unwrap(), 2_500);
    }
}
