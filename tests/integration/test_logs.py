"""Logs operators feed to tools (docs/logs.md): the HTTP access log (one line per request,
every field parsed back), transfer lines for FTP, SFTP and HTTP, the xferlog file (the
wu-ftpd format, parsed field by field), JSON lines (every line of every file loads), and
the fail2ban filter shipped in packaging/ run by fail2ban-regex on the daemon's own log
(kv and JSON) against failed logins over all three protocols, including a user name
crafted to forge an address.
"""
import ftplib
import json
import os
import re
import time

import paramiko

from conftest import HOST, curl, free_port, run, out

ALICE = ("alice", "pw-alice")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILTER = os.path.join(REPO, "packaging", "fail2ban", "filter.d", "storaged.conf")

KV = re.compile(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|\S*)')
LINE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) level=(\w+) src=(\S+) (.*)$')
XFER = re.compile(r'^(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) (\d+) (\S+) (\d+) (\S+) ([ab]) '
                  r'(_) ([iod]) ([arg]) (\S+) (\S+) ([01]) (\S+) ([ci])$')


def kv_parse(line):
    """A kv log line as {ts, level, src, key: value} (quoted values unescaped)."""
    m = LINE.match(line)
    assert m, f"a kv line: {line!r}"
    d = {"ts": m.group(1), "level": m.group(2), "src": m.group(3)}
    for k, v in KV.findall(m.group(4)):
        if v.startswith('"'):
            v = re.sub(r'\\(["\\])', r"\1", v[1:-1])
        d[k] = v
    return d


def sections(http, ftp, sftp, pasv):
    return {
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{http}"},
        "ftp": {"enabled": "yes", "module": "ftp", "listen": f"{HOST}:{ftp}",
                "pasv_min_port": str(pasv), "pasv_max_port": str(pasv + 9)},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sftp}"},
    }


def start(make_daemon, name, **keys):
    from conftest import free_port_range
    hp, fp, sp = free_port(), free_port(), free_port()
    pasv = free_port_range(10)
    d = make_daemon(sections(hp, fp, sp, pasv), storaged=keys, name=name, start=False)
    d.keys.update({k: v.replace("@", d.tmp) for k, v in keys.items()})
    d.start()
    d.hport, d.fport, d.sport = hp, fp, sp
    d.base = f"http://{HOST}:{hp}"
    d.add_user(*ALICE)
    return d


def traffic(d):
    """The same requests for every variant: HTTP (ok, 404, a failed login, PUT, GET with a
    user agent), FTP (STOR, RETR, a failed login), SFTP (put, get, a failed login)."""
    u = ["-u", f"{ALICE[0]}:{ALICE[1]}"]
    assert curl(*u, "-A", "tester/1.0 (x; \"q\")", f"{d.base}/api/v1/fs/").code == 200
    assert curl(*u, f"{d.base}/api/v1/fs/nope").code == 404
    assert curl("-u", "alice:wrong", f"{d.base}/api/v1/fs/").code == 401
    assert curl(*u, "-T", "-", f"{d.base}/api/v1/fs/h%20one.bin", input=b"h" * 1000).code == 201
    assert curl(*u, "-A", "getter", f"{d.base}/api/v1/fs/h%20one.bin").code == 200
    f = ftplib.FTP()
    f.connect(HOST, d.fport, timeout=30)
    f.login(*ALICE)
    import io
    f.storbinary("STOR f.bin", io.BytesIO(b"f" * 2000))
    f.retrbinary("RETR f.bin", lambda b: None)
    f.quit()
    f = ftplib.FTP()
    f.connect(HOST, d.fport, timeout=30)
    try:
        f.login("alice", "wrong")
    except ftplib.error_perm:
        pass
    f.close()
    t = paramiko.Transport((HOST, d.sport))
    t.connect(username=ALICE[0], password=ALICE[1])
    s = paramiko.SFTPClient.from_transport(t)
    with s.open("/s.bin", "wb") as fh:
        fh.write(b"s" * 3000)
    with s.open("/s.bin", "rb") as fh:
        assert fh.read() == b"s" * 3000
    s.close()
    t.close()
    t = paramiko.Transport((HOST, d.sport))
    try:
        t.connect(username="mallory\" addr=6.6.6.6 proto=x reason=y x=\"", password="bad")
    except paramiko.SSHException:
        pass
    t.close()


