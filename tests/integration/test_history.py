"""History users can reach (issue 20), over every protocol, with real clients.

1. versions: a file overwritten three times over FTP (ftplib), SFTP (paramiko) and HTTP (curl)
   has three versions that say who, over what, from where; restoring the first (HTTP API or
   storagectl) gives its bytes back over the same protocol;
2. trash: a folder deleted over each protocol (lftp rm -r, paramiko file by file, HTTP
   DELETE) is one trash item; restoring it (RNFR/RNTO out of /.trash, SFTP rename, HTTP
   POST) brings every file back;
3. rollback: a tree changed over FTP, SFTP and HTTP, rolled back to a moment between the
   changes, equals a copy taken at that moment (lftp mirror); the rollback rolled back
   equals the tree just before it; `lftp mirror`, OpenSSH `sftp get -r` and `rsync` from an
   sshfs mount out of /.snapshots/<T>/ give the old tree; storagectl rollback does the same; a
   copy made by storagectl replicate has the same tree, trash, versions and past;
4. writes, renames and deletes in /.snapshots/ and /.trash/ are refused on every protocol
   (550, permission denied, 403), and change nothing;
5. another user's versions, trash and snapshots are unreachable, and anonymous FTP sees no history
   of the account it publishes;
6. the virtual folders are hidden from listings of / unless show_history_folders;
7. ?at= on HTTP GET of files, listings and stat; moments past the horizon (410) and bad
   times (400); the cleaner keeps every blob a kept version names.
"""
import datetime
import ftplib
import hashlib
import io
import json
import os
import time

import paramiko
import pytest

from conftest import (HOST, STORAGECTL, SftpSession, curl, daemon_scope, diff_r, free_port,
                      ftp_get, ftp_login, ftp_put, lftp, out, run, sftp_batch, ssh_keygen)

PW = "history pw 1"


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    return tmp_path_factory.mktemp("history-keys")


@pytest.fixture(scope="module")
def histd():
    """FTP, SFTP and HTTP on one daemon."""
    fport, sport, hport = free_port(), free_port(), free_port()
    sections = {
        "ftp": {"enabled": "yes", "listen": f"{HOST}:{fport}", "max_per_ip": "50"},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sport}"},
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{hport}"},
    }
    with daemon_scope(sections, name="history") as d:
        d.fport, d.sport, d.hport = fport, sport, hport
        d.base = f"http://{HOST}:{hport}"
        yield d


def new_user(d, name, keydir=None):
    """A user with password PW (and an ed25519 key when keydir is given)."""
    d.add_user(name, PW)
    if keydir is not None:
        key = ssh_keygen(str(keydir / name))
        d.add_key(name, key + ".pub")
        return key
    return None


def sha(b):
    return hashlib.sha256(b).hexdigest()


def ms_now():
    return int(time.time() * 1000)


