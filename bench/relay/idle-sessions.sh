#!/usr/bin/env bash
# idle-sessions.sh - memory per idle SMTP session of coexd. ROUNDS times:
# start a fresh coexd (coexd-run.sh, max_connections = max_connections_per_ip
# = IDLE_N + 1000, file descriptor limit raised), measure it idle, hold IDLE_N
# sessions open after their greeting (idle_sessions.py), measure again, close
# them, stop coexd by its PID. A fresh process per round, because glibc keeps
# the freed heap: a second round in the same process reuses it and shows ~0.
#
#   ./idle-sessions.sh [--ehlo]   IDLE_N=5000 ROUNDS=3 TARGET_PORT=12525
#   --ehlo: each session sends EHLO and reads the reply before it idles
# JSON lines go to $RESULTS/idle.jsonl (default /tmp/coexd-bench-results).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
: "${IDLE_N:=5000}" "${ROUNDS:=3}" "${RESULTS:=/tmp/coexd-bench-results}"
export TARGET_PORT=${TARGET_PORT:-12525} SINK_PORT=${SINK_PORT:-12526}
export COEXD_MAX_CONN=$((IDLE_N + 1000))
export COEXD_WORK=${COEXD_WORK:-/tmp/coexdbench-idle}
mkdir -p "$RESULTS"
# one fixed binary: a snapshot of COEX_REV (default HEAD), unless COEX_BIN is set
if [ -z "${COEX_BIN:-}" ]; then
    COEX_BIN=$("$HERE/build-snapshot.sh" "${COEX_REV:-HEAD}") || exit 1
fi
export COEX_BIN
ulimit -n $((IDLE_N * 2 + 1000)) || { echo "cannot raise ulimit -n" >&2; exit 1; }
# the same 10,000-pair directory as the throughput runs (no message is sent)
. "$HERE/common.sh"
mkdir -p "$COEXD_WORK.map"
export MAP_FILE=$COEXD_WORK.map/map
write_map_lines " " > "$MAP_FILE"
PID=
stop() {
    [ -n "$PID" ] || return 0
    kill -TERM "$PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=
}
trap stop EXIT
rc=0
for ((round = 1; round <= ROUNDS; round++)); do
    "$HERE/coexd-run.sh" > "$RESULTS/idle-coexd.out" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        ss -lntH "sport = :$TARGET_PORT" | grep -q 127.0.0.1 && break
        sleep 0.1
    done
    # coexd-run.sh execs coexd, so $PID is coexd itself
    grep -q coexd "/proc/$PID/comm" || { echo "coexd did not start"; cat "$RESULTS/idle-coexd.out"; exit 1; }
    echo "round $round: coexd pid $PID, fd limit $(awk '/open files/ {print $4}' /proc/$PID/limits), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    timeout 300 python3 "$HERE/idle_sessions.py" --pid "$PID" --port "$TARGET_PORT" -n "$IDLE_N" \
        --rounds 1 --label "idle-sessions${1:+-ehlo}" "$@" --results "$RESULTS/idle.jsonl" || rc=1
    stop
done
exit $rc
