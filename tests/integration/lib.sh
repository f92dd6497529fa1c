# tests/integration/lib.sh - start the real storaged on loopback for a test.
#
# Source it from an area's run.sh:
#   . "$(dirname "$0")/../lib.sh"
#   sd_setup                      # temp dir, base config ([storaged] only)
#   FTP_PORT=$(sd_free_port)
#   sd_conf_add "[ftp]
#   enabled = yes
#   listen = 127.0.0.1:$FTP_PORT"
#   sd_start                      # waits for "event=ready" in the log
#   sd_adduser alice secret1      # storagectl user add, password on stdin
#   t_check "upload works" curl ...  # runs a command; counts pass/fail
#   t_done                        # prints "N passed, M failed", stops daemon
#
# Variables: SD_ROOT (repository), SD_TMP (per-test temp dir, removed at
# exit unless KEEP=1), SD_CONF, SD_DATA, SD_LOG, SD_PID.
set -u
SD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T_PASS=0
T_FAIL=0
T_NAME=${T_NAME:-$(basename "$(cd "$(dirname "$0")" && pwd)")}

sd_free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

sd_setup() {
	SD_TMP=$(mktemp -d /tmp/sdtest.XXXXXX)
	SD_CONF=$SD_TMP/storaged.conf
	SD_DATA=$SD_TMP/data
	SD_LOG=$SD_TMP/storaged.log
	SD_PID=
	trap sd_cleanup EXIT
	cat > "$SD_CONF" <<CONF
[storaged]
data_dir = $SD_DATA
module_dir = $SD_ROOT/frontends
log_level = debug
log_file = $SD_LOG
auth_fail_delay = 50ms
auth_max_failures = 20
auth_block_time = 2s
CONF
}

# Append text (sections or keys) to the config.
sd_conf_add() { printf '%s\n' "$1" >> "$SD_CONF"; }

sd_start() {
	: > "$SD_LOG"
	"$SD_ROOT/storaged" -c "$SD_CONF" > "$SD_TMP/stdout" 2>&1 &
	SD_PID=$!
	local i
	for i in $(seq 1 200); do
		if grep -q 'event=ready' "$SD_LOG" 2>/dev/null; then return 0; fi
		if ! kill -0 "$SD_PID" 2>/dev/null; then
			echo "storaged exited during start-up:" >&2
			cat "$SD_TMP/stdout" "$SD_LOG" >&2
			SD_PID=
			return 1
		fi
		sleep 0.05
	done
	echo "storaged not ready after 10s" >&2
	return 1
}

# Stop with SIGTERM; returns the daemon's exit status.
sd_stop() {
	[ -n "${SD_PID:-}" ] || return 0
	kill -TERM "$SD_PID" 2>/dev/null
	local rc=0
	wait "$SD_PID" || rc=$?
	SD_PID=
	return $rc
}

sd_cleanup() {
	if [ -n "${SD_PID:-}" ]; then kill -KILL "$SD_PID" 2>/dev/null; wait "$SD_PID" 2>/dev/null; fi
	if [ "$T_FAIL" -gt 0 ] && [ -n "${SD_LOG:-}" ] && [ -f "$SD_LOG" ]; then
		echo "---- last lines of $SD_LOG ----" >&2
		tail -n 40 "$SD_LOG" >&2
	fi
	if [ "${KEEP:-0}" != 1 ] && [ -n "${SD_TMP:-}" ]; then rm -rf "$SD_TMP"; fi
}

sd_ctl() { "$SD_ROOT/storagectl" -c "$SD_CONF" "$@"; }

# sd_adduser NAME PASSWORD [storagectl user add options...]
sd_adduser() {
	local name=$1 pw=$2
	shift 2
	printf '%s\n' "$pw" | sd_ctl user add "$name" --password-stdin "$@" >/dev/null
}

# t_check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
t_check() {
	local desc=$1
	shift
	if "$@" > "$SD_TMP/t_out" 2>&1; then
		T_PASS=$((T_PASS + 1)); echo "ok   - $T_NAME: $desc"
	else
		T_FAIL=$((T_FAIL + 1)); echo "FAIL - $T_NAME: $desc"
		sed 's/^/       /' "$SD_TMP/t_out" | tail -n 20
	fi
}
# t_fails DESCRIPTION COMMAND...: passes when COMMAND exits non-zero.
t_fails() {
	local desc=$1
	shift
	if "$@" > "$SD_TMP/t_out" 2>&1; then
		T_FAIL=$((T_FAIL + 1)); echo "FAIL - $T_NAME: $desc (command succeeded)"
		sed 's/^/       /' "$SD_TMP/t_out" | tail -n 20
	else
		T_PASS=$((T_PASS + 1)); echo "ok   - $T_NAME: $desc"
	fi
}
# t_eq DESCRIPTION EXPECTED ACTUAL
t_eq() {
	if [ "$2" = "$3" ]; then
		T_PASS=$((T_PASS + 1)); echo "ok   - $T_NAME: $1"
	else
		T_FAIL=$((T_FAIL + 1)); echo "FAIL - $T_NAME: $1: expected [$2] got [$3]"
	fi
}

t_done() {
	sd_stop || { T_FAIL=$((T_FAIL + 1)); echo "FAIL - $T_NAME: storaged did not exit 0 on SIGTERM"; }
	echo "$T_NAME: $T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
}
