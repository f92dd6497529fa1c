#!/bin/bash
# tests/integration/http/run.sh - the HTTP/REST front end against the real
# daemon on loopback, driven by curl (python where curl cannot express it:
# multipart parsing, proofs of possession, a client vanishing mid-upload).
#
# Covers: 200 MiB round trip (sha256), chunked upload, every Range form
# incl. 416, conditional GETs, instant upload by header (Expect:
# 100-continue, no body byte sent) and by challenge (+ wrong proof), two
# users same content = one blob two refs and private paths, traversal
# attempts refused without touching the store, wrong/expired credentials,
# read-only token, lockout, disconnect mid-upload (no file, no temp after
# gc), quota (507, and the bounded drop of a long body after the error),
# checksum mismatch, FastDFS-style IDs, admin API, metrics, HTTPS,
# per-address and idle limits, header size limit, keep-alive, and the
# daemon's RSS during a 1 GiB upload (sampled VmRSS, must stay within
# 64 MiB above idle).
. "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
sd_setup
W=$SD_TMP/work
mkdir -p "$W"
PORT=$(sd_free_port)
TPORT=$(sd_free_port)
B=http://127.0.0.1:$PORT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
	-days 2 -subj /CN=127.0.0.1 >/dev/null 2>&1
sd_conf_add "
[http]
enabled = yes
module = http
listen = 127.0.0.1:$PORT
threads = 4
public_ids = yes

[https]
enabled = yes
module = http
listen = 127.0.0.1:$TPORT
threads = 2
idle_timeout = 2s
max_connections = 4
max_per_ip = 3
tls_cert = $W/cert.pem
tls_key = $W/key.pem"
# lockout after 8 failures within 5s (lib.sh: 20 within 2s): the engine serialises
# failed logins (journal + delay), so 20 may not fit into 2s on a busy machine
sed -i 's/^auth_max_failures = .*/auth_max_failures = 8/; s/^auth_block_time = .*/auth_block_time = 5s/' "$SD_CONF"
sd_start || { echo "http: 0 passed, 1 failed"; exit 1; }
sd_adduser alice pw-alice
sd_adduser bob pw-bob
sd_adduser carol pw-carol --quota 1M
sd_adduser root pw-root --admin

A=(-u alice:pw-alice)
Bo=(-u bob:pw-bob)
C=(curl -s --path-as-is)

# code METHOD URL [curl args...]: prints the status code only.
code() {
	local m=$1 u=$2
	shift 2
	"${C[@]}" -o "$W/body" -w '%{http_code}' -X "$m" "$@" "$u"
}
# json_get FILE EXPR: python expression over the parsed JSON j.
json_get() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
sha() { sha256sum "$1" | cut -c1-64; }
nblobs() { find "$SD_DATA/blobs" -type f 2>/dev/null | grep -cE '/[0-9a-f]{64}$'; }
is_json_error() { json_get "$W/body" "j['error'] and j['message'] and 'ok'" 2>/dev/null | grep -q ok; }

# ------------------------------------------------------------ basics
t_eq "healthz" 200 "$(code GET $B/healthz)"
t_eq "unknown endpoint is 404" 404 "$(code GET $B/nope)"
t_check "404 has a JSON error body" is_json_error
t_eq "no credentials: 401" 401 "$(code GET $B/api/v1/fs/)"
t_check "401 JSON body" is_json_error
t_check "401 names Basic realm" sh -c "curl -s -D - -o /dev/null $B/api/v1/fs/ | grep -qi '^WWW-Authenticate: Basic realm='"
t_eq "wrong password: 401" 401 "$(code GET $B/api/v1/fs/ -u alice:nope)"
t_eq "unknown user: 401" 401 "$(code GET $B/api/v1/fs/ -u mallory:x)"
t_eq "bad bearer token: 401" 401 "$(code GET $B/api/v1/fs/ -H 'Authorization: Bearer sdt_bogus')"
t_eq "headers over max_header_size: 431" 431 "$(code GET $B/api/v1/fs/ "${A[@]}" -H "X-Pad: $(head -c 20000 /dev/zero | tr '\0' a)")"
t_check "431 JSON body" is_json_error
t_eq "keep-alive: second request reuses the connection" "1 0" "$("${C[@]}" "${A[@]}" -o /dev/null -o /dev/null -w '%{num_connects} ' $B/api/v1/fs/ $B/api/v1/me | sed 's/ $//')"
t_eq "root listing" 200 "$(code GET $B/api/v1/fs/ "${A[@]}")"
t_eq "empty root has no entries" 0 "$(json_get "$W/body" "len(j['entries'])")"

