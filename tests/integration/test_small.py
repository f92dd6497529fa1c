"""Small files (issue 14): inline and file blobs through every protocol, instant upload over
FTP (SITE INSTANT / SITE PROVE) and SFTP (instant@storaged), an SFTP session that keeps serving
while a CLOSE commits, and kill -9 during parallel small-file uploads.

1. the threshold edge (inline_max - 1, inline_max, + 1, and 0, 1, 3 x inline_max) uploaded
   over FTP, SFTP and HTTP: byte-identical round trips, ranges (FTP REST, SFTP reads at
   offsets, HTTP Range), a blob file only above inline_max;
2. dedup across the two kinds (a restart with another inline_max in between);
3. instant upload over FTP and SFTP: held content (no proof), a stranger's inline and file
   content with a proof, wrong proofs, replays, unknown content, bad arguments, read-only;
4. the cleaner and fsck with both kinds;
5. an SFTP CLOSE whose commit waits for the database (another process holds its write lock):
   stats, reads and other handles are answered meanwhile, a STAT of the same file waits;
6. kill -9 during 8 parallel small-file upload loops (FTP, SFTP, HTTP), ROUNDS rounds (env
   SMALL_ROUNDS, default 20, as the issue asks): every acknowledged file present and identical, fsck clean;
7. the instant-upload examples of docs/ftp.md and docs/sftp.md run as written.
"""
import ftplib
import hashlib
import http.client
import io
import os
import random
import re
import sqlite3
import threading
import time

import paramiko
import pytest
from paramiko.sftp import CMD_EXTENDED, CMD_STAT, CMD_CLOSE, CMD_READ, CMD_STATUS, CMD_ATTRS, CMD_DATA

from conftest import (HOST, SftpSession, daemon_scope, free_port, ftp_get, ftp_login, ftp_put,
                      lftp, out, ssh_keygen)

try:  # paramiko 3: int64 marks a uint64 field; paramiko 2: py3compat.long
    from paramiko.sftp import int64
except ImportError:
    from paramiko.py3compat import long as int64

IMAX = 8192
PW = "smallpw1"
ROUNDS = int(os.environ.get("SMALL_ROUNDS", "20"))


def sections(fport, sport, hport):
    return {
        "ftp": {"enabled": "yes", "listen": f"{HOST}:{fport}", "max_per_ip": "60"},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sport}",
                 "max_per_ip": "60"},
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{hport}",
                 "max_per_ip": "60"},
    }


def setup_users(d):
    for u in ("alice", "bob", "carol"):
        d.add_user(u, PW)


@pytest.fixture(scope="module")
def smalld():
    """FTP, SFTP and HTTP on one daemon with inline_max = 8K; users alice, bob, carol."""
    fport, sport, hport = free_port(), free_port(), free_port()
    with daemon_scope(sections(fport, sport, hport), storaged={"inline_max": "8K"},
                      name="small", setup=setup_users) as d:
        d.fport, d.sport, d.hport = fport, sport, hport
        yield d


def sha(b):
    return hashlib.sha256(b).hexdigest()


def http_req(d, method, path, user="alice", body=None, headers=None):
    """One request on a fresh connection: (status, headers dict (lower-case), body)."""
    c = http.client.HTTPConnection(HOST, d.hport, timeout=30)
    h = {"Authorization": "Basic " + __import__("base64").b64encode(f"{user}:{PW}".encode()).decode()}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def http_put(d, path, data, user="alice"):
    return http_req(d, "PUT", "/api/v1/fs" + path, user, body=data)


def http_get(d, path, user="alice", rng=None):
    return http_req(d, "GET", "/api/v1/fs" + path, user, headers={"Range": rng} if rng else None)


def sql_int(d, q):
    con = sqlite3.connect(os.path.join(d.data, "storaged.db"), timeout=30)
    try:
        return con.execute(q).fetchone()[0]
    finally:
        con.close()


