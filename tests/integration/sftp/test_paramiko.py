"""SFTP front end, driven with paramiko against the daemon started by run.sh.

Environment (exported by run.sh): SD_ROOT, SD_CONF, SD_DATA, SD_LOG,
SFTP_PORT, SFTP_ALICE_KEY. Users alice (alicepw1) and bob (bobpw1) exist.
"""
import errno
import hashlib
import io
import os
import re
import socket
import struct
import subprocess
import threading
import time

import paramiko
import pytest

PORT = int(os.environ["SFTP_PORT"])
ROOT = os.environ["SD_ROOT"]
CONF = os.environ["SD_CONF"]
DATA = os.environ["SD_DATA"]
LOG = os.environ["SD_LOG"]

# SFTP constants
FXP_INIT, FXP_VERSION, FXP_OPEN, FXP_CLOSE, FXP_READ, FXP_WRITE = 1, 2, 3, 4, 5, 6
FXP_STAT, FXP_REALPATH, FXP_EXTENDED = 17, 16, 200
FXP_STATUS, FXP_HANDLE, FXP_DATA, FXP_NAME, FXP_ATTRS, FXP_EXTENDED_REPLY = 101, 102, 103, 104, 105, 201
FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, FX_FAILURE = 0, 1, 2, 3, 4
FX_BAD_MESSAGE, FX_OP_UNSUPPORTED, FX_INVALID_HANDLE = 5, 8, 9


def ctl(*args, input=None, check=True):
    r = subprocess.run([os.path.join(ROOT, "storagectl"), "-c", CONF, *args],
                       input=input, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"storagectl {args}: {r.returncode} {r.stderr}")
    return r


def transport(user, password=None, pkey=None):
    t = paramiko.Transport(("127.0.0.1", PORT))
    t.banner_timeout = 15
    t.connect(username=user, password=password, pkey=pkey)
    return t


class Session:
    def __init__(self, user="alice", password="alicepw1", pkey=None):
        self.t = transport(user, password=password, pkey=pkey)
        self.sftp = paramiko.SFTPClient.from_transport(self.t)

    def close(self):
        try:
            self.sftp.close()
        finally:
            self.t.close()

    def __enter__(self):
        return self.sftp

    def __exit__(self, *a):
        self.close()


def put_bytes(sftp, path, data):
    sftp.putfo(io.BytesIO(data), path)


def get_bytes(sftp, path):
    b = io.BytesIO()
    sftp.getfo(path, b)
    return b.getvalue()


def blob_count():
    n = 0
    for _, _, files in os.walk(os.path.join(DATA, "blobs")):
        n += sum(1 for f in files if len(f) == 64)
    return n


# ------------------------------------------------------------ auth

def test_password_login():
    with Session() as s:
        assert s.normalize(".") == "/"


def test_wrong_password_refused():
    with pytest.raises(paramiko.AuthenticationException):
        transport("alice", password="not-the-password")


def test_unknown_user_refused():
    with pytest.raises(paramiko.AuthenticationException):
        transport("nobody-here", password="x")


def test_publickey_login_paramiko():
    key = paramiko.Ed25519Key.from_private_key_file(os.environ["SFTP_ALICE_KEY"])
    with Session(password=None, pkey=key) as s:
        s.listdir("/")


def test_forwarding_refused():
    t = transport("alice", password="alicepw1")
    with pytest.raises(paramiko.ChannelException):
        t.open_channel("direct-tcpip", ("127.0.0.1", 9), ("127.0.0.1", 5555))
    with pytest.raises(paramiko.SSHException):
        t.request_port_forward("127.0.0.1", 0)
    t.close()


def test_wrong_key_refused():
    key = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") else None
    if key is None:
        key = paramiko.ECDSAKey.generate()
    with pytest.raises(paramiko.AuthenticationException):
        transport("alice", pkey=key)


def test_token_as_password_then_revoked():
    r = ctl("token", "create", "alice")
    token = r.stdout.strip()
    m = re.search(r"token (\d+)", r.stderr)
    assert token and m, r.stderr
    with Session(password=token) as s:
        put_bytes(s, "/via-token.txt", b"token upload")
    ctl("token", "revoke", m.group(1))
    with pytest.raises(paramiko.AuthenticationException):
        transport("alice", password=token)


