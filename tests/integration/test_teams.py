"""Teams (issue 15): groups, shared folders, per-folder rights and share links, with real clients.

1. alice and bob in group `eng` share /team/: a file alice uploads over FTP (ftplib) is read by
   bob over SFTP (paramiko, OpenSSH sftp) and HTTP (curl); bob's overwrite is a new version both
   see, and the versions name who wrote them;
2. a read-only member (carol) gets the protocol's permission error for write, delete, rename
   and mkdir on FTP (550), SFTP (permission denied) and HTTP (403), and nothing changes;
3. a non-member (dave) cannot list, stat or reach /team nor guess paths in it, `..` through
   his own tree and percent-encoded traversal included; his own /team is his own;
4. a drop-box member (erin) uploads but cannot list or read;
5. inheritance and override in a subfolder (group and user rules); removing a member takes
   effect on the next command of a session already open (FTP and SFTP);
6. the shared folder's own quota, enforced on members uploading in parallel, charged to the
   folder and not to them; dedup across users and the folder stays one blob; a rename between
   the shared folder and a private one moves by reference;
7. share links: a file with Range and ETag, a folder as an HTML listing and a zip that unzips to
   the same tree, password, expiry, download limit, upload-only (file request), revocation; an
   unusable link is 404 whatever the reason; wrong tokens are rate-limited with the login limiter;
   tokens are long and random;
8. storagectl group/share/link and the admin REST API agree; fsck is clean after all of it.
"""
import concurrent.futures
import ftplib
import io
import json
import os
import re
import time
import zipfile

import paramiko
import pytest

from conftest import (HOST, SftpSession, curl, daemon_scope, diff_r, free_port, ftp_get,
                      ftp_login, ftp_put, lftp, out, run, sftp_batch, ssh_keygen)

PW = "teams pw 1"


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    return tmp_path_factory.mktemp("teams-keys")


@pytest.fixture(scope="module")
def td(keydir):
    """FTP, SFTP and HTTP on one daemon; alice, bob (eng), carol (read-only), dave (outsider),
    erin (drop box), frank (admin); shared folder `team`."""
    fport, sport, hport = free_port(), free_port(), free_port()
    sections = {
        "ftp": {"enabled": "yes", "listen": f"{HOST}:{fport}", "max_per_ip": "50"},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sport}"},
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{hport}"},
    }
    with daemon_scope(sections, name="teams") as d:
        d.fport, d.sport, d.hport = fport, sport, hport
        d.base = f"http://{HOST}:{hport}"
        d.keys = {}
        for u in ("alice", "bob", "carol", "dave", "erin"):
            d.add_user(u, PW)
            key = ssh_keygen(str(keydir / u))
            d.add_key(u, key + ".pub")
            d.keys[u] = key
        d.add_user("frank", PW, "--admin")
        d.ctl("group", "add", "eng")
        d.ctl("group", "member", "add", "eng", "alice")
        d.ctl("group", "member", "add", "eng", "bob")
        d.ctl("share", "folder", "create", "team")
        d.ctl("share", "folder", "grant", "team", "/", "--group", "eng", "full")
        d.ctl("share", "folder", "grant", "team", "/", "--user", "carol", "ro")
        d.ctl("share", "folder", "grant", "team", "/", "--user", "erin", "dropbox")
        yield d


# ---------------------------------------------------------------- clients

def http(d, user, method, path, *args, input=None, pw=PW):
    return curl("-X", method, "-u", f"{user}:{pw}", *args, d.base + path, input=input)


def http_json(d, user, method, path, *args, code=200):
    r = http(d, user, method, path, *args)
    assert r.code == code, f"{method} {path}: want {code}, got {r}"
    return r.json()


def ftp_put_as(d, user, path, data):
    f = ftp_login(d.fport, user, PW)
    try:
        ftp_put(f, path, data)
    finally:
        f.quit()


def ftp_get_as(d, user, path):
    f = ftp_login(d.fport, user, PW)
    try:
        return ftp_get(f, path)
    finally:
        f.quit()


def sftp_get_as(d, user, path):
    with SftpSession(d.sport, user, PW) as s:
        buf = io.BytesIO()
        s.getfo(path, buf)
        return buf.getvalue()


def sftp_put_as(d, user, path, data, confirm=True):
    with SftpSession(d.sport, user, PW) as s:
        s.putfo(io.BytesIO(data), path, confirm=confirm)


def http_put(d, user, path, data, *args):
    return http(d, user, "PUT", "/api/v1/fs" + path, "--data-binary", "@-", *args, input=data)


def http_get(d, user, path):
    return http(d, user, "GET", "/api/v1/fs" + path)


def tree_of(d, user, path):
    """{relative path: bytes} of a folder, read over HTTP as user."""
    res = {}

    def walk(p, rel):
        j = http_json(d, user, "GET", "/api/v1/fs" + p)
        for e in j["entries"]:
            if e["kind"] == "dir":
                walk(p + "/" + e["name"], rel + e["name"] + "/")
            else:
                r = http_get(d, user, p + "/" + e["name"])
                assert r.code == 200, r
                res[rel + e["name"]] = r.body
    walk(path, "")
    return res


def ftp_err(fn, *a):
    """The reply code of an ftplib call expected to fail ('' when it succeeded)."""
    try:
        fn(*a)
    except ftplib.error_perm as e:
        return str(e)[:3]
    return ""


def sftp_errno(fn, *a):
    """The errno of a paramiko SFTP call expected to fail (0 when it succeeded)."""
    try:
        fn(*a)
    except (IOError, OSError) as e:
        return e.errno
    return 0


# ---------------------------------------------------------------- 1. members share a folder

