"""Issue 11 ("day one"): the defects found by trying every documented example, and
self-service over REST. Each test here failed on the code before its fix (or, for the
permission bits, pins the decision down on every protocol):

  3  FTP legacy charset: per-session evidence, OPTS UTF8 ON/OFF, refusals (+ issue 18.7)
  4  SFTP statvfs: free vs. available, quota; df over sshfs
  5  SFTP ~ / expand-path / home-directory; specific statuses and messages
  6  HTTP Retry-After, /me methods, token errors and dates, move/copy parents, /metrics
     access and labels that agree across front ends
  7  storagectl user key add (duplicate) / list / remove, user delete; the admin API's
  8  make run's first-user command and extra listeners; documentation links
  9  permission bits recorded and shown, not enforced, alike on every protocol
  -  self-service: password, tokens, keys under /api/v1/me
"""
import ftplib
import hashlib
import json
import os
import re
import stat
import struct
import subprocess
import time

import paramiko
import pytest

from conftest import (HOST, ROOT, SftpSession, curl, daemon_scope, free_port, ftp_get, ftp_login,
                      ftp_put, need, out, run, sftp_batch, ssh_keygen)

ALICE = ("alice", "alice-pw-1")
ROOTU = ("root", "root-pw-1")


def day1_sections(http, ftp, sftp, **http_extra):
    h = {"enabled": "yes", "module": "http", "listen": f"{HOST}:{http}", "threads": "4"}
    h.update(http_extra)
    return {
        "http": h,
        "ftp": {"enabled": "yes", "module": "ftp", "listen": f"{HOST}:{ftp}",
                "fallback_charset": "GB18030", "data_timeout": "10s"},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sftp}",
                 "idle_timeout": "60s"},
    }


@pytest.fixture(scope="module")
def dd():
    """FTP (GB18030 fallback), SFTP and HTTP (metrics = token, the default) on one
    engine; users alice and root (admin)."""
    http, ftp, sftp = free_port(), free_port(), free_port()
    with daemon_scope(day1_sections(http, ftp, sftp), name="day1") as d:
        d.http, d.ftp, d.sftp = http, ftp, sftp
        d.base = f"http://{HOST}:{http}"
        d.add_user(*ALICE)
        d.add_user(*ROOTU, "--admin")
        yield d


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    p = str(tmp_path_factory.mktemp("day1-keys") / "k1")
    return ssh_keygen(p, comment="day1")


def fingerprint(pub):
    r = run(["ssh-keygen", "-lf", pub])
    assert r.returncode == 0, out(r)
    return r.stdout.split()[1]


def http(d, method, path, *args, user=None, token=None, input=None):
    a = ["-X", method]
    if user:
        a += ["-u", f"{user[0]}:{user[1]}"]
    if token:
        a += ["-H", f"Authorization: Bearer {token}"]
    return curl(*a, *args, d.base + path, input=input)


def jpost(d, path, obj, **kw):
    return http(d, "POST", path, "-H", "Content-Type: application/json", "-d", json.dumps(obj),
                **kw)


def fresh_user(d, name, pw="pw-" + "x" * 8, *opts):
    d.add_user(name, pw, *opts)
    return (name, pw)


def raw(b):
    """Bytes as an ftplib line (the session uses latin-1, so every byte goes as it is)."""
    return b.decode("latin-1")


def ftp_raw_session(d, user):
    f = ftplib.FTP(encoding="latin-1")
    f.connect(HOST, d.ftp, timeout=20)
    f.login(*user)
    return f


def ftp_cmd(f, line):
    try:
        return f.sendcmd(line)
    except ftplib.all_errors as e:
        return str(e)


def utf8_names(d, user, path="/"):
    f = ftp_login(d.ftp, *user)
    try:
        return f.nlst(path)
    finally:
        f.quit()


# ---------------------------------------------------------------- 3: FTP legacy charset

def test_ftp_ambiguous_first_name_read_as_gb18030(dd):
    """The issue's own case: the GB18030 bytes of "gb目录" are valid UTF-8 ("gbĿ¼"); as
    the first name of a session they used to be stored garbled."""
    u = fresh_user(dd, "cs1")
    gb = "gb目录".encode("gb18030")
    assert gb.decode("utf-8") == "gbĿ¼"  # really ambiguous
    f = ftp_raw_session(dd, u)
    r = ftp_cmd(f, "MKD /" + raw(gb))
    assert r.startswith("257"), f"MKD of the GB18030 name: {r}"
    assert raw(gb) in r, f"the 257 reply echoes the name in the client's charset: {r!r}"
    f.quit()
    names = utf8_names(dd, u)
    assert "gb目录" in names and "gbĿ¼" not in names, f"stored as gb目录: {names}"
    # a UTF-8 client's accented name, valid GB18030 too, stays UTF-8
    f = ftp_raw_session(dd, u)
    assert ftp_cmd(f, "MKD /" + raw("café".encode())).startswith("257")
    # CJK in UTF-8 read as GB18030 would hold private-use characters: stays UTF-8
    assert ftp_cmd(f, "MKD /" + raw("中文目录".encode())).startswith("257")
    f.quit()
    names = utf8_names(dd, u)
    assert "café" in names and "中文目录" in names, f"UTF-8 names kept: {names}"
    assert "caf茅" not in names, names


