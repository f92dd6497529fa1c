#!/bin/bash
# Runs check suites given as arguments; each binary is one unit's suite.
# Prints each suite's check summary and a closing "N passed, N failed"
# (counting individual checks).
set -u
total_pass=0 total_fail=0 bad=""
for bin in "$@"; do
	out=$(CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60} "$bin" 2>&1)
	rc=$?
	summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n1)
	printf '%-40s %s\n' "$(basename "$bin")" "${summary:-no summary (rc=$rc)}"
	if [ -n "$summary" ]; then
		n=$(echo "$summary" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
		f=$(echo "$summary" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
		e=$(echo "$summary" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
		total_pass=$((total_pass + n - f - e))
		total_fail=$((total_fail + f + e))
	else
		total_fail=$((total_fail + 1))
	fi
	if [ $rc -ne 0 ] || [ -z "$summary" ]; then
		bad="$bad $(basename "$bin")"
		printf '%s\n' "$out" | grep -vE '^[0-9]+%: Checks: ' | tail -n 40
	fi
done
[ -n "$bad" ] && echo "failing suites:$bad"
echo "unit: $total_pass passed, $total_fail failed"
[ -z "$bad" ] && [ "$total_fail" -eq 0 ]
