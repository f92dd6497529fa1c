#!/bin/bash
# bench/storfs.sh - storfs against sshfs on OpenSSH's sftp-server and sshfs on
# storaged's own SFTP, same machine, interleaved runs, by hand (needs root:
# sshd, FUSE; packaging/install-deps.sh --bench installs sshfs, fio, sshd).
#
#   untar     tar -xf of 2,000 small files (1-4 KiB, unicode names) onto the mount
#   readback  cat of those 2,000 files after a remount (cold caches)
#   git-st    git status on that tree (committed first), after a remount, then warm
#   ls-lR     ls -lR of that tree, warm
#   seqwrite  fio: 1 GiB sequential write, 1 MiB blocks, fsync at the end
#   seqread   fio: 1 GiB sequential read after a remount
#   rand-cold fio: random 4 KiB reads over the 1 GiB file for 10 s after a remount (IOPS)
#   rand-warm the same after the whole file was read once (IOPS)
#   make      make -j2 of a generated C project (40 files) on the mount
#
# Each workload runs on the three mounts in turn (storfs, sshfs on OpenSSH,
# sshfs on storaged), RUNS times over; the output has one line per
# workload: the range of each, and the range over the runs of the ratio
# better-sshfs / storfs (> 1: storfs is faster).
#
# storaged runs with DURABILITY (default normal: no fsync per commit, as
# OpenSSH's sftp-server never fsyncs; full for the server's default).
#
# SIZE (default 1G) is the size of the big file of the fio workloads and
# RANDTIME (default 10) the seconds of each random-read run: smaller values
# make a short run (SIZE=256M RANDTIME=5 bench/storfs.sh 2).
#
# Usage: bench/storfs.sh [RUNS]   (default 3)    Does not touch docs/.
set -eu
RUNS=${1:-3}
DURABILITY=${DURABILITY:-normal}
SIZE=${SIZE:-1G}
RANDTIME=${RANDTIME:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "bench/storfs.sh: run as root (sshd, FUSE)" >&2; exit 1; }
packaging/install-deps.sh --bench
make -s all >/dev/null
for p in /usr/sbin/sshd /usr/lib/openssh/sftp-server /usr/bin/sshfs /usr/bin/fio; do
	[ -x "$p" ] || { echo "bench/storfs.sh: $p missing (packaging/install-deps.sh --bench)" >&2; exit 1; }
done
B=$(mktemp -d /tmp/bench-storfs.XXXXXX)
SD_PID= SSHD_PID=
declare -A MPID
umount_all() {
	for m in fs os sd; do
		mountpoint -q "$B/m-$m" 2>/dev/null && fusermount3 -u "$B/m-$m" 2>/dev/null
		mountpoint -q "$B/m-$m" 2>/dev/null && fusermount3 -u -z "$B/m-$m" 2>/dev/null
	done
	return 0
}
cleanup() {
	umount_all
	[ -n "$SD_PID" ] && kill "$SD_PID" 2>/dev/null
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$B"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# ---- storaged: HTTP (storfs) and SFTP (sshfs)
HP=$(port) SP=$(port) OP=$(port)
ssh-keygen -q -t ed25519 -N '' -f "$B/key" -C bench
ssh-keygen -q -t ed25519 -N '' -f "$B/host_key" -C host
cat > "$B/sd.conf" <<EOC
[storaged]
data_dir = $B/data
module_dir = $ROOT/frontends
log_file = $B/sd.log
log_level = warn
durability = $DURABILITY
[http]
enabled = yes
module = http
listen = 127.0.0.1:$HP
[sftp]
enabled = yes
module = sftp
listen = 127.0.0.1:$SP
EOC
./storagectl -c "$B/sd.conf" user add bench --password-stdin <<< 'bench-pw' >/dev/null
./storagectl -c "$B/sd.conf" user key add bench "$B/key.pub" >/dev/null
./storaged -c "$B/sd.conf" > "$B/sd.out" 2>&1 &
SD_PID=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done
echo bench-pw > "$B/pw"

# ---- OpenSSH sshd with its sftp-server
mkdir -p /run/sshd "$B/os-root"
cp "$B/key.pub" "$B/authorized_keys"
cat > "$B/sshd_config" <<EOC
Port $OP
ListenAddress 127.0.0.1
HostKey $B/host_key
PidFile $B/sshd.pid
AuthorizedKeysFile $B/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp /usr/lib/openssh/sftp-server
EOC
/usr/sbin/sshd -f "$B/sshd_config" -D -e > "$B/sshd.log" 2>&1 &
SSHD_PID=$!
sleep 0.5

SSHFS_OPTS="IdentityFile=$B/key,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null"
mount_fs() { # fs|os|sd
	local m=$B/m-$1
	mkdir -p "$m"
	case $1 in
	fs) ./storfs "http://127.0.0.1:$HP" "$m" -o user=bench,password_file="$B/pw" ;;
	os) sshfs -p "$OP" -o "$SSHFS_OPTS" "root@127.0.0.1:$B/os-root" "$m" ;;
	sd) sshfs -p "$SP" -o "$SSHFS_OPTS" "bench@127.0.0.1:/" "$m" ;;
	esac
	for _ in $(seq 100); do mountpoint -q "$m" && return 0; sleep 0.05; done
	echo "bench/storfs.sh: mounting $1 failed" >&2
	exit 1
}
unmount_fs() { fusermount3 -u "$B/m-$1"; for _ in $(seq 100); do mountpoint -q "$B/m-$1" || return 0; sleep 0.05; done; }
remount() { unmount_fs "$1"; mount_fs "$1"; }

