#!/usr/bin/env bash
# The end-to-end test of tokencache-bridge: the real @auth0/auth0-spa-js (2.28.3, pinned in
# crates/tokencache-bridge/tests/e2e/package-lock.json) in headless Chromium, driven with
# playwright-core, logs in against a Rust test server that is both the bridge (over an
# encrypted SQLite file) and a fake authorization server. Twice: with a bridge whose cache
# lists its keys, and in manifest mode.
#
#   scripts/e2e-test.sh
#
# Installs what a fresh Debian machine lacks: Debian's chromium (apt-get), the npm packages
# (npm ci in the test's folder). Node.js 20 or newer and npm must be there (playwright-core
# needs Node 20). Anything missing stops the script with a message: never a skip.
#
# Env: TOKENCACHE_E2E_CHROMIUM (default /usr/bin/chromium), CARGO_TARGET_DIR (optional).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUPPORT="$ROOT/crates/tokencache-bridge/tests/e2e"
CHROMIUM="${TOKENCACHE_E2E_CHROMIUM:-/usr/bin/chromium}"

die() { echo "e2e-test: FAILED: $*" >&2; exit 1; }
say() { echo "e2e-test: $*"; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

need cargo "install Rust with rustup"
need node "install Node.js 20 or newer"
need npm "install npm (it comes with Node.js)"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js $(node --version) is too old: playwright-core needs 20 or newer"

# 1. Debian's Chromium (the test drives it; it never downloads a browser of its own).
if [ ! -x "$CHROMIUM" ]; then
  [ "$CHROMIUM" = /usr/bin/chromium ] || die "TOKENCACHE_E2E_CHROMIUM=$CHROMIUM is not an executable"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  say "installing chromium with apt-get"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
fi
[ -x "$CHROMIUM" ] || die "$CHROMIUM missing after apt-get install chromium"
CHROME_VERSION="$("$CHROMIUM" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1 || true)"

# 2. playwright-core and @auth0/auth0-spa-js at the versions of package-lock.json.
say "npm ci in crates/tokencache-bridge/tests/e2e"
(cd "$SUPPORT" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
AUTH0_VERSION="$(cd "$SUPPORT" && node -p 'require("./node_modules/@auth0/auth0-spa-js/package.json").version')"
[ "$AUTH0_VERSION" = "2.28.3" ] || die "@auth0/auth0-spa-js $AUTH0_VERSION installed; the test is for 2.28.3"
[ -f "$SUPPORT/node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.esm.js" ] \
  || die "@auth0/auth0-spa-js did not install its ES module build"
PW_VERSION="$(cd "$SUPPORT" && node -p 'require("./node_modules/playwright-core/package.json").version')"

# 3. The test (tests/e2e.rs, feature http): both modes, one after the other.
cd "$ROOT"
say "chromium ${CHROME_VERSION:-?}, node $(node --version), playwright-core $PW_VERSION, auth0-spa-js $AUTH0_VERSION"
export TOKENCACHE_E2E_CHROMIUM="$CHROMIUM"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
set +e
cargo test --locked -p tokencache-bridge --features http --test e2e -- --nocapture --test-threads=1 2>&1 | tee "$LOG"
STATUS=${PIPESTATUS[0]}
set -e
[ "$STATUS" -eq 0 ] || die "cargo test exited with $STATUS"
grep -q '^test result: ok\. 2 passed' "$LOG" || die "the two end-to-end tests did not both run and pass"
grep -q 'e2e Listing: passed' "$LOG" || die "the listing-mode run printed no result"
grep -q 'e2e Manifest: passed' "$LOG" || die "the manifest-mode run printed no result"
say "passed"