def test_access_transfer_and_xferlog_kv(make_daemon):
    d = start(make_daemon, "logs-kv", access_log="@/access.log", xferlog="@/xferlog")
    traffic(d)
    time.sleep(0.5)
    acc = [kv_parse(l) for l in open(os.path.join(d.tmp, "access.log")).read().splitlines()]
    reqs = [a for a in acc if a["event"] == "access"]
    assert len(reqs) == len(acc) == 5, f"one line per HTTP request: {acc}"
    for a in reqs:
        for k in ("ts", "addr", "user", "method", "path", "status", "bytes", "ms", "agent"):
            assert k in a, f"access line has {k}: {a}"
        assert a["addr"] == "127.0.0.1" and float(a["ms"]) >= 0, f"fields: {a}"
    first = reqs[0]
    assert (first["user"], first["method"], first["path"], first["status"]) == \
        ("alice", "GET", "/api/v1/fs/", "200"), f"first request: {first}"
    assert first["agent"] == 'tester/1.0 (x; "q")', f"user agent unescaped back: {first}"
    assert [a["status"] for a in reqs] == ["200", "404", "401", "201", "200"], reqs
    assert reqs[2]["user"] == "-", f"no user for a failed login: {reqs[2]}"
    assert reqs[3]["bytes_in"] == "1000" and reqs[4]["bytes"] == "1000", f"bytes: {reqs}"
    assert d.log_count(r"event=access") == 0, "access lines go to access_log only"
    # transfer lines in the main log, for every protocol
    main = [kv_parse(l) for l in d.logtext(log_only=True).splitlines() if "event=transfer" in l]
    got = {(t["proto"], t["cmd"], t["path"], t["bytes"], t["result"]) for t in main}
    for want in (("http", "PUT", "/h one.bin", "1000", "ok"), ("http", "GET", "/h one.bin", "1000", "ok"),
                 ("ftp", "STOR", "/f.bin", "2000", "ok"), ("ftp", "RETR", "/f.bin", "2000", "ok"),
                 ("sftp", "write", "/s.bin", "3000", "ok"), ("sftp", "read", "/s.bin", "3000", "ok")):
        assert want in got, f"transfer line {want}: {got}"
    # the xferlog: one line per transfer, every field in place
    xl = open(os.path.join(d.tmp, "xferlog")).read().splitlines()
    rows = [XFER.match(l) for l in xl]
    assert all(rows) and len(rows) == 6, f"xferlog lines parse: {xl}"
    fields = {(m.group(11), m.group(8), m.group(5), m.group(4), m.group(10), m.group(14)) for m in rows}
    for want in (("http", "i", "/h_one.bin", "1000", "alice", "c"), ("ftp", "o", "/f.bin", "2000", "alice", "c"),
                 ("sftp", "i", "/s.bin", "3000", "alice", "c")):
        assert want in fields, f"xferlog row {want}: {fields}"
    # SIGHUP reopens the access log (rotation)
    os.rename(os.path.join(d.tmp, "access.log"), os.path.join(d.tmp, "access.log.1"))
    d.signal(1)
    d.wait_log("event=reopen")
    assert curl("-u", "alice:pw-alice", f"{d.base}/api/v1/fs/").code == 200
    time.sleep(0.3)
    assert len(open(os.path.join(d.tmp, "access.log")).read().splitlines()) == 1, "reopened"


def test_json_lines_and_fail2ban(make_daemon):
    for fmt in ("kv", "json"):
        d = start(make_daemon, f"logs-{fmt}", log_format=fmt)
        traffic(d)
        time.sleep(0.5)
        text = d.logtext(log_only=True)
        if fmt == "json":
            objs = [json.loads(l) for l in text.splitlines()]
            assert all({"ts", "level", "src"} <= set(o) for o in objs), "fixed fields"
            acc = [o for o in objs if o.get("event") == "access"]
            assert len(acc) == 5 and acc[0]["status"] == 200 and acc[0]["user"] == "alice", acc
            assert acc[0]["agent"] == 'tester/1.0 (x; "q")', acc[0]
            fails = [o for o in objs if o.get("event") == "login_failed" and o["src"] == "auth"]
            assert {o["proto"] for o in fails} == {"http", "ftp", "sftp"}, fails
            assert any(o["user"].startswith('mallory" addr=6.6.6.6') for o in fails), fails
            xf = [o for o in objs if o.get("event") == "transfer"]
            assert any(o["proto"] == "sftp" and o["bytes"] == 3000 for o in xf), xf
        r = run(["fail2ban-regex", "-v", d.log, FILTER])
        assert r.returncode == 0, f"fail2ban-regex: {out(r)}"
        m = re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", r.stdout)
        assert m and int(m.group(1)) == 3, f"{fmt}: the 3 failed logins match: {r.stdout[-2500:]}"
        assert "6.6.6.6" not in r.stdout, f"{fmt}: a crafted user name bans nobody: {r.stdout}"
        assert r.stdout.count("127.0.0.1") >= 3, f"{fmt}: the real address: {r.stdout[-2000:]}"
        d.stop()