def test_ftp_evidence_decides_later_names(dd):
    """A name valid in one encoding only sets the session's reading; later ambiguous
    names follow it, and names go back to the client in it."""
    u = fresh_user(dd, "cs2")
    f = ftp_raw_session(dd, u)
    # "中文" in GB18030 is not valid UTF-8: decides GB18030 for the session
    assert ftp_cmd(f, "MKD /" + raw("中文".encode("gb18030"))).startswith("257")
    # "é" alone: GB18030 reads C3 A9 as 茅; this session is GB18030 now
    r = ftp_cmd(f, "MKD /" + raw("é".encode("utf-8")))
    assert r.startswith("257"), r
    assert "GB18030" in ftp_cmd(f, "STAT"), "STAT names the session's charset"
    f.quit()
    names = utf8_names(dd, u)
    assert "中文" in names and "茅" in names, f"read as GB18030: {names}"
    # an existing name decides an ambiguous reference: a UTF-8-created dir opened by a
    # fresh session that sends its UTF-8 bytes
    f = ftp_raw_session(dd, u)
    ftp_put(f, "caf" + raw("é".encode()) + ".txt", b"x")  # new: ambiguous, plausible both: UTF-8
    f.quit()
    assert "café.txt" in utf8_names(dd, u)


def test_ftp_opts_utf8_pins_and_refuses(dd):
    u = fresh_user(dd, "cs3")
    f = ftp_raw_session(dd, u)
    assert ftp_cmd(f, "OPTS UTF8 OFF").startswith("200")
    # "日本語" in UTF-8 is not valid GB18030: refused, nothing stored
    r = ftp_cmd(f, "MKD /" + raw("日本語".encode()))
    assert r.startswith("553") and "OPTS UTF8 OFF" in r, f"pinned GB18030 refuses: {r}"
    assert ftp_cmd(f, "MKD /" + raw("目录".encode("gb18030"))).startswith("257")
    f.quit()
    f = ftp_raw_session(dd, u)
    assert ftp_cmd(f, "OPTS UTF8 ON").startswith("200")
    r = ftp_cmd(f, "MKD /" + raw("中文".encode("gb18030")))
    assert r.startswith("553") and "OPTS UTF8 ON" in r, f"pinned UTF-8 refuses GB18030: {r}"
    f.quit()
    names = utf8_names(dd, u)
    assert names == ["目录"], f"only the accepted name exists: {names}"


def test_ftp_invalid_in_both_and_colliding_names_refused(dd):
    """Issue 18 item 7: never stored under a changed name; two names never become one."""
    u = fresh_user(dd, "cs4")
    f = ftp_raw_session(dd, u)
    r = ftp_cmd(f, "MKD /bad" + raw(b"\x80\x80"))
    assert r.startswith("553") and "neither" in r, f"invalid in both: {r}"
    r = ftp_cmd(f, "STOR /bad" + raw(b"\x80\x81") + ".txt")
    assert r.startswith("553"), f"STOR of a name invalid in both: {r}"
    # 95 32 90 31 decodes to the same character as FE 51: refused, not an alias
    r = ftp_cmd(f, "MKD /c" + raw(b"\x95\x32\x90\x31"))
    assert r.startswith("553"), f"a GB18030 form that does not round-trip: {r}"
    assert ftp_cmd(f, "MKD /c" + raw(b"\xfe\x51")).startswith("257")
    f.quit()
    names = utf8_names(dd, u)
    assert len(names) == 1 and names[0].startswith("c"), f"nothing else stored: {names}"


def test_ftp_charset_rule_documented():
    with open(os.path.join(ROOT, "docs", "ftp.md")) as f:
        doc = f.read()
    for words in ("OPTS UTF8 OFF", "valid in only one", "valid in neither", "round trip",
                  "plausible"):
        assert words.lower() in doc.lower(), f"docs/ftp.md states the rule: {words}"


# ---------------------------------------------------------------- 4: SFTP statvfs

FXP_EXTENDED, FXP_STATUS, FXP_NAME, FXP_EXTENDED_REPLY = 200, 101, 104, 201


def raw_request(sftp, typ, msg):
    """One SFTP request through paramiko's channel: (reply type, body after the id)."""
    num = sftp.request_number
    sftp.request_number += 1
    sftp._send_packet(typ, struct.pack(">I", num) + msg.asbytes())
    while True:
        t, data = sftp._read_packet()
        if struct.unpack(">I", data[:4])[0] == num:
            return t, data[4:]


def ext_request(sftp, name, fill):
    msg = paramiko.Message()
    msg.add_string(name)
    fill(msg)
    return raw_request(sftp, FXP_EXTENDED, msg)


def status_of(body):
    """(code, message) of a STATUS body."""
    m = paramiko.Message(body)
    return m.get_int(), m.get_text()


def statvfs(s, path="/"):
    t, body = ext_request(s, "statvfs@openssh.com", lambda m: m.add_string(path))
    assert t == FXP_EXTENDED_REPLY, f"statvfs reply type {t}"
    return struct.unpack(">11Q", body[:88])