def test_members_share_one_folder(td):
    d = td
    data = b"report by alice over FTP\n" * 100
    ftp_put_as(d, "alice", "/team/report.txt", data)
    # bob sees it over SFTP (paramiko), OpenSSH sftp and HTTP
    assert sftp_get_as(d, "bob", "/team/report.txt") == data
    dst = d.path("bob-report.txt")
    r = sftp_batch(d.sport, "bob", d.keys["bob"], f"get /team/report.txt {dst}\n")
    assert r.returncode == 0, out(r)
    assert open(dst, "rb").read() == data
    r = http_get(d, "bob", "/team/report.txt")
    assert r.code == 200 and r.body == data, r
    # the shared folder is an ordinary folder at the root of each member's view
    with SftpSession(d.sport, "bob", PW) as s:
        assert "team" in s.listdir("/")
        assert "report.txt" in s.listdir("/team")
    f = ftp_login(d.fport, "alice", PW)
    try:
        assert "team" in f.nlst("/")
        f.cwd("/team")
        assert "report.txt" in f.nlst()
        assert f.size("report.txt") == len(data)
    finally:
        f.quit()
    # bob's overwrite over HTTP is a new version both see, naming who wrote it
    r = http_put(d, "bob", "/team/report.txt", b"bob's edit\n")
    assert r.code in (200, 201), r
    assert ftp_get_as(d, "alice", "/team/report.txt") == b"bob's edit\n"
    for u in ("alice", "bob"):
        v = http_json(d, u, "GET", "/api/v1/versions/team/report.txt")["versions"]
        assert [x["user"] for x in v] == ["bob", "alice"], v
        assert [x["proto"] for x in v] == ["http", "ftp"], v
    # a folder made by bob over SFTP, a file in it by alice over HTTP
    with SftpSession(d.sport, "bob", PW) as s:
        s.mkdir("/team/docs")
    assert http_put(d, "alice", "/team/docs/a.txt", b"A").code in (200, 201)
    assert sftp_get_as(d, "bob", "/team/docs/a.txt") == b"A"
    st = http_json(d, "bob", "GET", "/api/v1/stat/team/report.txt")
    assert st["size"] == len(b"bob's edit\n")
    # every node records who created it and who changed it last
    assert (st["created_by"], st["changed_by"]) == ("alice", "bob"), st
    # the journal names the user of every change in the shared folder
    rows = d.ctl_json("journal", "--json")
    who = {(row["user"], row.get("path")) for row in rows}
    assert ("alice", "/team/report.txt") in who and ("bob", "/team/report.txt") in who, rows[-8:]


def test_trash_and_versions_are_shared(td):
    d = td
    ftp_put_as(d, "alice", "/team/shared-trash.txt", b"v1")
    sftp_put_as(d, "bob", "/team/shared-trash.txt", b"v2")
    # alice deletes over FTP; bob finds it in his trash and carol (ro) sees it too
    f = ftp_login(d.fport, "alice", PW)
    try:
        f.delete("/team/shared-trash.txt")
    finally:
        f.quit()
    items = {}
    for u in ("alice", "bob", "carol"):
        got = [i for i in http_json(d, u, "GET", "/api/v1/trash")["items"]
               if i["path"] == "/team/shared-trash.txt"]
        assert len(got) == 1, (u, got)
        items[u] = got[0]["id"]
    assert len(set(items.values())) == 1, items
    # carol may not restore (no write), bob may; then everyone sees it back with its versions
    r = http(d, "carol", "POST", f"/api/v1/trash/{items['bob']}?op=restore")
    assert r.code == 403, r
    assert http_get(d, "alice", "/team/shared-trash.txt").code == 404
    r = http(d, "bob", "POST", f"/api/v1/trash/{items['bob']}?op=restore")
    assert r.code == 200, r
    assert ftp_get_as(d, "alice", "/team/shared-trash.txt") == b"v2"
    v = http_json(d, "carol", "GET", "/api/v1/versions/team/shared-trash.txt")["versions"]
    assert [x["user"] for x in v] == ["bob", "alice"], v
    # bob restores alice's version; alice reads it over SFTP
    r = http(d, "bob", "POST",
             f"/api/v1/versions/team/shared-trash.txt?op=restore&version={v[1]['id']}")
    assert r.code == 200, r
    assert sftp_get_as(d, "alice", "/team/shared-trash.txt") == b"v1"
    r = http(d, "carol", "POST",
             f"/api/v1/versions/team/shared-trash.txt?op=restore&version={v[0]['id']}")
    assert r.code == 403, r
    assert sftp_get_as(d, "alice", "/team/shared-trash.txt") == b"v1"


# ---------------------------------------------------------------- 2. read-only member

