#!/bin/bash
# tests/integration/sftp/run.sh - the SFTP front end against real clients.
#
# Starts storaged with [sftp] on a free loopback port, then:
#   1. OpenSSH sftp -b batches (public-key login): put/get/ls -l/mkdir/
#      rename/rm/rmdir/chmod/df/cp, reget/reput resume, a large file and a
#      generated tree, byte-identical (sha256 / diff -r);
#   2. scp -r both ways (OpenSSH 9 scp speaks SFTP), rclone both ways;
#   3. refusals: exec/shell, forwarding, wrong key, disabled user, weak
#      algorithms; RSA and ECDSA keys;
#   4. pytest (paramiko) files in this directory against the same daemon:
#      passwords and tokens, random access, EXCL, statvfs, posix-rename,
#      check-file, copy-data, traversal, dropped connection, malformed
#      packets, cross-protocol dedup;
#   5. restart with small limits (limits_check.py): idle timeout,
#      max_per_ip, max_auth_tries, RSA host key, SIGTERM during a transfer.
# BIG_MB (default 200) sets the size of the large round-trip file.
. "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
BIG_MB=${BIG_MB:-200}

sd_setup
SFTP_PORT=$(sd_free_port)
sd_conf_add "[sftp]
enabled = yes
module = sftp
listen = 127.0.0.1:$SFTP_PORT
idle_timeout = 60s
max_auth_tries = 3"
sd_start || { echo "sftp: 0 passed, 1 failed"; exit 1; }

W=$SD_TMP/work
mkdir -p "$W"
ssh-keygen -q -t ed25519 -N '' -f "$W/alice_key" -C alice >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$W/bob_key" -C bob >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$W/stranger_key" -C stranger >/dev/null
sd_adduser alice alicepw1
sd_adduser bob bobpw1
sd_ctl user key add alice "$W/alice_key.pub" >/dev/null
sd_ctl user key add bob "$W/bob_key.pub" >/dev/null

SSHOPT=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
	-o LogLevel=ERROR -o ConnectTimeout=10)
# sftp_as USER KEY BATCHFILE [extra sftp options]
sftp_as() {
	local user=$1 key=$2 batch=$3
	shift 3
	sftp "${SSHOPT[@]}" -o IdentitiesOnly=yes -i "$key" -P "$SFTP_PORT" "$@" -b "$batch" \
		"$user@127.0.0.1"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

t_check "host key generated in data dir (0600)" \
	bash -c "[ \"\$(stat -c %a '$SD_DATA/ssh/ssh_host_ed25519_key')\" = 600 ]"

# ------------------------------------------------------------ 1. batches
head -c 300000 /dev/urandom > "$W/small.bin"
printf 'hello over sftp\n' > "$W/hello.txt"
cat > "$W/b1" <<EOF
mkdir /docs
cd /docs
put $W/small.bin small.bin
put $W/hello.txt hello.txt
chmod 600 hello.txt
ls -l
rename small.bin renamed.bin
get renamed.bin $W/small.back
get hello.txt $W/hello.back
df
cp renamed.bin copy.bin
get copy.bin $W/copy.back
rm copy.bin
EOF
t_check "sftp batch: mkdir, put, chmod, ls -l, rename, get, df, cp" \
	sftp_as alice "$W/alice_key" "$W/b1"
cp "$SD_TMP/t_out" "$W/b1.out"
t_eq "round trip of a 300 KB file is byte-identical" "$(sha "$W/small.bin")" "$(sha "$W/small.back" 2>/dev/null)"
t_eq "cp (copy-data) gives identical bytes" "$(sha "$W/small.bin")" "$(sha "$W/copy.back" 2>/dev/null)"
t_check "ls -l shows mode and size" grep -Eq -- '-rw-------.* 16 .*hello.txt' "$W/b1.out"
t_check "df answers (statvfs@openssh.com)" grep -q 'Size' "$W/b1.out"

cat > "$W/b2" <<EOF
ls /docs
rm /docs/renamed.bin
rm /docs/hello.txt
rmdir /docs
EOF
t_check "sftp batch: rm, rmdir" sftp_as alice "$W/alice_key" "$W/b2"
printf 'ls /docs\n' > "$W/b3"
t_fails "removed directory is gone" sftp_as alice "$W/alice_key" "$W/b3"

printf 'rename /nope /nope2\n' > "$W/b4"
t_fails "rename of a missing file fails" sftp_as alice "$W/alice_key" "$W/b4"
# large file, resume both ways
head -c $((BIG_MB * 1024 * 1024)) /dev/urandom > "$W/big.bin"
t0=$(date +%s.%N)
printf 'put %s /big.bin\n' "$W/big.bin" > "$W/b7"
t_check "put ${BIG_MB} MiB" sftp_as alice "$W/alice_key" "$W/b7"
t1=$(date +%s.%N)
printf 'get /big.bin %s\n' "$W/big.back" > "$W/b8"
t_check "get ${BIG_MB} MiB" sftp_as alice "$W/alice_key" "$W/b8"
t2=$(date +%s.%N)
t_eq "${BIG_MB} MiB round trip is byte-identical" "$(sha "$W/big.bin")" "$(sha "$W/big.back" 2>/dev/null)"
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "     (put %.2f s, get %.2f s)\n", b - a, c - b }'
rm -f "$W/big.back"

