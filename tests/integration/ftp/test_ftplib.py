"""FTP front end: python ftplib and raw-socket checks against the running daemon.

Run by run.sh (which starts the daemon) with environment:
  FTP_PORT, SD_DATA, SD_CONF, SD_ROOT, FTP_USER/FTP_PASS, FTP_USER2/FTP_PASS2
Prints "ok   - ..." / "FAIL - ..." lines and a last line "PYRESULT <pass> <fail>".
Some checks start their own daemon (sdtest.Daemon) with a special config.
"""
import ftplib
import hashlib
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.environ["SD_ROOT"], "tests", "integration"))
import sdtest  # noqa: E402

HOST = "127.0.0.1"
PORT = int(os.environ["FTP_PORT"])
USER, PW = os.environ["FTP_USER"], os.environ["FTP_PASS"]
USER2, PW2 = os.environ["FTP_USER2"], os.environ["FTP_PASS2"]
DATA = os.environ["SD_DATA"]
PASSED = FAILED = 0


def check(desc, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print(f"ok   - ftp: {desc}", flush=True)
    else:
        FAILED += 1
        print(f"FAIL - ftp: {desc} {detail}", flush=True)


def case(fn):
    """Run one group; an exception counts as one failure."""
    global FAILED
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        FAILED += 1
        print(f"FAIL - ftp: {fn.__name__} raised {type(e).__name__}: {e}", flush=True)
        traceback.print_exc(limit=3)


def login(user=USER, pw=PW, encoding="utf-8", port=PORT):
    f = ftplib.FTP(encoding=encoding)
    f.connect(HOST, port, timeout=20)
    f.login(user, pw)
    return f


def blobs():
    n = 0
    for _, _, files in os.walk(os.path.join(DATA, "blobs")):
        n += sum(1 for x in files if len(x) == 64)
    return n


def put(f, name, data):
    f.storbinary(f"STOR {name}", io.BytesIO(data))


def get(f, name, rest=None):
    out = io.BytesIO()
    f.retrbinary(f"RETR {name}", out.write, rest=rest)
    return out.getvalue()


def code_of(f, line):
    """Send a raw command, return the reply code (as text)."""
    try:
        return f.sendcmd(line)[:3]
    except ftplib.all_errors as e:
        return str(e)[:3]


# ------------------------------------------------------------ facts


def t_facts():
    f = login()
    data = os.urandom(123457)
    put(f, "facts.bin", data)
    f.mkd("factdir")
    sha = hashlib.sha256(data).hexdigest()
    entries = dict(f.mlsd())
    e = entries.get("facts.bin", {})
    check("MLSD type=file", e.get("type") == "file", e)
    check("MLSD size", e.get("size") == str(len(data)), e)
    check("MLSD modify is 14 digits", len(e.get("modify", "")) == 14 and e["modify"].isdigit(), e)
    check("MLSD perm has r,w", "r" in e.get("perm", "") and "w" in e.get("perm", ""), e)
    check("MLSD unique present", bool(e.get("unique")), e)
    check("MLSD dir type", entries.get("factdir", {}).get("type") == "dir", entries.get("factdir"))
    check("SIZE", f.size("facts.bin") == len(data))
    mdtm = f.sendcmd("MDTM facts.bin")
    check("MDTM 213 + 14 digits", mdtm.startswith("213 ") and len(mdtm.split()[1]) == 14, mdtm)
    check("MDTM equals MLSD modify", mdtm.split()[1] == e.get("modify"), (mdtm, e))
    h = f.sendcmd("HASH facts.bin")
    check("HASH SHA-256 of content", h.startswith("213 SHA-256 ") and sha in h, h)
    check("HASH range", f" 0-{len(data) - 1} " in h, h)
    feat = f.sendcmd("FEAT")
    for k in ("UTF8", "MLST", "SIZE", "MDTM", "REST STREAM", "EPSV", "HASH", "AUTH TLS", "MFMT"):
        check(f"FEAT lists {k}", k in feat, feat)
    check("OPTS UTF8 ON", f.sendcmd("OPTS UTF8 ON").startswith("200"))
    check("REST + RETR", get(f, "facts.bin", rest=1000) == data[1000:])
    mf = f.sendcmd("MFMT 20200102030405 facts.bin")
    check("MFMT", mf.startswith("213") and f.sendcmd("MDTM facts.bin").split()[1] == "20200102030405", mf)
    mlst = f.sendcmd("MLST facts.bin")
    check("MLST", mlst.startswith("250-") and "type=file" in mlst and "size=123457" in mlst, mlst)
    check("LIST ls -l form", any(l.startswith("-rw") and l.endswith(" facts.bin")
                                 for l in _list(f)), _list(f))
    check("NLST", "facts.bin" in f.nlst())
    wild = f.nlst("*.bin")
    check("NLST wildcard", "facts.bin" in wild and all(n.endswith(".bin") for n in wild), wild)
    put(f, "factdir/w1.txt", b"1")
    put(f, "factdir/w2.txt", b"2")
    wild = sorted(f.nlst("factdir/*.txt"))
    check("NLST dir/wildcard keeps the dir part", wild == ["factdir/w1.txt", "factdir/w2.txt"], wild)
    check("NLST of a file echoes it", f.nlst("factdir/w1.txt") == ["factdir/w1.txt"])
    f.delete("factdir/w1.txt")
    f.delete("factdir/w2.txt")
    check("SYST", f.sendcmd("SYST").startswith("215"))
    check("STAT", f.sendcmd("STAT").startswith("211"))
    check("unknown command 502", code_of(f, "XYZZY") == "502")
    check("RNTO without RNFR 503", code_of(f, "RNTO x") == "503")
    check("SITE CHMOD", f.sendcmd("SITE CHMOD 600 facts.bin").startswith("200"))
    check("LIST shows chmod", any(l.startswith("-rw------- ") and l.endswith(" facts.bin")
                                  for l in _list(f)))
    # ASCII mode converts line ends both ways.
    f.storlines("STOR text.txt", io.BytesIO(b"one\ntwo\n"))
    raw = get(f, "text.txt")
    check("ASCII STOR stores LF", raw == b"one\ntwo\n", raw)
    lines = []
    f.retrlines("RETR text.txt", lines.append)
    check("ASCII RETR", lines == ["one", "two"], lines)
    # STOU
    f.voidcmd("TYPE I")
    conn, _ = f.ntransfercmd("STOU")
    conn.sendall(b"unique")
    conn.close()
    r = f.voidresp()
    check("STOU", r.startswith("226"), r)
    # APPE
    put(f, "app.txt", b"hello ")
    f.storbinary("APPE app.txt", io.BytesIO(b"world"))
    check("APPE appends", get(f, "app.txt") == b"hello world")
    # rename, delete, rmd
    f.rename("app.txt", "factdir/moved.txt")
    check("RNFR/RNTO into dir", get(f, "factdir/moved.txt") == b"hello world")
    check("RMD non-empty refused", code_of(f, "RMD factdir")[0] == "5")
    f.delete("factdir/moved.txt")
    f.rmd("factdir")
    check("DELE + RMD", "factdir" not in f.nlst())
    f.quit()


def _list(f):
    out = []
    f.retrlines("LIST", out.append)
    return out


# ------------------------------------------------------------ dedup


def t_dedup():
    f = login()
    data = os.urandom(3 * 1024 * 1024 + 11)
    n0 = blobs()
    put(f, "twin-a.bin", data)
    n1 = blobs()
    put(f, "twin-b.bin", data)
    n2 = blobs()
    check("first upload adds one blob", n1 == n0 + 1, (n0, n1))
    check("twin upload adds no blob", n2 == n1, (n1, n2))
    check("twin content intact", get(f, "twin-b.bin") == data)
    f.quit()


# ------------------------------------------------------------ abort


def t_abort():
    f = login()
    big = os.urandom(48 * 1024 * 1024)
    put(f, "big-abort.bin", big)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR big-abort.bin")
    got = conn.recv(65536)
    check("RETR started", len(got) > 0)
    r = f.abort()  # ABOR sent urgent; expects 426/225/226
    check("ABOR answered 426", r.startswith("426"), r)
    conn.close()
    try:
        r2 = f.getresp()
    except ftplib.all_errors as e:
        r2 = str(e)
    check("ABOR then 226", r2.startswith("226"), r2)
    check("session usable after ABOR", f.sendcmd("NOOP").startswith("200"))
    check("data intact after ABOR", hashlib.sha256(get(f, "big-abort.bin")).digest()
          == hashlib.sha256(big).digest())
    f.quit()


# ------------------------------------------------------------ charsets


def t_gb18030():
    name = "中文文件.txt"
    g = login(encoding="gb18030")
    put(g, name, b"gb data")
    check("GB18030 session lists its name", name in g.nlst(), g.nlst())
    g.mkd("目录")
    g.quit()
    u = login()
    names = u.nlst()
    check("UTF-8 session sees the Chinese file name", name in names, names)
    check("UTF-8 session sees the Chinese dir name", "目录" in names, names)
    check("content via UTF-8 name", get(u, name) == b"gb data")
    put(u, "日本語.txt", b"u")
    u.quit()
    g = login(encoding="gb18030")
    g.sendcmd("OPTS UTF8 OFF")
    check("GB18030 session lists a UTF-8 created name", "日本語.txt" in g.nlst(), g.nlst())
    g.quit()


# ------------------------------------------------------------ bad input


def t_traversal():
    f = login()
    put(f, "inside.txt", b"inside")
    bad = ["../../../../etc/passwd", "/../../../etc/passwd", "..\\..\\etc\\passwd",
           "a/../../../../../etc/passwd", "/./../etc/shadow"]
    for p in bad:
        for cmd in ("RETR", "SIZE", "MDTM", "HASH", "DELE", "RNFR"):
            try:
                if cmd == "RETR":
                    get(f, p)
                    c = "2xx"
                else:
                    c = code_of(f, f"{cmd} {p}")
            except ftplib.all_errors as e:
                c = str(e)[:3]
            check(f"{cmd} {p} refused", c[0] == "5", c)
        c = code_of(f, f"CWD {p}")
        check(f"CWD {p} refused", c[0] == "5", c)
    # Folding ".." stays inside: "CWD ../../.." lands on the user root.
    f.cwd("/")
    f.cwd("../../../..")
    check("CWD above root stays at /", f.pwd() == "/", f.pwd())
    check("LIST ../../.. is the user root", "inside.txt" in f.nlst("../../.."))
    f.mkd("../../escape-ftp-test")
    check("MKD ../../x is created inside the tree", "escape-ftp-test" in f.nlst("/"))
    check("nothing created outside", not os.path.exists("/escape-ftp-test")
          and not os.path.exists(os.path.join(DATA, "escape-ftp-test")))
    f.mkd("/tmp")
    put(f, "../../../../tmp/escape-ftp-put", b"x")
    check("STOR ../../tmp/x lands inside", not os.path.exists("/tmp/escape-ftp-put")
          and "escape-ftp-put" in f.nlst("/tmp"))
    check("MLSD traversal confined", "inside.txt" in dict(f.mlsd("../../..")))
    check("SITE CHMOD traversal", code_of(f, "SITE CHMOD 777 ../../../etc/passwd")[0] == "5")
    check("MFMT traversal", code_of(f, "MFMT 20200101000000 ../../../etc/passwd")[0] == "5")
    check("RMD traversal", code_of(f, "RMD ../../../etc")[0] == "5")
    f.quit()
    # Another user cannot reach the first user's files.
    b = login(USER2, PW2)
    check("other user: RETR refused", code_of(b, "SIZE /inside.txt")[0] == "5")
    check("other user: traversal refused", code_of(b, f"SIZE ../{USER}/inside.txt")[0] == "5")
    b.quit()


def raw_session(port=PORT):
    s = socket.create_connection((HOST, port), timeout=20)
    fp = s.makefile("rb")

    def resp():
        line = fp.readline()
        code = line[:3]
        if line[3:4] == b"-":
            while True:
                l2 = fp.readline()
                if not l2 or (l2[:3] == code and l2[3:4] == b" "):
                    break
        return line.decode("utf-8", "replace")

    return s, fp, resp


def t_long_lines():
    s, fp, resp = raw_session()
    check("greeting", resp().startswith("220"))
    s.sendall(b"NOOP " + b"A" * 10000 + b"\r\n")
    r = resp()
    check("10,000-byte line refused with 500", r.startswith("500"), r)
    s.sendall(b"NOOP\r\n")
    r = resp()
    check("connection sane after long line", r.startswith("200"), r)
    s.sendall(b"USER " + b"u" * 10000 + b"\r\nNOOP\r\n")
    r1, r2 = resp(), resp()
    check("long USER: one 500 then NOOP ok", r1.startswith("500") and r2.startswith("200"), (r1, r2))
    # Commands before login.
    for cmd in ("RETR x", "STOR x", "LIST", "CWD /", "MKD x", "DELE x", "PASV", "SIZE x",
                "MLSD", "NLST", "PWD", "RNFR x", "HASH x", "PORT 127,0,0,1,200,1"):
        s.sendall(cmd.encode() + b"\r\n")
        r = resp()
        check(f"{cmd.split()[0]} before login: 530", r.startswith("530"), r)
    s.sendall(b"PASS nouser\r\n")
    r = resp()
    check("PASS without USER: 503", r.startswith("503"), r)
    s.sendall(f"USER {USER}\r\nPASS wrong\r\n".encode())
    r1, r2 = resp(), resp()
    check("wrong password: 530", r1.startswith("331") and r2.startswith("530"), (r1, r2))
    s.sendall(f"USER {USER}\r\nPASS {PW}\r\n".encode())
    r1, r2 = resp(), resp()
    check("login after failure", r2.startswith("230"), (r1, r2))
    s.sendall(b"STOR " + "é".encode() * 6000 + b"\r\nNOOP\r\n")
    r1, r2 = resp(), resp()
    check("long STOR line: 500, then sane", r1.startswith("500") and r2.startswith("200"), (r1, r2))
    s.sendall(b"QUIT\r\n")
    s.close()


def t_port_foreign():
    f = login()
    r = code_of(f, "PORT 10,0,0,1,200,10")
    check("PORT to another address refused", r == "500", r)
    r = code_of(f, "EPRT |1|192.0.2.7|5000|")
    check("EPRT to another address refused", r == "500", r)
    r = code_of(f, "PORT 127,0,0,1,0,21")
    check("PORT to a privileged port refused", r == "500", r)
    # Active mode to the client itself works.
    ls = socket.socket()
    ls.bind((HOST, 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    put(f, "active.bin", b"active data")
    r = f.sendcmd(f"PORT 127,0,0,1,{port >> 8},{port & 255}")
    check("PORT to own address accepted", r.startswith("200"), r)
    f.putcmd("RETR active.bin")
    r = f.getresp()
    c, _ = ls.accept()
    buf = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        buf += d
    c.close()
    ls.close()
    r2 = f.getresp()
    check("active mode RETR", r.startswith("150") and r2.startswith("226") and buf == b"active data",
          (r, r2, buf))
    f.quit()


def t_vanish():
    f = login()
    keep = os.urandom(200000)
    put(f, "keep.bin", keep)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("STOR vanish.bin")
    chunk = os.urandom(1024 * 1024)
    sent = b""
    for _ in range(5):
        conn.sendall(chunk)
        sent += chunk
    # Vanish: RST on both connections.
    linger = struct.pack("ii", 1, 0)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    f.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    conn.close()
    f.sock.close()
    time.sleep(0.5)
    g = login()
    check("daemon serves after client vanished mid-STOR", g.sendcmd("NOOP").startswith("200"))
    names = g.nlst()
    if "vanish.bin" in names:
        got = get(g, "vanish.bin")
        check("partial upload is a prefix of what was sent", sent.startswith(got), len(got))
    else:
        check("partial upload absent (acceptable)", True)
    check("other file intact", get(g, "keep.bin") == keep)
    g.quit()


def t_logins():
    # Disabled user cannot log in next time; token login and revocation.
    ctl = [os.path.join(os.environ["SD_ROOT"], "storagectl"), "-c", os.environ["SD_CONF"]]
    subprocess.run(ctl + ["user", "add", "dora", "--password-stdin"], input="dorapw1\n",
                   text=True, check=True, capture_output=True)
    f = login("dora", "dorapw1")
    f.quit()
    tok = subprocess.run(ctl + ["token", "create", "dora"], text=True, check=True,
                         capture_output=True).stdout.strip().split()[-1]
    f = login("dora", tok)
    check("token login", f.sendcmd("NOOP").startswith("200"))
    f.quit()
    tid = subprocess.run(ctl + ["token", "list", "dora", "--json"], text=True, check=True,
                         capture_output=True).stdout
    import json
    try:
        ids = [t["id"] for t in json.loads(tid)]
    except Exception:  # noqa: BLE001
        ids = []
    for i in ids:
        subprocess.run(ctl + ["token", "revoke", str(i)], check=True, capture_output=True)
    try:
        login("dora", tok).quit()
        ok = False
    except ftplib.error_perm as e:
        ok = str(e).startswith("530")
    check("revoked token refused", ok and ids)
    subprocess.run(ctl + ["user", "disable", "dora"], check=True, capture_output=True)
    try:
        login("dora", "dorapw1").quit()
        ok = False
    except ftplib.error_perm as e:
        ok = str(e).startswith("530")
    check("disabled user refused", ok)
    try:
        login("anonymous", "x@y").quit()
        ok = False
    except ftplib.error_perm as e:
        ok = str(e).startswith("530")
    check("anonymous refused by default", ok)


def free_range(n):
    for _ in range(50):
        base = sdtest.free_port()
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind((HOST, p))
                socks.append(s)
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def t_pasv_exhaustion():
    port = sdtest.free_port()
    lo = free_range(2)
    sections = {"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}", "pasv_min_port": str(lo),
                        "pasv_max_port": str(lo + 1)}}
    with sdtest.Daemon(sections=sections) as d:
        d.add_user("pat", "patpw12")
        a = login("pat", "patpw12", port=port)
        b = login("pat", "patpw12", port=port)
        c = login("pat", "patpw12", port=port)
        ra, rb = a.sendcmd("PASV"), b.sendcmd("PASV")
        rc = code_of(c, "PASV")
        check("PASV in a 2-port range: two succeed", ra.startswith("227") and rb.startswith("227"))
        check("third PASV: 425", rc == "425", rc)
        check("session still usable", c.sendcmd("NOOP").startswith("200"))
        a.quit()
        time.sleep(0.2)
        put(c, "after.txt", b"after")
        check("PASV works again after a port is freed", get(c, "after.txt") == b"after")
        b.quit()
        c.quit()


def t_limits():
    port = sdtest.free_port()
    sections = {"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}", "max_clients": "3",
                        "max_per_ip": "2", "idle_timeout": "2s", "active_enabled": "no",
                        "pasv_address": "192.0.2.10"}}
    with sdtest.Daemon(sections=sections) as d:
        d.add_user("lim", "limpw123")
        a = login("lim", "limpw123", port=port)
        b = login("lim", "limpw123", port=port)
        # pasv_address is only advertised; nothing connects to it here.
        r = b.sendcmd("PASV")
        check("PASV advertises pasv_address", "(192,0,2,10," in r, r)
        r = code_of(b, "PORT 127,0,0,1,200,10")
        check("active_enabled = no: PORT refused 502", r == "502", r)
        s = socket.create_connection((HOST, port), timeout=10)
        r = s.recv(200)
        check("max_per_ip: 421", r.startswith(b"421"), r)
        s.close()
        # Other loopback source addresses, to reach max_clients.
        c = socket.create_connection((HOST, port), timeout=10, source_address=("127.0.0.2", 0))
        r = c.recv(200)
        check("third client from another address admitted", r.startswith(b"220"), r)
        e = socket.create_connection((HOST, port), timeout=10, source_address=("127.0.0.3", 0))
        r = e.recv(200)
        check("max_clients: 421", r.startswith(b"421"), r)
        e.close()
        c.close()
        time.sleep(2.6)
        try:
            a.sendcmd("NOOP")
            ok = False
        except ftplib.all_errors + (EOFError,) as e:
            ok = "421" in str(e) or isinstance(e, (EOFError, OSError))
        check("idle timeout closes the session", ok)
        b.close()


class ReuseFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS that resumes the control connection's TLS session on data
    connections (what FileZilla does; python's own class does not)."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)
        return conn, size


def tls_ctx():
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def t_tls_reuse():
    # The main daemon runs with tls_require_reuse = yes.
    f = ftplib.FTP_TLS(context=tls_ctx())
    f.connect(HOST, PORT, timeout=20)
    f.login(USER, PW)
    f.prot_p()
    try:
        f.nlst()
        r = "ok"
    except ftplib.all_errors as e:
        r = str(e)
    check("TLS data connection without session reuse refused (522)", r.startswith("522"), r)
    f.quit()
    g = ReuseFTP_TLS(context=tls_ctx())
    g.connect(HOST, PORT, timeout=20)
    g.login(USER, PW)
    g.prot_p()
    data = os.urandom(300000)
    put(g, "tls-reuse.bin", data)
    check("TLS data connection resuming the session works", get(g, "tls-reuse.bin") == data)
    g.quit()


def t_require_tls():
    port = sdtest.free_port()
    sections = {"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}",
                        "tls_cert": os.environ["FTP_CERT"], "tls_key": os.environ["FTP_KEY"],
                        "require_tls_login": "yes", "require_tls_data": "yes",
                        "anonymous": "yes", "anonymous_user": "pub",
                        "bandwidth_limit": "4M"}}
    with sdtest.Daemon(sections=sections) as d:
        d.add_user("tina", "tinapw12")
        d.add_user("pub", "pubpw123")
        f = ftplib.FTP()
        f.connect(HOST, port, timeout=20)
        try:
            f.login("tina", "tinapw12")
            r = "230"
        except ftplib.all_errors as e:
            r = str(e)
        check("require_tls_login: plain USER refused 530", r.startswith("530"), r)
        f.close()
        g = ReuseFTP_TLS(context=tls_ctx())
        g.connect(HOST, port, timeout=20)
        g.login("tina", "tinapw12")
        check("require_tls_login: login over TLS works", g.sendcmd("NOOP").startswith("200"))
        r = code_of(g, "PROT C")
        check("require_tls_data: PROT C refused", r == "534", r)
        try:
            g.nlst()
            r = "ok"
        except ftplib.all_errors as e:
            r = str(e)
        check("require_tls_data: clear data refused 522", r.startswith("522"), r)
        g.prot_p()
        data = os.urandom(6 * 1024 * 1024)
        t0 = time.time()
        put(g, "slow.bin", data)
        dt = time.time() - t0
        check(f"bandwidth_limit 4M/s: 6 MiB upload took {dt:.2f}s (>= 1.2s)", dt >= 1.2)
        check("protected round trip", get(g, "slow.bin") == data)
        g.quit()
        # Anonymous: read-only view of anonymous_user's tree.
        p = ReuseFTP_TLS(context=tls_ctx())
        p.connect(HOST, port, timeout=20)
        p.login("pub", "pubpw123")
        p.prot_p()
        put(p, "public.txt", b"public")
        p.quit()
        a = ReuseFTP_TLS(context=tls_ctx())
        a.connect(HOST, port, timeout=20)
        a.login("anonymous", "guest@example.org")
        a.prot_p()
        check("anonymous reads anonymous_user's tree", get(a, "public.txt") == b"public")
        try:
            put(a, "x.txt", b"x")
            r = "226"
        except ftplib.all_errors as e:
            r = str(e)
        check("anonymous cannot write", r.startswith("550"), r)
        check("anonymous cannot delete", code_of(a, "DELE public.txt") == "550")
        a.quit()


def t_blocked():
    port = sdtest.free_port()
    sections = {"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}"}}
    with sdtest.Daemon(sections=sections, storaged={"auth_max_failures": "3",
                                                    "auth_block_time": "30s"}) as d:
        d.add_user("bea", "beapw123")
        for _ in range(4):
            f = ftplib.FTP()
            f.connect(HOST, port, timeout=20)
            try:
                f.login("bea", "wrong")
            except ftplib.all_errors:
                pass
            f.close()
        f = ftplib.FTP()
        f.connect(HOST, port, timeout=20)
        try:
            f.login("bea", "beapw123")
            r = "230"
        except ftplib.all_errors as e:
            r = str(e)
        check("address blocked after repeated failures: 421", r.startswith("421"), r)
        try:
            f.sendcmd("NOOP")
            closed = False
        except ftplib.all_errors + (EOFError,):
            closed = True
        check("blocked session is closed", closed)