# ---- inputs
/usr/bin/python3 - "$B/src" <<'PY'
import os, random, sys
root = sys.argv[1]
names = ["été", "日本語", "Ωmega", "naïve", "файл", "straße", "plain", "a b", "zebra", "Ärger"]
rng = random.Random(7)
for d in range(40):
    dd = os.path.join(root, "tree", f"dir{d:02d}-{names[d % 10]}")
    os.makedirs(dd)
    for i in range(50):
        with open(os.path.join(dd, f"{names[i % 10]}-{i:02d}.txt"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(1024, 4096)))
p = os.path.join(root, "proj")
os.makedirs(p)
for i in range(40):
    with open(os.path.join(p, f"m{i}.c"), "w") as f:
        f.write("#include <stdio.h>\n" + "".join(
            f"int f{i}_{k}(int x) {{ return x * {k} + {i}; }}\n" for k in range(200)))
with open(os.path.join(p, "main.c"), "w") as f:
    f.write("int main(void) { return 0; }\n")
with open(os.path.join(p, "Makefile"), "w") as f:
    f.write("OBJ := $(patsubst %.c,%.o,$(wildcard *.c))\nprog: $(OBJ)\n\t$(CC) -o $@ $^\n"
            "%.o: %.c\n\t$(CC) -O1 -c -o $@ $<\n")
PY
tar -C "$B/src" -cf "$B/tree.tar" tree

declare -A T
add() { [ "$2" = fail ] && { echo "bench/storfs.sh: $1 failed" >&2; return 0; }; T[$1]="${T[$1]:-} $2"; }
# seconds a command took, or "fail" (not counted) when it failed
timeit() {
	local t0 t1
	t0=$(now)
	if ! "$@" > /dev/null 2>&1; then echo fail; return 0; fi
	t1=$(now)
	awk "BEGIN{printf \"%.3f\", $t1 - $t0}"
}
fio_iops() { # FILE RW BS [extra]
	fio --name=b --filename="$1" --rw="$2" --bs="$3" --size="$SIZE" --ioengine=psync \
		--output-format=json "${@:4}" 2>/dev/null |
		/usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
r = j["read"] if j["read"]["io_bytes"] else j["write"]
# a job that failed (an error, or nothing moved) has no figure
if j.get("error") or not r["io_bytes"]:
    sys.exit(1)
print("%.0f %.0f" % (r["iops"], r["bw_bytes"] / 1048576))' 2>/dev/null ||
		echo "fail fail"
}

