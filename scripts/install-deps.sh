#!/bin/sh
# install-deps.sh - install the Debian 12 packages coex needs, only those missing.
#   scripts/install-deps.sh          build, run and test
#   scripts/install-deps.sh bench    also the benchmark peers (GMime)
set -eu
pkgs="make gcc clang pkg-config libsqlite3-dev libcmocka-dev libevent-dev libssl-dev openssl python3-pytest python3-aiosmtpd python3-dkim python3-authres python3-dnslib opendkim opendkim-tools swaks sqlite3 postfix"
[ "${1:-}" = bench ] && pkgs="$pkgs libgmime-3.0-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
# postfix is a test peer (a real smtpd next hop): no questions, no local mail system
echo "postfix postfix/main_mailer_type select Local only" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
