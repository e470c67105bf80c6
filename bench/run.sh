#!/bin/bash
# bench/run.sh - run the micro-benchmarks and print the machine they ran on.
#
# Builds nothing: `make bench` builds build/bin/rewrite_bench and
# build/bin/dir_bench first, then calls this script.
#
# Environment:
#   BENCH_DIR_PAIRS     pairs for dir_bench (default 1000000; CI can use e.g. 100000)
#   BENCH_CPU           the CPU both benchmarks are pinned to (default: the last one)
#   BENCH_REWRITE_ARGS  extra rewrite_bench options, e.g. "-b 5 -n 2000 -g 500"
#   BENCH_EXO_OUTBOUND  the second rewrite input (default /work/shared/data/exo-outbound.eml)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=build/bin
PAIRS=${BENCH_DIR_PAIRS:-1000000}
CPU=${BENCH_CPU:-$(($(nproc) - 1))}
EXO_OUTBOUND=${BENCH_EXO_OUTBOUND:-/work/shared/data/exo-outbound.eml}
read -r -a REWRITE_ARGS <<<"${BENCH_REWRITE_ARGS:-}"

for b in rewrite_bench dir_bench; do
    if [[ ! -x $BIN/$b ]]; then
        echo "run.sh: $BIN/$b is missing: run 'make bench'" >&2
        exit 1
    fi
done

PIN=()
if command -v taskset >/dev/null; then
    PIN=(taskset -c "$CPU")
else
    echo "run.sh: taskset not found: running unpinned" >&2
fi

echo "== machine"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "nproc:   $(nproc)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel:  $(uname -sr)"
echo "cc:      $(${CC:-cc} --version | head -n1)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
echo "pinned:  ${PIN[*]:-no}"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"

inputs=(bench/data/exo-3k.eml)
if [[ -r $EXO_OUTBOUND ]]; then
    inputs+=("$EXO_OUTBOUND")
else
    echo "run.sh: $EXO_OUTBOUND not readable: skipped" >&2
fi

echo
echo "== rewrite_bench"
"${PIN[@]}" "$BIN/rewrite_bench" "${REWRITE_ARGS[@]}" "${inputs[@]}"

echo
echo "== dir_bench ($PAIRS pairs)"
"${PIN[@]}" "$BIN/dir_bench" -n "$PAIRS"