# ------------------------------------------------------------ 200 MiB round trip
head -c $((200 << 20)) /dev/urandom > "$W/big"
BIGSHA=$(sha "$W/big")
t_eq "PUT 200 MiB" 201 "$(code PUT $B/api/v1/fs/big.bin "${A[@]}" -T "$W/big")"
t_eq "PUT answer has the sha256" "$BIGSHA" "$(json_get "$W/body" "j['sha256']")"
GOT=$("${C[@]}" "${A[@]}" $B/api/v1/fs/big.bin | sha256sum | cut -c1-64)
t_eq "GET 200 MiB sha256 identical" "$BIGSHA" "$GOT"
"${C[@]}" "${A[@]}" -I $B/api/v1/fs/big.bin > "$W/head"
t_check "HEAD: Content-Length" grep -qi "^Content-Length: $((200 << 20))" "$W/head"
t_check "HEAD: ETag is the sha256" grep -qi "^ETag: \"$BIGSHA\"" "$W/head"
t_check "HEAD: Last-Modified" grep -qi "^Last-Modified: .* GMT" "$W/head"

# ------------------------------------------------------------ chunked
head -c $((3 << 20 | 12345)) /dev/urandom > "$W/chunk"
t_eq "chunked PUT" 201 "$(cat "$W/chunk" | code PUT $B/api/v1/fs/dir1/chunked.dat?parents=1 "${A[@]}" -H 'Transfer-Encoding: chunked' -T -)"
t_eq "chunked content identical" "$(sha "$W/chunk")" "$("${C[@]}" "${A[@]}" $B/api/v1/fs/dir1/chunked.dat | sha256sum | cut -c1-64)"
t_eq "PUT without parents into missing dir: 404" 404 "$(code PUT $B/api/v1/fs/nodir/x "${A[@]}" --data-binary x)"

# ------------------------------------------------------------ ranges
head -c 10000 /dev/urandom > "$W/r"
code PUT $B/api/v1/fs/r.txt "${A[@]}" -T "$W/r" >/dev/null
RSHA=$(sha "$W/r")
rng() { "${C[@]}" "${A[@]}" -D "$W/rh" -o "$W/rb" -w '%{http_code}' -H "Range: $1" $B/api/v1/fs/r.txt; }
slice() { "$PY" -c "import sys; d=open(sys.argv[1],'rb').read(); sys.stdout.buffer.write(d[$1])" "$W/r"; }
t_eq "Range 0-99: 206" 206 "$(rng bytes=0-99)"
t_check "Range 0-99 bytes" cmp -s "$W/rb" <(slice 0:100)
t_check "Range 0-99 Content-Range" grep -qi '^Content-Range: bytes 0-99/10000' "$W/rh"
t_eq "Range 9990-: 206" 206 "$(rng bytes=9990-)"
t_check "Range 9990- bytes" cmp -s "$W/rb" <(slice 9990:)
t_eq "Range -300 (suffix): 206" 206 "$(rng bytes=-300)"
t_check "Range -300 bytes" cmp -s "$W/rb" <(slice -300:)
t_check "Range -300 Content-Range" grep -qi '^Content-Range: bytes 9700-9999/10000' "$W/rh"
t_eq "Range 5000-99999 clamps: 206" 206 "$(rng bytes=5000-99999)"
t_check "Range clamped bytes" cmp -s "$W/rb" <(slice 5000:)
t_eq "Range -20000 (suffix > size): 206" 206 "$(rng bytes=-20000)"
t_check "suffix > size is whole file" cmp -s "$W/rb" "$W/r"
t_eq "Range 0-0: 206" 206 "$(rng bytes=0-0)"
t_check "Range 0-0 one byte" cmp -s "$W/rb" <(slice 0:1)
t_eq "multi-range: 206" 206 "$(rng 'bytes=0-9,100-199,-5')"
t_check "multi-range: multipart/byteranges" grep -qi '^Content-Type: multipart/byteranges; boundary=' "$W/rh"
t_check "multi-range parts correct" "$PY" - "$W/rh" "$W/rb" "$W/r" <<'PYEOF'
import sys, re
hdr = open(sys.argv[1]).read()
body = open(sys.argv[2], 'rb').read()
data = open(sys.argv[3], 'rb').read()
b = re.search(r'boundary=([^\s;]+)', hdr).group(1).encode()
parts = body.split(b'--' + b)
want = [(0, 9), (100, 199), (9995, 9999)]
got = []
for p in parts[1:]:
    if p.startswith(b'--'):
        break
    head, _, content = p.partition(b'\r\n\r\n')
    m = re.search(rb'Content-Range: bytes (\d+)-(\d+)/10000', head)
    a, z = int(m.group(1)), int(m.group(2))
    content = content[:-2] if content.endswith(b'\r\n') else content
    assert content == data[a:z + 1], (a, z)
    got.append((a, z))
