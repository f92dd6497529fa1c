"""Resumable uploads over HTTP: tus 1.0 (tuspy, Debian's python3-tuspy, and a raw
client that cuts its connection at random offsets) and RFC 9110 partial PUT (curl).

Covers: 20 interruptions at random offsets then a resume to a byte-identical file (one
version), a daemon stopped and one killed -9 mid-upload (the upload survives), every
tus answer (OPTIONS, 412, 409 with the server's offset, 415, checksum 460/400, 404 for
another user's id, read-only, termination, creation-with-upload, empty upload, quota,
method override, expiry by the cleaner), and partial PUT (a range in the middle, a new
file, curl -C, malformed ranges, a gap, If-Match, a cut body: nothing changes, 20
interrupted and resumed pieces).
"""
import base64
import hashlib
import http.client
import json
import os
import random
import socket
import subprocess
import time

import pytest
from tusclient import client as tus_client
from tusclient.uploader import Uploader

from conftest import HOST, curl, free_port, sha256_file

ALICE = ("alice", "pw-alice")
BOB = ("bob", "pw-bob")
TUS = "/api/v1/tus"


def sections(port, **extra):
    http = {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}", "threads": "4"}
    http.update(extra)
    return {"http": http}


def basic(user):
    return "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


def req(d, method, path, user=ALICE, headers=None, body=None):
    """One request on a fresh connection: (status, {header: value} lowercased, body)."""
    h = {"Tus-Resumable": "1.0.0"}
    if user:
        h["Authorization"] = basic(user)
    h.update(headers or {})
    c = http.client.HTTPConnection(HOST, d.port, timeout=60)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hd = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hd, data


def meta(**kv):
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in kv.items())


def create(d, name, length, user=ALICE, **more):
    st, h, body = req(d, "POST", TUS, user, {"Upload-Length": str(length),
                                            "Upload-Metadata": meta(filename=name, **more)})
    assert st == 201, f"creation: 201: {st} {body}"
    assert h["location"].startswith(TUS + "/"), f"Location: {h}"
    assert "upload-expires" in h and h["tus-resumable"] == "1.0.0", f"headers: {h}"
    return h["location"]


def head_offset(d, loc, user=ALICE):
    st, h, body = req(d, "HEAD", loc, user)
    assert st == 200, f"HEAD: 200: {st} {body}"
    return int(h["upload-offset"])


