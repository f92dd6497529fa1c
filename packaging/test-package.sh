#!/bin/bash
# packaging/test-package.sh - `make package-test`: the packages, end to end.
#
#   1. build the .deb (packaging/build-deb.sh: dpkg-buildpackage + lintian)
#      and check its file list;
#   2. `apt-get install ./dist/storaged_*.deb` on this machine; check the
#      system user, the data directory and the installed configuration;
#   3. start the installed /usr/sbin/storaged as the `storaged` user with a
#      config derived from /etc/storaged/storaged.conf (listen ports moved to
#      free loopback ports; data_dir stays /var/lib/storaged), create a user
#      with the installed storagectl (as `storaged`), upload and download one
#      file over each enabled front end whose module is installed;
#   4. upgrade to a newer version (the same .deb repacked as VERSION+pkgtest1):
#      every data file kept, the daemon starts again and serves the file;
#   5. `apt-get remove`: data and config kept; `apt-get purge`: both gone;
#   6. build the .rpm and check its file list, config and scriptlets.
#
# A front end whose module is not installed is skipped with a printed line
# and is not counted as passed. Prints "package: N passed, M failed" and
# exits non-zero on any failure. Needs root (apt-get). Leaves the machine as
# it found it: the package is purged and the `storaged` system user removed
# (if this script's install created it) at exit, even on failure.
#
# Usage: packaging/test-package.sh [VERSION]
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
VERSION=${1:-$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*//p' Makefile)}
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
DEB=dist/storaged_${VERSION}_${ARCH}.deb
MODDIR=/usr/lib/$MULTIARCH/storaged
STATE=/var/lib/storaged
MARKER=$STATE/.storaged-package-test
PY=/usr/bin/python3

PASS=0
FAIL=0
DAEMON_PID=
RUNNER_PID=
MADE_POLICY=0
USER_EXISTED=0
CLEAN_STATE=0
TMP=

ok() { PASS=$((PASS + 1)); echo "ok   - package: $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - package: $1"; }
skip() { echo "skip - package: $1 (not counted)"; }

# check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
check() {
	local desc=$1
	shift
	if "$@" > "$TMP/out" 2>&1; then
		ok "$desc"
	else
		bad "$desc"
		sed 's/^/       /' "$TMP/out" | tail -n 25
	fi
}
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected [$2] got [$3]"; fi
}