def test_sftp_statvfs_free_vs_available(dd):
    with SftpSession(dd.sftp, *ALICE) as s:
        bsize, frsize, blocks, bfree, bavail = statvfs(s)[:5]
    sv = os.statvfs(dd.data)
    tol = 64 << 20  # the disk moves while we look (other tests write)
    assert abs(blocks * frsize - sv.f_blocks * sv.f_frsize) < tol, "size: the disk's"
    assert abs(bfree * frsize - sv.f_bfree * sv.f_frsize) < tol, \
        f"f_bfree is the disk's free blocks: {bfree * frsize} vs {sv.f_bfree * sv.f_frsize}"
    assert abs(bavail * frsize - sv.f_bavail * sv.f_frsize) < tol, "f_bavail: available"
    assert bavail <= bfree <= blocks
    # df's Use% over SFTP is the server's
    used = blocks - bfree
    pct = 100 * used / (used + bavail)
    sused = sv.f_blocks - sv.f_bfree
    spct = 100 * sused / (sused + sv.f_bavail)
    assert abs(pct - spct) < 2, f"df's use% over sftp {pct:.1f} vs on the server {spct:.1f}"


def test_sftp_statvfs_quota(dd):
    u = fresh_user(dd, "dfq", "dfq-pw-12", "--quota", "10M")
    with SftpSession(dd.sftp, *u) as s:
        with s.open("/two.bin", "w") as f:
            f.write(os.urandom(2 << 20))
        bsize, frsize, blocks, bfree, bavail = statvfs(s)[:5]
    assert blocks * frsize == 10 << 20, "size = quota"
    assert bavail * frsize == (8 << 20) and bfree == bavail, "avail = what is left of it"


def test_sftp_df_over_sshfs(dd, keypair):
    """df on an sshfs mount shows the server's Size/Used/Avail (it showed 68% for 17%)."""
    need("sshfs")
    need("fusermount")
    u = fresh_user(dd, "sshfsu", "sshfs-pw-1")
    dd.add_key("sshfsu", keypair + ".pub")
    mnt = dd.path("mnt")
    os.makedirs(mnt, exist_ok=True)
    r = run(["sshfs", "-p", str(dd.sftp), "-o", f"IdentityFile={keypair}",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"{u[0]}@{HOST}:/", mnt], timeout=30)
    assert r.returncode == 0, f"sshfs mount: {out(r)}"
    try:
        a = run(["df", "-B4096", "--output=size,used,avail,pcent", mnt]).stdout.splitlines()[-1].split()
        b = run(["df", "-B4096", "--output=size,used,avail,pcent", dd.data]).stdout.splitlines()[-1].split()
    finally:
        run(["fusermount", "-u", mnt])
    assert a[0] == b[0], f"size over sshfs {a} vs server {b}"
    assert abs(int(a[1]) - int(b[1])) < 16384 and abs(int(a[2]) - int(b[2])) < 16384, \
        f"used/avail over sshfs {a} vs server {b}"
    assert abs(int(a[3].rstrip("%")) - int(b[3].rstrip("%"))) <= 1, f"use%: {a} vs {b}"


def test_sshfs_writes_through_storaged_sftp(dd, keypair):
    """sshfs on storaged's own SFTP creates, writes, renames and removes files: it stats a file
    right after OPEN with CREAT, and a create is in the tree only at CLOSE, so the creating
    session answers that stat from its open handle (before, every create over sshfs failed)."""
    need("sshfs")
    need("fusermount")
    u = fresh_user(dd, "sshfsw", "sshfsw-pw-1")
    dd.add_key("sshfsw", keypair + ".pub")
    mnt = dd.path("mntw")
    os.makedirs(mnt, exist_ok=True)
    src = dd.path("sshfs-src.bin")
    data = os.urandom(300_000)
    with open(src, "wb") as f:
        f.write(data)
    r = run(["sshfs", "-p", str(dd.sftp), "-o", f"IdentityFile={keypair}",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"{u[0]}@{HOST}:/", mnt], timeout=30)
    assert r.returncode == 0, f"sshfs mount: {out(r)}"
    try:
        r = run(["sh", "-c", f"cp {src} {mnt}/big.bin && mkdir {mnt}/d && echo hello > {mnt}/d/a.txt"
                 f" && echo gone > {mnt}/d/b.txt && mv {mnt}/d/a.txt {mnt}/d/c.txt"
                 f" && rm {mnt}/d/b.txt && cmp {src} {mnt}/big.bin && ls {mnt}/d"], timeout=60)
        assert r.returncode == 0, f"writes over sshfs: {out(r)}"
        assert r.stdout.split() == ["c.txt"], f"listing over sshfs: {r.stdout!r}"
    finally:
        run(["fusermount", "-u", mnt])
    with SftpSession(dd.sftp, *u) as s:
        with s.open("/big.bin", "r") as f:
            assert f.read() == data, "the file written over sshfs, read over SFTP"
        with s.open("/d/c.txt", "r") as f:
            assert f.read() == b"hello\n"
        assert sorted(s.listdir("/d")) == ["c.txt"], "renamed and removed over sshfs"


# ---------------------------------------------------------------- 5: SFTP ~ and statuses

