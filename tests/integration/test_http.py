"""The HTTP/REST front end against the real daemon on loopback, driven by curl (python
where curl cannot express it: multipart parsing, proofs of possession, a client vanishing
mid-upload, idle and per-address limits).

Covers: 200 MiB round trip (sha256), chunked upload, every Range form incl. 416,
conditional GETs, instant upload by header (Expect: 100-continue, no body byte sent) and
by challenge (+ wrong proof), two users same content = one blob two refs and private paths,
traversal attempts refused without touching the store, wrong/expired credentials,
read-only token, lockout, disconnect mid-upload (no file, no temp after gc), quota (507,
and the bounded drop of a long body after the error), checksum mismatch, FastDFS-style
IDs, admin API, metrics, HTTPS, per-address and idle limits, header size limit,
keep-alive, and the daemon's RSS during a 1 GiB upload (sampled VmRSS, must stay within
64 MiB above idle).
"""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import (HOST, curl, daemon_scope, free_port, need, out, run, sha256_file,
                      write_random)

ALICE = ("alice", "pw-alice")
BOB = ("bob", "pw-bob")
CAROL = ("carol", "pw-carol")
ADMIN = ("root", "pw-root")


@pytest.fixture(scope="module")
def rsa_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("http-tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
             "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"])
    assert r.returncode == 0, f"openssl req: {out(r)}"
    yield cert, key
    shutil.rmtree(str(d), ignore_errors=True)


def http_sections(port, tport, cert, key):
    return {
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}",
                 "threads": "4", "public_ids": "yes"},
        "https": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{tport}",
                  "threads": "2", "idle_timeout": "2s", "max_connections": "4",
                  "max_per_ip": "3", "tls_cert": cert, "tls_key": key},
    }


@pytest.fixture(scope="module")
def httpd(rsa_cert):
    """[http] (4 threads, public_ids) and [https] (idle 2s, 4 connections, 3 per address);
    users alice, bob, carol (quota 1M) and root (admin)."""
    port, tport = free_port(), free_port()
    with daemon_scope(http_sections(port, tport, *rsa_cert), name="http") as d:
        d.base = f"http://{HOST}:{port}"
        d.tls_base = f"https://{HOST}:{tport}"
        d.tport = tport
        d.add_user(*ALICE)
        d.add_user(*BOB)
        d.add_user(*CAROL, "--quota", "1M")
        d.add_user(*ADMIN, "--admin")
        yield d


def auth(user):
    return ["-u", f"{user[0]}:{user[1]}"]


def req(d, method, path, *args, user=None, input=None, timeout=120):
    """curl -X METHOD base+path; returns a CurlResult (.code, .body, .headers, .info)."""
    a = ["-X", method, *(auth(user) if user else []), *args, d.base + path]
    return curl(*a, input=input, timeout=timeout)


def get(d, path, *args, user=ALICE):
    return curl(*(auth(user) if user else []), *args, d.base + path)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def is_json_error(r):
    try:
        j = r.json()
        return bool(j["error"] and j["message"])
    except (ValueError, KeyError, TypeError):
        return False


def metric_value(text, name_labels):
    """Value of a Prometheus sample line `name{labels} value`, or None."""
    for line in text.splitlines():
        if line.startswith(name_labels + " "):
            return float(line.split()[-1])
    return None


# ---------------------------------------------------------------- basics

def test_basics_auth_and_headers(httpd):
    d = httpd
    d.add_user("fresh", "pw-fresh")
    r = get(d, "/healthz", user=None)
    assert r.code == 200, f"healthz: {r}"
    r = get(d, "/nope", user=None)
    assert r.code == 404, f"unknown endpoint is 404: {r}"
    assert is_json_error(r), f"404 has a JSON error body: {r}"
    r = get(d, "/api/v1/fs/", user=None)
    assert r.code == 401, f"no credentials: 401: {r}"
    assert is_json_error(r), f"401 JSON body: {r}"
    assert re.match(r"Basic realm=", r.header("WWW-Authenticate") or ""), \
        f"401 names Basic realm: {r.headers!r}"
    r = get(d, "/api/v1/fs/", user=("alice", "nope"))
    assert r.code == 401, f"wrong password: 401: {r}"
    r = get(d, "/api/v1/fs/", user=("mallory", "x"))
    assert r.code == 401, f"unknown user: 401: {r}"
    r = get(d, "/api/v1/fs/", "-H", "Authorization: Bearer sdt_bogus", user=None)
    assert r.code == 401, f"bad bearer token: 401: {r}"
    r = get(d, "/api/v1/fs/", "-H", "X-Pad: " + "a" * 20000)
    assert r.code == 431, f"headers over max_header_size: 431: {r}"
    assert is_json_error(r), f"431 JSON body: {r}"
    k = run(["curl", "-s", "--path-as-is", *auth(ALICE), "-o", "/dev/null", "-o", "/dev/null",
             "-w", "%{num_connects} ", d.base + "/api/v1/fs/", d.base + "/api/v1/me"])
    assert k.stdout.strip() == "1 0", f"keep-alive: second request reuses the connection: {k.stdout!r}"
    r = get(d, "/api/v1/fs/", user=("fresh", "pw-fresh"))
    assert r.code == 200, f"root listing: {r}"
    assert len(r.json()["entries"]) == 0, f"empty root has no entries: {r.body[:300]!r}"


# ---------------------------------------------------------------- 200 MiB, instant by header

@pytest.mark.timeout(600)
def test_big_round_trip_and_instant_put_by_header(httpd):
    d = httpd
    big = write_random(d.path("big"), 200 << 20)
    bigsha = sha256_file(big)
    r = req(d, "PUT", "/api/v1/fs/big.bin", "-T", big, user=ALICE)
    assert r.code == 201, f"PUT 200 MiB: {r}"
    assert r.json()["sha256"] == bigsha, f"PUT answer has the sha256: {r.body!r}"
    r = get(d, "/api/v1/fs/big.bin")
    assert sha(r.body) == bigsha, "GET 200 MiB sha256 identical"
    r = get(d, "/api/v1/fs/big.bin", "-I")
    assert r.header("Content-Length") == str(200 << 20), f"HEAD: Content-Length: {r.headers!r}"
    assert (r.header("ETag") or "").lower() == f'"{bigsha}"', f"HEAD: ETag is the sha256: {r.headers!r}"
    assert re.match(r".* GMT$", r.header("Last-Modified") or ""), f"HEAD: Last-Modified: {r.headers!r}"

    # instant by header: the server knows the content, answers before 100 Continue
    r = req(d, "PUT", "/api/v1/fs/big-again.bin", "-T", big, "-H", f"X-Checksum-SHA256: {bigsha}",
            "-H", "Expect: 100-continue", user=ALICE)
    assert r.code == 201, f"instant PUT by header: 201: {r}"
    assert r.header("X-Instant-Upload") == "1", f"instant PUT: X-Instant-Upload: 1: {r.headers!r}"
    assert r.info.get("size_upload") == 0, f"instant PUT sent no body byte: {r.info.get('size_upload')}"
    print(f"instant 200 MiB PUT took {r.info.get('time_total')} s")
    r = get(d, "/api/v1/fs/big-again.bin")
    assert sha(r.body) == bigsha, "instant copy readable, same sha"
    # same header but content unknown: the body is read normally
    u = write_random(d.path("u"), 70000)
    r = req(d, "PUT", "/api/v1/fs/u.bin", "-T", u, "-H", f"X-Checksum-SHA256: {sha256_file(u)}",
            "-H", "Expect: 100-continue", user=ALICE)
    assert r.code == 201, f"checksum header, unknown content: normal upload: {r}"
    assert sha(get(d, "/api/v1/fs/u.bin").body) == sha256_file(u), "unknown content stored"
    os.unlink(big)