assert got == want, got
assert body.rstrip().endswith(b'--' + b + b'--')
PYEOF
t_eq "Range beyond end: 416" 416 "$(rng bytes=20000-30000)"
t_check "416 Content-Range bytes */10000" grep -qi '^Content-Range: bytes \*/10000' "$W/rh"
t_eq "Range last<first: 416" 416 "$(rng bytes=500-100)"
t_eq "Range suffix -0: 416" 416 "$(rng bytes=-0)"
t_eq "Range other unit ignored: 200" 200 "$(rng items=0-5)"
t_eq "If-Range matching ETag: 206" 206 "$("${C[@]}" "${A[@]}" -o /dev/null -w '%{http_code}' -H 'Range: bytes=0-9' -H "If-Range: \"$RSHA\"" $B/api/v1/fs/r.txt)"
t_eq "If-Range stale ETag: 200 whole" 200 "$("${C[@]}" "${A[@]}" -o /dev/null -w '%{http_code}' -H 'Range: bytes=0-9' -H "If-Range: \"0000\"" $B/api/v1/fs/r.txt)"
t_eq "If-None-Match: 304" 304 "$("${C[@]}" "${A[@]}" -o /dev/null -w '%{http_code}' -H "If-None-Match: \"$RSHA\"" $B/api/v1/fs/r.txt)"
t_eq "If-None-Match other: 200" 200 "$("${C[@]}" "${A[@]}" -o /dev/null -w '%{http_code}' -H 'If-None-Match: "abc"' $B/api/v1/fs/r.txt)"
t_eq "If-Modified-Since future: 304" 304 "$("${C[@]}" "${A[@]}" -o /dev/null -w '%{http_code}' -H 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT' $B/api/v1/fs/r.txt)"
t_eq "If-Modified-Since past: 200" 200 "$("${C[@]}" "${A[@]}" -o /dev/null -w '%{http_code}' -H 'If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT' $B/api/v1/fs/r.txt)"
t_check "Content-Type by extension" sh -c "curl -s -u alice:pw-alice -o /dev/null -D - $B/api/v1/fs/r.txt | grep -qi '^Content-Type: text/plain'"

# ------------------------------------------------------------ checksum header
head -c 50000 /dev/urandom > "$W/c"
t_eq "X-Checksum-SHA256 good: 201" 201 "$(code PUT $B/api/v1/fs/c-good "${A[@]}" -T "$W/c" -H "X-Checksum-SHA256: $(sha "$W/c")")"
t_eq "X-Checksum-SHA256 mismatch: 400" 400 "$(code PUT $B/api/v1/fs/c-bad "${A[@]}" -T "$W/c" -H "X-Checksum-SHA256: $(printf x | sha256sum | cut -c1-64)")"
t_check "mismatch JSON error" is_json_error
t_eq "mismatch stored nothing" 404 "$(code GET $B/api/v1/fs/c-bad "${A[@]}")"

# ------------------------------------------------------------ instant by header
"${C[@]}" "${A[@]}" -D "$W/ih" -o "$W/body" -w '%{http_code} %{size_upload} %{time_total}\n' \
	-T "$W/big" -H "X-Checksum-SHA256: $BIGSHA" -H 'Expect: 100-continue' \
	$B/api/v1/fs/big-again.bin > "$W/iw"
t_eq "instant PUT by header: 201" 201 "$(cut -d' ' -f1 "$W/iw")"
t_check "instant PUT: X-Instant-Upload: 1" grep -qi '^X-Instant-Upload: 1' "$W/ih"
t_eq "instant PUT sent no body byte" 0 "$(cut -d' ' -f2 "$W/iw")"
echo "       (instant 200 MiB PUT took $(cut -d' ' -f3 "$W/iw") s, body bytes sent: $(cut -d' ' -f2 "$W/iw"))"
t_eq "instant copy readable, same sha" "$BIGSHA" "$("${C[@]}" "${A[@]}" $B/api/v1/fs/big-again.bin | sha256sum | cut -c1-64)"
# same header but content unknown: the body is read normally
head -c 70000 /dev/urandom > "$W/u"
t_eq "checksum header, unknown content: normal upload" 201 "$(code PUT $B/api/v1/fs/u.bin "${A[@]}" -T "$W/u" -H "X-Checksum-SHA256: $(sha "$W/u")" -H 'Expect: 100-continue')"
t_eq "unknown content stored" "$(sha "$W/u")" "$("${C[@]}" "${A[@]}" $B/api/v1/fs/u.bin | sha256sum | cut -c1-64)"

