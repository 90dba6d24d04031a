//! Every command of the README's "The `tokencache` command" section, run as written
//! against a temporary directory (for `sqlite:` files) and the Redis server of
//! `scripts/redis.sh` (TOKENCACHE_REDIS_URL), with `tokencache` and
//! `cargo run --release -p tokencache-cli --` standing for the binary under test.
//!
//! Two adjustments keep it a test: `bench` commands get small iteration counts (the
//! numbers mean nothing here, the command must work), and the Redis namespace gets this
//! process's id. Without TOKENCACHE_REDIS_URL the commands that name Redis are left out
//! (said on stderr) and the others still run.

use std::path::Path;
use std::process::{Command, Output};

const SECTION: &str = "## The `tokencache` command";
const README_REDIS: &str = "redis://127.0.0.1:6379";
const QUICK_BENCH: &str = " --iterations 30 --warmup 3 --clear-iterations 5 --sizes 10,100 \
     --max-time-ms 200 --auth0-runs 1 --auth0-target-ms 5 --quiet";

/// The commands of the section's one `sh` block: comments dropped, continued lines joined.
fn commands(readme: &str) -> Vec<String> {
    let section = readme
        .split(SECTION)
        .nth(1)
        .expect("the README has the section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut blocks = section.split("```sh\n").skip(1);
    let block = blocks.next().expect("one sh block in the section");
    assert!(blocks.next().is_none(), "one sh block only");
    let block = block.split("```").next().unwrap_or(block);
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let line = strip_comment(line);
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line.trim_end());
        let command = std::mem::take(&mut pending).trim().to_owned();
        if !command.is_empty() {
            out.push(command);
        }
    }
    out
}

/// `line` without a trailing `# comment` (a `#` outside quotes, after a space).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && (i == 0 || bytes[i - 1] == b' ') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The command with the binary for `tokencache` (as a command word) and `cargo run`.
fn substitute(command: &str, bin: &str, redis: Option<&str>) -> String {
    let mut c = command.replace("cargo run --release -p tokencache-cli --", bin);
    let words: Vec<String> = c
        .split(' ')
        .map(|w| {
            if w == "tokencache" {
                bin.to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    c = words.join(" ");
    if let Some(url) = redis {
        c = c.replace(README_REDIS, url.trim_end_matches('/'));
        c = c.replace(
            "ns=tenant-1",
            &format!("ns=tenant-1-{}", std::process::id()),
        );
    }
    if c.contains(&format!("{bin} bench")) {
        c.push_str(QUICK_BENCH);
    }
    c
}

fn sh(command: &str, dir: &Path, env: &[(String, String)]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command]).current_dir(dir);
    for var in [
        "TOKENCACHE_KEY",
        "TOKENCACHE_KEY_ID",
        "TOKENCACHE_NEW_KEY",
        "TOKENCACHE_CACHE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.output().expect("sh runs")
}

#[test]
fn readme_commands_work_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let all = commands(&readme);
    assert!(all.len() >= 10, "{all:?}");
    let redis = std::env::var("TOKENCACHE_REDIS_URL").ok();
    if redis.is_none() {
        eprintln!("TOKENCACHE_REDIS_URL is not set: the Redis commands are left out (run under scripts/redis.sh)");
    }
    let bin = env!("CARGO_BIN_EXE_tokencache");
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut ran = Vec::new();
    for command in &all {
        if redis.is_none() && command.contains("redis://") {
            continue;
        }
        let line = substitute(command, bin, redis.as_deref());
        if let Some(assignment) = line.strip_prefix("export ") {
            let (name, value) = assignment.split_once('=').expect("export NAME=VALUE");
            let out = sh(&format!("printf '%s' {value}"), dir.path(), &env);
            assert!(out.status.success(), "{command}");
            let value = String::from_utf8(out.stdout).unwrap();
            assert!(!value.is_empty(), "{command} gave nothing");
            env.push((name.to_owned(), value));
            continue;
        }
        let out = sh(&line, dir.path(), &env);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "`{command}` failed ({}): {stderr}",
            out.status
        );
        for (_, secret) in &env {
            assert!(
                !stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()),
                "a key printed by `{command}`"
            );
        }
        ran.push((command.clone(), stdout));
    }
    let output_of = |needle: &str| -> Vec<&str> {
        ran.iter()
            .filter(|(c, _)| c.contains(needle))
            .map(|(_, o)| o.as_str())
            .collect()
    };
    let key = "@@auth0spajs@@::my-app::https://api.example.com::openid read:orders";
    assert_eq!(
        output_of("tokencache keys sqlite:tokens.db"),
        [format!("{key}\n")]
    );
    for shown in output_of("tokencache show") {
        assert!(
            !shown.contains("eyJ...") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
    assert_eq!(
        output_of("remove --dry-run"),
        [format!("would remove {key}\n")]
    );
    assert!(output_of("import")[0].starts_with("imported 1 values"));
    assert!(
        output_of("sqlite:copy.db --to-key-env")[0].starts_with("copied 1 values; skipped none")
    );
    for verified in output_of("verify") {
        assert!(verified.starts_with("verified 1 values"), "{verified}");
    }
    assert!(output_of("rotate-key")[0].starts_with("re-encrypted 1 values under key id 2"));
    assert!(output_of("tokencache clear sqlite:tokens.db")[0].ends_with("removed 1 keys\n"));
    for table in output_of("bench") {
        assert!(table.starts_with("workload"), "{table}");
    }
    if redis.is_some() {
        assert_eq!(output_of("tokencache keys 'redis://"), [format!("{key}\n")]);
        assert!(output_of("tokencache clear 'redis://")[0].starts_with(&format!("removed {key}")));
    }
}

#[test]
fn commands_are_extracted_as_the_shell_reads_them() {
    let md = "## The `tokencache` command\n\n```sh\nfoo a \\\n  b   # note\necho '#x' # y\n\n```\n\n## Next\n```sh\nnot this\n```\n";
    assert_eq!(commands(md), ["foo a   b", "echo '#x'"]);
    assert_eq!(
        substitute("tokencache keys sqlite:tokencache.db", "/b", None),
        "/b keys sqlite:tokencache.db"
    );
    assert!(
        substitute("cargo run --release -p tokencache-cli -- bench", "/b", None)
            .starts_with("/b bench --iterations")
    );
}
