//! Several real processes on one file: concurrent writers lose nothing and see no
//! SQLITE_BUSY; writers killed with SIGKILL leave an intact file holding every
//! acknowledged write. Each writer process runs several tasks on one cache, so that its
//! writes are committed in groups (group commit): the kill test checks that groups of
//! more than one write were acknowledged.
//!
//! The writer processes are this test binary run again with `TOKENCACHE_SQLITE_CHILD`
//! set: the test that spawns them runs the writer role instead when it sees the variable.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokencache_core::{Cache, CacheEntry, Cacheable, EntryBody, WrappedCacheEntry};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

const CHILD: &str = "TOKENCACHE_SQLITE_CHILD";
const PATH: &str = "TOKENCACHE_SQLITE_CHILD_PATH";
const PREFIX: &str = "TOKENCACHE_SQLITE_CHILD_PREFIX";
const COUNT: &str = "TOKENCACHE_SQLITE_CHILD_COUNT";
const TASKS: &str = "TOKENCACHE_SQLITE_CHILD_TASKS";

fn codec() -> Arc<EncryptedCodec> {
    Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [0x11; 32])),
        "processes",
    ))
}

fn value(key: &str) -> Cacheable {
    let e = CacheEntry::new("client", "https://api", "read", format!("at-{key}"), 3600.0)
        .with_refresh_token(format!("rt-{key}"));
    WrappedCacheEntry::new(EntryBody::from(e), 1_700_000_000).into()
}

/// The writer role: `TASKS` tasks write `COUNT` entries `PREFIX<task>-<n>` between them,
/// each printing `ACK <key>` after its `set` returned, and `BATCH <n>` whenever the
/// largest group of writes one transaction committed grew to `n`; then `DONE`. Any error
/// panics, so the process fails.
fn run_child_if_asked() -> bool {
    if std::env::var_os(CHILD).is_none() {
        return false;
    }
    let path = std::env::var(PATH).unwrap();
    let prefix = std::env::var(PREFIX).unwrap();
    let count: usize = std::env::var(COUNT).unwrap().parse().unwrap();
    let tasks: usize = std::env::var(TASKS).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = Arc::new(SqliteCache::open(&path, codec()).await.unwrap());
        // libtest has printed "test <name> ... " without a newline: end that line.
        writeln!(std::io::stdout().lock()).unwrap();
        let largest = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..tasks)
            .map(|t| {
                let (cache, prefix, largest) = (cache.clone(), prefix.clone(), largest.clone());
                tokio::spawn(async move {
                    for n in (t..count).step_by(tasks) {
                        let key = format!("{prefix}{t}-{n:06}");
                        if let Err(e) = cache.set(&key, value(&key)).await {
                            panic!(
                                "set failed: {e} (kind {:?}, temporary {})",
                                e.kind(),
                                e.is_temporary()
                            );
                        }
                        let batch = cache.stats().largest_batch;
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {key}").unwrap();
                        if largest.fetch_max(batch, Ordering::Relaxed) < batch {
                            writeln!(out, "BATCH {batch}").unwrap();
                        }
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        writeln!(std::io::stdout().lock(), "DONE").unwrap();
    });
    true
}

fn spawn_writer(test_name: &str, path: &Path, prefix: &str, count: usize, tasks: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "writer")
        .env(PATH, path)
        .env(PREFIX, prefix)
        .env(COUNT, count.to_string())
        .env(TASKS, tasks.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The largest group of writes one transaction committed, by the `BATCH` lines.
fn largest_batch(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("BATCH ")?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Every `ACK` key in `lines`.
fn acks(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("ACK ").map(str::to_owned))
        .collect()
}

fn integrity_check(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    let result: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(result, vec!["ok"]);
}

/// Checks that every key in `keys` holds its value, by a fresh cache on `path`.
fn assert_all_present(path: &Path, keys: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = SqliteCache::open(path, codec()).await.unwrap();
        let stored = cache.all_keys().await.unwrap().unwrap();
        let stored: std::collections::HashSet<&str> = stored.iter().collect();
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| !stored.contains(k.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged keys lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        // Decrypt a sample (every key would make the crash test slow in debug builds).
        for key in keys.iter().step_by(keys.len().div_ceil(200).max(1)) {
            assert_eq!(cache.get(key).await.unwrap(), Some(value(key)), "{key}");
        }
        if let Some(last) = keys.last() {
            assert_eq!(cache.get(last).await.unwrap(), Some(value(last)));
        }
    });
}

#[test]
fn two_processes_write_10000_entries_each() {
    if run_child_if_asked() {
        return;
    }
    const N: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let start = Instant::now();
    let children: Vec<Child> = ["a-", "b-"]
        .iter()
        .map(|p| spawn_writer("two_processes_write_10000_entries_each", &path, p, N, 4))
        .collect();
    let mut all = Vec::new();
    for mut child in children {
        let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .collect::<Result<_, _>>()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "writer failed: {status}");
        assert_eq!(lines.iter().filter(|l| *l == "DONE").count(), 1);
        let keys = acks(&lines);
        assert_eq!(keys.len(), N);
        all.extend(keys);
    }
    eprintln!("2 x {N} writes in {:?}", start.elapsed());
    integrity_check(&path);
    assert_all_present(&path, &all);
    let c = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = c
        .query_row("SELECT count(*) FROM tokencache_entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2 * N as i64);
}

#[test]
fn writers_killed_mid_stream_lose_no_acknowledged_write() {
    if run_child_if_asked() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut acknowledged = Vec::new();
    let mut largest = 0;
    for round in 0..20usize {
        let mut child = spawn_writer(
            "writers_killed_mid_stream_lose_no_acknowledged_write",
            &path,
            &format!("r{round:02}-"),
            1_000_000,
            8,
        );
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // Let it acknowledge a varying number of writes, then kill it (SIGKILL) while it
        // is in the middle of the next ones.
        let wanted = 3 + (round * 37) % 120;
        let mut lines = Vec::new();
        while acks(&lines).len() < wanted {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "writer exited early"
            );
            lines.push(line.trim_end().to_owned());
        }
        std::thread::sleep(Duration::from_micros((round as u64 * 1_733) % 5_000));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed");
        // Lines still in the pipe were acknowledged before the kill too.
        lines.extend(stdout.lines().map(Result::unwrap));
        assert!(!lines.iter().any(|l| l == "DONE"));
        let keys = acks(&lines);
        assert!(keys.len() >= wanted);
        acknowledged.extend(keys);
        largest = largest.max(largest_batch(&lines));

        integrity_check(&path);
        assert_all_present(&path, &acknowledged);
    }
    eprintln!(
        "{} acknowledged writes survived 20 kills; up to {largest} writes per transaction",
        acknowledged.len()
    );
    assert!(
        largest > 1,
        "the writers' sets were committed one per transaction: group commit untested"
    );
}