def test_read_only_member_refused_everywhere(td):
    d = td
    ftp_put_as(d, "alice", "/team/ro-target.txt", b"keep me")
    http_json(d, "alice", "POST", "/api/v1/fs/team/ro-dir?op=mkdir", code=201)
    before = tree_of(d, "alice", "/team")
    # carol reads over every protocol
    assert ftp_get_as(d, "carol", "/team/ro-target.txt") == b"keep me"
    assert sftp_get_as(d, "carol", "/team/ro-target.txt") == b"keep me"
    assert http_get(d, "carol", "/team/ro-target.txt").body == b"keep me"

    # FTP: 550 on STOR (new and overwrite), DELE, RNFR/RNTO, MKD, RMD
    f = ftp_login(d.fport, "carol", PW)
    try:
        assert ftp_err(ftp_put, f, "/team/new.txt", b"x") == "550"
        assert ftp_err(ftp_put, f, "/team/ro-target.txt", b"x") == "550"
        assert ftp_err(f.storbinary, "APPE /team/ro-target.txt", io.BytesIO(b"x")) == "550"
        assert ftp_err(f.delete, "/team/ro-target.txt") == "550"
        assert ftp_err(f.rename, "/team/ro-target.txt", "/team/moved.txt") == "550"
        assert ftp_err(f.rename, "/team/ro-target.txt", "/mine.txt") == "550"
        assert ftp_err(f.mkd, "/team/newdir") == "550"
        assert ftp_err(f.rmd, "/team/ro-dir") == "550"
        # and the session is still usable
        assert "ro-target.txt" in f.nlst("/team")
    finally:
        f.quit()

    # SFTP (paramiko): EACCES, "permission denied"
    with SftpSession(d.sport, "carol", PW) as s:
        def put(p):
            s.putfo(io.BytesIO(b"x"), p)
        assert sftp_errno(put, "/team/new.txt") == 13
        assert sftp_errno(put, "/team/ro-target.txt") == 13
        assert sftp_errno(s.remove, "/team/ro-target.txt") == 13
        assert sftp_errno(s.rename, "/team/ro-target.txt", "/team/moved.txt") == 13
        assert sftp_errno(s.posix_rename, "/team/ro-target.txt", "/mine.txt") == 13
        assert sftp_errno(s.mkdir, "/team/newdir") == 13
        assert sftp_errno(s.rmdir, "/team/ro-dir") == 13
        assert sftp_errno(s.chmod, "/team/ro-target.txt", 0o600) == 13
        assert sftp_errno(s.open, "/team/ro-target.txt", "a") == 13
    # OpenSSH sftp says so in words
    src = d.path("carol-up.txt")
    open(src, "wb").write(b"y")
    r = sftp_batch(d.sport, "carol", d.keys["carol"],
                   f"-put {src} /team/new.txt\n-rm /team/ro-target.txt\n")
    assert "ermission denied" in out(r), out(r)

    # HTTP: 403 on PUT, DELETE, move, mkdir, copy into it, chmod
    assert http_put(d, "carol", "/team/new.txt", b"x").code == 403
    assert http_put(d, "carol", "/team/ro-target.txt", b"x").code == 403
    assert http(d, "carol", "DELETE", "/api/v1/fs/team/ro-target.txt").code == 403
    assert http(d, "carol", "DELETE", "/api/v1/fs/team/ro-dir?recursive=1").code == 403
    for q in ("op=move&to=/team/moved.txt", "op=move&to=/mine.txt", "op=chmod&mode=0600"):
        r = http(d, "carol", "POST", "/api/v1/fs/team/ro-target.txt?" + q)
        assert r.code == 403, f"{q}: {r}"
        assert r.json()["error"] == "forbidden", r
    assert http(d, "carol", "POST", "/api/v1/fs/team/newdir?op=mkdir").code == 403
    assert http_put(d, "carol", "/own.txt", b"mine").code == 201
    r = http(d, "carol", "POST", "/api/v1/fs/own.txt?op=copy&to=/team/own.txt")
    assert r.code == 403, r
    # a copy out of the folder is reading: allowed, and her own
    r = http(d, "carol", "POST", "/api/v1/fs/team/ro-target.txt?op=copy&to=/copied.txt")
    assert r.code == 201, r

    # nothing changed in the shared folder
    assert tree_of(d, "alice", "/team") == before
    v = http_json(d, "alice", "GET", "/api/v1/versions/team/ro-target.txt")["versions"]
    assert len(v) == 1, v


# ---------------------------------------------------------------- 3. non-member

def test_non_member_cannot_see_or_reach(td):
    d = td
    secret = b"eng only\n"
    ftp_put_as(d, "alice", "/team/secret.txt", secret)
    # dave's own tree has a folder named like the share, and a plain one
    assert http_put(d, "dave", "/team/mine.txt?parents=1", b"dave's").code == 201
    assert http_put(d, "dave", "/sub/x.txt?parents=1", b"x").code == 201
    # his /team is his own folder, not the shared one
    j = http_json(d, "dave", "GET", "/api/v1/fs/team")
    assert [e["name"] for e in j["entries"]] == ["mine.txt"], j
    # the same over FTP and SFTP
    f = ftp_login(d.fport, "dave", PW)
    try:
        assert sorted(f.nlst("/team")) in (["mine.txt"], ["/team/mine.txt"])
        for p in ("/team/secret.txt", "/sub/../team/secret.txt", "/../team/secret.txt",
                  "../../team/secret.txt", "/sub/../../team/secret.txt"):
            assert ftp_err(ftp_get, f, p) == "550", p
            assert ftp_err(f.size, p) == "550", p
        f.cwd("/sub")
        assert ftp_err(ftp_get, f, "../team/secret.txt") == "550"
        assert ftp_err(ftp_get, f, "../../../team/secret.txt") == "550"
    finally:
        f.quit()
    with SftpSession(d.sport, "dave", PW) as s:
        assert s.listdir("/team") == ["mine.txt"]
        for p in ("/team/secret.txt", "/sub/../team/secret.txt", "/../team/secret.txt",
                  "sub/../../team/secret.txt"):
            assert sftp_errno(s.stat, p) == 2, p
            assert sftp_errno(s.open, p, "r") == 2, p
        # his writes go to his own tree, never into the shared folder
        s.putfo(io.BytesIO(b"d"), "/team/secret.txt")
    assert ftp_get_as(d, "alice", "/team/secret.txt") == secret
    assert http_get(d, "dave", "/team/secret.txt").body == b"d"
    for p in ("/api/v1/fs/sub/..%2Fteam%2Fsecret.txt", "/api/v1/fs/%2e%2e/team/secret.txt",
              "/api/v1/fs/sub/%2e%2e/%2e%2e/team/mine.txt"):
        r = http(d, "dave", "GET", p, "--path-as-is")
        assert r.code in (400, 404) or r.body != secret, f"{p}: {r}"
        assert r.body != secret
    # the shared folder's account is not a user that can log in or be named
    r = http(d, "~share:team", "GET", "/api/v1/fs/")
    assert r.code == 401, r
    # a user who is in no rule does not see it listed at all
    j = http_json(d, "frank", "GET", "/api/v1/fs/")
    assert "team" not in [e["name"] for e in j["entries"]], j
    assert http_get(d, "frank", "/team/secret.txt").code == 404
    assert http(d, "frank", "GET", "/api/v1/stat/team").code == 404


# ---------------------------------------------------------------- 4. drop box

