#!/bin/bash
# FTP/FTPS front end against the real daemon on loopback, with real clients:
# lftp (mirror -R / mirror of a unicode tree, put -c resume after a killed
# transfer, ls, mv, rm -r, FTPS explicit and implicit), curl (-T, -C -,
# --ftp-pasv, --ftp-ssl-reqd, ftps://) and python ftplib (test_ftplib.py:
# MLSD facts, SIZE, MDTM, HASH, REST, ABOR, GB18030, dedup, bad input,
# limits, PASV exhaustion, a client vanishing mid-STOR).
. "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

sd_setup
FTP_PORT=$(sd_free_port)
FTPS_PORT=$(sd_free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=127.0.0.1 -keyout "$SD_TMP/key.pem" -out "$SD_TMP/cert.pem" >/dev/null 2>&1 ||
	{ echo "openssl req failed" >&2; exit 1; }
sd_conf_add "
[ftp]
enabled = yes
listen = 127.0.0.1:$FTP_PORT
tls_cert = $SD_TMP/cert.pem
tls_key = $SD_TMP/key.pem
implicit_tls_listen = 127.0.0.1:$FTPS_PORT
tls_require_reuse = yes
fallback_charset = GB18030
data_timeout = 10s
max_per_ip = 50"
sd_start || exit 1
sd_adduser alice alicepw1 || exit 1
sd_adduser bob bobpw123 || exit 1

URL="ftp://alice:alicepw1@127.0.0.1:$FTP_PORT"
LFTP_BASE="set net:max-retries 2; set net:reconnect-interval-base 1; set net:timeout 15; set cmd:fail-exit yes; set xfer:clobber yes"
LFTP_PLAIN="$LFTP_BASE; set ftp:ssl-allow no"
LFTP_TLS="$LFTP_BASE; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ftp:ssl-protect-list yes; set ssl:verify-certificate no"
lf() { timeout 120 lftp -u alice,alicepw1 -p "$FTP_PORT" -e "$LFTP_PLAIN; $1; bye" 127.0.0.1 < /dev/null; }
lf_tls() { timeout 120 lftp -u alice,alicepw1 -p "$FTP_PORT" -e "$LFTP_TLS; $1; bye" 127.0.0.1 < /dev/null; }
lf_implicit() { timeout 120 lftp -u alice,alicepw1 -e "$LFTP_TLS; $1; bye" "ftps://127.0.0.1:$FTPS_PORT" < /dev/null; }
blobs() { find "$SD_DATA/blobs" -type f -regextype posix-extended -regex '.*/[0-9a-f]{64}' | wc -l; }
same() { cmp "$1" "$2"; }

# ------------------------------------------------------------ lftp: tree
SRC=$SD_TMP/tree
mkdir -p "$SRC/a/b/c" "$SRC/données/été" "$SRC/中文目录/子目录" "$SRC/with space" "$SRC/empty dir"
for i in $(seq 1 25); do head -c $((i * 4099)) /dev/urandom > "$SRC/a/f$i.bin"; done
head -c 20000000 /dev/urandom > "$SRC/a/b/big.bin"
echo "deep" > "$SRC/a/b/c/deep.txt"
echo "café" > "$SRC/données/été/résumé.txt"
head -c 300000 /dev/urandom > "$SRC/中文目录/文件 1.bin"
echo "子" > "$SRC/中文目录/子目录/说明.txt"
echo "smile" > "$SRC/with space/emoji 😀.txt"
: > "$SRC/with space/empty file"
t_check "lftp mirror -R of a unicode tree" lf "mirror -R '$SRC' /tree"
t_check "lftp mirror back" lf "mirror /tree '$SD_TMP/back'"
t_check "mirrored tree is byte-identical" diff -r "$SRC" "$SD_TMP/back"
lf "cls -1 /tree/" > "$SD_TMP/ls.out" 2>&1
t_check "lftp ls shows unicode dirs" grep -qx '/tree/中文目录/' "$SD_TMP/ls.out"
t_check "lftp mv" lf "mv /tree/a /tree/a-moved"
lf "cls -1 /tree/" > "$SD_TMP/ls2.out" 2>&1
t_check "mv result listed" grep -qx '/tree/a-moved/' "$SD_TMP/ls2.out"
t_fails "old name gone" grep -qx '/tree/a/' "$SD_TMP/ls2.out"
t_check "lftp rm -r" lf "rm -r /tree/a-moved"
lf "cls -1 /tree/" > "$SD_TMP/ls3.out" 2>&1
t_fails "rm -r removed the tree" grep -q 'a-moved' "$SD_TMP/ls3.out"

# ------------------------------------------------------------ lftp: put -c
BIG=$SD_TMP/big.bin
head -c 64000000 /dev/urandom > "$BIG"
lftp -u alice,alicepw1 -p "$FTP_PORT" \
	-e "$LFTP_PLAIN; set net:limit-rate 8000000; put '$BIG' -o /resume.bin; bye" 127.0.0.1 \
	< /dev/null > /dev/null 2>&1 &
LPID=$!
sleep 2.5
kill -9 "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null
sleep 1
partial=$(curl -sS --max-time 10 -I "$URL/resume.bin" 2>/dev/null | sed -n 's/^Content-Length: \([0-9]*\).*/\1/p' | tr -d '\r')
t_check "killed upload left a resumable partial (${partial:-?} bytes)" \
	test "${partial:-0}" -gt 0 -a "${partial:-0}" -lt 64000000
t_check "lftp put -c resumes" lf "put -c '$BIG' -o /resume.bin"
t_check "resumed file downloads" lf "get /resume.bin -o '$SD_TMP/resume.back'"
t_check "resumed file is byte-identical" same "$BIG" "$SD_TMP/resume.back"
resumed=$(grep 'cmd=STOR path="/resume.bin"' "$SD_LOG" | tail -n1 | sed -n 's/.* bytes=\([0-9]*\).*/\1/p')
t_check "resume sent only the rest (${resumed:-?} bytes)" test "${resumed:-64000000}" -lt 64000000

# ------------------------------------------------------------ curl
head -c 50000000 /dev/urandom > "$SD_TMP/c50.bin"
t_check "curl -T upload (50 MB)" curl -sS --max-time 60 -T "$SD_TMP/c50.bin" --ftp-create-dirs "$URL/curl/c50.bin"
t_check "curl --ftp-pasv download" curl -sS --max-time 60 --ftp-pasv "$URL/curl/c50.bin" -o "$SD_TMP/c50.back"
t_check "curl round trip identical" same "$SD_TMP/c50.bin" "$SD_TMP/c50.back"
head -c 12000000 "$SD_TMP/c50.bin" > "$SD_TMP/c50.part"
t_check "curl partial upload" curl -sS --max-time 60 -T "$SD_TMP/c50.part" "$URL/curl/resume.bin"
t_check "curl -C - -T resumes the upload" curl -sS --max-time 60 -C - -T "$SD_TMP/c50.bin" "$URL/curl/resume.bin"
t_check "curl resumed upload downloads" curl -sS --max-time 60 "$URL/curl/resume.bin" -o "$SD_TMP/c50.back2"
t_check "curl resumed upload identical" same "$SD_TMP/c50.bin" "$SD_TMP/c50.back2"
head -c 7000000 "$SD_TMP/c50.bin" > "$SD_TMP/c50.dl"
t_check "curl -C - resumes a download" curl -sS --max-time 60 -C - "$URL/curl/c50.bin" -o "$SD_TMP/c50.dl"
t_check "resumed download identical" same "$SD_TMP/c50.bin" "$SD_TMP/c50.dl"
n0=$(blobs)
t_check "curl uploads the same content again" curl -sS --max-time 60 -T "$SD_TMP/c50.bin" "$URL/curl/twin.bin"
n1=$(blobs)
t_eq "the twin is one blob (blob files before/after)" "$n0" "$n1"
t_check "transfer log records the dedup hit" grep -q 'cmd=STOR path="/curl/twin.bin" bytes=50000000 .*result=ok dedup=1' "$SD_LOG"
t_check "curl active mode (-P)" curl -sS --max-time 30 -P 127.0.0.1 "$URL/curl/c50.bin" -o "$SD_TMP/c50.act"
t_check "active download identical" same "$SD_TMP/c50.bin" "$SD_TMP/c50.act"
t_fails "curl with a wrong password fails" curl -sS --max-time 20 "ftp://alice:nope@127.0.0.1:$FTP_PORT/"

# ------------------------------------------------------------ FTPS
head -c 20000000 /dev/urandom > "$SD_TMP/s20.bin"
t_check "curl --ftp-ssl-reqd upload" curl -sS -k --max-time 60 --ftp-ssl-reqd -T "$SD_TMP/s20.bin" "$URL/tls/s20.bin" --ftp-create-dirs
t_check "curl --ftp-ssl-reqd download" curl -sS -k --max-time 60 --ftp-ssl-reqd "$URL/tls/s20.bin" -o "$SD_TMP/s20.back"
t_check "FTPS round trip identical" same "$SD_TMP/s20.bin" "$SD_TMP/s20.back"
t_check "curl --ftp-ssl-reqd listing" curl -sS -k --max-time 30 --ftp-ssl-reqd "$URL/tls/"
t_check "curl implicit FTPS (ftps://)" curl -sS -k --max-time 60 "ftps://alice:alicepw1@127.0.0.1:$FTPS_PORT/tls/s20.bin" -o "$SD_TMP/s20.imp"
t_check "implicit FTPS download identical" same "$SD_TMP/s20.bin" "$SD_TMP/s20.imp"
t_check "lftp explicit FTPS put" lf_tls "put '$SD_TMP/s20.bin' -o /tls/lftp.bin"
t_check "lftp explicit FTPS get" lf_tls "get /tls/lftp.bin -o '$SD_TMP/s20.lftp'"
t_check "lftp FTPS round trip identical" same "$SD_TMP/s20.bin" "$SD_TMP/s20.lftp"
t_check "lftp FTPS mirror -R" lf_tls "mirror -R '$SRC/données' /tls/données"
t_check "lftp implicit FTPS ls + get" lf_implicit "cls /tls/; get /tls/s20.bin -o '$SD_TMP/s20.limp'"
t_check "lftp implicit FTPS identical" same "$SD_TMP/s20.bin" "$SD_TMP/s20.limp"
t_check "FTPS logins logged with tls=yes" grep -q 'src=ftp event=login user=alice addr=127.0.0.1 tls=yes' "$SD_LOG"

# ------------------------------------------------------------ python ftplib
FTP_PORT=$FTP_PORT SD_DATA=$SD_DATA SD_CONF=$SD_CONF SD_ROOT=$SD_ROOT \
	FTP_USER=alice FTP_PASS=alicepw1 FTP_USER2=bob FTP_PASS2=bobpw123 \
	FTP_CERT=$SD_TMP/cert.pem FTP_KEY=$SD_TMP/key.pem \
	timeout 300 /usr/bin/python3 "$HERE/test_ftplib.py" > "$SD_TMP/py.out" 2>&1
grep -E '^(ok  |FAIL)' "$SD_TMP/py.out"
res=$(sed -n 's/^PYRESULT \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$SD_TMP/py.out")
if [ -z "$res" ]; then
	echo "FAIL - ftp: test_ftplib.py did not finish"; tail -n 30 "$SD_TMP/py.out"
	T_FAIL=$((T_FAIL + 1))
else
	T_PASS=$((T_PASS + ${res% *})); T_FAIL=$((T_FAIL + ${res#* }))
	[ "${res#* }" -gt 0 ] && grep -v -E '^(ok  |FAIL|PYRESULT)' "$SD_TMP/py.out" | tail -n 40
fi
t_check "daemon still alive" kill -0 "$SD_PID"
t_done