def iso(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def snap(ms):
    """The /.snapshots/ folder of the moment ms (one-component form)."""
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return "/.snapshots/" + t.strftime("%Y-%m-%dT%H-%M-%S") + f".{ms % 1000:03d}Z"


def between_changes():
    """A moment with at least a second of quiet on each side of it."""
    time.sleep(1.2)
    at = ms_now()
    time.sleep(1.2)
    return at


# ---------------------------------------------------------------- clients

def http(d, user, method, path, *args, input=None):
    return curl("-X", method, "-u", f"{user}:{PW}", *args, d.base + path, input=input)


def http_json(d, user, method, path, *args, code=200):
    r = http(d, user, method, path, *args)
    assert r.code == code, f"{method} {path}: want {code}, got {r}"
    return r.json()


def write_over(d, proto, user, path, data):
    if proto == "ftp":
        f = ftp_login(d.fport, user, PW)
        try:
            ftp_put(f, path, data)
        finally:
            f.quit()
    elif proto == "sftp":
        with SftpSession(d.sport, user, PW) as s:
            s.putfo(io.BytesIO(data), path)
    else:
        r = http(d, user, "PUT", "/api/v1/fs" + path + "?parents=1", "--data-binary", "@-",
                 input=data)
        assert r.code in (200, 201), f"HTTP PUT {path}: {r}"


def read_over(d, proto, user, path):
    if proto == "ftp":
        f = ftp_login(d.fport, user, PW)
        try:
            return ftp_get(f, path)
        finally:
            f.quit()
    if proto == "sftp":
        with SftpSession(d.sport, user, PW) as s:
            buf = io.BytesIO()
            s.getfo(path, buf)
            return buf.getvalue()
    r = http(d, user, "GET", "/api/v1/fs" + path)
    assert r.code == 200, f"HTTP GET {path}: {r}"
    return r.body


def mkdir_over(d, proto, user, path):
    if proto == "ftp":
        f = ftp_login(d.fport, user, PW)
        try:
            f.mkd(path)
        finally:
            f.quit()
    elif proto == "sftp":
        with SftpSession(d.sport, user, PW) as s:
            s.mkdir(path)
    else:
        r = http(d, user, "POST", "/api/v1/fs" + path + "?op=mkdir")
        assert r.code == 201, f"HTTP mkdir {path}: {r}"


def mirror(d, user, remote, local):
    """lftp mirror of remote into local (a new directory)."""
    r = lftp(d.fport, user, PW, f"mirror {remote} {local}")
    assert r.returncode == 0, f"lftp mirror {remote}: {out(r)}"
    return local


def trash_items(d, user):
    return http_json(d, user, "GET", "/api/v1/trash")["items"]


# ---------------------------------------------------------------- 1. versions

@pytest.mark.parametrize("proto", ["ftp", "sftp", "http"])
def test_versions_restore(histd, proto):
    d, user = histd, f"ver-{proto}"
    new_user(d, user)
    contents = [os.urandom(4000 + 10 * i) for i in range(3)]
    for c in contents:
        write_over(d, proto, user, "/doc.bin", c)
    v = http_json(d, user, "GET", "/api/v1/versions/doc.bin")
    assert v["path"] == "/doc.bin", f"versions answer names the file: {v}"
    vs = v["versions"]
    assert [x["sha256"] for x in vs] == [sha(c) for c in reversed(contents)], \
        f"three versions, newest first, with the content addresses written: {vs}"
    assert [x["current"] for x in vs] == [True, False, False], f"the newest is current: {vs}"
    assert all(x["proto"] == proto and x["addr"] == "127.0.0.1" and x["user"] == user
               and x["op"] == "write" for x in vs), f"who, over what, from where: {vs}"
    assert all(x["ts"].endswith("Z") and x["size"] == len(c)
               for x, c in zip(vs, reversed(contents))), f"times and sizes: {vs}"
    ctl = json.loads(d.ctl("versions", user, "/doc.bin", "--json").stdout)
    assert [x["id"] for x in ctl] == [x["id"] for x in vs], f"storagectl lists the same: {ctl}"

    first = vs[-1]["id"]
    if proto == "http":
        st = http_json(d, user, "POST", f"/api/v1/versions/doc.bin?op=restore&version={first}")
        assert st["sha256"] == sha(contents[0]) and st["versions"] == 4, f"restore answer: {st}"
    else:
        r = d.ctl("restore", user, "/doc.bin", "--version", str(first))
        assert "restored /doc.bin version" in r.stdout, f"storagectl restore: {out(r)}"
    assert read_over(d, proto, user, "/doc.bin") == contents[0], \
        f"the first content is back over {proto}"
    vs2 = http_json(d, user, "GET", "/api/v1/versions/doc.bin")["versions"]
    assert len(vs2) == 4 and vs2[0]["op"] == "restore" and vs2[0]["sha256"] == sha(contents[0]), \
        f"the restore is a new version naming the old content: {vs2}"
    # undo the restore the same way
    st = http_json(d, user, "POST", f"/api/v1/versions/doc.bin?op=restore&version={vs[0]['id']}")
    assert st["sha256"] == sha(contents[2]), f"restoring the third undoes it: {st}"
    assert read_over(d, proto, user, "/doc.bin") == contents[2], "the third content is back"
    # bad requests lose nothing
    for q in ("?op=restore&version=0", "?op=restore&version=x", "?op=nope&version=1",
              "?op=restore&version=99999999"):
        r = http(d, user, "POST", "/api/v1/versions/doc.bin" + q)
        assert r.code in (400, 404) and r.json()["error"], f"refused: {q}: {r}"
    assert read_over(d, proto, user, "/doc.bin") == contents[2], "nothing changed by those"


# ---------------------------------------------------------------- 2. trash

FOLDER = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(20000), "sub/deeper/c.bin": os.urandom(3000),
          "sub/deeper/d.txt": b"delta\n"}


def make_folder(d, proto, user, top):
    mkdir_over(d, proto, user, top)
    for sub in ("sub", "sub/deeper", "empty"):
        mkdir_over(d, proto, user, f"{top}/{sub}")
    for rel, data in FOLDER.items():
        write_over(d, proto, user, f"{top}/{rel}", data)


