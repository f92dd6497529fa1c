"""The SFTP front end against real clients.

1. OpenSSH sftp -b batches (public-key login): put/get/ls -l/mkdir/rename/rm/rmdir/chmod/
   df/cp, reget/reput resume, a large file and a generated tree, byte-identical;
2. scp -r both ways (OpenSSH 9 scp speaks SFTP), rclone both ways;
3. refusals: exec/shell, forwarding, wrong key, disabled user, weak algorithms; RSA and
   ECDSA keys.
4. paramiko against the same daemon: passwords and tokens, random access, EXCL, statvfs,
   posix-rename, check-file, copy-data, traversal, dropped connection, malformed packets,
   cross-protocol dedup;
5. a daemon of its own restarted with small limits: idle timeout, max_per_ip,
   max_auth_tries, RSA host key, SIGTERM during a transfer.
BIG_MB (default 200) sets the size of the large round-trip file.
"""
import errno
import hashlib
import io
import json
import os
import re
import socket
import stat
import struct
import threading
import time

import paramiko
import pytest

from conftest import (HOST, SftpSession, daemon_scope, diff_r, free_port, out, rclone, same_file,
                      scp, sftp_batch, sftp_batch_popen, ssh, ssh_keygen, ssh_transport,
                      write_random)

BIG_MB = int(os.environ.get("BIG_MB", "200"))


def sftp_section(port, **extra):
    keys = {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{port}",
            "idle_timeout": "60s", "max_auth_tries": "3"}
    keys.update(extra)
    return {"sftp": keys}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Ed25519 key pairs: alice_key, bob_key, stranger_key (path of the private key)."""
    d = tmp_path_factory.mktemp("sftp-keys")
    return {name: ssh_keygen(str(d / name), comment=name.split("_")[0])
            for name in ("alice_key", "bob_key", "stranger_key")}


def sftp_as(d, user, key, batch, *opts, timeout=300):
    return sftp_batch(d.port, user, key, batch, *opts, timeout=timeout)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A generated tree: nested dirs, a name with a space, 40 files, an empty file, a dup."""
    t = str(tmp_path_factory.mktemp("sftp-tree") / "tree")
    dirs = ["a", "a/b", "a/b/c", "d", "e f"]
    for p in dirs:
        os.makedirs(os.path.join(t, p), exist_ok=True)
    for i in range(1, 41):
        write_random(os.path.join(t, dirs[i % 5], f"file{i}.dat"), i * 997)
    open(os.path.join(t, "d", "empty"), "w").close()
    with open(os.path.join(t, "a", "file5.dat"), "rb") as f, \
            open(os.path.join(t, "d", "dup-of-5.dat"), "wb") as g:
        g.write(f.read())
    return t


@pytest.fixture(scope="module")
def sftpd(keys):
    """[sftp] with idle_timeout 60s and max_auth_tries 3; users alice (alicepw1) and bob
    (bobpw1), each with an ed25519 key. At the end the daemon must still serve a login,
    then exit 0 on SIGTERM."""
    port = free_port()
    with daemon_scope(sftp_section(port), name="sftp") as d:
        d.port = port
        d.add_user("alice", "alicepw1")
        d.add_user("bob", "bobpw1")
        d.add_key("alice", keys["alice_key"] + ".pub")
        d.add_key("bob", keys["bob_key"] + ".pub")
        yield d
        r = sftp_batch(port, "alice", keys["alice_key"], "ls /\n")
        assert r.returncode == 0, f"daemon still serving after all that: {out(r)}"


# ---------------------------------------------------------------- 1. batches

def test_host_key_generated_0600(sftpd):
    mode = stat.S_IMODE(os.stat(os.path.join(sftpd.data, "ssh", "ssh_host_ed25519_key")).st_mode)
    assert mode == 0o600, f"host key generated in data dir (0600): {oct(mode)}"


def test_sftp_batch_commands(sftpd, keys):
    d, k = sftpd, keys["alice_key"]
    small = write_random(d.path("small.bin"), 300000)
    hello = d.path("hello.txt")
    with open(hello, "w") as f:
        f.write("hello over sftp\n")
    w = d.path
    r = sftp_as(d, "alice", k, f"""mkdir /docs
cd /docs
put {small} small.bin
put {hello} hello.txt
chmod 600 hello.txt
ls -l
rename small.bin renamed.bin
get renamed.bin {w('small.back')}
get hello.txt {w('hello.back')}
df
cp renamed.bin copy.bin
get copy.bin {w('copy.back')}
rm copy.bin
""")
    assert r.returncode == 0, f"sftp batch: mkdir, put, chmod, ls -l, rename, get, df, cp: {out(r)}"
    assert same_file(small, w("small.back")), "round trip of a 300 KB file is byte-identical"
    assert same_file(small, w("copy.back")), "cp (copy-data) gives identical bytes"
    assert re.search(r"-rw-------.* 16 .*hello\.txt", r.stdout), f"ls -l shows mode and size: {out(r)}"
    assert "Size" in r.stdout, f"df answers (statvfs@openssh.com): {out(r)}"
    r = sftp_as(d, "alice", k, "ls /docs\nrm /docs/renamed.bin\nrm /docs/hello.txt\nrmdir /docs\n")
    assert r.returncode == 0, f"sftp batch: rm, rmdir: {out(r)}"
    r = sftp_as(d, "alice", k, "ls /docs\n")
    assert r.returncode != 0, f"removed directory is gone: {out(r)}"
    r = sftp_as(d, "alice", k, "rename /nope /nope2\n")
    assert r.returncode != 0, f"rename of a missing file fails: {out(r)}"


@pytest.mark.timeout(600)
def test_large_file_round_trip(sftpd, keys):
    d, k = sftpd, keys["alice_key"]
    big = write_random(d.path("big.bin"), BIG_MB * 1024 * 1024)
    t0 = time.time()
    r = sftp_as(d, "alice", k, f"put {big} /big.bin\n")
    assert r.returncode == 0, f"put {BIG_MB} MiB: {out(r)}"
    t1 = time.time()
    r = sftp_as(d, "alice", k, f"get /big.bin {d.path('big.back')}\n")
    assert r.returncode == 0, f"get {BIG_MB} MiB: {out(r)}"
    t2 = time.time()
    assert same_file(big, d.path("big.back")), f"{BIG_MB} MiB round trip is byte-identical"
    print(f"put {t1 - t0:.2f} s, get {t2 - t1:.2f} s")
    os.unlink(big)
    os.unlink(d.path("big.back"))


