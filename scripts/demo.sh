#!/bin/sh
# demo.sh - the main job for now (see README.md): build the sample directory
# in var/coex.db (the embedded default config), switch coexistence on and
# rewrite the sample Exchange Online message to-source, printing the
# envelope, the trace and the changed lines.
set -eu
cd "$(dirname "$0")/.."
ctl=build/bin/coexctl
mkdir -p var/outbox
$ctl mailbox import examples/mailboxes.csv
$ctl coexistence on
$ctl coexistence status
echo "--- rewriting examples/sample.eml to-source into var/outbox/sample.eml"
$ctl rewrite --direction to-source --mail-from alexw@target.example \
    --rcpt partner01@external1.example --trace \
    < examples/sample.eml > var/outbox/sample.eml
echo "--- changed lines (diff of the original and the rewritten message)"
diff examples/sample.eml var/outbox/sample.eml || true
