"""storagectl against the real engine (no front ends).

1. storagectl alone (no daemon): users, import of a generated tree, get of every file back,
   ls, stats (dedup visible), fsck, put/get, rm, a second user importing the same tree adds
   no blobs, quota, bad input, tokens, journal.
2. kill -9 of an import in progress (no daemon), then fsck and every file reported
   "imported" byte-identical; files not reported are either absent or identical (never torn).
3. the same with the daemon running (no front-end sections), plus put/get/ls/stats/fsck
   while it runs, and a clean SIGTERM exit.

Recovery decision after kill -9: nothing is run between the kill and the first `fsck`.
Committed files are durable (commit returned before the line was printed). The killed
import leaves temp files under tmp/ (not counted by fsck; `gc --now` or the daemon's
start-up recovery removes them) and, when the kill lands between a blob's rename into the
store and its row commit, an orphan blob file: complete and correctly named, but without a
row. fsck reports that as an orphan; the daemon's start-up recovery or `fsck --repair`
adopts it. So the test requires: first fsck finds no damage (bad hash, missing, bad refs,
bad usage all 0) and at most one orphan per import worker; `fsck --repair` exits 0; then
fsck is clean (exit 0), also after `gc --now`.
"""
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import time

import pytest

from conftest import STORAGECTL, out, run, same_file, sha256_file, write_random

IMPORTED = re.compile(r"^imported (.*) [0-9]+ [0-9a-f]{64}( dedup)?$")


# ---------------------------------------------------------------- the generated tree

