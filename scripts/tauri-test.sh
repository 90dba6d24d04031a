#!/usr/bin/env bash
# Tests of tauri-plugin-tokencache (Tauri v2 mock runtime; no display needed).
#
#   scripts/tauri-test.sh   install what is missing, then test and lint the plugin crate
#
# Tauri's runtime links GTK and WebKitGTK on Linux even without a webview, so the crate needs
# their build files: Debian's libgtk-3-dev and libwebkit2gtk-4.1-dev. They are installed
# (apt-get, as root or through sudo) when `dpkg -s` says they are missing. Then:
#   cargo test   --locked -p tauri-plugin-tokencache
#   cargo clippy --locked -p tauri-plugin-tokencache --all-targets -- -D warnings
# Anything that cannot be installed stops the script with a message: never a skip.
#
# Env: CARGO_TARGET_DIR (optional).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES=(libgtk-3-dev libwebkit2gtk-4.1-dev)

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "tauri-test: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

die() { echo "tauri-test: FAILED: $*" >&2; exit 1; }
say() { echo "tauri-test: $*"; }
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup"

# 1. GTK and WebKitGTK build files (Linux only: macOS and Windows bring their own webviews).
if [ "$(uname -s)" = Linux ]; then
  missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 \
      || die "missing ${missing[*]} and no apt-get: install them with your package manager"
    if [ "$(id -u)" -eq 0 ]; then
      SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
      SUDO=(sudo)
    else
      die "missing ${missing[*]}: run as root or install sudo"
    fi
    say "installing ${missing[*]}"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "${missing[@]}"
    for pkg in "${missing[@]}"; do
      dpkg -s "$pkg" >/dev/null 2>&1 || die "$pkg is still not installed"
    done
  fi
fi

# 2. Tests (mock runtime, real encrypted SQLite in temporary directories), then clippy.
cd "$ROOT"
say "cargo test -p tauri-plugin-tokencache"
cargo test --locked -p tauri-plugin-tokencache
say "cargo clippy -p tauri-plugin-tokencache"
cargo clippy --locked -p tauri-plugin-tokencache --all-targets -- -D warnings
say "ok"
