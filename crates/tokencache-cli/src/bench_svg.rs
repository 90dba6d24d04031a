//! Small inline-SVG charts for the HTML report of `tokencache bench --report`: log-scale
//! horizontal bar charts and log-log line charts, as text with no script and no external
//! resource.

use std::fmt::Write as _;

/// The colours of the series, in order (the last one is kept for auth0-spa-js).
const PALETTE: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#e377c2",
];
/// The colour of auth0-spa-js in every chart.
pub const AUTH0_COLOUR: &str = "#d62728";

/// The colour of series number `i`.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// `text` escaped for XML/HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The powers of ten from the one at or below `min` to the one at or above `max`
/// (both positive): the ticks of a log axis covering `[min, max]`.
pub fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    if !(min > 0.0 && max > 0.0 && min.is_finite() && max.is_finite()) {
        return vec![1.0, 10.0];
    }
    let (lo, hi) = (min.min(max), min.max(max));
    let first = lo.log10().floor() as i32;
    let mut last = hi.log10().ceil() as i32;
    if last == first {
        last += 1;
    }
    (first..=last).map(|e| 10f64.powi(e)).collect()
}

/// A log-scale axis mapping `[ticks[0], ticks[last]]` onto `[from, to]` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogAxis {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl LogAxis {
    /// An axis over the decades of `ticks` (from [`log_ticks`]) drawn from `from` to `to`.
    pub fn new(ticks: &[f64], from: f64, to: f64) -> Self {
        let lo = ticks.first().copied().unwrap_or(1.0).log10();
        let hi = ticks.last().copied().unwrap_or(10.0).log10();
        LogAxis { lo, hi, from, to }
    }

    /// The pixel of value `v` (clamped to the axis).
    pub fn px(&self, v: f64) -> f64 {
        let span = (self.hi - self.lo).max(f64::EPSILON);
        let t = ((v.max(f64::MIN_POSITIVE).log10() - self.lo) / span).clamp(0.0, 1.0);
        self.from + t * (self.to - self.from)
    }
}

/// A nanosecond duration in the unit that keeps it short: `250 ns`, `12 µs`, `3.4 ms`.
pub fn fmt_duration(ns: f64) -> String {
    let (v, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0} {unit}")
    } else if v >= 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.2} {unit}")
    }
}

/// A count on an axis: `10`, `1k`, `100k`, `1M`.
pub fn fmt_count_short(n: f64) -> String {
    if n >= 1e6 {
        format!("{}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{}k", n / 1e3)
    } else {
        format!("{n}")
    }
}

/// One bar: a label, a value in nanoseconds and its colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The label left of the bar.
    pub label: String,
    /// The value, in nanoseconds (positive).
    pub ns: f64,
    /// The fill colour.
    pub colour: &'static str,
}

/// The opening of an `<svg>` with its accessible `<title>` and a visible heading.
fn open_svg(out: &mut String, width: u32, height: u32, title: &str) {
    let t = escape(title);
    let _ = write!(
        out,
        r#"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{t}"><title>{t}</title>"#
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="18" text-anchor="middle" class="chart-title">{t}</text>"#,
        width / 2
    );
}

/// A horizontal bar chart of durations on a log axis, each bar labelled with its value.
pub fn bar_chart(title: &str, bars: &[Bar]) -> String {
    const W: u32 = 560;
    const LEFT: f64 = 110.0;
    const RIGHT: f64 = 480.0;
    const TOP: f64 = 30.0;
    const ROW: f64 = 22.0;
    let plot_h = ROW * bars.len().max(1) as f64;
    let height = (TOP + plot_h + 34.0) as u32;
    let values: Vec<f64> = bars.iter().map(|b| b.ns).filter(|v| *v > 0.0).collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    let ticks = log_ticks(min, max);
    let axis = LogAxis::new(&ticks, LEFT, RIGHT);
    let mut out = String::new();
    open_svg(&mut out, W, height, title);
    let bottom = TOP + plot_h;
    for t in &ticks {
        let x = axis.px(*t);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}" class="grid"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
            bottom + 14.0,
            escape(&fmt_duration(*t))
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" class="axis"/><line x1="{LEFT}" y1="{bottom}" x2="{RIGHT}" y2="{bottom}" class="axis"/>"#
    );
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis-label">time per operation (log scale, shorter is faster)</text>"#,
        (LEFT + RIGHT) / 2.0,
        bottom + 28.0
    );
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64 + 4.0;
        let w = (axis.px(b.ns) - LEFT).max(1.0);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="bar-label">{}</text><rect x="{LEFT}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" class="value">{}</text>"#,
            LEFT - 6.0,
            y + 13.0,
            escape(&b.label),
            ROW - 8.0,
            b.colour,
            LEFT + w + 4.0,
            y + 12.0,
            escape(&fmt_duration(b.ns))
        );
    }
    out.push_str("</svg>");
    out
}

/// One line of a line chart: a name, a colour and `(x, y)` points (positive).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name in the legend.
    pub name: String,
    /// The stroke colour.
    pub colour: &'static str,
    /// The points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// A log-log line chart of durations (y, ns) against counts (x), with a legend.