def test_drop_box_member_uploads_but_cannot_list_or_read(td):
    d = td
    ftp_put_as(d, "alice", "/team/inbox-existing.txt", b"existing")
    # erin uploads over every protocol
    ftp_put_as(d, "erin", "/team/erin-ftp.txt", b"1")
    # (paramiko's confirming stat after the upload would be refused: she cannot see it)
    sftp_put_as(d, "erin", "/team/erin-sftp.txt", b"2", confirm=False)
    src = d.path("erin-up.txt")
    open(src, "wb").write(b"4")
    r = sftp_batch(d.sport, "erin", d.keys["erin"], f"put {src} /team/erin-openssh.txt\n")
    assert r.returncode == 0, out(r)
    assert http_get(d, "alice", "/team/erin-openssh.txt").body == b"4"
    assert http_put(d, "erin", "/team/erin-http.txt", b"3").code == 201
    assert ftp_get_as(d, "alice", "/team/erin-ftp.txt") == b"1"
    assert sftp_get_as(d, "alice", "/team/erin-sftp.txt") == b"2"
    assert http_get(d, "alice", "/team/erin-http.txt").body == b"3"
    # but she cannot list or read, even what she uploaded
    f = ftp_login(d.fport, "erin", PW)
    try:
        assert ftp_err(f.nlst, "/team") == "550"
        assert ftp_err(ftp_get, f, "/team/erin-ftp.txt") == "550"
        assert ftp_err(ftp_get, f, "/team/inbox-existing.txt") == "550"
        assert ftp_err(f.delete, "/team/erin-ftp.txt") == "550"
    finally:
        f.quit()
    with SftpSession(d.sport, "erin", PW) as s:
        assert sftp_errno(s.listdir, "/team") == 13
        assert sftp_errno(s.open, "/team/erin-sftp.txt", "r") in (2, 13)
        assert sftp_errno(s.open, "/team/inbox-existing.txt", "r") in (2, 13)
    assert http(d, "erin", "GET", "/api/v1/fs/team").code == 403
    assert http_get(d, "erin", "/team/erin-http.txt").code in (403, 404)
    assert http_get(d, "erin", "/team/inbox-existing.txt").code in (403, 404)
    # /team itself is in her root listing (she was granted a rule there)
    j = http_json(d, "erin", "GET", "/api/v1/fs/")
    assert "team" in [e["name"] for e in j["entries"]], j
    assert ftp_get_as(d, "alice", "/team/inbox-existing.txt") == b"existing"


# ---------------------------------------------------------------- 5. inheritance, removal

def test_inheritance_and_override(td):
    d = td
    http_json(d, "alice", "POST", "/api/v1/fs/team/specs/frozen?op=mkdir&parents=1", code=201)
    # the group may only read in /specs, bob alone may write in /specs/frozen again
    d.ctl("share", "folder", "grant", "team", "/specs", "--group", "eng", "ro")
    d.ctl("share", "folder", "grant", "team", "/specs/frozen", "--user", "bob",
              "list,read,write")
    try:
        # inherited: /specs/x is read-only for alice and bob
        for proto_put in (lambda u, p: http_put(d, u, p, b"s").code,):
            assert proto_put("alice", "/team/specs/x.txt") == 403
            assert proto_put("bob", "/team/specs/x.txt") == 403
        f = ftp_login(d.fport, "alice", PW)
        try:
            assert ftp_err(ftp_put, f, "/team/specs/x.txt", b"s") == "550"
            # a deeper folder without its own rule inherits /specs' rule
            assert ftp_err(f.mkd, "/team/specs/frozen/deeper") == "550"
            # above the override, alice still has everything
            ftp_put(f, "/team/top.txt", b"top")
        finally:
            f.quit()
        # overridden: bob writes in /specs/frozen and below, alice does not
        sftp_put_as(d, "bob", "/team/specs/frozen/bob.txt", b"b")
        with SftpSession(d.sport, "bob", PW) as s:
            s.mkdir("/team/specs/frozen/sub")
            s.putfo(io.BytesIO(b"c"), "/team/specs/frozen/sub/c.txt")
            # no delete right in this rule
            assert sftp_errno(s.remove, "/team/specs/frozen/bob.txt") == 13
        with SftpSession(d.sport, "alice", PW) as s:
            assert sftp_errno(s.putfo, io.BytesIO(b"a"), "/team/specs/frozen/a.txt") == 13
            assert s.open("/team/specs/frozen/bob.txt").read() == b"b"
        # share folder ls shows the rules
        r = d.ctl("share", "folder", "ls", "team", "--json")
        rules = json.loads(r.stdout)
        got = {(x["path"], x.get("user") or "", x.get("group") or "") for x in rules}
        assert ("/specs", "", "eng") in got and ("/specs/frozen", "bob", "") in got, rules
    finally:
        d.ctl("share", "folder", "revoke", "team", "/specs/frozen", "--user", "bob")
        d.ctl("share", "folder", "revoke", "team", "/specs", "--group", "eng")
    # revoked: back to the root's rule
    assert http_put(d, "alice", "/team/specs/x.txt", b"s").code == 201


def test_member_removed_takes_effect_on_open_sessions(td):
    d = td
    d.add_user("gina", PW)
    d.ctl("group", "member", "add", "eng", "gina")
    ftp_put_as(d, "alice", "/team/gina.txt", b"for gina")
    f = ftp_login(d.fport, "gina", PW)
    s = SftpSession(d.sport, "gina", PW)
    try:
        assert ftp_get(f, "/team/gina.txt") == b"for gina"
        assert s.sftp.open("/team/gina.txt").read() == b"for gina"
        f.cwd("/team")
        d.ctl("group", "member", "rm", "eng", "gina")
        # the next command of each session already open is refused
        assert ftp_err(ftp_get, f, "/team/gina.txt") == "550"
        assert ftp_err(ftp_get, f, "gina.txt") == "550"
        assert ftp_err(ftp_put, f, "/team/gina2.txt", b"x") == "550"
        assert sftp_errno(s.sftp.open, "/team/gina.txt", "r") == 2
        assert sftp_errno(s.sftp.listdir, "/team") == 2
        assert http_get(d, "gina", "/team/gina.txt").code == 404
        # and back again
        d.ctl("group", "member", "add", "eng", "gina")
        assert ftp_get(f, "/team/gina.txt") == b"for gina"
        assert s.sftp.open("/team/gina.txt").read() == b"for gina"
    finally:
        f.quit()
        s.close()
        d.ctl("group", "member", "rm", "eng", "gina", check=False)


# ---------------------------------------------------------------- 6. quota, dedup, moves

def share_info(d, name):
    [j] = [x for x in d.ctl_json("share", "folder", "ls", "--json") if x["name"] == name]
    return j


def user_used(d, name):
    [u] = [x for x in d.ctl_json("user", "list", "--json") if x["name"] == name]
    return u["used"]