def t_port_in_use():
    busy = socket.socket()
    busy.bind((HOST, 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    d = sdtest.Daemon(sections={"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}"}})
    try:
        d.start()
        started = True
    except RuntimeError:
        started = False
    text = d.logtext()
    d.kill()
    shutil.rmtree(d.tmp, ignore_errors=True)
    busy.close()
    check("port in use stops start-up", not started)
    check("start-up error names the port", f"{port}" in text and "ftp" in text, text[-400:])
    bad = sdtest.Daemon(sections={"ftp": {"enabled": "yes", "listen": f"{HOST}:{sdtest.free_port()}",
                                          "fallback_charset": "NO-SUCH-CHARSET"}})
    try:
        bad.start()
        started = True
    except RuntimeError:
        started = False
    text = bad.logtext()
    bad.kill()
    shutil.rmtree(bad.tmp, ignore_errors=True)
    check("unknown fallback_charset stops start-up", not started and "fallback_charset" in text,
          text[-300:])


for fn in (t_facts, t_dedup, t_abort, t_gb18030, t_traversal, t_long_lines, t_port_foreign,
           t_vanish, t_logins, t_pasv_exhaustion, t_limits, t_tls_reuse, t_require_tls, t_blocked, t_port_in_use):
    case(fn)
print(f"PYRESULT {PASSED} {FAILED}")
