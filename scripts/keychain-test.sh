#!/usr/bin/env bash
# The OS keychain test of tokencache-crypto (feature `keychain`) against a real keystore.
#
#   scripts/keychain-test.sh            install what is missing, run the keychain tests
#                                       (tokencache-crypto's, then the facade's SQLite one)
#   scripts/keychain-test.sh ARGS...    the same for `cargo test ARGS...`
#
# On Linux the keychain is the Secret Service: this script installs (apt-get) GNOME Keyring,
# D-Bus and libdbus (the `keyring` crate's Secret Service backend links libdbus), starts a
# private D-Bus session with `dbus-run-session`, unlocks a fresh GNOME Keyring in it with a
# throw-away password, and runs the test there. On macOS and Windows it runs the test as
# it is (the login keychain / Credential Manager). Anything that cannot be installed or
# started stops the script with a message, and a keychain the test cannot reach makes the
# test fail and say why: never a skip.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "keychain-test: FAILED: $*" >&2; exit 1; }
say() { echo "keychain-test: $*" >&2; }

if [ "$#" -eq 0 ]; then
  "$0" -p tokencache-crypto --features keychain --test keychain
  "$0" -p tokencache --features keychain,sqlite --test keys
  exit 0
fi
ARGS=("$@")

cd "$ROOT"
case "$(uname -s)" in
  Linux)
    if ! command -v gnome-keyring-daemon >/dev/null 2>&1 \
        || ! command -v dbus-run-session >/dev/null 2>&1 \
        || ! pkg-config --exists dbus-1 2>/dev/null; then
      SUDO=""
      [ "$(id -u)" -eq 0 ] || SUDO="sudo"
      say "installing gnome-keyring, dbus and libdbus-1-dev with apt-get"
      $SUDO apt-get update
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y gnome-keyring dbus dbus-x11 \
        libdbus-1-dev pkg-config
    fi
    command -v gnome-keyring-daemon >/dev/null 2>&1 || die "gnome-keyring-daemon not found"
    command -v dbus-run-session >/dev/null 2>&1 || die "dbus-run-session not found"
    # Build outside the D-Bus session, so that a slow build does not race the daemon.
    cargo test --no-run "${ARGS[@]}"
    say "running in a private D-Bus session with an unlocked GNOME Keyring"
    # The keyring's files go to a temporary home, not the user's (cargo and rustup keep
    # theirs).
    export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
    KEYRING_HOME="$(mktemp -d)"
    trap 'rm -rf "$KEYRING_HOME"' EXIT
    HOME="$KEYRING_HOME" XDG_DATA_HOME="$KEYRING_HOME/.local/share" \
      dbus-run-session -- sh -c '
        set -e
        # --unlock reads the new login keyring password on stdin and creates it.
        eval "$(echo throw-away-password | gnome-keyring-daemon --unlock --components=secrets)"
        export GNOME_KEYRING_CONTROL
        cargo test "$@"
      ' keychain-test "${ARGS[@]}" || die "the keychain test failed (see above)"
    ;;
  *)
    cargo test "${ARGS[@]}" || die "the keychain test failed (see above)"
    ;;
esac
say "ok"
