//! The JS bridge: scenario documents run through the real auth0-spa-js, with the
//! repository's harness in `<workspace>/tools/auth0-spa-js` (its `runScenario`, called by
//! `tests/differential/run.mjs`).
//!
//! The pinned package is installed there with `npm ci` when its `node_modules` is missing
//! or holds another version. A missing `node` or `npm` fails the test: it never skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::scenario::Outcome;

const PACKAGE: &str = "@auth0/auth0-spa-js";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_tool(tool: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{tool} --version` failed ({}): the differential test needs Node.js and npm on PATH",
            o.status
        ),
        Err(e) => panic!(
            "cannot run `{tool}` ({e}): the differential test needs Node.js (18+) and npm on PATH; \
             install them (e.g. `apt-get install -y nodejs npm`) — this test never skips"
        ),
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The version the harness's package.json pins.
fn pinned_version(dir: &Path) -> String {
    let pkg = read_json(&dir.join("package.json"))
        .unwrap_or_else(|| panic!("{} has no readable package.json", dir.display()));
    pkg["dependencies"][PACKAGE]
        .as_str()
        .unwrap_or_else(|| panic!("{}/package.json does not pin {PACKAGE}", dir.display()))
        .to_owned()
}

/// The version installed in the harness's node_modules, if any.
fn installed_version(dir: &Path) -> Option<String> {
    let pkg = read_json(&dir.join("node_modules").join(PACKAGE).join("package.json"))?;
    pkg["version"].as_str().map(str::to_owned)
}

/// `<workspace>/tools/auth0-spa-js`, with the pinned package installed; and its version.
fn harness() -> &'static (PathBuf, String) {
    static HARNESS: OnceLock<(PathBuf, String)> = OnceLock::new();
    HARNESS.get_or_init(|| {
        check_tool("node");
        // The workspace root is two levels above this crate.
        let dir = manifest_dir().join("../../tools/auth0-spa-js");
        let dir = dir
            .canonicalize()
            .unwrap_or_else(|e| panic!("the harness is not at {} ({e})", dir.display()));
        assert!(
            dir.join("lib.mjs").is_file(),
            "{} has no lib.mjs",
            dir.display()
        );
        let pinned = pinned_version(&dir);
        if installed_version(&dir).as_deref() != Some(pinned.as_str()) {
            check_tool("npm");
            eprintln!(
                "installing {PACKAGE} {pinned} with `npm ci` in {}",
                dir.display()
            );
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .unwrap_or_else(|e| panic!("cannot run npm: {e}"));
            assert!(
                status.success(),
                "`npm ci` failed in {} ({status})",
                dir.display()
            );
            assert_eq!(
                installed_version(&dir).as_deref(),
                Some(pinned.as_str()),
                "`npm ci` did not install {PACKAGE} {pinned} in {}",
                dir.display()
            );
        }
        (dir, pinned)
    })
}

/// Runs every document through auth0-spa-js, in one Node process.
pub fn run_js(docs: &[Value]) -> Vec<Outcome> {
    let (dir, version) = harness();
    let mut child = Command::new("node")
        .arg(manifest_dir().join("tests/differential/run.mjs"))
        .arg(dir.join("lib.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node: {e}"));
    let input = serde_json::to_vec(docs).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "node run.mjs failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("run.mjs printed JSON");
    assert_eq!(runs.len(), docs.len());
    runs.into_iter()
        .map(|r| {
            assert_eq!(
                r["version"].as_str(),
                Some(version.as_str()),
                "package version"
            );
            Outcome {
                results: serde_json::from_value(r["results"].clone()).unwrap(),
                store: serde_json::from_value(r["store"].clone()).unwrap(),
            }
        })
        .collect()
}

/// Runs one document through auth0-spa-js.
pub fn run_js_one(doc: &Value) -> Outcome {
    run_js(std::slice::from_ref(doc)).remove(0)
}
