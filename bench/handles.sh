#!/bin/bash
# bench/handles.sh - the HTTP handle API (docs/handle-api.md) against plain
# HTTP PUT/GET of the same storaged, same client, same run. By hand:
#
#   bench/handles.sh [--size MB] [--runs N] [--reads N]
#
# Measures, on one storaged (durability = full, the default), run after run
# interleaved (every figure: median of N runs, default 3, with min-max):
#   1. sequential write of a SIZE MiB file (default 1024):
#        plain   curl -T file PUT /api/v1/fs/...          (commit included)
#        handle  curl: POST /api/v1/open (create, truncate), curl -T file
#                PUT /api/v1/handles/H/data, POST .../close (commit included)
#      Each upload's content is new (its first 16 bytes are rewritten), so
#      neither path gets deduplicated.
#   2. sequential read of it:
#        plain   curl GET /api/v1/fs/... -o /dev/null
#        handle  POST /api/v1/open, curl GET .../data -o /dev/null, close
#   3. random 4 KiB reads at 4 KiB-aligned offsets over the file, python
#      http.client on one keep-alive connection, READS per run (default 20000):
#        handle  GET /api/v1/handles/H/data, Range: bytes=a-b (open once)
#        plain   GET /api/v1/fs/..., Range: bytes=a-b (a reader per request)
#      reads/s and latency p50/p99.
# Everything listens on 127.0.0.1 (a free port); storaged is stopped by PID
# at the end; temp data lives in /var/tmp/sdbench-handles.* and is removed.
# Prints a Markdown table; it does not touch docs/benchmarks.md.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=1024 RUNS=3 READS=20000
while [ $# -gt 0 ]; do
	case "$1" in
	--size) SIZE_MB=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--reads) READS=$2; shift 2 ;;
	*) echo "handles.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