installed() {
	dpkg-query -W -f='${Status}' storaged 2>/dev/null | grep -q 'ok installed'
}
# dpkg knows the package at all (installed, or removed with config kept).
known() {
	local st
	st=$(dpkg-query -W -f='${Status}' storaged 2>/dev/null) || return 1
	case "$st" in *not-installed*|"") return 1 ;; esac
	return 0
}

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_daemon() {
	local rc=0
	[ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null
	if [ -n "$RUNNER_PID" ]; then
		wait "$RUNNER_PID" || rc=$?
	fi
	DAEMON_PID=
	RUNNER_PID=
	return $rc
}

cleanup() {
	if [ -n "$DAEMON_PID" ]; then kill -KILL "$DAEMON_PID" 2>/dev/null; fi
	if [ -n "$RUNNER_PID" ]; then wait "$RUNNER_PID" 2>/dev/null; fi
	if known; then
		echo "package: cleanup: purging storaged"
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq storaged >/dev/null 2>&1 ||
			dpkg --purge storaged >/dev/null 2>&1
	fi
	# Neither existed before the test (checked at the start): whatever a
	# faulty purge left behind is this run's.
	if [ "$CLEAN_STATE" = 1 ]; then rm -rf "$STATE" /etc/storaged; fi
	if [ "$USER_EXISTED" = 0 ] && getent passwd storaged >/dev/null; then
		deluser --quiet --system storaged >/dev/null 2>&1 || userdel storaged 2>/dev/null
	fi
	if [ "$USER_EXISTED" = 0 ] && getent group storaged >/dev/null; then
		delgroup --quiet --system storaged >/dev/null 2>&1 || groupdel storaged 2>/dev/null
	fi
	if [ "$MADE_POLICY" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
	if [ -n "$TMP" ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$TMP"; fi
}

finish() {
	echo "package: $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
	exit
}

# ------------------------------------------------------------ preconditions
TMP=$(mktemp -d /tmp/storaged-pkgtest.XXXXXX)
chmod 0755 "$TMP"
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then
	bad "must run as root (installs the .deb with apt-get)"
	finish
fi
# A storaged left behind by an interrupted run of this script is purged; a
# real installation (or real data) is never touched.
if known || [ -e "$STATE" ] || [ -e /etc/storaged ]; then
	if [ -e "$MARKER" ] || { ! [ -e "$STATE" ] && ! installed; }; then
		echo "package: removing leftovers of an interrupted run"
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq storaged >/dev/null 2>&1 || true
		rm -rf "$STATE" /etc/storaged
	else
		bad "storaged is already installed here or $STATE exists: refusing to touch it"
		trap - EXIT
		rm -rf "$TMP"
		finish
	fi
fi
getent passwd storaged >/dev/null && USER_EXISTED=1
CLEAN_STATE=1

# Modules the tree builds (frontends/*/module.mk: "MODULES += name").
EXPECTED_MODULES=$(sed -n 's/^MODULES[[:space:]]*+=[[:space:]]*//p' frontends/*/module.mk 2>/dev/null | tr ' ' '\n' | sed '/^$/d' | sort -u)

# ------------------------------------------------------------ 1. the .deb
echo "package: building the .deb"
if packaging/build-deb.sh "$VERSION" > "$TMP/build-deb.out" 2>&1; then
	ok "make deb: dpkg-buildpackage and lintian without errors"
	grep -E '^(W|E|I): ' "$TMP/build-deb.out" | sed 's/^/       lintian: /'
else
	bad "make deb: dpkg-buildpackage and lintian without errors"
	tail -n 40 "$TMP/build-deb.out" | sed 's/^/       /'
fi

if [ -f "$DEB" ]; then
	dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' > "$TMP/deb.files"
	missing=""
	for f in /usr/sbin/storaged /usr/bin/storagectl /etc/storaged/storaged.conf \
		/lib/systemd/system/storaged.service /usr/lib/sysusers.d/storaged.conf \
		/usr/share/man/man8/storaged.8.gz /usr/share/man/man8/storagectl.8.gz \
		/usr/share/man/man5/storaged.conf.5.gz "$MODDIR/" \
		/usr/share/storaged/web/index.html /usr/share/storaged/web/app.js; do
		grep -qxF "$f" "$TMP/deb.files" || missing="$missing $f"
	done
	for m in $EXPECTED_MODULES; do
		grep -qxF "$MODDIR/$m.so" "$TMP/deb.files" || missing="$missing $MODDIR/$m.so"
	done
	check_eq ".deb holds daemon, storagectl, modules ($(echo $EXPECTED_MODULES)), config, unit, man pages, web client" "" "${missing# }"
	# The client packages built beside it.
	cmissing=""
	for pf in "libstoraged0:/usr/lib/$MULTIARCH/libstoraged.so.0 /usr/lib/$MULTIARCH/libstoraged.so.0.1.0" \
		"libstoraged-dev:/usr/include/storaged-client.h /usr/lib/$MULTIARCH/libstoraged.so /usr/lib/$MULTIARCH/pkgconfig/libstoraged.pc" \
		"storaged-client:/usr/bin/stor /usr/share/man/man1/stor.1.gz" \
		"storaged-fuse:/usr/bin/storfs /usr/share/man/man1/storfs.1.gz"; do
		pkg=${pf%%:*}
		cdeb=dist/${pkg}_${VERSION}_${ARCH}.deb
		if [ ! -f "$cdeb" ]; then cmissing="$cmissing $cdeb"; continue; fi
		dpkg-deb -c "$cdeb" | awk '{print $6}' | sed 's|^\./|/|' > "$TMP/c.files"
		for f in ${pf#*:}; do grep -qxF "$f" "$TMP/c.files" || cmissing="$cmissing $pkg:$f"; done
	done
	check_eq "client .debs: libstoraged0 (soname), libstoraged-dev (header, .so, .pc), storaged-client (stor, man page), storaged-fuse (storfs, man page)" "" "${cmissing# }"
	fdeps=$(dpkg-deb -f "dist/storaged-fuse_${VERSION}_${ARCH}.deb" Depends 2>/dev/null)
	check "storaged-fuse Depends on libfuse3 and fuse3: $fdeps" \
		sh -c 'case "$1" in *libfuse3*) ;; *) exit 1;; esac; case "$1" in *"fuse3 "*|*"fuse3,"*|*fuse3) ;; *) exit 1;; esac' _ "$fdeps"
	check "the server .deb does not pull in FUSE" \
		sh -c 'case "$1" in *fuse*) exit 1;; esac' _ "$(dpkg-deb -f "$DEB" Depends)"
	check_eq "libstoraged0's library has the soname libstoraged.so.0" "libstoraged.so.0" \
		"$(dpkg-deb --fsys-tarfile dist/libstoraged0_${VERSION}_${ARCH}.deb 2>/dev/null | tar -xOf - ./usr/lib/$MULTIARCH/libstoraged.so.0.1.0 2>/dev/null > "$TMP/lib.so"; objdump -p "$TMP/lib.so" 2>/dev/null | awk '/SONAME/{print $2}')"
	check_eq ".deb marks /etc/storaged/storaged.conf as a conffile" "/etc/storaged/storaged.conf" \
		"$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles 2>/dev/null)"
	deps=$(dpkg-deb -f "$DEB" Depends)
	check ".deb Depends from shlibs (libc6, libsqlite3, libsodium) and adduser: $deps" \
		sh -c 'case "$1" in *libc6*) ;; *) exit 1;; esac; case "$1" in *libsqlite3*) ;; *) exit 1;; esac;
		       case "$1" in *libsodium*) ;; *) exit 1;; esac; case "$1" in *adduser*) ;; *) exit 1;; esac' _ "$deps"
else
	bad "no $DEB: skipping the install tests"
fi

# ------------------------------------------------------------ 2. install
if [ -f "$DEB" ]; then
	# No daemon may start on the real ports during the test, even where
	# systemd runs: invoke-rc.d / deb-systemd-invoke obey policy-rc.d.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
		MADE_POLICY=1
	fi
	check "apt-get install ./$DEB" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$DEB"
fi

if installed; then
	[ -d "$STATE" ] && : > "$MARKER" && chown storaged:storaged "$MARKER"
	check "system user storaged exists with a nologin shell" \
		sh -c 'getent passwd storaged | grep -q ":/var/lib/storaged:/usr/sbin/nologin$"'
	check_eq "$STATE owned by storaged, mode 750" "storaged:storaged 750" \
		"$(stat -c '%U:%G %a' "$STATE" 2>&1)"
	check "installed config: data_dir = $STATE, module_dir = $MODDIR, log to stderr" \
		sh -c "grep -qx 'data_dir = $STATE' /etc/storaged/storaged.conf &&
		       grep -qx 'module_dir = $MODDIR' /etc/storaged/storaged.conf &&
		       grep -Eqx 'log_file =[[:space:]]*' /etc/storaged/storaged.conf"
	check "installed unit: User=storaged, StateDirectory, CAP_NET_BIND_SERVICE only" \
		sh -c 'u=/lib/systemd/system/storaged.service; grep -qx "User=storaged" $u &&
		       grep -qx "StateDirectory=storaged" $u &&
		       grep -qx "AmbientCapabilities=CAP_NET_BIND_SERVICE" $u &&
		       grep -qx "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" $u &&
		       grep -qx "ExecStart=/usr/sbin/storaged -c /etc/storaged/storaged.conf" $u'
	if command -v systemd-analyze >/dev/null; then
		check "systemd-analyze verify storaged.service" \
			systemd-analyze verify --man=no /lib/systemd/system/storaged.service
	else
		skip "systemd-analyze verify: systemd-analyze not installed"
	fi
	check "the binary's built-in module_dir is $MODDIR" \
		sh -c "/usr/sbin/storaged --doc-config | grep -qF 'default: \`$MODDIR\`'"
	check "man pages readable: storaged(8), storagectl(8), storaged.conf(5)" \
		sh -c 'for p in man8/storaged.8 man8/storagectl.8 man5/storaged.conf.5; do
		         zcat /usr/share/man/$p.gz | grep -q "^\.TH" || exit 1; done'
fi

# ------------------------------------------------------------ 3. run it
# The test config: the installed one with each front end's listen moved to a
# free loopback port, and front ends whose module is missing disabled.
SECTIONS=""
make_conf() {
	local out=$1 section="" line key
	: > "$out"
	local ports=""
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
		\[*\]*)
			section=${line#\[}; section=${section%%]*}
			;;
		esac
		key=$(printf '%s' "$line" | sed -n 's/^[[:space:]]*\([a-z_]*\)[[:space:]]*=.*/\1/p')
		if [ -n "$section" ] && [ "$section" != storaged ] && [ "$key" = listen ]; then
			eval "line=\"listen = 127.0.0.1:\$PORT_$section\""
		fi
		if [ -n "$section" ] && [ "$section" != storaged ] && [ "$key" = enabled ]; then
			eval "line=\"enabled = \$EN_$section\""
		fi
		printf '%s\n' "$line" >> "$out"
	done < /etc/storaged/storaged.conf
	chmod 0644 "$out"
}

start_daemon() {
	: > "$TMP/storaged.log"
	chmod 0666 "$TMP/storaged.log"
	runuser -u storaged -- /usr/sbin/storaged -c "$TMP/storaged.conf" >> "$TMP/storaged.log" 2>&1 &
	RUNNER_PID=$!
	local i
	for i in $(seq 1 200); do
		[ -z "$DAEMON_PID" ] && DAEMON_PID=$(pgrep -P "$RUNNER_PID" -x storaged | head -n 1)
		if grep -q 'event=ready' "$TMP/storaged.log"; then
			[ -n "$DAEMON_PID" ] && return 0
		fi
		if ! kill -0 "$RUNNER_PID" 2>/dev/null; then
			wait "$RUNNER_PID"
			RUNNER_PID=
			DAEMON_PID=
			echo "storaged exited during start-up:"
			tail -n 30 "$TMP/storaged.log"
			return 1
		fi
		sleep 0.05
	done
	echo "storaged not ready after 10s:"
	tail -n 30 "$TMP/storaged.log"
	return 1
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

CTL_USER=pkguser
CTL_PASS='pkg-Secret-42'

# transfer FRONTEND DIRECTION(put|get) LOCAL REMOTE
transfer() {
	local fe=$1 dir=$2 file=$3 remote=$4 port
	eval "port=\$PORT_$fe"
	case "$fe:$dir" in
	http:put) curl -fsS --max-time 30 -u "$CTL_USER:$CTL_PASS" -T "$file" \
			"http://127.0.0.1:$port/api/v1/fs/$remote" ;;
	http:get) curl -fsS --max-time 30 -u "$CTL_USER:$CTL_PASS" -o "$file" \
			"http://127.0.0.1:$port/api/v1/fs/$remote" ;;
	ftp:put) curl -fsS --max-time 30 -u "$CTL_USER:$CTL_PASS" -T "$file" \
			"ftp://127.0.0.1:$port/$remote" ;;
	ftp:get) curl -fsS --max-time 30 -u "$CTL_USER:$CTL_PASS" -o "$file" \
			"ftp://127.0.0.1:$port/$remote" ;;
	sftp:*) "$PY" - "$port" "$CTL_USER" "$CTL_PASS" "$dir" "$file" "$remote" <<'PYEOF'