def test_reput_reget_resume(sftpd, keys):
    d, k = sftpd, keys["alice_key"]
    res = write_random(d.path("res.bin"), 12 * 1024 * 1024)
    with open(res, "rb") as f:
        data = f.read()
    with open(d.path("res.part"), "wb") as f:
        f.write(data[:5 * 1024 * 1024])
    sftp_as(d, "alice", k, f"put {d.path('res.part')} /res.bin\n")
    r = sftp_as(d, "alice", k, f"reput {res} /res.bin\n")
    assert r.returncode == 0, f"reput resumes an interrupted upload: {out(r)}"
    sftp_as(d, "alice", k, f"get /res.bin {d.path('res.back')}\n")
    assert same_file(res, d.path("res.back")), "reput result is byte-identical"
    with open(d.path("res.dl"), "wb") as f:
        f.write(data[:3 * 1024 * 1024])
    r = sftp_as(d, "alice", k, f"reget /res.bin {d.path('res.dl')}\n")
    assert r.returncode == 0, f"reget resumes an interrupted download: {out(r)}"
    assert same_file(res, d.path("res.dl")), "reget result is byte-identical"


def test_tree_put_get_recursive(sftpd, keys, tree):
    d, k = sftpd, keys["alice_key"]
    r = sftp_as(d, "alice", k, f"put -r {tree} /tree\n")
    assert r.returncode == 0, f"put -r of a generated tree: {out(r)}"
    r = sftp_as(d, "alice", k, f"get -r /tree {d.path('tree.back')}\n")
    assert r.returncode == 0, f"get -r of the tree: {out(r)}"
    r = diff_r(tree, d.path("tree.back"))
    assert r.returncode == 0, f"tree round trip is identical (diff -r): {out(r)}"


# ---------------------------------------------------------------- 2. scp, rclone

def test_scp_recursive(sftpd, keys, tree):
    d, k = sftpd, keys["alice_key"]
    r = scp(d.port, k, "-r", tree, f"alice@{HOST}:/scptree")
    assert r.returncode == 0, f"scp -r upload: {out(r)}"
    r = scp(d.port, k, "-r", f"alice@{HOST}:/scptree", d.path("scp.back"))
    assert r.returncode == 0, f"scp -r download: {out(r)}"
    r = diff_r(tree, d.path("scp.back"))
    assert r.returncode == 0, f"scp round trip is identical: {out(r)}"


def test_rclone_host_key_verified(sftpd, keys, tree):
    """rclone's sftp backend (its remote hash commands are refused, it copes); the host
    key is checked against the .pub written next to the host key."""
    d, k = sftpd, keys["alice_key"]
    with open(os.path.join(d.data, "ssh", "ssh_host_ed25519_key.pub")) as f:
        pub = " ".join(f.read().split()[:2])
    kh = d.path("known_hosts")
    with open(kh, "w") as f:
        f.write(f"[{HOST}]:{d.port} {pub}\n")
    rc = f":sftp,host={HOST},port={d.port},user=alice,key_file={k},known_hosts_file={kh},shell_type=none"
    r = rclone("copy", tree, f"{rc}:/rclonetree")
    assert r.returncode == 0, f"rclone copy up (host key verified): {out(r)}"
    r = rclone("copy", f"{rc}:/rclonetree", d.path("rclone.back"))
    assert r.returncode == 0, f"rclone copy down: {out(r)}"
    r = diff_r(tree, d.path("rclone.back"))
    assert r.returncode == 0, f"rclone round trip is identical: {out(r)}"
    r = rclone("check", "--download", tree, f"{rc}:/rclonetree")
    assert r.returncode == 0, f"rclone check --download: {out(r)}"


# ---------------------------------------------------------------- 3. refusals

def test_refusals_and_key_types(sftpd, keys):
    d, k = sftpd, keys["alice_key"]
    r = ssh(d.port, k, f"alice@{HOST}", "ls", "/")
    assert r.returncode == 1, f"exec is refused with exit status 1: {r.returncode} {out(r)}"
    assert "SFTP only" in out(r), f"exec refusal says why: {out(r)}"
    r = ssh(d.port, k, "-T", f"alice@{HOST}")
    assert "SFTP only" in out(r), f"shell refusal says why: {out(r)}"
    r = ssh(d.port, k, "-o", "ExitOnForwardFailure=yes", "-N", "-R", "127.0.0.1:0:127.0.0.1:9",
            f"alice@{HOST}", timeout=20)
    assert r.returncode == 255, f"remote port forwarding is refused (ssh exits 255): {r.returncode} {out(r)}"
    r = sftp_as(d, "alice", keys["stranger_key"], "ls /\n")
    assert r.returncode != 0, "unregistered key is refused"
    r = sftp_as(d, "alice", keys["bob_key"], "ls /\n")
    assert r.returncode != 0, "another user's key is refused"
    d.ctl("user", "disable", "bob")
    r = sftp_as(d, "bob", keys["bob_key"], "ls /\n")
    assert r.returncode != 0, "disabled user cannot log in"
    d.ctl("user", "enable", "bob")
    r = sftp_as(d, "bob", keys["bob_key"], "ls /\n")
    assert r.returncode == 0, f"re-enabled user can log in (no restart): {out(r)}"
    rsa = ssh_keygen(d.path("alice_rsa"), "rsa", bits=3072, comment="alice-rsa")
    ecdsa = ssh_keygen(d.path("alice_ecdsa"), "ecdsa", comment="alice-ecdsa")
    d.add_key("alice", rsa + ".pub")
    d.add_key("alice", ecdsa + ".pub")
    r = sftp_as(d, "alice", rsa, "ls /\n")
    assert r.returncode == 0, f"RSA key login (rsa-sha2-512): {out(r)}"
    r = sftp_as(d, "alice", ecdsa, "ls /\n")
    assert r.returncode == 0, f"ECDSA key login: {out(r)}"
    r = sftp_as(d, "alice", k, "ls /\n", "-o", "Ciphers=aes128-cbc")
    assert r.returncode != 0, "CBC ciphers are not offered"
    r = sftp_as(d, "alice", k, "ls /\n", "-o", "KexAlgorithms=diffie-hellman-group14-sha1")
    assert r.returncode != 0, "SHA-1 key exchange is not offered"