PY=/usr/bin/python3
for x in "$ROOT/storaged" "$ROOT/storagectl" "$ROOT/frontends/http.so"; do
	[ -e "$x" ] || { echo "handles.sh: build first (make)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "handles.sh: curl missing" >&2; exit 1; }

T=$(mktemp -d /var/tmp/sdbench-handles.XXXXXX)
SPID=
cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat > "$T/storaged.conf" <<CONF
[storaged]
data_dir = $T/data
module_dir = $ROOT/frontends
log_level = warn
log_file = $T/storaged.log
durability = full

[http]
enabled = yes
module = http
listen = 127.0.0.1:$PORT
CONF
: > "$T/storaged.log"
"$ROOT/storaged" -c "$T/storaged.conf" > "$T/stdout" 2>&1 &
SPID=$!
for i in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.05; done
CTL=("$ROOT/storagectl" -c "$T/storaged.conf")
printf 'bench\n' | "${CTL[@]}" user add bench --password-stdin >/dev/null
B=http://127.0.0.1:$PORT
AUTH=(-u bench:bench)

echo "generating $SIZE_MB MiB in $T ..."
head -c $((SIZE_MB << 20)) /dev/urandom > "$T/src"
SIZE=$((SIZE_MB << 20))

now() { date +%s.%N; }
el() { $PY -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
fresh() { # new content: rewrite the first 16 bytes in place
	head -c 16 /dev/urandom | dd of="$T/src" bs=16 count=1 conv=notrunc status=none
	cat "$T/src" > /dev/null # page cache
}
open_h() { # open_h PATH FLAGS-JSON -> handle id
	curl -sf "${AUTH[@]}" -d "{\"path\":\"$1\",\"flags\":$2}" "$B/api/v1/open" |
		sed 's/.*"handle":"\([^"]*\)".*/\1/'
}
close_h() { curl -sf "${AUTH[@]}" -X POST "$B/api/v1/handles/$1/close" -o /dev/null; }

plain_write() { curl -sf "${AUTH[@]}" -T "$T/src" "$B/api/v1/fs/plain.bin" -o /dev/null; }
handle_write() {
	local h
	h=$(open_h /handle.bin '["write","create","truncate"]')
	curl -sf "${AUTH[@]}" -T "$T/src" "$B/api/v1/handles/$h/data?offset=0" -o /dev/null
	close_h "$h"
}
plain_read() { curl -sf "${AUTH[@]}" "$B/api/v1/fs/plain.bin" -o /dev/null; }
handle_read() {
	local h
	h=$(open_h /handle.bin '["read"]')
	curl -sf "${AUTH[@]}" "$B/api/v1/handles/$h/data" -o /dev/null
	close_h "$h"
}
timed() {
	local t0 t1
	sync
	t0=$(now)
	"$@" || { echo "handles.sh: failed: $*" >&2; return 1; }
	t1=$(now)
	el "$t0" "$t1"
}
check_same() { # the stored file is what was sent
	local want got
	want=$(sha256sum "$T/src" | cut -c1-64)
	got=$(curl -sf "${AUTH[@]}" "$B/api/v1/stat/$1" | sed 's/.*"sha256":"\([0-9a-f]*\)".*/\1/')
	[ "$want" = "$got" ] || { echo "handles.sh: $1 holds $got, sent $want" >&2; exit 1; }
}

random_reads() { # random_reads handle|plain -> "reads/s p50_us p99_us"
	$PY - "$1" "$PORT" "$SIZE" "$READS" <<'PY'
import base64, http.client, json, random, sys, time
mode, port, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
auth = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}
c = http.client.HTTPConnection("127.0.0.1", port)
if mode == "handle":
    c.request("POST", "/api/v1/open", json.dumps({"path": "/handle.bin"}), auth)
    r = c.getresponse()
    h = json.loads(r.read())["handle"]
    url = f"/api/v1/handles/{h}/data"
else:
    url = "/api/v1/fs/plain.bin"
rng = random.Random(7)
blocks = size // 4096
lat = []
t0 = time.perf_counter()
for _ in range(n):
    off = rng.randrange(blocks) * 4096
    hd = dict(auth, Range=f"bytes={off}-{off + 4095}")
    t = time.perf_counter()
    c.request("GET", url, headers=hd)
    r = c.getresponse()
    body = r.read()
    lat.append(time.perf_counter() - t)
    if r.status != 206 or len(body) != 4096:
        sys.exit(f"read at {off}: {r.status} {len(body)} bytes")
total = time.perf_counter() - t0
if mode == "handle":
    c.request("POST", f"/api/v1/handles/{h}/close", headers=auth)
    c.getresponse().read()
lat.sort()
print("%.0f %.0f %.0f" % (n / total, lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6))
PY
}

declare -a PW HW PR HR HRR PRR
for run in $(seq 1 "$RUNS"); do
	echo "run $run/$RUNS"
	# alternate which path goes first
	if [ $((run % 2)) = 1 ]; then
		fresh; PW+=("$(timed plain_write)"); check_same plain.bin
		fresh; HW+=("$(timed handle_write)"); check_same handle.bin
		PR+=("$(timed plain_read)"); HR+=("$(timed handle_read)")
		HRR+=("$(random_reads handle)"); PRR+=("$(random_reads plain)")
	else
		fresh; HW+=("$(timed handle_write)"); check_same handle.bin
		fresh; PW+=("$(timed plain_write)"); check_same plain.bin
		HR+=("$(timed handle_read)"); PR+=("$(timed plain_read)")
		PRR+=("$(random_reads plain)"); HRR+=("$(random_reads handle)")
	fi
	echo "  write s: plain ${PW[-1]} handle ${HW[-1]}; read s: plain ${PR[-1]} handle ${HR[-1]}"
	echo "  4K random (reads/s p50us p99us): handle ${HRR[-1]}; plain ${PRR[-1]}"
done

$PY - "$SIZE" "$RUNS" "${PW[*]}" "${HW[*]}" "${PR[*]}" "${HR[*]}" "${HRR[*]}" "${PRR[*]}" \
	"bench/handles.sh --size $SIZE_MB --runs $RUNS --reads $READS" <<'PY'
import statistics, sys
size, runs = int(sys.argv[1]), int(sys.argv[2])
pw, hw, pr, hr = ([float(x) for x in a.split()] for a in sys.argv[3:7])
hrr = [[float(v) for v in t] for t in zip(*[iter(sys.argv[7].split())] * 3)]
prr = [[float(v) for v in t] for t in zip(*[iter(sys.argv[8].split())] * 3)]
cmd = sys.argv[9]
mb = size / 1048576

def rate(ts):
    rs = [mb / t for t in ts]
    return f"{statistics.median(rs):.0f} MiB/s ({min(rs):.0f}-{max(rs):.0f})"

def col(rows, i, fmt):
    vs = [r[i] for r in rows]
    return f"{fmt % statistics.median(vs)} ({fmt % min(vs)}-{fmt % max(vs)})"

print()
print(f"`{cmd}`: {runs} interleaved runs, median (min-max)")
print()
print("| workload | plain PUT/GET (curl) | handle API (curl) | handle / plain |")
print("|---|---|---|---|")
print(f"| sequential write {mb:.0f} MiB (incl. commit) | {rate(pw)} | {rate(hw)} | "
      f"{statistics.median(pw) / statistics.median(hw):.2f} |")
print(f"| sequential read {mb:.0f} MiB | {rate(pr)} | {rate(hr)} | "
      f"{statistics.median(pr) / statistics.median(hr):.2f} |")
print()
print("| random 4 KiB reads, one keep-alive connection (python http.client) | reads/s | p50 us | p99 us |")
print("|---|---|---|---|")
print(f"| handle: GET .../data with Range | {col(hrr, 0, '%.0f')} | {col(hrr, 1, '%.0f')} | {col(hrr, 2, '%.0f')} |")
print(f"| plain: GET /api/v1/fs/... with Range | {col(prr, 0, '%.0f')} | {col(prr, 1, '%.0f')} | {col(prr, 2, '%.0f')} |")
PY