head -c $((12 * 1024 * 1024)) /dev/urandom > "$W/res.bin"
head -c $((5 * 1024 * 1024)) "$W/res.bin" > "$W/res.part"
printf 'put %s /res.bin\n' "$W/res.part" > "$W/b9"
sftp_as alice "$W/alice_key" "$W/b9" >/dev/null 2>&1
printf 'reput %s /res.bin\n' "$W/res.bin" > "$W/b10"
t_check "reput resumes an interrupted upload" sftp_as alice "$W/alice_key" "$W/b10"
printf 'get /res.bin %s\n' "$W/res.back" > "$W/b11"
sftp_as alice "$W/alice_key" "$W/b11" >/dev/null 2>&1
t_eq "reput result is byte-identical" "$(sha "$W/res.bin")" "$(sha "$W/res.back" 2>/dev/null)"
head -c $((3 * 1024 * 1024)) "$W/res.bin" > "$W/res.dl"
printf 'reget /res.bin %s\n' "$W/res.dl" > "$W/b12"
t_check "reget resumes an interrupted download" sftp_as alice "$W/alice_key" "$W/b12"
t_eq "reget result is byte-identical" "$(sha "$W/res.bin")" "$(sha "$W/res.dl" 2>/dev/null)"

# generated tree
T=$W/tree
for d in a a/b a/b/c d "e f"; do mkdir -p "$T/$d"; done
dirs=("a" "a/b" "a/b/c" "d" "e f")
for i in $(seq 1 40); do
	head -c $((i * 997)) /dev/urandom > "$T/${dirs[$((i % 5))]}/file$i.dat"
done
: > "$T/d/empty"
cp "$T/a/file5.dat" "$T/d/dup-of-5.dat"
printf 'put -r %s /tree\n' "$T" > "$W/b13"
t_check "put -r of a generated tree" sftp_as alice "$W/alice_key" "$W/b13"
printf 'get -r /tree %s\n' "$W/tree.back" > "$W/b14"
t_check "get -r of the tree" sftp_as alice "$W/alice_key" "$W/b14"
t_check "tree round trip is identical (diff -r)" diff -r "$T" "$W/tree.back"

# ------------------------------------------------------------ 2. scp
SCP=(scp "${SSHOPT[@]}" -o IdentitiesOnly=yes -i "$W/alice_key" -P "$SFTP_PORT")
t_check "scp -r upload" "${SCP[@]}" -r "$T" "alice@127.0.0.1:/scptree"
t_check "scp -r download" "${SCP[@]}" -r "alice@127.0.0.1:/scptree" "$W/scp.back"
t_check "scp round trip is identical" diff -r "$T" "$W/scp.back"

# rclone (sftp backend; its remote hash commands are refused, it copes)
# (the host key is checked against the .pub written next to the host key)
printf '[127.0.0.1]:%s %s\n' "$SFTP_PORT" "$(cut -d' ' -f1,2 "$SD_DATA/ssh/ssh_host_ed25519_key.pub")" \
	> "$W/known_hosts"
RC=":sftp,host=127.0.0.1,port=$SFTP_PORT,user=alice,key_file=$W/alice_key,known_hosts_file=$W/known_hosts,shell_type=none"
RCLONE=(rclone --config /dev/null --retries 1 --low-level-retries 1)
t_check "rclone copy up (host key verified)" "${RCLONE[@]}" copy "$T" "$RC:/rclonetree"
t_check "rclone copy down" "${RCLONE[@]}" copy "$RC:/rclonetree" "$W/rclone.back"
t_check "rclone round trip is identical" diff -r "$T" "$W/rclone.back"
t_check "rclone check --download" "${RCLONE[@]}" check --download "$T" "$RC:/rclonetree"

# ------------------------------------------------------------ 3. refusals
SSH=(ssh "${SSHOPT[@]}" -o IdentitiesOnly=yes -p "$SFTP_PORT")
"${SSH[@]}" -i "$W/alice_key" alice@127.0.0.1 ls / > "$W/exec.out" 2>&1
rc=$?
t_eq "exec is refused with exit status 1" 1 "$rc"
t_check "exec refusal says why" grep -q "SFTP only" "$W/exec.out"
"${SSH[@]}" -i "$W/alice_key" -T alice@127.0.0.1 > "$W/shell.out" 2>&1 < /dev/null
t_check "shell refusal says why" grep -q "SFTP only" "$W/shell.out"
timeout 20 "${SSH[@]}" -i "$W/alice_key" -o ExitOnForwardFailure=yes -N \
	-R 127.0.0.1:0:127.0.0.1:9 alice@127.0.0.1 > "$W/fwd.out" 2>&1