def test_shared_folder_quota_parallel_uploads(td):
    d = td
    d.ctl("share", "folder", "create", "quotad", "--quota", "1000000")
    d.ctl("share", "folder", "grant", "quotad", "/", "--group", "eng", "rw")
    alice0, bob0 = user_used(d, "alice"), user_used(d, "bob")
    size = 150000
    blobs = {f"/quotad/f{i:02d}.bin": os.urandom(size) for i in range(16)}

    def up(item):
        i, (p, data) = item
        user = "alice" if i % 2 else "bob"
        if i % 4 < 2:
            try:
                ftp_put_as(d, user, p, data)
                return True
            except ftplib.error_perm as e:
                assert str(e)[:3] in ("452", "552"), e
                return False
        r = http_put(d, user, p, data)
        assert r.code in (201, 507), r
        return r.code == 201

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        ok = list(ex.map(up, enumerate(blobs.items())))
    stored = tree_of(d, "alice", "/quotad")
    # at most what fits, the stored ones whole, the refused ones absent
    assert sum(ok) == 1000000 // size == len(stored), (ok, sorted(stored))
    for p, data in blobs.items():
        if p[len("/quotad/"):] in stored:
            assert stored[p[len("/quotad/"):]] == data
    info = share_info(d, "quotad")
    assert info["used"] == len(stored) * size and info["quota"] == 1000000, info
    # charged to the folder, not to the members who uploaded
    assert (user_used(d, "alice"), user_used(d, "bob")) == (alice0, bob0)
    # a delete gives room back to every member
    assert http(d, "bob", "DELETE", "/api/v1/fs/quotad/" + sorted(stored)[0]).code == 204
    assert http_put(d, "alice", "/quotad/again.bin", os.urandom(size)).code == 201
    assert http_put(d, "alice", "/quotad/over.bin", os.urandom(size)).code == 507
    # raising the quota takes effect at once
    d.ctl("share", "folder", "quota", "quotad", "0")
    assert http_put(d, "alice", "/quotad/over.bin", os.urandom(size)).code == 201


def test_dedup_and_moves_by_reference(td):
    d = td
    data = os.urandom(300000)
    n0 = d.blob_count()
    ftp_put_as(d, "alice", "/team/dedup.bin", data)
    assert http_put(d, "bob", "/bob-own.bin", data).code == 201
    sftp_put_as(d, "dave", "/dave-own.bin", data)
    assert d.blob_count() == n0 + 1, "one blob for the same bytes in a shared and two own trees"
    # moving a file from a private tree into the shared folder and back: no copy, quotas follow
    team0, alice0 = share_info(d, "team")["used"], user_used(d, "alice")
    priv = os.urandom(200000)
    assert http_put(d, "alice", "/private.bin", priv).code == 201
    n1 = d.blob_count()
    assert user_used(d, "alice") == alice0 + len(priv)
    f = ftp_login(d.fport, "alice", PW)
    try:
        f.rename("/private.bin", "/team/moved-in.bin")
    finally:
        f.quit()
    assert d.blob_count() == n1
    assert share_info(d, "team")["used"] == team0 + len(priv)
    assert user_used(d, "alice") == alice0
    assert sftp_get_as(d, "bob", "/team/moved-in.bin") == priv
    # bob takes it to his own tree over SFTP
    bob0 = user_used(d, "bob")
    with SftpSession(d.sport, "bob", PW) as s:
        s.posix_rename("/team/moved-in.bin", "/mine.bin")
    assert d.blob_count() == n1
    assert share_info(d, "team")["used"] == team0
    assert user_used(d, "bob") == bob0 + len(priv)
    assert http_get(d, "bob", "/mine.bin").body == priv
    assert http_get(d, "alice", "/team/moved-in.bin").code == 404
    # a folder moves with its content, over HTTP
    assert http_put(d, "bob", "/proj/a/1.txt?parents=1", b"1").code == 201
    assert http_put(d, "bob", "/proj/b.txt", b"22").code == 201
    r = http(d, "bob", "POST", "/api/v1/fs/proj?op=move&to=/team/proj")
    assert r.code == 200, r
    assert tree_of(d, "alice", "/team/proj") == {"a/1.txt": b"1", "b.txt": b"22"}
    assert share_info(d, "team")["used"] == team0 + 3


# ---------------------------------------------------------------- 7. share links

def make_link(d, user, path, code=201, **opts):
    body = json.dumps({"path": path, **opts})
    r = http(d, user, "POST", "/api/v1/links", "-H", "Content-Type: application/json",
             "--data-binary", "@-", input=body.encode())
    assert r.code == code, f"POST /api/v1/links {body}: {r}"
    return r.json()


def s(d, url, *args, input=None):
    """A request to a link URL without an account."""
    return curl(*args, d.base + url, input=input)