def test_chunked_put(httpd):
    d = httpd
    data = os.urandom(3 << 20 | 12345)
    r = req(d, "PUT", "/api/v1/fs/dir1/chunked.dat?parents=1", "-H", "Transfer-Encoding: chunked",
            "-T", "-", user=ALICE, input=data)
    assert r.code == 201, f"chunked PUT: {r}"
    assert sha(get(d, "/api/v1/fs/dir1/chunked.dat").body) == sha(data), "chunked content identical"
    r = req(d, "PUT", "/api/v1/fs/nodir/x", "--data-binary", "x", user=ALICE)
    assert r.code == 404, f"PUT without parents into missing dir: 404: {r}"


# ---------------------------------------------------------------- ranges

def test_ranges_and_conditional_gets(httpd):
    d = httpd
    data = os.urandom(10000)
    r = req(d, "PUT", "/api/v1/fs/r.txt", "--data-binary", "@-", user=ALICE, input=data)
    assert r.code == 201, r
    rsha = sha(data)

    def rng(spec):
        return get(d, "/api/v1/fs/r.txt", "-H", f"Range: {spec}")

    r = rng("bytes=0-99")
    assert r.code == 206, f"Range 0-99: 206: {r}"
    assert r.body == data[0:100], "Range 0-99 bytes"
    assert r.header("Content-Range") == "bytes 0-99/10000", f"Range 0-99 Content-Range: {r.headers!r}"
    r = rng("bytes=9990-")
    assert r.code == 206, f"Range 9990-: 206: {r}"
    assert r.body == data[9990:], "Range 9990- bytes"
    r = rng("bytes=-300")
    assert r.code == 206, f"Range -300 (suffix): 206: {r}"
    assert r.body == data[-300:], "Range -300 bytes"
    assert r.header("Content-Range") == "bytes 9700-9999/10000", f"Range -300 Content-Range: {r.headers!r}"
    r = rng("bytes=5000-99999")
    assert r.code == 206, f"Range 5000-99999 clamps: 206: {r}"
    assert r.body == data[5000:], "Range clamped bytes"
    r = rng("bytes=-20000")
    assert r.code == 206, f"Range -20000 (suffix > size): 206: {r}"
    assert r.body == data, "suffix > size is whole file"
    r = rng("bytes=0-0")
    assert r.code == 206, f"Range 0-0: 206: {r}"
    assert r.body == data[0:1], "Range 0-0 one byte"
    r = rng("bytes=0-9,100-199,-5")
    assert r.code == 206, f"multi-range: 206: {r}"
    ctype = r.header("Content-Type") or ""
    m = re.match(r"multipart/byteranges; boundary=([^\s;]+)", ctype)
    assert m, f"multi-range: multipart/byteranges: {ctype!r}"
    b = m.group(1).encode()
    parts = r.body.split(b"--" + b)
    got, bad = [], []
    for p in parts[1:]:
        if p.startswith(b"--"):
            break
        head, _, content = p.partition(b"\r\n\r\n")
        mm = re.search(rb"Content-Range: bytes (\d+)-(\d+)/10000", head)
        if not mm:
            bad.append(head)
            continue
        a, z = int(mm.group(1)), int(mm.group(2))
        content = content[:-2] if content.endswith(b"\r\n") else content
        if content != data[a:z + 1]:
            bad.append((a, z))
        got.append((a, z))
    assert got == [(0, 9), (100, 199), (9995, 9999)] and not bad \
        and r.body.rstrip().endswith(b"--" + b + b"--"), f"multi-range parts correct: {got} {bad}"
    r = rng("bytes=20000-30000")
    assert r.code == 416, f"Range beyond end: 416: {r}"
    assert r.header("Content-Range") == "bytes */10000", f"416 Content-Range bytes */10000: {r.headers!r}"
    r = rng("bytes=500-100")
    assert r.code == 416, f"Range last<first: 416: {r}"
    r = rng("bytes=-0")
    assert r.code == 416, f"Range suffix -0: 416: {r}"
    r = rng("items=0-5")
    assert r.code == 200, f"Range other unit ignored: 200: {r}"
    r = get(d, "/api/v1/fs/r.txt", "-H", "Range: bytes=0-9", "-H", f'If-Range: "{rsha}"')
    assert r.code == 206, f"If-Range matching ETag: 206: {r}"
    r = get(d, "/api/v1/fs/r.txt", "-H", "Range: bytes=0-9", "-H", 'If-Range: "0000"')
    assert r.code == 200 and r.body == data, f"If-Range stale ETag: 200 whole: {r}"
    r = get(d, "/api/v1/fs/r.txt", "-H", f'If-None-Match: "{rsha}"')
    assert r.code == 304, f"If-None-Match: 304: {r}"
    r = get(d, "/api/v1/fs/r.txt", "-H", 'If-None-Match: "abc"')
    assert r.code == 200, f"If-None-Match other: 200: {r}"
    r = get(d, "/api/v1/fs/r.txt", "-H", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT")
    assert r.code == 304, f"If-Modified-Since future: 304: {r}"
    r = get(d, "/api/v1/fs/r.txt", "-H", "If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT")
    assert r.code == 200, f"If-Modified-Since past: 200: {r}"
    r = get(d, "/api/v1/fs/r.txt")
    assert (r.header("Content-Type") or "").startswith("text/plain"), \
        f"Content-Type by extension: {r.headers!r}"


def test_checksum_header(httpd):
    d = httpd
    c = write_random(d.path("c"), 50000)
    r = req(d, "PUT", "/api/v1/fs/c-good", "-T", c, "-H", f"X-Checksum-SHA256: {sha256_file(c)}", user=ALICE)
    assert r.code == 201, f"X-Checksum-SHA256 good: 201: {r}"
    r = req(d, "PUT", "/api/v1/fs/c-bad", "-T", c, "-H", f"X-Checksum-SHA256: {sha(b'x')}", user=ALICE)
    assert r.code == 400, f"X-Checksum-SHA256 mismatch: 400: {r}"
    assert is_json_error(r), f"mismatch JSON error: {r}"
    r = get(d, "/api/v1/fs/c-bad")
    assert r.code == 404, f"mismatch stored nothing: {r}"


# ---------------------------------------------------------------- instant by challenge

def instant(d, user, path, data, mode="right"):
    """POST /api/v1/instant, then answer the challenge (a wrong proof if mode == "wrong").
    Returns "first:<status>:<error>" when there is no challenge, else
    "challenge:<status>:<error or instant>"."""
    hdr = {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode(),
           "Content-Type": "application/json"}

    def post(obj):
        rq = urllib.request.Request(d.base + "/api/v1/instant", data=json.dumps(obj).encode(),
                                    headers=hdr)
        try:
            with urllib.request.urlopen(rq, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    body = {"path": path, "sha256": sha(data), "size": len(data)}
    st, j = post(body)
    if st != 200:
        return f"first:{st}:{j.get('error', '')}"
    if not ("nonce" in j and isinstance(j.get("ranges"), list) and j["ranges"]):
        return f"bad challenge: {j}"
    h = hashlib.sha256(j["nonce"].encode())
    for off, ln in j["ranges"]:
        h.update(data[off:off + ln])
    proof = h.hexdigest()
    if mode == "wrong":
        proof = sha(b"not the data")
    st2, j2 = post(dict(body, nonce=j["nonce"], proof=proof))
    return f"challenge:{st2}:{j2.get('error', '') or j2.get('instant')}"


def test_instant_by_challenge_and_two_users_one_blob(httpd):
    d = httpd
    # fresh users, so that their listings hold only what this test puts there
    al, bo = ("alice2", "pw-alice2"), ("bob2", "pw-bob2")
    d.add_user(*al)
    d.add_user(*bo)
    shared = os.urandom(4 << 20)
    assert req(d, "PUT", "/api/v1/fs/shared.bin", "--data-binary", "@-", user=al, input=shared).code == 201
    other = os.urandom(4 << 20)
    assert req(d, "PUT", "/api/v1/fs/other.bin", "--data-binary", "@-", user=al, input=other).code == 201
    res = instant(d, bo, "/got-by-proof.bin", shared)
    assert res == "challenge:201:True", f"instant by challenge (bob proves alice's content): {res}"
    assert sha(get(d, "/api/v1/fs/got-by-proof.bin", user=bo).body) == sha(shared), \
        "proved copy has the content"
    res = instant(d, bo, "/wrong-proof.bin", other, mode="wrong")
    assert res == "challenge:403:bad_proof", f"wrong proof refused (403): {res}"
    r = get(d, "/api/v1/fs/wrong-proof.bin", user=bo)
    assert r.code == 404, f"wrong proof stored nothing: {r}"
    res = instant(d, bo, "/x.bin", os.urandom(1000))
    assert res == "first:404:send_data", f"unknown content: 404 send_data: {res}"
    res = instant(d, al, "/shared-again.bin", shared)
    assert res == "first:201:", f"own content: instant 201 at once: {res}"

    # two users, one blob
    same = os.urandom(1 << 20)
    n0 = d.blob_count()
    assert req(d, "PUT", "/api/v1/fs/mine-alice.dat", "--data-binary", "@-", user=al, input=same).code == 201
    r = req(d, "PUT", "/api/v1/fs/mine-bob.dat", "--data-binary", "@-", user=bo, input=same)
    assert r.json().get("dedup") is True, f"bob's upload reported as dedup: {r}"
    assert d.blob_count() == n0 + 1, f"same content from two users: one new blob ({n0} -> {d.blob_count()})"
    assert sha(get(d, "/api/v1/fs/mine-alice.dat", user=al).body) == sha(same), "alice reads her ref"
    assert sha(get(d, "/api/v1/fs/mine-bob.dat", user=bo).body) == sha(same), "bob reads his ref"
    r = get(d, "/api/v1/fs/mine-alice.dat", user=bo)
    assert r.code == 404, f"bob cannot see alice's path: {r}"
    r = get(d, "/api/v1/fs/mine-bob.dat", user=al)
    assert r.code == 404, f"alice cannot see bob's path: {r}"
    names = sorted(e["name"] for e in get(d, "/api/v1/fs/", user=bo).json()["entries"])
    assert names == ["got-by-proof.bin", "mine-bob.dat"], f"bob's listing shows only his names: {names}"
    req(d, "DELETE", "/api/v1/fs/mine-bob.dat", user=bo)
    r = get(d, "/api/v1/fs/mine-alice.dat", user=al)
    assert r.code == 200, f"alice's ref survives bob's delete: {r}"


# ---------------------------------------------------------------- traversal

def test_traversal_refused_touches_nothing(httpd):
    d = httpd
    al = ("alice3", "pw-alice3")
    d.add_user(*al)
    assert req(d, "PUT", "/api/v1/fs/r.txt", "--data-binary", "@-", user=al,
               input=os.urandom(10000)).code == 201
    r = req(d, "PUT", "/api/v1/fs/100%25%20sure.txt", "--data-binary", "pct", user=al)
    assert r.code == 201, f"a literal % in a name works (%25): {r}"
    r = get(d, "/api/v1/fs/100%25%20sure.txt", user=al)
    assert r.body == b"pct", f"and reads back: {r}"
    req(d, "DELETE", "/api/v1/fs/100%25%20sure.txt", user=al)

    def snap():
        listing = get(d, "/api/v1/fs/?limit=1000", user=al).body
        outside = []
        for dp, dns, fns in os.walk(d.tmp):
            if dp == d.tmp:
                dns[:] = [n for n in dns if os.path.join(dp, n) != d.data]
            outside += [os.path.join(dp, n) for n in dns + fns]
        return listing, sorted(outside), d.blob_count()

    s0 = snap()
    long = "n" * 300
    # refused before anything is touched: double encoding, backslashes,
    # NUL, bad escapes, bad UTF-8, overlong names
    for u in ("%252e%252e/evil", "%252e%252e%252fevil", "..%5cevil", "a%5c..%5cevil", "a%00b",
              "%00", long, f"d/{long}/x", "%ff%fe", "a%zz"):
        r = req(d, "PUT", f"/api/v1/fs/{u}?parents=1", "--data-binary", "evil", user=al)
        assert 400 <= r.code <= 499, f"bad path refused: {u}: {r.code}"
    r = req(d, "POST", "/api/v1/fs/r.txt?op=move&to=%252e%252e/evil", user=al)
    assert r.code == 400, f"move to %252e%252e refused: {r}"
    assert snap() == s0, "refused paths touched nothing"
    # ".." at the root stays at the root (the engine's resolver, as in FTP
    # and SFTP): each of these names alice's own /evil, and nothing outside
    # her tree can be reached
    for u in ("../evil", "..%2fevil", "%2e%2e/evil", "%2e%2e%2fevil", "a/../../evil"):
        r = req(d, "PUT", f"/api/v1/fs/{u}?parents=1", "--data-binary", "evil", user=al)
        assert r.code in (200, 201) and r.json()["path"] == "/evil", \
            f"{u} is /evil of the user's own tree: {r.code} {r.body[:200]!r}"
    r = get(d, "/api/v1/fs/../../etc/passwd", user=al)
    assert r.code == 404, f"GET ../../etc/passwd is the user's own /etc/passwd (absent): {r}"
    r = req(d, "POST", "/api/v1/fs/r.txt?op=move&to=../../moved", user=al)
    assert r.code == 200 and r.json()["path"] == "/moved", f"move to ../../moved is /moved: {r}"
    s1 = snap()
    assert s1[1] == s0[1], f"nothing outside the data directory changed: {s0[1]} -> {s1[1]}"
    names = sorted(e["name"] for e in json.loads(s1[0])["entries"])
    assert names == ["evil", "moved"], f"the user's tree holds exactly the two names: {names}"


# ---------------------------------------------------------------- fs operations

def test_fs_operations(httpd):
    d = httpd
    al = ("alice4", "pw-alice4")
    d.add_user(*al)
    data = os.urandom(10000)
    rsha = sha(data)
    assert req(d, "PUT", "/api/v1/fs/r.txt", "--data-binary", "@-", user=al, input=data).code == 201
    assert req(d, "PUT", "/api/v1/fs/dir1/x?parents=1", "--data-binary", "x", user=al).code == 201
    r = req(d, "POST", "/api/v1/fs/docs?op=mkdir", user=al)
    assert r.code == 201, f"mkdir: {r}"
    r = req(d, "POST", "/api/v1/fs/docs?op=mkdir", user=al)
    assert r.code == 409, f"mkdir again: 409: {r}"
    r = req(d, "POST", "/api/v1/fs/docs/a/b/c?op=mkdir&parents=1", user=al)
    assert r.code == 201, f"mkdir parents: {r}"
    r = req(d, "POST", "/api/v1/fs/r.txt?op=copy&to=/docs/r-copy.txt", user=al)
    assert r.code == 201, f"copy (instant): {r}"
    assert r.json()["sha256"] == rsha, f"copy has same sha: {r}"
    r = req(d, "POST", "/api/v1/fs/docs/r-copy.txt?op=move&to=/docs/a/moved%20file.txt", user=al)
    assert r.code == 200, f"move: {r}"
    assert sha(get(d, "/api/v1/fs/docs/a/moved%20file.txt", user=al).body) == rsha, "moved file readable"
    r = get(d, "/api/v1/fs/docs/r-copy.txt", user=al)
    assert r.code == 404, f"old name gone: {r}"
    r = req(d, "POST", "/api/v1/fs/r.txt?op=chmod&mode=0600", user=al)
    assert r.code == 200, f"chmod: {r}"
    assert r.json()["mode"] == "0600", f"chmod shows: {r}"
    r = req(d, "POST", "/api/v1/fs/r.txt?op=frob", user=al)
    assert r.code == 400, f"unknown op: 400: {r}"
    r = get(d, "/api/v1/stat/r.txt", user=al)
    assert r.code == 200, f"stat: {r}"
    j = r.json()
    assert (j["sha256"], j["versions"], j["kind"]) == (rsha, 1, "file"), f"stat sha256 and versions: {j}"
    req(d, "PUT", "/api/v1/fs/r.txt", "--data-binary", "v2", user=al)
    j = get(d, "/api/v1/stat/r.txt", user=al).json()
    assert j["versions"] == 2, f"overwrite adds a version: {j}"
    r = req(d, "DELETE", "/api/v1/fs/docs", user=al)
    assert r.code == 409 and r.json()["error"] == "not_empty", f"rmdir of a full dir: 409: {r}"
    assert get(d, "/api/v1/fs/docs", user=al).code == 200, "and nothing was deleted"
    r = req(d, "POST", "/api/v1/fs/docs/empty?op=mkdir", user=al)
    assert r.code == 201, f"mkdir: {r}"
    r = req(d, "DELETE", "/api/v1/fs/docs/empty", user=al)
    assert r.code == 204, f"an empty dir goes without ?recursive=1 (rmdir): {r}"
    assert get(d, "/api/v1/stat/docs/empty", user=al).code == 404, "gone"
    req(d, "PUT", "/api/v1/fs/nr1.txt", "--data-binary", "one", user=al)
    req(d, "PUT", "/api/v1/fs/nr2.txt", "--data-binary", "two", user=al)
    r = req(d, "POST", "/api/v1/fs/nr1.txt?op=move&to=/nr2.txt&noreplace=1", user=al)
    assert r.code == 409 and r.json()["error"] == "exists", f"noreplace onto a file: {r}"
    assert get(d, "/api/v1/fs/nr2.txt", user=al).body == b"two", "target untouched"
    r = req(d, "POST", "/api/v1/fs/nr1.txt?op=move&to=/nr3.txt&noreplace=1", user=al)
    assert r.code == 200, f"noreplace onto nothing: {r}"
    r = req(d, "DELETE", "/api/v1/fs/r.txt?dir=1", user=al)
    assert r.code == 409 and r.json()["error"] == "not_a_directory", f"?dir=1 on a file: {r}"
    assert get(d, "/api/v1/stat/r.txt", user=al).code == 200, "the file stays"
    r = req(d, "DELETE", "/api/v1/fs/docs?dir=1", user=al)
    assert r.code == 409 and r.json()["error"] == "not_empty", f"?dir=1 on a full dir: {r}"
    r = req(d, "POST", "/api/v1/fs/r.txt?op=mtime&mtime=1700000000", user=al)
    assert r.code == 200 and r.json()["mtime"] == 1700000000, f"op=mtime: {r}"
    for bad in ("", "-5", "12x"):
        r = req(d, "POST", f"/api/v1/fs/r.txt?op=mtime&mtime={bad}", user=al)
        assert r.code == 400, f"op=mtime with {bad!r}: 400: {r}"
    assert get(d, "/api/v1/stat/r.txt", user=al).json()["mtime"] == 1700000000, "kept"
    me = get(d, "/api/v1/me", user=al).json()
    assert me["disk_total"] >= me["disk_free"] > 0, f"/me has disk_total: {me}"
    r = req(d, "DELETE", "/api/v1/fs/docs?recursive=1", user=al)
    assert r.code == 204, f"delete dir recursive: 204: {r}"
    r = get(d, "/api/v1/fs/docs", user=al)
    assert r.code == 404, f"deleted dir gone: {r}"
    r = req(d, "DELETE", "/api/v1/fs/nothing", user=al)
    assert r.code == 404, f"delete missing: 404: {r}"
    r = req(d, "PUT", "/api/v1/fs/dir1", "--data-binary", "x", user=al)
    assert r.code == 409, f"PUT onto a directory: 409: {r}"
    for i in range(1, 6):
        req(d, "PUT", f"/api/v1/fs/page/f{i}?parents=1", "--data-binary", str(i), user=al)
    j = get(d, "/api/v1/fs/page?limit=2", user=al).json()
    assert ([e["name"] for e in j["entries"]], j["more"], j["next"]) == (["f1", "f2"], True, "f2"), \
        f"listing page 1: {j}"
    j = get(d, "/api/v1/fs/page?limit=10&after=f2", user=al).json()
    assert ([e["name"] for e in j["entries"]], j["more"]) == (["f3", "f4", "f5"], False), f"listing page 2: {j}"
    assert all(set(e) >= {"name", "kind", "size", "mtime", "mode", "sha256"} for e in j["entries"]), \
        f"listing entry fields: {j}"
    r = get(d, "/api/v1/fs/missing", "-I", user=al)
    assert r.code == 404, f"HEAD of missing: 404: {r}"


# ---------------------------------------------------------------- credentials

def test_tokens_readonly_revocation_expiry(httpd):
    d = httpd
    rw = d.token("alice")
    ro = d.token("alice", "--scope", "ro")
    exp = d.token("alice", "--expires", "1s")
    t_exp = time.time()

    def bearer(t):
        return ["-H", f"Authorization: Bearer {t}"]

    r = get(d, "/api/v1/fs/", *bearer(rw), user=None)
    assert r.code == 200, f"Bearer token GET: {r}"
    r = get(d, "/api/v1/fs/", user=("alice", rw))
    assert r.code == 200, f"token as Basic password: {r}"
    r = req(d, "PUT", "/api/v1/fs/by-token", *bearer(rw), "--data-binary", "t")
    assert r.code == 201, f"Bearer token PUT: {r}"
    r = get(d, "/api/v1/fs/by-token", *bearer(ro), user=None)
    assert r.code == 200, f"read-only token GET: {r}"
    r = req(d, "PUT", "/api/v1/fs/ro-put", *bearer(ro), "--data-binary", "t")
    assert r.code == 403, f"read-only token refused on PUT: {r}"
    assert is_json_error(r), f"read-only refusal JSON: {r}"
    r = req(d, "DELETE", "/api/v1/fs/by-token", *bearer(ro))
    assert r.code == 403, f"read-only token refused on DELETE: {r}"
    r = get(d, "/api/v1/fs/ro-put")
    assert r.code == 404, f"read-only PUT stored nothing: {r}"
    # no credential outlives a change: revocation and a new password apply to the very
    # next request, even right after a successful one
    rv = d.token("alice")
    r = get(d, "/api/v1/fs/", *bearer(rv), user=None)
    assert r.code == 200, f"token works before revocation: {r}"
    rvid = d.ctl("token", "list", "alice").stdout.strip().splitlines()[-1].split()[0]
    d.ctl("token", "revoke", rvid)
    r = get(d, "/api/v1/fs/", *bearer(rv), user=None)
    assert r.code == 401, f"revoked token refused on the next request: {r}"
    d.add_user("erin", "pw-erin-1")
    r = get(d, "/api/v1/fs/", user=("erin", "pw-erin-1"))
    assert r.code == 200, f"password works before the change: {r}"
    d.ctl("user", "passwd", "erin", "--password-stdin", input="pw-erin-2\n")
    r = get(d, "/api/v1/fs/", user=("erin", "pw-erin-1"))
    assert r.code == 401, f"old password refused right after the change: {r}"
    r = get(d, "/api/v1/fs/", user=("erin", "pw-erin-2"))
    assert r.code == 200, f"new password accepted: {r}"
    time.sleep(max(0.0, 2.2 - (time.time() - t_exp)))
    r = get(d, "/api/v1/fs/", *bearer(exp), user=None)
    assert r.code == 401, f"expired token refused: {r}"
    r = req(d, "POST", "/api/v1/admin/tokens", "-d", '{"user":"bob","readonly":true}', user=ADMIN)
    assert r.code == 201, f"admin: create token over API: {r}"
    bt = r.json()["token"]
    r = get(d, "/api/v1/fs/", *bearer(bt), user=None)
    assert r.code == 200, f"admin-made read-only token works for GET: {r}"
    r = req(d, "PUT", "/api/v1/fs/z", *bearer(bt), "--data-binary", "z")
    assert r.code == 403, f"admin-made read-only token refused on PUT: {r}"


# ---------------------------------------------------------------- quota

def test_quota(httpd):
    d = httpd
    q = write_random(d.path("q"), 2 << 20)
    r = req(d, "PUT", "/api/v1/fs/q.bin", "-T", q, user=CAROL)
    assert r.code == 507, f"quota exceeded (Content-Length): 507: {r}"
    assert is_json_error(r), f"507 JSON body: {r}"
    with open(q, "rb") as f:
        r = req(d, "PUT", "/api/v1/fs/q2.bin", "-H", "Transfer-Encoding: chunked", "-T", "-",
                user=CAROL, input=f.read())
    assert r.code == 507, f"quota exceeded (chunked): 507: {r}"
    codes = (get(d, "/api/v1/fs/q.bin", user=CAROL).code, get(d, "/api/v1/fs/q2.bin", user=CAROL).code)
    assert codes == (404, 404), f"over-quota files not stored: {codes}"
    toolong = "body after error too long"
    n0 = d.log_count(toolong)
    req(d, "PUT", "/api/v1/fs/q3.bin", "-H", "Transfer-Encoding: chunked", "-T", "-",
        user=CAROL, input=bytes(100 << 20))
    r = get(d, "/api/v1/fs/q3.bin", user=CAROL)
    assert r.code == 404, f"long body after quota error: nothing stored: {r}"
    assert d.wait_log(toolong, count=n0 + 1) > n0, \
        "long body after quota error: dropped at most 64 MiB, then closed (log says so)"
    r = req(d, "PUT", "/api/v1/fs/small", "--data-binary", "small", user=CAROL)
    assert r.code == 201, f"within quota still works: {r}"


# ---------------------------------------------------------------- FastDFS-style IDs

def test_fastdfs_style_ids(httpd):
    d = httpd
    img = os.urandom(30000)
    r = req(d, "POST", "/api/v1/upload?ext=jpg", "--data-binary", "@-", "-H",
            "Content-Type: application/octet-stream", user=ALICE, input=img)
    assert r.code == 201, f"POST /api/v1/upload: {r}"
    fid, url = r.json()["file_id"], r.json()["url"]
    assert re.fullmatch(r"g1/M00/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}\.jpg", fid), \
        f"file_id shape g1/M00/xx/xx/<32 hex>.jpg: {fid}"
    assert url == f"/f/{fid}", f"url is /f/<file_id>: {url}"
    r = get(d, url, user=None)
    assert sha(r.body) == sha(img), f"GET /f/<id> without auth (public_ids): {r}"
    assert (r.header("Content-Type") or "").startswith("image/jpeg"), f"/f/ Content-Type image/jpeg: {r.headers!r}"
    r = get(d, "/api/v1/fs/uploads/" + fid.split("/", 2)[2])
    assert r.code == 200, f"file lives in the owner's /uploads: {r}"
    r = get(d, "/f/g1/M00/00/00/zzzz", user=None)
    assert r.code == 404, f"bad file id: 404: {r}"
    forged = re.sub(r"[0-9a-f]{4}\.jpg$", "0000.jpg", fid)
    r = get(d, f"/f/{forged}", user=None)
    assert r.code == 404, f"forged id (other name): 404: {r}"


# ---------------------------------------------------------------- admin

def test_admin_api(httpd):
    d = httpd
    r = get(d, "/api/v1/admin/users", user=ALICE)
    assert r.code == 403, f"non-admin refused on admin API: {r}"
    r = get(d, "/api/v1/admin/users", user=ADMIN)
    assert r.code == 200, f"admin: list users: {r}"
    names = {u["name"] for u in r.json()["users"]}
    assert {"alice", "bob", "carol", "root"} <= names, f"admin: users listed: {names}"
    r = req(d, "POST", "/api/v1/admin/users", "-d", '{"name":"dave","password":"pw-dave","quota":1048576}',
            user=ADMIN)
    assert r.code == 201, f"admin: create user: {r}"
    r = get(d, "/api/v1/fs/", user=("dave", "pw-dave"))
    assert r.code == 200, f"new user logs in at once: {r}"
    r = req(d, "PATCH", "/api/v1/admin/users/dave", "-d", '{"disabled":true}', user=ADMIN)
    assert r.code == 200, f"admin: disable user: {r}"
    r = get(d, "/api/v1/fs/", user=("dave", "pw-dave"))
    assert r.code == 401, f"disabled user refused at once: {r}"
    r = req(d, "POST", "/api/v1/admin/users", "-d", "{nope", user=ADMIN)
    assert r.code == 400, f"admin: bad JSON: 400: {r}"
    r = get(d, "/api/v1/admin/stats", user=ADMIN)
    assert r.code == 200, f"admin: stats: {r}"
    assert b'"blobs"' in r.body, f"admin: stats has blobs: {r}"
    r = get(d, "/api/v1/admin/tokens", user=ADMIN)
    assert r.code == 200, f"admin: tokens list: {r}"
    r = req(d, "POST", "/api/v1/admin/gc", user=ADMIN)
    assert r.code == 200, f"admin: gc: {r}"


# ---------------------------------------------------------------- metrics, HTTPS, limits

def test_metrics(httpd):
    d = httpd
    # the traffic the counters below count: a 200, an upload, an instant upload
    data = os.urandom(5000)
    assert get(d, "/healthz", user=None).code == 200
    assert req(d, "PUT", "/api/v1/fs/metrics.bin", "--data-binary", "@-", user=ALICE, input=data).code == 201
    assert req(d, "PUT", "/api/v1/fs/metrics2.bin", "--data-binary", "@-", "-H",
               f"X-Checksum-SHA256: {sha(data)}", "-H", "Expect: 100-continue",
               user=ALICE, input=data).code == 201
    m = get(d, "/metrics", user=ADMIN).text  # metrics = token (the default): an admin's
    assert (metric_value(m, 'storaged_requests_total{frontend="http",status="200"}') or 0) >= 1, \
        "metrics: requests by front end and status"
    assert (metric_value(m, 'storaged_bytes_received_total{frontend="http"}') or 0) >= 5000, \
        "metrics: bytes"
    assert (metric_value(m, 'storaged_frontend_uploads_total{frontend="http",kind="instant"}') or 0) >= 1, \
        "metrics: uploads by kind"
    assert re.search(r"^storaged_uploads_deduplicated_total", m, re.M) and \
        re.search(r"^storaged_blobs ", m, re.M), "metrics: dedup and blobs (engine)"


def test_https_and_its_limits(httpd):
    d = httpd
    u = os.urandom(70000)
    assert req(d, "PUT", "/api/v1/fs/https-u.bin", "--data-binary", "@-", user=ALICE, input=u).code == 201
    r = curl("-k", *auth(ALICE), d.tls_base + "/api/v1/fs/https-u.bin")
    assert r.code == 200 and sha(r.body) == sha(u), f"HTTPS GET, same store: {r}"
    c = write_random(d.path("c-tls"), 50000)
    r = curl("-k", *auth(ALICE), "-T", c, d.tls_base + "/api/v1/fs/over-tls")
    assert r.code == 201, f"HTTPS PUT: {r}"
    r = curl("--max-time", "3", f"http://{HOST}:{d.tport}/healthz")
    assert r.code == 0, f"HTTPS refuses plain HTTP: {r}"
    time.sleep(0.3)

    def closed(s, wait):
        s.settimeout(wait)
        try:
            return s.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    # per-address limit (3): the 4th connection is dropped at once
    socks = [socket.create_connection((HOST, d.tport)) for _ in range(4)]
    fourth, first = closed(socks[3], 1.0), closed(socks[0], 0.2)
    for s in socks:
        s.close()
    assert fourth and not first, \
        f"max_per_ip refuses the extra connection (4th closed {fourth}, 1st closed {first})"
    time.sleep(0.3)
    # idle timeout (2s): an idle connection is closed within a few seconds (on the TLS
    # port a TLS alert may come first, then EOF)
    s = socket.create_connection((HOST, d.tport))
    t = time.time()
    s.settimeout(6.0)
    ok = False
    try:
        while time.time() - t < 6.0:
            if not s.recv(64):
                ok = True
                break
    except (socket.timeout, ConnectionResetError) as e:
        ok = isinstance(e, ConnectionResetError)
    waited = time.time() - t
    s.close()
    assert ok and waited >= 1.0, f"idle_timeout closes an idle connection (ok={ok}, after {waited:.1f}s)"


def test_client_vanishes_mid_upload(httpd):
    d = httpd
    n0 = d.log_count("event=upload_aborted")
    s = socket.create_connection((HOST, int(d.base.rsplit(":", 1)[1])))
    a = base64.b64encode(b"alice:pw-alice").decode()
    s.sendall(("PUT /api/v1/fs/vanished.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
               "Content-Length: %d\r\n\r\n" % (a, 64 << 20)).encode())
    chunk = b"\xa5" * (1 << 20)
    for _ in range(9):
        s.sendall(chunk)
    time.sleep(0.3)
    s.close()
    # (run.sh grepped the whole log, so an earlier aborted upload satisfied it; now the
    # abort must be a new line)
    assert d.wait_log("event=upload_aborted", count=n0 + 1) > n0, "server noticed the vanished client"
    r = get(d, "/api/v1/fs/vanished.bin")
    assert r.code == 404, f"vanished upload not visible: {r}"
    d.ctl("gc", "--now", check=False)
    assert d.tmp_files() == [], f"no temp file left after gc: {d.tmp_files()}"


@pytest.mark.timeout(600)
def test_rss_during_1gib_upload(httpd):
    d = httpd
    idle = peak = d.rss_kb()
    need("curl")
    p = subprocess.Popen(["curl", "-s", "--path-as-is", *auth(ALICE), "-o", "/dev/null", "-w",
                          "%{http_code}", "-H", "Transfer-Encoding: chunked", "-T", "-",
                          d.base + "/api/v1/fs/gig.bin"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed():
        b = bytes(range(256)) * 4096
        try:
            for _ in range(1024):
                p.stdin.write(b)
        finally:
            p.stdin.close()

    th = threading.Thread(target=feed)
    th.start()
    while p.poll() is None:
        peak = max(peak, d.rss_kb())
        time.sleep(0.05)
    th.join()
    code = p.stdout.read().decode()
    p.stdout.close()
    p.stderr.close()
    assert code == "201", f"1 GiB upload: {code}"
    delta = (peak - idle) // 1024
    print(f"daemon RSS idle {idle // 1024} MiB, peak during 1 GiB upload {peak // 1024} MiB, delta {delta} MiB")
    assert delta <= 64, f"RSS stays within 64 MiB above idle (idle {idle} kB, peak {peak} kB)"
    j = get(d, "/api/v1/stat/gig.bin").json()
    assert j["size"] == 1 << 30, f"1 GiB stored with the right size: {j}"
    req(d, "DELETE", "/api/v1/fs/gig.bin", user=ALICE)


# ---------------------------------------------------------------- lockout

def test_lockout_after_repeated_failures(make_daemon, rsa_cert):
    """Lockout after 8 failures within 10s (the engine serialises failed logins, journal +
    delay: under a load of 12 on 2 cores one took 0.5-1.4 s with durability full, so the
    window is wide and the commits skip fsync); its own daemon, since it blocks this
    address."""
    port = free_port()
    d = make_daemon(http_sections(port, free_port(), *rsa_cert),
                    storaged={"auth_max_failures": "8", "auth_block_time": "10s",
                              "durability": "normal"}, name="http-lock")
    d.base = f"http://{HOST}:{port}"
    d.add_user(*ALICE)
    d.add_user(*BOB)
    procs = []
    for i in range(1, 17):
        procs.append(subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-u", f"mallory:wrong{i}",
                                       d.base + "/api/v1/fs/"]))
        if len(procs) >= 8:
            procs.pop(0).wait(timeout=60)
    for p in procs:
        p.wait(timeout=60)
    r = get(d, "/api/v1/fs/", user=("alice", "wrong"))
    assert r.code == 429, f"repeated failures: 429: {r}"
    assert is_json_error(r), f"429 JSON body: {r}"
    r = get(d, "/api/v1/fs/", user=BOB)
    assert r.code == 429, f"blocked even with the right password: {r}"
    time.sleep(10.2)
    r = get(d, "/api/v1/fs/", user=BOB)
    assert r.code == 200, f"block lifts after auth_block_time: {r}"


# ---------------------------------------------------------------- partial PUT
# PUT with Content-Range is a partial PUT now: test_resumable.py.

# ---------------------------------------------------------------- .. inside the tree and past the root

def tree_of(d, user, top=""):
    """{path: kind} of the user's whole tree, from the listings."""
    out, todo = {}, [top]
    while todo:
        p = todo.pop()
        j = get(d, f"/api/v1/fs/{p}?limit=1000", user=user).json()
        for e in j["entries"]:
            q = f"{p}/{e['name']}"
            out[q] = e["kind"]
            if e["kind"] == "dir":
                todo.append(q)
    return out


def test_dotdot_inside_the_tree_and_past_the_root(httpd):
    d = httpd
    al = ("dotty", "pw-dotty")
    d.add_user(*al)
    for p in ("a/c", "a/bb/c", "a/bb/x", "c"):
        assert req(d, "PUT", f"/api/v1/fs/{p}?parents=1", "--data-binary", p, user=al).code == 201
    t0 = tree_of(d, al)
    r = req(d, "DELETE", "/api/v1/fs/a/bb/../c", user=al)
    assert r.code == 204, f"DELETE a/bb/../c: {r}"
    t1 = tree_of(d, al)
    assert t1 == {k: v for k, v in t0.items() if k != "/a/c"}, f"removed /a/c only: {t1}"
    r = get(d, "/api/v1/fs/a/bb/..", user=al)
    assert r.code == 200 and r.json()["path"] == "/a", f"GET a/bb/.. lists /a: {r}"
    r = get(d, "/api/v1/stat/a/./bb//x", user=al)
    assert r.code == 200 and r.json()["path"] == "/a/bb/x", f"stat a/./bb//x: {r}"
    r = req(d, "POST", "/api/v1/fs/a/bb/x?op=move&to=/a/bb/../x", user=al)
    assert r.code == 200 and r.json()["path"] == "/a/x", f"move to /a/bb/../x: /a/x: {r}"
    t2 = tree_of(d, al)
    want = {k: v for k, v in t1.items() if k != "/a/bb/x"}
    want["/a/x"] = "file"
    assert t2 == want, f"the move made /a/x: {t2}"
    r = req(d, "DELETE", "/api/v1/fs/../c", user=al)
    assert r.code == 204, f"DELETE ../c clamps at the root: {r}"
    t3 = tree_of(d, al)
    assert t3 == {k: v for k, v in t2.items() if k != "/c"}, f"DELETE ../c removed /c only: {t3}"
    content = b"instant content"
    assert req(d, "PUT", "/api/v1/fs/a/src", "--data-binary", "@-", user=al, input=content).code == 201
    r = req(d, "POST", "/api/v1/instant", "-H", "Content-Type: application/json", "-d",
            json.dumps({"path": "../../x", "sha256": sha(content), "size": len(content)}), user=al)
    assert r.code == 201 and r.json()["path"] == "/x", f"instant with path ../../x stores /x: {r}"
    assert get(d, "/api/v1/fs/x", user=al).body == content, "/x holds the content"


# ---------------------------------------------------------------- methods, routes, bad arguments

def test_methods_routes_and_bad_arguments(httpd):
    d = httpd
    r = req(d, "PATCH", "/api/v1/fs/x", user=ALICE)
    assert r.code == 405 and r.header("Allow") == "GET, HEAD, PUT, DELETE, POST", \
        f"PATCH on the files route: 405 with Allow: {r} {r.headers!r}"
    assert is_json_error(r), f"405 JSON body: {r}"
    r = req(d, "POST", "/api/v1/me", user=ALICE)
    assert r.code == 405 and r.header("Allow") == "GET, HEAD", f"POST /api/v1/me: 405: {r}"
    r = get(d, "/api/nope", user=None)
    assert r.code == 401, f"/api/nope without credentials: 401: {r}"
    r = get(d, "/api/nope", user=ALICE)
    assert r.code == 404 and is_json_error(r), f"/api/nope with credentials: 404: {r}"
    r = get(d, "/api/v1/fs/?after=%ff", user=ALICE)
    assert r.code == 400 and is_json_error(r), f"?after=%ff (not UTF-8): 400: {r}"
    basic = base64.b64encode(b"ali\x01ce:pw-alice").decode()
    r = get(d, "/api/v1/fs/", "-H", f"Authorization: Basic {basic}", user=None)
    assert r.code == 401, f"a Basic user name with \\x01: 401: {r}"


# ---------------------------------------------------------------- file ids

def test_file_ids_without_public_ids(httpd):
    """The [https] section has public_ids = no: an id names a file only for its owner and
    admins."""
    d = httpd
    own, other = ("idowner", "pw-idowner"), ("idother", "pw-idother")
    d.add_user(*own)
    d.add_user(*other)
    img = os.urandom(20000)
    r = req(d, "POST", "/api/v1/upload?ext=png", "--data-binary", "@-", user=own, input=img)
    assert r.code == 201, f"upload: {r}"
    url = d.tls_base + r.json()["url"]
    for who, code in ((own, 200), (other, 404), (ADMIN, 200), (None, 401)):
        r = curl("-k", *(auth(who) if who else []), url)
        assert r.code == code, f"/f/<id> without public_ids as {who and who[0]}: {code}: {r}"
        if code == 200:
            assert r.body == img, f"{who[0]} reads the content"
    d.ctl("user", "disable", "idowner")
    try:
        r = curl("-k", *auth(ADMIN), url)
        assert r.code == 404, f"the owner disabled: 404 even for an admin: {r}"
    finally:
        d.ctl("user", "enable", "idowner")


def test_instant_upload_by_header_on_the_id_route(httpd):
    d = httpd
    data = os.urandom(50000)
    assert req(d, "PUT", "/api/v1/fs/id-src.bin", "--data-binary", "@-", user=ALICE, input=data).code == 201
    r = req(d, "POST", "/api/v1/upload?ext=bin", "--data-binary", "@-", "-H", "Expect:", "-H",
            f"X-Checksum-SHA256: {sha(data)}", user=ALICE, input=data)
    assert r.code == 201 and r.header("X-Instant-Upload") == "1", f"instant by header: {r}"
    j = r.json()
    assert re.fullmatch(r"g1/M00/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}\.bin", j.get("file_id", "")), \
        f"the answer has the file_id: {j}"
    assert r.header("Location") == j["url"] and r.header("ETag") == f'"{sha(data)}"', \
        f"the headers of an ID upload (Location, ETag), as with Expect: {r.headers!r}"
    assert get(d, j["url"], user=None).body == data, "and the id reads the content"
    # the same on the files route: the body is read and dropped, the answer is the one an
    # instant hit gets before the body
    r = req(d, "PUT", "/api/v1/fs/id-src-again.bin", "--data-binary", "@-", "-H", "Expect:", "-H",
            f"X-Checksum-SHA256: {sha(data)}", user=ALICE, input=data)
    assert r.code == 201 and r.header("X-Instant-Upload") == "1" and \
        r.header("ETag") == f'"{sha(data)}"' and r.json()["instant"] is True, \
        f"PUT, instant hit without Expect: {r} {r.headers!r}"


def test_chunked_upload_killed_midway(httpd):
    d = httpd
    n0 = d.log_count("event=upload_aborted")
    s = socket.create_connection((HOST, int(d.base.rsplit(":", 1)[1])))
    a = base64.b64encode(b"alice:pw-alice").decode()
    s.sendall(("PUT /api/v1/fs/chunked-killed.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % a).encode())
    for _ in range(6):
        s.sendall(b"100000\r\n" + b"\x5a" * 0x100000 + b"\r\n")
    time.sleep(0.3)
    s.close()
    assert d.wait_log("event=upload_aborted", count=n0 + 1) > n0, "the server logs upload_aborted"
    assert get(d, "/api/v1/fs/chunked-killed.bin").code == 404, "nothing visible"
    d.ctl("gc", "--now", check=False)
    assert d.tmp_files() == [], f"no temp file after gc: {d.tmp_files()}"


# ---------------------------------------------------------------- storagectl --json == admin API

def test_storagectl_json_agrees_with_the_admin_api(httpd):
    """The storagectl split serialises engine types with the admin API's code (util/sdjson):
    same field names in the same order, and the same values where nothing moves between
    the two calls."""
    d = httpd
    d.token("bob", "--scope", "ro", "--expires", "1h")
    api_users = get(d, "/api/v1/admin/users", user=ADMIN).json()["users"]
    ctl_users = d.ctl_json("user", "list", "--json")
    assert api_users == ctl_users and [list(u) for u in api_users] == [list(u) for u in ctl_users], \
        f"users: same list, same fields in the same order:\n{api_users}\n{ctl_users}"
    api_tok = get(d, "/api/v1/admin/tokens", user=ADMIN).json()["tokens"]
    ctl_tok = d.ctl_json("token", "list", "--json")
    assert api_tok and [list(t) for t in api_tok] == [list(t) for t in ctl_tok], \
        f"tokens: same fields in the same order:\n{api_tok[:2]}\n{ctl_tok[:2]}"
    assert api_tok == ctl_tok, "tokens: same values"
    api_stats = get(d, "/api/v1/admin/stats", user=ADMIN).json()
    ctl_stats = d.ctl_json("stats", "--json")
    assert list(api_stats) == list(ctl_stats), f"stats: same fields in the same order: {api_stats} {ctl_stats}"
    assert {k: api_stats[k] for k in ("users", "files", "blobs")} == \
        {k: ctl_stats[k] for k in ("users", "files", "blobs")}, "stats: same counts"
    r = req(d, "POST", "/api/v1/admin/gc", user=ADMIN)
    ctl_gc = d.ctl_json("gc", "--json")
    assert r.code == 200 and list(r.json()) == list(ctl_gc), f"gc: same fields in the same order: {r} {ctl_gc}"


# ---------------------------------------------------------------- credentials re-checked

def test_credentials_change_under_keepalive_and_uploads(httpd):
    """Disable a user, change a password, revoke a token while a keep-alive connection is
    open and an upload is streaming: the next request on the connection gets 401 (every
    request authenticates), the upload in flight is not committed (its commit re-checks
    the credentials of the session that began it: 401), other users go on."""
    d = httpd
    users = {"hdis": "pw-hdis", "hpw": "pw-hpw", "htok": "pw-htok", "hother": "pw-hother"}
    for u, p in users.items():
        d.add_user(u, p)
    tok = d.token("htok")
    tok_id = d.ctl_json("token", "list", "htok", "--json")[0]["id"]
    hdr = {u: "Basic " + base64.b64encode(f"{u}:{users[u]}".encode()).decode() for u in users}
    hdr["htok"] = f"Bearer {tok}"
    port = int(d.base.rsplit(":", 1)[1])
    conns = {u: http.client.HTTPConnection(HOST, port, timeout=20) for u in users}

    def status(u):
        conns[u].request("GET", "/api/v1/fs/", headers={"Authorization": hdr[u]})
        r = conns[u].getresponse()
        r.read()
        return r.status

    for u in users:
        assert status(u) == 200, f"{u}: keep-alive connection works"
    ups = {}
    for u in ("hdis", "hpw", "htok"):
        s = socket.create_connection((HOST, port), timeout=20)
        s.sendall((f"PUT /api/v1/fs/inflight.bin HTTP/1.1\r\nHost: x\r\nAuthorization: {hdr[u]}\r\n"
                   f"Content-Length: {2 << 20}\r\n\r\n").encode() + b"\x01" * (1 << 20))
        ups[u] = s
    changes = (("hdis", ("user", "disable", "hdis"), None),
               ("hpw", ("user", "passwd", "hpw", "--password-stdin"), "pw-hpw-new\n"),
               ("htok", ("token", "revoke", str(tok_id)), None))
    for u, args, inp in changes:
        d.ctl(*args, input=inp)
        changed = time.time()
        code = status(u)
        dt = time.time() - changed
        assert code == 401 and dt <= 1.2, f"{u}: the next request on the connection: 401 ({code} after {dt:.2f}s)"
    assert status("hother") == 200, "another user's connection goes on"
    for u, s in ups.items():
        s.sendall(b"\x02" * (1 << 20))
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = s.recv(4096)
            if not chunk:
                break
            resp += chunk
        s.close()
        assert resp.startswith(b"HTTP/1.1 401"), f"{u}: the upload in flight is refused at its end: {resp[:200]!r}"
    d.ctl("user", "enable", "hdis")
    for u in ("hdis", "hpw", "htok"):
        assert "inflight.bin" not in d.ctl("ls", u, "/").stdout, f"{u}: nothing committed"
    for c in conns.values():
        c.close()
