//! The `tokencache` binary, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use tokencache_workloads::Workload;

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
    // Moka alone, timed in the same run: the memory backend's baselines.
    for field in ["insert_ns", "get_ns"] {
        let v = report["moka_floor"][field].as_f64().unwrap_or(-1.0);
        assert!(
            v > 0.0,
            "moka_floor.{field} is {v}: {}",
            report["moka_floor"]
        );
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
    assert!(
        text.lines()
            .any(|l| l.starts_with("moka alone: insert ") && l.contains(", get ")),
        "no moka floor line: {text}"
    );
    // No progress drawing when stderr is not a terminal.
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// The exit code of `o`.
fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

#[test]
fn failures_have_distinct_exit_codes() {
    let out = tokencache(&[
        "bench",
        "--quiet",
        "--backend",
        "redis",
        "--redis-url",
        "redis://127.0.0.1:1/?ns=x",
    ]);
    assert_eq!(code(&out), 4, "unavailable: {}", stderr(&out));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));

    let out = tokencache(&["keys", "sqlite:/nonexistent/dir/x.db"]);
    assert_eq!(code(&out), 3, "not found: {}", stderr(&out));
    assert!(stderr(&out).contains("no sqlite cache"), "{}", stderr(&out));

    let out = tokencache(&["keys", "--cache", "redis://127.0.0.1:1/"]);
    assert_eq!(code(&out), 2, "usage: {}", stderr(&out));
    assert!(stderr(&out).contains("namespace"), "{}", stderr(&out));

    let out = tokencache(&["keys", "floppy:/a"]);
    assert_eq!(code(&out), 2, "usage: {}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown cache location"),
        "{}",
        stderr(&out)
    );

    let out = tokencache(&["keys"]);
    assert_eq!(code(&out), 2, "no cache: {}", stderr(&out));
    assert!(
        stderr(&out).contains("TOKENCACHE_CACHE"),
        "{}",
        stderr(&out)
    );

    let out = tokencache(&["rotate-key", "memory"]);
    assert_eq!(code(&out), 6, "config: {}", stderr(&out));
}