def test_link_to_a_file_range_etag_limit_revoke(td):
    d = td
    data = os.urandom(100000)
    ftp_put_as(d, "alice", "/team/linked.bin", data)
    link = make_link(d, "alice", "/team/linked.bin", max_downloads=2)
    tok = link["token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", tok), tok
    assert link["url"] == "/s/" + tok and link["kind"] == "file" and link["mode"] == "read"
    assert link["max_downloads"] == 2 and link["downloads"] == 0
    # the token is in the answer once, never in a listing
    lst = http_json(d, "alice", "GET", "/api/v1/links")["links"]
    assert [x["id"] for x in lst] == [link["id"]] and "token" not in lst[0], lst
    assert tok not in http(d, "alice", "GET", "/api/v1/links").text
    # HEAD, a conditional GET and a range past 0 are not downloads
    r = s(d, link["url"], "-I")
    assert r.code == 200 and r.header("ETag"), r
    etag = r.header("ETag")
    assert r.header("Referrer-Policy") == "no-referrer" or r.header("Content-Security-Policy")
    r = s(d, link["url"], "-H", f"If-None-Match: {etag}")
    assert r.code == 304, r
    r = s(d, link["url"], "-r", "1000-1999")
    assert r.code == 206 and r.body == data[1000:2000], r
    assert r.header("Content-Range") == f"bytes 1000-1999/{len(data)}"
    r = s(d, link["url"], "-r", "-10")
    assert r.code == 206 and r.body == data[-10:], r
    # two downloads, then the link is used up: 404 like an unknown token
    for _ in range(2):
        r = s(d, link["url"])
        assert r.code == 200 and r.body == data and r.header("ETag") == etag, r
    [li] = http_json(d, "alice", "GET", "/api/v1/links")["links"]
    assert li["downloads"] == 2 and li["state"] == "used_up", li
    gone = s(d, link["url"])
    unknown = s(d, "/s/" + "A" * 43)
    assert gone.code == unknown.code == 404, (gone, unknown)
    assert gone.body == unknown.body, "an exhausted link says no more than an unknown one"
    # bob can read the file too, but the link is alice's: he cannot revoke it
    r = http(d, "bob", "DELETE", f"/api/v1/links/{link['id']}")
    assert r.code == 404, r
    # tokens are all different, 43 base64url characters (32 random bytes)
    toks = {make_link(d, "alice", "/team/linked.bin")["token"] for _ in range(20)}
    assert len(toks) == 20 and all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in toks), toks
    assert len(set("".join(toks))) > 50, "tokens use the whole base64url alphabet"
    # revocation
    l2 = make_link(d, "alice", "/team/linked.bin")
    assert s(d, l2["url"]).body == data
    assert http(d, "alice", "DELETE", f"/api/v1/links/{l2['id']}").code == 204
    r = s(d, l2["url"])
    assert r.code == 404 and r.body == unknown.body, r
    # each use is journaled
    ops = [row["op"] for row in d.ctl_json("journal", "--json")]
    assert ops.count("link_get") >= 3 and "link_create" in ops and "link_revoke" in ops, ops[-20:]
    # the token is nowhere on the server: not in the log (debug level), the database or its WAL
    assert tok not in d.logtext()
    for f in ("storaged.db", "storaged.db-wal"):
        with open(os.path.join(d.data, f), "rb") as fh:
            assert tok.encode() not in fh.read(), f


def test_link_password_and_expiry(td):
    d = td
    ftp_put_as(d, "alice", "/team/pw.txt", b"protected")
    link = make_link(d, "alice", "/team/pw.txt", password="open sesame")
    assert link["password"] is True
    r = s(d, link["url"])
    assert r.code == 401 and "Basic" in (r.header("WWW-Authenticate") or ""), r
    r = s(d, link["url"], "-u", "x:wrong")
    assert r.code == 401, r
    r = s(d, link["url"], "-u", "anyone:open sesame")
    assert r.code == 200 and r.body == b"protected", r
    r = s(d, link["url"], "-H", "X-Link-Password: open sesame")
    assert r.code == 200 and r.body == b"protected", r
    # expiry: seconds from now, and an RFC 3339 date
    exp = make_link(d, "alice", "/team/pw.txt", expires=2)
    assert s(d, exp["url"]).body == b"protected"
    time.sleep(2.5)
    r = s(d, exp["url"])
    assert r.code == 404, r
    [e] = [x for x in http_json(d, "alice", "GET", "/api/v1/links")["links"]
           if x["id"] == exp["id"]]
    assert e["state"] == "expired", e
    later = make_link(d, "alice", "/team/pw.txt", expires="2099-01-01T00:00:00Z")
    assert later["expires"] == "2099-01-01T00:00:00Z", later
    # a date in the past or nonsense is refused
    make_link(d, "alice", "/team/pw.txt", code=400, expires="2001-01-01T00:00:00Z")
    make_link(d, "alice", "/team/pw.txt", code=400, expires="soon")
    make_link(d, "alice", "/team/pw.txt", code=400, mode="write")


def test_link_rights(td):
    d = td
    ftp_put_as(d, "alice", "/team/rights.txt", b"r")
    # carol (ro) has no share right; dave cannot see the folder at all
    r = http(d, "carol", "POST", "/api/v1/links", "-H", "Content-Type: application/json",
             "--data-binary", json.dumps({"path": "/team/rights.txt"}))
    assert r.code == 403, r
    r = http(d, "dave", "POST", "/api/v1/links", "-H", "Content-Type: application/json",
             "--data-binary", json.dumps({"path": "/team/rights.txt"}))
    assert r.code == 404, r
    # bob (eng: full) may; the link stops working when bob loses his rights
    link = make_link(d, "bob", "/team/rights.txt")
    assert s(d, link["url"]).body == b"r"
    d.ctl("group", "member", "rm", "eng", "bob")
    try:
        assert s(d, link["url"]).code == 404
    finally:
        d.ctl("group", "member", "add", "eng", "bob")
    assert s(d, link["url"]).body == b"r"
    # an upload link needs a folder
    r = http(d, "bob", "POST", "/api/v1/links", "-H", "Content-Type: application/json",
             "--data-binary", json.dumps({"path": "/team/rights.txt", "mode": "upload"}))
    assert r.code in (400, 409), r


