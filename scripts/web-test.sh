#!/usr/bin/env bash
# Browser tests of tokencache-web (wasm32-unknown-unknown, headless Chromium).
#
#   scripts/web-test.sh           install what is missing, run every tokencache-web test in Chromium
#   scripts/web-test.sh --bench   the same, then the benchmark in a release build, with its figures
#
# Installs what a fresh Debian machine lacks: the wasm32-unknown-unknown rustup target,
# wasm-bindgen-cli at the wasm-bindgen version in Cargo.lock, Debian's chromium and
# chromium-driver, and @auth0/auth0-spa-js (npm ci from crates/tokencache-web/js). Anything
# that cannot be installed or found stops the script with a message: a missing browser is a
# failure, never a skip.
#
# Env: CARGO_TARGET_DIR (optional), WASM_BINDGEN_TEST_TIMEOUT (default 600 s for each test binary).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CRATE="$ROOT/crates/tokencache-web"
BENCH=0
for arg in "$@"; do
  case "$arg" in
    --bench) BENCH=1 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "web-test: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

die() { echo "web-test: FAILED: $*" >&2; exit 1; }
say() { echo "web-test: $*"; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

need cargo "install Rust with rustup"
need rustup "the wasm32 target is installed with rustup"

# 1. The wasm32 target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "installing the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# 2. wasm-bindgen-test-runner at the version of wasm-bindgen in Cargo.lock (they must match).
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
[ -n "$WB_VERSION" ] || die "no wasm-bindgen in Cargo.lock"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
have_runner() { wasm-bindgen-test-runner --version 2>/dev/null | awk '{ print $2 }'; }
if [ "$(have_runner)" != "$WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION (found: '$(have_runner)')"
  # Without --locked: with it, the CLI's pinned lock file fails to resolve (webpki-roots).
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi
[ "$(have_runner)" = "$WB_VERSION" ] || die "wasm-bindgen-test-runner $WB_VERSION not available after install"

# 3. Debian's Chromium and ChromeDriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  say "installing chromium and chromium-driver with apt-get"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium chromium-driver
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing after apt-get install chromium"
[ -x /usr/bin/chromedriver ] || die "/usr/bin/chromedriver missing after apt-get install chromium-driver"
CHROME_VERSION="$(/usr/bin/chromium --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1 || true)"
DRIVER_VERSION="$(/usr/bin/chromedriver --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1 || true)"
[ "${CHROME_VERSION%%.*}" = "${DRIVER_VERSION%%.*}" ] \
  || die "chromium $CHROME_VERSION and chromedriver $DRIVER_VERSION differ in major version"

# 4. The real @auth0/auth0-spa-js, from the npm registry, at the version in package-lock.json.
need npm "install Node.js and npm (Debian: apt-get install nodejs npm)"
say "npm ci in crates/tokencache-web/js"
(cd "$CRATE/js" && npm ci --no-audit --no-fund --ignore-scripts)
[ -f "$CRATE/js/node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.esm.js" ] \
  || die "@auth0/auth0-spa-js did not install its ES module build"

# 5. The tests, in headless Chromium (flags in crates/tokencache-web/webdriver.json).
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$CRATE/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"
cd "$ROOT"
say "chromium $CHROME_VERSION, wasm-bindgen $WB_VERSION; running the tests"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
set +e
say "note: the conformance kit's lease checks do not run in the browser (the suites share one page's Web Locks, which run by real time); tests/locks.rs and tests/tabs.rs check WebLock there"
cargo test --target wasm32-unknown-unknown -p tokencache-web 2>&1 | tee "$LOG"
STATUS=${PIPESTATUS[0]}
set -e
[ "$STATUS" -eq 0 ] || die "cargo test exited with $STATUS"
# Every browser test binary must have run tests in Chromium.
for t in auth0 bench conformance locks storage; do
  grep -q "Running tests/$t.rs" "$LOG" || die "tests/$t.rs did not run"
done
grep -q "Running headless tests in Chrome" "$LOG" || die "no test ran in Chromium"
PASSED="$(grep -Eo '^test result: ok\. [0-9]+ passed' "$LOG" | awk '{ s += $4 } END { print s + 0 }')"
[ "$PASSED" -ge 40 ] || die "only $PASSED tests passed; expected the whole suite"
say "$PASSED tests passed in Chromium"

# 5b. The wasm32 MemoryCache (its own small map; moka panics in browsers) in Chromium too.
say "tokencache-memory in Chromium"
set +e
WASM_BINDGEN_TEST_WEBDRIVER_JSON="$ROOT/crates/tokencache-memory/webdriver.json" \
  cargo test --target wasm32-unknown-unknown -p tokencache-memory 2>&1 | tee "$LOG"
STATUS=${PIPESTATUS[0]}
set -e
[ "$STATUS" -eq 0 ] || die "tokencache-memory browser tests exited with $STATUS"
grep -q "Running headless tests in Chrome" "$LOG" || die "tokencache-memory: no test ran in Chromium"

# ---------------------------------------------------------------------------------------
# 5c. Three tabs x 20 tasks -> one refresh call: tabs of one origin (one localStorage, one
#     set of Web Locks) refreshing through CacheManager::get_or_refresh against a mock
#     identity provider over fetch, and a holder tab closed mid-refresh. Its own script,
#     which installs what it needs (playwright-core, wasm-bindgen-cli) and never skips.
say "three tabs, one refresh call (scripts/tabs-test.sh)"
"$ROOT/scripts/tabs-test.sh" || die "scripts/tabs-test.sh failed"
# ---------------------------------------------------------------------------------------

# 6. The benchmark (a release build; figures on the BENCHMARK lines).
if [ "$BENCH" -eq 1 ]; then
  say "benchmark (release build)"
  set +e
  cargo test --release --target wasm32-unknown-unknown -p tokencache-web --test bench -- --nocapture 2>&1 | tee "$LOG"
  STATUS=${PIPESTATUS[0]}
  set -e
  [ "$STATUS" -eq 0 ] || die "the benchmark failed ($STATUS)"
  grep -q "BENCHMARK get ratio" "$LOG" || die "the benchmark printed no figures"
  echo
  grep "BENCHMARK" "$LOG" | sed 's/^ *//'
fi
