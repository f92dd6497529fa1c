"""The resolver table (tests/data/resolver-table.txt) driven through FTP, SFTP and HTTP
against the real daemon: the same file tests/unit/test_path.c drives in-process.

One daemon with the three front ends (FTP without fallback_charset, so that bytes that are
not UTF-8 reach the engine as they are), one user per protocol, one session per protocol
for the whole table. For each row the user's tree starts empty except for the working
directory and the parent of the expected path; then:

  expected path P, P new     the protocol's "make a directory" (FTP MKD, SFTP MKDIR, HTTP
                             POST ?op=mkdir) answers with P (FTP 257 "P", HTTP "path":P),
                             and the tree (listed by the protocol itself) gained P and
                             nothing else; then the argument names P (FTP CWD + PWD, SFTP
                             STAT, HTTP GET listing "path":P)
  expected path P, P exists  (P is "/" or an ancestor of the working directory) making it
                             fails with the protocol's "exists" error and changes nothing;
                             the argument names P (CWD + PWD, GET "path")
  -EINVAL / -ENAMETOOLONG    the protocol's error (FTP 553, SFTP a failure status, HTTP
                             400 with a JSON error) for making, naming and writing it, and
                             nothing changes
  every row over SFTP        REALPATH gives P, or a failure status

Rows a protocol cannot carry as the table writes them are classified, with the reason, by
ftp_cannot_send (an empty argument, NUL, LF) and http_cannot_send (a name that still holds
a %-escape, refused as double encoding); for them the test asserts the protocol's own
refusal (and that nothing changes) instead, and the numbers of such rows
(EXPECTED_CANNOT_SEND) and of rows each protocol drove are asserted at the end, so a row is
never dropped silently. FTP sends a 0xFF byte as Telnet's IAC IAC. SFTP and HTTP have no
working directory: they drive the rows whose cwd is "/"; FTP drives every row, after a CWD
to the row's cwd.
"""
import base64
import ftplib
import http.client
import io
import json
import os
import re
import urllib.parse

import pytest

from conftest import HOST, ROOT, SftpSession, daemon_scope, free_port

TABLE = os.path.join(ROOT, "tests", "data", "resolver-table.txt")
ERRORS = ("-EINVAL", "-ENAMETOOLONG")
PW = "resolver-pw1"


# ---------------------------------------------------------------- the table

def unescape(s):
    """The table's escapes (\\xNN \\t \\n \\\\ \\0) into bytes, as test_path.c decodes them."""
    out = bytearray()
    i = 0
    raw = s.encode("utf-8")
    while i < len(raw):
        c = raw[i:i + 1]
        if c != b"\\":
            out += c
            i += 1
            continue
        e = raw[i + 1:i + 2]
        if e == b"x":
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
            continue
        out += {b"t": b"\t", b"n": b"\n", b"\\": b"\\", b"0": b"\0"}[e]
        i += 2
    return bytes(out)


class Row:
    def __init__(self, lineno, cwd, arg, want):
        self.lineno, self.cwd, self.arg, self.want = lineno, cwd, arg, want

    @property
    def refused(self):
        return self.want in ERRORS

    def __repr__(self):
        return f"line {self.lineno}: cwd {self.cwd!r} arg {self.arg!r} -> {self.want!r}"


