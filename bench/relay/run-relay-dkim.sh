#!/usr/bin/env bash
# run-relay-dkim.sh - "Relay with DKIM signing" (issue 4): one run measures,
# interleaved, under the same load generator and message:
#
#   baseline           smtp-source straight into smtp-sink (no relay)
#   coexd-nosign       coexd rewriting, no dkim_key
#   coexd-sign         coexd rewriting + rsa-2048 DKIM signing (dkim_key on the
#                      route, key from `coexctl dkim keygen --type rsa --bits
#                      2048`, default dkim_workers)
#   postfix-opendkim   Postfix canonical_maps (as peer-postfix.sh does) + Debian's
#                      opendkim as an inet milter on loopback, rsa-2048,
#                      relaxed/relaxed, same key and d=
#   postfix            Postfix canonical_maps without the milter (what the
#                      milter costs Postfix)
#   coexd-sign-wN      (not in the default list) coexd-sign with dkim_workers = N
#
# For every repetition: the cost of one RSA-2048 signature on this machine
# (`openssl speed -seconds 3 rsa2048` and `coexctl dkim bench` over the
# benchmark's message, both one core) before and after the round (this VM's
# speed drifts by 10-20 % within minutes), and between them each relay once (fresh instance,
# 500-message warm-up, one measured run, then a DKIM check of 500 more messages
# relayed by the same instance and verified with dkimpy), the order rotating
# between repetitions. coexd's log is also counted over the measured run:
# every message must have a "dkim: signed" line.
#
# Usage (as root, from anywhere):  bench/relay/run-relay-dkim.sh
# Environment:
#   SCENARIOS="50"  REPS=3  MSGS=20000 SIZE=4096 MAP_ENTRIES=10000
#   RELAYS="baseline coexd-nosign coexd-sign postfix-opendkim postfix"
#   COEX_REV=HEAD (built by build-snapshot.sh) or COEX_BIN=DIR
#   TARGET_PORT=13525 SINK_PORT=13526 OPENDKIM_PORT=13528 (loopback only)
#   WORK=/tmp/coexd-dkim-bench   relay work dirs, key, message
#   RESULTS=/tmp/coexd-dkim-bench-results   results.jsonl, dkimcheck.jsonl,
#                                rsa.jsonl, run.log
#   MATRIX_TIMEOUT=2400  the whole matrix stops after this many seconds
#   DKIM_CHECK_MSGS=500  messages relayed and verified after every measured run
# Every step is bounded (loadrun.py: RUN_TIMEOUT per run, timeout(1) per step)
# and stops only the processes it started (by PID / by its own cgroup).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
: "${SCENARIOS:=50}"
: "${REPS:=3}"
: "${RELAYS:=baseline coexd-nosign coexd-sign postfix-opendkim postfix}"
: "${MATRIX_TIMEOUT:=2400}"
: "${WORK:=/tmp/coexd-dkim-bench}"
case $WORK in /tmp/*|/dev/shm/*) ;; *) echo "WORK must be under /tmp or /dev/shm" >&2; exit 2 ;; esac
export MSGS=${MSGS:-20000} SIZE=${SIZE:-4096} MAP_ENTRIES=${MAP_ENTRIES:-10000}
export TARGET_PORT=${TARGET_PORT:-13525} SINK_PORT=${SINK_PORT:-13526} OPENDKIM_PORT=${OPENDKIM_PORT:-13528}
export RESULTS=${RESULTS:-/tmp/coexd-dkim-bench-results}
export RUN_TIMEOUT=${RUN_TIMEOUT:-600} DKIM_CHECK_MSGS=${DKIM_CHECK_MSGS:-500}
export COEXD_MAX_CONCURRENCY=${COEXD_MAX_CONCURRENCY:-50}
# own work dirs and cgroup names, so that nothing collides with run-relay.sh
export CMD_BASE=$WORK/cmd COEXD_WORK=$WORK/coexd PF_BASE=$WORK/pf
export DKIM_DOMAIN=source.example DKIM_SELECTOR=bench
if [ -z "${COEX_BIN:-}" ]; then
    COEX_BIN=$("$HERE/build-snapshot.sh" "${COEX_REV:-HEAD}") || exit 1
fi
export COEX_BIN
mkdir -p "$RESULTS" "$WORK"
RUNLOG=$RESULTS/run.log
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" | tee -a "$RUNLOG" >&2; }

# ---- the key (once per matrix) and the benchmark's message ------------------
KEYDIR=$WORK/keys
KEY=$KEYDIR/$DKIM_SELECTOR._domainkey.$DKIM_DOMAIN.key
if [ ! -s "$KEY" ]; then
    rm -rf "$KEYDIR"; mkdir -p "$KEYDIR"
    "$COEX_BIN/coexctl" dkim keygen --domain "$DKIM_DOMAIN" --selector "$DKIM_SELECTOR" \
        --type rsa --bits 2048 --out "$KEYDIR" >>"$RUNLOG" 2>&1 || { log "keygen failed"; exit 1; }
fi
export DKIM_KEYFILE=$KEY
# one message exactly as smtp-source sends it (captured by a dumping sink),
# for `coexctl dkim bench`
MSG=$WORK/bench.eml
(
    . "$HERE/common.sh"
    rm -rf "$WORK/msgcap"
    TARGET_PORT=$SINK_PORT MSGS=1 CONC=1 RUN_TIMEOUT=30 loadrun msgcap --dump-dir "$WORK/msgcap" >/dev/null
)
f=$(find "$WORK/msgcap" -type f | head -1)
[ -n "$f" ] || { log "could not capture the benchmark message"; exit 1; }
sed -n '/^From:/,$p' "$f" | sed 's/$/\r/' > "$MSG"

rsa_cost() {  # one JSON line: ms per RSA-2048 signature (openssl), ms per coexctl dkim bench message
    local rep=$1 conc=$2 when=$3 out sps bench mps load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    out=$(timeout 60 openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}')
    sps=${out:-0}
    bench=$(timeout 120 "$COEX_BIN/coexctl" dkim bench --key "$DKIM_DOMAIN:$DKIM_SELECTOR:$KEY" \
        --count 10000 < "$MSG" 2>&1 | tail -1)
    mps=$(sed -nE 's/.* ([0-9.]+) messages\/s per CPU second.*/\1/p' <<<"$bench")
    printf '{"time": "%(%Y-%m-%dT%H:%M:%S)T", "rep": %d, "when": "%s", "conc": %d, "openssl_rsa2048_sign_per_s": %s, "coexctl_dkim_bench_msg_per_cpu_s": %s, "loadavg": [%s], "msg_bytes": %d}\n' \
        -1 "$rep" "$when" "$conc" "$sps" "${mps:-0}" "$(tr ' ' ',' <<<"$load")" "$(wc -c < "$MSG")" | tee -a "$RESULTS/rsa.jsonl" >>"$RUNLOG"
    log "RSA-2048 sign: openssl $sps/s ($(awk -v s="$sps" 'BEGIN { if (s > 0) printf "%.3f", 1000 / s }') ms); coexctl dkim bench: ${mps:-?} msg/s per CPU s"
}