@pytest.mark.parametrize("proto", ["ftp", "sftp", "http"])
def test_trash_folder(histd, proto):
    d, user = histd, f"trash-{proto}"
    new_user(d, user)
    make_folder(d, proto, user, "/proj")
    if proto == "ftp":
        r = lftp(d.fport, user, PW, "rm -r proj")
        assert r.returncode == 0, f"lftp rm -r: {out(r)}"
    elif proto == "sftp":
        with SftpSession(d.sport, user, PW) as s:  # what SFTP clients do: file by file
            for rel in FOLDER:
                s.remove("/proj/" + rel)
            for sub in ("sub/deeper", "sub", "empty", ""):
                s.rmdir(("/proj/" + sub).rstrip("/"))
    else:
        r = http(d, user, "DELETE", "/api/v1/fs/proj?recursive=1")
        assert r.code == 204, f"HTTP DELETE recursive: {r}"
    assert http(d, user, "GET", "/api/v1/stat/proj").code == 404, "the folder is gone"

    items = trash_items(d, user)
    assert len(items) == 1, f"one trash item for the whole folder: {items}"
    it = items[0]
    assert it["path"] == "/proj" and it["kind"] == "dir" and it["files"] == len(FOLDER) \
        and it["size"] == sum(len(v) for v in FOLDER.values()), f"the item: {it}"
    ctl = d.ctl("trash", user).stdout
    assert "/proj" in ctl and str(it["id"]) in ctl, f"storagectl trash lists it: {ctl}"

    # the item seen inside /.trash over the protocol, then restored by it
    if proto == "ftp":
        f = ftp_login(d.fport, user, PW)
        try:
            names = f.nlst("/.trash")
            assert [os.path.basename(n) for n in names] == [it["name"]], f"NLST /.trash: {names}"
            assert ftp_get(f, f"/.trash/{it['name']}/sub/deeper/c.bin") == FOLDER["sub/deeper/c.bin"], \
                "RETR inside a trash item"
            f.rename(f"/.trash/{it['name']}", "/proj")  # RNFR/RNTO out of it restores
        finally:
            f.quit()
    elif proto == "sftp":
        with SftpSession(d.sport, user, PW) as s:
            assert s.listdir("/.trash") == [it["name"]], "SFTP lists /.trash"
            assert sorted(s.listdir(f"/.trash/{it['name']}")) == ["a.txt", "empty", "sub"], \
                "the item as it was"
            s.rename(f"/.trash/{it['name']}", "/proj")
    else:
        st = http_json(d, user, "POST", f"/api/v1/trash/{it['id']}?op=restore")
        assert st["path"] == "/proj" and st["kind"] == "dir", f"restore answer: {st}"
    for rel, data in FOLDER.items():
        assert read_over(d, proto, user, "/proj/" + rel) == data, f"{rel} is back over {proto}"
    lst = http_json(d, user, "GET", "/api/v1/fs/proj")
    assert [e["name"] for e in lst["entries"]] == ["a.txt", "empty", "sub"], f"listing: {lst}"
    assert trash_items(d, user) == [], "the trash is empty again"

    # taken place: 409, then elsewhere; then purge and empty
    r = http(d, user, "DELETE", "/api/v1/fs/proj/a.txt")
    assert r.code == 204, f"delete one file: {r}"
    write_over(d, proto, user, "/proj/a.txt", b"a new a\n")
    it = trash_items(d, user)[0]
    r = http(d, user, "POST", f"/api/v1/trash/{it['id']}?op=restore")
    assert r.code == 409 and r.json()["error"] == "exists", f"place taken: {r}"
    st = http_json(d, user, "POST", f"/api/v1/trash/{it['id']}?op=restore&to=/proj/old-a.txt")
    assert st["path"] == "/proj/old-a.txt", f"restored elsewhere: {st}"
    assert read_over(d, proto, user, "/proj/old-a.txt") == FOLDER["a.txt"], "old a, elsewhere"
    assert read_over(d, proto, user, "/proj/a.txt") == b"a new a\n", "new a untouched"
    http(d, user, "DELETE", "/api/v1/fs/proj/old-a.txt")
    it = trash_items(d, user)[0]
    assert http_json(d, user, "POST", f"/api/v1/trash/{it['id']}?op=purge") == {"deleted": 1}
    assert trash_items(d, user) == [], "purged"
    r = http(d, user, "POST", f"/api/v1/trash/{it['id']}?op=restore")
    assert r.code == 404, f"a purged item is gone: {r}"


