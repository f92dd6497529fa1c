#!/bin/bash
# bench/dav.sh - storaged's WebDAV against nginx (dav + dav_ext modules) and
# Apache (mod_dav_fs), same machine, same client (curl), same run. By hand:
#
#   bench/dav.sh [--quick]
#
# Needs (packaging/install-deps.sh --bench): nginx, libnginx-mod-http-dav-ext,
# apache2. Starts the three servers on free loopback ports, each with its own
# data under a temp dir, then for each:
#   1. PROPFIND Depth: 1 of a folder of 10,000 files (the props a client such
#      as rclone or davfs2 asks for), best of 3;
#   2. 2,000 PUTs of distinct 4 KiB files over one keep-alive connection
#      (one curl process, --config with 2,000 upload-file/url pairs);
#   3. PUT of one 1 GiB random file (best of 2);
#   4. GET of it (best of 3, from the page cache).
# storaged runs with durability = full (every PUT is fsync'd and committed
# before its answer); nginx and Apache do not fsync at all. Prints a table;
# writes nothing into docs/. --quick: 256 MiB, 500 PUTs, 2,000 entries.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
case "${1:-}" in
--quick) QUICK=1 ;;
"") ;;
-h | --help) sed -n '2,20p' "$0"; exit 0 ;;
*) echo "dav.sh: unknown option $1" >&2; exit 2 ;;
esac
if [ "$QUICK" = 1 ]; then BIG_MB=256; NSMALL=500; NLIST=2000; else BIG_MB=1024; NSMALL=2000; NLIST=10000; fi
PY=/usr/bin/python3
for x in "$ROOT/storaged" "$ROOT/storagectl" "$ROOT/frontends/http.so"; do
	[ -e "$x" ] || { echo "dav.sh: build first (make)" >&2; exit 1; }
done
command -v nginx >/dev/null || { echo "dav.sh: nginx not installed" >&2; exit 1; }
[ -e /usr/lib/nginx/modules/ngx_http_dav_ext_module.so ] ||
	{ echo "dav.sh: libnginx-mod-http-dav-ext not installed" >&2; exit 1; }
command -v apache2 >/dev/null || { echo "dav.sh: apache2 not installed" >&2; exit 1; }

T=$(mktemp -d /tmp/sdbench-dav.XXXXXX)
SPID= NPID= APID=
cleanup() {
	for p in $SPID $NPID $APID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SPORT=$(free_port); NPORT=$(free_port); APORT=$(free_port)

# ------------------------------------------------------------ data
echo "generating data in $T ..."
mkdir -p "$T/src/small" "$T/src/list"
head -c $((BIG_MB << 20)) /dev/urandom > "$T/src/big"
$PY - "$T/src/small" "$NSMALL" "$T/src/list" "$NLIST" <<'PY'
import os, sys
for d, n in ((sys.argv[1], int(sys.argv[2])), (sys.argv[3], int(sys.argv[4]))):
    for i in range(n):
        with open(os.path.join(d, "s%05d" % i), "wb") as f:
            f.write(os.urandom(4096))
PY
cat "$T/src/big" > /dev/null

# ------------------------------------------------------------ storaged
mkdir -p "$T/sd"
cat > "$T/sd/storaged.conf" <<CONF
[storaged]
data_dir = $T/sd/data
module_dir = $ROOT/frontends
log_level = info
log_file = $T/sd/storaged.log
durability = full

[http]
enabled = yes
module = http
listen = 127.0.0.1:$SPORT
CONF
: > "$T/sd/storaged.log"
printf 'bench\n' | "$ROOT/storagectl" -c "$T/sd/storaged.conf" user add bench --password-stdin >/dev/null
"$ROOT/storagectl" -c "$T/sd/storaged.conf" import bench "$T/src/list" /list -j 2 >/dev/null
"$ROOT/storaged" -c "$T/sd/storaged.conf" > "$T/sd/stdout" 2>&1 &
SPID=$!
for i in $(seq 1 200); do grep -q event=ready "$T/sd/storaged.log" && break; sleep 0.05; done
grep -q event=ready "$T/sd/storaged.log" || { cat "$T/sd/stdout" "$T/sd/storaged.log"; exit 1; }

# ------------------------------------------------------------ nginx (dav + dav_ext)
mkdir -p "$T/ng/root" "$T/ng/tmp"
chmod 0755 "$T" "$T/ng"
cp -r "$T/src/list" "$T/ng/root/list"
chmod -R a+rwX "$T/ng/root" "$T/ng/tmp"
cat > "$T/ng/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
worker_processes 2;
daemon off;
pid $T/ng/nginx.pid;
error_log $T/ng/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path $T/ng/tmp/body;
    proxy_temp_path $T/ng/tmp/proxy;
    fastcgi_temp_path $T/ng/tmp/fastcgi;
    uwsgi_temp_path $T/ng/tmp/uwsgi;
    scgi_temp_path $T/ng/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NPORT;
        root $T/ng/root;
        client_max_body_size 0;
        location / {
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_ext_methods PROPFIND OPTIONS;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }
    }
}
CONF
nginx -c "$T/ng/nginx.conf" -p "$T/ng" > "$T/ng/stdout" 2>&1 &
NPID=$!

