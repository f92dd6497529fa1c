"""Hardening (issue 18): what a hostile client or a crash must not achieve, one regression
test per defect found, against the real daemon with raw sockets where a real client would
not send the bytes (curl, paramiko, ftplib otherwise).

Covers: conflicting Content-Length / Content-Length with Transfer-Encoding (400, nothing
stored), connections over max_connections (a fast 503, never a hang), overlapping ranges
(coalesced: never more than the file).
"""
import base64
import os
import socket
import time

import pytest

from conftest import HOST, SftpSession, curl, daemon_scope, free_port

ALICE = ("alice", "pw-alice")


def basic(user):
    return base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


def raw_http(port, data, timeout=5.0):
    """Send raw bytes; return everything the server sent until it closed (or timeout)."""
    s = socket.create_connection((HOST, port))
    s.settimeout(timeout)
    got = b""
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        s.close()
    return got


def status_of(resp):
    line = resp.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


@pytest.fixture(scope="module")
def hd():
    port = free_port()
    sections = {"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}",
                         "threads": "2"}}
    with daemon_scope(sections, name="hard") as d:
        d.port = port
        d.base = f"http://{HOST}:{port}"
        d.add_user(*ALICE)
        yield d


def get_file(d, path):
    return curl("-u", f"{ALICE[0]}:{ALICE[1]}", d.base + "/api/v1/fs/" + path)


def test_conflicting_content_length_refused(hd):
    d = hd
    a = basic(ALICE)
    # two Content-Length headers that disagree: 400, the connection closed, nothing stored
    resp = raw_http(d.port, (f"PUT /api/v1/fs/smuggle1.bin HTTP/1.1\r\nHost: x\r\n"
                             f"Authorization: Basic {a}\r\nContent-Length: 5\r\n"
                             f"Content-Length: 50\r\n\r\nhello").encode())
    assert status_of(resp) == 400, f"conflicting Content-Length answers 400: {resp[:300]!r}"
    assert b"Content-Length" in resp, f"the answer says why: {resp[:400]!r}"
    r = get_file(d, "smuggle1.bin")
    assert r.code == 404, f"nothing stored after a refused request: {r}"
    # one header with a comma list that disagrees
    resp = raw_http(d.port, (f"PUT /api/v1/fs/smuggle2.bin HTTP/1.1\r\nHost: x\r\n"
                             f"Authorization: Basic {a}\r\nContent-Length: 5, 50\r\n\r\n"
                             f"hello").encode())
    assert status_of(resp) in (400,), f"Content-Length: 5, 50 answers 400: {resp[:300]!r}"
    assert get_file(d, "smuggle2.bin").code == 404, "nothing stored (comma list)"
    # Content-Length with Transfer-Encoding: 400 too
    resp = raw_http(d.port, (f"PUT /api/v1/fs/smuggle3.bin HTTP/1.1\r\nHost: x\r\n"
                             f"Authorization: Basic {a}\r\nContent-Length: 5\r\n"
                             f"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode())
    assert status_of(resp) == 400, f"CL + TE answers 400: {resp[:300]!r}"
    assert get_file(d, "smuggle3.bin").code == 404, "nothing stored (CL + TE)"
    # a GET with conflicting lengths too (no route may see it)
    resp = raw_http(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                    b"Content-Length: 3\r\n\r\nabc")
    assert status_of(resp) == 400, f"GET with conflicting Content-Length: {resp[:300]!r}"
    # the same value twice and a plain upload still work
    resp = raw_http(d.port, (f"PUT /api/v1/fs/same-twice.bin HTTP/1.1\r\nHost: x\r\n"
                             f"Authorization: Basic {a}\r\nContent-Length: 5\r\n"
                             f"Content-Length: 5\r\nConnection: close\r\n\r\nhello").encode())
    assert status_of(resp) == 201, f"an identical repeated Content-Length is one: {resp[:300]!r}"
    r = get_file(d, "same-twice.bin")
    assert r.code == 200 and r.body == b"hello", f"stored as sent: {r}"


def test_overlapping_ranges_coalesced(hd):
    d = hd
    data = os.urandom(10000)
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-T", "-", d.base + "/api/v1/fs/ranges.bin",
             input=data)
    assert r.code == 201, f"upload: {r}"
    # 16 ranges each covering the whole file: the answer is the file once
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-H", "Range: bytes=" + ",".join(["0-"] * 16),
             d.base + "/api/v1/fs/ranges.bin")
    assert r.code in (200, 206) and len(r.body) <= len(data) + 1024, \
        f"16 whole-file ranges send the file once, not 16 times: {r.code} {len(r.body)} bytes"
    assert data in r.body or r.body == data, "the bytes are the file's"
    # overlapping and adjacent ranges merge into one: a single 206 part
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-H", "Range: bytes=100-199,150-299,300-399,0-9",
             d.base + "/api/v1/fs/ranges.bin")
    assert r.code == 206, f"partial content: {r}"
    ctype = r.header("Content-Type") or ""
    assert ctype.startswith("multipart/byteranges"), f"two disjoint ranges: multipart: {ctype}"
    assert r.body.count(b"Content-Range:") == 2, f"0-9 and 100-399 (merged): {r.body[:600]!r}"
    assert b"bytes 100-399/10000" in r.body and b"bytes 0-9/10000" in r.body, \
        f"merged ranges sorted: {r.body[:600]!r}"
    assert data[100:400] in r.body and data[0:10] in r.body, "the parts' bytes"
    # a single range still answers a plain 206
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-H", "Range: bytes=5-9,7-8",
             d.base + "/api/v1/fs/ranges.bin")
    assert r.code == 206 and r.body == data[5:10], f"5-9 and 7-8 merge to 5-9: {r}"
    assert r.header("Content-Range") == "bytes 5-9/10000", f"Content-Range: {r.headers}"