def test_readonly_token_cannot_write():
    r = ctl("token", "create", "alice", "--scope", "ro")
    token = r.stdout.strip()
    with Session(password=token) as s:
        s.listdir("/")
        with pytest.raises(IOError) as ei:
            put_bytes(s, "/ro-attempt.txt", b"nope")
        assert ei.value.errno == errno.EACCES
        with pytest.raises(IOError):
            s.mkdir("/ro-dir")


def test_disabled_user_refused_then_enabled():
    ctl("user", "add", "dave", "--password-stdin", input="davepw1\n")
    with Session("dave", "davepw1") as s:
        s.listdir("/")
    ctl("user", "disable", "dave")
    with pytest.raises(paramiko.AuthenticationException):
        transport("dave", password="davepw1")
    ctl("user", "enable", "dave")
    with Session("dave", "davepw1") as s:
        s.listdir("/")


# ------------------------------------------------------------ files

def test_random_access_write_truncate_seek_readback():
    with Session() as s:
        with s.open("/ra.bin", "w+") as f:
            f.write(b"A" * 100000)
            f.seek(50000)
            f.write(b"B" * 1000)
            f.seek(0)
            data = f.read()
            assert data == b"A" * 50000 + b"B" * 1000 + b"A" * 49000
            f.truncate(70000)
            f.seek(69990)
            assert f.read() == b"A" * 10
            f.seek(200000)  # write past the end: a hole of zeros
            f.write(b"END")
        assert s.stat("/ra.bin").st_size == 200003
        with s.open("/ra.bin", "r+") as f:
            f.seek(10)
            f.write(b"XYZ")
        got = get_bytes(s, "/ra.bin")
    exp = bytearray(b"A" * 50000 + b"B" * 1000 + b"A" * 19000 + b"\0" * 130000 + b"END")
    exp[10:13] = b"XYZ"
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(bytes(exp)).hexdigest()


def test_append_mode():
    with Session() as s:
        put_bytes(s, "/app.txt", b"one\n")
        with s.open("/app.txt", "a") as f:
            f.write(b"two\n")
        assert get_bytes(s, "/app.txt") == b"one\ntwo\n"


def test_excl_creation():
    with Session() as s:
        # paramiko: "x" adds CREAT|EXCL to the request ("w" makes the file writable)
        with s.open("/excl.txt", "wx") as f:
            f.write(b"first")
        with pytest.raises(IOError):
            s.open("/excl.txt", "wx")
        assert get_bytes(s, "/excl.txt") == b"first"


def test_setstat_size_mode_times():
    with Session() as s:
        put_bytes(s, "/attrs.bin", b"x" * 5000)
        s.truncate("/attrs.bin", 1234)
        s.chmod("/attrs.bin", 0o640)
        s.utime("/attrs.bin", (1500000000, 1600000000))
        st = s.stat("/attrs.bin")
        assert st.st_size == 1234
        assert st.st_mode & 0o7777 == 0o640
        assert st.st_mtime == 1600000000
        # FSETSTAT on an open write handle applies after the commit
        with s.open("/attrs2.bin", "w") as f:
            f.write(b"hello")
            f.chmod(0o600)
            f.utime((1400000000, 1400000000))
        st = s.stat("/attrs2.bin")
        assert st.st_mode & 0o7777 == 0o600 and st.st_mtime == 1400000000


def statvfs(s, path):
    """statvfs@openssh.com (paramiko has no call for it)."""
    typ, body = _raw_ext_request(s, "statvfs@openssh.com", lambda m: m.add_string(path))
    if typ == FXP_STATUS:
        raise IOError(struct.unpack(">I", body[:4])[0], "statvfs failed")
    assert typ == FXP_EXTENDED_REPLY
    return struct.unpack(">11Q", body[:88])


def test_statvfs():
    with Session() as s:
        bsize, frsize, blocks, bfree, bavail = statvfs(s, "/")[:5]
        assert bsize == 4096 and blocks > 0 and 0 < bavail <= blocks
        with pytest.raises(IOError):
            statvfs(s, "/no/such/dir")
        f = s.open("/fstatvfs.txt", "w")
        typ, body = _raw_ext_request(s, "fstatvfs@openssh.com", lambda m: m.add_string(f.handle))
        assert typ == FXP_EXTENDED_REPLY and struct.unpack(">Q", body[:8])[0] == 4096
        f.close()


