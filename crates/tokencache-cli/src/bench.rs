//! `tokencache bench`: the workloads of `tokencache-workloads` on one or more backends,
//! optionally beside auth0-spa-js's numbers from the same session, and the refresh
//! workloads (the refresh lock, a forced refresh) on each backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;
use tokencache::crypto::{DataKey, KeyRing};
use tokencache::memory::MemoryCache;
use tokencache::{CacheLocation, Error, ErrorKind, KeySource, Result, SystemClock, KEY_ENV};
use tokencache_workloads::{
    run_refresh, MeasuredOp, Measurement, Op, RefreshOp, RunConfig, Workload, SMALL_SIZE,
    SUBSET_SIZES,
};

use crate::auth0::{self, Baseline, Report as Auth0Report};
use extra::{memory_bytes_per_entry, moka_floor, Filler, MemoryFootprint, MokaFloor};
use report::{render, Environment, Page};

#[path = "bench_extra.rs"]
mod extra;
#[path = "bench_report.rs"]
mod report;
#[path = "bench_svg.rs"]
mod svg;
use crate::migrate::progress;

/// The capacity of the memory backend under `bench`: 4 GiB.
const BENCH_MEMORY_CAPACITY: u64 = 4 << 30;

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
    /// The numbers of other keys of the scale workloads (scope-subset lookup and
    /// all_keys); the full curve is `--sizes 10,100,1000,10000,100000`.
    #[arg(long, value_delimiter = ',', default_values_t = SUBSET_SIZES)]
    sizes: Vec<usize>,
    /// Also write a self-contained HTML report (tables, bar charts, scale curves) to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Measure the memory backend's bytes per entry with this many entries (default
    /// 100,000 with --report, else not measured; 0 turns it off).
    #[arg(long, value_name = "N")]
    memory_entries: Option<usize>,
    /// Put N unrelated keys in the Redis server (outside the benchmark's namespace) while
    /// the Redis backend runs, to show namespace isolation (e.g. 1000000); they are
    /// removed afterwards. Needs a plain standalone redis:// URL.
    #[arg(long, value_name = "N", default_value_t = 0)]
    redis_unrelated: usize,
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
pub(crate) struct Row {
    pub(crate) backend: &'static str,
    #[serde(flatten)]
    pub(crate) m: Measurement,
    /// The auth0-spa-js baseline's mean ns/op for the same workload and N.
    pub(crate) auth0_ns: Option<f64>,
    /// `auth0_ns / mean_ns`: how many times faster than auth0-spa-js.
    pub(crate) speedup_vs_auth0: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    /// The standard workloads.
    results: Vec<&'a Row>,
    /// The refresh workloads (`refresh_lock`, `forced_refresh`), which auth0-spa-js has no
    /// counterpart of.
    refresh: Vec<&'a Row>,
    skipped: &'a [String],
    auth0: Option<&'a Auth0Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_footprint: Option<MemoryFootprint>,
    /// Moka alone doing the memory backend's `set` and `exact_hit` work, in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    moka_floor: Option<MokaFloor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_unrelated_keys: Option<usize>,
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
        (locations.len() * (workloads.len() + RefreshOp::ALL.len())) as u64 + auth0_steps,
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

    let memory_entries =
        args.memory_entries
            .unwrap_or(if args.report.is_some() { 100_000 } else { 0 });
    let footprint =
        if memory_entries > 0 && locations.iter().any(|l| matches!(l, CacheLocation::Memory)) {
            bar.set_message(format!("memory bytes per entry ({memory_entries} entries)"));
            Some(memory_bytes_per_entry(memory_entries).await?)
        } else {
            None
        };

    let floor = if locations.iter().any(|l| matches!(l, CacheLocation::Memory)) {
        bar.set_message("moka alone (the memory backend's baselines)");
        let batch = (cfg.iterations / 10).max(1);
        Some(moka_floor(batch, cfg.max_time).await?)
    } else {
        None
    };

    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let result = run_locations(
        &args,
        &locations,
        &workloads,
        &cfg,
        baseline.as_ref(),
        &bar,
        &mut rows,
        &mut skipped,
    )
    .await;
    bar.finish_and_clear();
    result?;