def test_sftp_cd_tilde_in_openssh_sftp(dd, keypair):
    u = fresh_user(dd, "tilde", "tilde-pw-1")
    dd.add_key("tilde", keypair + ".pub")
    r = sftp_batch(dd.sftp, u[0], keypair,
                   "cd ~\npwd\nmkdir ~/sub\ncd ~/sub\npwd\ncd /\ncd ~tilde/sub\npwd\n")
    assert r.returncode == 0, f"cd ~ works: {out(r)}"
    pwds = re.findall(r"Remote working directory: (\S+)", r.stdout)
    assert pwds == ["/", "/sub", "/sub"], f"~ is the home (/): {pwds}"
    r = sftp_batch(dd.sftp, u[0], keypair, "cd ~alice\n")
    assert r.returncode != 0, "another user's ~ is not reachable"


def test_sftp_expand_path_and_home_directory(dd):
    # a real node named "~" keeps its name (made over HTTP: over SFTP "~" is the home)
    assert http(dd, "POST", "/api/v1/fs/exp/~?op=mkdir&parents=1", user=ALICE).code == 201
    with SftpSession(dd.sftp, *ALICE) as s:
        for path, want in (("~", "/"), ("~/exp", "/exp"), ("~alice/exp/x", "/exp/x"),
                           ("/exp/~", "/exp/~"), ("", "/")):
            t, body = ext_request(s, "expand-path@openssh.com", lambda m: m.add_string(path))
            assert t == FXP_NAME, f"expand-path {path!r}: type {t}"
            m = paramiko.Message(body)
            assert m.get_int() == 1 and m.get_text() == want, f"expand-path {path!r}"
        t, body = ext_request(s, "expand-path@openssh.com", lambda m: m.add_string("~root/x"))
        assert t == FXP_STATUS and struct.unpack(">I", body[:4])[0] == 2, "other user: no such"
        t, body = ext_request(s, "home-directory", lambda m: m.add_string(""))
        assert t == FXP_NAME and paramiko.Message(body[4:]).get_text() == "/", "home-directory"
        t, body = ext_request(s, "home-directory", lambda m: m.add_string("root"))
        assert t == FXP_STATUS, "another user's home is not told"


def test_sftp_statuses_and_messages(dd):
    u = fresh_user(dd, "stat5", "stat5-pw-1", "--quota", "1M")
    with SftpSession(dd.sftp, *u) as s:
        with pytest.raises(IOError) as e:
            s.stat("/missing")
        assert e.value.errno == 2, f"no such file: {e.value}"
        s.mkdir("/d")
        with pytest.raises(IOError) as e:
            s.mkdir("/d")
        assert "file exists" in str(e.value), f"exists is said: {e.value}"
        f = s.open("/big.bin", "w")
        msg = None
        try:  # the WRITE or the CLOSE (the commit) says it
            f.write(os.urandom(2 << 20))
            f.flush()
        except IOError as e:
            msg = str(e)
        m = paramiko.Message()
        m.add_string(f.handle)
        t, body = raw_request(s, 4, m)  # CLOSE (paramiko's close() hides errors)
        f._closed = True
        if msg is None:
            code, msg = status_of(body)
            assert t == FXP_STATUS and code == 4, f"quota: FAILURE ({t}, {code})"
        assert "quota exceeded" in msg and "1048576" in msg, f"quota with its figures: {msg}"
    tok = dd.token(u[0], "--scope", "ro")
    with SftpSession(dd.sftp, u[0], tok) as s:
        with pytest.raises(IOError) as e:
            s.mkdir("/ro")
        assert e.value.errno == 13 and "read-only login" in str(e.value), \
            f"read-only: permission denied, said so: {e.value}"


# ---------------------------------------------------------------- 6: HTTP

def test_http_retry_after_is_the_block_left(make_daemon):
    port = free_port()
    d = make_daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}"}},
                    storaged={"auth_max_failures": "3", "auth_block_time": "40s"}, name="d1-ra")
    d.base = f"http://{HOST}:{port}"
    d.add_user("ra", "ra-pw-123")
    codes = [http(d, "GET", "/api/v1/me", user=("ra", "wrong")).code for _ in range(3)]
    assert codes[-1] == 429, f"third failure blocks: {codes}"
    time.sleep(2)
    r = http(d, "GET", "/api/v1/me", user=("ra", "ra-pw-123"))
    assert r.code == 429, f"blocked even with the right password: {r}"
    ra = int(r.header("Retry-After"))
    assert 30 <= ra <= 39, f"Retry-After is what is left of 40 s, not 5: {ra}"
    assert f"{ra} s" in r.text, f"the message says it too: {r.text}"


def test_http_me_is_read_only(dd):
    for m in ("PATCH", "DELETE", "PUT", "POST"):
        r = http(dd, m, "/api/v1/me", "-d", "{}", user=ALICE)
        assert r.code == 405 and r.header("Allow") == "GET, HEAD", f"{m} /api/v1/me: {r}"


