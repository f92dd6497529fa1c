"""The HTTP handle API (docs/handle-api.md) against the real daemon on loopback, driven by
python's http.client (keep-alive, exact headers), curl, and paramiko for the SFTP side.

Covers: every call (open, data GET/HEAD/PUT, stat, truncate, attrs, sync, close, abandon)
and that each commit is one version with one journal row; handles across connections;
ranges (single, multiple as multipart/byteranges, overlapping and adjacent coalesced,
past the end and over-sized sets 416, malformed 400); sparse writes past the end read as
zeros; multipart/byteranges writes (and a malformed one: 400 with what was written); a
client gone mid-body (what arrived stays unsaved);
a 64 MiB streamed (chunked) write; two connections writing one handle at once; open-mode
conflicts between two HTTP clients and between HTTP and SFTP (paramiko); another user's
credentials (404); read-only tokens; malformed ids, offsets past 2^63, negative sizes,
bad JSON, unknown flags and keys (400); create visible only at sync/close; abandon keeps
the previous version; idle timeout (handle_idle_timeout = 2s: 404, previous version
intact, handle_expired in `storagectl journal`); per-user and server handle limits (429);
kill -9 with unsaved writes (previous version intact, old id 404 after restart).
"""
import base64
import hashlib
import http.client
import json
import os
import re
import socket
import threading
import time

import pytest

from conftest import HOST, SftpSession, curl, daemon_scope, free_port

ALICE = ("alice", "pw-alice")
BOB = ("bob", "pw-bob")
I63 = 2 ** 63 - 1


def sections(port, sport=None, **http_extra):
    s = {"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}",
                  "threads": "4", **http_extra}}
    if sport:
        s["sftp"] = {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sport}",
                     "idle_timeout": "60s"}
    return s


@pytest.fixture(scope="module")
def hd():
    """[http] and [sftp]; users alice and bob."""
    port, sport = free_port(), free_port()
    with daemon_scope(sections(port, sport), name="handles") as d:
        d.port, d.sport = port, sport
        d.base = f"http://{HOST}:{port}"
        d.add_user(*ALICE)
        d.add_user(*BOB)
        yield d


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return f"<{self.status} {dict(self.headers)!r} {self.body[:300]!r}>"


class Client:
    """One keep-alive connection (http.client) with one credential: (user, pw) or a token."""

    def __init__(self, d, cred=ALICE, token=None):
        self.d = d
        self.conn = http.client.HTTPConnection(HOST, d.port, timeout=60)
        if token:
            self.auth = "Bearer " + token
        else:
            self.auth = "Basic " + base64.b64encode(f"{cred[0]}:{cred[1]}".encode()).decode()

    def close(self):
        self.conn.close()

    def call(self, method, path, body=None, headers=None):
        h = {"Authorization": self.auth}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        return Resp(r.status, r.headers, r.read())

    # the calls of docs/handle-api.md
    def open(self, path, flags=None, share=None, perm=None, **extra):
        body = {"path": path}
        if flags is not None:
            body["flags"] = flags
        if share is not None:
            body["share"] = share
        if perm is not None:
            body["perm"] = perm
        body.update(extra)
        return self.call("POST", "/api/v1/open", body)

    def must_open(self, path, flags=None, share=None, **kw):
        r = self.open(path, flags, share, **kw)
        assert r.status == 201, f"open {path} {flags} {share}: {r}"
        return r.json()["handle"]

    def write(self, h, data, offset=None, headers=None):
        q = "" if offset is None else f"?offset={offset}"
        return self.call("PUT", f"/api/v1/handles/{h}/data{q}", data, headers)

    def read(self, h, rng=None, method="GET"):
        return self.call(method, f"/api/v1/handles/{h}/data",
                         headers={"Range": rng} if rng else None)

    def stat(self, h):
        return self.call("GET", f"/api/v1/handles/{h}")

    def truncate(self, h, size):
        return self.call("POST", f"/api/v1/handles/{h}/truncate", {"size": size})

    def attrs(self, h, **kw):
        return self.call("POST", f"/api/v1/handles/{h}/attrs", kw)

    def sync(self, h):
        return self.call("POST", f"/api/v1/handles/{h}/sync")

    def close_h(self, h):
        return self.call("POST", f"/api/v1/handles/{h}/close")

    def abandon(self, h):
        return self.call("DELETE", f"/api/v1/handles/{h}")

    # the plain files API, to see what others see
    def put_file(self, path, data):
        r = self.call("PUT", f"/api/v1/fs{path}", data)
        assert r.status in (200, 201), f"PUT {path}: {r}"

    def get_file(self, path):
        return self.call("GET", f"/api/v1/fs{path}")

    def fstat(self, path):
        return self.call("GET", f"/api/v1/stat{path}")


def is_error(r, status, code=None):
    if r.status != status:
        return False
    try:
        j = json.loads(r.body)
    except ValueError:
        return False
    return bool(j.get("message")) and (code is None or j.get("error") == code)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def versions(c, path):
    r = c.fstat(path)
    assert r.status == 200, f"stat {path}: {r}"
    return r.json()["versions"]


def journal(d, user=None):
    args = ["journal", "--json"] + (["--user", user] if user else [])
    return d.ctl_json(*args)


def writes_of(d, path):
    return [e for e in journal(d) if e["op"] == "write" and e["path"] == path]


