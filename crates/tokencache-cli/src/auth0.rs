//! The auth0-spa-js baseline: runs `bench.mjs` of the repository's `tools/auth0-spa-js`
//! (auth0-spa-js's own `CacheManager`, timed in Node) and reads its JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use tokencache::{Error, Result};
use tokencache_workloads::Op;

/// Where `tools/auth0-spa-js` was in the source tree this binary was built from.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/auth0-spa-js");

/// The default baseline directory: `tools/auth0-spa-js` of the source tree the binary
/// was built from, when it still exists; otherwise a configuration error asking for DIR.
pub fn default_dir() -> Result<PathBuf> {
    let dir = PathBuf::from(BUILT_FROM);
    if dir.join("bench.mjs").is_file() {
        return Ok(dir);
    }
    Err(Error::config(format!(
        "no auth0-spa-js baseline at {BUILT_FROM} (this binary was built outside a tokencache \
         checkout, or it moved): give its directory, --compare-auth0=DIR (tools/auth0-spa-js of \
         a checkout)"
    )))
}

/// What `bench.mjs --json` prints.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Report {
    /// The npm package timed: `@auth0/auth0-spa-js`.
    pub package: String,
    /// Its version.
    pub version: String,
    /// The Node.js version.
    pub node: String,
    /// The CPU.
    pub cpu: String,
    /// When it ran.
    pub date: String,
    /// One result per operation and number of other keys.
    pub results: Vec<Cell>,
}

/// One measured cell of the baseline.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Cell {
    /// `exact_hit`, `subset`, `miss`, `set` or `clear` ([`Op::as_str`]).
    pub op: String,
    /// The number of other keys present.
    pub others: usize,
    /// Median nanoseconds per operation.
    pub ns_per_op: f64,
}

/// The baseline's numbers, by operation and number of other keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The report as printed (for the JSON output of `bench`).
    pub report: Report,
    ns: BTreeMap<(Op, usize), f64>,
}

impl Baseline {
    /// Reads `bench.mjs --json` output: exactly one JSON object. Cells of unknown
    /// operations are ignored; a report with no known cell is an error.
    pub fn parse(json: &str) -> Result<Baseline> {
        let report: Report = serde_json::from_str(json.trim()).map_err(|e| {
            Error::unexpected("bench.mjs did not print the expected JSON object").with_source(e)
        })?;
        let ns: BTreeMap<(Op, usize), f64> = report
            .results
            .iter()
            .filter(|c| c.ns_per_op.is_finite() && c.ns_per_op > 0.0)
            .filter_map(|c| Some(((Op::from_name(&c.op)?, c.others), c.ns_per_op)))
            .collect();
        if ns.is_empty() {
            return Err(Error::unexpected("bench.mjs reported no known operation"));
        }
        Ok(Baseline { report, ns })
    }

    /// The baseline's ns/op for `op` with `others` keys; for operations whose cost does
    /// not depend on N (`set`, `exact_hit`), the closest N measured.
    pub fn lookup(&self, op: Op, others: usize) -> Option<f64> {
        if let Some(v) = self.ns.get(&(op, others)) {
            return Some(*v);
        }
        if op.depends_on_size() {
            return None;
        }
        self.ns
            .iter()
            .filter(|((o, _), _)| *o == op)
            .min_by_key(|((_, n), _)| n.abs_diff(others))
            .map(|(_, v)| *v)
    }
}

/// The program name of npm (a `.cmd` script on Windows).
const NPM: &str = if cfg!(windows) { "npm.cmd" } else { "npm" };

/// Runs `node bench.mjs --json --sizes SIZES --runs RUNS --target-ms MS` in `dir` (after
/// `npm ci` there when `node_modules` is missing) and reads its report.
pub fn run(dir: &Path, sizes: &[usize], runs: u32, target_ms: u32) -> Result<Baseline> {
    if !dir.join("bench.mjs").is_file() {
        return Err(Error::config(format!(
            "{} has no bench.mjs: give the auth0-spa-js baseline directory (tools/auth0-spa-js)",
            dir.display()
        )));
    }
    if !dir.join("node_modules").is_dir() {
        tracing::info!(dir = %dir.display(), "installing the baseline's npm packages (npm ci)");
        let status = Command::new(NPM)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| Error::unavailable("cannot run npm").with_source(e))?;
        if !status.success() {
            return Err(Error::unavailable(format!("npm ci failed: {status}")));
        }
    }
    let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let (runs, target_ms) = (runs.to_string(), target_ms.to_string());
    tracing::info!(dir = %dir.display(), "running node bench.mjs");
    let out = Command::new("node")
        .args(["bench.mjs", "--json", "--sizes", &sizes.join(",")])
        .args(["--runs", &runs, "--target-ms", &target_ms])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::unavailable("cannot run node").with_source(e))?;
    if !out.status.success() {
        return Err(Error::unavailable(format!(
            "node bench.mjs failed: {}",
            out.status
        )));
    }
    Baseline::parse(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"package":"@auth0/auth0-spa-js","version":"2.28.3","node":"v20.19.2",
        "cpu":"Intel Xeon","date":"2026-12-01T09:00:00.000Z","results":[
        {"op":"exact_hit","others":10,"ns_per_op":464},{"op":"exact_hit","others":100,"ns_per_op":497},
        {"op":"subset","others":10,"ns_per_op":4131},{"op":"subset","others":100,"ns_per_op":80479.5},
        {"op":"miss","others":10,"ns_per_op":3772},{"op":"set","others":10,"ns_per_op":670},
        {"op":"set","others":100,"ns_per_op":653},{"op":"clear","others":100,"ns_per_op":21000},
        {"op":"future_op","others":10,"ns_per_op":1}]}
"#;

    #[test]
    fn reads_the_json_report() {
        let b = Baseline::parse(SAMPLE).unwrap();
        assert_eq!(b.report.version, "2.28.3");
        assert_eq!(b.lookup(Op::Subset, 100), Some(80479.5));
        assert_eq!(b.lookup(Op::Miss, 10), Some(3772.0));
        assert_eq!(b.lookup(Op::Subset, 1000), None);
        assert_eq!(b.lookup(Op::Clear, 100), Some(21000.0));
        assert_eq!(b.lookup(Op::Clear, 10), None);
        // N-independent operations take the nearest N measured.
        assert_eq!(b.lookup(Op::ExactHit, 10), Some(464.0));
        assert_eq!(b.lookup(Op::Set, 90), Some(653.0));
    }

    #[test]
    fn anything_else_is_an_error() {
        for bad in [
            "",
            "- package: x\n| a | b |",
            r#"{"package":"p","version":"v","node":"n","cpu":"c","date":"d","results":[]}"#,
            r#"{"package":"p"}"#,
        ] {
            let e = Baseline::parse(bad).unwrap_err();
            assert_eq!(e.kind(), tokencache::ErrorKind::Unexpected, "{bad}");
        }
    }

    #[test]
    fn a_missing_directory_asks_for_dir() {
        let e = run(Path::new("/nonexistent/auth0"), &[10], 1, 5).unwrap_err();
        assert_eq!(e.kind(), tokencache::ErrorKind::Config);
        assert!(e.message().contains("bench.mjs"), "{e}");
        // Built from this checkout: the default is its tools/auth0-spa-js when present.
        match default_dir() {
            Ok(dir) => assert!(dir.join("bench.mjs").is_file()),
            Err(e) => assert!(e.message().contains("--compare-auth0=DIR"), "{e}"),
        }
    }
}
