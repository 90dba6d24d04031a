//! The many-process refresh tests of every shared backend: a stampede (many tasks in
//! several processes refresh one token family at once, round after round) and a holder
//! killed with SIGKILL while the provider has its exchange, both against a [`MockIdp`].
//!
//! The processes are the backend's own test binary run again: the test that spawns them
//! calls [`child_role`] first, which runs the child's part (and returns `true`) when the
//! environment says this process is a child. `open` makes the process's manager over the
//! shared store from a location string (an SQLite path, a Redis URL and namespace) that
//! the backend's test chooses.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokencache_core::{
    CacheEntry, CacheKey, CacheManager, GetOptions, RefreshOptions, RefreshPolicy,
};

use crate::idp::{IdpClient, MockIdp, Stats};

const ROLE: &str = "TOKENCACHE_STAMPEDE_ROLE";
const LOCATION: &str = "TOKENCACHE_STAMPEDE_LOCATION";
const IDP: &str = "TOKENCACHE_STAMPEDE_IDP";
const START_MS: &str = "TOKENCACHE_STAMPEDE_START_MS";
const TASKS: &str = "TOKENCACHE_STAMPEDE_TASKS";
const ROUNDS: &str = "TOKENCACHE_STAMPEDE_ROUNDS";
const ROUND_MS: &str = "TOKENCACHE_STAMPEDE_ROUND_MS";

/// The token family every process refreshes.
pub fn family_key() -> CacheKey {
    CacheKey::new("app", Some("https://api"), Some("openid read"))
}