def test_over_max_connections_fast_503(make_daemon):
    port = free_port()
    d = make_daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}",
                              "threads": "1", "max_connections": "2", "max_per_ip": "0"}},
                    name="maxconn")
    held = [socket.create_connection((HOST, port)) for _ in range(2)]
    time.sleep(0.5)
    try:
        answers = []
        for _ in range(5):
            t = time.time()
            resp = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5.0)
            answers.append((status_of(resp), time.time() - t))
        for st, took in answers:
            assert took < 2.0, f"over max_connections the answer is fast, not a hang: {answers}"
            assert st == 503, f"over max_connections: 503 (got {answers})"
        assert d.log_count("event=refused reason=\"max_connections\"") >= 5, "logged"
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    r = curl(f"http://{HOST}:{port}/healthz")
    assert r.code == 200, f"served again once connections are free: {r}"


# ---------------------------------------------------------------- bounded work, disk space

def limits_sections(hport, sport, fport):
    return {
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{hport}",
                 "threads": "2"},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sport}"},
        "ftp": {"enabled": "yes", "module": "ftp", "listen": f"{HOST}:{fport}"},
    }


@pytest.fixture(scope="module")
def ld():
    """max_file_size 4M and max_hole 1M; alice (no quota), carol (quota 2M)."""
    hport, sport, fport = free_port(), free_port(), free_port()
    with daemon_scope(limits_sections(hport, sport, fport),
                      storaged={"max_file_size": "4M", "max_hole": "1M"}, name="limits") as d:
        d.hport, d.sport, d.fport = hport, sport, fport
        d.base = f"http://{HOST}:{hport}"
        d.add_user(*ALICE)
        d.add_user("carol", "pw-carol", "--quota", "2M")
        yield d


def sftp_err(fn):
    """Run fn; return the IOError it raised and how long it took (None if it did not)."""
    t = time.time()
    try:
        fn()
    except IOError as e:
        return e, time.time() - t
    return None, time.time() - t


