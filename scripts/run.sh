#!/bin/sh
# run.sh - the main job (README.md): the sample directory in var/coex.db, coexistence
# on, then coexd in the foreground with the embedded default configuration:
# listening on 127.0.0.1:2525, rewriting to-source, next hop file:var/outbox.
# Stop it with Ctrl-C (SIGINT): it finishes sessions, flushes the spool and exits.
set -eu
cd "$(dirname "$0")/.."
build/bin/coexctl mailbox import examples/mailboxes.csv
build/bin/coexctl coexistence on
echo "run.sh: try:  swaks --server 127.0.0.1:2525 --from alexw@target.example --to partner@external1.example --header 'From: Alex Wilber <alexw@target.example>'"
echo "run.sh: then: cat var/outbox/*.eml"
exec build/bin/coexd
