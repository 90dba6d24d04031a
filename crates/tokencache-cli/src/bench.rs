//! `tokencache bench`: the workloads of `tokencache-workloads` on one or more backends,
//! optionally beside auth0-spa-js's numbers from the same session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;
use tokencache::crypto::{DataKey, KeyRing};
use tokencache::{CacheLocation, Error, ErrorKind, KeySource, Result, SystemClock, KEY_ENV};
use tokencache_workloads::{Measurement, RunConfig, Workload, SUBSET_SIZES};

use crate::auth0::{self, Baseline, Report as Auth0Report};
use crate::migrate::progress;

/// The backends `bench` can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The in-process moka cache.
    Memory,
    /// An encrypted SQLite file (a temporary one unless `--sqlite-path` is given).
    Sqlite,
    /// A Redis server (`--redis-url`).
    Redis,
    /// Every backend; one that cannot be reached (no Redis server) is skipped with a notice.
    All,
}

/// Options of `tokencache bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The backend to run on.
    #[arg(long, value_enum, default_value = "memory")]
    backend: Backend,
    /// The SQLite file for `--backend sqlite` (default: a new temporary file). The key
    /// comes from TOKENCACHE_KEY, or is random when that is not set.
    #[arg(long)]
    sqlite_path: Option<PathBuf>,
    /// The Redis server (or `redis+cluster://` nodes) for `--backend redis`; the
    /// benchmark uses only this namespace. Encrypted when TOKENCACHE_KEY is set.
    #[arg(long, default_value = "redis://127.0.0.1:6379/?ns=tokencache-bench")]
    redis_url: String,
    /// Timed iterations per workload and pass.
    #[arg(long, default_value_t = RunConfig::default().iterations)]
    iterations: u64,
    /// Untimed warm-up iterations per workload.
    #[arg(long, default_value_t = RunConfig::default().warmup)]
    warmup: u64,
    /// Timed iterations of the `clear` workload (each refills the cache, untimed).
    #[arg(long, default_value_t = RunConfig::default().clear_iterations)]
    clear_iterations: u64,
    /// A pass stops after this many milliseconds (but after at least 10 iterations).
    #[arg(long, default_value_t = 1000)]
    max_time_ms: u64,
    /// The numbers of other keys of the subset workloads.
    #[arg(long, value_delimiter = ',', default_values_t = SUBSET_SIZES)]
    sizes: Vec<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// No progress indicator.
    #[arg(long, short)]
    quiet: bool,
    /// Also run the auth0-spa-js baseline (`node bench.mjs` in DIR, default the
    /// tools/auth0-spa-js folder of the source tree this binary was built from; `npm ci`
    /// there first when node_modules is missing) and show the speedup.
    #[arg(long, value_name = "DIR", num_args = 0..=1, require_equals = true)]
    compare_auth0: Option<Option<PathBuf>>,
    /// Timed runs per cell of the auth0-spa-js baseline (its median is reported).
    #[arg(long, default_value_t = 7)]
    auth0_runs: u32,
    /// Length of one timed run of the auth0-spa-js baseline, in milliseconds.
    #[arg(long, default_value_t = 150)]
    auth0_target_ms: u32,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Row {
    backend: &'static str,
    #[serde(flatten)]
    m: Measurement,
    /// The auth0-spa-js baseline's mean ns/op for the same workload and N.
    auth0_ns: Option<f64>,
    /// `auth0_ns / mean_ns`: how many times faster than auth0-spa-js.
    speedup_vs_auth0: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    results: &'a [Row],
    skipped: &'a [String],
    auth0: Option<&'a Auth0Report>,
}

impl BenchArgs {
    fn config(&self) -> RunConfig {
        RunConfig {
            warmup: self.warmup,
            iterations: self.iterations,
            clear_iterations: self.clear_iterations,
            max_time: Duration::from_millis(self.max_time_ms),
        }
    }

    /// The locations to run on; the SQLite file in `sqlite_dir` unless `--sqlite-path`.
    fn locations(&self, sqlite_dir: &tempfile::TempDir) -> Result<Vec<CacheLocation>> {
        let env_key = std::env::var_os(KEY_ENV).is_some();
        let sqlite = CacheLocation::Sqlite {
            path: self
                .sqlite_path
                .clone()
                .unwrap_or_else(|| sqlite_dir.path().join("bench.db")),
            namespace: tokencache::DEFAULT_SQLITE_NAMESPACE.to_owned(),
            keys: if env_key {
                KeySource::env()
            } else {
                KeySource::keys(KeyRing::new(DataKey::generate(1)?))
            },
        };
        let redis = self
            .redis_url
            .parse::<CacheLocation>()?
            .with_keys(if env_key {
                KeySource::env()
            } else {
                KeySource::Plaintext
            });
        Ok(match self.backend {
            Backend::Memory => vec![CacheLocation::Memory],
            Backend::Sqlite => vec![sqlite],
            Backend::Redis => vec![redis],
            Backend::All => vec![CacheLocation::Memory, sqlite, redis],
        })
    }