def test_link_to_a_folder_listing_and_zip(td):
    d = td
    files = {"top.txt": b"top\n", "a/one.bin": os.urandom(70000), "a/b/two.txt": b"two\n",
             "a/b/c/empty.txt": b"", "sp ace & <odd>.txt": b"odd\n", "\u00e9t\u00e9.txt": b"ete\n"}
    for p, data in files.items():
        assert http_put(d, "alice", "/team/pub/" + p.replace(" ", "%20").replace("&", "%26")
                        .replace("<", "%3C").replace(">", "%3E") + "?parents=1",
                        data).code == 201, p
    link = make_link(d, "alice", "/team/pub", max_downloads=5)
    assert link["kind"] == "dir"
    r = s(d, link["url"])
    assert r.code == 200 and "text/html" in r.header("Content-Type"), r
    page = r.text
    assert "top.txt" in page and "a/" in page and "sp ace &amp; &lt;odd&gt;.txt" in page
    assert "<odd>" not in page
    assert r.header("Referrer-Policy") == "no-referrer"
    assert "script-src" not in (r.header("Content-Security-Policy") or "x")
    j = s(d, link["url"] + "/a", "-H", "Accept: application/json").json()
    assert sorted(e["name"] for e in j["entries"]) == ["b", "one.bin"], j
    r = s(d, link["url"] + "/a/one.bin", "-r", "5-9")
    assert r.code == 206 and r.body == files["a/one.bin"][5:10], r
    # traversal out of the link's folder goes nowhere
    ftp_put_as(d, "alice", "/team/outside.txt", b"outside")
    for p in ("/..%2Foutside.txt", "/%2e%2e/outside.txt", "/a/../../outside.txt",
              "/a/%2e%2e/%2e%2e/outside.txt"):
        r = s(d, link["url"] + p, "--path-as-is")
        assert r.code in (400, 404) and b"outside" not in r.body, f"{p}: {r}"
    # a trailing or doubled slash is the same folder; its links are right
    r = s(d, link["url"] + "//a/")
    assert r.code == 200 and f'href="/s/{link["token"]}/a/one.bin"' in r.text, r.text
    assert "//" not in r.text.replace("http://", ""), r.text
    # "." and ".." below a token are refused
    for p in ("/a/..", "/./a", "/a/b/../b"):
        assert s(d, link["url"] + p, "--path-as-is").code == 400, p
    # the zip unzips to the same tree
    r = s(d, link["url"] + "/?download=zip")
    assert r.code == 200 and r.body[:2] == b"PK", r
    zf = zipfile.ZipFile(io.BytesIO(r.body))
    assert zf.testzip() is None
    got = {n[len("pub/"):]: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    assert got == files, sorted(got)
    # and with the system's unzip
    zp = d.path("pub.zip")
    open(zp, "wb").write(r.body)
    outdir = d.path("unzipped")
    ru = run(["unzip", "-q", zp, "-d", outdir])
    assert ru.returncode == 0, out(ru)
    for p, data in files.items():
        assert open(os.path.join(outdir, "pub", p), "rb").read() == data, p
    # a subfolder as a zip
    r = s(d, link["url"] + "/a/b/?download=zip")
    names = sorted(zipfile.ZipFile(io.BytesIO(r.body)).namelist())
    assert [n for n in names if not n.endswith("/")] == ["b/c/empty.txt", "b/two.txt"], names
    # writes through a read link are refused
    r = s(d, link["url"] + "/new.txt", "-X", "PUT", "--data-binary", "x")
    assert r.code == 405, r
    assert http_get(d, "alice", "/team/pub/new.txt").code == 404


def test_upload_link_file_request(td):
    d = td
    http_json(d, "alice", "POST", "/api/v1/fs/team/inbox?op=mkdir", code=201)
    ftp_put_as(d, "alice", "/team/inbox/private.txt", b"not for guests")
    link = make_link(d, "alice", "/team/inbox", mode="upload")
    assert link["mode"] == "upload"
    # a page with a form; nothing of the folder's content
    r = s(d, link["url"])
    assert r.code == 200 and "<form" in r.text and "private.txt" not in r.text, r
    # PUT a file, and a browser-like multipart form with two files
    r = s(d, link["url"] + "/guest.txt", "-T", "-", input=b"from a guest")
    assert r.code == 201, r
    f1, f2 = d.path("form1.txt"), d.path("form2.bin")
    open(f1, "wb").write(b"form one")
    open(f2, "wb").write(os.urandom(50000))
    r = s(d, link["url"], "-F", f"file=@{f1}", "-F", f"file=@{f2}",
          "-H", "Accept: application/json")
    assert r.code == 201 and sorted(r.json()["uploaded"]) == ["form1.txt", "form2.bin"], r
    assert http_get(d, "alice", "/team/inbox/guest.txt").body == b"from a guest"
    assert http_get(d, "bob", "/team/inbox/form2.bin").body == open(f2, "rb").read()
    # no listing, no reading, no overwrite
    assert s(d, link["url"] + "/private.txt").code == 404
    assert s(d, link["url"] + "/guest.txt").code == 404
    r = s(d, link["url"], "-H", "Accept: application/json")
    assert "private.txt" not in r.text
    r = s(d, link["url"] + "/private.txt", "-T", "-", input=b"overwrite")
    assert r.code == 409, r
    assert http_get(d, "alice", "/team/inbox/private.txt").body == b"not for guests"
    # names cannot climb out
    for p in ("/..%2Fescaped.txt", "/sub/x.txt", "/%2e%2e"):
        r = s(d, link["url"] + p, "-T", "-", "--path-as-is", input=b"x")
        assert r.code in (400, 404), f"{p}: {r}"
    assert http_get(d, "alice", "/team/escaped.txt").code == 404
    # the uploads are the folder's, journaled, with versions naming the link's maker
    v = http_json(d, "alice", "GET", "/api/v1/versions/team/inbox/guest.txt")["versions"]
    assert len(v) == 1, v


def test_wrong_tokens_rate_limited_like_logins(make_daemon):
    hport = free_port()
    d = make_daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{hport}"}},
                    storaged={"auth_max_failures": "5", "auth_block_time": "8s"},
                    name="teams-limit")
    d.base = f"http://{HOST}:{hport}"
    d.add_user("alice", PW)
    assert http_put(d, "alice", "/f.txt", b"f").code == 201
    good = make_link(d, "alice", "/f.txt")
    pwl = make_link(d, "alice", "/f.txt", password="right")
    codes = [s(d, "/s/" + os.urandom(32).hex()[:43]).code for _ in range(5)]
    # the fifth failure reaches auth_max_failures: it is already answered as blocked
    assert codes[:4] == [404] * 4 and codes[4] in (404, 429), codes
    # locked out now: even the right token waits, and says for how long
    r = s(d, good["url"])
    assert r.code == 429 and int(r.header("Retry-After")) >= 1, r
    # and a password login from the same address is blocked by the same limiter
    assert http(d, "alice", "GET", "/api/v1/me").code == 429
    time.sleep(8.5)
    assert s(d, good["url"]).body == b"f"
    # wrong link passwords count too (each is an Argon2id check: the 5 fit in the 8 s window)
    codes = [s(d, pwl["url"], "-u", f"x:wrong{i}").code for i in range(5)]
    assert codes[:4] == [401] * 4 and codes[4] in (401, 429), codes
    assert s(d, pwl["url"], "-u", "x:right").code == 429
    assert d.log_count(r"event=auth_blocked|blocked") >= 1