start=$(date +%s)
since=$(date +%Y-%m-%dT%H:%M:%S)
read -r -a relays <<<"$RELAYS"
n=${#relays[@]}
rc=0
log "dkim matrix: scenarios=[$SCENARIOS] reps=$REPS relays=[$RELAYS] msgs=$MSGS size=$SIZE map=$MAP_ENTRIES; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
log "coexd: $COEX_BIN/coexd ($(sha256sum "$COEX_BIN/coexd" | cut -c1-16)); $(uname -r); postfix $(postconf -d -h mail_version 2>/dev/null); $(opendkim -V 2>&1 | head -1); key $KEY ($(openssl pkey -in "$KEY" -noout -text 2>/dev/null | head -1))"
for conc in $SCENARIOS; do
    for ((rep = 1; rep <= REPS; rep++)); do
        rsa_cost "$rep" "$conc" start
        for ((k = 0; k < n; k++)); do
            relay=${relays[$(((k + rep - 1) % n))]}
            left=$((MATRIX_TIMEOUT - ($(date +%s) - start)))
            if [ "$left" -le 60 ]; then log "matrix time limit reached; stopping"; rc=1; break 3; fi
            log "=== s=$conc rep $rep/$REPS: $relay  (load average: $(cut -d' ' -f1-3 /proc/loadavg); matrix time left ${left}s)"
            common=(CONC="$conc" REPS=1)
            case $relay in
                baseline) cmd=(env "${common[@]}" "$HERE/baseline.sh") ;;
                coexd-nosign)
                    cmd=(env "${common[@]}" LABEL=coexd-nosign RELAY_CG_NAME=dkbench-coexd
                         COEXD_DKIM_KEY= DKIM_EXPECT=unsigned COUNT_DKIM_LOG=1
                         RELAY_LOG="$COEXD_WORK/coexd.log" RELAY_LOG_FORMAT=postfix
                         "$HERE/peer-cmd.sh" bench -- "$HERE/coexd-run.sh") ;;
                coexd-sign)
                    cmd=(env "${common[@]}" LABEL=coexd-sign RELAY_CG_NAME=dkbench-coexd
                         COEXD_DKIM_KEY="$DKIM_DOMAIN $DKIM_SELECTOR $KEY" DKIM_EXPECT=signed COUNT_DKIM_LOG=1
                         RELAY_LOG="$COEXD_WORK/coexd.log" RELAY_LOG_FORMAT=postfix
                         "$HERE/peer-cmd.sh" bench -- "$HERE/coexd-run.sh") ;;
                coexd-sign-w[0-9]*)
                    cmd=(env "${common[@]}" LABEL="$relay" RELAY_CG_NAME=dkbench-coexd
                         COEXD_DKIM_KEY="$DKIM_DOMAIN $DKIM_SELECTOR $KEY" COEXD_DKIM_WORKERS="${relay#coexd-sign-w}"
                         DKIM_EXPECT=signed COUNT_DKIM_LOG=1
                         RELAY_LOG="$COEXD_WORK/coexd.log" RELAY_LOG_FORMAT=postfix
                         "$HERE/peer-cmd.sh" bench -- "$HERE/coexd-run.sh") ;;
                postfix-opendkim)
                    cmd=(env "${common[@]}" LABEL=postfix-opendkim RELAY_CG_NAME=dkbench-postfix
                         OPENDKIM_KEY="$DKIM_DOMAIN $DKIM_SELECTOR $KEY" DKIM_EXPECT=signed
                         "$HERE/peer-postfix.sh" bench) ;;
                postfix)
                    cmd=(env "${common[@]}" LABEL=postfix-canonical-hash RELAY_CG_NAME=dkbench-postfix
                         OPENDKIM_KEY= DKIM_EXPECT=unsigned
                         "$HERE/peer-postfix.sh" bench) ;;
                *) echo "unknown relay $relay" >&2; exit 2 ;;
            esac
            timeout -s TERM "$left" "${cmd[@]}" >>"$RUNLOG" 2>&1 \
                || { log "$relay s=$conc rep $rep reported a problem (see $RUNLOG)"; rc=1; }
            sleep 2
        done
        rsa_cost "$rep" "$conc" end
    done
done
log "done in $(($(date +%s) - start)) s; load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$HERE/summarize-dkim.py" "$RESULTS" --since "$since" | tee -a "$RUNLOG"
exit $rc