/// The refresh policy of the killed-holder test: a 2 s lease.
pub fn short_lease() -> RefreshPolicy {
    RefreshPolicy::default()
        .refresh_timeout(Duration::from_millis(1_500))
        .lease(Duration::from_millis(2_000))
        .wait(Duration::from_millis(8_000))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Runs `fut` to completion on a new multi-thread runtime (the parent's side of a test:
/// a child builds its own, so the test functions are plain `#[test]`s).
pub fn block_on<T>(fut: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

/// In a child process: runs its part and returns `true`; elsewhere returns `false`.
/// `open(location, policy)` makes the manager over the shared store.
pub fn child_role<F, Fut>(open: F) -> bool
where
    F: Fn(String, RefreshPolicy) -> Fut,
    Fut: Future<Output = CacheManager>,
{
    let Ok(role) = std::env::var(ROLE) else {
        return false;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let idp = IdpClient::new(&env(IDP));
    let mut out = std::io::stdout().lock();
    // libtest printed "test <name> ... " without a newline: end that line.
    writeln!(out).unwrap();
    runtime.block_on(async {
        match role.as_str() {
            "stampede" => {
                let manager = Arc::new(open(env(LOCATION), RefreshPolicy::default()).await);
                let tasks: usize = env(TASKS).parse().unwrap();
                let rounds: u64 = env(ROUNDS).parse().unwrap();
                let round_ms: u64 = env(ROUND_MS).parse().unwrap();
                let start: u64 = env(START_MS).parse().unwrap();
                for round in 0..rounds {
                    let at = start + round * round_ms;
                    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
                    let calls: Vec<_> = (0..tasks)
                        .map(|_| {
                            let (m, idp) = (manager.clone(), idp.clone());
                            tokio::spawn(async move {
                                m.get_or_refresh(&family_key(), RefreshOptions::default(), |req| {
                                    let idp = idp.clone();
                                    async move { idp.refresh(req).await }
                                })
                                .await
                            })
                        })
                        .collect();
                    for call in calls {
                        match call.await.unwrap() {
                            Ok(body) => writeln!(
                                out,
                                "ROUND {round} AT {}",
                                body.access_token.as_deref().unwrap_or("")
                            )
                            .unwrap(),
                            Err(e) => writeln!(out, "ROUND {round} ERROR {}", e.kind()).unwrap(),
                        }
                    }
                    out.flush().unwrap();
                }
            }
            "holder" => {
                let manager = open(env(LOCATION), short_lease()).await;
                writeln!(out, "READY").unwrap();
                out.flush().unwrap();
                // The seeded access token expired "now": a 60 s leeway (auth0-spa-js's
                // default) makes it due at once.
                let opts = RefreshOptions::default().get(GetOptions::default().leeway(60));
                match manager
                    .get_or_refresh(&family_key(), opts, |req| {
                        let idp = idp.clone();
                        async move { idp.refresh(req).await }
                    })
                    .await
                {
                    Ok(body) => {
                        writeln!(out, "AT {}", body.access_token.as_deref().unwrap_or("")).unwrap()
                    }
                    Err(e) => writeln!(out, "ERROR {}", e.kind()).unwrap(),
                }
                out.flush().unwrap();
            }
            other => panic!("unknown role {other}"),
        }
    });
    true
}

fn spawn(
    test_name: &str,
    role: &str,
    location: &str,
    idp: &MockIdp,
    extra: &[(&str, String)],
) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(LOCATION, location)
        .env(IDP, idp.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The lines a child printed, once it exited successfully (blocking).
fn output_of(mut child: Child) -> Vec<String> {
    let lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(child.wait().unwrap().success(), "a child process failed");
    lines
}

/// Stores the family's first tokens: an access token that has already expired, and the
/// first refresh token of a new family at `idp`.
async fn seed(manager: &CacheManager, idp: &MockIdp) {
    let rt = idp.login();
    manager
        .set(
            CacheEntry::new("app", "https://api", "openid read", "at-seed", 0.0)
                .with_refresh_token(rt),
        )
        .await
        .unwrap();
}

/// What a stampede saw.
#[derive(Debug)]
pub struct StampedeOutcome {
    /// The provider's counters at the end.
    pub stats: Stats,
    /// The distinct access tokens the callers got, per round.
    pub tokens_per_round: BTreeMap<u64, HashSet<String>>,
    /// Calls that failed, with their error kinds.
    pub errors: Vec<String>,
    /// Calls that answered.
    pub answers: usize,
}

/// Runs `processes` child processes of `tasks` tasks each, for `rounds` rounds of
/// `round_ms` (longer than the provider's 1 s access-token lifetime, so each round finds
/// the access token expired), all calling `get_or_refresh` on the shared store at once.
pub async fn stampede<F, Fut>(
    test_name: &str,
    location: &str,
    processes: usize,
    tasks: usize,
    rounds: u64,
    open: F,
) -> StampedeOutcome
where
    F: Fn(String, RefreshPolicy) -> Fut,
    Fut: Future<Output = CacheManager>,
{
    let idp = MockIdp::start(1, Duration::ZERO).unwrap();
    seed(
        &open(location.to_owned(), RefreshPolicy::default()).await,
        &idp,
    )
    .await;
    // A round's token (1 s, compared in whole seconds) is expired 2 s after it was
    // written at the latest; the rest is room for a slow refresh on a loaded machine.
    let round_ms = 3_500u64;
    // Every process has started (and opened the store) before the first round.
    let start = now_ms() + 3_000;
    let children: Vec<Child> = (0..processes)
        .map(|_| {
            spawn(
                test_name,
                "stampede",
                location,
                &idp,
                &[
                    (START_MS, start.to_string()),
                    (TASKS, tasks.to_string()),
                    (ROUNDS, rounds.to_string()),
                    (ROUND_MS, round_ms.to_string()),
                ],
            )
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children.into_iter().map(output_of).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut outcome = StampedeOutcome {
        stats: idp.stats(),
        tokens_per_round: BTreeMap::new(),
        errors: Vec::new(),
        answers: 0,
    };
    for line in outputs.iter().flatten() {
        let Some(rest) = line.strip_prefix("ROUND ") else {
            continue;
        };
        let mut parts = rest.splitn(3, ' ');
        let round: u64 = parts.next().unwrap().parse().unwrap();
        match (parts.next(), parts.next()) {
            (Some("AT"), Some(at)) => {
                outcome.answers += 1;
                outcome
                    .tokens_per_round
                    .entry(round)
                    .or_default()
                    .insert(at.to_owned());
            }
            (_, rest) => outcome.errors.push(rest.unwrap_or_default().to_owned()),
        }
    }
    outcome
}

/// What the killed-holder test saw.
#[derive(Debug)]
pub struct KilledHolderOutcome {
    /// The provider's counters at the end.
    pub stats: Stats,
    /// What the second process answered (`AT ...` or `ERROR kind`).
    pub second: String,
}

/// A holder takes the lease and calls the provider, which performs the exchange and then
/// hangs; the holder is killed with SIGKILL. A second process then refreshes after the
/// lease ended, with the same refresh token, within the provider's 5 s reuse interval.
pub async fn killed_holder<F, Fut>(test_name: &str, location: &str, open: F) -> KilledHolderOutcome
where
    F: Fn(String, RefreshPolicy) -> Fut,
    Fut: Future<Output = CacheManager>,
{
    let idp = MockIdp::start(3_600, Duration::from_secs(5)).unwrap();
    seed(&open(location.to_owned(), short_lease()).await, &idp).await;
    idp.hang_after(Duration::from_secs(30));
    let mut holder = spawn(test_name, "holder", location, &idp, &[]);
    let mut waited = 0;
    while idp.stats().calls == 0 {
        assert!(waited < 20_000, "the holder never called the provider");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 10;
    }
    holder.kill().unwrap(); // SIGKILL on unix
    holder.wait().unwrap();
    idp.hang_after(Duration::ZERO);
    let second = spawn(test_name, "holder", location, &idp, &[]);
    let lines = tokio::task::spawn_blocking(move || output_of(second))
        .await
        .unwrap();
    let second = lines
        .into_iter()
        .find(|l| l.starts_with("AT ") || l.starts_with("ERROR "))
        .unwrap_or_default();
    KilledHolderOutcome {
        stats: idp.stats(),
        second,
    }
}

/// The assertions every backend makes of a stampede of `rounds` rounds: every call
/// answered with the one access token of its round, and the provider was called exactly
/// once per new token (once per expiry), with no reuse detected. A round normally finds
/// the last token expired; on a machine so loaded that a refresh ended late, a round may
/// still find it valid and hand it out again without a call, which the count allows for
/// (at least `rounds - 2` refreshes are required).
pub fn assert_one_refresh_per_round(outcome: &StampedeOutcome, rounds: u64, calls: usize) {
    assert!(
        outcome.errors.is_empty(),
        "failed calls: {:?}",
        outcome.errors
    );
    assert_eq!(outcome.answers, calls, "every call answered");
    assert_eq!(outcome.stats.reuse_detections, 0, "{:?}", outcome.stats);
    assert_eq!(outcome.tokens_per_round.len() as u64, rounds);
    let mut distinct = HashSet::new();
    for (round, tokens) in &outcome.tokens_per_round {
        assert_eq!(tokens.len(), 1, "round {round}: {tokens:?}");
        assert!(
            !tokens.contains("at-seed"),
            "round {round} got the expired token"
        );
        distinct.extend(tokens.iter().cloned());
    }
    assert_eq!(
        outcome.stats.calls,
        distinct.len() as u64,
        "one refresh per new token: {:?}",
        outcome.stats
    );
    assert_eq!(outcome.stats.successes, outcome.stats.calls);
    assert!(
        outcome.stats.calls + 2 >= rounds,
        "too few expiries to show anything: {:?}",
        outcome.stats
    );
}

/// The assertions every backend makes of the killed-holder test.
pub fn assert_the_next_holder_refreshed(outcome: &KilledHolderOutcome) {
    assert!(outcome.second.starts_with("AT at-"), "{}", outcome.second);
    assert_eq!(outcome.stats.reuse_detections, 0, "{:?}", outcome.stats);
    assert_eq!(outcome.stats.successes, 2, "{:?}", outcome.stats);
}