def sftp_instant(sftp, path, digest, size, nonce=None, proof=None):
    """instant@storaged: ("stored", attrs) | ("challenge", nonce, ranges) | ("send-data",).
    Errors (a wrong proof ...) raise IOError like any paramiko request."""
    args = [path, digest, int64(size)] + ([nonce, proof] if nonce is not None else [])
    t, msg = sftp._request(CMD_EXTENDED, "instant@storaged", *args)
    word = msg.get_text()
    if word == "challenge":
        n_ = msg.get_text()
        ranges = [(msg.get_int64(), msg.get_int64()) for _ in range(msg.get_int())]
        return ("challenge", n_, ranges)
    if word == "stored":
        return ("stored", paramiko.SFTPAttributes._from_msg(msg))
    return (word,)


def proof_of(nonce, ranges, data):
    h = hashlib.sha256(nonce.encode())
    for off, ln in ranges:
        h.update(data[off:off + ln])
    return h.hexdigest()


def ftp_challenge(reply):
    m = re.match(r"350 Challenge nonce=([0-9a-f]{64}) ranges=(\S*) ", reply)
    assert m, f"a 350 challenge reply: {reply!r}"
    ranges = [tuple(int(x) for x in r.split(":")) for r in m.group(2).split(",") if r]
    return m.group(1), ranges


def ftp_cmd(f, line):
    """The whole reply to a raw command, errors included."""
    try:
        return f.sendcmd(line)
    except ftplib.all_errors as e:
        return str(e)


# ---------------------------------------------------------------- 1. threshold, ranges

SIZES = [0, 1, IMAX - 1, IMAX, IMAX + 1, 3 * IMAX]


def test_threshold_every_protocol(smalld):
    d = smalld
    blobs0 = d.blob_names()
    inline0 = sql_int(d, "SELECT count(*) FROM blob_inline")
    datas = {}
    f = ftp_login(d.fport, "alice", PW)
    with SftpSession(d.sport, "alice", PW) as sf:
        for proto in ("ftp", "sftp", "http"):
            for n in SIZES:
                data = os.urandom(n)
                name = f"/edge-{proto}-{n}"
                datas[name] = data
                if proto == "ftp":
                    ftp_put(f, name, data)
                elif proto == "sftp":
                    with sf.open(name, "wb") as fh:
                        fh.write(data)
                else:
                    st, _, body = http_put(d, name, data)
                    assert st in (200, 201), f"PUT {name}: {st} {body[:200]}"
        # every file back through every protocol, whole and in ranges
        for name, data in datas.items():
            n = len(data)
            assert ftp_get(f, name) == data, f"FTP RETR {name} identical"
            with sf.open(name, "rb") as fh:
                assert fh.read() == data, f"SFTP read {name} identical"
                if n > 10:
                    fh.seek(n - 10)
                    assert fh.read(100) == data[-10:], f"SFTP read at offset {n - 10} of {name}"
            st, _, body = http_get(d, name)
            assert st == 200 and body == data, f"HTTP GET {name} identical ({st})"
            if n > 10:
                assert ftp_get(f, name, rest=n - 10) == data[-10:], f"FTP REST {n - 10} + RETR {name}"
                st, h, body = http_get(d, name, rng=f"bytes=5-{n - 3}")
                assert st == 206 and body == data[5:n - 2], f"HTTP Range 5-{n - 3} of {name}: {st}"
    f.quit()
    files = d.blob_names() - blobs0
    inl = sql_int(d, "SELECT count(*) FROM blob_inline") - inline0
    big = {sha(v) for v in datas.values() if len(v) > IMAX}
    small = {sha(v) for v in datas.values() if len(v) <= IMAX}
    assert files == big, f"blob files exactly for the contents above inline_max: {len(files)} vs {len(big)}"
    assert inl == len(small), f"one inline row per content up to inline_max: {inl} vs {len(small)}"
    assert not d.tmp_files(), f"no temp file left: {d.tmp_files()}"


# ---------------------------------------------------------------- 2. dedup across kinds

