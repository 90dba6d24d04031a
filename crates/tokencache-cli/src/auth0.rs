//! Runs the auth0-spa-js baseline (`bench.mjs`) and reads its numbers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use tokencache_benches::Op;
use tokencache_core::{Error, Result};

/// The baseline's medians: ns per operation by operation and number of other keys.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Baseline {
    /// `(op, N) -> ns/op`.
    pub ns: BTreeMap<(OpKey, usize), f64>,
    /// The baseline's own description of the run (package, node, cpu, date).
    pub meta: Vec<String>,
}

/// [`Op`] as an ordered map key.
pub type OpKey = &'static str;

impl Baseline {
    /// The baseline's ns/op for `op` with `others` keys; for `set` and `exact_hit`, whose
    /// cost does not depend on N, the column closest to `others`.
    pub fn lookup(&self, op: Op, others: usize) -> Option<f64> {
        let key = op.as_str();
        if let Some(v) = self.ns.get(&(key, others)) {
            return Some(*v);
        }
        if matches!(op, Op::Set | Op::ExactHit) {
            return self
                .ns
                .iter()
                .filter(|((k, _), _)| *k == key)
                .min_by_key(|((_, n), _)| n.abs_diff(others))
                .map(|(_, v)| *v);
        }
        None
    }
}

/// Copies the baseline directory `src` to a temporary directory (its `node_modules`
/// linked, or installed with `npm ci` when absent), runs
/// `node bench.mjs --md --sizes SIZES --runs RUNS --target-ms MS` there and parses the
/// raw ns/op table. `bench.mjs` has no JSON output, so its Markdown is read.
pub fn run(src: &Path, sizes: &[usize], runs: u32, target_ms: u32) -> Result<Baseline> {
    if !src.join("bench.mjs").is_file() {
        return Err(Error::config(format!(
            "{} has no bench.mjs: give the auth0-spa-js baseline directory",
            src.display()
        )));
    }
    let dir = tempfile::Builder::new()
        .prefix("tokencache-auth0-")
        .tempdir()
        .map_err(io_error("cannot create a temporary directory"))?;
    copy_dir(src, dir.path())?;
    let modules = src.join("node_modules");
    if modules.is_dir() {
        std::os::unix::fs::symlink(&modules, dir.path().join("node_modules"))
            .map_err(io_error("cannot link node_modules"))?;
    } else {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .status()
            .map_err(io_error("cannot run npm"))?;
        if !status.success() {
            return Err(Error::unavailable(format!("npm ci failed: {status}")));
        }
    }
    let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let out = Command::new("node")
        .arg("bench.mjs")
        .args(["--md", "--sizes", &sizes.join(",")])
        .args([
            "--runs",
            &runs.to_string(),
            "--target-ms",
            &target_ms.to_string(),
        ])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .output()
        .map_err(io_error("cannot run node"))?;
    if !out.status.success() {
        return Err(Error::unavailable(format!(
            "node bench.mjs failed: {}",
            out.status
        )));
    }
    parse_markdown(&String::from_utf8_lossy(&out.stdout))
}

fn io_error(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::unavailable(what).with_source(e)
}

/// Copies the files of `from` into `to`, recursively, leaving out `node_modules`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for item in std::fs::read_dir(from).map_err(io_error("cannot read the baseline directory"))? {
        let item = item.map_err(io_error("cannot read the baseline directory"))?;
        if item.file_name() == "node_modules" {
            continue;
        }
        let target = to.join(item.file_name());
        let kind = item
            .file_type()
            .map_err(io_error("cannot read the baseline directory"))?;
        if kind.is_dir() {
            std::fs::create_dir(&target).map_err(io_error("cannot copy the baseline"))?;
            copy_dir(&item.path(), &target)?;
        } else {
            std::fs::copy(item.path(), &target).map_err(io_error("cannot copy the baseline"))?;
        }
    }
    Ok(())
}

/// Reads the "Median ns/op (raw)" table of `bench.mjs --md`.
pub fn parse_markdown(md: &str) -> Result<Baseline> {
    let bad = || Error::unexpected("bench.mjs printed no raw ns/op table");
    let mut baseline = Baseline {
        meta: md
            .lines()
            .take_while(|l| l.starts_with("- "))
            .map(|l| l[2..].to_owned())
            .collect(),
        ..Baseline::default()
    };
    let raw = md.split("Median ns/op (raw)").nth(1).ok_or_else(bad)?;
    let mut rows = raw.lines().filter(|l| l.starts_with('|')).map(|l| {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect::<Vec<_>>()
    });
    let header = rows.next().ok_or_else(bad)?;
    let sizes: Vec<usize> = header[1..]
        .iter()
        .map(|s| s.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    for row in rows.skip(1) {
        let op = match row[0] {
            "get exact hit" => Op::ExactHit,
            "get scope subset" => Op::Subset,
            "get miss" => Op::Miss,
            "set" => Op::Set,
            _ => continue,
        };
        for (n, cell) in sizes.iter().zip(&row[1..]) {
            let ns: f64 = cell.parse().map_err(|_| bad())?;
            baseline.ns.insert((op.as_str(), *n), ns);
        }
    }
    if baseline.ns.is_empty() {
        return Err(bad());
    }
    Ok(baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "- package: @auth0/auth0-spa-js@2.28.3\n- node: v20\n\nMedian time per op (formatted):\n\n\
| op \\ N other keys | 10 | 100 |\n| --- | --- | --- |\n| get exact hit | 464 ns | 497 ns |\n\n\
Median ns/op (raw):\n\n| op \\ N other keys | 10 | 100 |\n| --- | --- | --- |\n\
| get exact hit | 464 | 497 |\n| get scope subset | 4131 | 80479 |\n| get miss | 3772 | 81289 |\n| set | 670 | 653 |\n";

    #[test]
    fn parses_the_raw_table() {
        let b = parse_markdown(SAMPLE).unwrap();
        assert_eq!(b.meta[0], "package: @auth0/auth0-spa-js@2.28.3");
        assert_eq!(b.lookup(Op::Subset, 100), Some(80479.0));
        assert_eq!(b.lookup(Op::Miss, 10), Some(3772.0));
        assert_eq!(b.lookup(Op::Subset, 1000), None);
        // N-independent operations take the nearest column.
        assert_eq!(b.lookup(Op::ExactHit, 10), Some(464.0));
        assert_eq!(b.lookup(Op::Set, 90), Some(653.0));
        assert_eq!(b.lookup(Op::Clear, 10), None);
        assert!(parse_markdown("nothing").is_err());
    }
}