for fs in fs os sd; do mount_fs "$fs"; done
for run in $(seq "$RUNS"); do
	for fs in fs os sd; do
		m=$B/m-$fs
		w=$m/r$run
		mkdir -p "$w"
		t=$(timeit tar -C "$w" -xf "$B/tree.tar")
		add "untar-$fs" "$t"
		remount "$fs"
		# the tree workloads only on a mount that took the whole tree
		if [ "$t" = fail ]; then
			echo "bench/storfs.sh: no read-back, git status, ls -lR on $fs (untar failed)" >&2
		else
			add "readback-$fs" "$(timeit sh -c "find '$w/tree' -type f -exec cat {} + > /dev/null")"
			if ( cd "$w/tree" && git init -q && git add -A &&
				git -c user.name=b -c user.email=b@x commit -qm t ) > "$B/git-$fs.log" 2>&1; then
				remount "$fs"
				add "gitcold-$fs" "$(timeit git -C "$w/tree" status --porcelain)"
				add "gitwarm-$fs" "$(timeit git -C "$w/tree" status --porcelain)"
			else
				echo "bench/storfs.sh: git init/add/commit failed on $fs: $(tail -n 1 "$B/git-$fs.log")" >&2
			fi
			ls -lR "$w/tree" > /dev/null
			add "lslR-$fs" "$(timeit ls -lR "$w/tree")"
		fi
		read -r _ bw < <(fio_iops "$w/big" write 1M --end_fsync=1)
		add "seqwrite-$fs" "$bw"
		remount "$fs"
		read -r _ bw < <(fio_iops "$w/big" read 1M)
		add "seqread-$fs" "$bw"
		remount "$fs"
		read -r io _ < <(fio_iops "$w/big" randread 4k --time_based --runtime="$RANDTIME")
		add "randcold-$fs" "$io"
		cat "$w/big" > /dev/null
		read -r io _ < <(fio_iops "$w/big" randread 4k --time_based --runtime="$RANDTIME")
		add "randwarm-$fs" "$io"
		if cp -r "$B/src/proj" "$w/proj" 2> "$B/cp-$fs.log"; then
			add "make-$fs" "$(timeit make -s -j2 -C "$w/proj")"
		else
			echo "bench/storfs.sh: cp -r of the project failed on $fs: $(head -n 1 "$B/cp-$fs.log")" >&2
		fi
		rm -rf "$w" || true
	done
done

# ---- report: ranges, and the ratio better-sshfs / storfs per run
/usr/bin/python3 - "$RUNS" "$DURABILITY" "$SIZE" "$RANDTIME" <<PY
import sys
runs, dur, size, rt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
T = {$(for k in "${!T[@]}"; do printf '"%s": [%s], ' "$k" "$(echo ${T[$k]} | tr ' ' ',')"; done)}
rows = [("untar", "untar 2,000 files (s)", "time"), ("readback", "read them back, cold (s)", "time"),
        ("gitcold", "git status, cold (s)", "time"), ("gitwarm", "git status, warm (s)", "time"),
        ("lslR", "ls -lR, warm (s)", "time"), ("seqwrite", f"seq write {size} (MiB/s)", "rate"),
        ("seqread", f"seq read {size}, cold (MiB/s)", "rate"), ("randcold", "rand 4 KiB reads, cold (IOPS)", "rate"),
        ("randwarm", "rand 4 KiB reads, warm (IOPS)", "rate"), ("make", "make -j2, 41 files (s)", "time")]
def rng(v): return "%g..%g" % (min(v), max(v)) if v else "-"
print(f"bench/storfs.sh: {runs} interleaved runs, storaged durability = {dur}, big file {size}, random reads {rt} s")
print("%-32s %-16s %-16s %-16s %s" % ("workload", "storfs", "sshfs+OpenSSH", "sshfs+storaged", "better sshfs / storfs"))
for k, label, kind in rows:
    fs, os_, sd = T.get(k + "-fs", []), T.get(k + "-os", []), T.get(k + "-sd", [])
    ratios = []
    # a workload that failed on sshfs+storaged (no figures): against OpenSSH alone
    sd2 = sd or [float("inf") if kind == "time" else 0.0] * len(os_)
    for i in range(min(len(fs), len(os_), len(sd2))):
        if kind == "time":
            best = min(os_[i], sd2[i]); ratios.append(best / fs[i] if fs[i] else 0)
        else:
            best = max(os_[i], sd2[i]); ratios.append(fs[i] / best if best else 0)
    print("%-32s %-16s %-16s %-16s %s" % (label, rng(fs), rng(os_), rng(sd),
          "%.2f..%.2fx" % (min(ratios), max(ratios)) if ratios else "-"))
PY
