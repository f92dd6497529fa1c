#!/bin/sh
# packaging/build-rpm.sh - build the binary .rpm into ./dist/ (`make rpm`).
#
# Makes storaged-VERSION.tar.gz from the working tree (without build
# outputs, .git and local data) and runs `rpmbuild -bb` on
# packaging/rpm/storaged.spec in a temp _topdir. On Debian the Fedora build
# dependencies are not resolvable, hence --nodeps; the Debian -dev packages
# provide the same libraries. The build log is kept in dist/build-rpm.log.
#
# Usage: packaging/build-rpm.sh [VERSION]   (checked against the spec)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/packaging/pkgcommon.sh"
SPEC=$ROOT/packaging/rpm/storaged.spec

specver=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
want=${1:-}
if [ -n "$want" ] && [ "$specver" != "$want" ]; then
	echo "build-rpm: $SPEC says Version $specver, Makefile says $want" >&2
	exit 1
fi

TMP=$(mktemp -d /tmp/storaged-rpm.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p "$TMP/SOURCES" "$TMP/src/storaged-$specver" "$ROOT/dist"
sd_copy_tree "$ROOT" "$TMP/src/storaged-$specver"
tar -C "$TMP/src" -czf "$TMP/SOURCES/storaged-$specver.tar.gz" "storaged-$specver"
cp "$ROOT/packaging/storaged.sysusers" "$TMP/SOURCES/"

LOG=$ROOT/dist/build-rpm.log
echo "build-rpm: rpmbuild -bb $SPEC (log: dist/build-rpm.log)"
# _sharedstatedir: Debian's rpm says /usr/com; Fedora's is /var/lib.
if ! rpmbuild -bb --nodeps \
	--define "_topdir $TMP" \
	--define "_sharedstatedir /var/lib" \
	"$SPEC" > "$LOG" 2>&1; then
	tail -n 60 "$LOG" >&2
	echo "build-rpm: rpmbuild failed (full log: dist/build-rpm.log)" >&2
	exit 1
fi

rm -f "$ROOT"/dist/storaged-*.rpm "$ROOT"/dist/libstoraged-*.rpm
for f in "$TMP"/RPMS/*/storaged-*.rpm "$TMP"/RPMS/*/libstoraged-*.rpm; do
	cp "$f" "$ROOT/dist/"
	echo "build-rpm: dist/$(basename "$f")"
done