# ---------------------------------------------------------------- 3. rollback

def test_rollback_between_protocols(histd, keydir):
    d, user = histd, "roll"
    key = new_user(d, user, keydir)
    # the tree before T, made over all three protocols
    mkdir_over(d, "ftp", user, "/w")
    write_over(d, "ftp", user, "/w/ftp-edit.txt", b"ftp v1\n")
    write_over(d, "ftp", user, "/w/ftp-gone.bin", os.urandom(5000))
    mkdir_over(d, "sftp", user, "/w/docs")
    write_over(d, "sftp", user, "/w/docs/sftp-moved.txt", b"sftp file\n")
    write_over(d, "sftp", user, "/w/docs/sftp-edit.bin", os.urandom(70000))
    mkdir_over(d, "http", user, "/w/docs/empty")
    write_over(d, "http", user, "/w/http-gone.txt", b"http file\n")
    write_over(d, "http", user, "/w/http-edit.txt", b"http v1\n")
    T = between_changes()
    copy_t = mirror(d, user, "/w", d.path("roll-at-T"))

    # after T: every protocol changes something
    write_over(d, "ftp", user, "/w/ftp-edit.txt", b"ftp v2, longer\n")
    f = ftp_login(d.fport, user, PW)
    f.delete("/w/ftp-gone.bin")
    f.quit()
    with SftpSession(d.sport, user, PW) as s:
        s.rename("/w/docs/sftp-moved.txt", "/w/sftp-moved-up.txt")
        s.putfo(io.BytesIO(os.urandom(70001)), "/w/docs/sftp-edit.bin")
        s.mkdir("/w/sftp-new")
        s.putfo(io.BytesIO(b"new over sftp\n"), "/w/sftp-new/n.txt")
    assert http(d, user, "DELETE", "/api/v1/fs/w/http-gone.txt").code == 204
    write_over(d, "http", user, "/w/http-edit.txt", b"http v2\n")
    write_over(d, "http", user, "/w/docs/empty/now-full.txt", b"full\n")
    time.sleep(1.1)
    before_rb = mirror(d, user, "/w", d.path("roll-before"))
    assert diff_r(copy_t, before_rb).returncode != 0, "the changes show"

    # the past, read with ordinary clients out of /.snapshots/<T>/
    snap_lftp = mirror(d, user, snap(T) + "/w", d.path("snap-lftp"))
    r = diff_r(copy_t, snap_lftp)
    assert r.returncode == 0, f"lftp mirror of {snap(T)}/w equals the copy taken at T: {out(r)}"
    snap_sftp = d.path("snap-sftp")
    r = sftp_batch(d.sport, user, key, f"get -r {snap(T)}/w {snap_sftp}\n")
    assert r.returncode == 0, f"sftp get -r out of /.snapshots: {out(r)}"
    r = diff_r(copy_t, snap_sftp)
    assert r.returncode == 0, f"sftp get -r of the snapshot equals the copy taken at T: {out(r)}"

    # rsync out of an sshfs mount of the snapshot (OpenSSH's SFTP client in the kernel's VFS)
    mnt = d.path("sshfs")
    os.makedirs(mnt)
    r = run(["sshfs", "-p", str(d.sport), "-o",
             f"IdentityFile={key},IdentitiesOnly=yes,StrictHostKeyChecking=no,"
             "UserKnownHostsFile=/dev/null,BatchMode=yes", f"{user}@{HOST}:/", mnt], timeout=30)
    assert r.returncode == 0, f"sshfs mount: {out(r)}"
    try:
        snap_rsync = d.path("snap-rsync")
        r = run(["rsync", "-a", f"{mnt}{snap(T)}/w/", snap_rsync + "/"], timeout=60)
        assert r.returncode == 0, f"rsync -a out of the sshfs mount: {out(r)}"
        r = diff_r(copy_t, snap_rsync)
        assert r.returncode == 0, f"rsync of the snapshot equals the copy taken at T: {out(r)}"
        with pytest.raises(PermissionError):
            with open(f"{mnt}{snap(T)}/w/new.txt", "w") as fh:
                fh.write("x")
    finally:
        run(["fusermount", "-u", mnt], timeout=30)

    # roll back over HTTP to T
    rep = http_json(d, user, "POST", "/api/v1/rollback", "-H", "Content-Type: application/json",
                    "--data", json.dumps({"path": "/w", "at": iso(T)}))
    assert rep["path"] == "/w" and rep["at"] == iso(T), f"report: {rep}"
    assert (rep["restored"], rep["revived"], rep["moved"], rep["trashed"]) == (3, 2, 1, 3), \
        f"3 files restored, 2 brought back, 1 moved back, sftp-new + n.txt + now-full.txt trashed: {rep}"
    after = mirror(d, user, "/w", d.path("roll-after"))
    r = diff_r(copy_t, after)
    assert r.returncode == 0, f"the tree equals the copy taken at T: {out(r)}"
    paths = sorted(i["path"] for i in trash_items(d, user))
    assert paths == ["/w/docs/empty/now-full.txt", "/w/sftp-new"], f"what came after T is in the trash: {paths}"

    # roll back the rollback
    rep2 = http_json(d, user, "POST", "/api/v1/rollback", "--data",
                     json.dumps({"path": "/w", "at": rep["undo_at"]}))
    assert rep2["trashed"] == 2 and rep2["revived"] >= 3, f"undo report: {rep2}"
    undone = mirror(d, user, "/w", d.path("roll-undone"))
    r = diff_r(before_rb, undone)
    assert r.returncode == 0, f"the rollback rolled back gives the tree just before it: {out(r)}"

    # and once more with storagectl, to T again
    r = d.ctl("rollback", user, "/w", "--at", iso(T))
    assert "rolled back /w to" in r.stdout and "undo with: storagectl rollback" in r.stdout, out(r)
    again = mirror(d, user, "/w", d.path("roll-again"))
    r = diff_r(copy_t, again)
    assert r.returncode == 0, f"storagectl rollback gives the tree at T: {out(r)}"
    r = d.ctl("fsck")
    assert r.returncode == 0, f"fsck clean after the rollbacks: {out(r)}"

    # a copy made by storagectl replicate has the same tree, trash, versions and past
    copy_dir = d.path("replica")
    r = d.ctl("replicate", "--to", copy_dir)
    assert r.returncode == 0, f"replicate: {out(r)}"
    copy_conf = d.path("replica.conf")
    with open(copy_conf, "w") as fh:
        fh.write(f"[storaged]\ndata_dir = {copy_dir}\n")

    def both(*args):
        a = d.ctl(*args).stdout
        b = run([STORAGECTL, "-c", copy_conf, *args])
        assert b.returncode == 0, f"storagectl {args} on the copy: {out(b)}"
        return a, b.stdout

    def no_ids(text):
        return [{k: v for k, v in o.items() if k not in ("id", "name")} for o in json.loads(text)]

    for args in (("ls", user, "/w", "--json"), ("ls", user, "/w/docs", "--json"),
                 ("ls", user, snap(T) + "/w", "--json"), ("ls", user, "/.snapshots", "--json")):
        a, b = both(*args)
        assert a == b, f"storagectl {' '.join(args)}: source\n{a}\ncopy\n{b}"
    a, b = both("trash", user, "--json")
    assert no_ids(a) == no_ids(b) and len(no_ids(a)) == 2, f"same trash: {a} / {b}"
    a, b = both("versions", user, "/w/ftp-edit.txt", "--json")
    va, vb = no_ids(a), no_ids(b)
    assert [(x["ts"], x["sha256"], x["op"]) for x in va] == [(x["ts"], x["sha256"], x["op"]) for x in vb], \
        f"same versions: {a} / {b}"
    r = run([STORAGECTL, "-c", copy_conf, "fsck"])
    assert r.returncode == 0, f"fsck of the copy: {out(r)}"


