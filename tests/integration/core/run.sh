#!/bin/bash
# tests/integration/core/run.sh - storagectl against the real engine.
#
# 1. storagectl alone (no daemon): users, import of a generated tree, get
#    of every file back (cmp), ls, stats (dedup visible), fsck, put/get,
#    rm, a second user importing the same tree adds no blobs, quota, bad
#    input, tokens, journal.
# 2. kill -9 of an import in progress (no daemon), then fsck clean and
#    every file reported "imported" byte-identical; files not reported are
#    either absent or identical (never torn).
# 3. the same with the daemon running (no front-end sections), plus
#    put/get/ls/stats/fsck while it runs, and a clean SIGTERM exit.
#
# Recovery decision after kill -9: nothing is run between the kill and the
# first `fsck`. Committed files are durable (commit returned before the
# line was printed). The killed import leaves temp files under tmp/ (not
# counted by fsck; `gc --now` or the daemon's start-up recovery removes
# them) and, when the kill lands between a blob's rename into the store and
# its row commit, an orphan blob file: complete and correctly named, but
# without a row. fsck reports that as an orphan; the daemon's start-up
# recovery or `fsck --repair` adopts it. So the test requires: first fsck
# finds no damage (bad hash, missing, bad refs, bad usage all 0) and at
# most one orphan per import worker; `fsck --repair` exits 0; then fsck is
# clean (exit 0), also after `gc --now`.
. "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
sd_setup
W=$SD_TMP/work
mkdir -p "$W"

# ------------------------------------------------------------ helpers

# imported_paths FILE: the PATH of every "imported PATH SIZE SHA [dedup]".
imported_paths() {
	sed -n -E 's/^imported (.*) [0-9]+ [0-9a-f]{64}( dedup)?$/\1/p' "$1"
}

