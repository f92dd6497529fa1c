#!/bin/sh
# Installs the Debian 12 packages storaged needs to build and test, if any
# are missing. Idempotent and silent when everything is already present.
#
#   packaging/install-deps.sh            build + test dependencies
#   packaging/install-deps.sh --package  also what `make deb` / `make rpm` need
#   packaging/install-deps.sh --bench    also the peer servers for bench/
#   packaging/install-deps.sh --ceph     also a Ceph cluster for make test-backends
set -eu

BUILD="build-essential pkg-config libsqlite3-dev libsodium-dev libssl-dev \
libinih-dev libjansson-dev check libmicrohttpd-dev libssh-dev libgnutls28-dev \
libcurl4-openssl-dev librados-dev libxml2-dev zlib1g-dev libfuse3-dev"
TEST="sqlite3 openssl curl lftp openssh-client python3 python3-paramiko python3-pytest \
python3-pytest-timeout python3-tuspy fail2ban rclone valgrind procps psmisc sshfs rsync litmus \
cadaver davfs2 unzip fuse3 git attr clang"
PACKAGE="debhelper devscripts lintian rpm dpkg-dev fakeroot"
CEPH="ceph-mon ceph-mgr ceph-osd radosgw ceph-common"
BENCH="vsftpd openssh-server nginx libnginx-mod-http-dav-ext apache2 hyperfine linux-perf fio"

want="$BUILD $TEST"
for arg in "$@"; do
	case "$arg" in
	--package) want="$want $PACKAGE" ;;
	--bench) want="$want $BENCH" ;;
	--ceph) want="$want $CEPH" ;;
	*) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Peer servers (vsftpd, sshd, nginx) must not start on system ports when
# installed: benchmarks start their own instances on loopback.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
fi
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ "$made_policy" = 1 ] && rm -f "$policy"
exit 0
