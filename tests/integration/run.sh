#!/bin/sh
# Runs the integration suite (tests/integration/test_*.py) against the built
# daemon with Debian's python (the first python3 on PATH may be another build
# without python3-paramiko, -pytest and -pytest-timeout). Arguments go to
# pytest:
#   tests/integration/run.sh                        everything
#   tests/integration/run.sh tests/integration/test_ftp.py       one area
#   tests/integration/run.sh tests/integration/test_http.py::test_quota
#   tests/integration/run.sh -k "quota or lockout" -x
# The closing line and the exit status are pytest's own.
cd "$(dirname "$0")/../.." || exit 1
where=tests/integration
for a in "$@"; do
	case $a in
	tests/integration*|*test_*.py*) where= ;;   # the caller named what to run
	esac
done
PYTHONDONTWRITEBYTECODE=1 exec /usr/bin/python3 -m pytest $where -v "$@"