# ------------------------------------------------------------ instant by challenge
cat > "$W/instant.py" <<'PYEOF'
import base64, hashlib, json, sys, urllib.request, urllib.error
base, user, pw, path, local, mode = sys.argv[1:7]
data = open(local, 'rb').read()
auth = 'Basic ' + base64.b64encode(f'{user}:{pw}'.encode()).decode()
def post(obj):
    req = urllib.request.Request(base + '/api/v1/instant', data=json.dumps(obj).encode(),
                                 headers={'Authorization': auth, 'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
req = {'path': path, 'sha256': hashlib.sha256(data).hexdigest(), 'size': len(data)}
st, j = post(req)
if st != 200:
    print(f'first:{st}:{j.get("error", "")}')
    sys.exit(0)
assert 'nonce' in j and isinstance(j['ranges'], list) and j['ranges'], j
h = hashlib.sha256(j['nonce'].encode())
for off, ln in j['ranges']:
    h.update(data[off:off + ln])
proof = h.hexdigest()
if mode == 'wrong':
    proof = hashlib.sha256(b'not the data').hexdigest()
st2, j2 = post(dict(req, nonce=j['nonce'], proof=proof))
print(f'challenge:{st2}:{j2.get("error", "") or j2.get("instant")}')
PYEOF
head -c $((4 << 20)) /dev/urandom > "$W/shared"
code PUT $B/api/v1/fs/shared.bin "${A[@]}" -T "$W/shared" >/dev/null
t_eq "instant by challenge (bob proves alice's content)" "challenge:201:True" \
	"$("$PY" "$W/instant.py" $B bob pw-bob /got-by-proof.bin "$W/shared" right)"
t_eq "proved copy has the content" "$(sha "$W/shared")" "$("${C[@]}" "${Bo[@]}" $B/api/v1/fs/got-by-proof.bin | sha256sum | cut -c1-64)"
t_eq "wrong proof refused (403)" "challenge:403:bad_proof" \
	"$("$PY" "$W/instant.py" $B bob pw-bob /wrong-proof.bin "$W/big" wrong)"
t_eq "wrong proof stored nothing" 404 "$(code GET $B/api/v1/fs/wrong-proof.bin "${Bo[@]}")"
head -c 1000 /dev/urandom > "$W/nobody"
t_eq "unknown content: 404 send_data" "first:404:send_data" \
	"$("$PY" "$W/instant.py" $B bob pw-bob /x.bin "$W/nobody" right)"
t_eq "own content: instant 201 at once" "first:201:" \
	"$("$PY" "$W/instant.py" $B alice pw-alice /shared-again.bin "$W/shared" right)"

# ------------------------------------------------------------ two users, one blob
head -c $((1 << 20)) /dev/urandom > "$W/same"
N0=$(nblobs)
code PUT $B/api/v1/fs/mine-alice.dat "${A[@]}" -T "$W/same" >/dev/null
code PUT $B/api/v1/fs/mine-bob.dat "${Bo[@]}" -T "$W/same" >/dev/null
t_eq "bob's upload reported as dedup" True "$(json_get "$W/body" "j['dedup']")"
t_eq "same content from two users: one new blob" $((N0 + 1)) "$(nblobs)"
t_eq "alice reads her ref" "$(sha "$W/same")" "$("${C[@]}" "${A[@]}" $B/api/v1/fs/mine-alice.dat | sha256sum | cut -c1-64)"
t_eq "bob reads his ref" "$(sha "$W/same")" "$("${C[@]}" "${Bo[@]}" $B/api/v1/fs/mine-bob.dat | sha256sum | cut -c1-64)"
t_eq "bob cannot see alice's path" 404 "$(code GET $B/api/v1/fs/mine-alice.dat "${Bo[@]}")"
t_eq "alice cannot see bob's path" 404 "$(code GET $B/api/v1/fs/mine-bob.dat "${A[@]}")"
code GET $B/api/v1/fs/ "${Bo[@]}" >/dev/null
t_eq "bob's listing shows only his names" "['got-by-proof.bin', 'mine-bob.dat']" "$(json_get "$W/body" "sorted(e['name'] for e in j['entries'])")"
code DELETE $B/api/v1/fs/mine-bob.dat "${Bo[@]}" >/dev/null
t_eq "alice's ref survives bob's delete" 200 "$(code GET $B/api/v1/fs/mine-alice.dat "${A[@]}")"

# ------------------------------------------------------------ traversal
snap() { (code GET "$B/api/v1/fs/?limit=1000" "${A[@]}" >/dev/null; cat "$W/body"; find "$SD_TMP" -path "$SD_DATA" -prune -o -print | sort; nblobs) | sha256sum; }
t_eq "a literal % in a name works (%25)" 201 "$(code PUT "$B/api/v1/fs/100%25%20sure.txt" "${A[@]}" --data-binary pct)"
t_eq "and reads back" pct "$("${C[@]}" "${A[@]}" "$B/api/v1/fs/100%25%20sure.txt")"
code DELETE "$B/api/v1/fs/100%25%20sure.txt" "${A[@]}" >/dev/null
S0=$(snap)
LONG=$(printf 'n%.0s' $(seq 1 300))
for u in "../evil" "..%2fevil" "%2e%2e/evil" "%2e%2e%2fevil" "a/../../evil" "%252e%252e/evil" \
	"%252e%252e%252fevil" "..%5cevil" "a%5c..%5cevil" "a%00b" "%00" "$LONG" "d/$LONG/x" "%ff%fe" "a%zz"; do
	c=$(code PUT "$B/api/v1/fs/$u?parents=1" "${A[@]}" --data-binary evil)
	case $c in 4??) t_eq "traversal refused: $u" ok ok ;; *) t_eq "traversal refused: $u" 4xx "$c" ;; esac
