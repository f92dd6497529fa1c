#!/bin/bash
# bench/run.sh - one command comparing storaged with its peers (issue 7).
#
#   bench/run.sh [--quick] [--runs N] [--only ftp|sftp|http|engine[,...]]
#                [--no-doc | --md FILE] [--no-profile] [--keep]
#   make bench [BENCH_ARGS="--quick"]   (installs the peers, builds, runs this)
#
# Run as root from a built checkout (make all). In one run, on one disk:
#   - physical limits: dd conv=fsync, 4 KiB fsync latency, SHA-256
#     (openssl dgst and openssl speed), loopback TCP (python pipe);
#   - per protocol, against storaged with durability = full (the default)
#     and durability = normal (no fsync, like every peer), the same
#     workloads with the same client:
#       FTP  (lftp)         vsftpd (Debian package) and pure-ftpd (its .deb
#                           unpacked with dpkg -x: it conflicts with vsftpd)
#       SFTP (OpenSSH sftp, aes128-gcm@openssh.com)  OpenSSH sshd, internal-sftp
#       HTTP (curl)         nginx with PUT through its dav module
#     1 GiB upload and download, 2,000 x 4 KiB files in one session, 8
#     parallel clients x 64 MiB, 8 sessions x 500 x 4 KiB in parallel, 4 KiB
#     download latency p50/p99, and (storaged only) the instant re-upload of
#     the stored 1 GiB file after login (HTTP: by header and by POST
#     /api/v1/instant; FTP: SITE INSTANT; SFTP: instant@storaged);
#     storaged's peak RSS (VmHWM, the daemon is restarted before each
#     workload);
#   - engine scale: 1,000 idle connections per front end (RSS per
#     connection), a tree of 1,000,000 files through the engine API
#     (bench/scale.c: import time, stat p99, listing 100,000 entries,
#     database bytes per file), durability = normal;
#   - perf profiles of storaged during an upload, small uploads, a download;
#     strace -c system call counts per 4 KiB file uploaded over HTTP, FTP and
#     SFTP (durability = full; HTTP also normal) and downloaded over HTTP.
# Every figure is the median of N runs (default 3) with min-max; servers
# are interleaved run by run. Prints the table and rewrites
# docs/benchmarks.md (unless --no-doc; --md FILE writes the report to FILE
# instead), keeping the per-protocol sections of bench/http.sh,
# bench/ftp.sh, bench/sftp.sh and bench/ingest.sh.
# --quick: 256 MiB, 500 small files, 8 x 16 MiB, 8 x 125 small files, 100,000-file tree.
# Everything listens on 127.0.0.1 (free ports); every process started is
# stopped by PID at the end; temp data lives under /var/tmp/sdbench.* and is
# removed (--keep keeps it). Exit status 1 if any measurement failed.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (vsftpd, pure-ftpd and sshd need it)" >&2; exit 1; }
for x in lftp sftp curl nginx /usr/sbin/vsftpd /usr/sbin/sshd openssl dd apt-get dpkg; do
	command -v "$x" >/dev/null || { echo "run.sh: $x missing (make bench installs it)" >&2; exit 1; }
done
# 1,000 idle connections per front end, and their clients, need descriptors
ulimit -n 65536 2>/dev/null || ulimit -n 16384
cd "$ROOT"
exec /usr/bin/python3 "$ROOT/bench/bench.py" --cmd "bench/run.sh${*:+ $*}" "$@"