# verify_list USER REMOTEROOT LOCALROOT LISTFILE: `get` every remote path in
# LISTFILE (one per line, under REMOTEROOT) and cmp with the local source.
# Prints the number of mismatches/failures.
verify_list() {
	local user=$1 rroot=$2 lroot=$3 list=$4 bad=0 p rel
	while IFS= read -r p; do
		rel=${p#"$rroot"/}
		rm -f "$W/got"
		if ! sd_ctl get "$user" "$p" "$W/got" 2>>"$W/verify.err" ||
			! cmp -s "$W/got" "$lroot/$rel"; then
			bad=$((bad + 1))
			echo "mismatch: $p" >>"$W/verify.err"
		fi
	done <"$list"
	echo "$bad"
}

# msg_check DESC GREP-ARGS...: grep the output of the previous t_check /
# t_fails (t_check itself truncates t_out, so search a copy).
msg_check() {
	local desc=$1
	shift
	cp "$SD_TMP/t_out" "$W/last_out"
	t_check "$desc" grep "$@" "$W/last_out"
}

# json_get FILE EXPR: evaluate a python expression on the parsed JSON (j).
json_get() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# kill_import_test LABEL USER REMOTEROOT SEED: import a tree with big files,
# kill -9 it mid-way, check fsck and the reported files.
kill_import_test() {
	local label=$1 user=$2 rroot=$3 seed=$4 src=$W/kill-$1
	"$PY" "$HERE/gentree.py" "$src" --seed "$seed" --files 250 --max-size 512000 \
		--big 16 --big-size $((20 << 20)) --no-special >/dev/null
	local out=$W/kill-$label.out
	# Not through the sd_ctl function: $! must be storagectl itself, not a
	# subshell around it.
	"$SD_ROOT/storagectl" -c "$SD_CONF" import "$user" "$src" "$rroot" \
		>"$out" 2>"$W/kill-$label.err" &
	local pid=$! i
	# Kill 0.7 s after the start (later if no file is reported yet): the
	# tree holds 16 x 20 MiB, so the import is still busy then.
	sleep 0.7
	for i in $(seq 1 200); do
		grep -q '^imported ' "$out" 2>/dev/null && break
		sleep 0.05
	done
	local finished=0
	kill -0 "$pid" 2>/dev/null || finished=1
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	t_fails "$label: storagectl is gone after kill -9" kill -0 "$pid"
	local n
	n=$(grep -c '^imported ' "$out")
	echo "     ($label: $n files reported before kill -9)"
	t_eq "$label: import was still running at kill -9" 0 "$finished"
	t_check "$label: some files were reported done" test "$n" -gt 0
	# fsck right after the kill: no damage at all. The only finding allowed
	# is an orphan blob file (complete, hash verified, no row yet) per
	# upload that was between its rename and its row commit: at most one
	# per import worker.
	sd_ctl fsck >"$W/fsck-$label.out" 2>&1
	local sum
	sum=$(sed -n -E 's/^fsck: [0-9]+ blobs checked, ([0-9]+) bad hash, ([0-9]+) missing, ([0-9]+) orphan files, ([0-9]+) bad refs, ([0-9]+) bad usage.*/\1 \2 \4 \5 \3/p' "$W/fsck-$label.out")
	t_eq "$label: fsck after kill -9: no bad hash, missing, bad refs, bad usage" "0 0 0 0" "${sum% *}"
	t_check "$label: fsck after kill -9: at most 4 orphan blobs (uncommitted uploads)" \
		test "${sum##* }" -le 4
	[ "${sum##* }" != 0 ] && echo "     ($label: ${sum##* } orphan blob(s) after kill -9; fsck --repair adopts them)"
	t_check "$label: fsck --repair settles everything" sd_ctl fsck --repair
	t_check "$label: fsck clean after repair" sd_ctl fsck
	imported_paths "$out" >"$W/kill-$label.list"
	t_eq "$label: every reported file is byte-identical" 0 \
		"$(verify_list "$user" "$rroot" "$src" "$W/kill-$label.list")"
	# Files not reported: absent, or complete (commit landed just before
	# the kill), never torn.
	local torn=0 rel f
	while IFS= read -r -d '' f; do
		rel=${f#"$src"/}
		grep -qxF "$rroot/$rel" "$W/kill-$label.list" && continue
		rm -f "$W/got"
		if sd_ctl get "$user" "$rroot/$rel" "$W/got" 2>/dev/null; then
			cmp -s "$W/got" "$f" || torn=$((torn + 1))
		fi
	done < <(find "$src" -type f -print0)
	t_eq "$label: unreported files absent or complete, never torn" 0 "$torn"
	t_check "$label: gc --now after kill -9" sd_ctl gc --now
	t_check "$label: fsck clean after gc" sd_ctl fsck
	# Re-running the import completes the tree; everything then matches.
	t_check "$label: re-import completes" sd_ctl import "$user" "$src" "$rroot"
	# (the reported files were verified above; fetch the others)
	(cd "$src" && find . -type f | sed "s|^\.|$rroot|") | grep -vxF -f "$W/kill-$label.list" \
		>"$W/kill-$label.rest"
	t_check "$label: re-import covered the rest of the tree" test -s "$W/kill-$label.rest"
	t_eq "$label: whole tree identical after re-import" 0 \
		"$(verify_list "$user" "$rroot" "$src" "$W/kill-$label.rest")"
	rm -rf "$src"
}

# ------------------------------------------------------------ 1. basics
sd_adduser alice secret1
t_check "user add bob --quota --admin" sh -c \
	"printf 'pw2\n' | '$SD_ROOT/storagectl' -c '$SD_CONF' user add bob --password-stdin --quota 10G --admin"
sd_ctl user list --json >"$W/users.json"
t_eq "user list shows alice and bob" "alice bob" \
	"$(json_get "$W/users.json" "' '.join(sorted(u['name'] for u in j))")"
t_eq "bob is admin with quota 10G" "True 10737418240" \
	"$(json_get "$W/users.json" "' '.join(str(x) for u in j if u['name']=='bob' for x in (u['admin'], u['quota']))")"

SRC=$W/tree
read -r gen <<<"$("$PY" "$HERE/gentree.py" "$SRC" --seed 1 --files 200)"
NFILES=$(echo "$gen" | sed -E 's/.*files=([0-9]+).*/\1/')
NDISTINCT=$(echo "$gen" | sed -E 's/.*distinct=([0-9]+).*/\1/')
NBYTES=$(echo "$gen" | sed -E 's/.*bytes=([0-9]+).*/\1/')
echo "     (tree: $gen)"

t_check "import tree as alice" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' import alice '$SRC' /tree >'$W/import1.out' 2>'$W/import1.err'"
t_eq "one imported line per regular file" "$NFILES" "$(grep -c '^imported ' "$W/import1.out")"
t_check "summary line printed" grep -qE "^import: $NFILES files, $NBYTES bytes, [0-9]+ dedup hits, 2 skipped, 0 errors" "$W/import1.out"
t_check "symlink and fifo skipped with a warning" sh -c "grep -q 'warning: skipping .*link-to-empty: symbolic link' '$W/import1.err' && grep -q 'a-fifo' '$W/import1.err'"
t_eq "dedup hits in import = files - distinct" "$((NFILES - NDISTINCT))" "$(grep -c '^imported .* dedup$' "$W/import1.out")"
imported_paths "$W/import1.out" >"$W/import1.list"
t_eq "every file fetched back byte-identical" 0 "$(verify_list alice /tree "$SRC" "$W/import1.list")"

sd_ctl ls alice /tree >"$W/ls.out" 2>&1
t_check "ls shows the unicode name" grep -qF 'données naïve ☃.txt' "$W/ls.out"
t_check "ls shows the name with spaces" grep -qE ' name with spaces\.bin$' "$W/ls.out"
t_check "ls shows dirs with trailing /" grep -qE '^d[rwx-]{9} .* d01/$' "$W/ls.out"
t_check "ls shows the empty file with size 0" grep -qE '^-[rwx-]{9} +0 .* empty\.dat$' "$W/ls.out"
t_check "ls does not show the skipped symlink" sh -c "! grep -q link-to-empty '$W/ls.out'"
# mode and mtime preserved
want_mode=$(stat -c '%a' "$SRC/name with spaces.bin")
want_mtime=$(stat -c '%Y' "$SRC/name with spaces.bin")
sd_ctl ls alice "/tree/name with spaces.bin" --json >"$W/ls1.json"
t_eq "import preserves mode bits" "$(printf '%04o' "0$want_mode")" "$(json_get "$W/ls1.json" "j[0]['mode']")"
t_eq "import preserves mtime" "$want_mtime" "$(json_get "$W/ls1.json" "j[0]['mtime']")"

sd_ctl stats --json >"$W/stats1.json"
t_eq "stats: files == imported" "$NFILES" "$(json_get "$W/stats1.json" "j['files']")"
t_eq "stats: logical bytes == tree bytes" "$NBYTES" "$(json_get "$W/stats1.json" "j['logical_bytes']")"
t_eq "stats: blobs == distinct contents" "$NDISTINCT" "$(json_get "$W/stats1.json" "j['blobs']")"
t_eq "stats: stored < logical (dedup visible)" True "$(json_get "$W/stats1.json" "j['stored_bytes'] < j['logical_bytes'] and j['dedup_ratio'] > 1")"
t_check "stats (text) works" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' stats | grep -q '^dedup ratio'"
t_check "fsck clean" sd_ctl fsck

# put / get / dedup / rm
head -c 700000 /dev/urandom >"$W/single.bin"
t_check "put single file" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' put alice '$W/single.bin' /docs/single.bin >'$W/put1.out'"
t_check "put reports the sha256" grep -qF "$(sha256sum <"$W/single.bin" | cut -d' ' -f1)" "$W/put1.out"
t_check "put of the same content reports dedup" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' put alice '$W/single.bin' /docs/again.bin | grep -q ' dedup$'"
t_check "get single file" sd_ctl get alice /docs/single.bin "$W/single.got"
t_check "got single file identical" cmp "$W/single.bin" "$W/single.got"
t_check "get to stdout identical" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' get alice /docs/again.bin - | cmp - '$W/single.bin'"
mkdir -p "$W/intodir"
t_check "get into an existing directory" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' get alice /docs/again.bin '$W/intodir' && cmp '$W/intodir/again.bin' '$W/single.bin'"
t_check "get left no temp files" sh -c "[ -z \"\$(ls -A '$W/intodir' | grep -v '^again.bin$')\" ]"
t_check "rm file" sd_ctl rm alice /docs/again.bin
t_check "ls no longer shows the removed file" sh -c "! '$SD_ROOT/storagectl' -c '$SD_CONF' ls alice /docs | grep -q again.bin"
t_check "ls still shows the other file" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' ls alice /docs | grep -q single.bin"
t_fails "get of the removed file fails" sd_ctl get alice /docs/again.bin "$W/x"
t_check "mkdir" sd_ctl mkdir alice /emptydir
t_check "mkdir -p nested" sd_ctl mkdir alice /a/b/c -p
t_check "ls shows the new dir" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' ls alice / | grep -qE '^d.* emptydir/$'"
t_fails "rm of a directory without -r fails" sd_ctl rm alice /a
t_check "rm -r of a directory" sd_ctl rm alice /a -r
t_fails "removed directory is gone" sd_ctl ls alice /a/b

# a second user importing the same tree adds no blobs
blobs_before=$(sd_ctl stats --json | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(j["blobs"], j["stored_bytes"])')
t_check "import same tree as bob" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' import bob '$SRC' >'$W/import2.out' 2>/dev/null"
t_eq "bob: every file was a dedup hit" "$NFILES" "$(grep -c '^imported .* dedup$' "$W/import2.out")"
blobs_after=$(sd_ctl stats --json | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(j["blobs"], j["stored_bytes"])')
t_eq "second user's import added no blobs or bytes" "$blobs_before" "$blobs_after"
t_check "bob's copy of the unicode file is identical" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' get bob '/données naïve ☃.txt' - | cmp - '$SRC/données naïve ☃.txt'"

# quota
sd_adduser carol pw3 --quota 100K
head -c 200000 /dev/urandom >"$W/200k.bin"
t_fails "put over quota fails" sd_ctl put carol "$W/200k.bin" /big.bin
msg_check "quota error names the quota" -qi quota
t_fails "nothing visible after the refused put" sd_ctl get carol /big.bin "$W/x"
t_check "user quota raise" sd_ctl user quota carol 1M
t_check "put under the raised quota" sd_ctl put carol "$W/200k.bin" /big.bin
sd_ctl user list --json >"$W/users2.json"
t_eq "user list shows carol's quota and usage" "1048576 200000" "$(json_get "$W/users2.json" "' '.join(str(x) for u in j if u['name']=='carol' for x in (u['quota'], u['used']))")"

# bad input
t_fails "get of a missing path fails" sd_ctl get alice /no/such/file "$W/x"
msg_check "  ... with a clear message" -qE '^storagectl: get: /no/such/file: .*([Nn]o such|not found)'
t_check "  ... and no local file" test ! -e "$W/x"
t_fails "get as an unknown user fails" sd_ctl get nobody /x "$W/x"
msg_check "  ... saying so" -q 'no such user'
t_fails "user add of an existing user fails" sh -c "printf 'x\n' | '$SD_ROOT/storagectl' -c '$SD_CONF' user add alice --password-stdin"
msg_check "  ... saying it exists" -q "storagectl: user add: user 'alice' already exists"
t_fails "user add without a tty or --password-stdin fails" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' user add dave </dev/null"
msg_check "  ... saying to use --password-stdin" -q 'password-stdin'
t_fails "user add with an empty password fails" sh -c "printf '\n' | '$SD_ROOT/storagectl' -c '$SD_CONF' user add dave --password-stdin"
echo traversal >"$W/f"
t_fails "put with ../../ path is refused" sd_ctl put alice "$W/f" ../../etc/x
msg_check "  ... with a message naming the path" -qF 'storagectl: put: ../../etc/x:'
t_check "  ... and nothing escaped the tree" sh -c "! '$SD_ROOT/storagectl' -c '$SD_CONF' ls alice / | grep -q ' etc/' && [ ! -e '$SD_DATA/../etc/x' ]"
t_fails "put of a missing local file fails" sd_ctl put alice "$W/nonexistent" /x
rc=0; sd_ctl >/dev/null 2>&1 || rc=$?
t_eq "no command exits 2" 2 "$rc"
rc=0; sd_ctl frobnicate >/dev/null 2>"$W/usage.err" || rc=$?
t_eq "unknown command exits 2" 2 "$rc"
t_check "  ... and prints the usage" grep -q '^usage: storagectl' "$W/usage.err"
rc=0; sd_ctl put alice >/dev/null 2>&1 || rc=$?
t_eq "put with missing arguments exits 2" 2 "$rc"
rc=0; sd_ctl ls alice / --bogus >/dev/null 2>&1 || rc=$?
t_eq "unknown option exits 2" 2 "$rc"
rc=0; sd_ctl user quota alice 4Q >/dev/null 2>&1 || rc=$?
t_eq "bad size exits 2" 2 "$rc"
rc=0; "$SD_ROOT/storagectl" -c "$SD_TMP/missing.conf" stats >/dev/null 2>"$W/conf.err" || rc=$?
t_eq "missing config exits 1" 1 "$rc"
t_check "  ... with a one-line reason" grep -q '^storagectl: config: ' "$W/conf.err"
rc=0; STORAGED_CONF=$SD_CONF "$SD_ROOT/storagectl" stats >/dev/null 2>&1 || rc=$?
t_eq "\$STORAGED_CONF is used without -c" 0 "$rc"

# users: disable/enable, passwd, keys
t_check "user disable" sd_ctl user disable bob
t_eq "user list shows bob disabled" True "$(sd_ctl user list --json | "$PY" -c 'import json,sys; print([u["disabled"] for u in json.load(sys.stdin) if u["name"]=="bob"][0])')"
t_check "user list (text) shows disabled" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' user list | grep -qE '^bob +yes +yes '"
t_check "user enable" sd_ctl user enable bob
t_eq "user list shows bob enabled" False "$(sd_ctl user list --json | "$PY" -c 'import json,sys; print([u["disabled"] for u in json.load(sys.stdin) if u["name"]=="bob"][0])')"
t_check "user passwd" sh -c "printf 'newpw\n' | '$SD_ROOT/storagectl' -c '$SD_CONF' user passwd alice --password-stdin"
t_fails "user passwd of an unknown user fails" sh -c "printf 'x\n' | '$SD_ROOT/storagectl' -c '$SD_CONF' user passwd nobody --password-stdin"
cat >"$W/keys.pub" <<'KEYS'
# alice's keys
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILg4U+7ilrM+e1nLMADM8uF4e8bA/HOBG2+8899EK1iP alice@laptop

ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK+MHWJ+gtUgQqLiBzwbkedYbDVimposNx1FzI1+V7Cy alice@desktop
KEYS
t_check "user key add (two keys, comments skipped)" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' user key add alice '$W/keys.pub' | grep -q 'added 2 keys'"
echo "not-a-key" >"$W/bad.pub"
t_fails "user key add of a bad line fails" sd_ctl user key add alice "$W/bad.pub"

# tokens
tok=$(sd_ctl token create alice --scope ro --expires 30d 2>/dev/null)
t_check "token create prints one token line" test -n "$tok" -a "$(printf '%s\n' "$tok" | wc -l)" -eq 1
sd_ctl token list alice --json >"$W/tokens.json"
t_eq "token list shows one ro token" "1 ro active" "$(json_get "$W/tokens.json" "' '.join(str(x) for x in (len(j), j[0]['scope'], j[0]['state']))")"
tid=$(json_get "$W/tokens.json" "j[0]['id']")
t_check "token list (text)" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' token list | grep -qE '^ +$tid +alice +ro '"
t_check "token revoke" sd_ctl token revoke "$tid"
t_eq "token list shows it revoked" "True revoked" "$(sd_ctl token list alice --json | "$PY" -c 'import json,sys; t=json.load(sys.stdin)[0]; print(t["revoked"], t["state"])')"
t_fails "token revoke of an unknown id fails" sd_ctl token revoke 999999
t_fails "token create for an unknown user fails" sd_ctl token create nobody

# journal
t_check "journal --user alice --since 10m lists the put" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' journal --user alice --since 10m | grep -q '/docs/single.bin'"
t_check "journal --json parses" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' journal --json | '$PY' -c 'import json,sys; j=json.load(sys.stdin); assert len(j) > 0 and all(\"op\" in r for r in j)'"
t_eq "journal --since in the future is empty" "" "$(sd_ctl journal --since 2099-01-01T00:00:00)"
t_check "journal --user bob shows only bob" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' journal --user bob --json | '$PY' -c 'import json,sys; j=json.load(sys.stdin); assert j and all(r[\"user\"]==\"bob\" for r in j)'"

# gc
t_check "gc" sd_ctl gc
t_check "gc --now" sd_ctl gc --now
t_check "fsck clean after everything" sd_ctl fsck

# ------------------------------------------------------------ 2. kill -9
kill_import_test nodaemon alice /killed 7

# ------------------------------------------------------------ 3. with the daemon
if sd_start; then
	t_check "daemon started (no front ends)" true
	t_check "put while the daemon runs" sd_ctl put bob "$W/single.bin" /live/s.bin
	t_check "get while the daemon runs" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' get bob /live/s.bin - | cmp - '$W/single.bin'"
	t_check "ls while the daemon runs" sh -c "'$SD_ROOT/storagectl' -c '$SD_CONF' ls bob /live | grep -q 's.bin'"
	t_check "stats while the daemon runs" sd_ctl stats
	kill_import_test daemon bob /killed 8
	t_check "fsck clean while the daemon runs" sd_ctl fsck
	t_check "daemon still alive" kill -0 "$SD_PID"
else
	t_check "daemon started (no front ends)" false
fi

t_done