# ---------------------------------------------------------------- 4. paramiko

# SFTP constants
FXP_INIT, FXP_VERSION, FXP_OPEN, FXP_CLOSE, FXP_READ, FXP_WRITE = 1, 2, 3, 4, 5, 6
FXP_STAT, FXP_REALPATH, FXP_EXTENDED = 17, 16, 200
FXP_STATUS, FXP_HANDLE, FXP_DATA, FXP_NAME, FXP_ATTRS, FXP_EXTENDED_REPLY = 101, 102, 103, 104, 105, 201
FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, FX_FAILURE = 0, 1, 2, 3, 4
FX_BAD_MESSAGE, FX_OP_UNSUPPORTED, FX_INVALID_HANDLE = 5, 8, 9
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def Session(d, user="alice", password="alicepw1", pkey=None):
    return SftpSession(d.port, user, password=password, pkey=pkey)


def transport(d, user, password=None, pkey=None):
    return ssh_transport(d.port, user, password=password, pkey=pkey)


def put_bytes(sftp, path, data):
    sftp.putfo(io.BytesIO(data), path)


def get_bytes(sftp, path):
    b = io.BytesIO()
    sftp.getfo(path, b)
    return b.getvalue()


def status_code(body):
    return struct.unpack(">I", body[:4])[0]


def _raw_ext_request(sftp, name, fill):
    """Send an SSH_FXP_EXTENDED through paramiko's own channel; returns
    (type, body after the request id)."""
    msg = paramiko.Message()
    msg.add_string(name)
    fill(msg)
    return _raw_request(sftp, FXP_EXTENDED, msg)


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


def statvfs(s, path):
    """statvfs@openssh.com (paramiko has no call for it)."""
    typ, body = _raw_ext_request(s, "statvfs@openssh.com", lambda m: m.add_string(path))
    if typ == FXP_STATUS:
        raise IOError(status_code(body), "statvfs failed")
    if typ != FXP_EXTENDED_REPLY:
        raise AssertionError(f"statvfs: reply type {typ}")
    return struct.unpack(">11Q", body[:88])


def test_password_login(sftpd):
    with Session(sftpd) as s:
        assert s.normalize(".") == "/"


def test_wrong_password_refused(sftpd):
    with pytest.raises(paramiko.AuthenticationException):
        transport(sftpd, "alice", password="not-the-password")


def test_unknown_user_refused(sftpd):
    with pytest.raises(paramiko.AuthenticationException):
        transport(sftpd, "nobody-here", password="x")


def test_publickey_login_paramiko(sftpd, keys):
    key = paramiko.Ed25519Key.from_private_key_file(keys["alice_key"])
    with Session(sftpd, password=None, pkey=key) as s:
        assert isinstance(s.listdir("/"), list)


def test_forwarding_refused(sftpd):
    t = transport(sftpd, "alice", password="alicepw1")
    try:
        with pytest.raises(paramiko.ChannelException):
            t.open_channel("direct-tcpip", ("127.0.0.1", 9), ("127.0.0.1", 5555))
        with pytest.raises(paramiko.SSHException):
            t.request_port_forward("127.0.0.1", 0)
    finally:
        t.close()


def test_wrong_key_refused(sftpd):
    key = paramiko.ECDSAKey.generate()
    with pytest.raises(paramiko.AuthenticationException):
        transport(sftpd, "alice", pkey=key)


def test_token_as_password_then_revoked(sftpd):
    r = sftpd.ctl("token", "create", "alice")
    token = r.stdout.strip()
    m = re.search(r"token (\d+)", r.stderr)
    assert token and m, r.stderr
    with Session(sftpd, password=token) as s:
        put_bytes(s, "/via-token.txt", b"token upload")
    sftpd.ctl("token", "revoke", m.group(1))
    with pytest.raises(paramiko.AuthenticationException):
        transport(sftpd, "alice", password=token)


def test_readonly_token_cannot_write(sftpd):
    token = sftpd.token("alice", "--scope", "ro")
    with Session(sftpd, password=token) as s:
        s.listdir("/")
        with pytest.raises(IOError) as ei:
            put_bytes(s, "/ro-attempt.txt", b"nope")
        assert ei.value.errno == errno.EACCES
        with pytest.raises(IOError):
            s.mkdir("/ro-dir")


def test_disabled_user_refused_then_enabled(sftpd):
    sftpd.add_user("dave", "davepw1")
    with Session(sftpd, "dave", "davepw1") as s:
        s.listdir("/")
    sftpd.ctl("user", "disable", "dave")
    with pytest.raises(paramiko.AuthenticationException):
        transport(sftpd, "dave", password="davepw1")
    sftpd.ctl("user", "enable", "dave")
    with Session(sftpd, "dave", "davepw1") as s:
        assert isinstance(s.listdir("/"), list)


def test_random_access_write_truncate_seek_readback(sftpd):
    with Session(sftpd) as s:
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


def test_append_mode(sftpd):
    with Session(sftpd) as s:
        put_bytes(s, "/app.txt", b"one\n")
        with s.open("/app.txt", "a") as f:
            f.write(b"two\n")
        assert get_bytes(s, "/app.txt") == b"one\ntwo\n"


def test_excl_creation(sftpd):
    with Session(sftpd) as s:
        # paramiko: "x" adds CREAT|EXCL to the request ("w" makes the file writable)
        with s.open("/excl.txt", "wx") as f:
            f.write(b"first")
        with pytest.raises(IOError):
            s.open("/excl.txt", "wx")
        assert get_bytes(s, "/excl.txt") == b"first"


def test_setstat_size_mode_times(sftpd):
    with Session(sftpd) as s:
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


def test_statvfs(sftpd):
    with Session(sftpd) as s:
        bsize, frsize, blocks, bfree, bavail = statvfs(s, "/")[:5]
        assert bsize == 4096 and blocks > 0 and 0 < bavail <= blocks
        with pytest.raises(IOError):
            statvfs(s, "/no/such/dir")
        f = s.open("/fstatvfs.txt", "w")
        typ, body = _raw_ext_request(s, "fstatvfs@openssh.com", lambda m: m.add_string(f.handle))
        assert typ == FXP_EXTENDED_REPLY and struct.unpack(">Q", body[:8])[0] == 4096
        f.close()