def test_quota_shows_in_statvfs():
    ctl("user", "add", "quser", "--password-stdin", "--quota", "10M", input="quserpw1\n")
    with Session("quser", "quserpw1") as s:
        put_bytes(s, "/q.bin", os.urandom(2 * 1024 * 1024))
        bsize, frsize, blocks, bfree, bavail = statvfs(s, "/")[:5]
        assert blocks * bsize == 10 * 1024 * 1024
        assert bavail * bsize <= 8 * 1024 * 1024
        # over quota: a WRITE or the CLOSE (commit) fails, the old version
        # stays (paramiko ignores CLOSE errors, so CLOSE is sent raw here)
        f = s.open("/q.bin", "w")
        msg = None
        try:
            for _ in range(12):
                f.write(os.urandom(1024 * 1024))
            f.flush()
        except IOError as e:
            msg = str(e)
        m = paramiko.Message()
        m.add_string(f.handle)
        typ, body = _raw_request(s, FXP_CLOSE, m)
        f._closed = True
        if msg is None:
            assert typ == FXP_STATUS and struct.unpack(">I", body[:4])[0] == FX_FAILURE
            msg = body[8:8 + struct.unpack(">I", body[4:8])[0]].decode()
        assert "quota" in msg.lower(), msg
        assert s.stat("/q.bin").st_size == 2 * 1024 * 1024


def test_rename_v3_refuses_existing_target_posix_rename_replaces():
    with Session() as s:
        put_bytes(s, "/r1.txt", b"one")
        put_bytes(s, "/r2.txt", b"two")
        with pytest.raises(IOError):
            s.rename("/r1.txt", "/r2.txt")
        assert get_bytes(s, "/r2.txt") == b"two"
        s.posix_rename("/r1.txt", "/r2.txt")
        assert get_bytes(s, "/r2.txt") == b"one"
        with pytest.raises(IOError):
            s.stat("/r1.txt")
        s.rename("/r2.txt", "/r3.txt")
        assert get_bytes(s, "/r3.txt") == b"one"


def test_check_file_sha256():
    data = os.urandom(300000)
    with Session() as s:
        put_bytes(s, "/check.bin", data)
        with s.open("/check.bin", "r") as f:
            assert f.check("sha256") == hashlib.sha256(data).digest()
            with pytest.raises(IOError):
                f.check("md5")
        # check-file-name, by path
        rid = _raw_ext_request(s, "check-file-name", lambda m: (m.add_string("/check.bin"),
                                                                 m.add_string("md5,sha256"),
                                                                 m.add_int64(0), m.add_int64(0),
                                                                 m.add_int(0)))
        assert rid[0] == FXP_EXTENDED_REPLY
        body = rid[1]
        n = struct.unpack(">I", body[:4])[0]
        assert body[4:4 + n] == b"check-file"
        rest = body[4 + n:]
        n2 = struct.unpack(">I", rest[:4])[0]
        assert rest[4:4 + n2] == b"sha256"
        assert rest[4 + n2:] == hashlib.sha256(data).digest()


def test_copy_data_whole_and_partial():
    data = os.urandom(500000)
    with Session() as s:
        put_bytes(s, "/cd-src.bin", data)
        before = blob_count()
        src = s.open("/cd-src.bin", "r")
        dst = s.open("/cd-dst.bin", "w")
        typ, body = _raw_ext_request(s, "copy-data", lambda m: (
            m.add_string(src.handle), m.add_int64(0), m.add_int64(0),
            m.add_string(dst.handle), m.add_int64(0)))
        assert typ == FXP_STATUS and struct.unpack(">I", body[:4])[0] == FX_OK
        dst.close()
        assert get_bytes(s, "/cd-dst.bin") == data
        assert blob_count() == before  # a new reference, not a new blob
        dst = s.open("/cd-part.bin", "w")
        dst.write(b"Z" * 10)
        dst.flush()
        typ, body = _raw_ext_request(s, "copy-data", lambda m: (
            m.add_string(src.handle), m.add_int64(100), m.add_int64(1000),
            m.add_string(dst.handle), m.add_int64(5)))
        assert typ == FXP_STATUS and struct.unpack(">I", body[:4])[0] == FX_OK
        dst.close()
        src.close()
        assert get_bytes(s, "/cd-part.bin") == b"Z" * 5 + data[100:1100]


