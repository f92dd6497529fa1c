"""The journal you can trust and replay (issue 20): storagectl journal verify / export and
replicate, against the real daemon and real clients.

Covers: a row edited or removed with the sqlite3 shell is named by `journal verify`
(exit 1), an intact journal exits 0; `journal export` lines parse, carry content addresses,
and chain by the byte form of core/journal.c recomputed here in python; replicate follows a
primary changed over FTP (ftplib), SFTP (OpenSSH sftp) and HTTP (curl): uploads,
overwrites, renames, deletes, chmod, mtimes, copies, plus users, keys and tokens; the copy,
served by its own daemon, answers the same trees over HTTP, the same logins over HTTP and
SFTP, and passes fsck and journal verify; replicating twice changes nothing; kill -9 of a
replicate mid-way, then a rerun: the copy is complete and fsck-clean; a tampered or
rewritten source is refused.
"""
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import base64

import pytest

from conftest import (HOST, STORAGECTL, curl, free_port, ftp_login, ftp_put, out, run,
                      sftp_batch, ssh_keygen, write_random)

ALICE = ("alice", "alice-pw-1")
BOB = ("bob", "bob-pw-1")


def sections(http=True, ftp=True, sftp=True):
    s = {}
    if ftp:
        s["ftp"] = {"enabled": "yes", "listen": f"{HOST}:{free_port()}"}
    if sftp:
        s["sftp"] = {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{free_port()}"}
    if http:
        s["http"] = {"enabled": "yes", "module": "http", "listen": f"{HOST}:{free_port()}"}
    return s


def port_of(d, section):
    return int(d.sections[section]["listen"].rsplit(":", 1)[1])


def sqlite(d, q):
    """The sqlite3 shell on a daemon's database, as an operator would use it."""
    r = run(["sqlite3", os.path.join(d.data, "storaged.db"), q])
    if r.returncode != 0:
        raise AssertionError(f"sqlite3 {q}: {out(r)}")
    return r.stdout.strip()


# ---------------------------------------------------------------- HTTP helpers

def http(base, path, user=None, token=None, method="GET"):
    """(status, body bytes) of one request with basic auth or a bearer token."""
    req = urllib.request.Request(base + path, method=method)
    if user:
        cred = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        req.add_header("Authorization", "Basic " + cred)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_tree(d, user):
    """Every node of user's tree as the daemon d serves it over HTTP: path -> the stat
    object (kind, size, mode, mtime, ctime, sha256, versions), plus for files the SHA-256
    of the bytes a download returns."""
    base = f"http://{HOST}:{port_of(d, 'http')}"
    tree = {}

    def walk(dirpath):
        after = None
        while True:
            q = "?limit=500" + (f"&after={urllib.parse.quote(after)}" if after else "")
            code, body = http(base, "/api/v1/fs" + urllib.parse.quote(dirpath) + q, user)
            if code != 200:
                raise AssertionError(f"listing {dirpath} on {d.tmp}: {code} {body[:200]}")
            j = json.loads(body)
            for e in j["entries"]:
                p = (dirpath.rstrip("/") + "/" + e["name"])
                code, body = http(base, "/api/v1/stat" + urllib.parse.quote(p), user)
                if code != 200:
                    raise AssertionError(f"stat {p}: {code} {body[:200]}")
                st = json.loads(body)
                st.pop("path", None)
                if st["kind"] == "file":
                    code, data = http(base, "/api/v1/fs" + urllib.parse.quote(p), user)
                    if code != 200:
                        raise AssertionError(f"download {p}: {code}")
                    st["served_sha256"] = hashlib.sha256(data).hexdigest()
                tree[p] = st
                if st["kind"] == "dir":
                    walk(p)
            if not j.get("more"):
                break
            after = j["next"]

    walk("/")
    return tree


def ctl_tree(d, user, path="/"):
    """user's tree through storagectl ls --json (no daemon needed): path -> entry."""
    tree = {}
    r = d.ctl("ls", user, path, "--json")
    for e in json.loads(r.stdout):
        p = path.rstrip("/") + "/" + e["name"]
        tree[p] = e
        if e["kind"] == "dir":
            tree.update(ctl_tree(d, user, p))
    return tree


def fsck_clean(d, label):
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0 and "fsck: clean" in r.stdout, f"{label}: fsck clean: {out(r)}"


def replicate(src, to, *args, check=True):
    r = src.ctl("replicate", "--to", to, *args, check=False)
    if check:
        assert r.returncode == 0, f"replicate --to {to}: {out(r)}"
    return r


# ---------------------------------------------------------------- the chain in python

def chain_check(lines, prev=bytes(32), seq=0):
    """Recompute the chain of export lines by core/journal.c's canonical form; returns the
    list of seqs whose link does not hold."""
    bad = []
    for j in lines:
        m = hashlib.sha256(b"storaged-journal-1\n" + bytes.fromhex(j["prev"]) +
                           struct.pack(">qq", j["seq"], j["ts_ms"]))
        args = j["args"]
        # args as stored: compact JSON, members in order (journal.c, "args text")
        fields = [j["user"], j["op"], j["path"], j["detail"],
                  None if args is None else json.dumps(args, separators=(",", ":"),
                                                       ensure_ascii=False)]
        for f in fields:
            if f is None:
                m.update(b"\0")
            else:
                b = f.encode()
                m.update(b"\1" + struct.pack(">I", len(b)) + b)
        if j["seq"] != seq + 1 or bytes.fromhex(j["prev"]) != prev or m.hexdigest() != j["hash"]:
            bad.append(j["seq"])
        prev, seq = bytes.fromhex(j["hash"]), j["seq"]
    return bad


def export(d, *args):
    r = d.ctl("journal", "export", *args)
    lines = []
    for line in r.stdout.splitlines():
        lines.append(json.loads(line))
    return lines


# ---------------------------------------------------------------- verify

def test_verify_names_the_edited_row(make_daemon):
    d = make_daemon(start=False, name="jverify")
    d.add_user(*ALICE)
    src = write_random(d.path("f.bin"), 5000)
    for i in range(5):
        d.ctl("put", "alice", src, f"/f{i}.bin")
    d.ctl("mkdir", "alice", "/dir")
    r = d.ctl("journal", "verify", check=False)
    assert r.returncode == 0 and "intact: 7 rows, seq 1..7" in r.stdout, f"intact journal: {out(r)}"
    j = json.loads(d.ctl("journal", "verify", "--json").stdout)
    assert j["intact"] is True and j["rows"] == 7 and j["bad_seq"] is None, f"--json: {j}"

    # one row edited by hand: verify names it, exit 1
    sqlite(d, "UPDATE journal SET path='/f9.bin' WHERE seq=4")
    r = d.ctl("journal", "verify", check=False)
    assert r.returncode == 1, f"edited journal: exit 1: {out(r)}"
    assert "broken at seq 4" in r.stdout and "edited" in r.stdout, f"names row 4: {out(r)}"
    assert "storagectl: journal verify: the chain breaks at seq 4" in r.stderr, out(r)
    j = json.loads(d.ctl("journal", "verify", "--json", check=False).stdout)
    assert j["intact"] is False and j["bad_seq"] == 4 and j["last"] == 3, f"--json: {j}"
    # changes go on, the break stays evident
    d.ctl("put", "alice", src, "/after.bin")
    r = d.ctl("journal", "verify", check=False)
    assert r.returncode == 1 and "broken at seq 4" in r.stdout, f"still row 4: {out(r)}"
    sqlite(d, "UPDATE journal SET path='/f2.bin' WHERE seq=4")
    r = d.ctl("journal", "verify", check=False)
    assert r.returncode == 0, f"edit undone: intact again: {out(r)}"

    # a row removed by hand: the break is named at the next row
    sqlite(d, "DELETE FROM journal WHERE seq=6")
    r = d.ctl("journal", "verify", check=False)
    assert r.returncode == 1 and "broken at seq 7: rows 6..6 are missing" in r.stdout, \
        f"removed row 6: {out(r)}"


def test_export_lines_chain_and_name_contents(make_daemon):
    d = make_daemon(start=False, name="jexport")
    d.add_user(*ALICE)
    data = write_random(d.path("a.bin"), 12345)
    d.ctl("put", "alice", data, "/a b/c.bin")
    d.ctl("mkdir", "alice", "/m", "-p")
    d.ctl("rm", "alice", "/a b", "-r")
    # a key whose comment needs JSON escapes: quotes, a backslash, a tab, non-ASCII
    comment = 'alice "laptop" c:\\keys\tcafé'
    keyf = d.path("k.pub")
    with open(keyf, "w", encoding="utf-8") as f:
        f.write("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
                + comment + "\n")
    d.add_key("alice", keyf)
    lines = export(d)
    assert [j["op"] for j in lines] == ["user_add", "write", "mkdir", "rmdir", "key_add"], \
        f"one line per change: {lines}"
    assert lines[4]["args"]["key"].endswith(comment), f"the key line, comment and all: {lines[4]}"
    w = lines[1]
    assert w["path"] == "/a b/c.bin" and w["args"]["size"] == 12345 and \
        w["args"]["sha256"] == hashlib.sha256(open(data, "rb").read()).hexdigest(), \
        f"a write names its content address and size: {w}"
    assert w["args"]["mode"] == "0644" and isinstance(w["args"]["mtime"], int), w
    assert lines[2]["args"] == {"mode": "0755"} and lines[3]["args"] == {"recursive": 1}, lines
    # the chain, recomputed here from the export alone by journal.c's byte form
    assert chain_check(lines) == [], "export's prev/hash chain by journal.c's byte form"
    lines[1]["args"]["size"] += 1
    assert chain_check(lines) == [2], "and a changed line does not"
    assert [j["seq"] for j in export(d, "--since", "2")] == [3, 4, 5], "--since SEQ: rows after it"
    assert export(d, "--since", "5") == [], "--since the last seq: nothing"
    r = d.ctl("journal", "export", "--since", "x", check=False)
    assert r.returncode == 2 and "bad SEQ" in r.stderr, f"bad --since: usage error: {out(r)}"


# ---------------------------------------------------------------- replicate over the protocols

def ftp_changes(d, first):
    f = ftp_login(port_of(d, "ftp"), *ALICE)
    try:
        if first:
            f.mkd("ftp")
            ftp_put(f, "ftp/one.txt", b"one over ftp\n")
            ftp_put(f, "ftp/two.txt", b"two over ftp\n")
            ftp_put(f, "ftp/three.txt", b"three\n")
        else:
            ftp_put(f, "ftp/one.txt", b"one over ftp, second version\n")
            f.rename("ftp/two.txt", "ftp/two-renamed.txt")
            f.delete("ftp/three.txt")
            assert f.sendcmd("SITE CHMOD 600 ftp/one.txt").startswith("200"), "SITE CHMOD"
            assert f.sendcmd("MFMT 20200102030405 ftp/two-renamed.txt").startswith("213"), "MFMT"
    finally:
        f.quit()


def sftp_changes(d, key, first):
    port = port_of(d, "sftp")
    local = d.path("sftp-up.bin")
    write_random(local, 300000)
    batch = (f"mkdir sftp\nput {local} sftp/big.bin\nput {local} sftp/dup.bin\n"
             f"mkdir sftp/sub\nput {local} sftp/sub/x.bin\n" if first else
             f"chmod 640 sftp/big.bin\nrename sftp/dup.bin sftp/sub/dup.bin\nrm sftp/sub/x.bin\n"
             f"mkdir sftp/new\nput {local} sftp/new/y.bin\n")
    r = sftp_batch(port, "alice", key, batch)
    assert r.returncode == 0, f"sftp changes: {out(r)}"


def http_changes(d, first):
    base = f"http://{HOST}:{port_of(d, 'http')}/api/v1/fs"
    u = ["-u", f"{BOB[0]}:{BOB[1]}"]
    if first:
        data = write_random(d.path("http.bin"), 2 << 20)
        for p in ("/http/a.bin", "/http/b.bin", "/http/old/c.bin"):
            r = curl(*u, "-T", data, base + p + "?parents=1")
            assert r.code in (200, 201), f"PUT {p}: {r}"
    else:
        r = curl(*u, "-T", "-", base + "/http/a.bin", input=b"a, replaced over http")
        assert r.code in (200, 201), f"PUT overwrite: {r}"
        r = curl(*u, "-X", "POST", base + "/http/b.bin?op=move&to=/http/moved/b.bin")
        assert r.code == 409 or r.code == 404 or r.code == 200, f"move into a missing dir: {r}"
        r = curl(*u, "-X", "POST", base + "/http/moved?op=mkdir")
        assert r.code == 201, f"mkdir: {r}"
        r = curl(*u, "-X", "POST", base + "/http/b.bin?op=move&to=/http/moved/b.bin")
        assert r.code == 200, f"move: {r}"
        r = curl(*u, "-X", "POST", base + "/http/a.bin?op=copy&to=/http/a-copy.bin")
        assert r.code == 201, f"copy: {r}"
        r = curl(*u, "-X", "POST", base + "/http/a-copy.bin?op=chmod&mode=0600")
        assert r.code == 200, f"chmod: {r}"
        r = curl(*u, "-X", "DELETE", base + "/http/old?recursive=1")
        assert r.code == 204, f"DELETE recursive: {r}"


@pytest.mark.timeout(600)
def test_replicate_follows_changes_over_every_protocol(make_daemon, tmp_path):
    key = ssh_keygen(str(tmp_path / "alice_key"), comment="alice")
    prim = make_daemon(sections(), name="jprim")
    prim.add_user(*ALICE)
    prim.add_user(*BOB, "--quota", "100M")
    prim.add_key("alice", key + ".pub")
    ro_token = prim.token("bob", "--scope", "ro")

    ftp_changes(prim, True)
    sftp_changes(prim, key, True)
    http_changes(prim, True)

    # the copy: a data directory the primary's storagectl replicates into while the
    # primary runs; its own daemon later serves it
    copy = make_daemon(sections(ftp=False), name="jcopy", start=False)
    r = replicate(prim, copy.data)
    m = re.search(r"now at seq ([0-9]+) of source ([0-9a-f]{32}) \(was 0\): ([0-9]+) rows", r.stdout)
    assert m, f"first run reports its rows: {out(r)}"
    first_seq = int(m.group(1))
    assert first_seq == int(m.group(3)) and first_seq > 10, f"every row applied: {out(r)}"

    # change the primary over every protocol, and its users, keys and tokens
    ftp_changes(prim, False)
    sftp_changes(prim, key, False)
    http_changes(prim, False)
    rw_token = prim.token("bob")
    revoked = prim.ctl("token", "list", "bob", "--json")
    prim.ctl("token", "revoke", str(json.loads(revoked.stdout)[0]["id"]))  # the ro token
    prim.ctl("user", "quota", "bob", "200M")
    prim.ctl("user", "passwd", "alice", "--password-stdin", input="alice-pw-2\n")
    prim.ctl("user", "add", "carol", "--password-stdin", "--admin", input="carol-pw-1\n")
    # issue 11's account changes replay too: a key removed by fingerprint,
    # and a user deleted (a second key and user made for it)
    dkey = str(tmp_path / "dave_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dkey], check=True)
    prim.ctl("user", "add", "dave", "--password-stdin", input="dave-pw-1\n")
    prim.ctl("user", "key", "add", "dave", dkey + ".pub")
    fp = json.loads(prim.ctl("user", "key", "list", "dave", "--json").stdout)[0]["fingerprint"]
    prim.ctl("user", "key", "remove", "dave", fp)
    prim.ctl("user", "add", "erin", "--password-stdin", input="erin-pw-1\n")
    prim.ctl("user", "delete", "erin")

    # the copy written as a config file this time
    copy.write_conf()
    r = replicate(prim, copy.conf)
    m = re.search(r"now at seq ([0-9]+) .* \(was ([0-9]+)\): ([0-9]+) rows", r.stdout)
    assert m and int(m.group(2)) == first_seq and int(m.group(3)) == int(m.group(1)) - first_seq, \
        f"second run: only what changed since the first: {out(r)}"
    head = int(m.group(1))

    # twice: nothing changes (no row, same journal, same position)
    before = (sqlite(copy, "SELECT count(*), max(seq) FROM journal"),
              sqlite(copy, "SELECT seq, hex(hash) FROM replica"))
    r = replicate(prim, copy.data)
    assert f"is up to date with source" in r.stdout and f"at seq {head}" in r.stdout, out(r)
    after = (sqlite(copy, "SELECT count(*), max(seq) FROM journal"),
             sqlite(copy, "SELECT seq, hex(hash) FROM replica"))
    assert before == after, f"a second run writes nothing: {before} -> {after}"

    fsck_clean(copy, "copy")
    r = copy.ctl("journal", "verify", check=False)
    assert r.returncode == 0, f"the copy's own journal verifies: {out(r)}"

    # the copy serves the same trees over HTTP
    copy.start()
    alice2 = ("alice", "alice-pw-2")
    for user in (alice2, BOB):
        a, b = http_tree(prim, user), http_tree(copy, user)
        assert a and a == b, (f"{user[0]}: same tree over HTTP on both:\nprimary {a}\n"
                              f"copy {b}")
        for p, st in b.items():
            if st["kind"] == "file":
                assert st["served_sha256"] == st["sha256"], f"{p}: served bytes match"
    t = http_tree(copy, alice2)
    assert t["/ftp/one.txt"]["mode"] == "0600" and t["/ftp/one.txt"]["versions"] == 2, t
    assert t["/ftp/two-renamed.txt"]["mtime"] == 1577934245, t["/ftp/two-renamed.txt"]
    assert "/ftp/three.txt" not in t and "/sftp/sub/x.bin" not in t, "deletes replicated"
    assert t["/sftp/big.bin"]["mode"] == "0640" and "/sftp/sub/dup.bin" in t, t
    tb = http_tree(copy, BOB)
    assert "/http/old" not in tb and "/http/moved/b.bin" in tb and \
        tb["/http/a-copy.bin"]["mode"] == "0600", tb

    # the same logins: new password (not the old), tokens, keys over SFTP
    base = f"http://{HOST}:{port_of(copy, 'http')}"
    assert http(base, "/api/v1/me", user=("alice", "alice-pw-1"))[0] == 401, "old password refused"
    code, body = http(base, "/api/v1/me", user=("carol", "carol-pw-1"))
    assert code == 200 and json.loads(body)["admin"] is True, f"carol, an admin, logs in: {body}"
    code, body = http(base, "/api/v1/me", token=rw_token)
    assert code == 200 and json.loads(body)["quota"] == 200 << 20, f"rw token, new quota: {body}"
    assert http(base, "/api/v1/me", token=ro_token)[0] == 401, "the revoked token is refused"
    assert http(base, "/api/v1/me", user=("dave", "dave-pw-1"))[0] == 200, "dave replicated"
    keys = json.loads(copy.ctl("user", "key", "list", "dave", "--json").stdout)
    assert keys == [], f"dave's removed key is removed on the copy too: {keys}"
    assert http(base, "/api/v1/me", user=("erin", "erin-pw-1"))[0] == 401, "erin deleted on the copy"
    users = [u["name"] for u in json.loads(copy.ctl("user", "list", "--json").stdout)]
    assert "erin" not in users and "dave" in users, f"user list of the copy: {users}"
    r = sftp_batch(port_of(copy, "sftp"), "alice", key, "ls /sftp\n")
    assert r.returncode == 0 and "big.bin" in r.stdout, f"alice's key logs in to the copy: {out(r)}"

    # a copy that its own users changed no longer follows: the next row that does not
    # apply stops replicate, named, and the copy keeps its position
    r = curl("-u", "alice:alice-pw-2", "-T", "-", base + "/api/v1/fs/ftp/clash",
             input=b"a file made on the copy")
    assert r.code == 201, f"a change made on the copy itself: {r}"
    ftp_f = ftp_login(port_of(prim, "ftp"), *alice2)
    ftp_f.mkd("ftp/clash")
    ftp_f.quit()
    pos = sqlite(copy, "SELECT seq FROM replica")
    r = replicate(prim, copy.data, check=False)
    assert r.returncode == 1 and \
        re.search(r"seq [0-9]+ \(mkdir alice /ftp/clash\): file exists", r.stderr), \
        f"diverged copy: replicate names the row: {out(r)}"
    assert sqlite(copy, "SELECT seq FROM replica") == pos, "the position did not move"


@pytest.mark.timeout(600)
def test_kill9_replicate_midway_then_rerun(make_daemon):
    prim = make_daemon(name="jkprim", start=False)
    prim.add_user(*ALICE)
    tree = prim.path("tree")
    for i in range(900):
        p = os.path.join(tree, f"d{i % 30}", f"f{i}.txt")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(os.urandom(200 + i))
    for i in range(4):
        write_random(os.path.join(tree, f"big{i}.bin"), 6 << 20)
    prim.ctl("import", "alice", tree, "/t")
    prim.start()   # the primary keeps running through all of it

    copy = make_daemon(sections(ftp=False, sftp=False), name="jkcopy", start=False)
    outf = prim.path("replicate.out")
    with open(outf, "w") as o:
        p = subprocess.Popen([STORAGECTL, "-c", prim.conf, "replicate", "--to", copy.data],
                             stdout=o, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        # kill once the first progress line (256 rows applied) is out, and a random
        # moment later (a row's commit, a content's copy, anywhere)
        for _ in range(600):
            with open(outf) as o:
                if "replicate: at seq" in o.read():
                    break
            if p.poll() is not None:
                break
            time.sleep(0.02)
        time.sleep(random.uniform(0, 0.5))
        finished = p.poll() is not None
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not finished, f"replicate was still running at kill -9: {open(outf).read()}"
    pos = int(sqlite(copy, "SELECT seq FROM replica") or 0)
    head = int(sqlite(prim, "SELECT max(seq) FROM journal"))
    print(f"kill -9 landed at seq {pos} of {head}")
    assert 0 < pos < head, f"killed mid-way: the copy is at {pos} of {head}"
    fsck_clean(copy, "after kill -9")

    r = replicate(prim, copy.data)
    assert f"(was {pos})" in r.stdout and f"now at seq {head}" in r.stdout, \
        f"the rerun resumes at the copy's position: {out(r)}"
    fsck_clean(copy, "after the rerun")
    a, b = ctl_tree(prim, "alice"), ctl_tree(copy, "alice")
    assert len(a) == 935 and a == b, f"complete copy: {len(a)} vs {len(b)} entries"
    r = replicate(prim, copy.data)
    assert "is up to date" in r.stdout, f"and then nothing to do: {out(r)}"
    copy.start()
    t = http_tree(copy, ALICE)
    assert len(t) == 935 and all(s["served_sha256"] == s["sha256"] for s in t.values()
                                 if s["kind"] == "file"), "the copy serves every file"


def test_replicate_refuses_what_it_cannot_trust(make_daemon):
    prim = make_daemon(name="jtprim", start=False)
    prim.add_user(*ALICE)
    data = write_random(prim.path("x"), 1000)
    for i in range(4):
        prim.ctl("put", "alice", data, f"/x{i}")
    copy = make_daemon(name="jtcopy", start=False)
    r = prim.ctl("replicate", check=False)
    assert r.returncode == 2 and "needs --to" in r.stderr, f"no --to: usage error: {out(r)}"
    r = replicate(prim, prim.data, check=False)
    assert r.returncode == 1 and "same data directory" in r.stderr, f"onto itself: {out(r)}"
    replicate(prim, copy.data)

    # a row edited on the source after the copy's position: the run stops before it
    prim.ctl("put", "alice", data, "/y1")
    prim.ctl("put", "alice", data, "/y2")
    sqlite(prim, "UPDATE journal SET path='/evil' WHERE seq=7")
    r = replicate(prim, copy.data, check=False)
    assert r.returncode == 1 and "journal is broken at seq 7" in r.stderr, f"tampered: {out(r)}"
    assert sqlite(copy, "SELECT seq FROM replica") == "6", "rows before it applied"
    assert "/evil" not in ctl_tree(copy, "alice"), "the tampered row was not applied"
    sqlite(prim, "UPDATE journal SET path='/y2' WHERE seq=7")
    replicate(prim, copy.data)

    # the source's journal loses its newest rows (restored from an old backup?): refused
    sqlite(prim, "DELETE FROM journal WHERE seq >= 6")
    r = replicate(prim, copy.data, check=False)
    assert r.returncode == 1 and "ends at seq 5, before the copy's position 7" in r.stderr, out(r)

    # a non-empty data directory that follows nobody is not overwritten
    other = make_daemon(name="jtother", start=False)
    other.add_user("someone", "pw-someone")
    r = replicate(prim, other.data, check=False)
    assert r.returncode == 1 and "not empty" in r.stderr, f"non-empty copy: {out(r)}"