def test_quota_shows_in_statvfs(sftpd):
    sftpd.add_user("quser", "quserpw1", "--quota", "10M")
    with Session(sftpd, "quser", "quserpw1") as s:
        put_bytes(s, "/q.bin", os.urandom(2 * 1024 * 1024))
        bsize, frsize, blocks, bfree, bavail = statvfs(s, "/")[:5]
        assert blocks * bsize == 10 * 1024 * 1024
        assert bavail * bsize <= 8 * 1024 * 1024
        # over quota: a WRITE or the CLOSE (commit) fails, the old version stays
        # (paramiko ignores CLOSE errors, so CLOSE is sent raw here)
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
            assert typ == FXP_STATUS and status_code(body) == FX_FAILURE
            msg = body[8:8 + struct.unpack(">I", body[4:8])[0]].decode()
        assert "quota" in msg.lower(), msg
        assert s.stat("/q.bin").st_size == 2 * 1024 * 1024


def test_rename_v3_refuses_existing_target_posix_rename_replaces(sftpd):
    with Session(sftpd) as s:
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


def test_check_file_sha256(sftpd):
    data = os.urandom(300000)
    with Session(sftpd) as s:
        put_bytes(s, "/check.bin", data)
        with s.open("/check.bin", "r") as f:
            assert f.check("sha256") == hashlib.sha256(data).digest()
            with pytest.raises(IOError):
                f.check("md5")
        # check-file-name, by path
        typ, body = _raw_ext_request(s, "check-file-name", lambda m: (
            m.add_string("/check.bin"), m.add_string("md5,sha256"), m.add_int64(0),
            m.add_int64(0), m.add_int(0)))
        assert typ == FXP_EXTENDED_REPLY
        n = struct.unpack(">I", body[:4])[0]
        assert body[4:4 + n] == b"check-file"
        rest = body[4 + n:]
        n2 = struct.unpack(">I", rest[:4])[0]
        assert rest[4:4 + n2] == b"sha256"
        assert rest[4 + n2:] == hashlib.sha256(data).digest()


def test_copy_data_whole_and_partial(sftpd):
    data = os.urandom(500000)
    with Session(sftpd) as s:
        put_bytes(s, "/cd-src.bin", data)
        before = sftpd.blob_names()
        src = s.open("/cd-src.bin", "r")
        dst = s.open("/cd-dst.bin", "w")
        blobs0 = sftpd.ctl_json("stats", "--json")["blobs"]
        typ, body = _raw_ext_request(s, "copy-data", lambda m: (
            m.add_string(src.handle), m.add_int64(0), m.add_int64(0),
            m.add_string(dst.handle), m.add_int64(0)))
        assert typ == FXP_STATUS and status_code(body) == FX_OK
        dst.close()
        assert get_bytes(s, "/cd-dst.bin") == data
        # a new reference, not a new blob, and no other blob either: the file OPEN created
        # exists only from its first commit, so copying into it never stored the empty
        # content (API v1 committed the empty file at OPEN, which added sha256("") when no
        # file held it yet; the target then had two versions)
        new = sftpd.blob_names() - before
        assert new == set(), f"copy-data added blobs: {new}"
        assert sftpd.ctl_json("stats", "--json")["blobs"] == blobs0, "no blob row either"
        assert [r["op"] for r in sftpd.ctl_json("journal", "--user", "alice", "--json")
                if r["path"] == "/cd-dst.bin"] == ["copy"], \
            "one journal row for the target: the copy (no empty write before it)"
        dst = s.open("/cd-part.bin", "w")
        dst.write(b"Z" * 10)
        dst.flush()
        typ, body = _raw_ext_request(s, "copy-data", lambda m: (
            m.add_string(src.handle), m.add_int64(100), m.add_int64(1000),
            m.add_string(dst.handle), m.add_int64(5)))
        assert typ == FXP_STATUS and status_code(body) == FX_OK
        dst.close()
        src.close()
        assert get_bytes(s, "/cd-part.bin") == b"Z" * 5 + data[100:1100]


def test_fsync_commits_while_open(sftpd):
    with Session(sftpd) as a, Session(sftpd) as b:
        f = a.open("/fsync.txt", "w")
        f.write(b"durable now")
        f.flush()
        typ, body = _raw_ext_request(a, "fsync@openssh.com", lambda m: m.add_string(f.handle))
        assert typ == FXP_STATUS and status_code(body) == FX_OK
        assert get_bytes(b, "/fsync.txt") == b"durable now"
        f.close()


def test_limits_and_unsupported(sftpd):
    with Session(sftpd) as s:
        typ, body = _raw_ext_request(s, "limits@openssh.com", lambda m: None)
        assert typ == FXP_EXTENDED_REPLY
        max_packet, max_read, max_write, max_handles = struct.unpack(">QQQQ", body[:32])
        assert max_read >= 32768 and max_write >= 32768 and max_handles > 0
        typ, body = _raw_ext_request(s, "hardlink@openssh.com",
                                     lambda m: (m.add_string("/a"), m.add_string("/b")))
        assert typ == FXP_STATUS and status_code(body) == FX_OP_UNSUPPORTED
        with pytest.raises(IOError):
            s.symlink("/a", "/b")
        with pytest.raises(IOError):
            s.readlink("/a")


def test_readdir_pages(sftpd):
    with Session(sftpd) as s:
        s.mkdir("/many")
        for i in range(300):
            with s.open(f"/many/f{i:04d}", "w") as f:
                f.write(b"x")
        names = s.listdir("/many")
        assert sorted(names) == [f"f{i:04d}" for i in range(300)]
        attrs = s.listdir_attr("/many")
        assert all(a.st_size == 1 for a in attrs)


def test_mkdir_rmdir_remove_errors(sftpd):
    with Session(sftpd) as s:
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