done
t_eq "GET ../ refused" 400 "$(code GET "$B/api/v1/fs/../../etc/passwd" "${A[@]}")"
t_eq "move to ../ refused" 400 "$(code POST "$B/api/v1/fs/r.txt?op=move&to=../../evil" "${A[@]}")"
t_eq "move to %252e%252e refused" 400 "$(code POST "$B/api/v1/fs/r.txt?op=move&to=%252e%252e/evil" "${A[@]}")"
t_eq "traversal attempts touched nothing" "$S0" "$(snap)"

# ------------------------------------------------------------ fs operations
t_eq "mkdir" 201 "$(code POST "$B/api/v1/fs/docs?op=mkdir" "${A[@]}")"
t_eq "mkdir again: 409" 409 "$(code POST "$B/api/v1/fs/docs?op=mkdir" "${A[@]}")"
t_eq "mkdir parents" 201 "$(code POST "$B/api/v1/fs/docs/a/b/c?op=mkdir&parents=1" "${A[@]}")"
t_eq "copy (instant)" 201 "$(code POST "$B/api/v1/fs/r.txt?op=copy&to=/docs/r-copy.txt" "${A[@]}")"
t_eq "copy has same sha" "$RSHA" "$(json_get "$W/body" "j['sha256']")"
t_eq "move" 200 "$(code POST "$B/api/v1/fs/docs/r-copy.txt?op=move&to=/docs/a/moved%20file.txt" "${A[@]}")"
t_eq "moved file readable" "$RSHA" "$("${C[@]}" "${A[@]}" "$B/api/v1/fs/docs/a/moved%20file.txt" | sha256sum | cut -c1-64)"
t_eq "old name gone" 404 "$(code GET "$B/api/v1/fs/docs/r-copy.txt" "${A[@]}")"
t_eq "chmod" 200 "$(code POST "$B/api/v1/fs/r.txt?op=chmod&mode=0600" "${A[@]}")"
t_eq "chmod shows" 0600 "$(json_get "$W/body" "j['mode']")"
t_eq "unknown op: 400" 400 "$(code POST "$B/api/v1/fs/r.txt?op=frob" "${A[@]}")"
t_eq "stat" 200 "$(code GET "$B/api/v1/stat/r.txt" "${A[@]}")"
t_eq "stat sha256 and versions" "$RSHA 1 file" "$(json_get "$W/body" "j['sha256'], j['versions'], j['kind']" | tr -d "(),'")"
code PUT $B/api/v1/fs/r.txt "${A[@]}" --data-binary v2 >/dev/null
code GET "$B/api/v1/stat/r.txt" "${A[@]}" >/dev/null
t_eq "overwrite adds a version" 2 "$(json_get "$W/body" "j['versions']")"
t_eq "delete dir without recursive: 409" 409 "$(code DELETE "$B/api/v1/fs/docs" "${A[@]}")"
t_eq "delete dir recursive: 204" 204 "$(code DELETE "$B/api/v1/fs/docs?recursive=1" "${A[@]}")"
t_eq "deleted dir gone" 404 "$(code GET "$B/api/v1/fs/docs" "${A[@]}")"
t_eq "delete missing: 404" 404 "$(code DELETE "$B/api/v1/fs/nothing" "${A[@]}")"
t_eq "PUT onto a directory: 409" 409 "$(code PUT "$B/api/v1/fs/dir1" "${A[@]}" --data-binary x)"
for i in 1 2 3 4 5; do code PUT "$B/api/v1/fs/page/f$i?parents=1" "${A[@]}" --data-binary "$i" >/dev/null; done
code GET "$B/api/v1/fs/page?limit=2" "${A[@]}" >/dev/null
t_eq "listing page 1" "['f1', 'f2'] True f2" "$(json_get "$W/body" "str([e['name'] for e in j['entries']]) + ' ' + str(j['more']) + ' ' + str(j['next'])")"
code GET "$B/api/v1/fs/page?limit=10&after=f2" "${A[@]}" >/dev/null
t_eq "listing page 2" "['f3', 'f4', 'f5'] False" "$(json_get "$W/body" "str([e['name'] for e in j['entries']]) + ' ' + str(j['more'])")"
t_eq "listing entry fields" "True" "$(json_get "$W/body" "all(set(e) >= {'name','kind','size','mtime','mode','sha256'} for e in j['entries'])")"
t_eq "HEAD of missing: 404" 404 "$("${C[@]}" "${A[@]}" -I -o /dev/null -w '%{http_code}' $B/api/v1/fs/missing)"