def test_rollback_refusals(histd):
    d, user = histd, "rollbad"
    new_user(d, user)
    write_over(d, "http", user, "/f.txt", b"f")
    for body in ('{"path": "/f.txt"}', '{"at": "2026-01-01T00:00:00Z"}', "not json",
                 '{"path": "/f.txt", "at": "yesterday"}', '{"path": 5, "at": 0}'):
        r = http(d, user, "POST", "/api/v1/rollback", "--data", body)
        assert r.code == 400 and r.json()["error"] in ("bad_json", "bad_time"), f"{body}: {r}"
    r = http(d, user, "POST", "/api/v1/rollback", "--data",
             json.dumps({"path": "/f.txt", "at": "2000-01-01T00:00:00Z"}))
    assert r.code == 410 and r.json()["error"] == "history_gone", f"before the horizon: {r}"
    r = http(d, user, "POST", "/api/v1/rollback", "--data",
             json.dumps({"path": "/.snapshots", "at": iso(ms_now())}))
    assert r.code == 403, f"not inside a virtual folder: {r}"
    r = d.ctl("rollback", user, "/f.txt", "--at", "noon", check=False)
    assert r.returncode == 2 and "bad time" in r.stderr, f"storagectl refuses a bad time: {out(r)}"
    assert read_over(d, "http", user, "/f.txt") == b"f", "nothing changed"


