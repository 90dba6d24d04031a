#!/usr/bin/env bash
# Every test of the project, as CI runs it: setup, formatting, lints (native and wasm32),
# the native tests with a real redis-server and a real 3-master Redis Cluster, and the
# browser tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# CI machines have little disk: no incremental caches and no debug info in test builds keep a
# cold run's target folder small (with both, it grew past 20 GB here).
export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_DEV_STRIP=debuginfo
START=$SECONDS
step() {
  printf '\n==> %s  [%d s; %s free; target %s]\n' "$*" "$((SECONDS - START))" \
    "$(df -h --output=avail . | tail -1 | tr -d ' ')" \
    "$(du -sh target 2>/dev/null | cut -f1 || echo 0)" >&2
}

step "setup"
scripts/setup.sh

# The build files of the Tauri step and the keychain step's Secret Service come from Debian
# (about 140 packages): fetched and installed in the background while the Rust steps build,
# and waited for before those steps (which still check, and install what is missing).
APT_LOG="$(mktemp)"
APT_PID=""
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  (
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends libgtk-3-dev libwebkit2gtk-4.1-dev \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends libgtk-3-dev libwebkit2gtk-4.1-dev; }
    apt-get install -y -qq gnome-keyring dbus dbus-x11 libdbus-1-dev pkg-config
  ) >"$APT_LOG" 2>&1 &
  APT_PID=$!
fi
wait_for_apt() {
  if [ -n "$APT_PID" ]; then
    wait "$APT_PID" || { echo "background apt-get failed; the step installs what it needs:" >&2; tail -20 "$APT_LOG" >&2; }
    APT_PID=""
  fi
}

step "rustfmt"
cargo fmt --all -- --check

step "clippy (native, all targets)"
# The Tauri plugin needs GTK's build files: scripts/tauri-test.sh installs them and checks it.
cargo clippy --workspace --exclude tauri-plugin-tokencache --all-targets --locked -- -D warnings
cargo clippy -p tokencache --features sqlite,redis,tls,oauth2 --all-targets --locked -- -D warnings

step "rustdoc (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --exclude tokencache-web --exclude tauri-plugin-tokencache
RUSTDOCFLAGS="-D warnings" cargo doc --target wasm32-unknown-unknown --no-deps --locked -p tokencache-web

step "wasm32: core, conformance, memory, crypto build for the browser"
cargo check --locked --target wasm32-unknown-unknown -p tokencache-core -p tokencache-conformance -p tokencache-memory -p tokencache-crypto
cargo clippy --locked --target wasm32-unknown-unknown -p tokencache-web --all-targets -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown -p tokencache --no-default-features --features memory,web,crypto -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown --example oauth2_refresh --no-default-features --features oauth2,web,memory -- -D warnings

step "packaging: every publishable crate packs as crates.io would take it"
cargo package --workspace --locked --no-verify --allow-dirty --exclude tokencache-benches >/dev/null

step "native tests and examples (with redis-server and a Redis Cluster started on loopback)"
# The facade's own tests and examples run with every native feature at once: one build.
ALL="sqlite,redis,tls,oauth2"
scripts/redis.sh bash -c "cargo test --workspace --exclude tauri-plugin-tokencache --locked &&
  cargo test -p tokencache --features $ALL --locked &&
  cargo run --locked --quiet --features $ALL --example memory &&
  cargo run --locked --quiet --features $ALL --example sqlite &&
  cargo run --locked --quiet --features $ALL --example redis &&
  cargo run --locked --quiet --features $ALL --example oauth2_refresh"

step "bench report: tokencache bench --report on every backend and auth0-spa-js, rendered by headless Chromium"
PROFILE=debug scripts/report-test.sh

step "a fresh clone of HEAD in an empty folder: no path outside the repository, CLI and differential tests pass"
scripts/clone-test.sh

# The native test executables are not needed any more (the libraries they link stay, so
# nothing is rebuilt): gigabytes that a small CI disk wants back.
find target/debug/deps -maxdepth 1 -type f -executable ! -name '*.so' -delete 2>/dev/null || true

step "JavaScript: our auth0-spa-js harness (node --test)"
(cd tools/auth0-spa-js && npm ci --no-audit --no-fund --loglevel=error && node --test)

step "JavaScript: the bridge package (node --test, npm pack)"
(cd js/tokencache-bridge && npm test && npm pack --dry-run >/dev/null 2>&1)

step "browser tests (headless Chromium)"
scripts/web-test.sh

step "bridge end to end: the real auth0-spa-js in headless Chromium, tokens in native encrypted SQLite"
scripts/e2e-test.sh

step "Tauri plugin (mock runtime; installs GTK/WebKitGTK build files from Debian)"
wait_for_apt
scripts/tauri-test.sh

step "key sources: the OS keychain (a real GNOME Keyring over D-Bus), key files"
scripts/keychain-test.sh

step "all tests passed"