def test_traversal_every_path_request(sftpd):
    local = sftpd.path("bob-secret")
    with open(local, "w") as f:
        f.write("bob secret")
    sftpd.ctl("put", "bob", local, "/secret.txt")
    bad = ["../bob/secret.txt", "/../bob/secret.txt", "../../../../bob/secret.txt",
           "/../../secret.txt", "..\\bob\\secret.txt", "/etc/passwd", "../../../../etc/passwd",
           "secret.txt\x00.jpg", "/bob/../../bob/secret.txt"]
    with Session(sftpd) as s:
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
            assert typ == FXP_STATUS and status_code(body) != FX_OK, f"check-file-name {p!r}"
        # writes with traversal land inside alice's own tree
        s.mkdir("../../../evil-dir")
        with s.open("../../evil-file", "w") as f:
            f.write(b"mine")
        s.rename("/evil-file", "../../evil-file2")
        assert "evil-dir" in s.listdir("/") and "evil-file2" in s.listdir("/")
        with pytest.raises(IOError):
            s.open("/nul\x00name", "w")
    bob = sftpd.ctl("ls", "bob", "/").stdout
    assert "evil" not in bob and "secret.txt" in bob


def test_connection_dropped_mid_write_keeps_previous_version(sftpd):
    v1 = os.urandom(200000)
    with Session(sftpd) as s:
        put_bytes(s, "/drop.bin", v1)
    sess = Session(sftpd)
    f = sess.sftp.open("/drop.bin", "r+")
    f.write(os.urandom(100000))
    f.flush()
    # vanish without CLOSE: kill the TCP connection under the transport
    sess.t.sock.shutdown(socket.SHUT_RDWR)
    sess.t.sock.close()
    time.sleep(0.5)
    with Session(sftpd) as s:
        assert hashlib.sha256(get_bytes(s, "/drop.bin")).digest() == hashlib.sha256(v1).digest()
    # a new file never closed does not appear at all
    sess2 = Session(sftpd)
    f = sess2.sftp.open("/never-closed.bin", "w")
    f.write(b"partial")
    f.flush()
    sess2.t.sock.shutdown(socket.SHUT_RDWR)
    sess2.t.sock.close()
    time.sleep(0.5)
    with Session(sftpd) as s:
        # never committed: a file created by OPEN exists only from its first commit
        with pytest.raises(FileNotFoundError):
            s.stat("/never-closed.bin")
        assert "never-closed.bin" not in s.listdir("/"), "a file never closed is absent"
    sess.close()
    sess2.close()


def test_two_writers_later_commit_wins(sftpd):
    with Session(sftpd) as a, Session(sftpd) as b:
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
    rows = json.loads(sftpd.ctl("journal", "--user", "alice", "--json").stdout)
    writes = [r for r in rows if r["path"] == "/both.txt" and r["op"] == "write"]
    assert len(writes) >= 3, rows[-6:]  # v0, a's commit, b's commit


def test_parallel_sessions(sftpd):
    errors = []

    def worker(i):
        try:
            data = os.urandom(3 * 1024 * 1024 + i)
            with Session(sftpd) as s:
                put_bytes(s, f"/par{i}.bin", data)
                if get_bytes(s, f"/par{i}.bin") != data:
                    errors.append(f"par{i}: content differs")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    th = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in th:
        t.start()
    for t in th:
        t.join(120)
    assert not any(t.is_alive() for t in th), "a session thread hangs"
    assert errors == []


def test_cross_protocol_dedup_one_blob(sftpd):
    data = os.urandom(700000)
    local = sftpd.path("dedup.bin")
    with open(local, "wb") as f:
        f.write(data)
    sftpd.ctl("put", "bob", local, "/bob-copy.bin")
    before = sftpd.blob_count()
    with Session(sftpd) as s:
        put_bytes(s, "/alice-copy.bin", data)
        assert get_bytes(s, "/alice-copy.bin") == data
    assert sftpd.blob_count() == before


class Raw:
    """A bare SFTP channel for crafted bytes."""

    def __init__(self, d):
        self.t = transport(d, "alice", password="alicepw1")
        self.ch = self.t.open_session()
        self.ch.settimeout(15)
        self.ch.invoke_subsystem("sftp")
        self.ch.sendall(struct.pack(">IBI", 5, FXP_INIT, 3))
        typ, body = self.read()
        if typ != FXP_VERSION or struct.unpack(">I", body[:4])[0] != 3:
            raise AssertionError(f"SFTP INIT answered {typ} {body[:4]!r}, not VERSION 3")
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
        if typ != FXP_STATUS:
            raise AssertionError(f"expected an SSH_FXP_STATUS, got type {typ}")
        rid, code = struct.unpack(">II", body[:8])
        return rid, code

    def send(self, b):
        self.ch.sendall(b)

    def realpath_ok(self, rid=4242):
        p = b"."
        self.send(struct.pack(">IBI", 1 + 4 + 4 + len(p), FXP_REALPATH, rid) + struct.pack(">I", len(p)) + p)
        typ, body = self.read()
        return typ == FXP_NAME and struct.unpack(">I", body[:4])[0] == rid

    def close(self):
        self.t.close()


def test_version_advertises_extensions(sftpd):
    r = Raw(sftpd)
    for e in (b"posix-rename@openssh.com", b"statvfs@openssh.com", b"fsync@openssh.com",
              b"limits@openssh.com", b"copy-data", b"check-file-name"):
        assert e in r.exts, f"VERSION advertises {e}: {r.exts!r}"
    r.close()


def test_malformed_packets_answered_session_survives(sftpd):
    r = Raw(sftpd)
    # too short to hold an id
    r.send(struct.pack(">I", 3) + b"\x11\x00\x00")
    assert r.status() == (0, FX_BAD_MESSAGE)
    assert r.realpath_ok()
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
    assert r.realpath_ok(77)
    r.close()


def test_huge_length_clean_end_daemon_serves_others(sftpd):
    r = Raw(sftpd)
    r.send(struct.pack(">IBI", 0x7FFFFFF0, FXP_WRITE, 12))
    try:
        rid, code = r.status()
    except (EOFError, socket.timeout, OSError):
        rid = code = None  # a clean disconnect is also fine
    if rid is not None:
        assert (rid, code) == (12, FX_FAILURE), f"huge length: FAILURE for request 12: {(rid, code)}"
        # then the session ends
        with pytest.raises((EOFError, socket.timeout, OSError)):
            r.read()
    r.close()
    # half a packet then vanish
    r2 = Raw(sftpd)
    r2.send(struct.pack(">IBI", 100, FXP_WRITE, 13) + b"abc")
    r2.t.sock.close()
    with Session(sftpd) as s:
        assert isinstance(s.listdir("/"), list)
    r2.close()