def test_http_admin_errors_and_token_dates(dd):
    r = http(dd, "DELETE", "/api/v1/admin/tokens/99999", user=ROOTU)
    assert r.code == 404 and r.json()["message"] == "no such token: 99999", r
    r = http(dd, "GET", "/api/v1/admin/users/nobody-here", user=ROOTU)
    assert r.code == 404 and "no such user" in r.json()["message"], r
    r = jpost(dd, "/api/v1/admin/tokens", {"user": "nobody-here"}, user=ROOTU)
    assert r.code == 404 and "no such user" in r.json()["message"], r
    # expires as an RFC 3339 date, echoed as a UTC time
    r = jpost(dd, "/api/v1/admin/tokens", {"user": "alice", "scope": "ro",
                                           "expires": "2031-02-03T04:05:06+01:00"}, user=ROOTU)
    assert r.code == 201, r
    t = r.json()
    assert t["expires"] == "2031-02-03T03:05:06Z" and t["scope"] == "ro", t
    assert http(dd, "GET", "/api/v1/me", token=t["token"]).code == 200
    # seconds still work; a past or malformed date is refused
    r = jpost(dd, "/api/v1/admin/tokens", {"user": "alice", "expires": 3600}, user=ROOTU)
    assert r.code == 201 and r.json()["expires"].endswith("Z"), r
    for bad in ("2001-01-01T00:00:00Z", "tomorrow", "2031-02-30T00:00:00Z", -5):
        r = jpost(dd, "/api/v1/admin/tokens", {"user": "alice", "expires": bad}, user=ROOTU)
        assert r.code == 400, f"expires {bad!r}: {r}"
    with open(os.path.join(ROOT, "docs", "rest-api.md")) as f:
        assert "RFC 3339" in f.read(), "docs say what expires takes"


def test_http_move_copy_parents(dd):
    u = fresh_user(dd, "mv6", "mv6-pw-12")
    assert http(dd, "PUT", "/api/v1/fs/a.txt", "--data-binary", "a", user=u).code == 201
    r = http(dd, "POST", "/api/v1/fs/a.txt?op=move&to=/x/y/a.txt", user=u)
    assert r.code == 404 and "/x" in r.json()["message"] and "parents=1" in r.json()["message"], \
        f"the missing folder is named: {r}"
    r = http(dd, "POST", "/api/v1/fs/a.txt?op=copy&to=/x/y/c.txt&parents=1", user=u)
    assert r.code == 201 and r.json()["path"] == "/x/y/c.txt", r
    r = http(dd, "POST", "/api/v1/fs/a.txt?op=move&to=/p/q/a.txt&parents=1", user=u)
    assert r.code == 200 and r.json()["path"] == "/p/q/a.txt", r
    r = http(dd, "POST", "/api/v1/fs/a.txt?op=move&to=/z.txt", user=u)
    assert r.code == 404 and "/a.txt" in r.json()["message"], f"missing source named: {r}"
    r = http(dd, "POST", "/api/v1/fs/p/q/a.txt?op=move&to=/x/y/c.txt/in", user=u)
    assert r.code == 409 and "/x/y/c.txt" in r.json()["message"], f"file in the way: {r}"
    assert http(dd, "GET", "/api/v1/fs/p/q/a.txt", user=u).body == b"a", "nothing lost"


def test_http_metrics_access(dd, make_daemon):
    assert http(dd, "GET", "/metrics").code == 401, "default token: no credentials, no metrics"
    assert http(dd, "GET", "/metrics", user=ALICE).code == 403, "a user is not an admin"
    r = http(dd, "GET", "/metrics", user=ROOTU)
    assert r.code == 200 and "storaged_blobs" in r.text, r
    tok = dd.token("root", "--scope", "ro")
    assert http(dd, "GET", "/metrics", token=tok).code == 200, "an admin's read-only token"
    for mode, want in (("open", 200), ("off", 404)):
        port = free_port()
        d = make_daemon({"http": {"enabled": "yes", "module": "http",
                                  "listen": f"{HOST}:{port}", "metrics": mode}},
                        name="d1-m" + mode)
        d.base = f"http://{HOST}:{port}"
        assert http(d, "GET", "/metrics").code == want, f"metrics = {mode}"
    d = make_daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{free_port()}",
                              "metrics": "yes"}}, name="d1-mbad", start=False)
    ok, text = d.try_start()
    assert not ok and "metrics must be open, token or off" in text, text[-500:]


def test_metric_labels_agree_across_front_ends(dd):
    u = fresh_user(dd, "m6", "m6-pw-123")
    # a failed and a good login on each front end, and some bytes both ways
    with pytest.raises(ftplib.error_perm):
        ftp_login(dd.ftp, u[0], "wrong")
    f = ftp_login(dd.ftp, *u)
    ftp_put(f, "m.bin", b"m" * 1000)
    assert ftp_get(f, "m.bin") == b"m" * 1000
    f.quit()
    with pytest.raises(paramiko.AuthenticationException):
        SftpSession(dd.sftp, u[0], "wrong")
    with SftpSession(dd.sftp, *u) as s:
        with s.open("/m.bin") as g:
            assert g.read() == b"m" * 1000
    assert http(dd, "GET", "/api/v1/me", user=(u[0], "wrong")).code == 401
    assert http(dd, "GET", "/api/v1/fs/m.bin", user=u).code == 200
    time.sleep(0.5)
    m = http(dd, "GET", "/metrics", user=ROOTU).text
    types, samples = {}, []
    for line in m.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split()
            assert name not in types, f"one TYPE per name: {name}"
            types[name] = typ
        elif line and not line.startswith("#"):
            samples.append(line)
    for fe in ("ftp", "sftp", "http"):
        assert f'storaged_logins_total{{frontend="{fe}",result="failed"}}' in m, \
            f"{fe} counts failed logins under the one label value: {m[:3000]}"
        assert f'storaged_logins_total{{frontend="{fe}",result="ok"}}' in m, fe
        assert f'storaged_bytes_sent_total{{frontend="{fe}"}}' in m, f"{fe} bytes sent"
    results = set(re.findall(r'result="([^"]*)"', m))
    assert results <= {"ok", "failed", "blocked", "aborted", "partial-kept", "aborted-kept"}, \
        f"result values agree: {results}"
    assert types.get("storaged_sessions") == "gauge", "sessions is a gauge everywhere"
    for old in ("storaged_auth_failures_total", "storaged_bytes_total",
                "storaged_ftp_sessions_ended_total"):
        assert old not in types, f"{old}: renamed to the common series"


