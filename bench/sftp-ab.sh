#!/bin/bash
# bench/sftp-ab.sh - SFTP small-file upload rate of two storaged builds,
# interleaved, for "did this change make SFTP slower?".
#
#   bench/sftp-ab.sh BASE_TREE NEW_TREE [ROUNDS] [N] [SIZE]
#
# BASE_TREE and NEW_TREE are built checkouts (storaged, storagectl,
# frontends/sftp.so), e.g. a scratch `git worktree add` of the branch point.
# Both daemons run side by side on loopback ports (durability = full, the
# default, or $DURABILITY), each with its own data directory. Each round
# uploads N (2000) fresh random SIZE-byte (4096) files with OpenSSH
# `sftp -b` (`put -r DIR /rK`, cipher $CIPHER) to each server, alternating
# which goes first, and prints files/s and the server's CPU time (user +
# system, from /proc) per 1000 files, which is much less sensitive than the
# rate to other load on the machine. Report ranges over several rounds.
set -eu
BASE=$1 NEW=$2 ROUNDS=${3:-5} N=${4:-2000} SIZE=${5:-4096}
CIPHER=${CIPHER:-aes128-gcm@openssh.com}
B=$(mktemp -d /tmp/sftpbench.run.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$B"; }
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ssh-keygen -q -t ed25519 -N '' -f "$B/key" -C bench
declare -A PORT SPID
cpu_ms() { awk '{ printf "%d", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat"; }
start() { # NAME TREE
	local p; p=$(port); PORT[$1]=$p
	cat > "$B/$1.conf" <<CONF
[storaged]
data_dir = $B/$1-data
module_dir = $2/frontends
log_level = warn
log_file = $B/$1.log
durability = ${DURABILITY:-full}

[sftp]
enabled = yes
module = sftp
listen = 127.0.0.1:$p
CONF
	"$2/storaged" -c "$B/$1.conf" > "$B/$1.out" 2>&1 &
	PIDS+=($!)
	SPID[$1]=$!
	for i in $(seq 100); do grep -q event=ready "$B/$1.log" 2>/dev/null && break; sleep 0.1; done
	echo benchpw1 | "$2/storagectl" -c "$B/$1.conf" user add bench --password-stdin >/dev/null
	"$2/storagectl" -c "$B/$1.conf" user key add bench "$B/key.pub" >/dev/null
}
start base "$BASE"
start new "$NEW"
OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR
	-o IdentitiesOnly=yes -i "$B/key" -c "$CIPHER")
gen() { rm -rf "$B/small"; /usr/bin/python3 -c "
import os,sys
d=sys.argv[1]; os.makedirs(d)
for i in range(int(sys.argv[2])):
    open(os.path.join(d,'f%d'%i),'wb').write(os.urandom(int(sys.argv[3])))" "$B/small" "$N" "$SIZE"; sync; }
run() { # NAME ROUND -> prints "files/s server-CPU-ms-per-1000-files"
	gen
	printf 'put -r %s /r%s\n' "$B/small" "$2" > "$B/batch"
	local t0 t1 c0 c1; c0=$(cpu_ms "${SPID[$1]}"); t0=$(date +%s.%N)
	sftp "${OPTS[@]}" -P "${PORT[$1]}" -b "$B/batch" bench@127.0.0.1 >/dev/null
	t1=$(date +%s.%N); c1=$(cpu_ms "${SPID[$1]}")
	awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$((c1 - c0))" \
		'BEGIN { printf "%.0f files/s  server cpu %.0f ms per 1000 files", n / (b - a), c * 1000 / n }'
}
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then o=(base new); else o=(new base); fi
	for w in "${o[@]}"; do v=$(run "$w" "$r"); echo "round $r $w $v" | tee -a "$B/results"; done
done
# per build: range and median of files/s and of server CPU per 1000 files
stats() { sort -n | awk '{ v[NR] = $1 } END { printf "%d-%d (median %.0f)", v[1], v[NR], (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for w in base new; do
	printf '%-4s  files/s %s   server cpu ms/1000 files %s   %d rounds\n' "$w" \
		"$(awk -v w="$w" '$3 == w { print $4 }' "$B/results" | stats)" \
		"$(awk -v w="$w" '$3 == w { print $8 }' "$B/results" | stats)" \
		"$(awk -v w="$w" '$3 == w' "$B/results" | wc -l)"
done
