#!/bin/bash
# tests/ceph/cluster.sh - a throw-away single-host Ceph cluster for the
# back-end tests (make test-ceph) and the benchmark (bench/backends.sh).
#
#   cluster.sh start DIR     bring up one monitor, one manager, one OSD on
#                            the memstore object store (RAM, nothing on
#                            disk), pool size 1, and radosgw; write
#                            DIR/env (shell variables, see below) and
#                            print "ceph: up ..." when every part answers
#   cluster.sh stop DIR      kill what start left running (by the pids it
#                            recorded in DIR/pids, never by name)
#   cluster.sh kill-osd DIR  kill the OSD (SIGTERM, see kill_osd) and mark
#                            it down (a failure test)
#   cluster.sh start-osd DIR restart it, wait until its PGs are active
#   cluster.sh kill-rgw DIR  stop radosgw (an S3 outage, for a failure test)
#   cluster.sh start-rgw DIR restart it, wait until it answers
#   cluster.sh check         say whether this machine can run a cluster
#
# vstart.sh needs a Ceph source tree, so this is the manual deployment of
# the Ceph documentation, cut down: cephx keys made with ceph-authtool, a
# monmap with monmaptool, mkfs of each daemon, then the daemons in the
# foreground of their own process groups. Every wait is bounded (WAIT,
# default 120 s, for the whole bring-up); a failure prints the tail of the
# daemon's log and exits 1, and the caller's trap runs stop.
#
# DIR/env holds: CEPH_CONF, CEPH_KEYRING (client.admin), RADOS_POOL,
# RADOS_USER (client.storaged, caps on that pool only), RADOS_USER_KEYRING,
# S3_ENDPOINT (http://127.0.0.1:PORT), S3_ACCESS_KEY, S3_SECRET_KEY,
# S3_BUCKET (made empty), S3_REGION.
#
# Ports: the monitor and radosgw take ports the script finds free in
# 20000-32000 (below the ephemeral range); OSD/MGR messengers bind inside a
# 100-port block above the monitor's.
set -euo pipefail

WAIT=${WAIT:-120}
MEM=${CEPH_MEMSTORE_BYTES:-3221225472} # the OSD's RAM disk (3 GiB)

EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

die() { echo "ceph: $*" >&2; exit 1; }

check() {
	local missing=""
	for b in ceph-mon ceph-mgr ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool rados; do
		command -v "$b" >/dev/null || missing="$missing $b"
	done
	[ -z "$missing" ] || die "cannot run a cluster: missing$missing (packaging/install-deps.sh --ceph installs ceph-mon ceph-mgr ceph-osd radosgw ceph-common)"
	[ "$(id -u)" = 0 ] || die "cannot run a cluster: needs root (the daemons run as root here)"
	echo "ceph: this machine can run a test cluster ($(ceph --version | awk '{print $3}'))"
}

free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && \
		   ! ss -Htln "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
	die "no free port"
}

# wait_for SECONDS WHAT CMD...: run CMD until it succeeds, or fail.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.5
	done
}

remaining() {
	local r=$((DEADLINE - SECONDS))
	[ $r -gt 0 ] && echo $r || echo 1
}

logtail() { tail -n 30 "$D/log/$1.log" >&2 2>/dev/null || true; }

cephc() { timeout 30 ceph -c "$D/ceph.conf" "$@"; }

spawn() { # NAME CMD...: run in its own process group, record the pid
	local name=$1
	shift
	setsid "$@" >>"$D/log/$name.out" 2>&1 < /dev/null &
	echo "$name $!" >>"$D/pids"
}