def test_dedup_inline_and_file(make_daemon):
    fport, sport, hport = free_port(), free_port(), free_port()
    d = make_daemon(sections(fport, sport, hport), storaged={"inline_max": "8K"}, name="dedup",
                    start=False)
    d.fport, d.sport, d.hport = fport, sport, hport
    setup_users(d)
    d.start()
    x, y = os.urandom(6000), os.urandom(7000)
    assert http_put(d, "/x", x)[0] in (200, 201)
    assert sha(x) not in d.blob_names(), "6000 bytes with inline_max 8K: inline"
    d.stop()
    d.keys["inline_max"] = "4K"
    d.start()
    f = ftp_login(d.fport, "bob", PW)
    ftp_put(f, "/x-again", x)
    f.quit()
    assert sha(x) not in d.blob_names(), "the same content with inline_max 4K: the inline blob is used"
    with SftpSession(d.sport, "carol", PW) as sf:
        with sf.open("/y", "wb") as fh:
            fh.write(y)
    assert sha(y) in d.blob_names(), "7000 bytes with inline_max 4K: a blob file"
    rows = sql_int(d, "SELECT count(*) FROM blob_inline")
    d.stop()
    d.keys["inline_max"] = "8K"
    d.start()
    with SftpSession(d.sport, "alice", PW) as sf:
        with sf.open("/y-again", "wb") as fh:
            fh.write(y)
        with sf.open("/x", "rb") as fh:
            assert fh.read() == x, "alice's inline x identical"
    assert sql_int(d, "SELECT count(*) FROM blob_inline") == rows, \
        "the file blob is used for y with inline_max 8K: no inline row added"
    assert sql_int(d, "SELECT count(*) FROM blobs") == 2, "two contents, two blob rows"
    for user, path, data in (("bob", "/x-again", x), ("alice", "/y-again", y), ("carol", "/y", y)):
        st, _, body = http_get(d, path, user=user)
        assert st == 200 and body == data, f"{user} {path} identical"
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean: {out(r)}"


# ---------------------------------------------------------------- 3. instant upload

