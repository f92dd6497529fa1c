#!/bin/bash
# bench/ftp.sh - storaged's FTP front end against vsftpd and pure-ftpd, by hand.
#
#   bench/ftp.sh [SIZE_MB]        (default 1024: the 1 GiB transfer)
#
# Same machine, same client (lftp), same run, all on 127.0.0.1:
#   1. one SIZE_MB file: upload, then download (to /dev/null)
#   2. 2,000 x 4 KiB files: lftp `mirror -R` (files per second)
#   3. 8 parallel clients x 64 MiB each: upload, then download (aggregate)
#   4. login latency: connect + USER/PASS + QUIT, median of 20 (python ftplib)
# plus the SHA-256 speed of this machine (openssl dgst over the big file, from
# the page cache), because storaged hashes (and fsyncs) every upload and the
# peers do neither.
#
# Peers: vsftpd (the Debian package, run with a temporary config; anonymous
# user with upload rights, so that no system account is needed) and
# pure-ftpd (Debian conflicts it with vsftpd, so its .deb is fetched with
# `apt-get download` and unpacked with `dpkg -x` into the temp dir; one
# virtual user in a puredb file). A peer that cannot be started is skipped
# with a note. Needs root (vsftpd/pure-ftpd chroot), lftp, python3, openssl.
# PEERS="storaged storaged-normal vsftpd pure-ftpd" (the default) picks servers.
# Transfer times are taken inside one lftp session after its login (login
# cost is its own column). storaged runs twice: durability=full (the
# default: every upload fsynced and committed with SQLite FULL before 226)
# and durability=normal (no fsync), to separate protocol cost from fsync
# cost; the peers never fsync.
# Prints a markdown table; nothing is left behind (KEEP=1 keeps the temp dir).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${1:-1024}
T=$(mktemp -d /tmp/ftpbench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1048576 }'; }   # MiB/s
fps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
log() { echo "# $*" >&2; }
PEERS=${PEERS:-storaged storaged-normal vsftpd pure-ftpd}
want() { case " $PEERS " in *" $1 "*) return 0 ;; esac; return 1; }

[ -x "$ROOT/storaged" ] && [ -f "$ROOT/frontends/ftp.so" ] || { echo "build first: make" >&2; exit 1; }

# ------------------------------------------------------------ inputs
log "generating inputs in $T"
head -c $((SIZE_MB * 1048576)) /dev/urandom > "$T/big.bin"
mkdir -p "$T/small"
for d in $(seq 0 19); do
	mkdir -p "$T/small/d$d"
	for f in $(seq 0 99); do head -c 4096 /dev/urandom > "$T/small/d$d/f$f"; done