# ------------------------------------------------------------ Apache (mod_dav_fs)
mkdir -p "$T/ap/root" "$T/ap/run"
cp -r "$T/src/list" "$T/ap/root/list"
chown -R www-data:www-data "$T/ap"
M=/usr/lib/apache2/modules
cat > "$T/ap/apache2.conf" <<CONF
ServerRoot $T/ap
Listen 127.0.0.1:$APORT
PidFile $T/ap/run/httpd.pid
LoadModule mpm_event_module $M/mod_mpm_event.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule dav_module $M/mod_dav.so
LoadModule dav_fs_module $M/mod_dav_fs.so
User www-data
Group www-data
ErrorLog $T/ap/error.log
MaxRequestsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
StartServers 2
ThreadsPerChild 25
DavLockDB $T/ap/run/DavLock
DocumentRoot $T/ap/root
<Directory $T/ap/root>
    Dav On
    Require all granted
</Directory>
CONF
apache2 -f "$T/ap/apache2.conf" -DFOREGROUND > "$T/ap/stdout" 2>&1 &
APID=$!
for p in $NPORT $APORT; do
	for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && break; sleep 0.05; done
done

SB=http://127.0.0.1:$SPORT/dav
NB=http://127.0.0.1:$NPORT
AB=http://127.0.0.1:$APORT
now() { date +%s.%N; }
el() { $PY -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
best() { $PY -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }
timed() {
	local t0 t1
	t0=$(now)
	"$@" || { echo "dav.sh: failed: $*" >&2; return 1; }
	t1=$(now)
	el $t0 $t1
}
auth() { case "$1" in "$SB") echo "-ubench:bench" ;; *) echo "-s" ;; esac; }

# ------------------------------------------------------------ 1: PROPFIND Depth 1
PF='<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><resourcetype/><getcontentlength/><getetag/><getlastmodified/><displayname/></prop></propfind>'
propfind() {
	local n
	n=$(curl -sf "$(auth "$1")" -X PROPFIND -H 'Depth: 1' -H 'Content-Type: application/xml' \
		--data "$PF" "$1/list/" | grep -o '<[A-Za-z0-9]*:\{0,1\}response[ >]' | wc -l)
	[ "$n" -eq $((NLIST + 1)) ] || { echo "dav.sh: PROPFIND of $1 gave $n responses" >&2; return 1; }
}
declare -A PFT UPT SMT DNT
for b in "$SB" "$NB" "$AB"; do
	t=()
	for i in 1 2 3; do t+=("$(timed propfind "$b")"); done
	PFT[$b]=$(best "${t[@]}")
done

# ------------------------------------------------------------ 2: 2,000 small PUTs, keep-alive
for b in "$SB" "$NB" "$AB"; do
	curl -sf "$(auth "$b")" -X MKCOL "$b/small/" -o /dev/null
	: > "$T/cfg"
	for f in "$T/src/small"/*; do
		printf 'upload-file = "%s"\nurl = "%s/small/%s"\noutput = "/dev/null"\n' \
			"$f" "$b" "$(basename "$f")" >> "$T/cfg"
	done
	sync
	SMT[$b]=$(timed curl -sf "$(auth "$b")" --config "$T/cfg")
done

# ------------------------------------------------------------ 3: 1 GiB PUT, 4: GET
for b in "$SB" "$NB" "$AB"; do
	t=()
	for i in 1 2; do
		sync
		t+=("$(timed curl -sf "$(auth "$b")" -T "$T/src/big" "$b/big$i" -o /dev/null)")
	done
	UPT[$b]=$(best "${t[@]}")
	t=()
	for i in 1 2 3; do t+=("$(timed curl -sf "$(auth "$b")" "$b/big1" -o /dev/null)"); done
	DNT[$b]=$(best "${t[@]}")
	cmp -s <(curl -sf "$(auth "$b")" "$b/big1") "$T/src/big" || { echo "dav.sh: $b/big1 differs" >&2; exit 1; }
done

# ------------------------------------------------------------ table
$PY - "$NLIST" "$NSMALL" "$BIG_MB" "${PFT[$SB]}" "${PFT[$NB]}" "${PFT[$AB]}" \
	"${SMT[$SB]}" "${SMT[$NB]}" "${SMT[$AB]}" "${UPT[$SB]}" "${UPT[$NB]}" "${UPT[$AB]}" \
	"${DNT[$SB]}" "${DNT[$NB]}" "${DNT[$AB]}" <<'PY'
import sys
nl, ns, mb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
v = [float(x) for x in sys.argv[4:]]
rows = [
    (f"PROPFIND Depth 1, {nl} entries", v[0:3], "s", None),
    (f"{ns} x 4 KiB PUT, keep-alive", v[3:6], "files/s", ns),
    (f"PUT {mb} MiB", v[6:9], "MB/s", mb * 1048576 / 1e6),
    (f"GET {mb} MiB", v[9:12], "MB/s", mb * 1048576 / 1e6),
]
print(f"| workload | storaged | nginx dav+dav_ext | Apache mod_dav_fs | storaged / better peer |")
print("|---|---|---|---|---|")
for name, (s, n, a), unit, amount in rows:
    if amount is None:
        cells = [f"{x:.3f} s" for x in (s, n, a)]
        r = min(n, a) / s
    else:
        cells = [f"{amount / x:.0f} {unit} ({x:.2f} s)" for x in (s, n, a)]
        r = min(n, a) / s
    print(f"| {name} | {cells[0]} | {cells[1]} | {cells[2]} | {r:.2f}x |")
PY