def test_ftp_instant(smalld):
    d = smalld
    small, big, big2 = os.urandom(3000), os.urandom(3 * IMAX + 5), os.urandom(IMAX + 100)
    for name, data in (("/inst-small", small), ("/inst-big", big), ("/inst-big2", big2)):
        assert http_put(d, name, data)[0] in (200, 201)
    f = ftp_login(d.fport, "alice", PW)
    # held content: done at once, no proof
    r = ftp_cmd(f, f"SITE INSTANT {sha(small)} {len(small)} mine-again")
    assert r.startswith("250 "), f"own content: 250 at once: {r}"
    assert ftp_get(f, "/mine-again") == small, "the instant copy reads back identical"
    # unknown content
    r = ftp_cmd(f, f"SITE INSTANT {sha(b'never stored')} 12 nothing")
    assert r.startswith("550 ") and "STOR" in r, f"unknown content: 550 send data: {r}"
    # bad arguments
    for line in ("SITE INSTANT", f"SITE INSTANT {sha(small)[:60]} 3000 p", f"SITE INSTANT {sha(small)} -1 p",
                 f"SITE INSTANT {sha(small)} 3000", f"SITE INSTANT {sha(small)} 12x p", "SITE PROVE onlyone"):
        r = ftp_cmd(f, line)
        assert r[:3] in ("501", "500"), f"{line!r}: 501: {r}"
    f.quit()

    g = ftp_login(d.fport, "bob", PW)
    for name, data in (("/got-small", small), ("/got-big", big)):
        r = ftp_cmd(g, f"SITE INSTANT {sha(data)} {len(data)} {name}")
        nonce, ranges = ftp_challenge(r)
        assert ranges and all(off + ln <= len(data) for off, ln in ranges), f"ranges inside: {ranges}"
        # a wrong proof: refused, nothing stored, and the nonce is used up
        r = ftp_cmd(g, f"SITE PROVE {nonce} {'0' * 64}")
        assert r.startswith("550 ") and "proof" in r, f"wrong proof: 550: {r}"
        assert ftp_code(g, f"SIZE {name}") == "550", f"nothing stored after a wrong proof: {name}"
        r = ftp_cmd(g, f"SITE PROVE {nonce} {proof_of(nonce, ranges, data)}")
        assert r.startswith("550 "), f"the right proof after the nonce was used: stale: {r}"
        # a fresh challenge, answered right
        nonce, ranges = ftp_challenge(ftp_cmd(g, f"SITE INSTANT {sha(data)} {len(data)} {name}"))
        r = ftp_cmd(g, f"SITE PROVE {nonce} {proof_of(nonce, ranges, data)}")
        assert r.startswith("250 "), f"right proof: 250: {r}"
        assert ftp_get(g, name) == data, f"bob's {name} identical"
        # a replay of the answer that worked
        r = ftp_cmd(g, f"SITE PROVE {nonce} {proof_of(nonce, ranges, data)}")
        assert r.startswith("550 "), f"replayed proof: 550: {r}"
    # a proof computed over other bytes of the same size
    nonce, ranges = ftp_challenge(ftp_cmd(g, f"SITE INSTANT {sha(big2)} {len(big2)} /cross"))
    r = ftp_cmd(g, f"SITE PROVE {nonce} {proof_of(nonce, ranges, os.urandom(len(big2)))}")
    assert r.startswith("550 "), f"proof from other bytes: 550: {r}"
    g.quit()
    # the five-argument form, on another connection (carol does not hold small)
    g = ftp_login(d.fport, "carol", PW)
    nonce, ranges = ftp_challenge(ftp_cmd(g, f"SITE INSTANT {sha(small)} {len(small)} /other-conn"))
    g.quit()
    h = ftp_login(d.fport, "carol", PW)
    r = ftp_cmd(h, f"SITE PROVE {nonce} {proof_of(nonce, ranges, small)}")
    assert r.startswith("550 "), f"two-argument PROVE on another connection has no challenge: {r}"
    nonce, ranges = ftp_challenge(ftp_cmd(h, f"SITE INSTANT {sha(small)} {len(small)} /other-conn"))
    h.quit()
    h = ftp_login(d.fport, "carol", PW)
    r = ftp_cmd(h, f"SITE PROVE {nonce} {proof_of(nonce, ranges, small)} {sha(small)} {len(small)} /other-conn")
    assert r.startswith("250 "), f"five-argument PROVE on a new connection: {r}"
    assert ftp_get(h, "/other-conn") == small
    # now bob holds it: no challenge any more
    r = ftp_cmd(h, f"SITE INSTANT {sha(small)} {len(small)} /third")
    assert r.startswith("250 "), f"held now: 250: {r}"
    h.quit()
    # read-only token
    tok = d.token("carol", "--scope", "ro")
    k = ftp_login(d.fport, "carol", tok)
    r = ftp_cmd(k, f"SITE INSTANT {sha(small)} {len(small)} /ro")
    assert r.startswith("550 ") and "read-only" in r, f"read-only login: 550: {r}"
    k.quit()
    # lftp quote, as docs/ftp.md shows it
    r = lftp(d.fport, "alice", PW, f"quote SITE INSTANT {sha(big)} {len(big)} from-lftp")
    assert r.returncode == 0 and "250" in out(r), f"lftp quote SITE INSTANT: {out(r)}"


def ftp_code(f, line):
    return ftp_cmd(f, line)[:3]