done
for i in $(seq 1 8); do head -c $((64 * 1048576)) /dev/urandom > "$T/p$i.bin"; done
t0=$(now); openssl dgst -sha256 "$T/big.bin" > /dev/null; t1=$(now)
SHA_RATE=$(rate $((SIZE_MB * 1048576)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
log "SHA-256 (openssl, page cache): $SHA_RATE MiB/s"

# ------------------------------------------------------------ servers
# start_storaged DURABILITY: a fresh storaged with its own data dir.
start_storaged() {
	local dur=$1 d="$T/sd-$1"
	SD_PORT=$(free_port)
	mkdir -p "$d"
	cat > "$d/storaged.conf" <<EOF
[storaged]
data_dir = $d/data
module_dir = $ROOT/frontends
log_level = info
log_file = $d/storaged.log
durability = $dur

[ftp]
enabled = yes
listen = 127.0.0.1:$SD_PORT
max_per_ip = 64
EOF
	"$ROOT/storaged" -c "$d/storaged.conf" > "$d/stdout" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 100); do grep -q event=ready "$d/storaged.log" 2>/dev/null && break; sleep 0.1; done
	printf 'benchpw1\n' | "$ROOT/storagectl" -c "$d/storaged.conf" user add bench --password-stdin > /dev/null
}

start_vsftpd() {
	command -v vsftpd > /dev/null || command -v /usr/sbin/vsftpd > /dev/null || return 1
	VS_PORT=$(free_port)
	mkdir -p "$T/vs/root/up" /var/run/vsftpd/empty
	chmod 755 "$T/vs/root"
	chown ftp:ftp "$T/vs/root/up" 2>/dev/null || return 1
	cat > "$T/vs/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$VS_PORT
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_umask=022
no_anon_password=YES
anon_root=$T/vs/root
ftp_username=ftp
secure_chroot_dir=/var/run/vsftpd/empty
seccomp_sandbox=NO
xferlog_enable=NO
max_clients=64
max_per_ip=0
pasv_enable=YES
EOF
	/usr/sbin/vsftpd "$T/vs/vsftpd.conf" > "$T/vs/stdout" 2>&1 &
	PIDS+=($!)
	sleep 0.5
	kill -0 "${PIDS[-1]}" 2>/dev/null
}

start_pureftpd() {
	mkdir -p "$T/pure/deb" "$T/pure/x" "$T/pure/home"
	(cd "$T/pure/deb" && apt-get download pure-ftpd pure-ftpd-common > /dev/null 2>&1) || return 1
	for d in "$T"/pure/deb/*.deb; do dpkg -x "$d" "$T/pure/x" || return 1; done
	PF="$T/pure/x/usr/sbin/pure-ftpd"
	PW="$T/pure/x/usr/bin/pure-pw"
	[ -x "$PF" ] && [ -x "$PW" ] || return 1
	chown ftp:ftp "$T/pure/home"
	printf 'benchpw1\nbenchpw1\n' | "$PW" useradd bench -u ftp -g ftp -d "$T/pure/home" \
		-f "$T/pure/pureftpd.passwd" > /dev/null 2>&1 || return 1
	"$PW" mkdb "$T/pure/pureftpd.pdb" -f "$T/pure/pureftpd.passwd" > /dev/null 2>&1 || return 1
	PF_PORT=$(free_port)
	"$PF" -S "127.0.0.1,$PF_PORT" -l "puredb:$T/pure/pureftpd.pdb" -E -H -A -u 1 -c 64 -C 64 \
		> "$T/pure/stdout" 2>&1 &
	PIDS+=($!)
	sleep 0.5
	kill -0 "${PIDS[-1]}" 2>/dev/null
}

# ------------------------------------------------------------ measures
LFTP_SET="set ftp:ssl-allow no; set net:max-retries 1; set cmd:fail-exit yes; set xfer:clobber yes"
# lt OUTFILE COMMANDS: one lftp session that logs in first (ls), then runs
# COMMANDS between two timestamps; OUTFILE gets "start end" (login excluded).
lt() {
	local out=$1 cmds=$2
	# "!cmd" takes the rest of its line: one command per line, in a file.
	printf '%s\n' "$LFTP_SET" "open -u $LOGIN -p $PORT 127.0.0.1" "cls / > /dev/null" \
		'!date +%s.%N' "$cmds" '!date +%s.%N' bye > "$out.lftp"
	lftp -f "$out.lftp" < /dev/null > "$out.raw" 2>&1 || { cat "$out.raw" >&2; return 1; }
	grep -E '^[0-9]+\.[0-9]+$' "$out.raw" | tr '\n' ' ' > "$out"
}
span() { awk '{ printf "%.6f", $2 - $1 }' "$1"; }
# Wall span over several "start end" files: max(end) - min(start).
span_all() { cat "$@" | awk 'NR == 1 || $1 < a { a = $1 } NR == 1 || $2 > b { b = $2 } END { printf "%.6f", b - a }'; }

# suite NAME PORT USER PASS DIR: prints one table row.
suite() {
	local name=$1 port=$2 user=$3 pass=$4 dir=$5
	LOGIN="$user,$pass" PORT=$port
	local b=$((SIZE_MB * 1048576)) up down small pup pdown login
	local w="$T/t.$port"
	log "$name: ${SIZE_MB} MiB upload"
	lt "$w.up" "put '$T/big.bin' -o $dir/big.bin" || return 1
	up=$(rate "$b" "$(span "$w.up")")
	log "$name: download"
	lt "$w.down" "get $dir/big.bin -o /dev/null" || return 1
	down=$(rate "$b" "$(span "$w.down")")
	log "$name: 2,000 x 4 KiB mirror -R"
	lt "$w.small" "mirror -R '$T/small' $dir/small" || return 1
	small=$(fps 2000 "$(span "$w.small")")
	log "$name: 8 x 64 MiB parallel upload"
	local pids=() i
	for i in $(seq 1 8); do lt "$w.pu$i" "put '$T/p$i.bin' -o $dir/p$i.bin" & pids+=($!); done
	for i in "${pids[@]}"; do wait "$i" || return 1; done
	pup=$(rate $((8 * 64 * 1048576)) "$(span_all "$w".pu?)")
	log "$name: 8 x 64 MiB parallel download"
	pids=()
	for i in $(seq 1 8); do lt "$w.pd$i" "get $dir/p$i.bin -o /dev/null" & pids+=($!); done
	for i in "${pids[@]}"; do wait "$i" || return 1; done
	pdown=$(rate $((8 * 64 * 1048576)) "$(span_all "$w".pd?)")
	log "$name: login latency"
	login=$(/usr/bin/python3 - "$port" "$user" "$pass" <<'PY'
import ftplib, statistics, sys, time
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ts = []
for _ in range(20):
    t = time.perf_counter()
    f = ftplib.FTP()
    f.connect("127.0.0.1", port, timeout=10)
    f.login(user, pw)
    f.quit()
    ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts) * 1000:.1f}")
PY
)
	echo "| $name | $up | $down | $small | $pup | $pdown | $login |"
}

echo "FTP benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${SIZE_MB} MiB big file, client lftp $(lftp --version | head -1 | awk '{print $4}')"
echo "SHA-256 speed (openssl dgst, page cache): $SHA_RATE MiB/s"
echo
echo "| server | ${SIZE_MB} MiB up MiB/s | ${SIZE_MB} MiB down MiB/s | 4 KiB files/s (mirror -R) | 8x64 MiB up MiB/s | 8x64 MiB down MiB/s | login ms (median) |"
echo "|---|---|---|---|---|---|---|"
VER=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
if want storaged; then
	{ start_storaged full && suite "storaged $VER (durability=full)" "$SD_PORT" bench benchpw1 ""; } ||
		echo "| storaged (full) | failed | | | | | |"
fi
if want storaged-normal; then
	{ start_storaged normal && suite "storaged $VER (durability=normal)" "$SD_PORT" bench benchpw1 ""; } ||
		echo "| storaged (normal) | failed | | | | | |"
fi
if ! want vsftpd; then :
elif start_vsftpd; then
	suite "vsftpd $(dpkg-query -W -f '${Version}' vsftpd 2>/dev/null)" "$VS_PORT" anonymous x /up ||
		echo "| vsftpd | failed during the run | | | | | |"
else
	echo "| vsftpd | could not be started | | | | | |"
fi
if ! want pure-ftpd; then :
elif start_pureftpd; then
	suite "pure-ftpd 1.0.50" "$PF_PORT" bench benchpw1 "" || echo "| pure-ftpd | failed during the run | | | | | |"
else
	echo "| pure-ftpd | could not be fetched/started | | | | | |"
fi
