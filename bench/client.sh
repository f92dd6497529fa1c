#!/bin/bash
# bench/client.sh - libstoraged and stor against their peers, interleaved
# runs, by hand (needs root for sshd; packaging/install-deps.sh --bench).
#
#   random 4 KiB reads over a 1 GiB file: libstoraged with a warm cache and
#     with no cache (2 pages of 4 KiB) vs OpenSSH's sftp-server read through
#     paramiko at random offsets;
#   sequential 1 GiB write and read through libstoraged (1 MiB calls, a
#     64 x 1 MiB cache) vs curl PUT / GET of the same file to storaged;
#   stor put of a 1 GiB file the server already holds: hashing vs
#     openssl dgst -sha256, and the network time after hashing.
#
# Usage: bench/client.sh [RUNS]   (default 3; prints ranges min..max)
# Does not touch docs/benchmarks.md.
set -eu
RUNS=${1:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "run as root (sshd needs it)" >&2; exit 1; }
packaging/install-deps.sh --bench
make -s all >/dev/null
[ -x /usr/sbin/sshd ] && [ -x /usr/lib/openssh/sftp-server ] || { echo "bench/client.sh: OpenSSH server missing" >&2; exit 1; }
B=$(mktemp -d /tmp/bench-client.XXXXXX)
SD_PID= SSHD_PID=
cleanup() {
	[ -n "$SD_PID" ] && kill "$SD_PID" 2>/dev/null
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$B"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", ($1) }"; }

cc -O2 -Iclient -o "$B/client-bench" bench/client-bench.c -Lbuild -lstoraged -Wl,-rpath,"$ROOT/build"

SD_PORT=$(port) OS_PORT=$(port)
cat > "$B/sd.conf" <<EOC
[storaged]
data_dir = $B/data
module_dir = $ROOT/frontends
log_file = $B/sd.log
log_level = warn
[http]
enabled = yes
module = http
listen = 127.0.0.1:$SD_PORT
EOC
./storagectl -c "$B/sd.conf" user add bench --password-stdin <<< 'bench-pw' >/dev/null
./storaged -c "$B/sd.conf" > "$B/sd.out" 2>&1 &
SD_PID=$!
URL=http://127.0.0.1:$SD_PORT
for _ in $(seq 50); do curl -s "$URL/healthz" >/dev/null && break; sleep 0.1; done

ssh-keygen -q -t ed25519 -N '' -f "$B/client_key" -C bench
ssh-keygen -q -t ed25519 -N '' -f "$B/host_key" -C host
mkdir -p /run/sshd
cp "$B/client_key.pub" "$B/authorized_keys"
cat > "$B/sshd_config" <<EOC
Port $OS_PORT
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

F=$B/file.bin
head -c $((1 << 30)) /dev/urandom > "$F"
SUM=$(openssl dgst -sha256 -r "$F" | cut -c1-64)
curl -s -u bench:bench-pw -T "$F" "$URL/api/v1/fs/file.bin" >/dev/null

N_WARM=200000 N_COLD=5000 N_SFTP=5000
declare -A R
add() { R[$1]="${R[$1]:-} $2"; }
for run in $(seq "$RUNS"); do
	# random 4 KiB reads
	out=$("$B/client-bench" "$URL" bench bench-pw randread /file.bin $N_WARM warm)
	add warm "$(echo "$out" | awk '{printf "%.0f", $4/$3}')"
	out=$("$B/client-bench" "$URL" bench bench-pw randread /file.bin $N_COLD cold)
	add cold "$(echo "$out" | awk '{printf "%.0f", $4/$3}')"
	add sftp "$(/usr/bin/python3 - "$OS_PORT" "$B/client_key" "$F" $N_SFTP <<'PY'
import paramiko, random, sys, time
port, key, path, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
t = paramiko.Transport(("127.0.0.1", port))
t.connect(username="root", pkey=paramiko.Ed25519Key.from_private_key_file(key))
s = paramiko.SFTPClient.from_transport(t)
f = s.open(path, "rb")
size = f.stat().st_size
random.seed(42)
t0 = time.monotonic()
for _ in range(n):
    f.seek(random.randrange(size // 4096) * 4096)
    assert len(f.read(4096)) == 4096
print("%.0f" % (n / (time.monotonic() - t0)))
PY
)"
	# sequential 1 GiB through libstoraged vs curl
	out=$("$B/client-bench" "$URL" bench bench-pw seqwrite /seq.bin 1024)
	add libw "$(echo "$out" | awk '{printf "%.0f", $4/$3/1048576}')"
	out=$("$B/client-bench" "$URL" bench bench-pw seqread /seq.bin)
	add libr "$(echo "$out" | awk '{printf "%.0f", $4/$3/1048576}')"
	t0=$(now); curl -s -u bench:bench-pw -T "$F" "$URL/api/v1/fs/curl.bin" >/dev/null; t1=$(now)
	add curlw "$(calc "1024 / ($t1 - $t0)" 0)"
	t0=$(now); curl -s -u bench:bench-pw -o /dev/null "$URL/api/v1/fs/curl.bin"; t1=$(now)
	add curlr "$(calc "1024 / ($t1 - $t0)" 0)"
	# stor put of a stored file
	t0=$(now); openssl dgst -sha256 "$F" >/dev/null; t1=$(now)
	add ossl "$(calc "1024 / ($t1 - $t0)" 0)"
	line=$(STOR_CONFIG=$B/none STOR_URL=$URL STOR_USER=bench STOR_PASSWORD=bench-pw \
		XDG_CACHE_HOME=$B/cache ./stor put "$F" "/again-$run.bin")
	h=$(echo "$line" | sed -n 's/.*hash \([0-9.]*\) s.*/\1/p')
	add storhash "$(calc "1024 / $h" 0)"
	add stornet "$(echo "$line" | sed -n 's/.*network \([0-9.]*\) ms.*/\1/p')"
done
range() { echo "$1" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk 'NR==1{a=$1} {b=$1} END{print a ".." b}'; }
echo "bench/client.sh: $RUNS interleaved runs, 1 GiB file (sha256 $SUM)"
printf '%-58s %s\n' "random 4 KiB reads, libstoraged warm cache (reads/s)" "$(range "${R[warm]}")"
printf '%-58s %s\n' "random 4 KiB reads, libstoraged no cache (reads/s)" "$(range "${R[cold]}")"
printf '%-58s %s\n' "random 4 KiB reads, OpenSSH sftp-server + paramiko (reads/s)" "$(range "${R[sftp]}")"
printf '%-58s %s\n' "sequential write 1 GiB, libstoraged (MiB/s)" "$(range "${R[libw]}")"
printf '%-58s %s\n' "sequential write 1 GiB, curl PUT (MiB/s)" "$(range "${R[curlw]}")"
printf '%-58s %s\n' "sequential read 1 GiB, libstoraged (MiB/s)" "$(range "${R[libr]}")"
printf '%-58s %s\n' "sequential read 1 GiB, curl GET (MiB/s)" "$(range "${R[curlr]}")"
printf '%-58s %s\n' "stor put of a stored 1 GiB file: hashing (MiB/s)" "$(range "${R[storhash]}")"
printf '%-58s %s\n' "openssl dgst -sha256 of the same file (MiB/s)" "$(range "${R[ossl]}")"
printf '%-58s %s\n' "stor put of a stored 1 GiB file: network after hashing (ms)" "$(range "${R[stornet]}")"
