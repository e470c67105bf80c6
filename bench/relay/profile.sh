#!/usr/bin/env bash
# profile.sh - where coexd's time goes under the benchmark load.
#
#   ./profile.sh perf-record|perf-stat|strace|callgrind [MSGS] [CONC]
#
# Starts coexd (coexd-run.sh, same config and 10,000-pair map as the matrix),
# sends WARMUP messages, then one measured smtp-source run of MSGS messages
# (default 20000; callgrind: 2000) with CONC sessions (default 50) while:
#   perf-record  perf record -g -p PID (call graphs) -> $OUT/perf.data + report
#   perf-stat    perf stat -p PID (cycles, instructions, context switches ...)
#   strace       coexd runs under strace -c -f (syscall counts, all threads)
#   callgrind    coexd runs under valgrind --tool=callgrind, instrumentation on only
#                for the measured run (callgrind_control -i on/off)
# Output in $OUT (default /tmp/coexd-profile/MODE). Bounded: the run has
# RUN_TIMEOUT (default 600 s); coexd and the profiler are stopped by PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# off the default 2525/2526 (other test runs); read before common.sh sets its defaults
PROFILE_TARGET_PORT=${TARGET_PORT:-12525} PROFILE_SINK_PORT=${SINK_PORT:-12526}
. "$HERE/common.sh"
MODE=${1:?usage: $0 perf-record|perf-stat|strace|callgrind [MSGS] [CONC]}
DEFAULT_MSGS=20000
[ "$MODE" = callgrind ] && DEFAULT_MSGS=2000
MSGS=${2:-$DEFAULT_MSGS}
CONC=${3:-50}
: "${WARMUP:=500}"
export TARGET_PORT=$PROFILE_TARGET_PORT SINK_PORT=$PROFILE_SINK_PORT
OUT=${OUT:-/tmp/coexd-profile/$MODE}
# one fixed binary: a snapshot of COEX_REV (default HEAD), unless COEX_BIN is set
if [ -z "${COEX_BIN:-}" ]; then
    COEX_BIN=$("$HERE/build-snapshot.sh" "${COEX_REV:-HEAD}") || exit 1
fi
export COEX_BIN
case $OUT in /tmp/*) ;; *) echo "OUT must be under /tmp" >&2; exit 2 ;; esac
rm -rf "$OUT"; mkdir -p "$OUT"
export COEXD_WORK=$OUT/work
mkdir -p "$COEXD_WORK.map"
export MAP_FILE=$COEXD_WORK.map/map
write_map_lines " " > "$MAP_FILE"
case $MODE in
    strace) export COEXD_WRAP="strace -f -c -o $OUT/strace-c.txt" ;;
    callgrind) export COEXD_WRAP="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$OUT/callgrind.out" ;;
    perf-record|perf-stat) ;;
    *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac
"$HERE/coexd-run.sh" > "$OUT/coexd-run.out" 2>&1 &
RUN_PID=$!
PROF_PID=
cleanup() {
    [ -n "$PROF_PID" ] && kill -INT "$PROF_PID" 2>/dev/null && wait "$PROF_PID" 2>/dev/null
    kill_tree "$RUN_PID" 30
}
trap cleanup EXIT
wait_port "$TARGET_PORT" 60 || { echo "coexd did not start"; cat "$OUT/coexd-run.out"; exit 1; }
# the coexd process itself (under strace/valgrind it is a child or the same PID)
COEXD_PID=$(descendants "$RUN_PID" | while read -r p; do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = coexd ] && echo "$p"; done | head -1)
[ -n "$COEXD_PID" ] || COEXD_PID=$RUN_PID
log "coexd pid $COEXD_PID (mode $MODE), load $(cut -d' ' -f1-3 /proc/loadavg)"
MSGS=$WARMUP RUN_TIMEOUT=300 loadrun "profile-warmup" > /dev/null
case $MODE in
    perf-record) perf record -g -F 999 -p "$COEXD_PID" -o "$OUT/perf.data" 2>"$OUT/perf.err" & PROF_PID=$! ;;
    perf-stat) perf stat -e task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions,branches,branch-misses \
                   -p "$COEXD_PID" -o "$OUT/perf-stat.txt" & PROF_PID=$! ;;
    callgrind) callgrind_control -i on "$RUN_PID" > /dev/null ;;
esac
sleep 0.5
loadrun "profile-$MODE" --relay-pid "$COEXD_PID" | tee "$OUT/loadrun.json"
case $MODE in
    perf-record|perf-stat) kill -INT "$PROF_PID"; wait "$PROF_PID"; PROF_PID= ;;
    callgrind) callgrind_control -i off "$RUN_PID" > /dev/null ;;
esac
cleanup; trap - EXIT
sleep 1
case $MODE in
    perf-record)
        perf report -i "$OUT/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^$' | head -80 > "$OUT/report-self.txt"
        perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -v '^$' | head -80 > "$OUT/report-children.txt"
        perf report -i "$OUT/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^$' | head -30 > "$OUT/report-dso.txt"
        ;;
    callgrind)
        f=$(ls "$OUT"/callgrind.out* | head -1)
        callgrind_annotate --inclusive=yes "$f" 2>/dev/null | head -80 > "$OUT/annotate-inclusive.txt"
        callgrind_annotate "$f" 2>/dev/null | head -60 > "$OUT/annotate-self.txt"
        ;;
esac
log "output in $OUT"
ls "$OUT"