    if let Some(path) = &args.report {
        let mut facts = Vec::new();
        if let Some(f) = footprint {
            let rss = f
                .rss_bytes_per_entry
                .map_or_else(|| "not measured".to_owned(), |b| format!("{b:.0} B"));
            facts.push((
                "memory backend bytes/entry".to_owned(),
                format!(
                    "{rss} of resident memory, {:.0} B by moka's weigher ({} entries)",
                    f.weighted_bytes_per_entry,
                    fmt_count(f.entries as f64)
                ),
            ));
        }
        if let Some(f) = floor {
            facts.push((
                "moka alone (same run)".to_owned(),
                floor_text(&f, baseline.as_ref()),
            ));
        }
        if args.redis_unrelated > 0 {
            facts.push((
                "redis unrelated keys".to_owned(),
                format!(
                    "{} other keys in the server during the redis run (namespace isolation)",
                    fmt_count(args.redis_unrelated as f64)
                ),
            ));
        }
        let env = Environment::detect();
        let html = render(&Page {
            env: &env,
            rows: &rows,
            baseline: baseline.as_ref(),
            skipped: &skipped,
            facts: &facts,
        });
        std::fs::write(path, html).map_err(|e| {
            Error::unavailable(format!("cannot write the report {}", path.display())).with_source(e)
        })?;
    }

    if args.json {
        let (refresh, results): (Vec<&Row>, Vec<&Row>) = rows
            .iter()
            .partition(|r| matches!(r.m.op, MeasuredOp::Refresh(_)));
        let report = Report {
            results,
            refresh,
            skipped: &skipped,
            auth0: baseline.as_ref().map(|b| &b.report),
            memory_footprint: footprint,
            moka_floor: floor,
            redis_unrelated_keys: (args.redis_unrelated > 0).then_some(args.redis_unrelated),
        };
        let out = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::serialization("cannot write the report").with_source(e))?;
        println!("{out}");
    } else {
        print_table(&rows, baseline.as_ref());
        if let Some(f) = floor {
            println!("moka alone: {}", floor_text(&f, baseline.as_ref()));
        }
        if let Some(f) = footprint {
            println!(
                "memory backend, {} entries: {} resident bytes/entry, {:.0} weighed bytes/entry",
                f.entries,
                f.rss_bytes_per_entry
                    .map_or_else(|| "-".to_owned(), |b| format!("{b:.0}")),
                f.weighted_bytes_per_entry
            );
        }
    }
    Ok(())
}