import sys, paramiko
port, user, pw, direction, local, remote = sys.argv[1:]
t = paramiko.Transport(("127.0.0.1", int(port)))
t.banner_timeout = t.auth_timeout = 20
t.connect(username=user, password=pw)  # host key: a fresh install's own, not pinned here
s = paramiko.SFTPClient.from_transport(t)
if direction == "put":
    s.put(local, "/" + remote)
else:
    s.get("/" + remote, local)
s.close(); t.close()
PYEOF
	;;
	*) echo "no client for $fe"; return 2 ;;
	esac
}

ENABLED_FES=""
if installed; then
	# Which sections are front ends, enabled, with their module installed.
	for section in $(sed -n 's/^\[\([a-z0-9_]*\)\].*/\1/p' /etc/storaged/storaged.conf); do
		[ "$section" = storaged ] && continue
		module=$(awk -v s="[$section]" '$0==s{f=1;next} /^\[/{f=0} f&&$1=="module"{print $3}' /etc/storaged/storaged.conf)
		enabled=$(awk -v s="[$section]" '$0==s{f=1;next} /^\[/{f=0} f&&$1=="enabled"{print $3}' /etc/storaged/storaged.conf)
		module=${module:-$section}
		eval "PORT_$section=$(free_port)"
		if [ "$enabled" != yes ]; then
			eval "EN_$section=no"
			skip "[$section] is disabled in the installed config"
		elif [ ! -f "$MODDIR/$module.so" ]; then
			eval "EN_$section=no"
			skip "[$section]: module $MODDIR/$module.so not installed (front end not built yet)"
		else
			eval "EN_$section=yes"
			ENABLED_FES="$ENABLED_FES $section"
		fi
		SECTIONS="$SECTIONS $section"
	done
	make_conf "$TMP/storaged.conf"
	if [ "$(echo $ENABLED_FES)" = "$(echo $SECTIONS)" ]; then
		check "the installed config passes --check-config (as storaged)" \
			runuser -u storaged -- /usr/sbin/storaged -c /etc/storaged/storaged.conf --check-config
	else
		skip "--check-config of the installed config: not every module is installed"
	fi
	echo "package: test config (from /etc/storaged/storaged.conf):"
	grep -E '^\[|^(enabled|listen|data_dir|module_dir) ' "$TMP/storaged.conf" | sed 's/^/       /'

	head -c 300000 /dev/urandom > "$TMP/payload.bin"
	chmod 0644 "$TMP/payload.bin"
	WANT=$(sha "$TMP/payload.bin")

	if start_daemon > "$TMP/start.out" 2>&1; then
		ok "installed storaged starts as user storaged with the installed config"
		check_eq "daemon runs as storaged" "storaged" "$(ps -o user= -p "$DAEMON_PID" | tr -d ' ')"
		check "storagectl (as storaged) creates user $CTL_USER" \
			sh -c "printf '%s\n' '$CTL_PASS' | runuser -u storaged -- /usr/bin/storagectl \
			       -c '$TMP/storaged.conf' user add $CTL_USER --password-stdin"
		for fe in $ENABLED_FES; do
			case "$fe" in http|ftp|sftp) ;; *) skip "[$fe]: no client for this front end"; continue ;; esac
			check "$fe: upload one file" transfer "$fe" put "$TMP/payload.bin" "pkgtest-$fe.bin"
			rm -f "$TMP/got-$fe.bin"
			transfer "$fe" get "$TMP/got-$fe.bin" "pkgtest-$fe.bin" > "$TMP/out" 2>&1
			if [ -f "$TMP/got-$fe.bin" ]; then
				check_eq "$fe: download returns the same bytes (sha256)" "$WANT" "$(sha "$TMP/got-$fe.bin")"
			else
				bad "$fe: download returns the same bytes"
				sed 's/^/       /' "$TMP/out" | tail -n 10
			fi
		done
		# the web client from the installed files (default web_root)
		case " $ENABLED_FES " in
		*" http "*)
			check "http: the web client is served at / from /usr/share/storaged/web" \
				sh -c "curl -fsS --max-time 30 http://127.0.0.1:$PORT_http/ | grep -q /web/app.js" ;;
		esac
		# One store behind every front end: a file uploaded over one is
		# served by the next.
		set -- $ENABLED_FES
		if [ $# -ge 2 ]; then
			rm -f "$TMP/cross.bin"
			transfer "$2" get "$TMP/cross.bin" "pkgtest-$1.bin" > "$TMP/out" 2>&1
			check_eq "file uploaded over $1 downloads over $2 (same store)" "$WANT" \
				"$(sha "$TMP/cross.bin" 2>/dev/null)"
		fi
		check_eq "every file under $STATE is owned by storaged" "" \
			"$(find "$STATE" ! -user storaged 2>&1 | head -n 5)"
		if stop_daemon; then ok "storaged exits 0 on SIGTERM"; else bad "storaged exits 0 on SIGTERM"; fi
	else
		bad "installed storaged starts as user storaged with the installed config"
		sed 's/^/       /' "$TMP/start.out"
	fi
	[ -z "$ENABLED_FES" ] && skip "no front-end module installed: no transfers tested"
fi

# ------------------------------------------------------------ 4. upgrade path
data_digest() {
	(cd "$STATE" 2>/dev/null && find . -type f ! -name '*-shm' ! -name '*-wal' -print0 |
		sort -z | xargs -0 -r sha256sum) | sha256sum | cut -d' ' -f1
}
data_count() { find "$STATE" -type f 2>/dev/null | wc -l; }

if installed; then
	BEFORE=$(data_digest)
	NFILES=$(data_count)
	check "$STATE holds data after the transfers ($NFILES files)" test "$NFILES" -gt 1
	# A newer version: the same .deb repacked with a higher version, so
	# dpkg runs the real upgrade path (prerm upgrade, postinst configure
	# OLDVERSION) without a second build.
	NEWV="${VERSION}+pkgtest1"
	rm -rf "$TMP/repack"
	dpkg-deb -R "$DEB" "$TMP/repack" &&
		sed -i "s/^Version: .*/Version: $NEWV/" "$TMP/repack/DEBIAN/control" &&
		dpkg-deb -b "$TMP/repack" "$TMP/storaged_new.deb" > /dev/null
	check "upgrade to $NEWV with apt-get install" \
		env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$TMP/storaged_new.deb"
	check_eq "installed version after the upgrade" "$NEWV" \
		"$(dpkg-query -W -f='${Version}' storaged 2>/dev/null)"
	check "upgrade kept the conffile" test -f /etc/storaged/storaged.conf
	check_eq "upgrade keeps every data file" "$BEFORE" "$(data_digest)"
	first=$(echo $ENABLED_FES | cut -d' ' -f1)
	if [ -n "$first" ] && start_daemon > "$TMP/start.out" 2>&1; then
		rm -f "$TMP/again.bin"
		transfer "$first" get "$TMP/again.bin" "pkgtest-$first.bin" > "$TMP/out" 2>&1
		check_eq "after the upgrade, $first still serves the file" "$WANT" \
			"$(sha "$TMP/again.bin" 2>/dev/null)"
		if stop_daemon; then ok "storaged exits 0 on SIGTERM after the upgrade"; else bad "storaged exits 0 on SIGTERM after the upgrade"; fi
		BEFORE=$(data_digest)
	elif [ -n "$first" ]; then
		bad "storaged starts after the upgrade"
		sed 's/^/       /' "$TMP/start.out"
	fi

# ------------------------------------------------------------ 5. remove, purge
	check "apt-get remove storaged" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq storaged
	check "binary gone after remove" test ! -e /usr/sbin/storaged
	check_eq "remove keeps every data file in $STATE" "$BEFORE" "$(data_digest)"
	check "remove keeps /etc/storaged/storaged.conf" test -f /etc/storaged/storaged.conf
	check "apt-get purge storaged" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq storaged
	check "purge removes $STATE" test ! -e "$STATE"
	check "purge removes /etc/storaged" test ! -e /etc/storaged
	check "purge leaves no systemd enablement link" \
		test ! -e /etc/systemd/system/multi-user.target.wants/storaged.service
	check "dpkg no longer knows storaged" sh -c '! dpkg-query -W -f="\${Status}" storaged 2>/dev/null | grep -q installed'
fi

# ------------------------------------------------------------ 6. the .rpm
echo "package: building the .rpm"
RPM=dist/storaged-${VERSION}-1.$(uname -m).rpm
if packaging/build-rpm.sh "$VERSION" > "$TMP/build-rpm.out" 2>&1 && [ -f "$RPM" ]; then
	ok "make rpm: rpmbuild -bb"
	rpm -qlp "$RPM" > "$TMP/rpm.files" 2>/dev/null
	missing=""
	for f in /usr/sbin/storaged /usr/bin/storagectl /usr/lib64/storaged /etc/storaged/storaged.conf \
		/usr/lib/systemd/system/storaged.service /usr/lib/sysusers.d/storaged.conf /var/lib/storaged \
		/usr/share/storaged/web/index.html; do
		grep -qxF "$f" "$TMP/rpm.files" || missing="$missing $f"
	done
	for p in /usr/share/man/man8/storaged.8 /usr/share/man/man8/storagectl.8 /usr/share/man/man5/storaged.conf.5; do
		grep -q "^$p" "$TMP/rpm.files" || missing="$missing $p"
	done
	for m in $EXPECTED_MODULES; do
		grep -qxF "/usr/lib64/storaged/$m.so" "$TMP/rpm.files" || missing="$missing /usr/lib64/storaged/$m.so"
	done
	check_eq "rpm -qlp: daemon, storagectl, modules, config, unit, sysusers.d, man pages, state dir" "" "${missing# }"
	check_eq "rpm -qpc: storaged.conf is %config" "/etc/storaged/storaged.conf" "$(rpm -qpc "$RPM" 2>/dev/null)"
	check "rpm scriptlets: user creation and systemd preset/disable/try-restart" \
		sh -c "s=\$(rpm -qp --scripts '$RPM' 2>/dev/null); echo \"\$s\" | grep -q 'storaged' &&
		       echo \"\$s\" | grep -q 'preset' && echo \"\$s\" | grep -q 'disable' &&
		       echo \"\$s\" | grep -q 'try-restart'"
	check "rpm state dir /var/lib/storaged is storaged:storaged 0750" \
		sh -c "rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' '$RPM' |
		       grep -qx 'drwxr-x--- storaged:storaged /var/lib/storaged'"
	mkdir -p "$TMP/rpmx"
	if rpm2archive - < "$RPM" 2>/dev/null | tar -xzf - -C "$TMP/rpmx" ./etc/storaged/storaged.conf 2>/dev/null; then
		check "rpm config says module_dir = /usr/lib64/storaged, data_dir = $STATE" \
			sh -c "grep -qx 'module_dir = /usr/lib64/storaged' '$TMP/rpmx/etc/storaged/storaged.conf' &&
			       grep -qx 'data_dir = $STATE' '$TMP/rpmx/etc/storaged/storaged.conf'"
	else
		bad "rpm2archive: cannot extract the rpm's storaged.conf"
	fi
else
	bad "make rpm: rpmbuild -bb"
	tail -n 40 "$TMP/build-rpm.out" | sed 's/^/       /'
fi

finish