# ---------------------------------------------------------------- 4. refusals

def test_virtual_folders_read_only(histd, keydir):
    d, user = histd, "ro"
    key = new_user(d, user, keydir)
    write_over(d, "http", user, "/keep.txt", b"keep\n")
    write_over(d, "http", user, "/del.txt", b"deleted\n")
    at = between_changes()
    assert http(d, user, "DELETE", "/api/v1/fs/del.txt").code == 204
    item = trash_items(d, user)[0]
    tdir = f"/.trash/{item['name']}"
    sdir = snap(at)

    # FTP: 550 for every write
    f = ftp_login(d.fport, user, PW)
    try:
        assert ftp_get(f, f"{sdir}/keep.txt") == b"keep\n", "RETR from a snapshot"
        assert ftp_get(f, tdir) == b"deleted\n", "RETR of a trash item"
        for cmd in (f"STOR {sdir}/new.txt", f"STOR {tdir}", "STOR /.trash/new.txt",
                    "STOR /.snapshots/x"):
            try:
                f.storbinary(cmd, io.BytesIO(b"x"))
                code = "2xx"
            except ftplib.error_perm as e:
                code = str(e)[:3]
            assert code == "550", f"{cmd}: {code}"
        for line in (f"MKD {sdir}/d", "MKD /.trash/d", "MKD /.snapshots", f"DELE {sdir}/keep.txt",
                     f"DELE {tdir}", f"RMD {sdir}", "RMD /.trash", f"SITE CHMOD 777 {sdir}/keep.txt",
                     f"MFMT 20200101000000 {tdir}"):
            try:
                code = f.sendcmd(line)[:3]
            except ftplib.error_perm as e:
                code = str(e)[:3]
            assert code == "550", f"{line}: {code}"
        for src, dst in ((f"{sdir}/keep.txt", "/k2.txt"), ("/keep.txt", f"{sdir}/k.txt"),
                         (tdir, "/.trash/renamed"), ("/keep.txt", "/.trash/k.txt")):
            try:
                f.sendcmd(f"RNFR {src}")
                code = f.sendcmd(f"RNTO {dst}")[:3]
            except ftplib.error_perm as e:
                code = str(e)[:3]
            assert code == "550", f"RNFR {src} RNTO {dst}: {code}"
    finally:
        f.quit()

    # SFTP (paramiko): permission denied
    with SftpSession(d.sport, user, PW) as s:
        assert s.open(f"{sdir}/keep.txt").read() == b"keep\n", "read from a snapshot"
        attempts = [lambda: s.putfo(io.BytesIO(b"x"), f"{sdir}/new.txt"),
                    lambda: s.putfo(io.BytesIO(b"x"), "/.trash/new.txt"),
                    lambda: s.mkdir(f"{sdir}/d"), lambda: s.remove(f"{sdir}/keep.txt"),
                    lambda: s.remove(tdir), lambda: s.rmdir(sdir),
                    lambda: s.rename(f"{sdir}/keep.txt", "/k3.txt"),
                    lambda: s.rename(tdir, "/.trash/other"),
                    lambda: s.rename("/keep.txt", f"{sdir}/k.txt"),
                    lambda: s.chmod(f"{sdir}/keep.txt", 0o600),
                    lambda: s.open(f"{sdir}/keep.txt", "r+")]
        for i, fn in enumerate(attempts):
            with pytest.raises(PermissionError):
                fn()
    # OpenSSH sftp says so too
    local = d.path("ro-local.txt")
    with open(local, "w") as fh:
        fh.write("x")
    r = sftp_batch(d.sport, user, key, f"put {local} {sdir}/new.txt\n")
    assert r.returncode != 0 and "ermission denied" in out(r), f"OpenSSH sftp put refused: {out(r)}"

    # HTTP: 403
    for method, path in (("PUT", f"{sdir}/new.txt"), ("PUT", "/.trash/new.txt"),
                         ("DELETE", f"{sdir}/keep.txt"), ("DELETE", tdir),
                         ("POST", f"{sdir}/d?op=mkdir"), ("POST", f"{tdir}?op=move&to=/.trash/zz"),
                         ("POST", f"{sdir}/keep.txt?op=chmod&mode=0600"),
                         ("POST", f"/keep.txt?op=move&to={sdir}/k.txt")):
        r = http(d, user, method, "/api/v1/fs" + path, "--data-binary", "x")
        assert r.code == 403 and r.json()["error"] in ("read_only", "forbidden"), \
            f"HTTP {method} {path}: {r}"

    # nothing changed anywhere
    assert trash_items(d, user) == [item], "the trash item is still there, unchanged"
    lst = http_json(d, user, "GET", "/api/v1/fs" + sdir)
    assert [e["name"] for e in lst["entries"]] == ["del.txt", "keep.txt"], f"snapshot unchanged: {lst}"
    lst = http_json(d, user, "GET", "/api/v1/fs/")
    assert [e["name"] for e in lst["entries"]] == ["keep.txt"], f"live tree unchanged: {lst}"


