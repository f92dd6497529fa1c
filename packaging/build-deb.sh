#!/bin/sh
# packaging/build-deb.sh - build the binary .deb into ./dist/ (`make deb`).
#
# Copies the working tree (without build outputs, .git and local data) to a
# temp directory, installs packaging/debian as debian/, runs
# `dpkg-buildpackage -b -us -uc` there and copies the .deb to dist/. Then
# runs lintian on it and fails if lintian reports any error. The build log is
# kept in dist/build-deb.log.
#
# Usage: packaging/build-deb.sh [VERSION]   (VERSION: the Makefile's, checked
# against debian/changelog)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/packaging/pkgcommon.sh"

want=${1:-}
chver=$(dpkg-parsechangelog -l "$ROOT/packaging/debian/changelog" -S Version)
if [ -n "$want" ] && [ "$chver" != "$want" ]; then
	echo "build-deb: packaging/debian/changelog says $chver, Makefile says $want:" \
		"add a changelog entry (dch -v $want)" >&2
	exit 1
fi

TMP=$(mktemp -d /tmp/storaged-deb.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
SRC=$TMP/storaged-$chver
mkdir -p "$SRC" "$ROOT/dist"
sd_copy_tree "$ROOT" "$SRC"
rm -rf "$SRC/debian"
cp -a "$ROOT/packaging/debian" "$SRC/debian"

LOG=$ROOT/dist/build-deb.log
echo "build-deb: dpkg-buildpackage -b -us -uc in $SRC (log: dist/build-deb.log)"
if ! (cd "$SRC" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -b -us -uc) > "$LOG" 2>&1; then
	tail -n 60 "$LOG" >&2
	echo "build-deb: dpkg-buildpackage failed (full log: dist/build-deb.log)" >&2
	exit 1
fi

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
# storaged (the server), libstoraged0, libstoraged-dev, storaged-client,
# storaged-fuse (storfs)
rm -f "$ROOT"/dist/storaged_*.deb "$ROOT"/dist/libstoraged*.deb "$ROOT"/dist/storaged-client_*.deb \
	"$ROOT"/dist/storaged-fuse_*.deb
debs=""
for pkg in storaged libstoraged0 libstoraged-dev storaged-client storaged-fuse; do
	deb=${pkg}_${chver}_${arch}.deb
	cp "$TMP/$deb" "$ROOT/dist/$deb"
	echo "build-deb: dist/$deb"
	dpkg-deb -c "$ROOT/dist/$deb" | awk '{print "  " $6 ($7 ? " " $7 " " $8 : "")}'
	debs="$debs $ROOT/dist/$deb"
done

# lintian: errors fail the build; warnings are shown.
echo "build-deb: lintian$debs"
# shellcheck disable=SC2086
if ! lintian --fail-on error $debs; then
	echo "build-deb: lintian reported errors" >&2
	exit 1
fi
echo "build-deb: lintian: no errors"