def test_sftp_instant(smalld):
    d = smalld
    small, big, big3 = os.urandom(2500), os.urandom(2 * IMAX + 7), os.urandom(IMAX + 9)
    for name, data in (("/s-small", small), ("/s-big", big), ("/s-big3", big3)):
        assert http_put(d, name, data, user="carol")[0] in (200, 201)
    with SftpSession(d.sport, "carol", PW) as sf:
        r = sftp_instant(sf, "/s-again", sha(small), len(small))
        assert r[0] == "stored" and r[1].st_size == len(small), f"held content: stored: {r}"
        with sf.open("/s-again", "rb") as fh:
            assert fh.read() == small
        assert sftp_instant(sf, "/nope", sha(b"x" * 33), 33) == ("send-data",), "unknown: send-data"
        with pytest.raises(IOError):
            sftp_instant(sf, "/bad", "zz" * 32, 3)
    with SftpSession(d.sport, "bob", PW) as sf:
        for name, data in (("/b-small", small), ("/b-big", big)):
            r = sftp_instant(sf, name, sha(data), len(data))
            assert r[0] == "challenge" and len(r[1]) == 64 and r[2], f"a stranger gets a challenge: {r}"
            _, nonce, ranges = r
            with pytest.raises(PermissionError):
                sftp_instant(sf, name, sha(data), len(data), nonce, "0" * 64)
            with pytest.raises(FileNotFoundError):
                sf.stat(name)
            with pytest.raises(PermissionError):  # the nonce was used by the wrong answer
                sftp_instant(sf, name, sha(data), len(data), nonce, proof_of(nonce, ranges, data))
            _, nonce, ranges = sftp_instant(sf, name, sha(data), len(data))
            r = sftp_instant(sf, name, sha(data), len(data), nonce, proof_of(nonce, ranges, data))
            assert r[0] == "stored" and r[1].st_size == len(data), f"right proof: stored: {r}"
            with sf.open(name, "rb") as fh:
                assert fh.read() == data, f"bob's {name} identical"
            with pytest.raises(PermissionError):  # replay
                sftp_instant(sf, name + "2", sha(data), len(data), nonce, proof_of(nonce, ranges, data))
        # a nonce of the wrong length, and the proof for another content
        with pytest.raises(PermissionError):
            sftp_instant(sf, "/short", sha(small), len(small), "ab", "cd")
        _, nonce, ranges = sftp_instant(sf, "/c2", sha(big3), len(big3))
        with pytest.raises(PermissionError):
            sftp_instant(sf, "/c2", sha(small), len(small), nonce, proof_of(nonce, ranges, big3))


# ---------------------------------------------------------------- 4. cleaner and fsck

def test_cleaner_and_fsck_both_kinds(smalld):
    d = smalld
    inline_data, file_data = os.urandom(4000), os.urandom(IMAX * 2)
    f = ftp_login(d.fport, "carol", PW)
    ftp_put(f, "/gc-inline", inline_data)
    ftp_put(f, "/gc-file", file_data)
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean with both kinds: {out(r)}"
    n_inline = sql_int(d, f"SELECT count(*) FROM blob_inline i JOIN blobs b ON b.id = i.blob "
                          f"WHERE b.sha256 = '{sha(inline_data)}'")
    assert n_inline == 1 and sha(file_data) in d.blob_names(), "one of each kind stored"
    f.delete("/gc-inline")
    f.delete("/gc-file")
    f.quit()
    r = d.ctl("gc", "--now", check=False)
    assert r.returncode == 0, f"gc --now: {out(r)}"
    assert sql_int(d, f"SELECT count(*) FROM blobs WHERE sha256 IN ('{sha(inline_data)}', "
                      f"'{sha(file_data)}')") == 0, "both blob rows removed by the cleaner"
    assert sql_int(d, "SELECT count(*) FROM blob_inline WHERE blob NOT IN (SELECT id FROM blobs)") == 0, \
        "no inline row without its blob"
    assert sha(file_data) not in d.blob_names(), "the blob file removed"
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean after the cleaner: {out(r)}"


# ---------------------------------------------------------------- 5. CLOSE does not stall

def raw_send(sf, t, *args):
    """Send a request without waiting; returns its id."""
    return sf._async_request(type(None), t, *args)


def raw_read(sf):
    """The next reply: (type, id, msg)."""
    t, data = sf._read_packet()
    msg = paramiko.Message(data)
    return t, msg.get_int(), msg