#[test]
fn help_names_the_key_variables_and_the_exit_codes() {
    let out = tokencache(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for needle in [
        "TOKENCACHE_KEY ",
        "TOKENCACHE_KEY_ID",
        "TOKENCACHE_NEW_KEY",
        "TOKENCACHE_CACHE",
        "RUST_LOG",
        "-vv",
        "Exit status:",
        "3  not found",
        "4  unavailable",
        "5  integrity",
        "6  bad configuration",
        "redis+cluster://",
    ] {
        assert!(text.contains(needle), "{needle} not in --help:\n{text}");
    }
    let out = tokencache(&["migrate", "--help"]);
    for needle in [
        "--from-key-env",
        "--to-key-env",
        "--to-plaintext",
        "--from-plaintext",
    ] {
        assert!(stdout(&out).contains(needle), "{needle}: {}", stdout(&out));
    }
}

#[test]
fn verbose_logs_go_to_stderr() {
    let quiet = tokencache(&["keys", "memory"]);
    assert!(
        quiet.status.success() && stderr(&quiet).is_empty(),
        "{}",
        stderr(&quiet)
    );
    let loud = tokencache(&["-vv", "keys", "memory"]);
    assert!(loud.status.success(), "{}", stderr(&loud));
    assert!(stderr(&loud).contains("opening"), "{}", stderr(&loud));
    assert_eq!(stdout(&loud), "", "logs stay off stdout");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokencache"));
    let out = cmd
        .args(["keys", "memory"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("INFO"), "{}", stderr(&out));
}

#[test]
fn memory_cache_starts_empty() {
    let out = tokencache(&["keys", "--cache", "memory"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let out = tokencache(&["keys", "memory", "--json"]);
    assert_eq!(stdout(&out).trim(), "[]");

    let key = "@@auth0spajs@@::c::https://api::openid";
    for args in [["show", "memory", key], ["remove", "memory", key]] {
        let out = tokencache(&args);
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        assert!(stderr(&out).contains("no value"), "{}", stderr(&out));
        assert!(!stderr(&out).contains(key), "the key is not echoed");
    }
}

/// The repository's auth0-spa-js baseline: `bench --compare-auth0` without a DIR uses it.
fn baseline_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/auth0-spa-js")
}

#[test]
fn bench_compares_with_auth0_spa_js() {
    let dir = baseline_dir();
    assert!(
        dir.join("bench.mjs").is_file(),
        "the auth0-spa-js baseline is missing at {}",
        dir.display()
    );
    // Without a DIR: the tools/auth0-spa-js of the tree this binary was built from.
    let report = bench_json(&[
        "--compare-auth0",
        "--auth0-runs",
        "1",
        "--auth0-target-ms",
        "5",
    ]);
    let auth0 = &report["auth0"];
    assert_eq!(auth0["package"], "@auth0/auth0-spa-js", "{auth0}");
    assert!(
        auth0["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("2.")),
        "{auth0}"
    );
    for r in report["results"].as_array().unwrap() {
        let name = r["workload"].as_str().unwrap();
        let (a, s) = (r["auth0_ns"].as_f64(), r["speedup_vs_auth0"].as_f64());
        if name.starts_with("clear") && a.is_none() {
            assert!(s.is_none(), "{r}");
            continue;
        }
        assert!(
            a.is_some_and(|a| a > 0.0) && s.is_some_and(|s| s > 0.0),
            "{r}"
        );
    }
    // A directory without bench.mjs is a configuration error.
    let out = tokencache(&["bench", "--quiet", "--compare-auth0=/nonexistent"]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(stderr(&out).contains("bench.mjs"), "{}", stderr(&out));
}

// ---- SQLite files, written by the library and read by the binary -------------------------

mod sqlite {
    use std::path::Path;
    use std::sync::Arc;

    use tokencache::crypto::{DataKey, EncryptedCodec, KeyRing};
    use tokencache::sqlite::SqliteCache;
    use tokencache::{CacheEntry, CacheManager, DecodedToken};

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

    /// `verify` goes on past a value it cannot read, lists every one, and exits 5; the
    /// rotation reports them too and leaves them as they were.
    #[test]
    fn verify_and_rotate_key_list_every_unreadable_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        write_file(&path);
        let spec = spec(&path);
        let env = [("TOKENCACHE_KEY", KEY)];
        let out = tokencache_env(&["verify", &spec], &env);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(
            stdout(&out).starts_with("verified 4 values; 0 do not"),
            "{}",
            stdout(&out)
        );

        // Two values written under a key this ring does not hold (id 9).
        let stranger = [
            "@@auth0spajs@@::app::https://three.test::openid",
            "@@auth0spajs@@::zed::https://api.test::openid",
        ];
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ring = KeyRing::new(DataKey::parse(9, NEW_KEY).unwrap());
            let codec = Arc::new(EncryptedCodec::new(ring, "tokencache"));
            let cache = SqliteCache::open(&path, codec).await.unwrap();
            let m = CacheManager::new(Arc::new(cache)).unwrap();
            for key in stranger {
                let k = tokencache::CacheKey::from_key(key).unwrap();
                m.set(CacheEntry::new(
                    k.client_id(),
                    k.audience().unwrap(),
                    k.scope().unwrap(),
                    "at-SECRET-9",
                    3600.0,
                ))
                .await
                .unwrap();
            }
        });
        let out = tokencache_env(&["verify", &spec], &env);
        assert_eq!(code(&out), 5, "{}", stderr(&out));
        let text = stdout(&out);
        for key in stranger {
            assert!(
                text.contains(&format!("does not authenticate: {key}\n")),
                "{text}"
            );
        }
        assert!(
            text.contains("verified 6 values; 2 do not decode or authenticate"),
            "{text}"
        );
        assert!(!text.contains("SECRET") && !stderr(&out).contains("SECRET"));

        let out = tokencache_env(
            &["rotate-key", &spec],
            &[("TOKENCACHE_KEY", KEY), ("TOKENCACHE_NEW_KEY", NEW_KEY)],
        );
        assert_eq!(code(&out), 5, "{}", stderr(&out));
        assert!(
            stdout(&out).starts_with("re-encrypted 4 values"),
            "{}",
            stdout(&out)
        );
        for key in stranger {
            assert!(stderr(&out).contains(key), "{}", stderr(&out));
        }
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
        let out = tokencache_env(&["show", &spec, ENTRY_KEY, "--json"], &env);
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (&shown["key"], &shown["kind"]),
            (&Value::from(ENTRY_KEY), &Value::from("token entry"))
        );
        let value = &shown["value"];
        assert_eq!(value["body"]["audience"], "https://api.test");
        assert_eq!(value["body"]["access_token"], "<redacted>");
        assert!(value["expiresAt"].as_i64().unwrap() > 1_700_000_000);
        let text = stdout(&tokencache_env(&["show", &spec, ENTRY_KEY], &env));
        assert!(text.contains("audience:   https://api.test"), "{text}");
        assert!(
            text.contains("expires at: ") && text.contains("(unix seconds; in "),
            "{text}"
        );

        // --reveal shows the stored value.
        let out = tokencache_env(&["show", "--reveal", "--json", &spec, ENTRY_KEY], &env);
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown["value"]["body"]["access_token"], "access-SECRET-1");
        assert_eq!(shown["value"]["body"]["refresh_token"], "refresh-SECRET-1");

        // keys --json, with the cache positional.
        let out = tokencache_env(&["keys", &spec, "--json"], &env);
        let listed: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed, all);

        // No key, or a wrong one: an error that shows nothing of the value.
        let out = tokencache_env(&["show", "--cache", &spec, ENTRY_KEY], &[]);
        assert_eq!(code(&out), 6, "{}", stderr(&out));
        assert!(stderr(&out).contains("TOKENCACHE_KEY"), "{}", stderr(&out));
        let out = tokencache_env(
            &["show", "--reveal", "--cache", &spec, ENTRY_KEY],
            &[("TOKENCACHE_KEY", NEW_KEY)],
        );
        assert_eq!(code(&out), 5, "{}", stderr(&out));
        assert!(stderr(&out).contains("integrity"), "{}", stderr(&out));
        assert!(!stdout(&out).contains("SECRET") && !stderr(&out).contains("SECRET"));

        // remove --dry-run removes nothing; remove prints what it removed.
        let two = "@@auth0spajs@@::app::https://two.test::openid";
        let out = tokencache_env(&["remove", &spec, two, "--dry-run"], &env);
        assert_eq!(
            stdout(&out),
            format!("would remove {two}\n"),
            "{}",
            stderr(&out)
        );
        assert_eq!(keys(&spec, KEY).len(), 4);
        let out = tokencache_env(&["remove", "--cache", &spec, two], &env);
        assert_eq!(stdout(&out), format!("removed {two}\n"), "{}", stderr(&out));
        assert_eq!(
            keys(&spec, KEY),
            [
                ID_KEY,
                ENTRY_KEY,
                "@@auth0spajs@@::other::https://api.test::openid"
            ]
        );

        // clear --dry-run lists, clear removes and lists: one client, then all.
        let out = tokencache_env(&["clear", &spec, "--client", "app", "--dry-run"], &env);
        assert_eq!(
            stdout(&out),
            format!("would remove {ID_KEY}\nwould remove {ENTRY_KEY}\nwould remove 2 keys\n"),
            "{}",
            stderr(&out)
        );
        assert_eq!(keys(&spec, KEY).len(), 3);
        let out = tokencache_env(&["clear", "--cache", &spec, "--client", "app"], &env);
        assert_eq!(
            stdout(&out),
            format!("removed {ID_KEY}\nremoved {ENTRY_KEY}\nremoved 2 keys\n"),
            "{}",
            stderr(&out)
        );
        assert_eq!(
            keys(&spec, KEY),
            ["@@auth0spajs@@::other::https://api.test::openid"]
        );
        let out = tokencache_env(&["clear", &spec], &env);
        assert!(
            stdout(&out).ends_with("removed 1 keys\n"),
            "{}",
            stdout(&out)
        );
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
            stdout(&out).starts_with("copied 4 values; skipped none"),
            "{}",
            stdout(&out)
        );
        assert_eq!(keys(&sb, KEY), keys(&sa, KEY));
        for key in keys(&sa, KEY) {
            // The JSON form: every field as stored, and no time left until expiry (which
            // the text form counts from the second it runs in).
            let show = |s: &str| {
                stdout(&tokencache_env(
                    &["show", "--json", "--reveal", "--cache", s, &key],
                    &env,
                ))
            };
            let shown = show(&sa);
            assert!(shown.contains("\"value\""), "{shown}");
            assert_eq!(show(&sb), shown, "{key}");
        }
    }

    #[test]
    fn migrate_changes_the_key_and_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        write_file(&a);
        let (sa, sb) = (spec(&a), spec(&b));
        // A wrong source key: nothing is created.
        let env = [("TOKENCACHE_KEY", NEW_KEY), ("OTHER_KEY", KEY)];
        let out = tokencache_env(&["migrate", &sa, &sb, "--to-key-env", "OTHER_KEY"], &env);
        assert_eq!(code(&out), 5, "{}", stderr(&out));
        assert!(!b.exists(), "a failed migration left {}", b.display());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );

        // From KEY to NEW_KEY (id from NEW_VAR_ID): only the new key reads the copy.
        let env = [
            ("TOKENCACHE_KEY", KEY),
            ("NEW_VAR", NEW_KEY),
            ("NEW_VAR_ID", "7"),
        ];
        let out = tokencache_env(&["migrate", &sa, &sb, "--to-key-env", "NEW_VAR"], &env);
        assert!(out.status.success(), "{}", stderr(&out));
        let new = [("TOKENCACHE_KEY", NEW_KEY), ("TOKENCACHE_KEY_ID", "7")];
        let out = tokencache_env(&["show", "--reveal", &sb, ENTRY_KEY], &new);
        assert!(stdout(&out).contains("access-SECRET-1"), "{}", stderr(&out));
        let out = tokencache_env(&["show", &sb, ENTRY_KEY], &[("TOKENCACHE_KEY", KEY)]);
        assert_ne!(code(&out), 0, "the old key reads the copy");

        // Into an existing destination, with a wrong source key: the destination is unchanged.
        let before = keys(&sb, NEW_KEY);
        let env = [("TOKENCACHE_KEY", NEW_KEY), ("DST", NEW_KEY)];
        let out = tokencache_env(&["migrate", &sa, &sb, "--to-key-env", "DST"], &env);
        assert_eq!(code(&out), 5, "{}", stderr(&out));
        let out = tokencache_env(&["keys", &sb], &new);
        assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), before);
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
            tokencache::crypto::KeyRing::new(tokencache::crypto::DataKey::parse(1, key).unwrap());
        let codec = Arc::new(tokencache::crypto::EncryptedCodec::new(ring, "tokencache"));
        let cache = tokencache::sqlite::SqliteCache::open(&file, codec)
            .await
            .unwrap();
        let m = tokencache::CacheManager::new(Arc::new(cache)).unwrap();
        m.set(tokencache::CacheEntry::new(
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
    // Plaintext Redis (another namespace) -> a new encrypted SQLite file.
    let plain = format!("{}/?ns={ns}-plain", url.trim_end_matches('/'));
    let sqlite = format!("sqlite:{}", file.display());
    let out = tokencache_env(&["migrate", &sqlite, &plain, "--to-plaintext"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let entry = "@@auth0spajs@@::app::https://api.test::openid";
    let out = tokencache_env(
        &["show", &plain, entry, "--plaintext", "--json", "--reveal"],
        &[],
    );
    let shown: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)));
    assert_eq!(shown["value"]["body"]["access_token"], "at-SECRET");
    let copy = format!("sqlite:{}", dir.path().join("copy.db").display());
    let out = tokencache_env(&["migrate", &plain, &copy, "--from-plaintext"], &env);
    assert!(
        stdout(&out).starts_with("copied 1 values"),
        "{}",
        stderr(&out)
    );
    let out = tokencache_env(&["show", &copy, entry, "--json", "--reveal"], &env);
    let shown: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)));
    assert_eq!(shown["value"]["body"]["access_token"], "at-SECRET");
    let out = tokencache_env(&["show", &copy, entry], &[]);
    assert_eq!(
        code(&out),
        6,
        "encrypted: no key, no value: {}",
        stderr(&out)
    );
    let out = tokencache_env(&["clear", &plain, "--plaintext"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The cluster form of a location.
    let nodes = std::env::var("TOKENCACHE_REDIS_CLUSTER_URLS")
        .expect("TOKENCACHE_REDIS_CLUSTER_URLS is not set: run the tests with scripts/redis.sh");
    let hosts: Vec<&str> = nodes
        .split(',')
        .map(|u| u.trim_start_matches("redis://").trim_end_matches('/'))
        .collect();
    let cluster = format!("redis+cluster://{}/?ns={ns}", hosts.join(","));
    let out = tokencache_env(&["migrate", &sqlite, &cluster], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tokencache_env(&["keys", &cluster], &env);
    assert_eq!(stdout(&out), format!("{entry}\n"), "{}", stderr(&out));
    let out = tokencache_env(&["clear", &cluster], &env);
    assert!(
        stdout(&out).ends_with("removed 1 keys\n"),
        "{}",
        stderr(&out)
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