# ---------------------------------------------------------------- 5. isolation

def test_other_users_history_unreachable(histd):
    d = histd
    new_user(d, "iso-a")
    new_user(d, "iso-b")
    write_over(d, "http", "iso-a", "/secret.txt", b"a's v1")
    write_over(d, "http", "iso-a", "/secret.txt", b"a's v2")
    write_over(d, "http", "iso-b", "/mine.txt", b"b's")
    at = between_changes()
    assert http(d, "iso-a", "DELETE", "/api/v1/fs/secret.txt").code == 204
    item = trash_items(d, "iso-a")[0]
    # bob: no versions of a's file, no item of a's trash, his own snapshots only
    r = http(d, "iso-b", "GET", "/api/v1/versions/secret.txt")
    assert r.code == 404, f"another user's versions: {r}"
    for method, q in (("GET", ""), ("POST", "?op=restore"), ("POST", "?op=purge"), ("DELETE", "")):
        r = http(d, "iso-b", method, f"/api/v1/trash/{item['id']}{q}")
        assert r.code == 404, f"{method} another user's trash item: {r}"
    assert trash_items(d, "iso-b") == [], "bob's trash is his own"
    lst = http_json(d, "iso-b", "GET", "/api/v1/fs/?at=" + iso(at))
    assert [e["name"] for e in lst["entries"]] == ["mine.txt"], f"bob's past is his own: {lst}"
    r = http(d, "iso-b", "GET", "/api/v1/fs/secret.txt?at=" + iso(at))
    assert r.code == 404, f"a's file is not in bob's past: {r}"
    f = ftp_login(d.fport, "iso-b", PW)
    try:
        assert f.nlst("/.trash") == [], "bob's /.trash over FTP is empty"
        with pytest.raises(ftplib.error_perm) as e:
            ftp_get(f, f"/.trash/{item['name']}")
        assert str(e.value).startswith("550"), f"RETR of a's trash item: {e.value}"
        with pytest.raises(ftplib.error_perm):
            ftp_get(f, snap(at) + "/secret.txt")
    finally:
        f.quit()
    with SftpSession(d.sport, "iso-b", PW) as s:
        with pytest.raises(FileNotFoundError):
            s.stat(f"/.trash/{item['name']}")
        assert s.listdir(snap(at)) == ["mine.txt"], "bob's snapshot over SFTP"
        with pytest.raises(FileNotFoundError):
            s.rename(f"/.trash/{item['name']}", "/stolen.txt")
    assert trash_items(d, "iso-a") == [item], "a's item untouched"
    assert read_over(d, "http", "iso-a", snap(at) + "/secret.txt") == b"a's v2", \
        "a reads her own past"


def test_anonymous_ftp_sees_no_history(make_daemon):
    port = free_port()
    d = make_daemon({"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}", "anonymous": "yes",
                             "anonymous_user": "pub"}}, name="history-anon")
    d.add_user("pub", PW)
    f = ftp_login(port, "pub", PW)
    try:
        ftp_put(f, "notes.txt", b"old notes")
        ftp_put(f, "notes.txt", b"public notes")
        ftp_put(f, "private.txt", b"deleted by mistake")
        f.delete("private.txt")
        assert f.nlst("/.trash") != [], "the owner sees the deleted file in /.trash"
    finally:
        f.quit()
    a = ftp_login(port, "anonymous", "guest@example.org")
    try:
        assert ftp_get(a, "notes.txt") == b"public notes", "anonymous reads the live file"
        for cmd in ("CWD /.trash", "CWD /.snapshots", "MLST /.trash", "SIZE /.snapshots"):
            try:
                code = a.sendcmd(cmd)[:3]
            except ftplib.error_perm as e:
                code = str(e)[:3]
            assert code == "550", f"anonymous {cmd}: {code}"
        with pytest.raises(ftplib.error_perm):
            a.nlst("/.trash")
    finally:
        a.quit()