def test_large_read_request_is_capped(sftpd):
    with Session(sftpd) as s:
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


# ---------------------------------------------------------------- 5. limits, restarts

def check_idle(port):
    t = ssh_transport(port, "alice", "alicepw1", banner_timeout=10)
    try:
        ch = t.open_session()
        ch.settimeout(10)
        ch.invoke_subsystem("sftp")
        ch.sendall(struct.pack(">IBI", 5, 1, 3))
        n = struct.unpack(">I", ch.recv(4))[0]
        ch.recv(n)
        t0 = time.time()
        # say nothing: the server must end the session after ~2 s
        data = ch.recv(1)
        waited = time.time() - t0
    finally:
        t.close()
    return data, waited


@pytest.mark.timeout(300)
def test_restart_with_small_limits(make_daemon, keys):
    port = free_port()
    d = make_daemon(sftp_section(port), name="sftp-limits")
    d.port = port
    d.add_user("alice", "alicepw1")
    d.add_key("alice", keys["alice_key"] + ".pub")
    k = keys["alice_key"]
    r = sftp_as(d, "alice", k, "ls /\n")
    assert r.returncode == 0, f"a session before the restart: {out(r)}"
    rc = d.stop()
    assert rc == 0, f"SIGTERM with sessions done exits 0: {rc}"
    d.sections["sftp"].update({"idle_timeout": "2s", "max_auth_tries": "2", "max_per_ip": "2",
                               "rsa_host_key": "yes"})
    d.start()
    assert re.search(r"type=ssh-ed25519 .*generated=0", d.logtext()), "host key kept across restarts"
    r = sftp_as(d, "alice", k, "ls /\n", "-o", "HostKeyAlgorithms=rsa-sha2-512")
    assert r.returncode == 0, f"rsa_host_key = yes offers an RSA host key: {out(r)}"

    data, waited = check_idle(port)
    assert data == b"" and 1.5 <= waited <= 6, \
        f"idle session is closed after idle_timeout: got {data!r} after {waited:.1f}s"

    # max_per_ip = 2: a third connection from one address is refused; a slot frees up
    a = ssh_transport(port, "alice", "alicepw1", banner_timeout=10)
    b = ssh_transport(port, "alice", "alicepw1", banner_timeout=10)
    try:
        try:
            ssh_transport(port, "alice", "alicepw1", banner_timeout=10).close()
            third = "accepted"
        except (paramiko.SSHException, EOFError, OSError) as e:
            third = f"refused: {e!r}"
        assert third.startswith("refused"), f"max_per_ip refuses a third connection: {third}"
        a.close()
        time.sleep(0.5)
        ssh_transport(port, "alice", "alicepw1", banner_timeout=10).close()  # a slot is free again
    finally:
        a.close()
        b.close()

    # max_auth_tries = 2: the right password after two failures does not log in, and the
    # connection ends; the address is not locked out by that (auth_max_failures is 20)
    time.sleep(0.3)
    t = paramiko.Transport((HOST, port))
    try:
        t.start_client(timeout=10)
        wrong = []
        for _ in range(2):
            try:
                t.auth_password("alice", "wrong-password")
                wrong.append("accepted")
            except paramiko.AuthenticationException:
                wrong.append("refused")
        try:
            t.auth_password("alice", "alicepw1")
            after = "accepted"
        except (paramiko.AuthenticationException, paramiko.SSHException, EOFError, OSError):
            after = "refused"
        time.sleep(0.7)
        active = t.is_active()
    finally:
        t.close()
    ssh_transport(port, "alice", "alicepw1", banner_timeout=10).close()
    assert wrong == ["refused", "refused"] and after == "refused" and not active, \
        f"max_auth_tries disconnects: wrong={wrong} right-after={after} still-connected={active}"

    # stop while a transfer is running: exits 0, the file keeps its old version
    stop = write_random(d.path("stop.bin"), 64 * 1024 * 1024)
    bf = d.path("bstop")
    with open(bf, "w") as f:
        f.write(f"put {stop} /stop.bin\n")
    p = sftp_batch_popen(port, "alice", k, bf)
    try:
        time.sleep(0.7)
        rc = d.stop()
    finally:
        p.wait(timeout=60)
    assert rc == 0, f"SIGTERM during a transfer exits 0: {rc}"
    d.start()
    back = d.path("stop.back")
    d.ctl("get", "alice", "/stop.bin", back, check=False)
    assert not os.path.exists(back) or os.path.getsize(back) == 0 or same_file(stop, back), \
        "interrupted upload left no partial content"


# ---------------------------------------------------------------- paths through the engine's resolver

def sftp_tree(s, top="/"):
    """{path: "dir"|"file"} of everything under top."""
    out, todo = {}, [top]
    while todo:
        d = todo.pop()
        for a in s.listdir_attr(d):
            p = d.rstrip("/") + "/" + a.filename
            kind = "dir" if stat.S_ISDIR(a.st_mode) else "file"
            out[p] = kind
            if kind == "dir":
                todo.append(p)
    return out


def fresh_user(d, name):
    d.add_user(name, name + "-pw1")
    return SftpSession(d.port, name, password=name + "-pw1")