def test_fsync_commits_while_open():
    with Session() as a, Session() as b:
        f = a.open("/fsync.txt", "w")
        f.write(b"durable now")
        f.flush()
        typ, body = _raw_ext_request(a, "fsync@openssh.com", lambda m: m.add_string(f.handle))
        assert typ == FXP_STATUS and struct.unpack(">I", body[:4])[0] == FX_OK
        assert get_bytes(b, "/fsync.txt") == b"durable now"
        f.close()


def test_limits_and_unsupported():
    with Session() as s:
        typ, body = _raw_ext_request(s, "limits@openssh.com", lambda m: None)
        assert typ == FXP_EXTENDED_REPLY
        max_packet, max_read, max_write, max_handles = struct.unpack(">QQQQ", body[:32])
        assert max_read >= 32768 and max_write >= 32768 and max_handles > 0
        typ, body = _raw_ext_request(s, "hardlink@openssh.com",
                                     lambda m: (m.add_string("/a"), m.add_string("/b")))
        assert typ == FXP_STATUS and struct.unpack(">I", body[:4])[0] == FX_OP_UNSUPPORTED
        with pytest.raises(IOError):
            s.symlink("/a", "/b")
        with pytest.raises(IOError):
            s.readlink("/a")


def test_readdir_pages():
    with Session() as s:
        s.mkdir("/many")
        for i in range(300):
            with s.open(f"/many/f{i:04d}", "w") as f:
                f.write(b"x")
        names = s.listdir("/many")
        assert sorted(names) == [f"f{i:04d}" for i in range(300)]
        attrs = s.listdir_attr("/many")
        assert all(a.st_size == 1 for a in attrs)


def test_mkdir_rmdir_remove_errors():
    with Session() as s:
        s.mkdir("/d1")
        put_bytes(s, "/d1/f", b"x")
        with pytest.raises(IOError):
            s.rmdir("/d1")  # not empty
        with pytest.raises(IOError):
            s.remove("/d1")  # a directory
        with pytest.raises(IOError):
            s.mkdir("/d1")  # exists
        s.remove("/d1/f")
        s.rmdir("/d1")
        with pytest.raises(FileNotFoundError):
            s.stat("/d1")
        with pytest.raises(FileNotFoundError):
            s.open("/missing.txt", "r")


# ------------------------------------------------------------ confinement

def test_traversal_every_path_request():
    r = subprocess.run(["sh", "-c", "printf 'bob secret' > /tmp/.sd-bob-secret.$$ && echo /tmp/.sd-bob-secret.$$"],
                       capture_output=True, text=True)
    local = r.stdout.strip()
    ctl("put", "bob", local, "/secret.txt")
    os.unlink(local)
    bad = ["../bob/secret.txt", "/../bob/secret.txt", "../../../../bob/secret.txt",
           "/../../secret.txt", "..\\bob\\secret.txt", "/etc/passwd", "../../../../etc/passwd",
           "secret.txt\x00.jpg", "/bob/../../bob/secret.txt"]
    with Session() as s:
        root = sorted(s.listdir("/"))
        assert s.normalize("../../..") == "/"
        assert s.normalize("/a/../../b") == "/b"
        assert sorted(s.listdir("../../..")) == root
        for p in bad:
            for op in (s.stat, s.lstat, s.listdir, s.remove, s.rmdir, s.readlink,
                       lambda p: s.open(p, "r"), lambda p: s.chmod(p, 0o777),
                       lambda p: s.utime(p, (1, 1)), lambda p: s.truncate(p, 0),
                       lambda p: s.rename(p, "/stolen"), lambda p: s.posix_rename(p, "/stolen"),
                       lambda p: statvfs(s, p)):
                with pytest.raises(IOError):
                    op(p)
            typ, body = _raw_ext_request(s, "check-file-name", lambda m: (
                m.add_string(p), m.add_string("sha256"), m.add_int64(0), m.add_int64(0), m.add_int(0)))
            assert typ == FXP_STATUS and struct.unpack(">I", body[:4])[0] != FX_OK
        # writes with traversal land inside alice's own tree
        s.mkdir("../../../evil-dir")
        with s.open("../../evil-file", "w") as f:
            f.write(b"mine")
        s.rename("/evil-file", "../../evil-file2")
        assert "evil-dir" in s.listdir("/") and "evil-file2" in s.listdir("/")
        with pytest.raises(IOError):
            s.open("/nul\x00name", "w")
    bob = ctl("ls", "bob", "/").stdout
    assert "evil" not in bob and "secret.txt" in bob


