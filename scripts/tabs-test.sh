#!/usr/bin/env bash
# Three Chromium tabs x 20 tasks -> one refresh call: tokencache-web's LocalStorageCache and
# WebLock under CacheManager::get_or_refresh, in tabs of one origin in headless Chromium,
# against the mock identity provider of tokencache-conformance (tests/tabs.rs of
# tokencache-web; the page's wasm module is its example `tabs`).
#
#   scripts/tabs-test.sh
#
# Installs what a fresh Debian machine lacks: the wasm32-unknown-unknown rustup target,
# wasm-bindgen-cli at the wasm-bindgen version in Cargo.lock, Debian's chromium (apt-get),
# playwright-core (npm ci in crates/tokencache-web/tests/tabs). Node.js 20 or newer and npm
# must be there (playwright-core needs Node 20). Anything missing stops the script with a
# message: never a skip.
#
# Env: TOKENCACHE_TABS_CHROMIUM (default /usr/bin/chromium), CARGO_TARGET_DIR (optional).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CRATE="$ROOT/crates/tokencache-web"
SUPPORT="$CRATE/tests/tabs"
CHROMIUM="${TOKENCACHE_TABS_CHROMIUM:-/usr/bin/chromium}"

die() { echo "tabs-test: FAILED: $*" >&2; exit 1; }
say() { echo "tabs-test: $*"; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

START=$SECONDS
need cargo "install Rust with rustup"
need rustup "the wasm32 target is installed with rustup"
need node "install Node.js 20 or newer"
need npm "install npm (it comes with Node.js)"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js $(node --version) is too old: playwright-core needs 20 or newer"

# 1. The wasm32 target and wasm-bindgen-cli at the version of wasm-bindgen in Cargo.lock.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "installing the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
[ -n "$WB_VERSION" ] || die "no wasm-bindgen in Cargo.lock"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
have_bindgen() { wasm-bindgen --version 2>/dev/null | awk '{ print $2 }'; }
if [ "$(have_bindgen)" != "$WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION (found: '$(have_bindgen)')"
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi
[ "$(have_bindgen)" = "$WB_VERSION" ] || die "wasm-bindgen $WB_VERSION not available after install"

# 2. Debian's Chromium (the test drives it; it never downloads a browser of its own).
if [ ! -x "$CHROMIUM" ]; then
  [ "$CHROMIUM" = /usr/bin/chromium ] || die "TOKENCACHE_TABS_CHROMIUM=$CHROMIUM is not an executable"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  say "installing chromium with apt-get"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
fi
[ -x "$CHROMIUM" ] || die "$CHROMIUM missing after apt-get install chromium"
CHROME_VERSION="$("$CHROMIUM" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1 || true)"

# 3. playwright-core at the version of package-lock.json.
say "npm ci in crates/tokencache-web/tests/tabs"
(cd "$SUPPORT" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
PW_VERSION="$(cd "$SUPPORT" && node -p 'require("./node_modules/playwright-core/package.json").version')"

# 4. The page's wasm module: the example `tabs` for wasm32, through wasm-bindgen --target web.
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
say "building the page module (cargo build --target wasm32-unknown-unknown --example tabs)"
cargo build --locked --target wasm32-unknown-unknown -p tokencache-web --example tabs
WASM="$TARGET_DIR/wasm32-unknown-unknown/debug/examples/tabs.wasm"
[ -f "$WASM" ] || die "$WASM was not built"
PKG="$TARGET_DIR/tabs-pkg"
rm -rf "$PKG"
wasm-bindgen --target web --no-typescript --out-dir "$PKG" --out-name tabs "$WASM"
[ -f "$PKG/tabs.js" ] && [ -f "$PKG/tabs_bg.wasm" ] || die "wasm-bindgen wrote no bundle to $PKG"

# 5. The native side (lints, as it is not among --all-targets: test = false), then the test.
cargo clippy --locked -p tokencache-web --test tabs -- -D warnings
cargo build --locked -p tokencache-web --test tabs
say "chromium ${CHROME_VERSION:-?}, node $(node --version), playwright-core $PW_VERSION, wasm-bindgen $WB_VERSION"
export TOKENCACHE_TABS_PKG="$PKG" TOKENCACHE_TABS_CHROMIUM="$CHROMIUM"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
TEST_START=$SECONDS
set +e
cargo test --locked -p tokencache-web --test tabs -- --nocapture --test-threads=1 2>&1 | tee "$LOG"
STATUS=${PIPESTATUS[0]}
set -e
[ "$STATUS" -eq 0 ] || die "cargo test exited with $STATUS"
grep -q '^test result: ok\. 3 passed' "$LOG" || die "the three tab tests did not all run and pass"
grep -q 'tabs: 3 tabs x 20 calls' "$LOG" || die "the three-tab test printed no result"
grep -q 'tabs: holder closed mid-refresh:' "$LOG" || die "the closed-holder test printed no result"
grep -q 'tabs: holder closed mid-refresh, no reuse interval:' "$LOG" \
  || die "the closed-holder test without a reuse interval printed no result"
say "passed (tests $((SECONDS - TEST_START)) s, script $((SECONDS - START)) s)"