def load_table():
    rows = []
    with open(TABLE, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 3:
                raise AssertionError(f"{TABLE}:{n}: three TAB-separated columns wanted")
            cwd, arg, want = cols
            arg = b"" if arg == "(empty)" else unescape(arg)
            want = want if want in ERRORS else unescape(want)
            rows.append(Row(n, unescape(cwd), arg, want))
    return rows


ROWS = load_table()


def parent(p):
    return p.rsplit(b"/", 1)[0] or b"/"


def ancestors(p):
    """The directories from the root down to p itself ("/" excluded)."""
    out, cur = [], b""
    for comp in p.strip(b"/").split(b"/"):
        if comp:
            cur += b"/" + comp
            out.append(cur)
    return out


def needed_dirs(row):
    """What exists before the row runs: the working directory and the parent of the
    expected path (with their ancestors)."""
    need = set(ancestors(row.cwd))
    if not row.refused:
        need |= set(ancestors(parent(row.want)))
    return need


def tree_dirs(paths):
    return {p: "dir" for p in paths}


# What a protocol cannot send as the table writes it, and what it does instead.
HTTP_DOUBLE = re.compile(rb"%(2e|2f|5c|25|00)", re.I)


def ftp_cannot_send(row):
    if row.arg == b"":
        return "empty"  # FTP commands with a path need an argument: 501
    if b"\0" in row.arg:
        return "nul"    # the line reader refuses a line holding NUL: 500
    if b"\n" in row.arg:
        return "lf"     # LF ends the command line: the rest is another command
    return None


def http_cannot_send(row):
    if HTTP_DOUBLE.search(row.arg):
        # args.c refuses a decoded path that still holds an escape of '.', '/', '\\', '%'
        # or NUL (double encoding a proxy might decode again): 400 bad_path
        return "double-encoded"
    return None


# Every row the table has, by what each protocol does with it; asserted at the end so
# that a new row is always driven (or classified here on purpose).
EXPECTED_CANNOT_SEND = {
    "ftp": {"empty": 2, "nul": 3, "lf": 1},
    "http": {"double-encoded": 1},
    "sftp": {},
}


# ---------------------------------------------------------------- the daemon

@pytest.fixture(scope="module")
def rd():
    ports = {"ftp": free_port(), "sftp": free_port(), "http": free_port()}
    sections = {
        "ftp": {"enabled": "yes", "listen": f"{HOST}:{ports['ftp']}"},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{ports['sftp']}"},
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{ports['http']}"},
    }
    with daemon_scope(sections, name="resolver") as d:
        d.ports = ports
        for u in ("rftp", "rsftp", "rhttp", "dftp", "dsftp", "dhttp"):
            d.add_user(u, PW)
        yield d


# ---------------------------------------------------------------- clients on bytes

class Ftp:
    """ftplib on latin-1: every byte of a path goes out as it is (ftplib refuses only CR
    and LF), replies come back as bytes."""

    def __init__(self, d, user):
        self.f = ftplib.FTP(encoding="latin-1")
        self.f.connect(HOST, d.ports["ftp"], timeout=20)
        self.f.login(user, PW)

    def cmd(self, verb, arg=None):
        """(code, reply bytes) of one command; errors included. A 0xFF byte goes out as
        Telnet's IAC IAC (RFC 959), which the server reads back as one 0xFF."""
        line = verb if arg is None else verb + " " + arg.replace(b"\xff", b"\xff\xff").decode("latin-1")
        try:
            r = self.f.sendcmd(line)
        except ftplib.all_errors as e:
            r = str(e)
        return r[:3], r.encode("latin-1")

    def pwd(self):
        return self.f.pwd().encode("latin-1")

    def tree(self):
        out, todo = {}, [b"/"]
        while todo:
            d = todo.pop()
            for name, facts in self.f.mlsd(d.decode("latin-1")):
                if facts.get("type") in ("cdir", "pdir"):
                    continue
                p = d.rstrip(b"/") + b"/" + name.encode("latin-1")
                out[p] = facts["type"]
                if facts["type"] == "dir":
                    todo.append(p)
        return out

    def mkdirs(self, paths):
        for p in sorted(paths, key=len):
            code, r = self.cmd("MKD", p)
            if code != "257":
                raise AssertionError(f"FTP MKD {p!r} (setup): {r!r}")

    def clear(self):
        self.cmd("CWD", b"/")
        for p, kind in sorted(self.tree().items(), key=lambda kv: -len(kv[0])):
            code, r = self.cmd("RMD" if kind == "dir" else "DELE", p)
            if code != "250":
                raise AssertionError(f"FTP clear {p!r}: {r!r}")

    def close(self):
        try:
            self.f.quit()
        except ftplib.all_errors:
            self.f.close()


class Sftp:
    def __init__(self, d, user):
        self.sess = SftpSession(d.ports["sftp"], user, password=PW)
        self.s = self.sess.sftp

    def tree(self):
        out, todo = {}, ["/"]
        while todo:
            d = todo.pop()
            for a in self.s.listdir_attr(d):
                p = d.rstrip("/") + "/" + a.filename
                kind = "dir" if (a.st_mode & 0o170000) == 0o040000 else "file"
                out[p.encode()] = kind
                if kind == "dir":
                    todo.append(p)
        return out

    def mkdirs(self, paths):
        for p in sorted(paths, key=len):
            self.s.mkdir(p)

    def clear(self):
        for p, kind in sorted(self.tree().items(), key=lambda kv: -len(kv[0])):
            (self.s.rmdir if kind == "dir" else self.s.remove)(p)

    def close(self):
        self.sess.close()


def fs_url(arg, query=""):
    """/api/v1/fs/<arg>: every byte but '/' and unreserved ones percent-encoded once."""
    return "/api/v1/fs/" + urllib.parse.quote(arg, safe="/") + (("?" + query) if query else "")


class Http:
    """One keep-alive connection (http.client sends the path exactly as given)."""

    def __init__(self, d, user):
        self.c = http.client.HTTPConnection(HOST, d.ports["http"], timeout=20)
        self.auth = "Basic " + base64.b64encode(f"{user}:{PW}".encode()).decode()

    def req(self, method, url, body=None):
        """(status, JSON body or None)."""
        self.c.request(method, url, body=body, headers={"Authorization": self.auth})
        r = self.c.getresponse()
        data = r.read()
        try:
            j = json.loads(data) if data else None
        except ValueError:
            j = None
        return r.status, j

    def tree(self):
        out, todo = {}, [b"/"]
        while todo:
            d = todo.pop()
            st, j = self.req("GET", fs_url(d, "limit=1000"))
            if st != 200:
                raise AssertionError(f"HTTP listing of {d!r}: {st} {j}")
            for e in j["entries"]:
                p = d.rstrip(b"/") + b"/" + e["name"].encode()
                out[p] = e["kind"]
                if e["kind"] == "dir":
                    todo.append(p)
        return out

    def mkdirs(self, paths):
        for p in sorted(paths, key=len):
            st, j = self.req("POST", fs_url(p, "op=mkdir"))
            if st != 201:
                raise AssertionError(f"HTTP mkdir {p!r} (setup): {st} {j}")

    def clear(self):
        for p, kind in sorted(self.tree().items(), key=lambda kv: -len(kv[0])):
            st, j = self.req("DELETE", fs_url(p, "recursive=1" if kind == "dir" else ""))
            if st != 204:
                raise AssertionError(f"HTTP clear {p!r}: {st} {j}")

    def close(self):
        self.c.close()


def prepare(cl, row):
    """Empty tree plus the directories the row needs; returns the tree."""
    cl.clear()
    need = needed_dirs(row)
    cl.mkdirs(need)
    t = cl.tree()
    assert t == tree_dirs(need), f"{row}: setup made exactly {sorted(need)}: {t}"
    return t


def added(t0, p):
    t = dict(t0)
    t[p] = "dir"
    return t


# ---------------------------------------------------------------- FTP

def test_table_through_ftp(rd):
    cl = Ftp(rd, "rftp")
    driven, cannot = 0, {}
    try:
        for row in ROWS:
            t0 = prepare(cl, row)
            code, r = cl.cmd("CWD", row.cwd)
            assert code == "250", f"{row}: CWD to the row's cwd: {r!r}"
            why = ftp_cannot_send(row)
            if why:
                cannot[why] = cannot.get(why, 0) + 1
                if why == "empty":
                    # MKD and CWD need an argument: 501 (an FTP client would not send them)
                    for verb in ("MKD", "CWD"):
                        code, r = cl.cmd(verb + " ")
                        assert code == "501", f"{row}: {verb} without argument: 501: {r!r}"
                elif why == "nul":
                    # a command line holding NUL is refused before it is parsed
                    for verb in ("MKD", "CWD", "DELE"):
                        code, r = cl.cmd(verb, row.arg)
                        assert code == "500" and b"NUL" in r, f"{row}: {verb} with NUL: 500: {r!r}"
                    assert row.refused, f"{row}: a NUL row is refused by the table too"
                else:  # lf
                    # an FTP client cannot put LF in an argument: the server reads two
                    # lines, "CWD <before LF>" and "<after LF>" (no such command)
                    before, after = row.arg.split(b"\n", 1)
                    cl.f.sock.sendall(b"CWD " + before + b"\n" + after + b"\r\n")
                    r1, r2 = cl.f.getline(), cl.f.getline()
                    assert r1[:3] in ("550", "553") and r2[:3] in ("500", "502"), \
                        f"{row}: LF splits the command: {r1!r} {r2!r}"
                assert cl.pwd() == row.cwd, f"{row}: the working directory did not move"
                assert cl.tree() == t0, f"{row}: nothing changed"
                continue
            driven += 1
            if row.refused:
                for verb in ("MKD", "CWD", "DELE", "RNFR"):
                    code, r = cl.cmd(verb, row.arg)
                    assert code == "553", f"{row}: {verb} refused with 553: {r!r}"
                assert cl.pwd() == row.cwd, f"{row}: the working directory did not move"
                assert cl.tree() == t0, f"{row}: refused: nothing changed"
                continue
            want = row.want
            if want in t0 or want == b"/":
                code, r = cl.cmd("MKD", row.arg)
                assert code == "550", f"{row}: MKD of an existing {want!r}: 550: {r!r}"
                assert cl.tree() == t0, f"{row}: failed MKD changed nothing"
            else:
                code, r = cl.cmd("MKD", row.arg)
                assert code == "257", f"{row}: MKD: 257: {r!r}"
                got = ftplib.parse257(r.decode("latin-1")).encode("latin-1")
                assert got == want, f"{row}: 257 names {want!r}: {r!r}"
                t = cl.tree()
                assert t == added(t0, want), f"{row}: MKD made {want!r} and nothing else: {t}"
            code, r = cl.cmd("CWD", row.arg)
            assert code == "250", f"{row}: CWD {row.arg!r}: {r!r}"
            assert cl.pwd() == want, f"{row}: PWD after CWD: {cl.pwd()!r}"
        cl.clear()
    finally:
        cl.close()
    assert cannot == EXPECTED_CANNOT_SEND["ftp"], f"FTP rows not sendable as written: {cannot}"
    assert driven == len(ROWS) - sum(cannot.values()) and driven >= 60, f"FTP drove {driven} rows"


# ---------------------------------------------------------------- SFTP

def sftp_fails(fn, *args):
    """The message of the failure status a request got, or None if it succeeded."""
    try:
        fn(*args)
    except IOError as e:
        return str(e) or "failure"
    return None


def test_table_through_sftp(rd):
    cl = Sftp(rd, "rsftp")
    s = cl.s
    rows = [r for r in ROWS if r.cwd == b"/"]
    driven, cannot = 0, {}
    try:
        for row in rows:
            t0 = prepare(cl, row)
            driven += 1
            if row.refused:
                msg = sftp_fails(s.normalize, row.arg)
                assert msg, f"{row}: REALPATH fails"
                if b"\0" in row.arg:
                    assert "invalid path: NUL byte" in msg, f"{row}: NUL named: {msg}"
                assert sftp_fails(s.mkdir, row.arg), f"{row}: MKDIR fails"
                assert sftp_fails(s.open, row.arg, "w"), f"{row}: OPEN for writing fails"
                assert sftp_fails(s.stat, row.arg), f"{row}: STAT fails"
                assert cl.tree() == t0, f"{row}: refused: nothing changed"
                continue
            want = row.want
            got = s.normalize(row.arg).encode()
            assert got == want, f"{row}: REALPATH: {got!r}"
            if want in t0 or want == b"/":
                assert sftp_fails(s.mkdir, row.arg), f"{row}: MKDIR of an existing {want!r} fails"
                assert cl.tree() == t0, f"{row}: failed MKDIR changed nothing"
            else:
                s.mkdir(row.arg)
                t = cl.tree()
                assert t == added(t0, want), f"{row}: MKDIR made {want!r} and nothing else: {t}"
            st = s.stat(row.arg)
            assert (st.st_mode & 0o170000) == 0o040000, f"{row}: STAT names the directory"
        cl.clear()
    finally:
        cl.close()
    assert cannot == EXPECTED_CANNOT_SEND["sftp"], f"SFTP rows not sendable: {cannot}"
    assert driven == len(rows), f"SFTP drove {driven} of {len(rows)} rows"
    assert len(ROWS) - len(rows) == sum(1 for r in ROWS if r.cwd != b"/") > 0, \
        "rows with another cwd: FTP drives them (SFTP has no working directory)"


# ---------------------------------------------------------------- HTTP

def test_table_through_http(rd):
    cl = Http(rd, "rhttp")
    rows = [r for r in ROWS if r.cwd == b"/"]
    driven, cannot = 0, {}
    try:
        for row in rows:
            t0 = prepare(cl, row)
            why = http_cannot_send(row)
            if why:
                cannot[why] = cannot.get(why, 0) + 1
                for method, q in (("POST", "op=mkdir"), ("PUT", ""), ("GET", "")):
                    st, j = cl.req(method, fs_url(row.arg, q), body=b"x" if method == "PUT" else None)
                    assert st == 400 and j and j["error"] == "bad_path", \
                        f"{row}: {method} of a double-encoded name: 400 bad_path: {st} {j}"
                assert cl.tree() == t0, f"{row}: nothing changed"
                continue
            driven += 1
            if row.refused:
                for method, q in (("POST", "op=mkdir"), ("PUT", ""), ("GET", ""), ("DELETE", "")):
                    st, j = cl.req(method, fs_url(row.arg, q), body=b"x" if method == "PUT" else None)
                    assert 400 <= st <= 499 and j and j.get("error"), \
                        f"{row}: {method} refused with a 4xx JSON error: {st} {j}"
                assert cl.tree() == t0, f"{row}: refused: nothing changed"
                continue
            want = row.want
            if want in t0 or want == b"/":
                st, j = cl.req("POST", fs_url(row.arg, "op=mkdir"))
                assert st == 409, f"{row}: mkdir of an existing {want!r}: 409: {st} {j}"
                assert cl.tree() == t0, f"{row}: failed mkdir changed nothing"
            else:
                st, j = cl.req("POST", fs_url(row.arg, "op=mkdir"))
                assert st == 201 and j["path"].encode() == want, f"{row}: mkdir: 201 {want!r}: {st} {j}"
                t = cl.tree()
                assert t == added(t0, want), f"{row}: mkdir made {want!r} and nothing else: {t}"
            st, j = cl.req("GET", fs_url(row.arg))
            assert st == 200 and j["path"].encode() == want, f"{row}: GET lists {want!r}: {st} {j}"
        cl.clear()
    finally:
        cl.close()
    assert cannot == EXPECTED_CANNOT_SEND["http"], f"HTTP rows not sendable as written: {cannot}"
    assert driven + sum(cannot.values()) == len(rows), f"HTTP drove {driven} of {len(rows)} rows"


# ---------------------------------------------------------------- remove a/bb/../c

FILES = [b"/a/c", b"/a/bb/c", b"/a/bb/cc", b"/c", b"/a/bb/x"]


def remove_tree_before():
    t = {b"/a": "dir", b"/a/bb": "dir"}
    t.update({p: "file" for p in FILES})
    return t


def test_remove_dotdot_ftp(rd):
    cl = Ftp(rd, "dftp")
    try:
        for p in (b"/a", b"/a/bb"):
            cl.cmd("MKD", p)
        for p in FILES:
            cl.f.storbinary("STOR " + p.decode(), io.BytesIO(p))
        t0 = cl.tree()
        assert t0 == remove_tree_before(), f"setup: {t0}"
        code, r = cl.cmd("DELE", b"a/bb/../c")
        assert code == "250", f"DELE a/bb/../c: {r!r}"
        t = cl.tree()
        want = dict(t0)
        del want[b"/a/c"]
        assert t == want, f"DELE a/bb/../c removed /a/c and nothing else: {t}"
    finally:
        cl.close()


def test_remove_dotdot_sftp(rd):
    cl = Sftp(rd, "dsftp")
    try:
        cl.mkdirs([b"/a", b"/a/bb"])
        for p in FILES:
            with cl.s.open(p, "w") as f:
                f.write(p)
        t0 = cl.tree()
        assert t0 == remove_tree_before(), f"setup: {t0}"
        cl.s.remove(b"a/bb/../c")
        t = cl.tree()
        want = dict(t0)
        del want[b"/a/c"]
        assert t == want, f"REMOVE a/bb/../c removed /a/c and nothing else: {t}"
    finally:
        cl.close()


def test_remove_dotdot_http(rd):
    cl = Http(rd, "dhttp")
    try:
        for p in FILES:
            st, j = cl.req("PUT", fs_url(p, "parents=1"), body=p)
            assert st == 201, f"setup PUT {p!r}: {st} {j}"
        t0 = cl.tree()
        assert t0 == remove_tree_before(), f"setup: {t0}"
        st, j = cl.req("DELETE", fs_url(b"a/bb/../c"))
        assert st == 204, f"DELETE a/bb/../c: 204: {st} {j}"
        t = cl.tree()
        want = dict(t0)
        del want[b"/a/c"]
        assert t == want, f"DELETE a/bb/../c removed /a/c and nothing else: {t}"
    finally:
        cl.close()