def test_storagectl_and_admin_api(td):
    d = td
    # groups
    d.ctl("group", "add", "ops")
    r = d.ctl("group", "add", "ops", check=False)
    assert r.returncode == 1 and "exists" in out(r), out(r)
    r = d.ctl("group", "add", "bad/name", check=False)
    assert r.returncode != 0 and "bad group name" in r.stderr, r.stderr[:300]
    r = d.ctl("group", "member", "add", "ops", "nobody", check=False)
    assert r.returncode == 1 and "no such" in out(r), out(r)
    d.ctl("group", "member", "add", "ops", "dave")
    [g] = d.ctl_json("group", "ls", "ops", "--json")
    assert g["name"] == "ops" and g["members"] == ["dave"], g
    r = d.ctl("group", "ls")
    assert "ops" in r.stdout and "dave" in r.stdout, out(r)
    # the admin API says the same
    api = http_json(d, "frank", "GET", "/api/v1/admin/groups/ops")
    assert api == g or api.get("group") == g or api["members"] == g["members"], (api, g)
    # non-admins are refused
    assert http(d, "alice", "GET", "/api/v1/admin/groups").code == 403
    # an admin makes a group, a shared folder and a rule over REST
    http_json(d, "frank", "POST", "/api/v1/admin/groups", "-H", "Content-Type: application/json",
              "--data-binary", json.dumps({"name": "web"}), code=201)
    http_json(d, "frank", "POST", "/api/v1/admin/groups/web/members", "-H",
              "Content-Type: application/json", "--data-binary", json.dumps({"user": "dave"}),
              code=201)
    http_json(d, "frank", "POST", "/api/v1/admin/shares", "-H", "Content-Type: application/json",
              "--data-binary", json.dumps({"name": "site", "quota": 5000000}), code=201)
    http_json(d, "frank", "POST", "/api/v1/admin/shares/site/rules", "-H",
              "Content-Type: application/json",
              "--data-binary", json.dumps({"path": "/", "group": "web", "rights": "rw"}))
    # dave sees /site at once, over FTP
    ftp_put_as(d, "dave", "/site/index.html", b"<h1>hi</h1>")
    info = share_info(d, "site")
    assert info["quota"] == 5000000 and info["used"] == len(b"<h1>hi</h1>"), info
    sh = http_json(d, "frank", "GET", "/api/v1/admin/shares/site")
    assert json.dumps(sh).count('"web"') >= 1, sh
    rules = d.ctl_json("share", "folder", "ls", "site", "--json")
    assert [(x["path"], x["group"], x["rights"]) for x in rules] == \
        [("/", "web", "list,read,write,delete,rename")], rules
    r = d.ctl("share", "folder", "ls")
    assert "site" in r.stdout and "mounted at /site" in r.stdout, out(r)
    # bad rights words are refused with the list of good ones
    r = d.ctl("share", "folder", "grant", "site", "/", "--user", "alice", "fly", check=False)
    assert r.returncode == 2 and "bad rights" in r.stderr, r.stderr[:300]
    r = d.ctl("share", "folder", "grant", "nosuch", "/", "--user", "alice", "ro", check=False)
    assert r.returncode == 1 and "no such" in out(r), out(r)
    # links from storagectl: the token once on stdout, a working URL
    r = d.ctl("link", "create", "dave", "/site/index.html", "--expires", "1h",
              "--max-downloads", "3")
    tok = r.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", tok), out(r)
    assert s(d, "/s/" + tok).body == b"<h1>hi</h1>"
    r = d.ctl("link", "create", "dave", "/site", "--password-stdin", "--json", input="pw!\n")
    lj = json.loads(r.stdout)
    assert lj["password"] is True and lj["kind"] == "dir" and len(lj["token"]) == 43, lj
    assert s(d, "/s/" + lj["token"]).code == 401
    assert s(d, "/s/" + lj["token"], "-u", "x:pw!").code == 200
    r = d.ctl("link", "create", "dave", "/site", "--upload", "--json")
    up = json.loads(r.stdout)
    assert up["mode"] == "upload"
    # the admin needs no share right for a user, but the link needs that user's rights:
    # carol (ro) can be given a read link to /team, not an upload link
    r = d.ctl("link", "create", "carol", "/team", "--json")
    cl = json.loads(r.stdout)
    assert s(d, "/s/" + cl["token"], "-H", "Accept: application/json").code == 200
    d.ctl("link", "revoke", str(cl["id"]))
    r = d.ctl("link", "create", "carol", "/team", "--upload", check=False)
    assert r.returncode == 1 and "may not" in out(r), out(r)
    r = d.ctl("link", "create", "dave", "/team/report.txt", check=False)
    assert r.returncode == 1 and "no such" in out(r), out(r)
    links = d.ctl_json("link", "ls", "dave", "--json")
    assert len(links) == 3 and all("token" not in x for x in links), links
    assert tok not in d.ctl("link", "ls").stdout
    api = http_json(d, "frank", "GET", "/api/v1/admin/links?user=dave")
    assert sorted(x["id"] for x in api["links"]) == sorted(x["id"] for x in links), api
    d.ctl("link", "revoke", str(up["id"]))
    assert s(d, "/s/" + up["token"]).code == 404
    r = d.ctl("link", "revoke", "999999", check=False)
    assert r.returncode == 1 and "no such link" in out(r), out(r)
    assert http(d, "frank", "DELETE", f"/api/v1/admin/links/{lj['id']}").code == 204
    assert s(d, "/s/" + lj["token"], "-u", "x:pw!").code == 404
    # dave leaves web: /site is gone from his view; the folder and its files stay
    assert http(d, "frank", "DELETE", "/api/v1/admin/groups/web/members/dave").code == 204
    assert http_get(d, "dave", "/site/index.html").code == 404
    assert info["used"] == share_info(d, "site")["used"]
    # deleting the folder: gone for everyone; its links die with it
    d.ctl("share", "folder", "delete", "site")
    assert "site" not in [x["name"] for x in d.ctl_json("share", "folder", "ls", "--json")]
    assert s(d, "/s/" + tok).code == 404
    d.ctl("group", "del", "ops")
    r = d.ctl("group", "ls", "ops", check=False)
    assert r.returncode == 1, out(r)


def test_zz_fsck_clean_after_everything(td):
    r = td.ctl("fsck")
    assert r.returncode == 0, out(r)
    r = td.ctl("journal", "verify")
    assert r.returncode == 0, out(r)