t_eq "remote port forwarding is refused (ssh exits 255)" 255 "$?"
printf 'ls /\n' > "$W/bls"
t_fails "unregistered key is refused" sftp_as alice "$W/stranger_key" "$W/bls"
t_fails "another user's key is refused" sftp_as alice "$W/bob_key" "$W/bls"
sd_ctl user disable bob >/dev/null
t_fails "disabled user cannot log in" sftp_as bob "$W/bob_key" "$W/bls"
sd_ctl user enable bob >/dev/null
t_check "re-enabled user can log in (no restart)" sftp_as bob "$W/bob_key" "$W/bls"
ssh-keygen -q -t rsa -b 3072 -N '' -f "$W/alice_rsa" -C alice-rsa >/dev/null
ssh-keygen -q -t ecdsa -N '' -f "$W/alice_ecdsa" -C alice-ecdsa >/dev/null
sd_ctl user key add alice "$W/alice_rsa.pub" >/dev/null
sd_ctl user key add alice "$W/alice_ecdsa.pub" >/dev/null
t_check "RSA key login (rsa-sha2-512)" sftp_as alice "$W/alice_rsa" "$W/bls"
t_check "ECDSA key login" sftp_as alice "$W/alice_ecdsa" "$W/bls"
t_fails "CBC ciphers are not offered" sftp_as alice "$W/alice_key" "$W/bls" -o Ciphers=aes128-cbc
t_fails "SHA-1 key exchange is not offered" sftp_as alice "$W/alice_key" "$W/bls" \
	-o KexAlgorithms=diffie-hellman-group14-sha1

# ------------------------------------------------------------ 4. paramiko
export SD_ROOT SD_CONF SD_DATA SD_LOG SFTP_PORT PYTHONDONTWRITEBYTECODE=1
export SFTP_ALICE_KEY="$W/alice_key"
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -v -p no:cacheprovider "$HERE"/test_*.py > "$W/pytest.out" 2>&1
pyrc=$?
sed -n '/ PASSED\| FAILED\| ERROR/p' "$W/pytest.out" | sed 's/^/     /'
np=$(grep -c ' PASSED' "$W/pytest.out")
nf=$(grep -cE ' FAILED| ERROR' "$W/pytest.out")
if [ "$pyrc" -ne 0 ] && [ "$nf" -eq 0 ]; then nf=1; fi
if [ "$nf" -gt 0 ]; then grep -A 30 '= FAILURES =\|= ERRORS =' "$W/pytest.out" | head -80; fi
T_PASS=$((T_PASS + np))
T_FAIL=$((T_FAIL + nf))
echo "ok   - $T_NAME: pytest $np passed, $nf failed"

t_check "daemon still serving after all that" sftp_as alice "$W/alice_key" "$W/bls"

# ------------------------------------------------------------ 5. limits
t_check "SIGTERM with sessions done exits 0" sd_stop
sed -i -e 's/^idle_timeout = .*/idle_timeout = 2s/' \
	-e 's/^max_auth_tries = .*/max_auth_tries = 2\nmax_per_ip = 2\nrsa_host_key = yes/' "$SD_CONF"
sd_start || { echo "sftp: restart failed"; T_FAIL=$((T_FAIL + 1)); }
t_check "host key kept across restarts" grep -q "type=ssh-ed25519 .*generated=0" "$SD_LOG"
t_check "rsa_host_key = yes offers an RSA host key" \
	sftp_as alice "$W/alice_key" "$W/bls" -o HostKeyAlgorithms=rsa-sha2-512
t_check "idle session is closed after idle_timeout" /usr/bin/python3 "$HERE/limits_check.py" idle
t_check "max_per_ip refuses a third connection" /usr/bin/python3 "$HERE/limits_check.py" per_ip
t_check "max_auth_tries disconnects" /usr/bin/python3 "$HERE/limits_check.py" auth_tries
# stop while a transfer is running: exits 0, the file keeps its old version
head -c $((64 * 1024 * 1024)) /dev/urandom > "$W/stop.bin"
printf 'put %s /stop.bin\n' "$W/stop.bin" > "$W/bstop"
sftp_as alice "$W/alice_key" "$W/bstop" > /dev/null 2>&1 &
spid=$!
sleep 0.7
t_check "SIGTERM during a transfer exits 0" sd_stop
wait $spid
sd_start || { echo "sftp: restart failed"; T_FAIL=$((T_FAIL + 1)); }
sd_ctl get alice /stop.bin "$W/stop.back" > /dev/null 2>&1
t_check "interrupted upload left no partial content" \
	bash -c "[ ! -s '$W/stop.back' ] || cmp -s '$W/stop.bin' '$W/stop.back'"
t_done