def multipart_parts(r):
    """(first, last, total, bytes) of each part of a multipart/byteranges answer."""
    m = re.search(r"boundary=(\S+)", r.header("Content-Type") or "")
    assert m, f"multipart answer names its boundary: {r}"
    delim = b"--" + m.group(1).encode()
    body, pos, parts = r.body, 0, []
    while True:
        if body.startswith(b"\r\n", pos):
            pos += 2
        assert body.startswith(delim, pos), f"delimiter at {pos}: {body[pos:pos + 80]!r}"
        pos += len(delim)
        if body.startswith(b"--", pos):
            break
        end = body.index(b"\r\n\r\n", pos)
        head = body[pos:end].decode()
        pos = end + 4
        cr = re.search(r"Content-Range: bytes (\d+)-(\d+)/(\d+)", head)
        assert cr, f"part has Content-Range: {head!r}"
        a, b, total = map(int, cr.groups())
        parts.append((a, b, total, body[pos:pos + b - a + 1]))
        pos += b - a + 1
    return parts


def mp_body(boundary, pieces):
    """A multipart/byteranges request body: pieces = [(offset, bytes), ...]."""
    out = b""
    for off, data in pieces:
        out += (f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Range: bytes {off}-{off + len(data) - 1}/*\r\n\r\n").encode()
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


# ---------------------------------------------------------------- every call

def test_every_call_and_one_version_per_commit(hd):
    c = Client(hd)
    c.put_file("/every.bin", b"0123456789")
    sha0 = sha(b"0123456789")
    v0, w0 = versions(c, "/every.bin"), len(writes_of(hd, "/every.bin"))
    r = c.open("/every.bin", ["read", "write"], "shared-write")
    assert r.status == 201, f"open: {r}"
    j = r.json()
    h = j["handle"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", h), f"id form: {h!r}"
    assert j["path"] == "/every.bin" and j["size"] == 10 and j["sha256"] == sha0, f"open: {j}"
    assert j["idle_timeout"] == 300, f"default handle_idle_timeout 5m: {j}"
    assert r.header("Location") == f"/api/v1/handles/{h}", f"Location: {r}"

    # read through another connection: handles are not tied to one
    c2 = Client(hd)
    r = c2.read(h)
    assert r.status == 200 and r.body == b"0123456789", f"whole read: {r}"
    assert r.header("ETag") == f'"{sha0}"', f"clean handle: ETag is the base: {r}"
    r = c2.read(h, method="HEAD")
    assert r.status == 200 and r.body == b"" and r.header("Content-Length") == "10", f"HEAD: {r}"

    r = c.write(h, b"AB", offset=2)
    assert r.status == 200 and r.json() == {"size": 10, "written": 2}, f"write: {r}"
    r = c2.read(h)
    assert r.body == b"01AB456789" and r.header("ETag") is None, f"own writes, no ETag: {r}"
    st = c.stat(h).json()
    assert st["dirty"] is True and st["sha256"] == "" and st["size"] == 10, f"dirty stat: {st}"
    assert st["share"] == "shared-write" and st["flags"] == ["read", "write"], f"stat: {st}"
    assert st["handle"] == h and st["path"] == "/every.bin" and st["mode"] == "0644", st
    assert c.get_file("/every.bin").body == b"0123456789", "unsaved writes are not visible"
    assert versions(c, "/every.bin") == v0, "no version before a commit"

    # truncate (shrink, then grow with zeros), attrs kept for the commit
    r = c.truncate(h, 6)
    assert r.status == 200 and r.json() == {"size": 6}, f"truncate: {r}"
    r = c.truncate(h, 8)
    assert r.status == 200, f"truncate up: {r}"
    assert c.read(h).body == b"01AB45\0\0", "growing truncate fills zeros"
    r = c.attrs(h, mode="0600", mtime=1600000000)
    assert r.status == 200 and r.json()["mode"] == "0600" and r.json()["mtime"] == 1600000000, \
        f"attrs: {r}"

    # sync: one version, one journal row, stays open and clean
    r = c.sync(h)
    assert r.status == 200, f"sync: {r}"
    s1 = r.json()
    assert s1["dirty"] is False and s1["sha256"] == sha(b"01AB45\0\0"), f"sync stat: {s1}"
    assert versions(c, "/every.bin") == v0 + 1, "sync made one version"
    assert len(writes_of(hd, "/every.bin")) == w0 + 1, "sync wrote one journal row"
    assert c.get_file("/every.bin").body == b"01AB45\0\0", "synced content visible"
    fs = c.fstat("/every.bin").json()
    assert fs["mode"] == "0600" and fs["mtime"] == 1600000000, f"attrs landed with sync: {fs}"
    r = c.sync(h)
    assert r.status == 200 and versions(c, "/every.bin") == v0 + 1, "a clean sync commits nothing"

    # close with writes: exactly one more version and row; the handle is gone
    assert c.write(h, b"Z", offset=0).status == 200
    r = c.close_h(h)
    assert r.status == 200 and r.json()["sha256"] == sha(b"Z1AB45\0\0"), f"close: {r}"
    assert versions(c, "/every.bin") == v0 + 2, "close made exactly one version"
    rows = writes_of(hd, "/every.bin")
    assert len(rows) == w0 + 2 and rows[-1]["user"] == "alice", f"journal rows: {rows}"
    for call in (c.stat, c.read, c.sync, c.close_h, c.abandon):
        r = call(h)
        assert is_error(r, 404, "handle_gone"), f"{call.__name__} after close: 404: {r}"
    # a clean close commits nothing
    h = c.must_open("/every.bin")
    assert c.close_h(h).status == 200 and versions(c, "/every.bin") == v0 + 2, "clean close"
    c.close()
    c2.close()


def test_curl_open_write_read(hd, tmp_path):
    """The same calls through curl (as docs/rest-api.md shows them), incl. a chunked body."""
    auth = ["-u", f"{ALICE[0]}:{ALICE[1]}"]
    r = curl(*auth, "-d", '{"path":"/curl.bin","flags":["write","create"]}',
             hd.base + "/api/v1/open")
    assert r.code == 201, f"curl open: {r}"
    h = r.json()["handle"]
    data = os.urandom(3 * 1024 * 1024 + 17)
    r = curl(*auth, "-T", "-", f"{hd.base}/api/v1/handles/{h}/data?offset=100", input=data)
    assert r.code == 200 and r.json() == {"size": 100 + len(data), "written": len(data)}, \
        f"chunked write: {r}"
    r = curl(*auth, "-r", "100-199", f"{hd.base}/api/v1/handles/{h}/data")
    assert r.code == 206 and r.body == data[:100], f"curl range: {r}"
    r = curl(*auth, "-X", "POST", f"{hd.base}/api/v1/handles/{h}/close")
    assert r.code == 200 and r.json()["sha256"] == sha(b"\0" * 100 + data), f"curl close: {r}"
    r = curl(*auth, f"{hd.base}/api/v1/fs/curl.bin")
    assert r.body == b"\0" * 100 + data, "what the handle wrote is the file"


# ---------------------------------------------------------------- ranges

def test_ranges(hd):
    c = Client(hd)
    data = bytes(range(256)) * 40  # 10240 bytes
    c.put_file("/ranges.bin", data)
    h = c.must_open("/ranges.bin")
    r = c.read(h, "bytes=100-199")
    assert r.status == 206 and r.body == data[100:200], f"single range: {r}"
    assert r.header("Content-Range") == "bytes 100-199/10240", f"Content-Range: {r}"
    r = c.read(h, "bytes=10000-")
    assert r.status == 206 and r.body == data[10000:], f"open-ended: {r}"
    r = c.read(h, "bytes=-40")
    assert r.status == 206 and r.body == data[-40:], f"suffix: {r}"
    r = c.read(h, "bytes=9000-99999")
    assert r.status == 206 and r.body == data[9000:], f"end clamped to the size: {r}"

    # several: multipart/byteranges, in ascending order
    r = c.read(h, "bytes=5000-5099, 0-9, 10200-10239")
    assert r.status == 206 and "multipart/byteranges" in r.header("Content-Type"), f"multi: {r}"
    parts = multipart_parts(r)
    assert [(a, b) for a, b, _, _ in parts] == [(0, 9), (5000, 5099), (10200, 10239)], parts
    for a, b, total, got in parts:
        assert total == 10240 and got == data[a:b + 1], f"part {a}-{b}"
    # overlapping and adjacent coalesce
    r = c.read(h, "bytes=0-99,50-149,150-199,1000-1009")
    parts = multipart_parts(r)
    assert [(a, b) for a, b, _, _ in parts] == [(0, 199), (1000, 1009)], f"coalesced: {parts}"
    r = c.read(h, "bytes=10-19,0-9,5-14")
    assert r.status == 206 and r.header("Content-Range") == "bytes 0-19/10240" and \
        r.body == data[:20], f"ranges that coalesce into one: a plain 206: {r}"
    many = ",".join(f"{i * 40}-{i * 40 + 9}" for i in range(256))
    parts = multipart_parts(c.read(h, "bytes=" + many))
    assert len(parts) == 256 and all(g == data[a:b + 1] for a, b, _, g in parts), "256 ranges"

    # unsatisfiable: 416 with the size
    for rng in ("bytes=10240-", "bytes=0-9,10240-10300", "bytes=20000-20001", "bytes=-0",
                "bytes=0-,0-", "bytes=0-6000,1000-8000"):
        r = c.read(h, rng)
        assert is_error(r, 416, "range_not_satisfiable"), f"{rng}: 416: {r}"
        assert r.header("Content-Range") == "bytes */10240", f"{rng}: names the size: {r}"
    # malformed: 400
    for rng in ("items=0-1", "bytes=", "bytes=a-b", "bytes=9-1", "bytes=0-1;2-3",
                f"bytes={2 ** 63}-", f"bytes=0-{2 ** 64}", "bytes=" + many + ",10239-"):
        r = c.read(h, rng)
        assert is_error(r, 400, "bad_range"), f"{rng[:40]}: 400: {r}"
    assert c.close_h(h).status == 200
    # an empty file: every range is past the end
    c.put_file("/empty.bin", b"")
    h = c.must_open("/empty.bin")
    assert c.read(h).status == 200 and c.read(h).body == b""
    assert is_error(c.read(h, "bytes=0-"), 416), "range of an empty file"
    assert c.close_h(h).status == 200
    c.close()


# ---------------------------------------------------------------- writes

def test_sparse_write_past_end(hd):
    c = Client(hd)
    c.put_file("/sparse.bin", b"abc")
    h = c.must_open("/sparse.bin", ["read", "write"])
    r = c.write(h, b"XY", offset=1 << 20)
    assert r.status == 200 and r.json() == {"size": (1 << 20) + 2, "written": 2}, f"sparse: {r}"
    r = c.read(h, "bytes=0-9")
    assert r.body == b"abc" + b"\0" * 7, f"the gap reads as zeros: {r}"
    assert c.close_h(h).status == 200
    got = c.get_file("/sparse.bin").body
    assert got == b"abc" + b"\0" * ((1 << 20) - 3) + b"XY", "committed sparse file"
    # a new file written only past its start
    h = c.must_open("/sparse-new.bin", ["write", "create"])
    assert c.write(h, b"!", offset=4095).status == 200
    assert c.close_h(h).status == 200
    assert c.get_file("/sparse-new.bin").body == b"\0" * 4095 + b"!", "leading zeros"
    c.close()


def test_append_and_empty_write(hd):
    c = Client(hd)
    c.put_file("/app.txt", b"one\n")
    h = c.must_open("/app.txt", ["append"])
    r = c.write(h, b"two\n", offset=0)
    assert r.status == 200 and r.json()["size"] == 8, f"append ignores the offset: {r}"
    r = c.write(h, b"")
    assert r.status == 200 and r.json() == {"size": 8, "written": 0}, f"empty write: {r}"
    assert c.close_h(h).status == 200
    assert c.get_file("/app.txt").body == b"one\ntwo\n", "appended"
    c.close()


def test_multipart_write(hd):
    c = Client(hd)
    c.put_file("/mp.bin", b"." * 64)
    h = c.must_open("/mp.bin", ["read", "write"])
    pieces = [(40, b"FORTY"), (0, b"zero"), (62, b"END!"), (10, b"ten")]
    body = mp_body("xyzBOUNDARY", pieces)
    r = c.write(h, body, headers={"Content-Type": "multipart/byteranges; boundary=xyzBOUNDARY"})
    assert r.status == 200 and r.json() == {"size": 66, "written": 16}, f"multipart write: {r}"
    want = bytearray(b"." * 64)
    for off, d in pieces:
        want[off:off + len(d)] = d
    assert c.read(h).body == bytes(want), "every piece landed at its offset"
    # quoted boundary, a preamble, and a part larger than a network chunk
    big = os.urandom(300000)
    body = b"preamble\r\n" + mp_body("q b", [(1000, big)]) + b"epilogue"
    r = c.write(h, body, headers={"Content-Type": 'multipart/byteranges; boundary="q b"'})
    assert r.status == 200 and r.json()["written"] == len(big), f"big part: {r}"
    assert c.read(h, f"bytes=1000-{999 + len(big)}").body == big, "big part content"
    # malformed: the good part before the error is written, and said so; nothing committed
    bad = (b"--B\r\nContent-Range: bytes 0-2/*\r\n\r\nabc\r\n"
           b"--B\r\nContent-Range: bytes 5-6/*\r\n\r\nLONGER THAN SAID\r\n--B--\r\n")
    r = c.write(h, bad, headers={"Content-Type": "multipart/byteranges; boundary=B"})
    assert is_error(r, 400, "bad_request") and r.json()["written"] == 5, f"malformed: {r}"
    assert c.read(h, "bytes=0-6").body == b"abc" + bytes(want[3:5]) + b"LO", \
        "exactly the bytes reported written are in the handle"
    no_range = b"--B\r\nContent-Type: text/plain\r\n\r\nabc\r\n--B--\r\n"
    r = c.write(h, no_range, headers={"Content-Type": "multipart/byteranges; boundary=B"})
    assert is_error(r, 400) and r.json()["written"] == 0, f"part without Content-Range: {r}"
    unclosed = b"--B\r\nContent-Range: bytes 0-2/*\r\n\r\nabc"
    r = c.write(h, unclosed, headers={"Content-Type": "multipart/byteranges; boundary=B"})
    assert is_error(r, 400) and r.json()["written"] == 3, f"no closing boundary: {r}"
    r = c.write(h, b"x", headers={"Content-Type": "multipart/byteranges"})
    assert is_error(r, 400), f"no boundary: {r}"
    r = c.write(h, mp_body("B", [(0, b"x")]), offset=5,
                headers={"Content-Type": "multipart/byteranges; boundary=B"})
    assert is_error(r, 400), f"multipart with ?offset=: {r}"
    huge = mp_body("B", [(I63 - 1, b"xy")])
    r = c.write(h, huge, headers={"Content-Type": "multipart/byteranges; boundary=B"})
    assert is_error(r, 400) and r.json()["written"] == 0, f"part past 2^63-1: {r}"
    assert c.get_file("/mp.bin").body == b"." * 64, "nothing committed by any of it"
    assert c.abandon(h).status == 204
    c.close()


def test_big_streamed_write_and_two_writers(hd, tmp_path):
    c = Client(hd)
    h = c.must_open("/big.bin", ["read", "write", "create"], "exclusive")
    src = str(tmp_path / "big")
    with open(src, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    with open(src, "rb") as f:
        want = f.read()
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-T", src, f"{hd.base}/api/v1/handles/{h}/data")
    assert r.code == 200 and r.json()["written"] == len(want), f"64 MiB write: {r}"
    r = c.read(h)
    assert r.status == 200 and sha(r.body) == sha(want), "64 MiB read back through the handle"
    r = c.close_h(h)
    assert r.status == 200 and r.json()["sha256"] == sha(want), f"committed: {r}"

    # two connections writing one handle at once: the engine serialises them
    h = c.must_open("/two.bin", ["read", "write", "create"])
    blk, errors = 65536, []

    def writer(k):
        cl = Client(hd)
        for i in range(k, 32, 2):
            r = cl.write(h, bytes([65 + k]) * blk, offset=i * blk)
            if r.status != 200:
                errors.append(r)
        cl.close()

    ts = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, f"concurrent writes: {errors[:2]}"
    assert c.close_h(h).status == 200
    got = c.get_file("/two.bin").body
    assert got == b"".join(bytes([65 + i % 2]) * blk for i in range(32)), "interleaved blocks"
    c.close()


def test_client_gone_mid_write(hd):
    """A client that vanishes mid-body leaves the bytes that arrived as unsaved writes of the
    handle (nothing committed); the handle stays usable."""
    c = Client(hd)
    c.put_file("/gone.bin", b"committed")
    h = c.must_open("/gone.bin", ["read", "write", "truncate"])
    sent = os.urandom(200000)
    s = socket.create_connection((HOST, hd.port))
    cred = base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
    s.sendall((f"PUT /api/v1/handles/{h}/data?offset=0 HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Basic {cred}\r\nContent-Length: 1048576\r\n\r\n").encode() + sent)
    time.sleep(0.3)
    s.close()
    size, deadline = -1, time.time() + 5
    while time.time() < deadline:  # until the server has seen the end
        st = c.stat(h).json()
        if st["size"] == size:
            break
        size = st["size"]
        time.sleep(0.2)
    assert 0 < size <= len(sent) and st["dirty"] is True, f"what arrived is unsaved: {st}"
    assert c.read(h).body == sent[:size], "exactly the prefix that arrived"
    assert c.get_file("/gone.bin").body == b"committed", "nothing committed"
    assert c.write(h, b"more", offset=size).status == 200, "the handle still works"
    assert c.abandon(h).status == 204
    assert c.get_file("/gone.bin").body == b"committed", "abandoned: previous version"
    c.close()


# ---------------------------------------------------------------- open modes

def test_open_mode_conflicts_two_http_clients(hd):
    a, a2, b = Client(hd), Client(hd), Client(hd, BOB)
    a.put_file("/modes.bin", b"m")

    def conflict(r):
        return r.json().get("conflict") if r.status == 409 else f"status {r.status}"

    hx = a.must_open("/modes.bin", ["read", "write"], "exclusive")
    for flags, share in ((None, None), (["read"], "shared-read"), (["write"], "exclusive")):
        r = a2.open("/modes.bin", flags, share)
        assert is_error(r, 409, "open_conflict") and conflict(r) == "exclusive", \
            f"{flags} {share} against exclusive: {r}"
    assert b.open("/modes.bin").status == 404, "bob has no /modes.bin of his own"
    assert a.close_h(hx).status == 200

    hr = a.must_open("/modes.bin", ["read"], "shared-read")
    r = a2.open("/modes.bin", ["write"])
    assert conflict(r) == "shared-read", f"writer against shared-read: {r}"
    h2 = a2.must_open("/modes.bin", ["read"])  # readers may join
    assert a2.close_h(h2).status == 200 and a.close_h(hr).status == 200

    hw = a.must_open("/modes.bin", ["write"])
    r = a2.open("/modes.bin", ["read"], "shared-read")
    assert conflict(r) == "writers", f"shared-read against a writer: {r}"
    r = a2.open("/modes.bin", ["read"], "exclusive")
    assert conflict(r) == "writers", f"exclusive against a writer: {r}"
    h2 = a2.must_open("/modes.bin", ["write"])  # shared-write writers coexist
    assert a2.close_h(h2).status == 200 and a.close_h(hw).status == 200

    hr = a.must_open("/modes.bin", ["read"])
    r = a2.open("/modes.bin", ["read"], "exclusive")
    assert conflict(r) == "readers", f"exclusive against a plain reader: {r}"
    assert a.abandon(hr).status == 204
    hx = a2.must_open("/modes.bin", ["read"], "exclusive")  # free again
    assert a2.close_h(hx).status == 200
    for c in (a, a2, b):
        c.close()


def test_open_mode_conflicts_http_sftp(hd):
    a = Client(hd)
    a.put_file("/cross.bin", b"cross")
    hx = a.must_open("/cross.bin", ["read"], "exclusive")
    with SftpSession(hd.sport, *ALICE) as s:
        with pytest.raises(IOError):
            s.open("/cross.bin", "r")
        assert a.close_h(hx).status == 200
        with s.open("/cross.bin", "r") as f:
            assert f.read() == b"cross", "SFTP opens once the exclusive handle is closed"
        # an SFTP writer makes an exclusive HTTP open fail, naming the writers
        f = s.open("/cross.bin", "r+")
        f.write(b"C")
        r = a.open("/cross.bin", ["read"], "exclusive")
        assert is_error(r, 409, "open_conflict") and r.json()["conflict"] == "writers", \
            f"exclusive HTTP open against an SFTP writer: {r}"
        h = a.must_open("/cross.bin", ["read"])  # a shared reader is fine
        assert a.read(h).body == b"cross", "the HTTP reader sees the committed version"
        assert a.close_h(h).status == 200
        f.close()
        hx = a.must_open("/cross.bin", ["read"], "exclusive")
        assert a.read(hx).body == b"Cross", "SFTP's commit is what the new handle reads"
        assert a.close_h(hx).status == 200
    a.close()


def test_open_errors(hd):
    c = Client(hd)
    c.put_file("/exists.bin", b"e")
    r = c.open("/no/such/dir/f", ["write", "create"])
    assert is_error(r, 404, "not_found"), f"parent missing: {r}"
    r = c.open("/missing.bin")
    assert is_error(r, 404, "not_found"), f"no file, no create: {r}"
    r = c.open("/exists.bin", ["write", "create", "excl"])
    assert is_error(r, 409, "exists"), f"excl create of an existing file: {r}"
    assert c.call("POST", "/api/v1/fs/adir?op=mkdir").status == 201
    r = c.open("/adir")
    assert is_error(r, 409, "is_a_directory"), f"a directory: {r}"
    for body, what in (
            ({"path": "/exists.bin", "flags": ["read", "fly"]}, "unknown flag"),
            ({"path": "/exists.bin", "flags": "read"}, "flags not a list"),
            ({"path": "/exists.bin", "share": "everyone"}, "unknown share"),
            ({"path": "/exists.bin", "shared": "exclusive"}, "unknown key"),
            ({"path": "/exists.bin", "flags": ["write"], "share": "shared-read"},
             "shared-read writer"),
            ({"path": "/exists.bin", "flags": ["excl"]}, "excl without create"),
            ({"path": "/new.bin", "flags": ["create"], "perm": "0999"}, "bad perm"),
            ({"path": "/new.bin", "flags": ["create"], "perm": 420}, "perm as a number"),
            ({"flags": ["read"]}, "no path"),
            ([1, 2], "not an object")):
        r = c.call("POST", "/api/v1/open", body)
        assert r.status == 400 and is_error(r, 400), f"{what}: 400: {r}"
    for raw in (b"{", b"", b"\xff\xfe", b'{"path": "/exists.bin",}'):
        r = c.call("POST", "/api/v1/open", raw, {"Content-Type": "application/json"})
        assert is_error(r, 400, "bad_json"), f"bad JSON {raw!r}: {r}"
    r = c.call("GET", "/api/v1/open")
    assert r.status == 405 and r.header("Allow") == "POST", f"GET open: 405: {r}"
    assert c.get_file("/new.bin").status == 404, "no refused open created anything"
    # perm applies to the created file
    h = c.must_open("/perm.bin", ["write", "create"], perm="0640")
    assert c.close_h(h).status == 200
    assert c.fstat("/perm.bin").json()["mode"] == "0640", "perm of a created file"
    c.close()


# ---------------------------------------------------------------- who may

def test_other_users_credentials_get_404(hd):
    a, b = Client(hd), Client(hd, BOB)
    a.put_file("/mine.bin", b"alice's")
    h = a.must_open("/mine.bin", ["read", "write"])
    for r in (b.stat(h), b.read(h), b.write(h, b"bob", offset=0), b.truncate(h, 0),
              b.attrs(h, mode="0777"), b.sync(h), b.close_h(h), b.abandon(h)):
        assert is_error(r, 404, "handle_gone"), f"bob on alice's handle: 404: {r}"
    r = a.read(h)
    assert r.status == 200 and r.body == b"alice's", "alice's handle is untouched"
    assert a.stat(h).json()["dirty"] is False, "bob wrote nothing into it"
    # alice's other credentials (a token) reach the same handle
    tok = hd.token("alice")
    t = Client(hd, token=tok)
    assert t.read(h).body == b"alice's", "a Bearer token of the same user uses the handle"
    assert a.close_h(h).status == 200
    for c in (a, b, t):
        c.close()


def test_read_only_token(hd):
    rw, ro = Client(hd), Client(hd, token=hd.token("alice", "--scope", "ro"))
    rw.put_file("/ro.bin", b"read only")
    r = ro.open("/ro.bin", ["read", "write"])
    assert is_error(r, 403, "read_only"), f"writing open with a read-only token: {r}"
    r = ro.open("/ro-new.bin", ["create"])
    assert is_error(r, 403, "read_only"), f"creating open with a read-only token: {r}"
    h = ro.must_open("/ro.bin", ["read"])
    assert ro.read(h).body == b"read only" and ro.stat(h).status == 200
    assert ro.sync(h).status == 200, "sync of a clean handle: nothing to commit"
    assert ro.close_h(h).status == 200, "close of a clean handle"
    # a handle alice opened read-write: the read-only token may not write or commit
    hw = rw.must_open("/ro.bin", ["read", "write"])
    for r in (ro.write(hw, b"x", offset=0), ro.truncate(hw, 0), ro.attrs(hw, mode="0600")):
        assert is_error(r, 403, "read_only"), f"write call with a read-only token: {r}"
    assert rw.write(hw, b"R", offset=0).status == 200
    for r in (ro.sync(hw), ro.close_h(hw)):
        assert is_error(r, 403, "read_only"), f"commit with a read-only token: {r}"
    assert rw.get_file("/ro.bin").body == b"read only", "nothing committed"
    assert ro.abandon(hw).status == 204, "a read-only token may abandon"
    assert rw.get_file("/ro.bin").body == b"read only", "abandon kept the previous version"
    # a handle opened without write refuses writes
    h = rw.must_open("/ro.bin", ["read"])
    assert is_error(rw.write(h, b"x"), 403, "not_writable"), "write on a read handle"
    assert is_error(rw.truncate(h, 1), 403, "not_writable"), "truncate on a read handle"
    assert rw.close_h(h).status == 200
    rw.close()
    ro.close()


def test_malformed_input(hd):
    c = Client(hd)
    c.put_file("/mal.bin", b"malformed")
    h = c.must_open("/mal.bin", ["read", "write"])
    for bad in ("x" * 65, "h1_%21", "h1_.", "a%2Fb", "h1_%C3%A9"):
        r = c.call("GET", f"/api/v1/handles/{bad}")
        assert is_error(r, 400, "bad_handle"), f"malformed id {bad!r}: 400: {r}"
    r = c.call("GET", "/api/v1/handles/" + "x" * 300 + "/data")
    assert is_error(r, 400, "bad_handle"), f"very long id: 400: {r}"
    forged = [h[:-1] + ("0" if h[-1] != "0" else "1"), h[:10] + ("f" if h[10] != "f" else "e") + h[11:],
              "h1_" + "0" * 48,
              "whatever", h.upper()[:3] + h[3:]]
    for f in forged:
        r = c.stat(f)
        assert is_error(r, 404, "handle_gone"), f"well-formed unknown id {f}: 404: {r}"
    for off in (str(2 ** 63), str(2 ** 64 + 5), "-1", "1e3", "0x10", "", "%201", "1%00"):
        r = c.call("PUT", f"/api/v1/handles/{h}/data?offset={off}", b"x")
        assert is_error(r, 400, "bad_request"), f"offset {off!r}: 400: {r}"
    r = c.write(h, b"xy", offset=I63)
    assert is_error(r, 400), f"offset + length past 2^63-1: {r}"
    r = c.write(h, b"", offset=I63)
    assert r.status == 200, f"an empty write at 2^63-1 is fine: {r}"
    r = c.write(h, b"x", headers={"Content-Range": "bytes 0-0/*"})
    assert is_error(r, 400), f"Content-Range on a plain write: {r}"
    for body in ({"size": -1}, {"size": "5"}, {"size": 1.5}, {}, {"size": 1, "x": 2}):
        r = c.call("POST", f"/api/v1/handles/{h}/truncate", body)
        assert is_error(r, 400), f"truncate {body}: 400: {r}"
    r = c.call("POST", f"/api/v1/handles/{h}/truncate", b'{"size": 9223372036854775808}')
    assert is_error(r, 400), f"truncate past 2^63-1: {r}"
    for body in ({}, {"mode": "9"}, {"mode": 420}, {"mtime": "now"}, {"owner": "bob"}):
        r = c.call("POST", f"/api/v1/handles/{h}/attrs", body)
        assert is_error(r, 400), f"attrs {body}: 400: {r}"
    r = c.call("POST", f"/api/v1/handles/{h}")
    assert r.status == 405, f"POST on the handle: 405: {r}"
    r = c.call("GET", f"/api/v1/handles/{h}/nope")
    assert is_error(r, 404), f"unknown call: 404: {r}"
    st = c.stat(h).json()
    assert st["dirty"] is False and st["size"] == 9, f"no refused call changed the handle: {st}"
    assert c.close_h(h).status == 200
    assert c.get_file("/mal.bin").body == b"malformed", "the file is intact"
    c.close()


# ---------------------------------------------------------------- lifecycle

def test_create_visible_only_at_sync_or_close(hd):
    a, b = Client(hd), Client(hd)
    h = a.must_open("/created.bin", ["write", "create", "excl"])
    assert b.get_file("/created.bin").status == 404, "not visible before a commit"
    r = b.open("/created.bin", ["write", "create", "excl"])
    assert is_error(r, 409, "exists"), f"a second excl create while one is pending: {r}"
    assert a.write(h, b"new").status == 200
    assert b.get_file("/created.bin").status == 404, "still not visible after a write"
    assert a.sync(h).status == 200
    assert b.get_file("/created.bin").body == b"new", "visible at sync"
    assert a.close_h(h).status == 200
    # an empty create becomes an empty file at close
    h = a.must_open("/created-empty.bin", ["create"])
    assert b.get_file("/created-empty.bin").status == 404
    assert a.close_h(h).status == 200
    r = b.get_file("/created-empty.bin")
    assert r.status == 200 and r.body == b"", "create + close makes an empty file"
    a.close()
    b.close()


def test_abandon_leaves_previous_version(hd):
    c = Client(hd)
    c.put_file("/keep.bin", b"previous")
    v0 = versions(c, "/keep.bin")
    h = c.must_open("/keep.bin", ["write", "truncate"])
    assert c.write(h, b"next").status == 200
    r = c.abandon(h)
    assert r.status == 204 and r.body == b"", f"abandon: {r}"
    assert c.get_file("/keep.bin").body == b"previous", "previous version kept"
    assert versions(c, "/keep.bin") == v0, "no version from an abandoned handle"
    assert is_error(c.stat(h), 404), "abandoned handle is gone"
    h = c.must_open("/abandoned-create.bin", ["write", "create"])
    assert c.write(h, b"never").status == 200
    assert c.abandon(h).status == 204
    assert c.get_file("/abandoned-create.bin").status == 404, "abandoned create leaves nothing"
    c.close()


def test_idle_timeout(make_daemon):
    port = free_port()
    d = make_daemon(sections(port), storaged={"handle_idle_timeout": "2s"}, name="hidle")
    d.port = port
    d.add_user(*ALICE)
    c = Client(d)
    c.put_file("/idle.bin", b"previous")
    h = c.must_open("/idle.bin", ["read", "write"])
    r = c.stat(h)
    assert r.json()["idle_timeout"] == 2, f"idle_timeout reported: {r}"
    hk = c.must_open("/idle.bin")
    assert c.write(h, b"UNSAVED").status == 200
    for _ in range(4):  # kept alive by use
        time.sleep(0.8)
        assert c.stat(hk).status == 200, "a handle in use stays"
    assert c.stat(h).status == 404, "the unused one expired meanwhile"
    time.sleep(3.5)
    r = c.read(hk)
    assert is_error(r, 404, "handle_gone"), f"expired after 2 s idle: {r}"
    assert c.get_file("/idle.bin").body == b"previous", "previous version intact"
    rows = [e for e in journal(d) if e["op"] == "handle_expired"]
    assert len(rows) == 2 and all(e["path"] == "/idle.bin" and e["user"] == "alice"
                                  for e in rows), f"journal says so: {rows}"
    text = d.ctl("journal").stdout
    assert "handle_expired /idle.bin" in text, f"storagectl journal shows it: {text[-500:]}"
    c.close()


def test_handle_limits(make_daemon):
    port = free_port()
    d = make_daemon(sections(port), storaged={"max_handles_per_user": "10", "max_handles": "16"},
                    name="hlimit")
    d.port = port
    d.add_user(*ALICE)
    d.add_user(*BOB)
    a, b = Client(d), Client(d, BOB)
    a.put_file("/l.bin", b"l")
    b.put_file("/l.bin", b"l")
    ha = [a.must_open("/l.bin") for _ in range(10)]
    r = a.open("/l.bin")
    assert is_error(r, 429, "too_many_handles") and r.header("Retry-After"), \
        f"per-user limit: 429: {r}"
    hb = [b.must_open("/l.bin") for _ in range(6)]
    r = b.open("/l.bin")
    assert is_error(r, 429, "too_many_handles"), f"server-wide limit (16): 429: {r}"
    assert a.close_h(ha.pop()).status == 200
    hb.append(b.must_open("/l.bin"))  # a freed slot is usable again
    for h in ha:
        assert a.abandon(h).status == 204
    for h in hb:
        assert b.close_h(h).status == 200
    assert a.must_open("/l.bin"), "all freed"
    a.close()
    b.close()


def test_kill9_with_unsaved_writes(make_daemon):
    port = free_port()
    d = make_daemon(sections(port), name="hkill")
    d.port = port
    d.add_user(*ALICE)
    c = Client(d)
    c.put_file("/k.bin", b"v1")
    h = c.must_open("/k.bin", ["read", "write"])
    assert c.write(h, b"v2-synced").status == 200
    assert c.sync(h).status == 200
    assert c.write(h, b"v3 never saved" * 1000, offset=0).status == 200
    hn = c.must_open("/k-new.bin", ["write", "create"])
    assert c.write(hn, b"pending").status == 200
    c.close()
    d.kill()
    d.start()
    c = Client(d)
    r = c.get_file("/k.bin")
    assert r.status == 200 and r.body == b"v2-synced", f"the last commit survives: {r}"
    assert c.get_file("/k-new.bin").status == 404, "an uncommitted create left nothing"
    for hh in (h, hn):
        assert is_error(c.stat(hh), 404, "handle_gone"), "old ids answer 404 after a restart"
        assert is_error(c.read(hh), 404, "handle_gone"), "old ids answer 404 after a restart"
    c.close()


# ---------------------------------------------------------------- conditional commits

def test_if_match_on_sync_and_close(hd):
    """If-Match: "<sha256>" on sync/close commits only on that version; 412 keeps the
    handle open with its writes; a malformed If-Match is 400 and commits nothing."""
    a, b = Client(hd), Client(hd)
    a.put_file("/im.bin", b"base")
    base = sha(b"base")
    h1 = a.must_open("/im.bin", ["read", "write"])
    h2 = b.must_open("/im.bin", ["read", "write"])
    assert a.write(h1, b"ONE!", offset=0).status == 200
    assert b.write(h2, b"TWO!", offset=0).status == 200
    r = a.call("POST", f"/api/v1/handles/{h1}/sync", headers={"If-Match": f'"{base}"'})
    assert r.status == 200 and r.json()["sha256"] == sha(b"ONE!"), f"matching If-Match: {r}"
    v = versions(a, "/im.bin")
    r = b.call("POST", f"/api/v1/handles/{h2}/close", headers={"If-Match": f'"{base}"'})
    assert is_error(r, 412, "precondition_failed"), f"someone committed meanwhile: {r}"
    assert a.get_file("/im.bin").body == b"ONE!", "the newer version is not written over"
    assert versions(a, "/im.bin") == v, "nothing committed"
    r = b.stat(h2)
    assert r.status == 200 and r.json()["dirty"] is True, f"the handle stays open and dirty: {r}"
    assert b.read(h2).body == b"TWO!", "its writes are kept"
    for bad in ('"abc"', "W/\"" + base + '"', base.upper()):
        r = b.call("POST", f"/api/v1/handles/{h2}/sync", headers={"If-Match": bad})
        assert is_error(r, 400, "bad_request"), f"malformed If-Match {bad}: {r}"
    r = b.call("POST", f"/api/v1/handles/{h2}/close", headers={"If-Match": sha(b"ONE!")})
    assert r.status == 200 and r.json()["sha256"] == sha(b"TWO!"), f"on the current version: {r}"
    assert is_error(b.stat(h2), 404, "handle_gone"), "closed"
    assert a.get_file("/im.bin").body == b"TWO!"
    r = a.call("POST", f"/api/v1/handles/{h1}/close", headers={"If-Match": "*"})
    assert r.status == 200, f"If-Match: * is a plain close: {r}"
    a.close()
    b.close()


def test_handle_kept_alive_by_stat(make_daemon):
    """Any call on a handle, a GET of its stat included, resets its idle clock: a client
    that polls every half timeout keeps its unsaved writes."""
    port = free_port()
    d = make_daemon(sections(port), storaged={"handle_idle_timeout": "2s"}, name="hkeep")
    d.port = port
    d.add_user(*ALICE)
    c = Client(d)
    h = c.must_open("/keep.bin", ["write", "create"])
    assert c.write(h, b"kept across 5 s").status == 200
    for _ in range(5):
        time.sleep(1.0)
        assert c.stat(h).status == 200, "kept alive by GET /api/v1/handles/{id}"
    r = c.close_h(h)
    assert r.status == 200 and c.get_file("/keep.bin").body == b"kept across 5 s", f"{r}"
    c.close()
