//! The `tokencache` binary, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use tokencache_benches::Workload;

fn tokencache(args: &[&str]) -> Output {
    tokencache_env(args, &[])
}

/// Runs the binary with only the `TOKENCACHE_*` variables in `env`.
fn tokencache_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokencache"));
    cmd.args(args);
    for var in [
        "TOKENCACHE_KEY",
        "TOKENCACHE_KEY_ID",
        "TOKENCACHE_NEW_KEY",
        "TOKENCACHE_NEW_KEY_ID",
        "TOKENCACHE_CACHE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("the tokencache binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Tiny iteration counts: the numbers mean nothing, the shape of the report does.
const TINY: &[&str] = &[
    "--iterations",
    "30",
    "--warmup",
    "3",
    "--clear-iterations",
    "5",
    "--sizes",
    "10,100",
];

fn bench_json(extra: &[&str]) -> Value {
    let mut args = vec!["bench", "--json", "--quiet"];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    let out = tokencache(&args);
    assert!(out.status.success(), "bench failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)))
}

#[test]
fn bench_json_has_every_workload_with_positive_numbers() {
    let report = bench_json(&[]);
    let results = report["results"].as_array().expect("a results array");
    let expected: Vec<String> = Workload::standard_set(&[10, 100])
        .iter()
        .map(Workload::name)
        .collect();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected);
    for r in results {
        assert_eq!(r["backend"], "memory", "{r}");
        for field in ["ops_per_sec", "mean_ns", "p50_ns", "p99_ns"] {
            let v = r[field].as_f64().unwrap_or(-1.0);
            assert!(v > 0.0, "{field} of {} is {v}", r["workload"]);
        }
        assert!(r["p50_ns"].as_f64() <= r["p99_ns"].as_f64(), "{r}");
        assert!(r["iterations"].as_u64().unwrap() >= 5, "{r}");
        assert!(r["auth0_ns"].is_null(), "no baseline was asked for: {r}");
    }
}

#[test]
fn bench_prints_a_table() {
    let mut args = vec!["bench", "--quiet"];
    args.extend_from_slice(TINY);
    let out = tokencache(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for col in ["workload", "backend", "ops/s", "p50", "p99"] {
        assert!(header.contains(col), "{header}");
    }
    for w in Workload::standard_set(&[10, 100]) {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{} ", w.name())) && l.contains("memory")),
            "no row for {}: {text}",
            w.name()
        );
    }
    // No progress drawing when stderr is not a terminal.
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn unavailable_backends_are_clear_errors() {
    let out = tokencache(&[
        "bench",
        "--quiet",
        "--backend",
        "redis",
        "--redis-url",
        "redis://127.0.0.1:1/?ns=x",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));

    let out = tokencache(&["keys", "--cache", "sqlite:/nonexistent/dir/x.db"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no sqlite cache"), "{}", stderr(&out));

    let out = tokencache(&["keys", "--cache", "redis://127.0.0.1:1/"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("namespace"), "{}", stderr(&out));

    let out = tokencache(&["keys", "--cache", "floppy:/a"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown cache spec"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn memory_cache_starts_empty() {
    let out = tokencache(&["keys", "--cache", "memory"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    let key = "@@auth0spajs@@::c::https://api::openid";
    let out = tokencache(&["show", "--cache", "memory", key]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no value"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(key), "the key is not echoed");
}

/// The auth0-spa-js baseline directory: `TOKENCACHE_AUTH0_BASELINE`, or
/// `shared/baselines/auth0-spa-js` beside the workspace.
fn baseline_dir() -> PathBuf {
    std::env::var_os("TOKENCACHE_AUTH0_BASELINE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/baselines/auth0-spa-js")
        })
}

#[test]
fn bench_compares_with_auth0_spa_js() {
    let dir = baseline_dir();
    assert!(
        dir.join("bench.mjs").is_file(),
        "the auth0-spa-js baseline is missing at {} (set TOKENCACHE_AUTH0_BASELINE)",
        dir.display()
    );
    let dir = dir.to_str().unwrap();
    let report = bench_json(&[
        "--compare-auth0",
        dir,
        "--auth0-runs",
        "1",
        "--auth0-target-ms",
        "5",
    ]);
    let meta = report["auth0"]["meta"].as_array().expect("baseline meta");
    assert!(
        meta.iter()
            .any(|m| m.as_str().unwrap().contains("auth0-spa-js")),
        "{meta:?}"
    );
    for r in report["results"].as_array().unwrap() {
        let name = r["workload"].as_str().unwrap();
        if name.starts_with("clear") {
            assert!(r["speedup_vs_auth0"].is_null(), "{r}");
        } else {
            let (a, s) = (r["auth0_ns"].as_f64(), r["speedup_vs_auth0"].as_f64());
            assert!(
                a.is_some_and(|a| a > 0.0) && s.is_some_and(|s| s > 0.0),
                "{r}"
            );
        }
    }
}

// ---- SQLite files, written by the library and read by the binary -------------------------

mod sqlite {
    use std::path::Path;
    use std::sync::Arc;

    use tokencache_core::{CacheEntry, CacheManager, DecodedToken};
    use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
    use tokencache_sqlite::SqliteCache;

    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const NEW_KEY: &str = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
    const SECRETS: [&str; 4] = [
        "access-SECRET-1",
        "refresh-SECRET-1",
        "id-SECRET-1",
        "raw-SECRET-1",
    ];
    const ENTRY_KEY: &str = "@@auth0spajs@@::app::https://api.test::openid read";
    const ID_KEY: &str = "@@auth0spajs@@::app::@@user@@";

    /// A file holding two entries of client `app`, one of client `other`, and `app`'s
    /// id token, encrypted with `KEY` (id 1) for namespace `tokencache`.
    fn write_file(path: &Path) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let ring = KeyRing::new(DataKey::parse(1, KEY).unwrap());
            let codec = Arc::new(EncryptedCodec::new(ring, "tokencache"));
            let cache = SqliteCache::open(path, codec).await.unwrap();
            let m = CacheManager::new(Arc::new(cache)).unwrap();
            let mut claims = serde_json::Map::new();
            claims.insert("__raw".into(), "raw-SECRET-1".into());
            let decoded = DecodedToken {
                claims,
                ..Default::default()
            };
            m.set(
                CacheEntry::new(
                    "app",
                    "https://api.test",
                    "openid read",
                    "access-SECRET-1",
                    3600.0,
                )
                .with_refresh_token("refresh-SECRET-1")
                .with_id_token("id-SECRET-1", decoded.clone()),
            )
            .await
            .unwrap();
            m.set(CacheEntry::new(
                "app",
                "https://two.test",
                "openid",
                "at-2",
                3600.0,
            ))
            .await
            .unwrap();
            m.set(CacheEntry::new(
                "other",
                "https://api.test",
                "openid",
                "at-3",
                3600.0,
            ))
            .await
            .unwrap();
            m.set_id_token("app", "id-SECRET-1", decoded).await.unwrap();
        });
    }

    fn spec(path: &Path) -> String {
        format!("sqlite:{}", path.display())
    }

    fn keys(spec: &str, key: &str) -> Vec<String> {
        let out = tokencache_env(&["keys", "--cache", spec], &[("TOKENCACHE_KEY", key)]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().map(str::to_owned).collect()
    }

    #[test]
    fn keys_show_remove_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        write_file(&path);
        let spec = spec(&path);
        let env = [("TOKENCACHE_KEY", KEY)];

        let all = keys(&spec, KEY);
        assert_eq!(
            all,
            [
                ID_KEY,
                ENTRY_KEY,
                "@@auth0spajs@@::app::https://two.test::openid",
                "@@auth0spajs@@::other::https://api.test::openid",
            ]
        );

        // show: tokens redacted, the rest as stored.
        for key in [ENTRY_KEY, ID_KEY] {
            let out = tokencache_env(&["show", "--cache", &spec, key], &env);
            assert!(out.status.success(), "{}", stderr(&out));
            let text = stdout(&out);
            for secret in SECRETS {
                assert!(!text.contains(secret), "{secret} shown: {text}");
            }
            assert!(text.contains("<redacted>"), "{text}");
        }
        let out = tokencache_env(&["show", "--cache", &spec, ENTRY_KEY], &env);
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown["body"]["audience"], "https://api.test");
        assert_eq!(shown["body"]["access_token"], "<redacted>");
        assert!(shown["expiresAt"].as_i64().unwrap() > 1_700_000_000);

        // --reveal shows the stored value.
        let out = tokencache_env(&["show", "--reveal", "--cache", &spec, ENTRY_KEY], &env);
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown["body"]["access_token"], "access-SECRET-1");
        assert_eq!(shown["body"]["refresh_token"], "refresh-SECRET-1");

        // No key, or a wrong one: an error that shows nothing of the value.
        let out = tokencache_env(&["show", "--cache", &spec, ENTRY_KEY], &[]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("TOKENCACHE_KEY"), "{}", stderr(&out));
        let out = tokencache_env(
            &["show", "--reveal", "--cache", &spec, ENTRY_KEY],
            &[("TOKENCACHE_KEY", NEW_KEY)],
        );
        assert!(!out.status.success());
        assert!(stderr(&out).contains("integrity"), "{}", stderr(&out));
        assert!(!stdout(&out).contains("SECRET") && !stderr(&out).contains("SECRET"));

        // remove, then clear one client.
        let out = tokencache_env(
            &[
                "remove",
                "--cache",
                &spec,
                "@@auth0spajs@@::app::https://two.test::openid",
            ],
            &env,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            keys(&spec, KEY),
            [
                ID_KEY,
                ENTRY_KEY,
                "@@auth0spajs@@::other::https://api.test::openid"
            ]
        );
        let out = tokencache_env(&["clear", "--cache", &spec, "--client", "app"], &env);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            keys(&spec, KEY),
            ["@@auth0spajs@@::other::https://api.test::openid"]
        );
        let out = tokencache_env(&["clear", "--cache", &spec], &env);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(keys(&spec, KEY).is_empty());
    }

    #[test]
    fn migrate_copies_every_key_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        write_file(&a);
        let (sa, sb) = (spec(&a), spec(&b));
        let env = [("TOKENCACHE_KEY", KEY)];
        let out = tokencache_env(&["migrate", &sa, &sb], &env);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).starts_with("copied 4 keys"),
            "{}",
            stdout(&out)
        );
        assert_eq!(keys(&sb, KEY), keys(&sa, KEY));
        for key in keys(&sa, KEY) {
            let show = |s: &str| {
                stdout(&tokencache_env(
                    &["show", "--reveal", "--cache", s, &key],
                    &env,
                ))
            };
            assert_eq!(show(&sb), show(&sa), "{key}");
        }
    }

    #[test]
    fn rotate_key_re_encrypts_every_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        write_file(&path);
        let spec = spec(&path);
        let out = tokencache_env(
            &["rotate-key", "--cache", &spec],
            &[("TOKENCACHE_KEY", KEY), ("TOKENCACHE_NEW_KEY", NEW_KEY)],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).starts_with("re-encrypted 4 values under key id 2"),
            "{}",
            stdout(&out)
        );
        assert!(!stdout(&out).contains(NEW_KEY) && !stderr(&out).contains(NEW_KEY));

        // The new key (id 2) reads every value; the old one no longer does.
        let new = [("TOKENCACHE_KEY", NEW_KEY), ("TOKENCACHE_KEY_ID", "2")];
        let out = tokencache_env(&["show", "--reveal", "--cache", &spec, ENTRY_KEY], &new);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("access-SECRET-1"));
        let out = tokencache_env(
            &["show", "--cache", &spec, ENTRY_KEY],
            &[("TOKENCACHE_KEY", KEY)],
        );
        assert!(
            !out.status.success(),
            "the old key still reads: {}",
            stdout(&out)
        );

        let out = tokencache_env(&["rotate-key", "--cache", "memory"], &[]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("only an encrypted sqlite cache"),
            "{}",
            stderr(&out)
        );
    }

    #[test]
    fn bench_runs_on_sqlite() {
        let report = bench_json(&["--backend", "sqlite"]);
        let results = report["results"].as_array().unwrap();
        assert_eq!(results.len(), Workload::standard_set(&[10, 100]).len());
        for r in results {
            assert_eq!(r["backend"], "sqlite");
            assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
}

// ---- Redis: the server scripts/redis.sh starts ---------------------------------------------

#[test]
fn redis_keys_migrate_and_bench() {
    let url = std::env::var("TOKENCACHE_REDIS_URL")
        .expect("TOKENCACHE_REDIS_URL is not set: run the tests with scripts/redis.sh");
    let ns = format!("cli-test-{}", std::process::id());
    let spec = format!("{}/?ns={ns}", url.trim_end_matches('/'));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.db");
    let key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let env = [("TOKENCACHE_KEY", key)];
    // An SQLite file with one entry, migrated to Redis (encrypted there too: the key is set).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use std::sync::Arc;
        let ring =
            tokencache_crypto::KeyRing::new(tokencache_crypto::DataKey::parse(1, key).unwrap());
        let codec = Arc::new(tokencache_crypto::EncryptedCodec::new(ring, "tokencache"));
        let cache = tokencache_sqlite::SqliteCache::open(&file, codec)
            .await
            .unwrap();
        let m = tokencache_core::CacheManager::new(Arc::new(cache)).unwrap();
        m.set(tokencache_core::CacheEntry::new(
            "app",
            "https://api.test",
            "openid",
            "at-SECRET",
            60.0,
        ))
        .await
        .unwrap();
    });
    let out = tokencache_env(
        &["migrate", &format!("sqlite:{}", file.display()), &spec],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tokencache_env(&["keys", "--cache", &spec], &env);
    assert_eq!(
        stdout(&out),
        "@@auth0spajs@@::app::https://api.test::openid\n",
        "{}",
        stderr(&out)
    );
    let out = tokencache_env(
        &[
            "show",
            "--cache",
            &spec,
            "@@auth0spajs@@::app::https://api.test::openid",
        ],
        &env,
    );
    assert!(
        out.status.success() && !stdout(&out).contains("at-SECRET"),
        "{}",
        stdout(&out)
    );
    let out = tokencache_env(&["clear", "--cache", &spec], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&tokencache_env(&["keys", "--cache", &spec], &env)),
        ""
    );

    let report = bench_json(&["--backend", "redis", "--redis-url", &spec]);
    for r in report["results"].as_array().unwrap() {
        assert_eq!(r["backend"], "redis");
        assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0, "{r}");
    }
}