# ---------------------------------------------------------------- 6. hidden

def test_hidden_from_root_listing(histd, make_daemon):
    d, user = histd, "hide"
    new_user(d, user)
    write_over(d, "http", user, "/visible.txt", b"v")
    f = ftp_login(d.fport, user, PW)
    try:
        assert f.nlst("/") == ["visible.txt"], "FTP NLST / hides them"
        assert [n for n, _ in f.mlsd("/")] == ["visible.txt"], "MLSD / hides them"
        f.cwd("/.snapshots")  # reachable by name
        assert f.pwd() == "/.snapshots", "CWD into /.snapshots"
        days = f.nlst()
        assert len(days) == 1 and len(days[0]) == 10, f"one day listed: {days}"
    finally:
        f.quit()
    with SftpSession(d.sport, user, PW) as s:
        assert s.listdir("/") == ["visible.txt"], "SFTP hides them"
        assert s.stat("/.trash").st_mode & 0o777 == 0o555, "reachable, read-only"
    lst = http_json(d, user, "GET", "/api/v1/fs/")
    assert [e["name"] for e in lst["entries"]] == ["visible.txt"], f"HTTP hides them: {lst}"

    port = free_port()
    e = make_daemon({"ftp": {"enabled": "yes", "listen": f"{HOST}:{port}"}},
                    storaged={"show_history_folders": "yes"}, name="history-shown")
    e.add_user("shown", PW)
    f = ftp_login(port, "shown", PW)
    try:
        ftp_put(f, "a.txt", b"a")
        assert f.nlst("/") == [".snapshots", ".trash", "a.txt"], "listed with show_history_folders"
    finally:
        f.quit()


# ---------------------------------------------------------------- 7. ?at=, horizon, cleaner

def test_http_at_and_cleaner(histd):
    d, user = histd, "atuser"
    new_user(d, user)
    write_over(d, "http", user, "/dir/a.txt", b"first a\n")
    t1 = between_changes()
    write_over(d, "http", user, "/dir/a.txt", b"second a\n")
    write_over(d, "http", user, "/dir/b.txt", b"b\n")
    r = http(d, user, "GET", "/api/v1/fs/dir/a.txt?at=" + iso(t1))
    assert r.code == 200 and r.body == b"first a\n", f"GET ?at= of a file: {r}"
    etag = '"%s"' % sha(b"first a\n")
    assert r.header("ETag") == etag, f"its ETag is its content of then: {r.headers}"
    lst = http_json(d, user, "GET", "/api/v1/fs/dir?at=" + iso(t1))
    assert [e["name"] for e in lst["entries"]] == ["a.txt"] and lst["at"] == iso(t1), f"listing: {lst}"
    st = http_json(d, user, "GET", "/api/v1/stat/dir/a.txt?at=" + iso(t1).replace("Z", "%2B00:00"))
    assert st["size"] == 8 and st["mode"] == "0444", f"stat ?at= (offset form): {st}"
    st = http_json(d, user, "GET", f"/api/v1/stat/dir/a.txt?at={t1}")
    assert st["size"] == 8, f"?at= in ms: {st}"
    r = http(d, user, "GET", "/api/v1/fs/dir?at=2000-01-01T00:00:00Z")
    assert r.code == 410 and r.json()["error"] == "history_gone", f"before the horizon: {r}"
    for bad in ("noon", "2026-13-01T00:00:00Z", ""):
        r = http(d, user, "GET", "/api/v1/fs/dir?at=" + bad)
        assert r.code == 400 and r.json()["error"] == "bad_time", f"?at={bad}: {r}"

    # gc --now never removes what a kept version names
    r = d.ctl("gc", "--now", "--json")
    assert r.returncode == 0, out(r)
    r = http(d, user, "GET", "/api/v1/fs/dir/a.txt?at=" + iso(t1))
    assert r.code == 200 and r.body == b"first a\n", f"old content still readable after gc --now: {r}"
    vs = http_json(d, user, "GET", "/api/v1/versions/dir/a.txt")["versions"]
    http_json(d, user, "POST", f"/api/v1/versions/dir/a.txt?op=restore&version={vs[-1]['id']}")
    assert read_over(d, "ftp", user, "/dir/a.txt") == b"first a\n", "restored after gc --now"
    r = d.ctl("fsck")
    assert r.returncode == 0, f"fsck: {out(r)}"
