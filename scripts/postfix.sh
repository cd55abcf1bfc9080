#!/usr/bin/env bash
# postfix.sh — install Debian's Postfix non-interactively, for the real-MTA
# test of the policy server (pkg/postfix, TestRealPostfix).
#
#   scripts/postfix.sh           install postfix if /usr/sbin/postfix is missing
#   scripts/postfix.sh status    exit 0 when postfix is installed
#
# Only the package is installed: debconf is preseeded with "No configuration"
# so no system mail service is configured, and the package's own instance is
# never started (no systemd here; policy-rc.d refuses service starts during
# the install). The test runs a private instance with its own
# config_directory, queue_directory and data_directory under a temporary
# directory, on a free loopback port, and stops it afterwards.
#
# Run as root (apt-get, debconf-set-selections).
set -euo pipefail

log() { printf 'postfix.sh: %s\n' "$*" >&2; }

installed() { [ -x /usr/sbin/postfix ] && [ -x /usr/sbin/postconf ]; }

case "${1:-install}" in
status)
	installed
	exit $?
	;;
install) ;;
*)
	echo "usage: $0 [install|status]" >&2
	exit 2
	;;
esac

if installed; then
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	log "postfix is not installed and this is not root: cannot install"
	exit 1
fi

log "installing postfix from Debian (No configuration)"
export DEBIAN_FRONTEND=noninteractive
debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string localhost
EOF

# Refuse service starts during the install (no init system in containers).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

if ! apt-get install -y -qq --no-install-recommends postfix >/dev/null; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends postfix >/dev/null
fi
installed || { log "postfix did not install"; exit 1; }
log "installed: $(/usr/sbin/postconf -h mail_version 2>/dev/null || echo unknown)"