def patch(d, loc, offset, data, user=ALICE, headers=None):
    hd = {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
    hd.update(headers or {})
    return req(d, "PATCH", loc, user, hd, data)


def cut_patch(d, loc, offset, data, nsend):
    """A PATCH announcing all of data whose connection is cut after nsend body bytes."""
    s = socket.create_connection((HOST, d.port), timeout=30)
    head = (f"PATCH {loc} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {basic(ALICE)}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n"
            f"Content-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    s.sendall(head + data[:nsend])
    # a reset drops what the server has not read yet: give a loaded machine time to read
    # every byte sent, so that "the server kept what arrived" holds
    time.sleep(0.5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST: the server sees the body end early


def download(d, path, user=ALICE):
    r = curl("-u", f"{user[0]}:{user[1]}", f"{d.base}/api/v1/fs/{path}")
    assert r.code == 200, f"GET {path}: {r}"
    return r.body


def stat(d, path, user=ALICE):
    r = curl("-u", f"{user[0]}:{user[1]}", f"{d.base}/api/v1/stat/{path}")
    return r.json() if r.code == 200 else None


def wait_offset(d, loc, least, timeout=10):
    """HEAD until the server's offset is at least `least` (a cut PATCH is settled when the
    server notices the connection is gone)."""
    end = time.time() + timeout
    off = head_offset(d, loc)
    while off < least and time.time() < end:
        time.sleep(0.05)
        off = head_offset(d, loc)
    return off


def start(make_daemon, name, storaged=None, **extra):
    port = free_port()
    d = make_daemon(sections(port, **extra), storaged=storaged, name=name)
    d.port = port
    d.base = f"http://{HOST}:{port}"
    d.add_user(*ALICE)
    d.add_user(*BOB)
    return d


# ---------------------------------------------------------------- tus: interrupted 20 times

@pytest.mark.timeout(300)
def test_tus_interrupted_20_times_resumes_byte_identical(make_daemon):
    d = start(make_daemon, "tus-cut")
    rnd = random.Random(11)
    src = d.path("big.bin")
    size = 24 << 20
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    data = open(src, "rb").read()
    loc = create(d, "big.bin", size)
    cuts = sorted(rnd.sample(range(1, size), 20))
    received = 0
    for i, cut in enumerate(cuts):
        off = wait_offset(d, loc, received)
        assert off == received, f"cut {i}: the server kept what arrived: {off} != {received}"
        if cut <= off:
            continue
        cut_patch(d, loc, off, data[off:], cut - off)
        received = cut
        if i == 9:
            # a clean restart in the middle: the upload session is on disk
            wait_offset(d, loc, received)
            assert d.stop() == 0, "clean stop"
            d.start()
    off = wait_offset(d, loc, received)
    assert off == received == cuts[-1], f"after 20 cuts: {off} {received} {cuts[-1]}"
    assert stat(d, "big.bin") is None, "nothing visible before the last byte"
    # tuspy resumes from the server's offset (HEAD) and finishes
    cl = tus_client.TusClient(d.base + TUS, headers={"Authorization": basic(ALICE)})
    up = Uploader(file_path=src, client=cl, url=d.base + loc, chunk_size=5 << 20)
    assert up.offset == off, f"tuspy read the offset: {up.offset}"
    up.upload()
    got = download(d, "big.bin")
    assert hashlib.sha256(got).hexdigest() == sha256_file(src), "byte-identical after 20 cuts"
    st = stat(d, "big.bin")
    assert st["versions"] == 1 and st["size"] == size, f"one version: {st}"
    assert os.listdir(os.path.join(d.data, "uploads")) == [], "the part file is gone"


@pytest.mark.timeout(300)
def test_tus_kill9_mid_upload_then_tuspy_resumes(make_daemon):
    d = start(make_daemon, "tus-kill")
    src = d.path("k.bin")
    size = 6 << 20
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    data = open(src, "rb").read()
    loc = create(d, "k.bin", size)
    st, h, _ = patch(d, loc, 0, data[:2 << 20])
    assert st == 204 and h["upload-offset"] == str(2 << 20), f"first PATCH: {st} {h}"
    # a PATCH in flight when the daemon dies: what it acknowledged stays
    s = socket.create_connection((HOST, d.port), timeout=30)
    s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {basic(ALICE)}\r\n"
               f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {2 << 20}\r\n"
               f"Content-Type: application/offset+octet-stream\r\n"
               f"Content-Length: {size - (2 << 20)}\r\n\r\n").encode() + data[2 << 20:3 << 20])
    time.sleep(0.3)
    d.kill()
    s.close()
    d.start()
    off = head_offset(d, loc)
    assert off >= 2 << 20, f"acknowledged bytes survive kill -9: {off}"
    cl = tus_client.TusClient(d.base + TUS, headers={"Authorization": basic(ALICE)})
    up = Uploader(file_path=src, client=cl, url=d.base + loc, chunk_size=1 << 20)
    up.upload()
    assert hashlib.sha256(download(d, "k.bin")).hexdigest() == sha256_file(src), "identical"


# ---------------------------------------------------------------- tus: the protocol

class Sha256Uploader(Uploader):
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def test_tus_protocol(make_daemon):
    d = start(make_daemon, "tus-proto", storaged={"max_uploads_per_user": "3"})
    # discovery, without credentials
    st, h, _ = req(d, "OPTIONS", TUS, user=None, headers={"Tus-Resumable": ""})
    assert st == 204, f"OPTIONS: {st}"
    assert h["tus-version"] == "1.0.0" and "sha256" in h["tus-checksum-algorithm"], h
    for ext in ("creation", "creation-with-upload", "expiration", "checksum", "termination"):
        assert ext in h["tus-extension"].split(","), f"extension {ext}: {h}"
    # credentials are needed for everything else
    st, _, _ = req(d, "POST", TUS, user=None, headers={"Upload-Length": "1"})
    assert st == 401, f"no credentials: {st}"
    st, h, _ = req(d, "POST", TUS, headers={"Tus-Resumable": "0.2.2", "Upload-Length": "1",
                                            "Upload-Metadata": meta(filename="x")})
    assert st == 412 and h["tus-version"] == "1.0.0", f"wrong version: 412 {st} {h}"
    for hdrs, what in (({"Upload-Metadata": meta(filename="x")}, "no length"),
                       ({"Upload-Length": "-1", "Upload-Metadata": meta(filename="x")}, "neg"),
                       ({"Upload-Length": "10"}, "no name"),
                       ({"Upload-Length": "10", "Upload-Metadata": "filename !!!"}, "bad b64"),
                       ({"Upload-Defer-Length": "1", "Upload-Metadata": meta(filename="x")},
                        "defer")):
        st, _, body = req(d, "POST", TUS, headers=hdrs)
        assert st == 400, f"{what}: 400: {st} {body}"
    # a whole upload in three PATCHes, one of them with a checksum
    data = os.urandom(300000)
    loc = create(d, "p.bin", len(data), dir="/sub/dir")
    st, h, _ = patch(d, loc, 0, data[:100000])
    assert st == 204 and h["upload-offset"] == "100000", f"PATCH 1: {st} {h}"
    st, h, body = patch(d, loc, 5, data[5:10])
    assert st == 409 and h["upload-offset"] == "100000", f"wrong offset: 409 + offset: {st} {h}"
    st, _, _ = patch(d, loc, 100000, data[100000:], headers={"Content-Type": "text/plain"})
    assert st == 415, f"wrong Content-Type: 415: {st}"
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    st, h, _ = patch(d, loc, 100000, data[100000:200000], headers={"Upload-Checksum": f"sha256 {bad}"})
    assert st == 460, f"checksum mismatch: 460: {st}"
    assert head_offset(d, loc) == 100000, "nothing of a mismatching body is kept"
    sha1 = base64.b64encode(hashlib.sha1(data[100000:200000]).digest()).decode()
    st, _, _ = patch(d, loc, 100000, data[100000:200000], headers={"Upload-Checksum": f"sha1 {sha1}"})
    assert st == 400, f"an unsupported algorithm: 400: {st}"
    good = base64.b64encode(hashlib.sha256(data[100000:200000]).digest()).decode()
    st, h, _ = patch(d, loc, 100000, data[100000:200000], headers={"Upload-Checksum": f"sha256 {good}"})
    assert st == 204 and h["upload-offset"] == "200000", f"matching checksum: {st} {h}"
    st, h, _ = req(d, "HEAD", loc)
    assert h["upload-length"] == "300000" and "filename" in h["upload-metadata"], f"HEAD: {h}"
    assert h.get("cache-control") == "no-store", f"HEAD not cached: {h}"
    # another user learns nothing, and a read-only token writes nothing
    assert req(d, "HEAD", loc, BOB)[0] == 404, "another user's upload: 404"
    assert patch(d, loc, 200000, data[200000:], user=BOB)[0] == 404, "PATCH by another: 404"
    tok = d.token("alice", "--scope", "ro")
    st, _, _ = req(d, "PATCH", loc, None, {"Authorization": f"Bearer {tok}",
                                           "Upload-Offset": "200000",
                                           "Content-Type": "application/offset+octet-stream"},
                   data[200000:])
    assert st == 403, f"read-only PATCH: 403: {st}"
    st, _, _ = req(d, "PATCH", loc, headers={"Upload-Offset": "200000",
                                             "Content-Type": "application/offset+octet-stream"},
                   body=data[200000:] + b"extra")
    assert st == 413, f"past Upload-Length: 413: {st}"
    assert head_offset(d, loc) == 200000, "still 200000"
    # the last PATCH, through X-HTTP-Method-Override
    st, h, _ = req(d, "POST", loc, headers={"X-HTTP-Method-Override": "PATCH",
                                            "Upload-Offset": "200000",
                                            "Content-Type": "application/offset+octet-stream"},
                   body=data[200000:])
    assert st == 204 and h["upload-offset"] == "300000", f"override PATCH: {st} {h}"
    assert download(d, "sub/dir/p.bin") == data, "the file is there, folders made"
    assert head_offset(d, loc) == 300000, "a finished upload still answers HEAD"
    # creation-with-upload, and an empty upload
    small = os.urandom(5000)
    st, h, _ = req(d, "POST", TUS, headers={"Upload-Length": "5000",
                                            "Upload-Metadata": meta(path="/cwu.bin"),
                                            "Content-Type": "application/offset+octet-stream"},
                   body=small)
    assert st == 201 and h["upload-offset"] == "5000" and "location" in h, f"cwu: {st} {h}"
    assert download(d, "cwu.bin") == small, "creation-with-upload stored the file"
    create(d, "empty.bin", 0)
    assert stat(d, "empty.bin")["size"] == 0, "an empty upload is a file at once"
    # termination
    loc2 = create(d, "gone.bin", 1000)
    assert patch(d, loc2, 0, b"x" * 10)[0] == 204
    st, _, _ = req(d, "DELETE", loc2)
    assert st == 204, f"DELETE: {st}"
    assert req(d, "HEAD", loc2)[0] == 404, "terminated: 404"
    assert stat(d, "gone.bin") is None, "nothing stored"
    assert os.listdir(os.path.join(d.data, "uploads")) == [], "its part file is gone"
    # ids that are not ours or not ids
    assert req(d, "HEAD", TUS + "/" + "0" * 32)[0] == 404
    assert req(d, "HEAD", TUS + "/../fs")[0] == 404
    # per-user limit and quota
    locs = [create(d, f"l{i}.bin", 10) for i in range(3)]
    st, _, _ = req(d, "POST", TUS, headers={"Upload-Length": "10", "Upload-Metadata": meta(filename="l4")})
    assert st == 429, f"max_uploads_per_user: 429: {st}"
    for lc in locs:
        assert req(d, "DELETE", lc)[0] == 204
    d.ctl("user", "quota", "bob", "100K")
    st, _, body = req(d, "POST", TUS, BOB, {"Upload-Length": str(200 << 10),
                                            "Upload-Metadata": meta(filename="q.bin")})
    assert st == 507, f"over quota at creation: 507: {st} {body}"
    # tuspy with its checksum extension (sha256)
    src = d.path("t.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(3 << 20))
    cl = tus_client.TusClient(d.base + TUS, headers={"Authorization": basic(ALICE)})
    up = Sha256Uploader(file_path=src, client=cl, chunk_size=1 << 20, upload_checksum=True,
                        metadata={"filename": "tuspy.bin"})
    up.upload()
    assert hashlib.sha256(download(d, "tuspy.bin")).hexdigest() == sha256_file(src), "tuspy"


def test_tus_expired_uploads_cleaned(make_daemon):
    d = start(make_daemon, "tus-exp", storaged={"upload_expiry": "2s", "cleaner_interval": "500ms"})
    loc = create(d, "e.bin", 1000)
    assert patch(d, loc, 0, b"y" * 400)[0] == 204
    part = os.path.join(d.data, "uploads", loc.rsplit("/", 1)[1])
    assert os.path.getsize(part) == 400, "the part file holds what arrived"
    deadline = time.time() + 15
    while os.path.exists(part) and time.time() < deadline:
        time.sleep(0.2)
    assert not os.path.exists(part), "the cleaner removed the expired upload's part file"
    assert req(d, "HEAD", loc)[0] == 404, "an expired upload is gone"
    assert d.log_count(r"event=rupload_expired") >= 1, "logged"
    assert stat(d, "e.bin") is None, "nothing was stored"


# ---------------------------------------------------------------- partial PUT

def put(d, path, data, *hdrs, user=ALICE):
    args = ["-u", f"{user[0]}:{user[1]}", "-X", "PUT", "--data-binary", "@-"]
    for h in hdrs:
        args += ["-H", h]
    return curl(*args, f"{d.base}/api/v1/fs/{path}", input=data)


def test_partial_put(make_daemon):
    d = start(make_daemon, "ppput")
    data = bytearray(os.urandom(1000))
    assert put(d, "p.bin", bytes(data)).code == 201
    v0 = stat(d, "p.bin")["versions"]
    piece = os.urandom(100)
    r = put(d, "p.bin", piece, "Content-Range: bytes 100-199/1000")
    assert r.code == 200, f"a range in the middle: 200: {r}"
    data[100:200] = piece
    assert download(d, "p.bin") == bytes(data), "bytes 100-199 replaced, the rest kept"
    st = stat(d, "p.bin")
    assert st["size"] == 1000 and st["versions"] == v0 + 1, f"one new version: {st}"
    assert r.header("etag") == f'"{st["sha256"]}"', "ETag of the new content"
    # malformed ranges: 400, nothing changes
    for cr in ("bytes 100-99/1000", "bytes=100-199/1000", "bytes 100-199/150", "bytes 100-/1000",
               "bytes */1000", "items 0-1/2", "bytes 100-199/1000x", "bytes -5-9/10"):
        r = put(d, "p.bin", piece, f"Content-Range: {cr}")
        assert r.code == 400 and r.json()["error"] == "bad_range", f"{cr!r}: 400: {r}"
    r = put(d, "p.bin", piece[:50], "Content-Range: bytes 100-199/1000")
    assert r.code == 400, f"Content-Length other than the range: 400: {r}"
    assert stat(d, "p.bin")["versions"] == v0 + 1, "no version from bad requests"
    # past the end: 409 with the size
    r = put(d, "p.bin", piece, "Content-Range: bytes 2000-2099/*")
    assert r.code == 409 and r.json()["size"] == 1000, f"a gap: 409 + size: {r}"
    assert r.header("content-range") == "bytes */1000", f"Content-Range of the size: {r}"
    # If-Match
    r = put(d, "p.bin", piece, "Content-Range: bytes 0-99/*", 'If-Match: "' + "0" * 64 + '"')
    assert r.code == 412, f"If-Match another content: 412: {r}"
    r = put(d, "p.bin", piece, "Content-Range: bytes 0-99/*", f'If-Match: "{st["sha256"]}"')
    assert r.code == 200, f"If-Match the content: 200: {r}"
    data[0:100] = piece
    # a shorter complete length cuts the file
    r = put(d, "p.bin", b"z" * 10, "Content-Range: bytes 500-509/510")
    assert r.code == 200 and stat(d, "p.bin")["size"] == 510, f"cut to 510: {r}"
    data[500:510] = b"z" * 10
    del data[510:]
    assert download(d, "p.bin") == bytes(data)
    # a new file from its first piece; curl -C appends the rest
    r = put(d, "new.bin", bytes(data[:300]), "Content-Range: bytes 0-299/510")
    assert r.code == 201 and stat(d, "new.bin")["size"] == 300, f"new file: 201: {r}"
    src = d.path("src.bin")
    with open(src, "wb") as f:
        f.write(bytes(data))
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-C", "300", "-T", src, f"{d.base}/api/v1/fs/new.bin")
    assert r.code == 200, f"curl -C 300 -T: 200: {r}"
    assert download(d, "new.bin") == bytes(data), "curl -C completed the file"
    r = put(d, "new2.bin", b"x" * 10, "Content-Range: bytes 5-14/*")
    assert r.code == 409, f"a new file starts at 0: 409: {r}"
    assert stat(d, "new2.bin") is None, "and is not made"
    # ID uploads have no pieces
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "--data-binary", "@-", "-H",
             "Content-Range: bytes 0-9/10", f"{d.base}/api/v1/upload", input=b"0123456789")
    assert r.code == 400 and r.json()["error"] == "partial_put", f"ID upload: 400: {r}"
    # read-only
    tok = d.token("alice", "--scope", "ro")
    r = curl("-H", f"Authorization: Bearer {tok}", "-X", "PUT", "--data-binary", "x", "-H",
             "Content-Range: bytes 0-0/*", f"{d.base}/api/v1/fs/p.bin")
    assert r.code == 403, f"read-only: 403: {r}"


def cut_put(d, path, first, total, body, nsend):
    s = socket.create_connection((HOST, d.port), timeout=30)
    s.sendall((f"PUT /api/v1/fs/{path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {basic(ALICE)}\r\n"
               f"Content-Range: bytes {first}-{first + len(body) - 1}/{total}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:nsend])
    time.sleep(0.05)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


@pytest.mark.timeout(300)
def test_partial_put_interrupted_20_times(make_daemon):
    """curl's way of resuming: each piece is a PUT with Content-Range; a piece cut short
    changes nothing (the previous version stays whole), and the client resumes from the
    size the server reports."""
    d = start(make_daemon, "ppcut")
    rnd = random.Random(7)
    size = 8 << 20
    src = d.path("whole.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    data = open(src, "rb").read()
    have = 0
    for i in range(20):
        end = size if i == 19 else rnd.randrange(have + 1, size - (19 - i))
        piece = data[have:end]
        # first an attempt cut at a random offset: nothing changes
        before = stat(d, "whole.bin")
        cut_put(d, "whole.bin", have, size, piece, rnd.randrange(0, len(piece)))
        time.sleep(0.1)
        after = stat(d, "whole.bin")
        assert after == before, f"piece {i}: a cut body changes nothing: {before} -> {after}"
        # the client asks the size and resumes from it
        cur = after["size"] if after else 0
        assert cur == have, f"piece {i}: size {cur} == {have}"
        chunk = d.path("chunk")
        with open(chunk, "wb") as f:
            f.write(piece)
        r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-T", chunk, "-H",
                 f"Content-Range: bytes {have}-{end - 1}/{size}", f"{d.base}/api/v1/fs/whole.bin")
        assert r.code in (200, 201), f"piece {i}: {r}"
        have = end
    assert sha256_file(src) == hashlib.sha256(download(d, "whole.bin")).hexdigest(), \
        "byte-identical after 20 interrupted pieces"
    assert stat(d, "whole.bin")["versions"] == 20, "one version per piece"
    d.ctl("gc", "--now", check=False)
    assert d.tmp_files() == [], f"no temp files left: {d.tmp_files()}"


def test_tus_cors_for_browsers(make_daemon):
    """cors_origins: a page of an allowed origin (tus-js-client, Uppy) gets its preflight
    answered without credentials and can read Location and Upload-Offset; any other origin
    gets no CORS header (the browser then blocks it), and nothing changes for clients that
    send no Origin."""
    page = "https://app.example.org"
    d = start(make_daemon, "tus-cors", cors_origins=f"{page}, http://localhost:3000")
    pre = {"Origin": page, "Access-Control-Request-Method": "PATCH",
           "Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset,content-type"}
    for path in (TUS, TUS + "/" + "0" * 32, "/api/v1/fs/x.bin"):
        st, h, body = req(d, "OPTIONS", path, user=None, headers=pre)
        assert st == 204, f"preflight of {path}: 204: {st} {body}"
        assert h.get("access-control-allow-origin") == page, f"preflight allows the page: {h}"
        assert "PATCH" in h.get("access-control-allow-methods", ""), f"methods: {h}"
        assert "upload-offset" in h.get("access-control-allow-headers", "").lower(), f"headers: {h}"
    st, h, body = req(d, "OPTIONS", TUS, user=None, headers=dict(pre, Origin="https://evil.example"))
    assert "access-control-allow-origin" not in h, f"another origin gets no CORS header: {h}"
    # a whole upload as a browser sends it: Origin on every request
    data = os.urandom(3000)
    st, h, body = req(d, "POST", TUS, headers={"Origin": page, "Upload-Length": "3000",
                                               "Upload-Metadata": meta(filename="cors.bin")})
    assert st == 201 and h.get("access-control-allow-origin") == page, f"creation: {st} {h}"
    exposed = h.get("access-control-expose-headers", "").lower()
    assert "location" in exposed and "upload-offset" in exposed, f"exposed: {h}"
    st, h, body = patch(d, h["location"], 0, data, headers={"Origin": page})
    assert st == 204 and h.get("access-control-allow-origin") == page, f"PATCH: {st} {h}"
    assert curl("-u", "alice:pw-alice", f"http://{HOST}:{d.port}/api/v1/fs/cors.bin").body == data
    # errors carry it too (the page can read why), and no Origin means no CORS header
    st, h, body = req(d, "HEAD", TUS + "/" + "f" * 32, headers={"Origin": page})
    assert st == 404 and h.get("access-control-allow-origin") == page, f"404: {st} {h}"
    st, h, body = req(d, "HEAD", TUS + "/" + "f" * 32)
    assert st == 404 and "access-control-allow-origin" not in h, f"no Origin: {h}"
    # without cors_origins (the default) a preflight is just an OPTIONS: no CORS header
    d2 = start(make_daemon, "tus-nocors")
    st, h, body = req(d2, "OPTIONS", TUS, user=None, headers=pre)
    assert "access-control-allow-origin" not in h, f"off by default: {st} {h}"