def test_dotdot_in_the_middle(sftpd):
    with fresh_user(sftpd, "dots") as s:
        for p, want in (("a/b/c/../..", "/a"), ("/a/b/../../..", "/"), ("a/bb/../c", "/a/c"),
                        ("../../a/./bb//c/", "/a/bb/c")):
            assert s.normalize(p) == want, f"REALPATH {p}: {want}"
        for p in ("/a", "/a/bb", "/a/b", "/a/b/c"):
            s.mkdir(p)
        files = ("/a/bb/c", "/a/bb/cc", "/c")
        for p in files:
            put_bytes(s, p, p.encode())
        for arg in ("a/bb/cc/../../c", "a/bb/../c"):
            put_bytes(s, "/a/c", b"/a/c")
            t0 = sftp_tree(s)
            s.remove(arg)
            t = sftp_tree(s)
            assert t == {k: v for k, v in t0.items() if k != "/a/c"}, \
                f"REMOVE {arg} removed /a/c and nothing else: {t}"
        t0 = sftp_tree(s)
        s.rmdir("a/b/c/../c")
        t = sftp_tree(s)
        assert t == {k: v for k, v in t0.items() if k != "/a/b/c"}, f"RMDIR a/b/c/../c: {t}"
        s.rename("a/bb/../bb/c", "a/b/../moved")
        t2 = sftp_tree(s)
        want = {k: v for k, v in t.items() if k != "/a/bb/c"}
        want["/a/moved"] = "file"
        assert t2 == want, f"RENAME a/bb/../bb/c -> a/b/../moved: /a/bb/c is /a/moved: {t2}"
        assert get_bytes(s, "/a/moved") == b"/a/bb/c", "the moved file keeps its content"


def _raw_open(s, path, pflags=0x1a):
    """OPEN with raw path bytes (CREAT|TRUNC|WRITE); (type, body) of the answer."""
    m = paramiko.Message()
    m.add_string(path)
    m.add_int(pflags)
    m.add_int(0)  # no attributes
    return _raw_request(s, FXP_OPEN, m)


def _status_text(body):
    n = struct.unpack(">I", body[4:8])[0]
    return body[8:8 + n].decode("utf-8", "replace")


def test_bad_names_refused_create_nothing(sftpd):
    with fresh_user(sftpd, "badnames") as s:
        s.mkdir("/d")
        t0 = sftp_tree(s)
        for p in (b"back\\slash", b"ctl\x01name", b"bad\xff\xfe", b"/d/x\x7f", b"nul\x00name",
                  b"/" + b"p" * 256, b"/d/" + b"q" * 256 + b"/..", b"/" + b"r/" * 2100):
            typ, body = _raw_open(s, p)
            assert typ == FXP_STATUS and status_code(body) == FX_FAILURE, \
                f"OPEN {p[:40]!r}: a failure status: {typ} {body[:60]!r}"
            text = _status_text(body)
            if b"\0" in p:
                assert text == "invalid path: NUL byte", f"NUL named: {text}"
            elif len(p) > 4096 or b"p" * 256 in p or b"q" * 256 in p:
                assert "too long" in text.lower(), f"{len(p)} bytes: too long: {text}"
            for op in (s.mkdir, s.stat, s.remove):
                with pytest.raises(IOError):
                    op(p)
        assert sftp_tree(s) == t0, "nothing was created"
        put_bytes(s, "/" + "n" * 255, b"255")
        assert get_bytes(s, "/" + "n" * 255) == b"255", "a 255-byte name is fine"


def test_remove_of_a_directory_says_so(sftpd):
    with fresh_user(sftpd, "rmdirer") as s:
        s.mkdir("/dir")
        with pytest.raises(IOError) as ei:
            s.remove("/dir")
        assert "is a directory" in str(ei.value), f"REMOVE of a directory: {ei.value}"
        assert s.listdir("/") == ["dir"], "the directory is still there"


def test_file_being_written_is_invisible_until_close(sftpd):
    with Session(sftpd) as a, Session(sftpd) as b:
        fa = a.open("/in-progress.bin", "w")
        fa.write(b"half of it")
        fa.flush()
        with pytest.raises(FileNotFoundError):
            b.stat("/in-progress.bin")
        assert "in-progress.bin" not in b.listdir("/"), "not listed while being written"
        with pytest.raises(IOError) as ei:
            b.open("/in-progress.bin", "wx")
        assert ei.value.errno == errno.EEXIST or "exist" in str(ei.value).lower(), \
            f"an exclusive create by B while A creates it: EEXIST: {ei.value!r}"
        fa.write(b" and the rest")
        fa.close()
        assert get_bytes(b, "/in-progress.bin") == b"half of it and the rest", "visible at close"


def test_fsetstat_on_a_file_being_created(sftpd):
    with Session(sftpd) as s:
        f = s.open("/fsetstat-new.bin", "w")
        f.write(b"new file")
        f.chmod(0o600)
        f.utime((1300000000, 1300000000))
        st = f.stat()
        assert (st.st_mode & 0o7777, st.st_mtime, st.st_size) == (0o600, 1300000000, 8), \
            f"FSTAT before CLOSE shows the FSETSTAT: {oct(st.st_mode)} {st.st_mtime} {st.st_size}"
        f.close()
        st = s.stat("/fsetstat-new.bin")
        assert (st.st_mode & 0o7777, st.st_mtime, st.st_size) == (0o600, 1300000000, 8), \
            f"and STAT after: {oct(st.st_mode)} {st.st_mtime} {st.st_size}"


def test_copy_data_reads_the_version_of_the_read_handle(sftpd):
    v1, v2 = os.urandom(100000), os.urandom(120000)
    with Session(sftpd) as s, Session(sftpd) as other:
        put_bytes(s, "/cd-v.bin", v1)
        src = s.open("/cd-v.bin", "r")
        put_bytes(other, "/cd-v.bin", v2)  # replaced while src is open
        for name in ("/cd-v-copy.bin", "/cd-v-copy2.bin"):
            dst = s.open(name, "w")
            typ, body = _raw_ext_request(s, "copy-data", lambda m: (
                m.add_string(src.handle), m.add_int64(0), m.add_int64(0),
                m.add_string(dst.handle), m.add_int64(0)))
            assert typ == FXP_STATUS and status_code(body) == FX_OK, f"copy-data: {body!r}"
            dst.close()
            got = get_bytes(s, name)
            assert hashlib.sha256(got).digest() == hashlib.sha256(v1).digest(), \
                f"{name}: the copy is the version the read handle reads ({len(got)} bytes)"
        src.close()
        assert get_bytes(s, "/cd-v.bin") == v2, "the file itself has the new version"