start() {
	D=$1
	[ -n "$D" ] || die "usage: cluster.sh start DIR"
	mkdir -p "$D"
	D=$(cd "$D" && pwd)
	[ ! -e "$D/pids" ] || die "$D already has a cluster (cluster.sh stop $D first)"
	check >/dev/null
	DEADLINE=$((SECONDS + WAIT))
	mkdir -p "$D/log" "$D/run" "$D/mon/ceph-a" "$D/mgr/ceph-x" "$D/osd/ceph-0" "$D/rgw"
	: >"$D/pids"
	local monport rgwport fsid
	monport=$(free_port)
	rgwport=$(free_port)
	fsid=$(cat /proc/sys/kernel/random/uuid)
	cat >"$D/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v1:127.0.0.1:$monport
mon_initial_members = a
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
ms_bind_msgr2 = false
ms_bind_port_min = $((monport + 1))
ms_bind_port_max = $((monport + 100))
public_addr = 127.0.0.1
run_dir = $D/run
admin_socket = $D/run/\$name.asok
log_file = $D/log/\$name.log
log_to_stderr = false
err_to_stderr = true
keyring = $D/keyring.admin
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 1
mon_data_avail_crit = 0
auth_allow_insecure_global_id_reclaim = false
[mon]
mon_data = $D/mon/ceph-\$id
[mgr]
mgr_data = $D/mgr/ceph-\$id
keyring = $D/mgr/ceph-\$id/keyring
mgr_initial_modules =
[osd]
osd_data = $D/osd/ceph-\$id
keyring = $D/osd/ceph-\$id/keyring
osd_objectstore = memstore
memstore_device_bytes = $MEM
osd_max_object_size = 134217728
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
osd_heartbeat_grace = 5
osd_fast_shutdown = false
[client.rgw.x]
rgw_frontends = beast endpoint=127.0.0.1:$rgwport
rgw_dns_name = localhost
rgw_data = $D/rgw
keyring = $D/keyring.rgw
EOF
	# keys: monitor, admin, and the monitor's keyring holding both
	ceph-authtool --create-keyring "$D/keyring.mon" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool --create-keyring "$D/keyring.admin" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
	ceph-authtool "$D/keyring.mon" --import-keyring "$D/keyring.admin" >/dev/null
	monmaptool --create --add a "v1:127.0.0.1:$monport" --fsid "$fsid" "$D/monmap" >/dev/null
	ceph-mon -c "$D/ceph.conf" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring.mon" \
		>"$D/log/mkfs-mon.out" 2>&1 || { cat "$D/log/mkfs-mon.out" >&2; die "monitor mkfs failed"; }
	spawn mon ceph-mon -c "$D/ceph.conf" -i a -f
	wait_for "$(remaining)" monitor cephc mon stat || { logtail mon.a; die "the monitor did not answer within ${WAIT}s"; }

	# manager
	cephc auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
		>"$D/mgr/ceph-x/keyring"
	spawn mgr ceph-mgr -c "$D/ceph.conf" -i x -f

	# OSD on memstore
	local osduuid
	osduuid=$(cat /proc/sys/kernel/random/uuid)
	local id
	id=$(cephc osd new "$osduuid")
	[ "$id" = 0 ] || die "unexpected OSD id '$id'"
	ceph-osd -c "$D/ceph.conf" --no-mon-config -i 0 --mkfs --mkkey --osd-uuid "$osduuid" \
		>"$D/log/mkfs-osd.out" 2>&1 || { cat "$D/log/mkfs-osd.out" >&2; die "OSD mkfs failed"; }
	cephc auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
		-i "$D/osd/ceph-0/keyring" >/dev/null 2>&1
	spawn osd ceph-osd -c "$D/ceph.conf" -i 0 -f
	wait_for "$(remaining)" osd osd_up || { logtail osd.0; die "the OSD did not come up within ${WAIT}s"; }

	# a pool for the rados back end, and a user limited to it
	cephc osd pool create storaged 8 8 >/dev/null 2>&1
	cephc osd pool application enable storaged storaged >/dev/null 2>&1
	cephc auth get-or-create client.storaged mon 'allow r' osd 'allow rwx pool=storaged' \
		>"$D/keyring.storaged"

	# radosgw and an S3 user
	cephc auth get-or-create client.rgw.x mon 'allow rw' osd 'allow rwx' >"$D/keyring.rgw"
	spawn rgw radosgw -c "$D/ceph.conf" -n client.rgw.x -f
	wait_for "$(remaining)" radosgw curl -sf -o /dev/null "http://127.0.0.1:$rgwport/" ||
		{ logtail client.rgw.x; die "radosgw did not answer within ${WAIT}s"; }
	local ak sk
	ak=$(head -c 10 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
	sk=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
	timeout 60 radosgw-admin -c "$D/ceph.conf" user create --uid=storaged --display-name=storaged \
		--access-key="$ak" --secret-key="$sk" >/dev/null ||
		die "radosgw-admin user create failed"
	cat >"$D/env" <<EOF
CEPH_DIR=$D
CEPH_CONF=$D/ceph.conf
CEPH_KEYRING=$D/keyring.admin
RADOS_POOL=storaged
RADOS_USER=storaged
RADOS_USER_KEYRING=$D/keyring.storaged
S3_ENDPOINT=http://127.0.0.1:$rgwport
S3_HOST_PORT=$rgwport
S3_ACCESS_KEY=$ak
S3_SECRET_KEY=$sk
S3_BUCKET=storaged
S3_REGION=default
EOF
	# the bucket (path-style PUT, signed by curl itself; curl 7.88 does not
	# send the payload hash that radosgw requires)
	wait_for "$(remaining)" bucket curl -sf -X PUT --aws-sigv4 "aws:amz:default:s3" -H "x-amz-content-sha256: $EMPTY_SHA" \
		--user "$ak:$sk" "http://127.0.0.1:$rgwport/storaged" ||
		{ logtail client.rgw.x; die "cannot create the test bucket"; }
	echo "ceph: up in $((SECONDS + WAIT - DEADLINE))s (mon 127.0.0.1:$monport, radosgw 127.0.0.1:$rgwport, env in $D/env)"
}

osd_up() {
	cephc osd dump 2>/dev/null | grep -q '^osd.0 up'
}

pgs_active() {
	local s
	s=$(cephc pg stat 2>/dev/null) || return 1
	# "N pgs: N active+clean; ..." and nothing else
	echo "$s" | grep -Eq '^[0-9]+ pgs: [0-9]+ active\+clean;'
}

pid_of() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$D/pids" 2>/dev/null; }

kill_one() { # NAME SIG
	local p
	p=$(pid_of "$1")
	[ -n "$p" ] || return 0
	kill -"$2" -- "-$p" 2>/dev/null || kill -"$2" "$p" 2>/dev/null || true
}

stop() {
	D=$1
	[ -d "$D" ] || return 0
	D=$(cd "$D" && pwd)
	[ -e "$D/pids" ] || return 0
	for n in rgw osd mgr mon; do kill_one $n TERM; done
	local end=$((SECONDS + 15))
	while [ $SECONDS -lt $end ]; do
		local alive=0
		while read -r _ p; do kill -0 "$p" 2>/dev/null && alive=1; done <"$D/pids"
		[ $alive = 0 ] && break
		sleep 0.3
	done
	for n in rgw osd mgr mon; do kill_one $n KILL; done
	rm -f "$D/pids"
	echo "ceph: stopped ($D)"
}

kill_osd() {
	D=$(cd "$1" && pwd)
	# SIGTERM: the OSD stops at once, failing what is in flight, but
	# memstore writes its objects out on the way down; after SIGKILL a
	# memstore OSD comes back empty and its PGs never recover.
	kill_one osd TERM
	local p
	p=$(pid_of osd)
	local end=$((SECONDS + 10))
	while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
	cephc osd down 0 >/dev/null 2>&1 || true
	echo "ceph: osd killed"
}

start_osd() {
	D=$(cd "$1" && pwd)
	DEADLINE=$((SECONDS + WAIT))
	spawn osd ceph-osd -c "$D/ceph.conf" -i 0 -f
	wait_for "$(remaining)" osd osd_up || { logtail osd.0; die "the OSD did not come back within ${WAIT}s"; }
	wait_for "$(remaining)" pgs pgs_active || { cephc pg stat >&2 || true; die "PGs not active within ${WAIT}s"; }
	echo "ceph: osd back"
}

kill_rgw() {
	D=$(cd "$1" && pwd)
	kill_one rgw TERM
	local p
	p=$(pid_of rgw)
	local end=$((SECONDS + 10))
	while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
	kill_one rgw KILL
	echo "ceph: radosgw killed"
}

start_rgw() {
	D=$(cd "$1" && pwd)
	DEADLINE=$((SECONDS + WAIT))
	local port
	port=$(awk -F= '$1 == "S3_HOST_PORT" { print $2 }' "$D/env")
	spawn rgw radosgw -c "$D/ceph.conf" -n client.rgw.x -f
	wait_for "$(remaining)" radosgw curl -sf -o /dev/null "http://127.0.0.1:$port/" ||
		{ logtail client.rgw.x; die "radosgw did not come back within ${WAIT}s"; }
	echo "ceph: radosgw back"
}

case "${1:-}" in
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
kill-osd) kill_osd "${2:-}" ;;
start-osd) start_osd "${2:-}" ;;
kill-rgw) kill_rgw "${2:-}" ;;
start-rgw) start_rgw "${2:-}" ;;
check) check ;;
*) die "usage: cluster.sh start|stop|kill-osd|start-osd|kill-rgw|start-rgw DIR | check" ;;
esac
