#!/usr/bin/env bash
# Clones HEAD into an empty temporary folder (nothing beside it) and checks that the clone
# stands alone: nothing in it refers to a path outside the repository, and the CLI tests and
# the differential test against the real auth0-spa-js pass there. Uncommitted changes are not
# part of the clone: commit first.
#
#   scripts/clone-test.sh            (the test script runs it; Redis is started for it)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "clone-test: $*" >&2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tokencache-clone.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
git clone --quiet --no-hardlinks "$ROOT" "$WORK/tokencache"
cd "$WORK/tokencache"
say "cloned $(git rev-parse --short HEAD) into $WORK/tokencache"

# (The patterns are spelled in two pieces so that this line does not find itself.)
if grep -rn --exclude-dir=.git --exclude-dir=node_modules -e '\.\./'"shared" -e '/work/'"shared" . ; then
  say "FAILED: the files above refer to a folder outside the repository"
  exit 1
fi

# Reuse the main build's dependencies (the clone's own crates are rebuilt: other paths). The
# package selection is the main run's, so that features unify the same way and no dependency
# is built a second time; `--test` picks the CLI tests and the differential test.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
scripts/redis.sh cargo test --locked --workspace --exclude tauri-plugin-tokencache \
  --test cli --test readme --test differential
say "ok"