def test_sftp_holes_and_sizes_refused_up_front(ld):
    d = ld
    with SftpSession(d.sport, *ALICE) as s:
        # 1 byte at 1 TiB: refused at the WRITE, nothing hashed
        f = s.open("/hole.bin", "w")
        e, took = sftp_err(lambda: (f.seek(1 << 40), f.write(b"x"), f.flush()))
        assert e is not None and took < 5, f"WRITE at 1 TiB refused at once: {e} after {took:.1f}s"
        f.close()
        st = s.stat("/hole.bin")
        assert st.st_size == 0, f"the refused write left nothing: {st.st_size}"
        # a hole within max_hole is fine
        f = s.open("/small-hole.bin", "w")
        f.seek(512 * 1024)
        f.write(b"y")
        f.close()
        assert s.stat("/small-hole.bin").st_size == 512 * 1024 + 1, "a 512K hole is allowed"
        # FSETSTAT / SETSTAT extending to 4 GiB: refused (hole and max_file_size)
        f = s.open("/ext.bin", "w")
        f.write(b"abc")
        e, took = sftp_err(lambda: f.truncate(4 << 30))
        assert e is not None and took < 5, f"FSETSTAT size 4 GiB refused: {e} {took:.1f}s"
        f.close()
        e, took = sftp_err(lambda: s.truncate("/ext.bin", 4 << 30))
        assert e is not None and took < 5, f"SETSTAT size 4 GiB refused: {e} {took:.1f}s"
        assert s.stat("/ext.bin").st_size == 3, "the file keeps its content"
        # growing in steps below max_hole still stops at max_file_size (4M)
        f = s.open("/steps.bin", "w")
        for i in range(1, 4):
            f.seek(i * 1024 * 1024)
            f.write(b"z")
            f.flush()
        e, _ = sftp_err(lambda: (f.seek(4 * 1024 * 1024), f.write(b"z"), f.flush()))
        assert e is not None, "a write past max_file_size (4M) is refused"
        f.close()
        assert s.stat("/steps.bin").st_size == 3 * 1024 * 1024 + 1, "steps below the limit kept"
    # the quota is checked when the size is set, not after hashing at close
    with SftpSession(d.sport, "carol", "pw-carol") as s:
        f = s.open("/q.bin", "w")
        f.write(b"q" * (1200 * 1024))
        f.flush()
        e, took = sftp_err(lambda: f.truncate(2200 * 1024))
        assert e is not None and took < 5, f"extending past the 2M quota refused: {e}"
        assert "quota" in str(e).lower(), f"the error names the quota: {e}"
        e, _ = sftp_err(lambda: (f.write(b"more"), f.flush()))
        assert e is not None and "quota" in str(e).lower(), f"later writes fail too: {e}"
        f.close()  # the commit fails: the file was new, nothing appears
        e, _ = sftp_err(lambda: s.stat("/q.bin"))
        assert e is not None, "a new file refused by the quota leaves nothing"


def test_max_file_size_streamed_uploads(ld):
    d = ld
    big = os.urandom(4 * 1024 * 1024 + 1)
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-T", "-", d.base + "/api/v1/fs/big.bin", input=big)
    assert r.code == 413, f"HTTP upload past max_file_size: 413: {r}"
    assert curl("-u", f"{ALICE[0]}:{ALICE[1]}", d.base + "/api/v1/fs/big.bin").code == 404, \
        "nothing stored"
    import ftplib
    import io
    f = ftplib.FTP()
    f.connect(HOST, d.fport, timeout=30)
    f.login(*ALICE)
    try:
        f.storbinary("STOR big-ftp.bin", io.BytesIO(big))
        code = "226"
    except ftplib.error_perm as e:
        code = str(e)[:3]
    assert code == "552", f"FTP STOR past max_file_size: 552 ({code})"
    f.quit()
    ok = os.urandom(4 * 1024 * 1024)
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-T", "-", d.base + "/api/v1/fs/ok.bin", input=ok)
    assert r.code == 201, f"exactly max_file_size is fine: {r}"


