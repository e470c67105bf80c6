#!/usr/bin/env bash
# build-snapshot.sh - build coexd and coexctl from a committed revision
# (default HEAD) in /tmp/coexd-bench-build/SHA, away from the working tree,
# so that a benchmark measures one fixed binary while others edit and rebuild
# build/. Prints the bin directory: COEX_BIN=$(./build-snapshot.sh [REV]).
set -eu
REV=${1:-HEAD}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SHA=$(git -C "$REPO" rev-parse --short=12 "$REV^{commit}")
DIR=/tmp/coexd-bench-build/$SHA
if [ ! -x "$DIR/build/bin/coexd" ] || [ ! -x "$DIR/build/bin/coexctl" ]; then
    rm -rf "$DIR"
    mkdir -p "$DIR"
    git -C "$REPO" archive "$SHA" | tar -x -C "$DIR"
    make -C "$DIR" -j2 build/bin/coexd build/bin/coexctl >&2
fi
echo "$DIR/build/bin"
