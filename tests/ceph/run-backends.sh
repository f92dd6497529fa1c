#!/bin/bash
# tests/ceph/run-backends.sh - make test-backends: the remote blob stores
# against a real single-host Ceph cluster (tests/ceph/cluster.sh), which
# this script starts in a temp dir and stops on the way out, whatever
# happens.
#
#   1. the store contract suite (tests/unit/test_backends.c) against
#      blob_store = s3 on radosgw (radosgw stopped and restarted for its
#      outage test), then blob_store = rados on the pool (the OSD stopped
#      and restarted);
#   2. the daemon over s3 and over rados (tests/integration/ceph_backends.py).
#
# Not part of `make test`: bringing a cluster up takes about a minute
# alone, several when the machine is busy. When the machine cannot run a
# cluster (no Ceph packages, not root) it says so loudly and exits 1:
# nothing here passes without having run. KEEP=1 leaves the cluster's
# directory (logs) behind.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
CLUSTER=$ROOT/tests/ceph/cluster.sh

if ! "$CLUSTER" check; then
	echo "########################################################################" >&2
	echo "test-backends: NOT RUN: this machine cannot run a Ceph test cluster" >&2
	echo "(packaging/install-deps.sh --ceph installs what it needs)" >&2
	echo "########################################################################" >&2
	exit 1
fi

T=$(mktemp -d /tmp/sdceph.XXXXXX)
cleanup() {
	"$CLUSTER" stop "$T/cluster" >/dev/null 2>&1
	if [ "${KEEP:-}" = 1 ]; then echo "test-backends: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
"$CLUSTER" start "$T/cluster" || { echo "test-backends: FAILED: the cluster did not start" >&2; exit 1; }
# shellcheck disable=SC1091
. "$T/cluster/env"

fail=0
mkdir -p "$T/contract"
cat >"$T/contract/s3.conf" <<CONF
[storaged]
data_dir = $T/contract/data
module_dir = $ROOT/frontends
blob_store = s3
s3_endpoint = $S3_ENDPOINT
s3_bucket = $S3_BUCKET
s3_region = $S3_REGION
s3_access_key = $S3_ACCESS_KEY
s3_secret_key = $S3_SECRET_KEY
s3_prefix = contract/
s3_part_size = 5M
s3_retries = 1
s3_timeout = 2s
CONF
echo "== store contract: s3 (radosgw)"
SD_CONTRACT_CONF=$T/contract/s3.conf \
SD_CONTRACT_BREAK="$CLUSTER kill-rgw $T/cluster" \
SD_CONTRACT_MEND="$CLUSTER start-rgw $T/cluster" \
	tests/unit/run.sh build/tests/test_backends || fail=1

cat >"$T/contract/rados.conf" <<CONF
[storaged]
data_dir = $T/contract/data
module_dir = $ROOT/frontends
blob_store = rados
rados_pool = $RADOS_POOL
rados_user = $RADOS_USER
rados_conf = $CEPH_CONF
rados_keyring = $RADOS_USER_KEYRING
rados_namespace = contract
rados_stripe_size = 4M
rados_inline_max = 1M
rados_timeout = 3s
CONF
echo "== store contract: rados (pool $RADOS_POOL)"
SD_CONTRACT_CONF=$T/contract/rados.conf \
SD_CONTRACT_BREAK="$CLUSTER kill-osd $T/cluster" \
SD_CONTRACT_MEND="$CLUSTER start-osd $T/cluster" \
	tests/unit/run.sh build/tests/test_backends || fail=1

echo "== daemon over s3 (radosgw) and rados"
SD_CEPH_ENV=$T/cluster/env PYTHONDONTWRITEBYTECODE=1 \
	/usr/bin/python3 -m pytest tests/integration/ceph_backends.py -v || fail=1

echo "test-backends: $([ $fail = 0 ] && echo passed || echo FAILED) in $((SECONDS - start))s"
exit $fail