def expect_continue(port, path, length, user=ALICE):
    """PUT with Expect: 100-continue and no body: the server's first answer."""
    s = socket.create_connection((HOST, port))
    s.settimeout(10)
    try:
        s.sendall((f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic(user)}\r\n"
                   f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n").encode())
        return s.recv(4096)
    finally:
        s.close()


def test_expect_continue_larger_than_disk_507(ld, make_daemon):
    d = ld
    resp = expect_continue(d.hport, "/api/v1/fs/huge.bin", 1 << 62)
    assert status_of(resp) == 507, f"Content-Length 2^62 without quota: 507, no 100: {resp[:200]!r}"
    assert b"space" in resp, f"says why: {resp[:400]!r}"
    resp = expect_continue(d.hport, "/api/v1/fs/fine.bin", 1000)
    assert status_of(resp) == 100, f"a small body gets 100 Continue: {resp[:200]!r}"
    # disk_reserve: the reserve is never offered (here more than any disk)
    port = free_port()
    d2 = make_daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}",
                               "threads": "1"}}, storaged={"disk_reserve": "100000T"},
                     name="reserve")
    d2.add_user(*ALICE)
    resp = expect_continue(port, "/api/v1/fs/r.bin", 10)
    assert status_of(resp) == 507, f"nothing left past disk_reserve: 507: {resp[:200]!r}"


# ---------------------------------------------------------------- SFTP handles of another session

def test_sftp_fsetstat_other_sessions_handle(ld):
    """A handle of session A used in session B: "invalid handle" (SSH_FX_INVALID_HANDLE or
    failure), never a confusing path error, and A's file untouched."""
    import paramiko
    from paramiko.sftp import CMD_CLOSE, CMD_FSETSTAT, CMD_FSTAT, CMD_WRITE
    from paramiko.sftp_client import long as int64
    d = ld
    with SftpSession(d.sport, *ALICE) as a, SftpSession(d.sport, *ALICE) as b:
        fa = a.open("/other-handle.bin", "w")
        fa.write(b"A" * 100)
        fa.flush()
        for cmd, args in ((CMD_FSETSTAT, (paramiko.SFTPAttributes.from_stat(os.stat("/")),)),
                          (CMD_FSTAT, ()), (CMD_WRITE, (int64(0), b"B" * 10)), (CMD_CLOSE, ())):
            if cmd == CMD_FSETSTAT:
                at = paramiko.SFTPAttributes()
                at.st_size = 5
                args = (at,)
            try:
                b._request(cmd, fa.handle, *args)
                err = None
            except IOError as e:
                err = e
            assert err is not None, f"op {cmd} with another session's handle refused"
            msg = str(err).lower()
            assert "handle" in msg and "path" not in msg, \
                f"op {cmd}: the error says the handle is invalid: {err!r}"
        fa.close()
        assert a.stat("/other-handle.bin").st_size == 100, "A's file untouched"


# ---------------------------------------------------------------- build