pub fn log_log_chart(title: &str, x_label: &str, series: &[Series]) -> String {
    const W: u32 = 640;
    const H: u32 = 380;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 470.0;
    const TOP: f64 = 32.0;
    const BOTTOM: f64 = 320.0;
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let xs: Vec<f64> = pts().map(|p| p.0).filter(|v| *v > 0.0).collect();
    let ys: Vec<f64> = pts().map(|p| p.1).filter(|v| *v > 0.0).collect();
    let range = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max),
        )
    };
    let (x_ticks, y_ticks) = (log_ticks(range(&xs).0, range(&xs).1), {
        let (lo, hi) = range(&ys);
        log_ticks(lo, hi)
    });
    let x_axis = LogAxis::new(&x_ticks, LEFT, RIGHT);
    let y_axis = LogAxis::new(&y_ticks, BOTTOM, TOP);
    let mut out = String::new();
    open_svg(&mut out, W, H, title);
    for t in &x_ticks {
        let x = x_axis.px(*t);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" class="grid"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
            BOTTOM + 16.0,
            escape(&fmt_count_short(*t))
        );
    }
    for t in &y_ticks {
        let y = y_axis.px(*t);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" class="grid"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            escape(&fmt_duration(*t))
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}" class="axis"/><line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" class="axis"/>"#
    );
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis-label">{} (log scale)</text><text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})" class="axis-label">time per operation (log scale)</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 34.0,
        escape(x_label),
        (TOP + BOTTOM) / 2.0,
        (TOP + BOTTOM) / 2.0,
    );
    for (i, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0)
            .map(|(x, y)| format!("{:.1},{:.1}", x_axis.px(*x), y_axis.px(*y)))
            .collect();
        if !path.is_empty() {
            let _ = write!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                path.join(" "),
                s.colour
            );
            for p in &path {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    out,
                    r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#,
                    s.colour
                );
            }
        }
        let ly = TOP + 8.0 + 20.0 * i as f64;
        let _ = write!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            RIGHT + 14.0,
            RIGHT + 34.0,
            s.colour,
            RIGHT + 40.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("µs plain"), "µs plain");
    }

    #[test]
    fn log_ticks_cover_the_range_by_decades() {
        assert_eq!(log_ticks(12.0, 950.0), vec![10.0, 100.0, 1000.0]);
        assert_eq!(log_ticks(100.0, 100.0), vec![100.0, 1000.0]);
        assert_eq!(log_ticks(0.5, 20.0), vec![0.1, 1.0, 10.0, 100.0]);
        assert_eq!(log_ticks(0.0, 10.0), vec![1.0, 10.0]);
        assert_eq!(log_ticks(f64::NAN, 10.0), vec![1.0, 10.0]);
    }

    #[test]
    fn a_log_axis_maps_decades_evenly() {
        let axis = LogAxis::new(&log_ticks(10.0, 1000.0), 100.0, 300.0);
        assert!((axis.px(10.0) - 100.0).abs() < 1e-9);
        assert!((axis.px(100.0) - 200.0).abs() < 1e-9);
        assert!((axis.px(1000.0) - 300.0).abs() < 1e-9);
        // Outside the axis: clamped. An inverted axis (y grows downwards) works too.
        assert!((axis.px(1e9) - 300.0).abs() < 1e-9);
        let y = LogAxis::new(&[1.0, 10.0], 300.0, 100.0);
        assert!((y.px(10.0) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(fmt_duration(250.0), "250 ns");
        assert_eq!(fmt_duration(1000.0), "1 µs");
        assert_eq!(fmt_duration(12_345.0), "12.3 µs");
        assert_eq!(fmt_duration(3_400_000.0), "3.40 ms");
        assert_eq!(fmt_count_short(10.0), "10");
        assert_eq!(fmt_count_short(100_000.0), "100k");
        assert_eq!(fmt_count_short(1_000_000.0), "1M");
    }

    #[test]
    fn a_bar_chart_has_title_axis_and_labelled_bars() {
        let svg = bar_chart(
            "set <memory>",
            &[
                Bar {
                    label: "memory".into(),
                    ns: 300.0,
                    colour: colour(0),
                },
                Bar {
                    label: "auth0-spa-js".into(),
                    ns: 4_000.0,
                    colour: AUTH0_COLOUR,
                },
            ],
        );
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title>set &lt;memory&gt;</title>"), "{svg}");
        assert!(!svg.contains("<memory>"));
        assert_eq!(svg.matches("<rect ").count(), 2);
        for label in [">memory<", ">auth0-spa-js<", ">300 ns<", ">4 µs<"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        // Decade ticks 100 ns .. 10 µs.
        for tick in [">100 ns<", ">1 µs<", ">10 µs<"] {
            assert!(svg.contains(tick), "{tick} in {svg}");
        }
        // The longer value has the longer bar.
        let widths: Vec<f64> = svg
            .match_indices("<rect ")
            .map(|(i, _)| {
                let rest = &svg[i..];
                let w = &rest[rest.find("width=\"").unwrap() + 7..];
                w[..w.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(widths[0] < widths[1], "{widths:?}");
    }

    #[test]
    fn a_log_log_chart_has_a_line_and_legend_per_series() {
        let s = |name: &str, c, k: f64| Series {
            name: name.into(),
            colour: c,
            points: [10.0, 100.0, 1000.0].iter().map(|&n| (n, n * k)).collect(),
        };
        let svg = log_log_chart(
            "subset lookup",
            "other keys",
            &[
                s("memory", colour(0), 5.0),
                s("auth0-spa-js", AUTH0_COLOUR, 50.0),
            ],
        );
        assert!(svg.contains("<title>subset lookup</title>"));
        assert_eq!(svg.matches("<polyline ").count(), 2);
        assert_eq!(svg.matches("<circle ").count(), 6);
        for label in [
            ">memory<",
            ">auth0-spa-js<",
            ">10<",
            ">1k<",
            "other keys (log scale)",
            ">10 ns<",
            ">100 µs<",
        ] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
    }
}
