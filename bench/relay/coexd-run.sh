#!/usr/bin/env bash
# coexd-run.sh - start coexd for the relay benchmark, in the foreground.
#
# Meant to be the COMMAND of the harness's peer-cmd.sh, which sets TARGET_PORT,
# SINK_PORT and MAP_FILE ("user@target.example user@source.example" lines):
#
#   LABEL=coexd ./peer-cmd.sh -s 50 bench -- ./coexd-run.sh
#
# It makes a fresh work directory (COEXD_WORK, default /tmp/coexdbench: config,
# directory, spool, log), turns MAP_FILE into a mailbox CSV (source,target,enabled:
# the map's LEFT side is the target address, the right side the source address),
# imports it with `coexctl mailbox import`, switches coexistence on, and execs
# coexd (logging to COEXD_WORK/coexd.log).
# Settings: COEXD_MAX_CONCURRENCY (route max_concurrency, default 50),
#   COEXD_MAX_CONN (max_connections and max_connections_per_ip, default 1000),
#   COEX_BIN (default: build/bin of this checkout), COEXD_LOG (default
#   COEXD_WORK/coexd.log; /dev/null to drop the per-message log lines),
#   COEXD_WRAP (a command put in front of coexd, e.g. "strace -c -f -o FILE"),
#   COEXD_DKIM_KEY ("DOMAIN SELECTOR FILE": a `dkim_key` line added to the
#   route, so coexd signs what it relays; empty = no signing), COEXD_DKIM_WORKERS
#   (the global `dkim_workers`; empty = coexd's default).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
: "${COEX_BIN:=$HERE/../../build/bin}"
: "${COEXD_WORK:=/tmp/coexdbench}"
: "${COEXD_MAX_CONCURRENCY:=50}"
: "${COEXD_MAX_CONN:=1000}"
: "${COEXD_LOG:=$COEXD_WORK/coexd.log}"
: "${COEXD_WRAP:=}"
: "${COEXD_DKIM_KEY:=}" "${COEXD_DKIM_WORKERS:=}"
: "${TARGET_PORT:?set by peer-cmd.sh}" "${SINK_PORT:?set by peer-cmd.sh}"
case $COEXD_WORK in /tmp/*|/dev/shm/*) ;; *) echo "COEXD_WORK must be under /tmp or /dev/shm" >&2; exit 2 ;; esac

rm -rf "$COEXD_WORK"
mkdir -p "$COEXD_WORK"
CONF=$COEXD_WORK/coexd.conf
sed -e "s|{WORK}|$COEXD_WORK|g" -e "s|{TARGET_PORT}|$TARGET_PORT|g" \
    -e "s|{SINK_PORT}|$SINK_PORT|g" -e "s|{MAX_CONCURRENCY}|$COEXD_MAX_CONCURRENCY|g" \
    -e "s|{MAX_CONN}|$COEXD_MAX_CONN|g" "$HERE/coexd.conf.in" > "$CONF"
# global keys must come before the first section: put dkim_workers on top;
# the [route] is the file's last section, so dkim_key lines are appended
if [ -n "$COEXD_DKIM_WORKERS" ]; then
    sed -i "1i dkim_workers = $COEXD_DKIM_WORKERS" "$CONF"
fi
if [ -n "$COEXD_DKIM_KEY" ]; then
    printf 'dkim_key = %s\n' "$COEXD_DKIM_KEY" >> "$CONF"
fi

if [ -n "${MAP_FILE:-}" ]; then
    CSV=$COEXD_WORK/mailboxes.csv
    # map line: "<target address><SEP><source address>"; SEP is MAP_SEP (one space by default)
    awk -v sep="${MAP_SEP:- }" 'BEGIN { print "source,target,enabled" }
        { i = index($0, sep); if (i == 0) next
          t = substr($0, 1, i - 1); s = substr($0, i + length(sep))
          gsub(/^[ \t]+|[ \t\r]+$/, "", t); gsub(/^[ \t]+|[ \t\r]+$/, "", s)
          print s "," t ",true" }' "$MAP_FILE" > "$CSV"
    "$COEX_BIN/coexctl" --config "$CONF" mailbox import "$CSV" >&2
fi
"$COEX_BIN/coexctl" --config "$CONF" coexistence on >&2
"$COEX_BIN/coexctl" --config "$CONF" coexistence status >&2
"$COEX_BIN/coexd" -c "$CONF" -t >&2
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck disable=SC2086  # COEXD_WRAP is a command line
exec $COEXD_WRAP "$COEX_BIN/coexd" -c "$CONF" 2>>"$COEXD_LOG"