# ------------------------------------------------------------ robustness

def test_connection_dropped_mid_write_keeps_previous_version():
    v1 = os.urandom(200000)
    with Session() as s:
        put_bytes(s, "/drop.bin", v1)
    sess = Session()
    f = sess.sftp.open("/drop.bin", "r+")
    f.write(os.urandom(100000))
    f.flush()
    # vanish without CLOSE: kill the TCP connection under the transport
    sess.t.sock.shutdown(socket.SHUT_RDWR)
    sess.t.sock.close()
    time.sleep(0.5)
    with Session() as s:
        assert hashlib.sha256(get_bytes(s, "/drop.bin")).digest() == hashlib.sha256(v1).digest()
        # a new file never closed does not appear at all
    sess2 = Session()
    f = sess2.sftp.open("/never-closed.bin", "w")
    f.write(b"partial")
    f.flush()
    sess2.t.sock.shutdown(socket.SHUT_RDWR)
    sess2.t.sock.close()
    time.sleep(0.5)
    with Session() as s:
        # never committed: absent, or at most the empty file the OPEN created
        try:
            assert s.stat("/never-closed.bin").st_size == 0
        except FileNotFoundError:
            pass


def test_two_writers_later_commit_wins():
    with Session() as a, Session() as b:
        put_bytes(a, "/both.txt", b"v0")
        fa = a.open("/both.txt", "w")
        fb = b.open("/both.txt", "w")
        fa.write(b"from a")
        fb.write(b"from b!")
        fa.close()
        assert get_bytes(a, "/both.txt") == b"from a"
        fb.close()
        assert get_bytes(a, "/both.txt") == b"from b!"
    # both commits are versions in the file's history (journal rows)
    import json
    rows = json.loads(ctl("journal", "--user", "alice", "--json").stdout)
    writes = [r for r in rows if r["path"] == "/both.txt" and r["op"] == "write"]
    assert len(writes) >= 3, rows[-6:]  # v0, a's commit, b's commit


def test_parallel_sessions():
    errors = []

    def worker(i):
        try:
            data = os.urandom(3 * 1024 * 1024 + i)
            with Session() as s:
                put_bytes(s, f"/par{i}.bin", data)
                assert get_bytes(s, f"/par{i}.bin") == data
        except Exception as e:  # noqa
            errors.append(repr(e))

    th = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in th:
        t.start()
    for t in th:
        t.join(120)
    assert errors == []


def test_cross_protocol_dedup_one_blob():
    data = os.urandom(700000)
    local = f"/tmp/.sd-dedup.{os.getpid()}"
    with open(local, "wb") as f:
        f.write(data)
    ctl("put", "bob", local, "/bob-copy.bin")
    os.unlink(local)
    before = blob_count()
    with Session() as s:
        put_bytes(s, "/alice-copy.bin", data)
        assert get_bytes(s, "/alice-copy.bin") == data
    assert blob_count() == before


# ------------------------------------------------------------ raw packets

def _raw_ext_request(sftp, name, fill):
    """Send an SSH_FXP_EXTENDED through paramiko's own channel; returns
    (type, body after the request id)."""
    msg = paramiko.Message()
    msg.add_string(name)
    fill(msg)
    t, m = _raw_request(sftp, FXP_EXTENDED, msg)
    return t, m


def _raw_request(sftp, typ, msg):
    num = sftp.request_number
    sftp.request_number += 1
    body = struct.pack(">I", num) + msg.asbytes()
    sftp._send_packet(typ, body)
    while True:
        t, data = sftp._read_packet()
        rid = struct.unpack(">I", data[:4])[0]
        if rid == num:
            return t, data[4:]


