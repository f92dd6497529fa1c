#!/bin/bash
# Runs every integration area (tests/integration/<area>/run.sh) against the
# built daemon, and prints one closing line "N passed, N failed" (areas).
set -u
here=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0 failed=""
for t in "$here"/*/run.sh; do
	[ -x "$t" ] || continue
	area=$(basename "$(dirname "$t")")
	echo "== integration: $area"
	if timeout 600 "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $area"; fi
done
[ -n "$failed" ] && echo "failed areas:$failed"
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
