//! The self-contained HTML page of `tokencache bench --report FILE`: the machine and
//! versions, one table per backend, a bar chart per workload against auth0-spa-js, and
//! log-log scale curves of the listing lookups. Inline CSS and SVG only: no script, no
//! network resource.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use tokencache_workloads::Op;

use super::svg::{
    bar_chart, colour, escape, fmt_duration, log_log_chart, Bar, Series, AUTH0_COLOUR,
};
use crate::auth0::Baseline;
use crate::bench::Row;

/// Where and with what the benchmark ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The CPU model.
    pub cpu: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Operating system, kernel and architecture.
    pub os: String,
    /// `rustc --version` on this machine at run time (the compiler of the build when the
    /// binary was built here).
    pub rustc: String,
    /// The version of the `tokencache` CLI.
    pub version: String,
    /// When the report was made (UTC).
    pub date: String,
}

impl Environment {
    /// The environment of this process.
    pub fn detect() -> Self {
        Environment {
            cpu: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: os_description(),
            rustc: command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".to_owned()),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            date: utc_now(),
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Processor"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn os_description() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned());
    let mut parts = vec![pretty.unwrap_or_else(|| std::env::consts::OS.to_owned())];
    parts.extend(kernel.map(|k| format!("kernel {k}")));
    parts.push(std::env::consts::ARCH.to_owned());
    parts.join(", ")
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `secs` since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (the civil-from-days algorithm).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn utc_now() -> String {
    format_utc(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Everything the page shows.
#[derive(Debug)]
pub struct Page<'a> {
    /// The machine and versions.
    pub env: &'a Environment,
    /// The measured rows, backend by backend.
    pub rows: &'a [Row],
    /// The auth0-spa-js baseline, when compared.
    pub baseline: Option<&'a Baseline>,
    /// Backends that were skipped (unreachable).
    pub skipped: &'a [String],
    /// Further facts (`name`, `value`): bytes per entry, the Redis isolation setting.
    pub facts: &'a [(String, String)],
}

/// The backends of `rows`, in order of appearance.
pub fn backends(rows: &[Row]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in rows {
        if !out.contains(&r.backend) {
            out.push(r.backend);
        }
    }
    out
}

/// The workload names of `rows`, in order of appearance.
pub fn workloads(rows: &[Row]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in rows {
        if !out.contains(&r.m.workload.as_str()) {
            out.push(&r.m.workload);
        }
    }
    out
}

/// The operations drawn as scale curves, with their chart titles.
pub const CURVES: [(Op, &str); 2] = [
    (
        Op::Subset,
        "scope-subset lookup (get) vs number of other keys",
    ),
    (Op::AllKeys, "all_keys vs number of other keys"),
];

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;max-width:1240px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:3px 10px;border-bottom:1px solid #e4e4e4}\
th{text-align:left;background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.faster{color:#1a7f37}.slower{color:#b42318;font-weight:600}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #e4e4e4;background:#fff}\
.chart-title{font-size:13px;font-weight:600}.tick,.value,.legend,.bar-label{font-size:11px}\
.axis-label{font-size:11px;fill:#555}.grid{stroke:#eee}.axis{stroke:#444}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{font-weight:600}dd{margin:0}";

/// The HTML page.
pub fn render(p: &Page<'_>) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<title>tokencache bench report</title><style>");
    h.push_str(CSS);
    h.push_str("</style></head><body><h1>tokencache bench report</h1>");

    // The machine and versions.
    let mut env: Vec<(String, String)> = vec![
        ("date".into(), p.env.date.clone()),
        ("tokencache".into(), p.env.version.clone()),
        ("CPU".into(), p.env.cpu.clone()),
        ("cores".into(), p.env.cores.to_string()),
        ("OS".into(), p.env.os.clone()),
        ("rustc".into(), p.env.rustc.clone()),
    ];
    if let Some(b) = p.baseline {
        let r = &b.report;
        env.push((
            "auth0-spa-js".into(),
            format!("{} {}", r.package, r.version),
        ));
        env.push(("node".into(), r.node.clone()));
        env.push((
            "baseline CPU / date".into(),
            format!("{}, {}", r.cpu, r.date),
        ));
    }
    env.extend(p.facts.iter().cloned());
    if !p.skipped.is_empty() {
        env.push(("skipped".into(), p.skipped.join(", ")));
    }
    h.push_str("<h2>Machine and versions</h2><dl>");
    for (k, v) in &env {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    }
    h.push_str("</dl>");

    // A table per backend.
    let backends = backends(p.rows);
    for b in &backends {
        let _ = write!(
            h,
            "<h2>{} backend</h2><table><tr><th>workload</th><th>ops/s</th><th>mean</th><th>p50</th><th>p99</th><th>auth0-spa-js</th><th>ratio vs auth0-spa-js</th></tr>",
            escape(b)
        );
        for r in p.rows.iter().filter(|r| r.backend == *b) {
            let ratio = match r.speedup_vs_auth0 {
                Some(s) if s >= 1.0 => format!("<td class=\"n faster\">{s:.1}× faster</td>"),
                Some(s) => format!("<td class=\"n slower\">{:.1}× slower</td>", 1.0 / s),
                None => "<td class=\"n\">-</td>".to_owned(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{ratio}</tr>",
                escape(&r.m.workload),
                escape(&crate::bench::fmt_count(r.m.ops_per_sec)),
                escape(&fmt_duration(r.m.mean_ns)),
                escape(&fmt_duration(r.m.p50_ns)),
                escape(&fmt_duration(r.m.p99_ns)),
                r.auth0_ns.map_or_else(|| "-".to_owned(), |a| escape(&fmt_duration(a))),
            );
        }
        h.push_str("</table>");
    }

    // A bar chart per workload: every backend and auth0-spa-js.
    h.push_str("<h2>Each workload against auth0-spa-js</h2><div class=\"charts\">");
    for w in workloads(p.rows) {
        let mut bars: Vec<Bar> = backends
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let r = p
                    .rows
                    .iter()
                    .find(|r| r.backend == *b && r.m.workload == w)?;
                Some(Bar {
                    label: (*b).to_owned(),
                    ns: r.m.mean_ns,
                    colour: colour(i),
                })
            })
            .collect();
        if let Some(a) = p
            .rows
            .iter()
            .find(|r| r.m.workload == w)
            .and_then(|r| r.auth0_ns)
        {
            bars.push(Bar {
                label: "auth0-spa-js".to_owned(),
                ns: a,
                colour: AUTH0_COLOUR,
            });
        }
        h.push_str(&bar_chart(&format!("{w}: mean time per operation"), &bars));
    }
    h.push_str("</div>");

    // The scale curves.
    h.push_str("<h2>Scale: lookup time against the number of other keys (log-log)</h2><div class=\"charts\">");
    for (op, title) in CURVES {
        let mut series: Vec<Series> = backends
            .iter()
            .enumerate()
            .map(|(i, b)| Series {
                name: (*b).to_owned(),
                colour: colour(i),
                points: p
                    .rows
                    .iter()
                    .filter(|r| r.backend == *b && r.m.op == op)
                    .map(|r| (r.m.others as f64, r.m.mean_ns))
                    .collect(),
            })
            .collect();
        if let Some(base) = p.baseline {
            let mut sizes: Vec<usize> = p
                .rows
                .iter()
                .filter(|r| r.m.op == op)
                .map(|r| r.m.others)
                .collect();
            sizes.sort_unstable();
            sizes.dedup();
            series.push(Series {
                name: "auth0-spa-js".to_owned(),
                colour: AUTH0_COLOUR,
                points: sizes
                    .iter()
                    .filter_map(|&n| Some((n as f64, base.lookup(op, n)?)))
                    .collect(),
            });
        }
        h.push_str(&log_log_chart(title, "other keys", &series));
    }
    h.push_str("</div><p>Times are the mean per operation from batches timed as a whole; p50 and p99 come from every operation timed on its own. The full scale curve is <code>tokencache bench --sizes 10,100,1000,10000,100000</code>.</p></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_workloads::Measurement;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_796_133_599), "2026-12-01 13:59:59 UTC");
    }

    fn row(backend: &'static str, op: Op, others: usize, ns: f64) -> Row {
        let workload = tokencache_workloads::Workload::new(op, others).name();
        Row {
            backend,
            m: Measurement {
                workload,
                op: op.into(),
                others,
                iterations: 10,
                ops_per_sec: 1e9 / ns,
                mean_ns: ns,
                p50_ns: ns,
                p99_ns: ns * 2.0,
            },
            auth0_ns: Some(ns * 3.0),
            speedup_vs_auth0: Some(3.0),
        }
    }

    #[test]
    fn the_page_has_a_table_per_backend_and_every_chart() {
        let rows = vec![
            row("memory", Op::Set, 10, 200.0),
            row("memory", Op::Subset, 10, 900.0),
            row("memory", Op::Subset, 100, 2_000.0),
            row("memory", Op::AllKeys, 10, 500.0),
            row("memory", Op::AllKeys, 100, 5_000.0),
            row("redis<x>", Op::Set, 10, 40_000.0),
            row("redis<x>", Op::Subset, 10, 90_000.0),
            row("redis<x>", Op::Subset, 100, 95_000.0),
            row("redis<x>", Op::AllKeys, 10, 80_000.0),
            row("redis<x>", Op::AllKeys, 100, 85_000.0),
        ];
        let env = Environment {
            cpu: "Test CPU".into(),
            cores: 2,
            os: "Linux".into(),
            rustc: "rustc 1.0".into(),
            version: "0.1.0".into(),
            date: "2026-12-01 10:00:00 UTC".into(),
        };
        let facts = vec![("memory bytes/entry".to_owned(), "512".to_owned())];
        let html = render(&Page {
            env: &env,
            rows: &rows,
            baseline: None,
            skipped: &[],
            facts: &facts,
        });
        assert!(html.starts_with("<!DOCTYPE html>"));
        // 5 workloads → 5 bar charts, plus 2 curves.
        assert_eq!(html.matches("<svg ").count(), 7);
        assert_eq!(
            html.matches("<title>").count(),
            8,
            "the page's and one per chart"
        );
        assert_eq!(html.matches("<table>").count(), 2);
        assert!(html.contains("<h2>redis&lt;x&gt; backend</h2>"));
        assert!(!html.contains("redis<x>"));
        assert!(html.contains("3.0× faster"));
        assert!(html.contains("<dd>512</dd>") && html.contains("Test CPU"));
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
        assert!(!html.contains("http:") && !html.contains("https:"));
    }
}