def gentree(root, seed=1, files=200, max_size=3 << 20, big=0, big_size=20 << 20,
            special=True):
    """Write a deterministic test tree; returns {files, distinct, bytes} (regular files).

    Nested directories (up to 4 levels), regular files of varied sizes from 0 B to max_size
    (about a sixth of them duplicates of earlier files, some of them in other directories),
    an empty file, a file with a UTF-8 name and a file with spaces in its name; big adds
    files of big_size random bytes. special adds one symbolic link and one FIFO, which
    import must skip with a warning.
    """
    rnd = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    dirs = [""]
    for i in range(max(3, files // 12)):
        parent = rnd.choice(dirs)
        if parent.count("/") >= 3:
            parent = ""
        name = f"d{i:02d}" if i % 7 else f"dir {i} été"
        d = os.path.join(parent, name) if parent else name
        os.makedirs(os.path.join(root, d), exist_ok=True)
        dirs.append(d)

    def size():
        r = rnd.random()
        if r < 0.35:
            return rnd.randint(1, 4096)
        if r < 0.75:
            return rnd.randint(4097, 256 << 10)
        if r < 0.93:
            return rnd.randint(256 << 10, max(256 << 10, max_size // 2))
        return rnd.randint(max_size // 2, max_size)

    contents, made = [], []

    def put(rel, data):
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(root, rel), rnd.choice([0o644, 0o600, 0o640, 0o755]))
        made.append((rel, hashlib.sha256(data).hexdigest(), len(data)))

    fixed = [("empty.dat", b""),
             ("données naïve ☃.txt", "héllo wörld ☃\n".encode() * 37),
             ("name with spaces.bin", rnd.randbytes(12345))]
    for rel, data in fixed:
        put(rel, data)
    for i in range(files - len(fixed)):
        d = rnd.choice(dirs)
        rel = os.path.join(d, f"f{i:04d}.bin") if d else f"f{i:04d}.bin"
        if contents and rnd.random() < 0.17:
            data = rnd.choice(contents)
        else:
            data = rnd.randbytes(size())
            contents.append(data)
        put(rel, data)
    for i in range(big):
        put(f"big{i:02d}.bin", rnd.randbytes(big_size))
    # fixed mtimes in the past so that preserving them is visible
    for rel, _, _ in made:
        t = 1600000000 + rnd.randint(0, 10 ** 8)
        os.utime(os.path.join(root, rel), (t, t))
    if special:
        os.symlink("empty.dat", os.path.join(root, "link-to-empty"))
        os.mkfifo(os.path.join(root, "a-fifo"))
    return {"files": len(made), "distinct": len({h for _, h, _ in made}),
            "bytes": sum(n for _, _, n in made)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The seed-1 tree of 200 files (with a symlink and a FIFO), shared by the module."""
    root = str(tmp_path_factory.mktemp("core-tree") / "tree")
    info = gentree(root, seed=1, files=200)
    yield root, info
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def store(make_daemon):
    """A fresh data dir and config (the daemon not running) with user alice."""
    d = make_daemon(name="core", start=False)
    d.add_user("alice", "secret1")
    return d


def imported_paths(text):
    return [m.group(1) for m in map(IMPORTED.match, text.splitlines()) if m]


def verify_list(d, user, rroot, lroot, paths):
    """`get` every remote path (under rroot) and compare with the local source;
    returns the list of paths that failed or differ."""
    bad = []
    got = d.path("got")
    for p in paths:
        rel = p[len(rroot) + 1:] if rroot != "/" else p[1:]
        if os.path.exists(got):
            os.unlink(got)
        r = d.ctl("get", user, p, got, check=False)
        if r.returncode != 0 or not same_file(got, os.path.join(lroot, rel)):
            bad.append(p)
    return bad


def users_by_name(d):
    return {u["name"]: u for u in d.ctl_json("user", "list", "--json")}


# ---------------------------------------------------------------- 1. storagectl alone

def test_user_add_and_list(store):
    r = store.ctl("user", "add", "bob", "--password-stdin", "--quota", "10G", "--admin",
                  input="pw2\n", check=False)
    assert r.returncode == 0, f"user add bob --quota --admin: {out(r)}"
    users = users_by_name(store)
    assert sorted(users) == ["alice", "bob"], f"user list shows alice and bob: {sorted(users)}"
    assert (users["bob"]["admin"], users["bob"]["quota"]) == (True, 10737418240), \
        f"bob is admin with quota 10G: {users['bob']}"


def test_import_tree(store, tree):
    src, info = tree
    store.add_user("bob", "pw2")
    r = store.ctl("import", "alice", src, "/tree", check=False)
    assert r.returncode == 0, f"import tree as alice: {out(r)}"
    lines = r.stdout.splitlines()
    assert sum(1 for l in lines if l.startswith("imported ")) == info["files"], \
        "one imported line per regular file"
    assert re.search(rf"^import: {info['files']} files, {info['bytes']} bytes, [0-9]+ dedup hits, "
                     r"2 skipped, 0 errors", r.stdout, re.M), f"summary line printed: {lines[-3:]}"
    assert re.search(r"warning: skipping .*link-to-empty: symbolic link", r.stderr) \
        and "a-fifo" in r.stderr, f"symlink and fifo skipped with a warning: {r.stderr}"
    dedup = sum(1 for l in lines if re.match(r"^imported .* dedup$", l))
    assert dedup == info["files"] - info["distinct"], \
        f"dedup hits in import = files - distinct: {dedup} != {info['files'] - info['distinct']}"
    paths = imported_paths(r.stdout)
    bad = verify_list(store, "alice", "/tree", src, paths)
    assert bad == [], f"every file fetched back byte-identical; differ: {bad[:5]}"

    ls = store.ctl("ls", "alice", "/tree", check=False).stdout
    assert "données naïve ☃.txt" in ls, "ls shows the unicode name"
    assert re.search(r" name with spaces\.bin$", ls, re.M), "ls shows the name with spaces"
    assert re.search(r"^d[rwx-]{9} .* d01/$", ls, re.M), "ls shows dirs with trailing /"
    assert re.search(r"^-[rwx-]{9} +0 .* empty\.dat$", ls, re.M), "ls shows the empty file with size 0"
    assert "link-to-empty" not in ls, "ls does not show the skipped symlink"
    # mode and mtime preserved
    st = os.stat(os.path.join(src, "name with spaces.bin"))
    j = store.ctl_json("ls", "alice", "/tree/name with spaces.bin", "--json")
    assert j[0]["mode"] == "%04o" % (st.st_mode & 0o7777), f"import preserves mode bits: {j[0]}"
    # ls --json gives mtime in seconds, as the REST API does (util/sdjson)
    assert j[0]["mtime"] == int(st.st_mtime), f"import preserves mtime: {j[0]}"

    s = store.ctl_json("stats", "--json")
    assert s["files"] == info["files"], f"stats: files == imported: {s}"
    assert s["logical_bytes"] == info["bytes"], f"stats: logical bytes == tree bytes: {s}"
    assert s["blobs"] == info["distinct"], f"stats: blobs == distinct contents: {s}"
    assert s["stored_bytes"] < s["logical_bytes"] and s["dedup_ratio"] > 1, \
        f"stats: stored < logical (dedup visible): {s}"
    r = store.ctl("stats", check=False)
    assert r.returncode == 0 and re.search(r"^dedup ratio", r.stdout, re.M), \
        f"stats (text) works: {out(r)}"
    r = store.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean: {out(r)}"

    # a second user importing the same tree adds no blobs
    before = (s["blobs"], s["stored_bytes"])
    r = store.ctl("import", "bob", src, check=False)
    assert r.returncode == 0, f"import same tree as bob: {out(r)}"
    dedup = sum(1 for l in r.stdout.splitlines() if re.match(r"^imported .* dedup$", l))
    assert dedup == info["files"], f"bob: every file was a dedup hit ({dedup} of {info['files']})"
    s = store.ctl_json("stats", "--json")
    assert (s["blobs"], s["stored_bytes"]) == before, \
        f"second user's import added no blobs or bytes: {before} -> {s}"
    r = store.ctl("get", "bob", "/données naïve ☃.txt", "-", binary=True, check=False)
    with open(os.path.join(src, "données naïve ☃.txt"), "rb") as f:
        assert r.returncode == 0 and r.stdout == f.read(), \
            "bob's copy of the unicode file is identical"


def test_put_get_rm_mkdir(store):
    single = write_random(store.path("single.bin"), 700000)
    r = store.ctl("put", "alice", single, "/docs/single.bin", check=False)
    assert r.returncode == 0, f"put single file: {out(r)}"
    assert sha256_file(single) in r.stdout, f"put reports the sha256: {r.stdout}"
    r = store.ctl("put", "alice", single, "/docs/again.bin", check=False)
    assert r.returncode == 0 and re.search(r" dedup$", r.stdout, re.M), \
        f"put of the same content reports dedup: {out(r)}"
    got = store.path("single.got")
    r = store.ctl("get", "alice", "/docs/single.bin", got, check=False)
    assert r.returncode == 0, f"get single file: {out(r)}"
    assert same_file(single, got), "got single file identical"
    r = store.ctl("get", "alice", "/docs/again.bin", "-", binary=True, check=False)
    with open(single, "rb") as f:
        assert r.returncode == 0 and r.stdout == f.read(), "get to stdout identical"
    intodir = store.path("intodir")
    os.makedirs(intodir)
    r = store.ctl("get", "alice", "/docs/again.bin", intodir, check=False)
    assert r.returncode == 0 and same_file(os.path.join(intodir, "again.bin"), single), \
        f"get into an existing directory: {out(r)}"
    assert os.listdir(intodir) == ["again.bin"], f"get left no temp files: {os.listdir(intodir)}"
    r = store.ctl("rm", "alice", "/docs/again.bin", check=False)
    assert r.returncode == 0, f"rm file: {out(r)}"
    ls = store.ctl("ls", "alice", "/docs").stdout
    assert "again.bin" not in ls, "ls no longer shows the removed file"
    assert "single.bin" in ls, "ls still shows the other file"
    r = store.ctl("get", "alice", "/docs/again.bin", store.path("x"), check=False)
    assert r.returncode != 0, "get of the removed file fails"
    r = store.ctl("mkdir", "alice", "/emptydir", check=False)
    assert r.returncode == 0, f"mkdir: {out(r)}"
    r = store.ctl("mkdir", "alice", "/a/b/c", "-p", check=False)
    assert r.returncode == 0, f"mkdir -p nested: {out(r)}"
    assert re.search(r"^d.* emptydir/$", store.ctl("ls", "alice", "/").stdout, re.M), \
        "ls shows the new dir"
    r = store.ctl("rm", "alice", "/a", check=False)
    assert r.returncode != 0, "rm of a directory without -r fails"
    r = store.ctl("rm", "alice", "/a", "-r", check=False)
    assert r.returncode == 0, f"rm -r of a directory: {out(r)}"
    r = store.ctl("ls", "alice", "/a/b", check=False)
    assert r.returncode != 0, "removed directory is gone"


def test_quota(store):
    store.add_user("carol", "pw3", "--quota", "100K")
    f200k = write_random(store.path("200k.bin"), 200000)
    r = store.ctl("put", "carol", f200k, "/big.bin", check=False)
    assert r.returncode != 0, "put over quota fails"
    assert "quota" in out(r).lower(), f"quota error names the quota: {out(r)!r}"
    r = store.ctl("get", "carol", "/big.bin", store.path("x"), check=False)
    assert r.returncode != 0, "nothing visible after the refused put"
    r = store.ctl("user", "quota", "carol", "1M", check=False)
    assert r.returncode == 0, f"user quota raise: {out(r)}"
    r = store.ctl("put", "carol", f200k, "/big.bin", check=False)
    assert r.returncode == 0, f"put under the raised quota: {out(r)}"
    carol = users_by_name(store)["carol"]
    assert (carol["quota"], carol["used"]) == (1048576, 200000), \
        f"user list shows carol's quota and usage: {carol}"


def test_bad_input(store):
    x = store.path("x")
    r = store.ctl("get", "alice", "/no/such/file", x, check=False)
    assert r.returncode != 0, "get of a missing path fails"
    assert re.search(r"^storagectl: get: /no/such/file: .*([Nn]o such|not found)", out(r), re.M), \
        f"  ... with a clear message: {out(r)!r}"
    assert not os.path.exists(x), "  ... and no local file"
    r = store.ctl("get", "nobody", "/x", x, check=False)
    assert r.returncode != 0, "get as an unknown user fails"
    assert "no such user" in out(r), f"  ... saying so: {out(r)!r}"
    r = store.ctl("user", "add", "alice", "--password-stdin", input="x\n", check=False)
    assert r.returncode != 0, "user add of an existing user fails"
    assert "storagectl: user add: user 'alice' already exists" in out(r), \
        f"  ... saying it exists: {out(r)!r}"
    r = store.ctl("user", "add", "dave", check=False)  # stdin is /dev/null, not a tty
    assert r.returncode != 0, "user add without a tty or --password-stdin fails"
    assert "password-stdin" in out(r), f"  ... saying to use --password-stdin: {out(r)!r}"
    r = store.ctl("user", "add", "dave", "--password-stdin", input="\n", check=False)
    assert r.returncode != 0, "user add with an empty password fails"
    f = store.path("f")
    with open(f, "w") as fh:
        fh.write("traversal\n")
    # ".." stops at the user's root (the engine's one resolver, as in every
    # protocol): the file lands inside alice's tree and nowhere else
    r = store.ctl("put", "alice", f, "../../etc/x", check=False)
    assert r.returncode == 0, f"put with a ../../ path stays in the tree: {out(r)!r}"
    assert r.stdout.startswith("stored /etc/x "), f"  ... and says where it went: {r.stdout!r}"
    ls = store.ctl("ls", "alice", "/etc").stdout
    assert " x\n" in ls, f"  ... alice's /etc/x: {ls!r}"
    assert not os.path.exists(os.path.join(store.data, "..", "etc", "x")) and \
        not os.path.exists(os.path.join(store.data, "etc")), "  ... and nothing escaped the tree"
    r = store.ctl("put", "alice", f, "a\\b", check=False)
    assert r.returncode != 0 and "storagectl: put: a\\b:" in out(r), \
        f"a backslash in a path is refused, naming the path: {out(r)!r}"
    r = store.ctl("put", "alice", store.path("nonexistent"), "/x", check=False)
    assert r.returncode != 0, "put of a missing local file fails"
    r = store.ctl(check=False)
    assert r.returncode == 2, f"no command exits 2: {r.returncode}"
    r = store.ctl("frobnicate", check=False)
    assert r.returncode == 2, f"unknown command exits 2: {r.returncode}"
    assert re.search(r"^usage: storagectl", r.stderr, re.M), f"  ... and prints the usage: {r.stderr!r}"
    r = store.ctl("put", "alice", check=False)
    assert r.returncode == 2, f"put with missing arguments exits 2: {r.returncode}"
    r = store.ctl("ls", "alice", "/", "--bogus", check=False)
    assert r.returncode == 2, f"unknown option exits 2: {r.returncode}"
    r = store.ctl("user", "quota", "alice", "4Q", check=False)
    assert r.returncode == 2, f"bad size exits 2: {r.returncode}"
    r = run([STORAGECTL, "-c", os.path.join(store.tmp, "missing.conf"), "stats"])
    assert r.returncode == 1, f"missing config exits 1: {r.returncode}"
    assert re.search(r"^storagectl: config: ", r.stderr, re.M), f"  ... with a one-line reason: {r.stderr!r}"
    r = run([STORAGECTL, "stats"], env=dict(os.environ, STORAGED_CONF=store.conf))
    assert r.returncode == 0, f"$STORAGED_CONF is used without -c: {out(r)}"


def test_user_disable_enable_passwd_keys(store):
    store.add_user("bob", "pw2", "--quota", "10G", "--admin")
    r = store.ctl("user", "disable", "bob", check=False)
    assert r.returncode == 0, f"user disable: {out(r)}"
    assert users_by_name(store)["bob"]["disabled"] is True, "user list shows bob disabled"
    assert re.search(r"^bob +yes +yes ", store.ctl("user", "list").stdout, re.M), \
        "user list (text) shows disabled"
    r = store.ctl("user", "enable", "bob", check=False)
    assert r.returncode == 0, f"user enable: {out(r)}"
    assert users_by_name(store)["bob"]["disabled"] is False, "user list shows bob enabled"
    r = store.ctl("user", "passwd", "alice", "--password-stdin", input="newpw\n", check=False)
    assert r.returncode == 0, f"user passwd: {out(r)}"
    r = store.ctl("user", "passwd", "nobody", "--password-stdin", input="x\n", check=False)
    assert r.returncode != 0, "user passwd of an unknown user fails"
    keys = store.path("keys.pub")
    with open(keys, "w") as f:
        f.write("# alice's keys\n"
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILg4U+7ilrM+e1nLMADM8uF4e8bA/HOBG2+8899EK1iP alice@laptop\n"
                "\n"
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK+MHWJ+gtUgQqLiBzwbkedYbDVimposNx1FzI1+V7Cy alice@desktop\n")
    r = store.ctl("user", "key", "add", "alice", keys, check=False)
    assert r.returncode == 0 and "added 2 keys" in r.stdout, \
        f"user key add (two keys, comments skipped): {out(r)}"
    bad = store.path("bad.pub")
    with open(bad, "w") as f:
        f.write("not-a-key\n")
    r = store.ctl("user", "key", "add", "alice", bad, check=False)
    assert r.returncode != 0, "user key add of a bad line fails"


def test_tokens(store):
    r = store.ctl("token", "create", "alice", "--scope", "ro", "--expires", "30d", check=False)
    tok = r.stdout
    assert r.returncode == 0 and tok.strip() and len(tok.strip().splitlines()) == 1, \
        f"token create prints one token line: {tok!r}"
    j = store.ctl_json("token", "list", "alice", "--json")
    assert (len(j), j[0]["scope"], j[0]["state"]) == (1, "ro", "active"), f"token list shows one ro token: {j}"
    tid = j[0]["id"]
    assert re.search(rf"^ +{tid} +alice +ro ", store.ctl("token", "list").stdout, re.M), "token list (text)"
    r = store.ctl("token", "revoke", str(tid), check=False)
    assert r.returncode == 0, f"token revoke: {out(r)}"
    t = store.ctl_json("token", "list", "alice", "--json")[0]
    assert (t["revoked"], t["state"]) == (True, "revoked"), f"token list shows it revoked: {t}"
    r = store.ctl("token", "revoke", "999999", check=False)
    assert r.returncode != 0, "token revoke of an unknown id fails"
    r = store.ctl("token", "create", "nobody", check=False)
    assert r.returncode != 0, "token create for an unknown user fails"


def test_journal(store):
    store.add_user("bob", "pw2")
    f = write_random(store.path("single.bin"), 700000)
    store.ctl("put", "alice", f, "/docs/single.bin")
    store.ctl("put", "bob", f, "/bob.bin")
    store.ctl("mkdir", "bob", "/bobdir")
    r = store.ctl("journal", "--user", "alice", "--since", "10m", check=False)
    assert r.returncode == 0 and "/docs/single.bin" in r.stdout, \
        f"journal --user alice --since 10m lists the put: {out(r)}"
    j = json.loads(store.ctl("journal", "--json").stdout)
    assert len(j) > 0 and all("op" in row for row in j), f"journal --json parses: {j[:3]}"
    r = store.ctl("journal", "--since", "2099-01-01T00:00:00", check=False)
    assert r.returncode == 0 and r.stdout.strip() == "", \
        f"journal --since in the future is empty: {out(r)!r}"
    j = json.loads(store.ctl("journal", "--user", "bob", "--json").stdout)
    assert j and all(row["user"] == "bob" for row in j), f"journal --user bob shows only bob: {j}"


def test_gc_and_fsck_after_everything(store):
    """gc, gc --now and fsck after a history of puts, dedup, removals and a refused put."""
    store.add_user("carol", "pw3", "--quota", "100K")
    f = write_random(store.path("f.bin"), 700000)
    store.ctl("put", "alice", f, "/docs/a.bin")
    store.ctl("put", "alice", f, "/docs/b.bin")
    store.ctl("rm", "alice", "/docs/b.bin")
    store.ctl("mkdir", "alice", "/x/y/z", "-p")
    store.ctl("put", "alice", write_random(store.path("g.bin"), 5000), "/x/y/z/g.bin")
    store.ctl("rm", "alice", "/x", "-r")
    store.ctl("put", "alice", write_random(store.path("h.bin"), 9000), "/docs/a.bin")
    r = store.ctl("put", "carol", write_random(store.path("c.bin"), 200000), "/c.bin", check=False)
    assert r.returncode != 0, "the over-quota put is refused"
    r = store.ctl("gc", check=False)
    assert r.returncode == 0, f"gc: {out(r)}"
    r = store.ctl("gc", "--now", check=False)
    assert r.returncode == 0, f"gc --now: {out(r)}"
    r = store.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean after everything: {out(r)}"


# ---------------------------------------------------------------- 2 and 3. kill -9

def kill_import_test(d, label, user, rroot, seed):
    """Import a tree with big files, kill -9 it mid-way, check fsck and the reported files."""
    src = d.path(f"kill-{label}")
    gentree(src, seed=seed, files=250, max_size=512000, big=16, big_size=20 << 20, special=False)
    outf, errf = d.path(f"kill-{label}.out"), d.path(f"kill-{label}.err")
    with open(outf, "w") as o, open(errf, "w") as e:
        p = subprocess.Popen([STORAGECTL, "-c", d.conf, "import", user, src, rroot],
                             stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    try:
        # Kill 0.7 s after the start (later if no file is reported yet): the tree holds
        # 16 x 20 MiB, so the import is still busy then.
        time.sleep(0.7)
        for _ in range(200):
            with open(outf) as o:
                if re.search(r"^imported ", o.read(), re.M):
                    break
            time.sleep(0.05)
        finished = p.poll() is not None
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    try:
        os.kill(p.pid, 0)
        gone = False
    except ProcessLookupError:
        gone = True
    assert gone, f"{label}: storagectl is gone after kill -9"
    with open(outf) as o:
        reported = imported_paths(o.read())
    print(f"{label}: {len(reported)} files reported before kill -9")
    assert not finished, f"{label}: import was still running at kill -9"
    assert len(reported) > 0, f"{label}: some files were reported done"
    # fsck right after the kill: no damage at all. The only finding allowed is an orphan
    # blob file (complete, hash verified, no row yet) per upload that was between its
    # rename and its row commit: at most one per import worker.
    r = d.ctl("fsck", check=False)
    m = re.search(r"^fsck: [0-9]+ blobs checked, ([0-9]+) bad hash, ([0-9]+) missing, ([0-9]+) orphan "
                  r"files, ([0-9]+) bad refs, ([0-9]+) bad usage", out(r), re.M)
    assert m and (m.group(1), m.group(2), m.group(4), m.group(5)) == ("0", "0", "0", "0"), \
        f"{label}: fsck after kill -9: no bad hash, missing, bad refs, bad usage: {out(r)}"
    assert int(m.group(3)) <= 4, \
        f"{label}: fsck after kill -9: at most 4 orphan blobs (uncommitted uploads): {out(r)}"
    r = d.ctl("fsck", "--repair", check=False)
    assert r.returncode == 0, f"{label}: fsck --repair settles everything: {out(r)}"
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"{label}: fsck clean after repair: {out(r)}"
    bad = verify_list(d, user, rroot, src, reported)
    assert bad == [], f"{label}: every reported file is byte-identical; differ: {bad[:5]}"
    # files not reported: absent, or complete (commit landed just before the kill), never torn
    rset = set(reported)
    rest, torn = [], []
    for dp, _, fns in os.walk(src):
        for fn in fns:
            rel = os.path.relpath(os.path.join(dp, fn), src)
            rp = f"{rroot}/{rel}"
            if rp in rset:
                continue
            rest.append(rp)
            got = d.path("got")
            if os.path.exists(got):
                os.unlink(got)
            if d.ctl("get", user, rp, got, check=False).returncode == 0:
                if not same_file(got, os.path.join(dp, fn)):
                    torn.append(rp)
    assert torn == [], f"{label}: unreported files absent or complete, never torn: {torn}"
    r = d.ctl("gc", "--now", check=False)
    assert r.returncode == 0, f"{label}: gc --now after kill -9: {out(r)}"
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"{label}: fsck clean after gc: {out(r)}"
    # re-running the import completes the tree; everything then matches
    r = d.ctl("import", user, src, rroot, check=False)
    assert r.returncode == 0, f"{label}: re-import completes: {out(r)}"
    assert rest, f"{label}: re-import covered the rest of the tree (there was a rest)"
    bad = verify_list(d, user, rroot, src, rest)
    assert bad == [], f"{label}: whole tree identical after re-import; differ: {bad[:5]}"
    shutil.rmtree(src, ignore_errors=True)


@pytest.mark.timeout(600)
def test_kill9_import_without_daemon(store):
    kill_import_test(store, "nodaemon", "alice", "/killed", 7)


@pytest.mark.timeout(600)
def test_kill9_import_with_daemon_running(store):
    store.add_user("bob", "pw2")
    store.start()
    assert store.alive(), "daemon started (no front ends)"
    single = write_random(store.path("single.bin"), 700000)
    r = store.ctl("put", "bob", single, "/live/s.bin", check=False)
    assert r.returncode == 0, f"put while the daemon runs: {out(r)}"
    r = store.ctl("get", "bob", "/live/s.bin", "-", binary=True, check=False)
    with open(single, "rb") as f:
        assert r.returncode == 0 and r.stdout == f.read(), "get while the daemon runs"
    r = store.ctl("ls", "bob", "/live", check=False)
    assert r.returncode == 0 and "s.bin" in r.stdout, f"ls while the daemon runs: {out(r)}"
    r = store.ctl("stats", check=False)
    assert r.returncode == 0, f"stats while the daemon runs: {out(r)}"
    kill_import_test(store, "daemon", "bob", "/killed", 8)
    r = store.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean while the daemon runs: {out(r)}"
    assert store.alive(), "daemon still alive"
    rc = store.stop()
    assert rc == 0, f"storaged exited {rc} on SIGTERM"
