#!/usr/bin/env bash
# clickhouse.sh — install (if needed) and start a loopback-only ClickHouse
# server for development, tests and CI, without systemd.
#
#   scripts/clickhouse.sh          install if missing, start if not answering, wait until ready
#   scripts/clickhouse.sh start    same as above
#   scripts/clickhouse.sh stop     stop the server this script started
#   scripts/clickhouse.sh status   exit 0 when a server answers on 127.0.0.1:9000
#
# The server runs from a project-owned directory, $SENDGUARD_CH_DIR (default
# /var/lib/sendguard-clickhouse), with its own config, users, data and logs:
# listen_host 127.0.0.1, tcp_port $SENDGUARD_CH_TCP_PORT (9000), http_port
# $SENDGUARD_CH_HTTP_PORT (8123), time zone UTC, user "default" without a
# password and reachable from loopback only. It is idempotent: when something
# already answers on the native port it does nothing.
#
# Run as root (apt-get, chown). Debian bookworm ships ClickHouse 18.16.
set -euo pipefail

CH_DIR="${SENDGUARD_CH_DIR:-/var/lib/sendguard-clickhouse}"
TCP_PORT="${SENDGUARD_CH_TCP_PORT:-9000}"
HTTP_PORT="${SENDGUARD_CH_HTTP_PORT:-8123}"
WAIT_SECONDS="${SENDGUARD_CH_WAIT:-60}"
PID_FILE="$CH_DIR/clickhouse-server.pid"
LOG_DIR="$CH_DIR/log"

log() { printf 'clickhouse.sh: %s\n' "$*" >&2; }

answers() {
	command -v clickhouse-client >/dev/null 2>&1 || return 1
	clickhouse-client --host 127.0.0.1 --port "$TCP_PORT" --query 'SELECT 1' >/dev/null 2>&1
}

install_server() {
	if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
		return 0
	fi
	log "installing clickhouse-server and clickhouse-client from Debian"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y clickhouse-server clickhouse-client; then
		apt-get update
		apt-get install -y clickhouse-server clickhouse-client
	fi
}

# run_as_owner runs a command as the clickhouse user when it exists, else as
# the current user.
run_as_owner() {
	if [ "$(id -u)" = 0 ] && id clickhouse >/dev/null 2>&1; then
		runuser -u clickhouse -- "$@"
	else
		"$@"
	fi
}

write_config() {
	mkdir -p "$CH_DIR/etc" "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas" "$LOG_DIR"
	cat >"$CH_DIR/etc/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh; rewritten on every start. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>$LOG_DIR/clickhouse-server.log</log>
        <errorlog>$LOG_DIR/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$TCP_PORT</tcp_port>
    <http_port>$HTTP_PORT</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$CH_DIR/data/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
EOF
	cat >"$CH_DIR/etc/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh: development server, loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
	if [ "$(id -u)" = 0 ] && id clickhouse >/dev/null 2>&1; then
		chown -R clickhouse: "$CH_DIR"
	fi
}

server_pid() {
	[ -s "$PID_FILE" ] || return 1
	local pid
	pid="$(cat "$PID_FILE")"
	kill -0 "$pid" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

start() {
	if answers; then
		log "a server already answers on 127.0.0.1:$TCP_PORT"
		return 0
	fi
	install_server
	if pid="$(server_pid)"; then
		log "server pid $pid is running but does not answer yet; waiting"
	else
		write_config
		log "starting clickhouse-server from $CH_DIR (127.0.0.1:$TCP_PORT)"
		rm -f "$PID_FILE"
		(cd "$CH_DIR" && run_as_owner clickhouse-server \
			--config-file="$CH_DIR/etc/config.xml" \
			--pid-file="$PID_FILE" \
			--daemon) || {
			log "clickhouse-server did not start"
			tail -n 40 "$LOG_DIR/clickhouse-server.err.log" >&2 2>/dev/null || true
			exit 1
		}
	fi
	local waited=0
	until answers; do
		if [ "$waited" -ge "$WAIT_SECONDS" ]; then
			log "server did not answer within ${WAIT_SECONDS}s; log tail:"
			tail -n 40 "$LOG_DIR/clickhouse-server.err.log" >&2 2>/dev/null || true
			tail -n 20 "$LOG_DIR/clickhouse-server.log" >&2 2>/dev/null || true
			exit 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
	log "ready: $(clickhouse-client --host 127.0.0.1 --port "$TCP_PORT" --query 'SELECT version()')"
}

stop() {
	local pid
	if ! pid="$(server_pid)"; then
		log "no server started by this script is running"
		rm -f "$PID_FILE"
		return 0
	fi
	log "stopping clickhouse-server pid $pid"
	kill -TERM "$pid"
	local waited=0
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$waited" -ge 30 ]; then
			log "pid $pid still running after 30s; sending KILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 1
		waited=$((waited + 1))
	done
	rm -f "$PID_FILE"
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
status)
	if answers; then
		echo "running"
	else
		echo "not running"
		exit 1
	fi
	;;
*)
	echo "usage: $0 [start|stop|status]" >&2
	exit 2
	;;
esac
