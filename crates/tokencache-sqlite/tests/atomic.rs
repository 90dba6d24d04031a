//! `update` is atomic across processes: two processes on one file, each with 32 tasks,
//! increment one counter; no increment is lost. The counter is a list stored at one key
//! (a manifest entry's key list), one line per increment.
//!
//! The incrementing processes are this test binary run again with
//! `TOKENCACHE_SQLITE_ATOMIC_CHILD` set: the test runs the child role when it sees it.

use std::process::{Command, Stdio};
use std::sync::Arc;

use tokencache_core::{Cache, Cacheable, KeyManifestEntry, Update, Updated};
use tokencache_sqlite::SqliteCache;

const CHILD: &str = "TOKENCACHE_SQLITE_ATOMIC_CHILD";
const PATH: &str = "TOKENCACHE_SQLITE_ATOMIC_PATH";
const KEY: &str = "@@auth0spajs@@::counter";
const TASKS: usize = 32;
const PER_TASK: usize = 8;
const PROCESSES: usize = 2;

/// Adds the line `{tag}-{n}` to the list at [`KEY`], `n` being the count before.
async fn increment(cache: &SqliteCache, tag: String) -> Updated {
    cache
        .update(
            KEY,
            None,
            Box::new(move |current| {
                let mut m = match current {
                    Some(Cacheable::Manifest(m)) => m.clone(),
                    _ => KeyManifestEntry::default(),
                };
                m.keys.push(format!("{tag}-{}", m.keys.len()));
                Update::Put(Cacheable::Manifest(m))
            }),
        )
        .await
        .unwrap()
}

/// The child role: `TASKS` concurrent tasks increment `PER_TASK` times each.
fn run_child_if_asked() -> bool {
    let Some(tag) = std::env::var_os(CHILD) else {
        return false;
    };
    let tag = tag.into_string().unwrap();
    let path = std::env::var(PATH).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = Arc::new(
            SqliteCache::open(&path, Arc::new(tokencache_core::JsonCodec))
                .await
                .unwrap(),
        );
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (cache, tag) = (cache.clone(), format!("{tag}.{t}"));
                tokio::spawn(async move {
                    for _ in 0..PER_TASK {
                        assert!(matches!(
                            increment(&cache, tag.clone()).await,
                            Updated::Put(_)
                        ));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    true
}

#[test]
fn two_processes_lose_no_increment() {
    if run_child_if_asked() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atomic.db");
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "two_processes_lose_no_increment",
                    "--exact",
                    "--test-threads=1",
                ])
                .env(CHILD, format!("p{p}"))
                .env(PATH, &path)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a child process failed");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lines = rt.block_on(async {
        let cache = SqliteCache::open(&path, Arc::new(tokencache_core::JsonCodec))
            .await
            .unwrap();
        match cache.get(KEY).await.unwrap() {
            Some(Cacheable::Manifest(m)) => m.keys,
            other => panic!("the counter is missing: {other:?}"),
        }
    });
    let total = PROCESSES * TASKS * PER_TASK;
    assert_eq!(
        lines.len(),
        total,
        "every increment of both processes counts"
    );
    // Every line records the count it saw: 0, 1, 2, ... with none seen twice.
    for (n, line) in lines.iter().enumerate() {
        assert!(line.ends_with(&format!("-{n}")), "line {n} is {line}");
    }
    // Both processes and every task took part.
    for p in 0..PROCESSES {
        for t in 0..TASKS {
            let tag = format!("p{p}.{t}-");
            let mine = lines.iter().filter(|l| l.starts_with(&tag)).count();
            assert_eq!(mine, PER_TASK, "{tag}");
        }
    }
}
