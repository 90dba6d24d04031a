#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for the tests: rustfmt/clippy, the wasm32
# target, wasm-bindgen-cli at the version in Cargo.lock, redis-server, Chromium and
# ChromeDriver, Node.js/npm. Each step is skipped when its tool is already there, and any
# failure stops the run loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> setup: %s\n' "$*" >&2; }

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

for comp in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$comp" || { say "adding rustup component $comp"; rustup component add "$comp"; }
done
rustup target list --installed | grep -qx wasm32-unknown-unknown || {
  say "adding rustup target wasm32-unknown-unknown"; rustup target add wasm32-unknown-unknown; }

wb_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
[ -n "$wb_version" ] || { echo "setup: cannot read the wasm-bindgen version from Cargo.lock" >&2; exit 1; }
have=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$wb_version" ]; then
  say "installing wasm-bindgen-cli $wb_version (have: ${have:-none}); takes a few minutes"
  cargo install wasm-bindgen-cli --version "$wb_version" --force
fi
say "ok"