def test_make_cflags_keeps_project_flags_and_o1_ubsan_builds(tmp_path):
    """`make all CFLAGS=...` replaces only -O2 -g: -Werror, -fPIC, -pthread and the include
    paths stay; util/util.c and client/http.c build at -O1 with UBSan (GCC used to see a
    NULL format string there: -Wformat-truncation)."""
    import subprocess
    from conftest import ROOT
    for src in ("util/util.c", "client/http.c"):
        obj = "build/" + src[:-2] + ".o"
        r = subprocess.run(["make", "-s", "-n", "-B", obj, "CFLAGS=-O1 -fsanitize=undefined"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        lines = [ln for ln in r.stdout.splitlines() if f" -c -o {obj} " in ln + " "]
        assert r.returncode == 0 and lines, f"make -n {obj}: {r.stdout} {r.stderr}"
        cmd = lines[-1]
        for flag in ("-O1", "-fsanitize=undefined", "-Werror", "-Wall", "-fPIC", "-pthread",
                     "-Icore"):
            assert f" {flag} " in f" {cmd} ", f"{flag} in the compile line: {cmd}"
        cmd = cmd.replace(f"-o {obj}", f"-o {tmp_path}/x.o")
        r = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{src} at -O1 with UBSan and -Werror: {r.stderr[-2000:]}"


# ---------------------------------------------------------------- FTP: names invalid in both charsets

def test_ftp_gb18030_invalid_names_refused_not_changed(make_daemon):
    """fallback_charset = GB18030: a name with a raw 0xFF byte (invalid in UTF-8 and in
    GB18030) is refused 553, never stored with the byte dropped; IAC IAC still means 0xFF
    (also refused: 0xFF is no GB18030 lead byte); Telnet IAC IP is still dropped."""
    import ftplib
    port = free_port()
    d = make_daemon({"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}",
                             "fallback_charset": "GB18030"}}, name="gbff")
    d.add_user("gbu", "pw-gbu-1")
    f = ftplib.FTP(encoding="latin-1")
    f.connect(HOST, port, timeout=20)
    f.login("gbu", "pw-gbu-1")
    lat = lambda b: b.decode("latin-1")  # noqa: E731
    for name in (b"x\xff", b"\xff", b"\xc2\xd4\xff\x9c", b"\xb6\xff\xde\xf8", b"y\xff\xff"):
        try:
            r = f.sendcmd("MKD " + lat(name))
        except ftplib.error_perm as e:
            r = str(e)
        assert r.startswith("553"), f"MKD {name!r}: 553, not stored under another name: {r!r}"
    # a Telnet command inside the line is still dropped: IAC NOP
    r = f.sendcmd("MKD " + lat(b"ok\xff\xf1dir"))
    assert r.startswith("257") and "okdir" in r, f"IAC NOP dropped: {r!r}"
    names = sorted(f.nlst())
    f.quit()
    assert names == ["okdir"], f"nothing else was stored (no 'x', '', 'y', ...): {names}"


# ---------------------------------------------------------------- pre-login limits

def _held(socks, wait=0.5):
    """The sockets the server kept open (not closed within `wait`): their count."""
    time.sleep(wait)
    n = 0
    for s in socks:
        s.settimeout(0.05)
        closed = False
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    closed = True
                    break
                if b.startswith(b"421"):
                    closed = True
                    break
        except socket.timeout:
            pass
        except (ConnectionResetError, OSError):
            closed = True
        n += 0 if closed else 1
    return n


def _all_closed_within(socks, seconds):
    deadline = time.time() + seconds
    for s in socks:
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False
            s.settimeout(left)
            try:
                b = s.recv(4096)
                if not b:
                    break
            except socket.timeout:
                return False
            except (ConnectionResetError, OSError):
                break
    return True


def test_ftp_prelogin_budget_and_grace_time(make_daemon):
    import ftplib
    port = free_port()
    d = make_daemon({"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}", "max_clients": "20",
                             "max_per_ip": "50", "max_startups": "4:50:8",
                             "login_grace_time": "2s"}}, name="ftp-startups")
    d.add_user("honest", "pw-honest-1")
    logged = []
    for _ in range(3):
        f = ftplib.FTP()
        f.connect(HOST, port, timeout=10)
        f.login("honest", "pw-honest-1")
        logged.append(f)
    t0 = time.time()
    flood = [socket.create_connection((HOST, port)) for _ in range(30)]
    held = _held(flood)
    assert held <= 8, f"at most max_startups' full (8) connections wait to log in: {held}"
    assert held >= 4, f"below start (4) every connection is let in: {held}"
    # logged-in sessions are untouched
    for f in logged:
        assert f.voidcmd("NOOP").startswith("200"), "a logged-in session still works"
    # the silent ones are closed after the grace time (2s), with 421
    assert _all_closed_within(flood, 6.0), "silent connections closed after login_grace_time"
    took = time.time() - t0
    assert took >= 1.5, f"not before the grace time: {took:.1f}s"
    for s in flood:
        s.close()
    assert d.log_count("reason=login_grace_time") >= 4, "grace time closes are logged"
    assert d.log_count("reason=max_startups") >= 20, "refusals are logged"
    # an honest login now works at once
    f = ftplib.FTP()
    f.connect(HOST, port, timeout=10)
    f.login("honest", "pw-honest-1")
    f.quit()
    for f in logged:
        f.quit()