# ------------------------------------------------------------ tokens, read-only, expiry
RW=$(sd_ctl token create alice 2>/dev/null)
RO=$(sd_ctl token create alice --scope ro 2>/dev/null)
EXP=$(sd_ctl token create alice --expires 1s 2>/dev/null)
t_eq "Bearer token GET" 200 "$(code GET $B/api/v1/fs/ -H "Authorization: Bearer $RW")"
t_eq "token as Basic password" 200 "$(code GET $B/api/v1/fs/ -u "alice:$RW")"
t_eq "Bearer token PUT" 201 "$(code PUT $B/api/v1/fs/by-token -H "Authorization: Bearer $RW" --data-binary t)"
t_eq "read-only token GET" 200 "$(code GET $B/api/v1/fs/by-token -H "Authorization: Bearer $RO")"
t_eq "read-only token refused on PUT" 403 "$(code PUT $B/api/v1/fs/ro-put -H "Authorization: Bearer $RO" --data-binary t)"
t_check "read-only refusal JSON" is_json_error
t_eq "read-only token refused on DELETE" 403 "$(code DELETE $B/api/v1/fs/by-token -H "Authorization: Bearer $RO")"
t_eq "read-only PUT stored nothing" 404 "$(code GET $B/api/v1/fs/ro-put "${A[@]}")"
# no credential outlives a change: revocation and a new password apply to
# the very next request, even right after a successful one
RV=$(sd_ctl token create alice 2>/dev/null)
t_eq "token works before revocation" 200 "$(code GET $B/api/v1/fs/ -H "Authorization: Bearer $RV")"
RVID=$(sd_ctl token list alice | awk 'END {print $1}')
sd_ctl token revoke "$RVID" >/dev/null
t_eq "revoked token refused on the next request" 401 "$(code GET $B/api/v1/fs/ -H "Authorization: Bearer $RV")"
sd_adduser erin pw-erin-1
t_eq "password works before the change" 200 "$(code GET $B/api/v1/fs/ -u erin:pw-erin-1)"
printf 'pw-erin-2\n' | sd_ctl user passwd erin --password-stdin >/dev/null
t_eq "old password refused right after the change" 401 "$(code GET $B/api/v1/fs/ -u erin:pw-erin-1)"
t_eq "new password accepted" 200 "$(code GET $B/api/v1/fs/ -u erin:pw-erin-2)"
sleep 2.2
t_eq "expired token refused" 401 "$(code GET $B/api/v1/fs/ -H "Authorization: Bearer $EXP")"
ADM=(-u root:pw-root)
t_eq "admin: create token over API" 201 "$(code POST $B/api/v1/admin/tokens "${ADM[@]}" -d '{"user":"bob","readonly":true}')"
BT=$(json_get "$W/body" "j['token']")
t_eq "admin-made read-only token works for GET" 200 "$(code GET $B/api/v1/fs/ -H "Authorization: Bearer $BT")"
t_eq "admin-made read-only token refused on PUT" 403 "$(code PUT $B/api/v1/fs/z -H "Authorization: Bearer $BT" --data-binary z)"

# ------------------------------------------------------------ quota
head -c $((2 << 20)) /dev/urandom > "$W/q"
t_eq "quota exceeded (Content-Length): 507" 507 "$(code PUT $B/api/v1/fs/q.bin -u carol:pw-carol -T "$W/q")"
t_check "507 JSON body" is_json_error
t_eq "quota exceeded (chunked): 507" 507 "$(cat "$W/q" | code PUT $B/api/v1/fs/q2.bin -u carol:pw-carol -H 'Transfer-Encoding: chunked' -T -)"
t_eq "over-quota files not stored" "404 404" "$(code GET $B/api/v1/fs/q.bin -u carol:pw-carol) $(code GET $B/api/v1/fs/q2.bin -u carol:pw-carol)"
head -c $((100 << 20)) /dev/zero | "${C[@]}" -u carol:pw-carol -o /dev/null -H 'Transfer-Encoding: chunked' -T - $B/api/v1/fs/q3.bin || true
t_eq "long body after quota error: nothing stored" 404 "$(code GET $B/api/v1/fs/q3.bin -u carol:pw-carol)"
t_check "long body after quota error: dropped at most 64 MiB, then closed" grep -q 'body after error too long' "$SD_LOG"
t_eq "within quota still works" 201 "$(code PUT $B/api/v1/fs/small -u carol:pw-carol --data-binary small)"

