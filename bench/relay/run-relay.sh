#!/usr/bin/env bash
# run-relay.sh - the "Relay throughput (issue: coexd)" matrix: no relay
# (baseline.sh), Postfix with canonical_maps (peer-postfix.sh) and coexd
# (peer-cmd.sh + coexd-run.sh), interleaved: for every scenario and every
# repetition, each relay does one measured run (after its own warm-up), and
# the order rotates between repetitions so that no relay always runs first.
#
# Usage: ./run-relay.sh                         (from bench/relay, as root)
# Environment:
#   SCENARIOS="50 200"   smtp-source -s values (sessions)
#   REPS=3               repetitions per scenario and relay
#   MSGS=20000 SIZE=4096 MAP_ENTRIES=10000
#   COEXD_MAX_CONCURRENCY=50   coexd route max_concurrency
#   COEX_REV=HEAD        the committed revision to build (build-snapshot.sh)
#                        and measure; or COEX_BIN=DIR to use binaries as they are
#   TARGET_PORT=12525 SINK_PORT=12526  (off the default 2525/2526 so that
#                        nothing collides with other engineers' test runs)
#   RESULTS=/tmp/coexd-bench-results   JSON lines (results.jsonl) + run log
#   RELAYS="baseline postfix coexd"
#   MATRIX_TIMEOUT=2700  the whole matrix stops after this many seconds
# Every step is bounded (loadrun.py: RUN_TIMEOUT per run, timeout(1) per step)
# and stops only the processes it started (by PID / by its own cgroup).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
: "${SCENARIOS:=50 200}"
: "${REPS:=3}"
: "${RELAYS:=baseline postfix coexd}"
: "${MATRIX_TIMEOUT:=2700}"
: "${COEXD_MAX_CONCURRENCY:=50}"
export MSGS=${MSGS:-20000} SIZE=${SIZE:-4096} MAP_ENTRIES=${MAP_ENTRIES:-10000}
export TARGET_PORT=${TARGET_PORT:-12525} SINK_PORT=${SINK_PORT:-12526}
export RESULTS=${RESULTS:-/tmp/coexd-bench-results}
export COEXD_MAX_CONCURRENCY RUN_TIMEOUT=${RUN_TIMEOUT:-600}
if [ -z "${COEX_BIN:-}" ]; then
    COEX_BIN=$("$HERE/build-snapshot.sh" "${COEX_REV:-HEAD}") || exit 1
fi
export COEX_BIN
mkdir -p "$RESULTS"
RUNLOG=$RESULTS/run.log
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" | tee -a "$RUNLOG" >&2; }

start=$(date +%s)
since=$(date +%Y-%m-%dT%H:%M:%S)
read -r -a relays <<<"$RELAYS"
n=${#relays[@]}
rc=0
log "matrix: scenarios=[$SCENARIOS] reps=$REPS relays=[$RELAYS] msgs=$MSGS size=$SIZE map=$MAP_ENTRIES coexd max_concurrency=$COEXD_MAX_CONCURRENCY; $(nproc) CPUs"
log "coexd: $COEX_BIN/coexd ($(sha256sum "$COEX_BIN/coexd" | cut -c1-16)); $(uname -r); postfix $(postconf -d -h mail_version 2>/dev/null)"
for conc in $SCENARIOS; do
    for ((rep = 1; rep <= REPS; rep++)); do
        for ((k = 0; k < n; k++)); do
            relay=${relays[$(((k + rep - 1) % n))]}
            left=$((MATRIX_TIMEOUT - ($(date +%s) - start)))
            if [ "$left" -le 60 ]; then log "matrix time limit reached; stopping"; rc=1; break 3; fi
            log "=== s=$conc rep $rep/$REPS: $relay  (load average: $(cut -d' ' -f1-3 /proc/loadavg); matrix time left ${left}s)"
            case $relay in
                baseline) cmd=("$HERE/baseline.sh") ;;
                postfix) cmd=(env LABEL=postfix-canonical-hash "$HERE/peer-postfix.sh" bench) ;;
                coexd) cmd=(env LABEL="coexd-mc$COEXD_MAX_CONCURRENCY" "$HERE/peer-cmd.sh" bench -- "$HERE/coexd-run.sh") ;;
                *) echo "unknown relay $relay" >&2; exit 2 ;;
            esac
            CONC=$conc REPS=1 timeout -s TERM "$left" "${cmd[@]}" >>"$RUNLOG" 2>&1 \
                || { log "$relay s=$conc rep $rep reported a problem (see $RUNLOG)"; rc=1; }
            sleep 2
        done
    done
done
log "done in $(($(date +%s) - start)) s"
python3 "$HERE/summarize-relay.py" "$RESULTS/results.jsonl" --since "$since" | tee -a "$RUNLOG"
exit $rc
