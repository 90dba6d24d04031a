//! A redis-server killed (SIGKILL) and restarted in the middle of a load of concurrent
//! manager operations: errors only while it is down, recovery within 2 s of its return,
//! no operation longer than its timeouts allow, and no wrong value at any point.
//!
//! The test starts its own redis-server child (append-only file, fsync always, so that
//! acknowledged writes survive the kill) on a free loopback port. The binary is
//! `$TOKENCACHE_REDIS_SERVER` (set by scripts/redis.sh) or `redis-server` on the PATH.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Clock, ErrorKind, GetOptions, ManualClock,
};
use tokencache_redis::RedisCache;
use tokio::process::{Child, Command};

const TASKS: usize = 16;
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

fn redis_server_binary() -> String {
    let bin = std::env::var("TOKENCACHE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    match std::process::Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        _ => panic!(
            "no redis-server binary at {bin:?}: run the tests under scripts/redis.sh \
             (which installs redis-server and sets TOKENCACHE_REDIS_SERVER)"
        ),
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

async fn start_server(bin: &str, port: u16, dir: &Path) -> Child {
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--daemonize", "no", "--logfile", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn redis-server");
    // Ready when it answers PING (the AOF is loaded before that).
    let client =
        tokencache_redis::redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await {
            let pong: Result<String, _> = tokencache_redis::redis::cmd("PING")
                .query_async(&mut c)
                .await;
            if pong.is_ok() {
                return child;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug)]
struct Op {
    task: usize,
    start: Instant,
    end: Instant,
    /// `None` when it succeeded, else the error kind and whether it was temporary.
    error: Option<(ErrorKind, bool)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_under_load() {
    let bin = redis_server_binary();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = TempDir(
        std::env::temp_dir().join(format!("tokencache-fault-{}-{nanos}", std::process::id())),
    );
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let port = free_port();
    let mut server = start_server(&bin, port, &dir.0).await;

    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(tokencache_core::SystemClock.now_ms()));
    let cache = RedisCache::builder("fault")
        .clock(clock.clone())
        .connect_timeout(COMMAND_TIMEOUT)
        .command_timeout(COMMAND_TIMEOUT)
        .connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .expect("connect");
    let cache = Arc::new(cache);
    let manager = Arc::new(
        CacheManager::builder(cache.clone())
            .clock(clock)
            .build()
            .expect("manager"),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let manager = manager.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let client = format!("client-{task}");
            let key = CacheKey::new(client.clone(), Some("api"), Some("read"));
            // The value last acknowledged, and those written since whose write failed
            // (applied or not: a get may return any of them).
            let mut acked: Option<String> = None;
            let mut maybe: Vec<String> = Vec::new();
            let mut ops = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let start = Instant::now();
                let error = if n % 2 == 1 {
                    let at = format!("at-{task}-{n}");
                    let r = manager
                        .set(CacheEntry::new(
                            client.clone(),
                            "api",
                            "read",
                            at.clone(),
                            3600.0,
                        ))
                        .await;
                    match r {
                        Ok(()) => {
                            acked = Some(at);
                            maybe.clear();
                            None
                        }
                        Err(e) => {
                            maybe.push(at);
                            Some((e.kind(), e.is_temporary()))
                        }
                    }
                } else {
                    match manager.get(&key, GetOptions::default()).await {
                        Ok(found) => {
                            let got = found.and_then(|b| b.access_token.clone());
                            let allowed = got.is_none() && acked.is_none()
                                || got.as_ref().is_some_and(|v| {
                                    acked.as_ref() == Some(v) || maybe.contains(v)
                                });
                            assert!(
                                allowed,
                                "task {task}: get returned {got:?}; last acknowledged {acked:?}, \
                                 unacknowledged since {maybe:?}"
                            );
                            None
                        }
                        Err(e) => Some((e.kind(), e.is_temporary())),
                    }
                };
                ops.push(Op {
                    task,
                    start,
                    end: Instant::now(),
                    error,
                });
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            ops
        }));
    }

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let killed = Instant::now();
    server.start_kill().expect("kill redis-server");
    server.wait().await.expect("wait for redis-server");
    // While it is down, each cache call fails within its timeout: never a hang.
    let down_until = Instant::now() + Duration::from_millis(1500);
    let mut direct_calls = 0;
    while Instant::now() < down_until {
        let t = Instant::now();
        let r = cache.get("@@auth0spajs@@::client-0::api::read").await;
        let took = t.elapsed();
        let e = r.expect_err("a get while the server is down");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(
            took <= COMMAND_TIMEOUT + Duration::from_millis(250),
            "a get took {took:?}"
        );
        direct_calls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(direct_calls > 5);
    let mut server = start_server(&bin, port, &dir.0).await;
    let up = Instant::now();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut ops = Vec::new();
    for t in tasks {
        ops.extend(t.await.expect("a load task panicked"));
    }
    server.start_kill().expect("stop redis-server");
    let _ = server.wait().await;

    let failed: Vec<&Op> = ops.iter().filter(|o| o.error.is_some()).collect();
    let last_failure_after_up = failed
        .iter()
        .filter(|o| o.start >= up)
        .map(|o| o.start - up)
        .max();
    let first_success_after_up = ops
        .iter()
        .filter(|o| o.error.is_none() && o.start >= up)
        .map(|o| o.end - up)
        .min();
    let longest = ops
        .iter()
        .map(|o| o.end - o.start)
        .max()
        .unwrap_or_default();
    println!(
        "{} operations, {} failed; after the restart: first success at {:?}, last failure \
         started at {:?}; longest operation {:?}",
        ops.len(),
        failed.len(),
        first_success_after_up,
        last_failure_after_up,
        longest
    );

    assert!(
        !failed.is_empty(),
        "the outage caused no error: the test did not test it"
    );
    for o in &failed {
        let (kind, temporary) = o.error.unwrap();
        assert_eq!(kind, ErrorKind::Unavailable, "{o:?}");
        assert!(temporary, "{o:?}");
        assert!(
            o.end > killed,
            "an error before the server was killed: {o:?}"
        );
        assert!(
            o.start < up + Duration::from_secs(2),
            "an error more than 2 s after the server came back: {o:?}"
        );
    }
    // Never a hang: each cache call is bounded (checked above); the manager serializes
    // its writes, so a write may also wait for the failing writes queued before it.
    assert!(
        longest < Duration::from_secs(5),
        "an operation took {longest:?}"
    );
    for task in 0..TASKS {
        let recovered = ops
            .iter()
            .filter(|o| o.task == task && o.start >= up + Duration::from_secs(2))
            .filter(|o| o.error.is_none())
            .count();
        assert!(
            recovered > 0,
            "task {task} never succeeded after the restart"
        );
    }
}