# ---------------------------------------------------------------- 7: storagectl, admin API

def test_storagectl_keys(dd, keypair):
    u = fresh_user(dd, "kk7", "kk7-pw-123")
    r = dd.ctl("user", "key", "add", "kk7", keypair + ".pub")
    assert "added 1 key" in r.stdout, out(r)
    r = dd.ctl("user", "key", "add", "kk7", keypair + ".pub")
    assert "already registered" in r.stderr and "added 0 keys" in r.stdout, \
        f"a duplicate warns as documented: {out(r)}"
    fp = fingerprint(keypair + ".pub")
    keys = dd.ctl_json("user", "key", "list", "kk7", "--json")
    assert len(keys) == 1 and keys[0]["fingerprint"] == fp and keys[0]["comment"] == "day1", keys
    assert fp in dd.ctl("user", "key", "list", "kk7").stdout
    # a key session ends when the key goes
    pk = paramiko.Ed25519Key.from_private_key_file(keypair)
    with SftpSession(dd.sftp, u[0], pkey=pk) as s:
        s.mkdir("/before")
        r = dd.ctl("user", "key", "remove", "kk7", fp)
        assert "removed key" in r.stdout, out(r)
        time.sleep(1.5)
        with pytest.raises((IOError, EOFError, paramiko.SSHException)):
            s.mkdir("/after")
    with pytest.raises(paramiko.AuthenticationException):
        SftpSession(dd.sftp, u[0], pkey=pk)
    r = dd.ctl("user", "key", "remove", "kk7", fp, check=False)
    assert r.returncode == 1 and "no such key" in r.stderr, out(r)
    # by id, through the admin API too
    dd.ctl("user", "key", "add", "kk7", keypair + ".pub")
    r = http(dd, "GET", "/api/v1/admin/users/kk7/keys", user=ROOTU)
    assert r.code == 200 and r.json()["keys"][0]["fingerprint"] == fp, r
    kid = r.json()["keys"][0]["id"]
    with open(keypair + ".pub") as f:
        line = f.read().strip()
    r = jpost(dd, "/api/v1/admin/users/kk7/keys", {"key": line}, user=ROOTU)
    assert r.code == 409 and "already registered" in r.json()["message"], r
    assert http(dd, "DELETE", f"/api/v1/admin/users/kk7/keys/{kid}", user=ROOTU).code == 204
    r = http(dd, "DELETE", f"/api/v1/admin/users/kk7/keys/{kid}", user=ROOTU)
    assert r.code == 404 and "no such key" in r.json()["message"], r
    r = jpost(dd, "/api/v1/admin/users/kk7/keys", {"key": line}, user=ROOTU)
    assert r.code == 201 and r.json()["fingerprint"] == fp, r
    enc = fp.replace("/", "%2F")
    assert http(dd, "DELETE", f"/api/v1/admin/users/kk7/keys/{enc}", user=ROOTU).code == 204
    assert dd.ctl_json("user", "key", "list", "kk7", "--json") == []