def test_handle_strings_differ_between_sessions(sftpd):
    with Session(sftpd) as a, Session(sftpd) as b:
        put_bytes(a, "/hs.bin", b"x")
        fa, fb = a.open("/hs.bin", "r"), b.open("/hs.bin", "r")
        assert fa.handle != fb.handle, f"handles of two sessions differ: {fa.handle!r} {fb.handle!r}"
        # and one session's handle means nothing in the other
        m = paramiko.Message()
        m.add_string(fa.handle)
        m.add_int64(0)
        m.add_int(10)
        typ, body = _raw_request(b, FXP_READ, m)
        assert typ == FXP_STATUS and status_code(body) == FX_INVALID_HANDLE, \
            f"another session's handle: INVALID_HANDLE: {typ} {body[:20]!r}"
        fa.close()
        fb.close()


# ---------------------------------------------------------------- a daemon with few handles and sessions

def test_handles_sessions_and_host_key_dir(make_daemon):
    port = free_port()
    d = make_daemon(sftp_section(port), name="sftp-few", start=False)
    keydir = os.path.join(d.tmp, "keys", "nested", "hostkeys")
    d.sections["sftp"].update({"handles_per_session": "4", "max_sessions": "2",
                               "host_key_dir": keydir})
    d.start()
    d.port = port
    d.add_user("alice", "alicepw1")
    modes = {name: stat.S_IMODE(os.stat(os.path.join(keydir, name)).st_mode)
             for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub")}
    assert stat.S_IMODE(os.stat(keydir).st_mode) == 0o700, "host_key_dir created 0700"
    assert modes == {"ssh_host_ed25519_key": 0o600, "ssh_host_ed25519_key.pub": 0o644}, \
        f"host key 0600, .pub 0644: {modes}"
    assert not os.path.exists(os.path.join(d.data, "ssh")), "no key in the data dir"

    with Session(d) as s:
        typ, body = _raw_ext_request(s, "limits@openssh.com", lambda m: None)
        assert struct.unpack(">QQQQ", body[:32])[3] == 4, "limits@openssh.com: 4 handles"
        put_bytes(s, "/h.bin", b"h")
        files = [s.open("/h.bin", "r") for _ in range(4)]
        typ, body = _raw_open(s, b"/h.bin", 0x1)
        assert typ == FXP_STATUS and _status_text(body) == "too many open handles", \
            f"5th OPEN: too many open handles: {body!r}"
        with pytest.raises(IOError):
            s.listdir("/")
        files.pop().close()
        assert s.listdir("/") == ["h.bin"], "listdir works after one CLOSE"
        for f in files:
            f.close()

        # max_sessions = 2: this one and one more; the third is closed before the banner
        t2 = transport(d, "alice", password="alicepw1")
        try:
            n0 = d.log_count("event=refused .*reason=max_sessions")
            c = socket.create_connection((HOST, port), timeout=10)
            c.settimeout(5)
            try:
                got = c.recv(100)
            except ConnectionResetError:
                got = b""
            c.close()
            assert got == b"", f"3rd connection closed before the SSH banner: {got!r}"
            assert d.wait_log("event=refused .*reason=max_sessions", n0 + 1) == n0 + 1, \
                "the refusal is logged with reason=max_sessions"
        finally:
            t2.close()


# ---------------------------------------------------------------- credentials re-checked on open sessions

@pytest.mark.timeout(120)
def test_credentials_end_open_sessions(sftpd):
    """Disable a user, change a password, revoke a token while a session is open, with a
    new file written but not closed: the next request gets PERMISSION_DENIED ("authentication
    no longer valid") within ~1.2 s (storagectl is another process: the engine notices within
    a second), then the session ends; the file never appears; other users go on."""
    d = sftpd
    users = {"sdis": "sdis-pw1", "spw": "spw-pw12", "stok": "stok-pw1", "sother": "sother-pw1"}
    for u, p in users.items():
        d.add_user(u, p)
    tok = d.token("stok")
    tok_id = d.ctl_json("token", "list", "stok", "--json")[0]["id"]
    secrets = {"sdis": users["sdis"], "spw": users["spw"], "stok": tok}
    sess = {u: SftpSession(d.port, u, password=secrets[u]) for u in secrets}
    other = SftpSession(d.port, "sother", password=users["sother"])
    inflight = {}
    try:
        for u, ss in sess.items():
            put_bytes(ss.sftp, "/kept.bin", b"previous")
            inflight[u] = ss.sftp.open("/inflight.bin", "w")
            inflight[u].write(os.urandom(200000))
            inflight[u].flush()
            f = ss.sftp.open("/kept.bin", "r+")
            f.write(b"PREVIOUS")
            f.flush()
            inflight[u + "-kept"] = f
        changes = (("sdis", ("user", "disable", "sdis"), None),
                   ("spw", ("user", "passwd", "spw", "--password-stdin"), "spw-new-pw1\n"),
                   ("stok", ("token", "revoke", str(tok_id)), None))
        res = {}
        for u, args, inp in changes:
            d.ctl(*args, input=inp)
            changed = time.time()
            while u not in res:
                dt = time.time() - changed
                try:
                    sess[u].sftp.stat("/")
                    if dt > 1.7:
                        res[u] = f"still served after {dt:.2f}s"
                except IOError as e:
                    res[u] = (dt, e.errno, str(e))
                time.sleep(0.05)
        for u, r in res.items():
            assert isinstance(r, tuple) and r[0] <= 1.2 and r[1] == errno.EACCES and \
                "authentication no longer valid" in r[2], \
                f"{u}: the next request gets PERMISSION_DENIED within 1.2 s: {r}"
        for u, ss in sess.items():
            with pytest.raises((EOFError, OSError, paramiko.SSHException)):
                ss.sftp.stat("/")
        assert other.sftp.listdir("/") == [], "another user's session goes on"
        put_bytes(other.sftp, "/still.bin", b"ok")
        assert get_bytes(other.sftp, "/still.bin") == b"ok", "and can still write"
    finally:
        for f in inflight.values():
            f._closed = True  # the channel is gone: no CLOSE to send
        for ss in list(sess.values()) + [other]:
            ss.close()
    d.ctl("user", "enable", "sdis")
    for u in secrets:
        ls = d.ctl("ls", u, "/").stdout
        assert "inflight.bin" not in ls, f"{u}: the file being written never appeared: {ls}"
        r = d.ctl("get", u, "/kept.bin", "-", binary=True)
        assert r.stdout == b"previous", f"{u}: the open file keeps its previous version: {r.stdout!r}"
