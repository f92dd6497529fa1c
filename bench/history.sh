#!/bin/bash
# bench/history.sh - history figures (issue 20): listing a past view of a
# large tree against the live listing, rollback of a folder of FOLDER
# files, and a folder of FOLDER files through the trash against copying it.
#
#   bench/history.sh [NFILES] [FOLDER] [full|normal]
#
# Defaults: NFILES=100000 (one folder, and a whole tree of NFILES + 2 x
# FOLDER files), FOLDER=10000, durability full (the default of storaged).
# Run from a built checkout (make all); builds bench/history.c against
# build/libsdcore.a, runs it on a fresh data directory under /tmp, prints
# its key=value lines and a summary (KEEP=1 keeps the data directory).
# Targets (issue 20): listing at T <= 2x the live listing; rollback of
# 10,000 files < 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
NFILES=${1:-100000}
FOLDER=${2:-10000}
DUR=${3:-full}
make -s all
PKGS="sqlite3 libsodium libcrypto inih"
mkdir -p build/bench
cc -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -I. -Icore -Iutil \
	-o build/bench/history bench/history.c build/libsdcore.a \
	$(pkg-config --libs $PKGS) -ldl -lpthread -lm
dir=$(mktemp -d /tmp/sdbench.history.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$dir"' EXIT
cat > "$dir/storaged.conf" <<CONF
[storaged]
data_dir = $dir/data
durability = $DUR
log_level = warn
CONF
echo "history bench: NFILES=$NFILES FOLDER=$FOLDER durability=$DUR ($(nproc) CPUs, $(uname -r))"
out=$(build/bench/history "$dir/storaged.conf" "$NFILES" "$FOLDER")
echo "$out"
get() { echo "$out" | sed -n "s/^$1=//p"; }
echo
printf '%-46s %10s %10s %8s   %s\n' "" "live" "past (T)" "ratio" "(CPU time: live, past, ratio)"
printf '%-46s %9ss %9ss %7sx   (%ss %ss %sx)\n' "list one folder of $NFILES entries" \
	"$(get list_live_s)" "$(get list_at_s)" "$(get list_ratio)" "$(get list_live_cpu_s)" \
	"$(get list_at_cpu_s)" "$(get list_cpu_ratio)"
printf '%-46s %9ss %9ss %7sx   (%ss %ss %sx)\n' "walk the whole tree ($(get walk_files_at) files at T)" \
	"$(get walk_live_s)" "$(get walk_at_s)" "$(get walk_ratio)" "$(get walk_live_cpu_s)" \
	"$(get walk_at_cpu_s)" "$(get walk_cpu_ratio)"
printf '%-46s %9ss\n' "rollback of $FOLDER files ($(get rollback_restored) restored)" \
	"$(get rollback_s)"
printf '%-46s %9ss\n' "rollback of that rollback" "$(get rollback_undo_s)"
printf '%-46s %9ss  (copy by reference, one file at a time: %ss)\n' \
	"trash restore of $(get trash_files) files" "$(get trash_restore_s)" "$(get copy_s)"
db=$(du -k "$dir/data/storaged.db" | cut -f1)
echo "database: ${db} KiB for $(get files) files and their history"