# ------------------------------------------------------------ FastDFS-style IDs
head -c 30000 /dev/urandom > "$W/img"
t_eq "POST /api/v1/upload" 201 "$(code POST "$B/api/v1/upload?ext=jpg" "${A[@]}" --data-binary @"$W/img" -H 'Content-Type: application/octet-stream')"
FID=$(json_get "$W/body" "j['file_id']")
URL=$(json_get "$W/body" "j['url']")
t_check "file_id shape g1/M00/xx/xx/<32 hex>.jpg" sh -c "echo '$FID' | grep -Eq '^g1/M00/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}\\.jpg\$'"
t_eq "url is /f/<file_id>" "/f/$FID" "$URL"
t_eq "GET /f/<id> without auth (public_ids)" "$(sha "$W/img")" "$("${C[@]}" "$B$URL" | sha256sum | cut -c1-64)"
t_check "/f/ Content-Type image/jpeg" sh -c "curl -s -o /dev/null -D - '$B$URL' | grep -qi '^Content-Type: image/jpeg'"
t_eq "file lives in the owner's /uploads" 200 "$(code GET "$B/api/v1/fs/uploads/$(echo "$FID" | cut -d/ -f3-)" "${A[@]}")"
t_eq "bad file id: 404" 404 "$(code GET "$B/f/g1/M00/00/00/zzzz")"
t_eq "forged id (other name): 404" 404 "$(code GET "$B/f/$(echo "$FID" | sed 's/[0-9a-f]\{4\}\.jpg$/0000.jpg/')")"

# ------------------------------------------------------------ admin
t_eq "non-admin refused on admin API" 403 "$(code GET $B/api/v1/admin/users "${A[@]}")"
t_eq "admin: list users" 200 "$(code GET $B/api/v1/admin/users "${ADM[@]}")"
t_eq "admin: users listed" "True" "$(json_get "$W/body" "{'alice','bob','carol','root'} <= {u['name'] for u in j['users']}")"
t_eq "admin: create user" 201 "$(code POST $B/api/v1/admin/users "${ADM[@]}" -d '{"name":"dave","password":"pw-dave","quota":1048576}')"
t_eq "new user logs in at once" 200 "$(code GET $B/api/v1/fs/ -u dave:pw-dave)"
t_eq "admin: disable user" 200 "$(code PATCH $B/api/v1/admin/users/dave "${ADM[@]}" -d '{"disabled":true}')"
t_eq "disabled user refused at once" 401 "$(code GET $B/api/v1/fs/ -u dave:pw-dave)"
t_eq "admin: bad JSON: 400" 400 "$(code POST $B/api/v1/admin/users "${ADM[@]}" -d '{nope')"
t_eq "admin: stats" 200 "$(code GET $B/api/v1/admin/stats "${ADM[@]}")"
t_check "admin: stats has blobs" sh -c "grep -q '\"blobs\"' '$W/body'"
t_eq "admin: tokens list" 200 "$(code GET $B/api/v1/admin/tokens "${ADM[@]}")"
t_eq "admin: gc" 200 "$(code POST "$B/api/v1/admin/gc" "${ADM[@]}")"
# storagectl --json and the admin API print the same objects (util/sdjson):
# same field names in the same order; the user list also with the same values
fields() { json_get "$1" "' '.join($2)"; }
code POST "$B/api/v1/admin/gc" "${ADM[@]}" >/dev/null
sd_ctl gc --json >"$W/ctl.json"
t_eq "same fields: POST admin/gc and storagectl gc --json" "$(fields "$W/body" j)" "$(fields "$W/ctl.json" j)"
code GET $B/api/v1/admin/stats "${ADM[@]}" >/dev/null
sd_ctl stats --json >"$W/ctl.json"
t_eq "same fields: GET admin/stats and storagectl stats --json" "$(fields "$W/body" j)" "$(fields "$W/ctl.json" j)"
code GET $B/api/v1/admin/tokens "${ADM[@]}" >/dev/null
sd_ctl token list --json >"$W/ctl.json"
t_eq "same fields: GET admin/tokens and storagectl token list --json" "$(fields "$W/body" "j['tokens'][0]")" "$(fields "$W/ctl.json" "j[0]")"
code GET $B/api/v1/admin/users "${ADM[@]}" >/dev/null
sd_ctl user list --json >"$W/ctl.json"
t_eq "same fields: GET admin/users and storagectl user list --json" "$(fields "$W/body" "j['users'][0]")" "$(fields "$W/ctl.json" "j[0]")"
t_eq "same users: GET admin/users and storagectl user list --json" "$(json_get "$W/body" "j['users']")" "$(json_get "$W/ctl.json" j)"

# ------------------------------------------------------------ metrics, HTTPS
"${C[@]}" $B/metrics > "$W/metrics"
t_check "metrics: requests by front end and status" grep -q 'storaged_requests_total{frontend="http",status="200"}' "$W/metrics"
t_check "metrics: bytes" grep -q 'storaged_bytes_received_total{frontend="http"}' "$W/metrics"
t_check "metrics: uploads by kind" grep -q 'storaged_frontend_uploads_total{frontend="http",kind="instant"}' "$W/metrics"
t_check "metrics: dedup and blobs (engine)" sh -c "grep -q '^storaged_uploads_deduplicated_total' '$W/metrics' && grep -q '^storaged_blobs ' '$W/metrics'"
t_eq "HTTPS GET, same store" "$(sha "$W/u")" "$(curl -s -k -u alice:pw-alice https://127.0.0.1:$TPORT/api/v1/fs/u.bin | sha256sum | cut -c1-64)"
t_eq "HTTPS PUT" 201 "$(curl -s -k -u alice:pw-alice -o /dev/null -w '%{http_code}' -T "$W/c" https://127.0.0.1:$TPORT/api/v1/fs/over-tls)"
t_eq "HTTPS refuses plain HTTP" 000 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://127.0.0.1:$TPORT/healthz)"

