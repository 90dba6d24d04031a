#!/usr/bin/env bash
# Checks the HTML report of `tokencache bench --report`: builds the CLI, runs every
# backend against auth0-spa-js with small iteration counts (under scripts/redis.sh, so
# the Redis backend is reachable), renders the page with headless Chromium and checks
# the screenshot and the page: every chart present and labelled, no network resource.
#
#   scripts/report-test.sh            # the report and screenshot go to a temporary folder
#   KEEP=/some/dir scripts/report-test.sh   # ... or to that folder, kept
#   PROFILE=debug scripts/report-test.sh    # the debug build (what test.sh uses: already built
#                                           # by the tests; it checks the page, not the figures)
#
# The test uses --sizes 10,100,1000 for speed; the full scale curve is
#   tokencache bench --backend all --compare-auth0 --sizes 10,100,1000,10000,100000 --report report.html
set -euo pipefail

cd "$(dirname "$0")/.."

if [ -z "${TOKENCACHE_REDIS_URL:-}" ]; then
    exec scripts/redis.sh "$0" "$@"
fi

log() { echo "report-test.sh: $*" >&2; }
fail() {
    echo "report-test.sh: FAIL: $*" >&2
    exit 1
}

if [ -n "${KEEP:-}" ]; then
    OUT="$KEEP"
    mkdir -p "$OUT"
else
    OUT="$(mktemp -d "${TMPDIR:-/tmp}/tokencache-report.XXXXXX")"
    trap 'rm -rf "$OUT"' EXIT
fi

SIZES=10,100,1000
PROFILE="${PROFILE:-release}"
case "$PROFILE" in
    release) log "building the CLI (release)"; cargo build --release -q --locked -p tokencache-cli ;;
    debug) log "building the CLI (debug: the page is checked, its figures mean little)"
        cargo build -q --locked -p tokencache-cli ;;
    *) fail "PROFILE must be release or debug, not $PROFILE" ;;
esac
BIN="target/$PROFILE/tokencache"

log "running bench --backend all --compare-auth0 --sizes $SIZES"
"$BIN" bench --quiet --backend all --compare-auth0 \
    --redis-url "${TOKENCACHE_REDIS_URL%/}/?ns=tokencache-report-test" \
    --sizes "$SIZES" --iterations 300 --warmup 30 --clear-iterations 20 --max-time-ms 200 \
    --auth0-runs 3 --auth0-target-ms 20 --memory-entries 100000 --redis-unrelated 20000 \
    --report "$OUT/report.html" >"$OUT/table.txt"
cat "$OUT/table.txt"

CHROME="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[ -n "$CHROME" ] || fail "no chromium to render the page"
log "rendering with $CHROME"
"$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --screenshot="$OUT/report.png" --window-size=1280,4000 "file://$OUT/report.html" \
    >/dev/null 2>&1 || fail "chromium could not render the page"

python3 - "$OUT/report.html" "$OUT/report.png" "$SIZES" <<'PY'
import re, sys, struct

html_path, png_path, sizes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
html = open(html_path, encoding="utf-8").read()
errors = []

# The screenshot: a PNG of the requested size, not blank.
png = open(png_path, "rb").read()
if png[:8] != b"\x89PNG\r\n\x1a\n":
    errors.append("report.png is not a PNG")
else:
    w, h = struct.unpack(">II", png[16:24])
    if (w, h) != (1280, 4000):
        errors.append(f"report.png is {w}x{h}, not 1280x4000")
    if len(png) < 50_000:
        errors.append(f"report.png is only {len(png)} bytes: the page looks empty")

backends = ["memory", "sqlite", "redis"]
workloads = (["set", "exact_hit"] + [f"subset_{n}" for n in sizes]
             + [f"all_keys_{n}" for n in sizes] + [f"miss_{sizes[-1]}", "clear_100"])
# auth0-spa-js has no refresh lock: these rows and charts have our backends only.
refresh = ["refresh_lock", "forced_refresh"]

# One table per backend, a row per workload.
for b in backends:
    m = re.search(rf"<h2>{b} backend</h2><table>(.*?)</table>", html)
    if not m:
        errors.append(f"no table for {b}")
        continue
    rows = re.findall(r"<tr><td>([^<]*)</td>", m.group(1))
    if rows != workloads + refresh:
        errors.append(f"{b} table rows {rows} != {workloads + refresh}")
    for row in re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", m.group(1)):
        if row[0] in workloads and "<td class=\"n\">-</td>" in row[1]:
            errors.append(f"{b} table: {row[0]} has no auth0-spa-js ratio")

# Charts: one bar chart per workload and two scale curves, each with a <title>.
svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
expected = len(workloads) + len(refresh) + 2
if len(svgs) != expected:
    errors.append(f"{len(svgs)} <svg> charts, expected {expected}")
titles = [re.search(r"<title>([^<]*)</title>", s) for s in svgs]
titles = [t.group(1) for t in titles if t]
if len(titles) != len(svgs):
    errors.append("a chart has no <title>")
for w in workloads:
    svg = next((s for s in svgs if f"<title>{w}: " in s), None)
    if svg is None:
        errors.append(f"no bar chart for {w}")
        continue
    labels = re.findall(r'class="bar-label">([^<]*)<', svg)
    if labels != backends + ["auth0-spa-js"]:
        errors.append(f"bar chart {w} has bars {labels}")
for w in refresh:
    svg = next((s for s in svgs if f"<title>{w}: " in s), None)
    if svg is None:
        errors.append(f"no bar chart for {w}")
    elif re.findall(r'class="bar-label">([^<]*)<', svg) != backends:
        errors.append(f"bar chart {w} must have exactly the backends' bars")
for curve in ["scope-subset lookup", "all_keys vs"]:
    svg = next((s for s in svgs if f"<title>{curve}" in s), None)
    if svg is None:
        errors.append(f"no scale curve {curve}")
        continue
    legend = re.findall(r'class="legend">([^<]*)<', svg)
    if legend != backends + ["auth0-spa-js"]:
        errors.append(f"curve {curve} has series {legend}")
    if svg.count("<polyline") != 4 or svg.count("<circle") != 4 * len(sizes):
        errors.append(f"curve {curve}: lines or points missing")
    if "(log scale)" not in svg:
        errors.append(f"curve {curve} has no log-scale axis labels")

# Machine and versions.
for k in ["date", "tokencache", "CPU", "cores", "OS", "rustc", "auth0-spa-js", "node",
          "memory backend bytes/entry", "redis unrelated keys"]:
    if f"<dt>{k}</dt>" not in html:
        errors.append(f"no {k} in the header")

# Self-contained: no script, no network or file resource.
if re.search(r"<script|<link|<img|<iframe|@import|url\(", html, re.I):
    errors.append("the page loads a script or resource")
if re.search(r"(src|href)\s*=", html, re.I):
    errors.append("the page has a src= or href= reference")
if re.search(r"https?://", html):
    errors.append("the page contains an http(s):// reference")

if errors:
    print("\n".join("report-test.sh: FAIL: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"report-test.sh: OK: {len(svgs)} charts ({', '.join(titles[:3])}, ...), "
      f"{len(backends)} tables, {len(png)} byte screenshot")
PY
log "report: $OUT/report.html, screenshot: $OUT/report.png"