def test_sftp_close_does_not_stall(smalld):
    d = smalld
    other = os.urandom(50000)
    assert http_put(d, "/stall-other", other, user="carol")[0] in (200, 201)
    t = paramiko.Transport((HOST, d.sport))
    t.connect(username="carol", password=PW)
    sf = paramiko.SFTPClient.from_transport(t)
    try:
        rd = sf.open("/stall-other", "rb")
        wf = sf.open("/stall-new", "wb")
        data = os.urandom(20000)
        wf.write(data)
        wf.flush()
        rh, wh = rd.handle, wf.handle
        con = sqlite3.connect(os.path.join(d.data, "storaged.db"), timeout=30, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")  # the daemon's commit waits for this lock
        try:
            close_id = raw_send(sf, CMD_CLOSE, wh)
            time.sleep(0.3)
            stat_id = raw_send(sf, CMD_STAT, "/stall-other")
            read_id = raw_send(sf, CMD_READ, rh, int64(100), 1000)
            same_id = raw_send(sf, CMD_STAT, "/stall-new")  # about the file being committed
            got = []
            for _ in range(2):
                typ, rid, msg = raw_read(sf)
                got.append(rid)
                if rid == read_id:
                    assert typ == CMD_DATA and msg.get_binary() == other[100:1100], \
                        "READ on another handle answered while the CLOSE waits"
                elif rid == stat_id:
                    assert typ == CMD_ATTRS, "STAT of another file answered while the CLOSE waits"
            assert sorted(got) == sorted([stat_id, read_id]), \
                f"the STAT and READ replies came first (ids {got}; close {close_id}, same-file stat {same_id})"
        finally:
            con.execute("ROLLBACK")
            con.close()
        typ, rid, msg = raw_read(sf)
        assert rid == close_id and typ == CMD_STATUS and msg.get_int() == 0, \
            f"then the CLOSE: OK (id {rid}, type {typ})"
        typ, rid, msg = raw_read(sf)
        assert rid == same_id and typ == CMD_ATTRS, "the STAT of the same file waited for the CLOSE"
        attrs = paramiko.SFTPAttributes._from_msg(msg)
        assert attrs.st_size == len(data), f"and sees the committed file: {attrs.st_size}"
        sf._expecting.clear()
        rd.close()
        with sf.open("/stall-new", "rb") as fh:
            assert fh.read() == data, "the committed file identical"
    finally:
        sf.close()
        t.close()


# ---------------------------------------------------------------- 6. kill -9 during uploads

class Loop(threading.Thread):
    """Uploads small files in a loop until the connection fails; acked[name] = data for every
    upload the server acknowledged."""

    def __init__(self, d, proto, idx, rnd, barrier):
        super().__init__(daemon=True)
        self.d, self.proto, self.idx, self.rnd, self.barrier = d, proto, idx, rnd, barrier
        self.acked = {}
        self.err = None

    def data(self, i):
        # mostly inline sizes, every 7th one above inline_max (a blob file)
        n = random.randint(1, IMAX) if i % 7 else random.randint(IMAX + 1, 3 * IMAX)
        return os.urandom(n)

    def run(self):
        d, i = self.d, 0
        try:
            if self.proto == "ftp":
                f = ftp_login(d.fport, "alice", PW)
                self.barrier.wait()
                while True:
                    name, data = f"/k{self.rnd}-{self.proto}{self.idx}-{i}", self.data(i)
                    f.storbinary(f"STOR {name}", io.BytesIO(data))
                    self.acked[name] = data
                    i += 1
            elif self.proto == "sftp":
                t = paramiko.Transport((HOST, d.sport))
                t.connect(username="alice", password=PW)
                sf = paramiko.SFTPClient.from_transport(t)
                self.barrier.wait()
                while True:
                    name, data = f"/k{self.rnd}-{self.proto}{self.idx}-{i}", self.data(i)
                    with sf.open(name, "wb") as fh:
                        fh.write(data)
                    self.acked[name] = data
                    i += 1
            else:
                c = http.client.HTTPConnection(HOST, d.hport, timeout=30)
                auth = "Basic " + __import__("base64").b64encode(f"alice:{PW}".encode()).decode()
                self.barrier.wait()
                while True:
                    name, data = f"/k{self.rnd}-{self.proto}{self.idx}-{i}", self.data(i)
                    c.request("PUT", "/api/v1/fs" + name, body=data, headers={"Authorization": auth})
                    r = c.getresponse()
                    r.read()
                    if r.status in (200, 201):
                        self.acked[name] = data
                    else:
                        self.err = f"HTTP {r.status}"
                        return
                    i += 1
        except Exception as e:  # the daemon was killed: the loop ends here
            self.err = repr(e)
            self.barrier.abort()


@pytest.mark.timeout(600)
def test_kill9_parallel_small_uploads(make_daemon):
    fport, sport, hport = free_port(), free_port(), free_port()
    d = make_daemon(sections(fport, sport, hport), storaged={"inline_max": "8K"}, name="kill9",
                    start=False)
    d.fport, d.sport, d.hport = fport, sport, hport
    setup_users(d)
    total = 0
    for rnd in range(ROUNDS):
        d.start()
        barrier = threading.Barrier(9)
        loops = [Loop(d, p, i, rnd, barrier) for p, i in (("ftp", 0), ("ftp", 1), ("ftp", 2), ("sftp", 0),
                                                          ("sftp", 1), ("sftp", 2), ("http", 0), ("http", 1))]
        for lp in loops:
            lp.start()
        barrier.wait(120)  # every client logged in
        time.sleep(1.0 + random.random())
        d.kill()
        for lp in loops:
            lp.join(60)
            assert not lp.is_alive(), f"{lp.proto}{lp.idx}: the client loop ended after the kill"
        acked = {}
        for lp in loops:
            acked.update(lp.acked)
        assert all(lp.acked for lp in loops), \
            f"round {rnd}: every loop stored something: {[(lp.proto, len(lp.acked), lp.err) for lp in loops]}"
        d.start()
        bad = []
        with SftpSession(d.sport, "alice", PW) as sf:
            for name, data in acked.items():
                try:
                    with sf.open(name, "rb") as fh:
                        if fh.read() != data:
                            bad.append(name + " differs")
                except IOError as e:
                    bad.append(f"{name}: {e}")
        assert not bad, f"round {rnd}: acknowledged files missing or different: {bad[:10]} ({len(bad)})"
        total += len(acked)
        d.stop()
        r = d.ctl("fsck", check=False)
        assert r.returncode == 0, f"round {rnd}: fsck clean after kill -9 and restart: {out(r)}"
    assert total > 8 * ROUNDS, f"files acknowledged over {ROUNDS} rounds: {total}"


# ---------------------------------------------------------------- 7. the docs' examples

def doc_block(doc, after, lang):
    """The first ```lang block after the line containing `after` in docs/<doc>."""
    text = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", doc)).read()
    i = text.index(after)
    m = re.search(r"```" + lang + r"\n(.*?)```", text[i:], re.S)
    assert m, f"a {lang} example after {after!r} in {doc}"
    return m.group(1)


def test_doc_examples(smalld, tmp_path):
    """The instant-upload examples of docs/ftp.md and docs/sftp.md, as written (only host
    ports and the password changed): bob proves possession of alice's content."""
    d = smalld
    data = os.urandom(300000)
    assert http_put(d, "/doc-src", data, user="alice")[0] in (200, 201)
    (tmp_path / "big.iso").write_bytes(data)
    ftp_code_ = doc_block("ftp.md", "The whole\ndialogue", "python").replace(
        'ftplib.FTP("127.0.0.1")', f'ftplib.FTP(); ftp.connect("127.0.0.1", {d.fport})').replace(
        '"secret"', f'"{PW}"')
    sftp_code = doc_block("sftp.md", "With paramiko", "python").replace(
        '("127.0.0.1", 2222)', f'("127.0.0.1", {d.sport})').replace('"secret"', f'"{PW}"').replace(
        '"/big.iso"', '"/big-sftp.iso"')
    for code, name in ((ftp_code_, "/big.iso"), (sftp_code, "/big-sftp.iso")):
        r = __import__("subprocess").run(["/usr/bin/python3", "-c", code], cwd=tmp_path,
                                         capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"doc example runs: {r.stdout}{r.stderr}"
        st, _, body = http_get(d, name, user="bob")
        assert st == 200 and body == data, f"the doc example made {name} for bob ({st})"
    # lftp, for content bob holds now
    sh = doc_block("ftp.md", "With lftp, for content", "sh").replace("alice,secret", f"bob,{PW}").replace(
        "127.0.0.1", f"-p {d.fport} 127.0.0.1")
    r = __import__("subprocess").run(["bash", "-c", sh], cwd=tmp_path, capture_output=True, text=True,
                                     timeout=60)
    assert r.returncode == 0 and "250 Instant upload: /copy-of-big.iso" in r.stdout + r.stderr, \
        f"the lftp example: {r.stdout}{r.stderr}"