cat > "$W/limits.py" <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1])
def closed(s, wait):
    s.settimeout(wait)
    try:
        return s.recv(1) == b''
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
# per-address limit (3): the 4th connection is dropped at once
socks = [socket.create_connection(('127.0.0.1', port)) for _ in range(4)]
print('per_ip', 'ok' if closed(socks[3], 1.0) and not closed(socks[0], 0.2) else 'bad')
for s in socks:
    s.close()
time.sleep(0.3)
# idle timeout (2s): an idle connection is closed within a few seconds
# (on the TLS port a TLS alert may come first, then EOF)
s = socket.create_connection(('127.0.0.1', port))
t = time.time()
s.settimeout(6.0)
ok = False
try:
    while time.time() - t < 6.0:
        d = s.recv(64)
        if not d:
            ok = True
            break
except (socket.timeout, ConnectionResetError) as e:
    ok = isinstance(e, ConnectionResetError)
print('idle', 'ok' if ok and time.time() - t >= 1.0 else 'bad')
PYEOF
"$PY" "$W/limits.py" "$TPORT" > "$W/limits.out" 2>&1
t_eq "max_per_ip refuses the extra connection" "per_ip ok" "$(grep per_ip "$W/limits.out")"
t_eq "idle_timeout closes an idle connection" "idle ok" "$(grep idle "$W/limits.out")"

# ------------------------------------------------------------ disconnect mid-upload
cat > "$W/vanish.py" <<'PYEOF'
import base64, socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port))
auth = base64.b64encode(b'alice:pw-alice').decode()
s.sendall(('PUT /api/v1/fs/vanished.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n'
           'Content-Length: %d\r\n\r\n' % (auth, 64 << 20)).encode())
chunk = b'\xa5' * (1 << 20)
for _ in range(9):
    s.sendall(chunk)
time.sleep(0.3)
s.close()
PYEOF
"$PY" "$W/vanish.py" "$PORT"
for i in $(seq 1 100); do grep -q 'event=upload_aborted' "$SD_LOG" && break; sleep 0.05; done
t_check "server noticed the vanished client" grep -q 'event=upload_aborted' "$SD_LOG"
t_eq "vanished upload not visible" 404 "$(code GET $B/api/v1/fs/vanished.bin "${A[@]}")"
sd_ctl gc --now >/dev/null 2>&1
t_eq "no temp file left after gc" 0 "$(find "$SD_DATA/tmp" -type f 2>/dev/null | wc -l)"

# ------------------------------------------------------------ RSS during 1 GiB upload
PID=$SD_PID
rss() { awk '/^VmRSS/ {print $2}' /proc/$PID/status; }
IDLE=$(rss)
( "$PY" -c '
import sys
b = bytes(range(256)) * 4096
o = sys.stdout.buffer
for i in range(1024):
    o.write(b)
' | "${C[@]}" "${A[@]}" -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -T - $B/api/v1/fs/gig.bin > "$W/gig.code" ) &
UP=$!
MAX=$IDLE
while kill -0 $UP 2>/dev/null; do
	v=$(rss); [ "${v:-0}" -gt "$MAX" ] && MAX=$v
	sleep 0.05
done
wait $UP
t_eq "1 GiB upload" 201 "$(cat "$W/gig.code")"
DELTA=$(( (MAX - IDLE) / 1024 ))
echo "       (daemon RSS idle $((IDLE / 1024)) MiB, peak during 1 GiB upload $((MAX / 1024)) MiB, delta $DELTA MiB)"
t_check "RSS stays within 64 MiB above idle" test "$DELTA" -le 64
code GET "$B/api/v1/stat/gig.bin" "${A[@]}" >/dev/null
t_eq "1 GiB stored with the right size" $((1 << 30)) "$(json_get "$W/body" "j['size']")"
code DELETE $B/api/v1/fs/gig.bin "${A[@]}" >/dev/null

# ------------------------------------------------------------ lockout (last: blocks this address)
# auth_max_failures = 8 within auth_block_time = 5s (set above)
seq 1 16 | xargs -P 8 -I{} curl -s -o /dev/null -u mallory:wrong{} $B/api/v1/fs/
t_eq "repeated failures: 429" 429 "$(code GET $B/api/v1/fs/ -u alice:wrong)"
t_check "429 JSON body" is_json_error
t_eq "blocked even with the right password" 429 "$(code GET $B/api/v1/fs/ -u bob:pw-bob)"
sleep 5.2
t_eq "block lifts after auth_block_time" 200 "$(code GET $B/api/v1/fs/ -u bob:pw-bob)"

t_done