def test_sftp_prelogin_budget_and_grace_time(make_daemon):
    port = free_port()
    d = make_daemon({"sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{port}",
                              "max_sessions": "20", "max_per_ip": "50", "max_startups": "4:50:8",
                              "login_grace_time": "2s"}}, name="sftp-startups")
    d.add_user("honest", "pw-honest-1")
    with SftpSession(port, "honest", "pw-honest-1") as s0:
        s0.listdir("/")
        flood = [socket.create_connection((HOST, port)) for _ in range(30)]
        held = _held(flood)
        assert 4 <= held <= 8, f"4..8 (max_startups 4:50:8) silent connections held: {held}"
        assert s0.listdir("/") == [], "a logged-in session still works"
        assert _all_closed_within(flood, 8.0), "silent connections closed after login_grace_time"
        for s in flood:
            s.close()
        assert d.log_count("reason=max_startups") >= 20, "refusals are logged"
        with SftpSession(port, "honest", "pw-honest-1") as s1:
            assert s1.listdir("/") == [], "an honest login works once the silent ones are gone"


# ---------------------------------------------------------------- privileges

def _free_low_port():
    for p in range(1023, 900, -1):
        s = socket.socket()
        try:
            s.bind((HOST, p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port below 1024")


def test_started_as_root_serves_as_user(make_daemon):
    """user = nobody: ports (one below 1024) bound as root, then every thread is nobody; the
    data directory is made for nobody and everything in it belongs to nobody."""
    import pwd
    assert os.geteuid() == 0, "the suite runs as root"
    nobody = pwd.getpwnam("nobody")
    low, sport = _free_low_port(), free_port()
    d = make_daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{low}",
                              "threads": "2"},
                     "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sport}"}},
                    storaged={"user": "nobody"}, name="priv", start=False)
    os.chmod(d.tmp, 0o755)  # nobody must reach its data directory
    d.start()
    assert d.log_count("event=privileges_dropped user=nobody") == 1, "the drop is logged"
    with open(f"/proc/{d.pid}/status") as f:
        ids = {ln.split(":")[0]: ln.split()[1:] for ln in f if ln.startswith(("Uid", "Gid"))}
    assert ids["Uid"] == [str(nobody.pw_uid)] * 4, f"real, effective, saved, fs uid: {ids}"
    assert ids["Gid"] == [str(nobody.pw_gid)] * 4, f"every gid: {ids}"
    for t in os.listdir(f"/proc/{d.pid}/task"):
        with open(f"/proc/{d.pid}/task/{t}/status") as f:
            uid = [ln.split()[1:] for ln in f if ln.startswith("Uid")][0]
        assert uid == [str(nobody.pw_uid)] * 4, f"thread {t} is nobody too: {uid}"
    d.add_user(*ALICE)  # storagectl as root becomes the data directory's owner
    data = os.urandom(200000)
    r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-T", "-", f"http://{HOST}:{low}/api/v1/fs/p.bin",
             input=data)
    assert r.code == 201, f"served on port {low} (bound as root) after the drop: {r}"
    with SftpSession(sport, *ALICE) as s:
        with s.open("/q.bin", "w") as f:
            f.write(b"q" * 1000)
        assert sorted(s.listdir("/")) == ["p.bin", "q.bin"], "SFTP works as nobody"
    for root, dirs, files in os.walk(d.data):
        for n in dirs + files:
            st = os.lstat(os.path.join(root, n))
            assert st.st_uid == nobody.pw_uid, f"{os.path.join(root, n)} belongs to nobody"
    assert os.stat(d.data).st_uid == nobody.pw_uid, "the data directory was made for nobody"
    d.signal(__import__("signal").SIGHUP)  # the log can be reopened as nobody
    time.sleep(0.5)
    assert d.alive(), "SIGHUP after the drop"


def test_user_refuses_data_dir_of_another(make_daemon):
    port = free_port()
    d = make_daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}"}},
                    storaged={"user": "nobody"}, name="priv2", start=False)
    d.add_user(*ALICE)  # as root: the data directory is root's
    ok, text = d.try_start()
    assert not ok and "belongs to another user" in text, f"refused with a reason: {text[-400:]}"
    d2 = make_daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{free_port()}"}},
                     storaged={"user": "no-such-user-xyz"}, name="priv3", start=False)
    ok, text = d2.try_start()
    assert not ok and "no such user" in text, f"unknown user refused: {text[-400:]}"