def _user_delete_check(d, name, pw, delete):
    u = (name, pw)
    f = ftp_login(d.ftp, *u)
    s = SftpSession(d.sftp, *u)
    tok = d.token(name)
    assert http(d, "GET", "/api/v1/me", token=tok).code == 200
    data = os.urandom(100000)
    ftp_put(f, "doomed2.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    assert sha in d.blob_names()
    delete()
    time.sleep(1.5)
    assert ftp_cmd(f, "NOOP").startswith("421"), "the FTP session ends"
    with pytest.raises((IOError, EOFError, paramiko.SSHException)):
        s.sftp.listdir("/")
    s.close()
    assert http(d, "GET", "/api/v1/me", token=tok).code == 401, "the token is gone"
    assert http(d, "GET", "/api/v1/me", user=u).code == 401, "the password is gone"
    assert name not in [x["name"] for x in d.ctl_json("user", "list", "--json")]
    # the name is free at once, with an empty home
    d.add_user(name, pw)
    assert d.ctl_json("ls", name, "/", "--json") == []
    # the files went through the logical delete: the cleaner purges them
    assert sha in d.blob_names(), "kept until the cleaner runs"
    r = d.ctl("gc", "--now", "--json")
    assert json.loads(r.stdout)["nodes_purged"] >= 2, out(r)  # the root and the file
    assert sha not in d.blob_names(), "the content went with the cleaner"
    assert "user_delete" in d.ctl("journal", "--user", name).stdout


def test_storagectl_user_delete(dd):
    dd.add_user("del7", "del7-pw-1")
    _user_delete_check(dd, "del7", "del7-pw-1", lambda: dd.ctl("user", "delete", "del7"))
    r = dd.ctl("user", "delete", "nobody-here", check=False)
    assert r.returncode == 1 and "no such user" in r.stderr, out(r)


def test_admin_api_user_delete(dd):
    dd.add_user("del8", "del8-pw-1")
    _user_delete_check(dd, "del8", "del8-pw-1",
                       lambda: http(dd, "DELETE", "/api/v1/admin/users/del8", user=ROOTU))
    r = http(dd, "DELETE", "/api/v1/admin/users/nobody-here", user=ROOTU)
    assert r.code == 404 and "no such user" in r.json()["message"], r


# ---------------------------------------------------------------- 8: make run, docs

def test_first_user_command_runs_as_pasted(make_daemon, tls_cert):
    cert, key = tls_cert
    ftp, imp = free_port(), free_port()
    d = make_daemon({"ftp": {"enabled": "yes", "module": "ftp", "listen": f"{HOST}:{ftp}",
                             "tls_cert": cert, "tls_key": key,
                             "implicit_tls_listen": f"{HOST}:{imp}"}}, name="d1-run")
    deadline = time.time() + 10
    text = ""
    while time.time() < deadline and "Create the first user" not in text:
        time.sleep(0.1)
        text = d.logtext()
    shown = [line for line in text.splitlines() if "listening on" in line]
    assert any(f"{HOST}:{imp}" in line and "implicit" in line for line in shown), \
        f"implicit FTPS shown: {shown}"
    cmd = next((line.strip() for line in text.splitlines() if "user add" in line), None)
    assert cmd and "--password-stdin" in cmd, text[-800:]
    cmd = cmd.replace(" alice ", " firstuser ")
    # pasted into sh with nothing on stdin: it must not wait for a line
    r = subprocess.run(["sh", "-c", cmd], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "added user firstuser" in r.stdout, f"{cmd}: {r.stdout}{r.stderr}"


def test_password_stdin_on_a_terminal_says_what_it_waits_for(dd):
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(os.path.join(ROOT, "storagectl"),
                 ["storagectl", "-c", dd.conf, "user", "add", "ttyuser", "--password-stdin"])
    got = b""
    deadline = time.time() + 10
    while time.time() < deadline and b"Password" not in got:
        try:
            got += os.read(fd, 1024)
        except OSError:
            break
    os.write(fd, b"tty-pw-123\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert b"Password (one line" in got, f"a prompt on a terminal: {got!r}"
    assert os.WEXITSTATUS(status) == 0


def test_documentation_links_resolve():
    bad = []
    files = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "SECURITY.md")]
    files += [os.path.join(ROOT, "docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
              if f.endswith(".md")]
    for path in files:
        with open(path) as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            file_part = target.split("#")[0]
            if not os.path.exists(os.path.join(os.path.dirname(path), file_part)):
                bad.append(f"{os.path.relpath(path, ROOT)} -> {target}")
    assert not bad, f"links to missing files: {bad}"


# ---------------------------------------------------------------- 9: permission bits

def test_permission_bits_recorded_not_enforced_everywhere(dd):
    """Decision: mode bits are recorded and shown alike by every protocol, and enforced by
    none (docs/architecture.md "Permission bits")."""
    u = fresh_user(dd, "perm9", "perm9-pw-1")
    f = ftp_login(dd.ftp, *u)
    ftp_put(f, "locked.txt", b"still readable")
    f.mkd("ro-dir")
    assert f.sendcmd("SITE CHMOD 0000 locked.txt").startswith("200")
    assert f.sendcmd("SITE CHMOD 0555 ro-dir").startswith("200")
    lines = []
    f.retrlines("LIST", lines.append)
    assert any(line.startswith("----------") and line.endswith("locked.txt") for line in lines), lines
    assert any(line.startswith("dr-xr-xr-x") and line.endswith("ro-dir") for line in lines), lines
    # FTP: read the 0000 file, write into the 0555 folder
    assert ftp_get(f, "locked.txt") == b"still readable"
    ftp_put(f, "ro-dir/by-ftp.txt", b"f")
    f.quit()
    with SftpSession(dd.sftp, *u) as s:
        assert stat.S_IMODE(s.stat("/locked.txt").st_mode) == 0
        assert stat.S_IMODE(s.stat("/ro-dir").st_mode) == 0o555
        with s.open("/locked.txt") as g:
            assert g.read() == b"still readable"
        with s.open("/ro-dir/by-sftp.txt", "w") as g:
            g.write(b"s")
        s.chmod("/locked.txt", 0o000)  # the owner may always chmod
    r = http(dd, "GET", "/api/v1/stat/locked.txt", user=u)
    assert r.json()["mode"] == "0000", r
    assert http(dd, "GET", "/api/v1/fs/locked.txt", user=u).body == b"still readable"
    assert http(dd, "PUT", "/api/v1/fs/ro-dir/by-http.txt", "--data-binary", "h", user=u).code == 201
    names = sorted(e["name"] for e in http(dd, "GET", "/api/v1/fs/ro-dir", user=u).json()["entries"])
    assert names == ["by-ftp.txt", "by-http.txt", "by-sftp.txt"], names
    with open(os.path.join(ROOT, "docs", "architecture.md")) as fh:
        assert "recorded and shown, not enforced" in fh.read()


# ---------------------------------------------------------------- self-service

def test_self_service_password(dd):
    u = fresh_user(dd, "me1", "me1-old-pw")
    f = ftp_login(dd.ftp, *u)  # a session of the old password
    r = jpost(dd, "/api/v1/me/password", {"old": "nope", "new": "me1-new-pw"}, user=u)
    assert r.code == 403 and r.json()["error"] == "wrong_password", r
    r = jpost(dd, "/api/v1/me/password", {"new": "x"}, user=u)
    assert r.code == 400, r
    r = jpost(dd, "/api/v1/me/password", {"old": "me1-old-pw", "new": "me1-new-pw"}, user=u)
    assert r.code == 204, r
    time.sleep(0.2)
    assert ftp_cmd(f, "NOOP").startswith("421"), "the old password's session ends"
    assert http(dd, "GET", "/api/v1/me", user=u).code == 401
    assert http(dd, "GET", "/api/v1/me", user=("me1", "me1-new-pw")).code == 200
    tok = dd.token("me1", "--scope", "ro")
    r = jpost(dd, "/api/v1/me/password", {"old": "me1-new-pw", "new": "z"}, token=tok)
    assert r.code == 403 and r.json()["error"] == "read_only", r


def test_self_service_tokens(dd):
    u = fresh_user(dd, "me2", "me2-pw-123")
    other = fresh_user(dd, "me2b", "me2b-pw-12")
    r = jpost(dd, "/api/v1/me/tokens", {"scope": "rw", "expires": "2035-06-01T00:00:00Z"}, user=u)
    assert r.code == 201, r
    t = r.json()
    assert t["user"] == "me2" and t["expires"] == "2035-06-01T00:00:00Z" and t["token"], t
    assert http(dd, "GET", "/api/v1/me", token=t["token"]).json()["user"] == "me2"
    listed = http(dd, "GET", "/api/v1/me/tokens", user=u).json()["tokens"]
    assert [x["id"] for x in listed] == [t["id"]] and "token" not in listed[0], listed
    # a session of that expiring token cannot mint one that lives longer
    r = jpost(dd, "/api/v1/me/tokens", {}, token=t["token"])
    assert r.code == 403 and "outlives" in r.json()["message"], r
    r = jpost(dd, "/api/v1/me/tokens", {"scope": "ro", "expires": 600}, token=t["token"])
    assert r.code == 201 and r.json()["scope"] == "ro", r
    # revoke: only one's own
    otok = jpost(dd, "/api/v1/me/tokens", {}, user=other).json()
    r = http(dd, "DELETE", f"/api/v1/me/tokens/{otok['id']}", user=u)
    assert r.code == 404 and "no such token" in r.json()["message"], r
    assert http(dd, "GET", "/api/v1/me", token=otok["token"]).code == 200
    assert http(dd, "DELETE", f"/api/v1/me/tokens/{t['id']}", user=u).code == 204
    assert http(dd, "GET", "/api/v1/me", token=t["token"]).code == 401, "revoked"
    r = jpost(dd, "/api/v1/me/tokens", {"expires": "yesterday"}, user=u)
    assert r.code == 400, r


def test_self_service_keys(dd, keypair):
    u = fresh_user(dd, "me3", "me3-pw-123")
    with open(keypair + ".pub") as f:
        line = f.read().strip()
    fp = fingerprint(keypair + ".pub")
    r = jpost(dd, "/api/v1/me/keys", {"key": line}, user=u)
    assert r.code == 201 and r.json()["fingerprint"] == fp, r
    assert jpost(dd, "/api/v1/me/keys", {"key": line}, user=u).code == 409
    assert jpost(dd, "/api/v1/me/keys", {"key": "not a key"}, user=u).code == 400
    r = sftp_batch(dd.sftp, "me3", keypair, "pwd\n")
    assert r.returncode == 0, f"the key logs in: {out(r)}"
    keys = http(dd, "GET", "/api/v1/me/keys", user=u).json()["keys"]
    assert [k["fingerprint"] for k in keys] == [fp], keys
    r = http(dd, "DELETE", "/api/v1/me/keys/" + fp.replace("/", "%2F"), user=u)
    assert r.code == 204, r
    r = sftp_batch(dd.sftp, "me3", keypair, "pwd\n")
    assert r.returncode != 0, "the removed key no longer logs in"
    assert http(dd, "GET", "/api/v1/me/keys", user=u).json()["keys"] == []
    # an expiring token may not add a key (keys never expire)
    tok = jpost(dd, "/api/v1/me/tokens", {"expires": 3600}, user=u).json()["token"]
    r = jpost(dd, "/api/v1/me/keys", {"key": line}, token=tok)
    assert r.code == 403, r