/// Runs `workloads` on every location, appending to `rows` (and to `skipped` the
/// backends that cannot be reached, with `--backend all`).
#[allow(clippy::too_many_arguments)]
async fn run_locations(
    args: &BenchArgs,
    locations: &[CacheLocation],
    workloads: &[Workload],
    cfg: &RunConfig,
    baseline: Option<&Baseline>,
    bar: &indicatif::ProgressBar,
    rows: &mut Vec<Row>,
    skipped: &mut Vec<String>,
) -> Result<()> {
    for location in locations {
        let backend = location.backend();
        let opened = match location {
            // Room for the largest scale sizes (100,000 entries weigh about 100 MB; the
            // default capacity would evict and the listing workloads would fail).
            CacheLocation::Memory => Ok(Arc::new(
                MemoryCache::builder()
                    .clock(Arc::new(SystemClock))
                    .max_capacity_bytes(BENCH_MEMORY_CAPACITY)
                    .build(),
            ) as Arc<dyn tokencache::Cache>),
            other => other.open(Arc::new(SystemClock)).await,
        };
        let cache = match opened {
            Ok(c) => c,
            Err(e) if args.backend == Backend::All && e.kind() == ErrorKind::Unavailable => {
                tracing::warn!(backend, error = %e, "skipping a backend that cannot be reached");
                bar.suspend(|| eprintln!("note: skipping {backend}: {e}"));
                skipped.push(backend.to_owned());
                bar.inc((workloads.len() + RefreshOp::ALL.len()) as u64);
                continue;
            }
            Err(e) => return Err(e),
        };
        let filler = if args.redis_unrelated > 0 && backend == "redis" {
            bar.set_message(format!(
                "redis: {} unrelated keys",
                fmt_count(args.redis_unrelated as f64)
            ));
            let mut f = Filler::connect(&args.redis_url)?;
            let took = f.fill(args.redis_unrelated)?;
            let total = f.dbsize()?;
            tracing::info!(
                keys = args.redis_unrelated,
                total,
                ?took,
                "filled the Redis server"
            );
            Some(f)
        } else {
            None
        };
        let mut result = Ok(());
        for w in workloads {
            bar.set_message(format!("{backend} {}", w.name()));
            let m = match tokencache_workloads::run(cache.clone(), w, cfg).await {
                Ok(m) => m,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let auth0_ns = baseline.and_then(|b| b.lookup(w.op, w.others));
            rows.push(Row {
                backend,
                speedup_vs_auth0: auth0_ns.map(|a| a / m.mean_ns),
                auth0_ns,
                m,
            });
            bar.inc(1);
        }
        if result.is_ok() {
            result = run_refresh_workloads(backend, &cache, cfg, bar, rows).await;
        }
        if let Some(mut f) = filler {
            bar.set_message("redis: removing the unrelated keys");
            f.clean(args.redis_unrelated)?;
        }
        result?;
    }
    Ok(())
}

/// Runs the refresh workloads on `cache` (the lock the manager would use for it),
/// appending to `rows`.
async fn run_refresh_workloads(
    backend: &'static str,
    cache: &Arc<dyn tokencache::Cache>,
    cfg: &RunConfig,
    bar: &indicatif::ProgressBar,
    rows: &mut Vec<Row>,
) -> Result<()> {
    for op in RefreshOp::ALL {
        bar.set_message(format!("{backend} {}", op.as_str()));
        let m = run_refresh(cache.clone(), op, cfg).await?;
        rows.push(Row {
            backend,
            m,
            auth0_ns: None,
            speedup_vs_auth0: None,
        });
        bar.inc(1);
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
pub(crate) fn fmt_count(x: f64) -> String {
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

/// What [`MokaFloor`] says, beside auth0-spa-js's `set` and `exact_hit` when measured.
fn floor_text(f: &MokaFloor, baseline: Option<&Baseline>) -> String {
    let auth0 = |op: Op| {
        baseline
            .and_then(|b| b.lookup(op, SMALL_SIZE))
            .map_or_else(String::new, |ns| {
                format!(" (auth0-spa-js {}: {})", op.as_str(), fmt_ns(ns))
            })
    };
    format!(
        "insert {}{}, get {}{}: raw moka doing the memory backend's set and exact_hit (their baselines)",
        fmt_ns(f.insert_ns),
        auth0(Op::Set),
        fmt_ns(f.get_ns),
        auth0(Op::ExactHit),
    )
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

    #[tokio::test]
    async fn refresh_rows_follow_each_backend_and_stay_out_of_results() {
        let cache: Arc<dyn tokencache::Cache> = Arc::new(MemoryCache::new());
        let bar = indicatif::ProgressBar::hidden();
        let mut rows = Vec::new();
        run_refresh_workloads("memory", &cache, &RunConfig::quick(), &bar, &mut rows)
            .await
            .unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.m.workload.as_str()).collect();
        assert_eq!(names, ["refresh_lock", "forced_refresh"]);
        for r in &rows {
            assert!(matches!(r.m.op, MeasuredOp::Refresh(_)), "{r:?}");
            assert!(r.m.p50_ns > 0.0 && r.m.p50_ns <= r.m.p99_ns, "{r:?}");
            assert_eq!(r.auth0_ns, None);
        }
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(json["op"], "refresh_lock");
        assert_eq!(json["backend"], "memory");
    }

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