    /// The baseline directory: the one given, else the built-in default.
    fn auth0_dir(&self) -> Result<Option<PathBuf>> {
        match &self.compare_auth0 {
            None => Ok(None),
            Some(None) => auth0::default_dir().map(Some),
            Some(Some(dir)) => Ok(Some(dir.clone())),
        }
    }
}

/// Runs `tokencache bench`.
pub async fn run(args: BenchArgs) -> Result<()> {
    let workloads = Workload::standard_set(&args.sizes);
    let sqlite_dir = tempfile::Builder::new()
        .prefix("tokencache-bench-")
        .tempdir()
        .map_err(|e| Error::unavailable("cannot create a temporary directory").with_source(e))?;
    let locations = args.locations(&sqlite_dir)?;
    let auth0_dir = args.auth0_dir()?;
    let auth0_steps = u64::from(auth0_dir.is_some());
    let bar = progress(
        args.quiet,
        (locations.len() * workloads.len()) as u64 + auth0_steps,
    );
    let cfg = args.config();

    let baseline: Option<Baseline> = match auth0_dir {
        Some(dir) => {
            bar.set_message("auth0-spa-js baseline (node bench.mjs)");
            let mut sizes = args.sizes.clone();
            sizes.extend(workloads.iter().map(|w| w.others));
            sizes.sort_unstable();
            sizes.dedup();
            let (runs, ms) = (args.auth0_runs, args.auth0_target_ms);
            let b = tokio::task::spawn_blocking(move || auth0::run(&dir, &sizes, runs, ms))
                .await
                .map_err(|e| Error::unexpected("the baseline task failed").with_source(e))??;
            bar.inc(1);
            Some(b)
        }
        None => None,
    };

    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for location in &locations {
        let backend = location.backend();
        let cache = match location.open(Arc::new(SystemClock)).await {
            Ok(c) => c,
            Err(e) if args.backend == Backend::All && e.kind() == ErrorKind::Unavailable => {
                tracing::warn!(backend, error = %e, "skipping a backend that cannot be reached");
                bar.suspend(|| eprintln!("note: skipping {backend}: {e}"));
                skipped.push(backend.to_owned());
                bar.inc(workloads.len() as u64);
                continue;
            }
            Err(e) => return Err(e),
        };
        for w in &workloads {
            bar.set_message(format!("{backend} {}", w.name()));
            let m = tokencache_workloads::run(cache.clone(), w, &cfg).await?;
            let auth0_ns = baseline.as_ref().and_then(|b| b.lookup(w.op, w.others));
            rows.push(Row {
                backend,
                speedup_vs_auth0: auth0_ns.map(|a| a / m.mean_ns),
                auth0_ns,
                m,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    if args.json {
        let report = Report {
            results: &rows,
            skipped: &skipped,
            auth0: baseline.as_ref().map(|b| &b.report),
        };
        let out = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::serialization("cannot write the report").with_source(e))?;
        println!("{out}");
    } else {
        print_table(&rows, baseline.as_ref());
    }
    Ok(())
}

/// A duration in ns, in the unit that keeps 3-4 significant digits.
fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A count with thousands separators.
fn fmt_count(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_table(rows: &[Row], baseline: Option<&Baseline>) {
    let mut header = vec!["workload", "backend", "ops/s", "mean", "p50", "p99"];
    if baseline.is_some() {
        header.extend(["auth0-spa-js", "speedup"]);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut line = vec![
                r.m.workload.clone(),
                r.backend.to_owned(),
                fmt_count(r.m.ops_per_sec),
                fmt_ns(r.m.mean_ns),
                fmt_ns(r.m.p50_ns),
                fmt_ns(r.m.p99_ns),
            ];
            if baseline.is_some() {
                line.push(r.auth0_ns.map_or_else(|| "-".to_owned(), fmt_ns));
                line.push(
                    r.speedup_vs_auth0
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}x")),
                );
            }
            line
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|l| l[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let print = |line: &[String]| {
        let text: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c < 2 {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    print(&header.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    for line in &cells {
        print(line);
    }
    if let Some(b) = baseline {
        println!();
        let r = &b.report;
        println!(
            "auth0-spa-js baseline (same session): {}@{}, node {}, {}, {}",
            r.package, r.version, r.node, r.cpu, r.date
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(523.4), "523 ns");
        assert_eq!(fmt_ns(80_479.0), "80.5 µs");
        assert_eq!(fmt_ns(10_105_325.0), "10.11 ms");
        assert_eq!(fmt_count(1_234_567.4), "1,234,567");
        assert_eq!(fmt_count(999.0), "999");
        assert_eq!(fmt_count(1000.0), "1,000");
    }
}