class Raw:
    """A bare SFTP channel for crafted bytes."""

    def __init__(self):
        self.t = transport("alice", password="alicepw1")
        self.ch = self.t.open_session()
        self.ch.settimeout(15)
        self.ch.invoke_subsystem("sftp")
        self.ch.sendall(struct.pack(">IBI", 5, FXP_INIT, 3))
        typ, body = self.read()
        assert typ == FXP_VERSION
        ver = struct.unpack(">I", body[:4])[0]
        assert ver == 3
        self.exts = body[4:]

    def recv_exact(self, n):
        b = b""
        while len(b) < n:
            c = self.ch.recv(n - len(b))
            if not c:
                raise EOFError("channel closed")
            b += c
        return b

    def read(self):
        n = struct.unpack(">I", self.recv_exact(4))[0]
        body = self.recv_exact(n)
        return body[0], body[1:]

    def status(self):
        typ, body = self.read()
        assert typ == FXP_STATUS, typ
        rid, code = struct.unpack(">II", body[:8])
        return rid, code

    def send(self, b):
        self.ch.sendall(b)

    def realpath_ok(self, rid=4242):
        p = b"."
        self.send(struct.pack(">IBI", 1 + 4 + 4 + len(p), FXP_REALPATH, rid) + struct.pack(">I", len(p)) + p)
        typ, body = self.read()
        assert typ == FXP_NAME and struct.unpack(">I", body[:4])[0] == rid

    def close(self):
        self.t.close()


def test_version_advertises_extensions():
    r = Raw()
    for e in (b"posix-rename@openssh.com", b"statvfs@openssh.com", b"fsync@openssh.com",
              b"limits@openssh.com", b"copy-data", b"check-file-name"):
        assert e in r.exts
    r.close()


def test_malformed_packets_answered_session_survives():
    r = Raw()
    # too short to hold an id
    r.send(struct.pack(">I", 3) + b"\x11\x00\x00")
    assert r.status() == (0, FX_BAD_MESSAGE)
    r.realpath_ok()
    # zero length
    r.send(struct.pack(">I", 0))
    assert r.status() == (0, FX_BAD_MESSAGE)
    # unknown type
    r.send(struct.pack(">IBI", 5, 99, 7))
    assert r.status() == (7, FX_OP_UNSUPPORTED)
    # string longer than the packet
    r.send(struct.pack(">IBI", 9, FXP_STAT, 8) + struct.pack(">I", 1000))
    assert r.status() == (8, FX_BAD_MESSAGE)
    # READ with a forged handle
    h = b"\x00\x00\x00\x05\x00\x00\x00\x01"
    r.send(struct.pack(">IBI", 1 + 4 + 4 + len(h) + 12, FXP_READ, 9) + struct.pack(">I", len(h)) + h
           + struct.pack(">QI", 0, 4096))
    assert r.status() == (9, FX_INVALID_HANDLE)
    # OPEN with truncated attributes
    p = b"/x"
    r.send(struct.pack(">IBI", 1 + 4 + 4 + len(p) + 4 + 4, FXP_OPEN, 10) + struct.pack(">I", len(p)) + p
           + struct.pack(">II", 0x1a, 0x4))
    assert r.status() == (10, FX_BAD_MESSAGE)
    # OPEN without flags and attributes
    r.send(struct.pack(">IBI", 1 + 4 + 4 + 2, FXP_OPEN, 11) + b"\x00\x00\x00\x02/y")
    assert r.status() == (11, FX_BAD_MESSAGE)
    # a second INIT mid-session
    r.send(struct.pack(">IBI", 5, FXP_INIT, 3))
    assert r.status()[1] in (FX_BAD_MESSAGE, FX_OP_UNSUPPORTED)
    r.realpath_ok(77)
    r.close()


def test_huge_length_clean_end_daemon_serves_others():
    r = Raw()
    r.send(struct.pack(">IBI", 0x7FFFFFF0, FXP_WRITE, 12))
    try:
        rid, code = r.status()
        assert rid == 12 and code == FX_FAILURE
        # then the session ends
        with pytest.raises((EOFError, socket.timeout, OSError)):
            r.read()
    except (EOFError, socket.timeout, OSError):
        pass  # a clean disconnect is also fine
    r.close()
    # half a packet then vanish
    r2 = Raw()
    r2.send(struct.pack(">IBI", 100, FXP_WRITE, 13) + b"abc")
    r2.t.sock.close()
    with Session() as s:
        s.listdir("/")


def test_large_read_request_is_capped():
    with Session() as s:
        put_bytes(s, "/cap.bin", os.urandom(1024 * 1024))
        f = s.open("/cap.bin", "r")
        msg = paramiko.Message()
        msg.add_string(f.handle)
        msg.add_int64(0)
        msg.add_int(0x7FFFFFFF)
        typ, body = _raw_request(s, FXP_READ, msg)
        assert typ == FXP_DATA
        n = struct.unpack(">I", body[:4])[0]
        assert 0 < n <= 4 * 1024 * 1024
        f.close()
