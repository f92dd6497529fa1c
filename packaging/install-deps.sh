#!/bin/sh
# Installs the Debian 12 packages storaged needs to build and test, if any
# are missing. Idempotent and silent when everything is already present.
#
#   packaging/install-deps.sh            build + test dependencies
#   packaging/install-deps.sh --package  also what `make deb` / `make rpm` need
#   packaging/install-deps.sh --bench    also the peer servers for bench/
#   packaging/install-deps.sh --ceph     also a Ceph cluster for make test-backends
#   packaging/install-deps.sh --browser  also Debian's chromium and node, and the
#                                        npm packages of tests/browser (puppeteer-core,
#                                        pinned by its package-lock.json; it never
#                                        downloads a browser: the tests use Debian's)
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
BROWSER="chromium"

want="$BUILD $TEST"
browser=0
for arg in "$@"; do
	case "$arg" in
	--package) want="$want $PACKAGE" ;;
	--bench) want="$want $BENCH" ;;
	--ceph) want="$want $CEPH" ;;
	--browser)
		want="$want $BROWSER"
		browser=1
		# node and npm: Debian's, unless a node with npm is there already
		command -v npm >/dev/null 2>&1 || want="$want nodejs npm"
		;;
	*) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
# tests/browser's npm packages, exactly as its lock file pins them
npm_deps() {
	[ "$browser" = 1 ] || return 0
	dir=$(cd "$(dirname "$0")/../tests/browser" && pwd)
	if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
	   [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
		echo "install-deps.sh: npm ci in tests/browser" >&2
		(cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
	fi
}
if [ -z "$missing" ]; then
	npm_deps
	exit 0
fi

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
npm_deps
exit 0
