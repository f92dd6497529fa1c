"""storfs, the FUSE mount, against the real daemon (needs /dev/fuse and root).

Covers: cp -a and rsync -a (concurrently, on the multithreaded mount) of a generated tree
of 2,000 files with unicode names, a second rsync that transfers nothing, diff -r, and the
same files seen over SFTP (paramiko) and HTTP (curl); tar in and out; make of a small C
program on the mount; git init/add/commit/log; SQLite with 1,000 transactions and
integrity_check; the fsx-style random test with ordinary syscalls; the POSIX suite
(tests/client/posix.c) on the mount and on a tmpfs, the differences exactly the ones
docs/storfs.md lists; statfs from the quota; the sha256 xattr; two mounts: close-to-open
(also when the size changes) and an exclusive open through the API making an open on the
mount fail with EBUSY, a conflicting close failing with EIO and writing nothing; handles
kept alive past handle_idle_timeout; the daemon killed under a mount (ls fails with EIO
within the timeout, works after a restart, the mount process stays up); unmount with
fusermount3 -u and with SIGTERM pushing dirty pages.

Every mount lives under a temp dir and is unmounted in teardown, also after a failure.
"""
import errno
import hashlib
import mmap
import os
import random
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (HOST, ROOT, SftpSession, curl, daemon_scope, free_port, out, run,
                      sha256_file)

STORFS = os.path.join(ROOT, "storfs")
POSIX = os.path.join(ROOT, "build", "tests", "client-posix")
FSXP = os.path.join(ROOT, "build", "tests", "client-fsxp")
ALICE = ("alice", "pw-alice")

# What storfs answers differently from a local file system (tmpfs), case by case:
# docs/storfs.md lists the same. Anything else that differs fails the test.
DIFFERENCES = {
    "create/mkfifo": "EPERM",                   # only regular files and directories
    "chmod/chown-other-user": "EPERM",          # files belong to the mount's user
    "utimens/mtime-nanoseconds": "nsec=0",      # times are whole seconds
    "link/hard-link": "EPERM",                  # no hard links
    "symlink/create": "EPERM",                  # no symbolic links
    "xattr/user.storaged.sha256": "len=64",     # the content address as an xattr
    "xattr/set-user-attr": "ENOTSUP",           # no other xattrs
    "unlink/open-file-fstat": "errno116",       # ESTALE: no name for it in libfuse's API
}


def sections(port, sport):
    return {"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}"},
            "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sport}"}}


def url(d):
    return f"http://{HOST}:{d.port}"


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Mount:
    """One storfs process in the foreground (-f), its PID recorded; stop() unmounts."""

    def __init__(self, d, where, user=ALICE, opts=(), timeout=10):
        self.d, self.path = d, where
        os.makedirs(where, exist_ok=True)
        self.pwfile = where + ".pw"
        with open(self.pwfile, "w") as f:
            f.write(user[1] + "\n")
        o = [f"user={user[0]}", f"password_file={self.pwfile}", f"timeout={timeout}"] + list(opts)
        self.log = where + ".log"
        self.args = [STORFS, url(d), where, "-f", "-o", ",".join(o)]
        self.proc = None

    def start(self):
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline:
            if mounted(self.path):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"storfs did not mount: {self.logtext()}")

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self, how="fusermount"):
        """Unmount (fusermount3 -u, or SIGTERM to the recorded PID); returns the exit status.
        Whatever happens, the mount point is not left mounted."""
        rc = None
        if self.proc is not None:
            if how == "signal":
                self.proc.send_signal(signal.SIGTERM)
            elif mounted(self.path):
                subprocess.run(["fusermount3", "-u", self.path], capture_output=True, timeout=60)
            try:
                rc = self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
            self.proc = None
            self.logf.close()
        if mounted(self.path):
            subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True, timeout=60)
        return rc


@pytest.fixture
def mounts():
    """A factory of mounts; every one is unmounted at teardown, also after a failure."""
    made = []

    def factory(d, where, **kw):
        m = Mount(d, where, **kw)
        made.append(m)
        return m.start()

    yield factory
    for m in made:
        m.stop()


def setup_users(d):
    d.add_user(*ALICE)
    d.add_user("bob", "pw-bob")


@pytest.fixture(scope="module")
def fsd():
    port, sport = free_port(), free_port()

    def setup(d):
        d.port, d.sport = port, sport
        setup_users(d)

    with daemon_scope(sections(port, sport), storaged={"durability": "normal"}, name="storfs",
                      setup=setup) as d:
        yield d


@pytest.fixture(scope="module")
def mnt(fsd):
    m = Mount(fsd, fsd.path("mnt")).start()
    yield m
    rc = m.stop()
    assert rc == 0, f"storfs exited {rc} at unmount: {m.logtext()}"


def api(d, method, path, *args, user=ALICE):
    return curl("-u", f"{user[0]}:{user[1]}", "-X", method, *args, f"{url(d)}{path}")


# ---------------------------------------------------------------- whole trees

NAMES = ["été", "日本語", "Ωmega", "naïve", "файл", "straße", "😀smile", "a b c", "zebra", "Ärger"]


def make_tree(root, nfiles=2000, ndirs=20):
    rng = random.Random(13)
    files = []
    for d in range(ndirs):
        dd = os.path.join(root, f"dir-{d:02d}-{NAMES[d % len(NAMES)]}")
        os.makedirs(dd, exist_ok=True)
        for i in range(nfiles // ndirs):
            p = os.path.join(dd, f"{NAMES[(i * 7 + d) % len(NAMES)]}-{i:03d}.txt")
            with open(p, "wb") as f:
                f.write(rng.randbytes(rng.randrange(0, 4000)))
            # sub-second mtimes, as any real tree has
            os.utime(p, ns=(1_600_000_000_123_456_789 + i * 10**9,) * 2)
            files.append(os.path.relpath(p, root))
    return files


@pytest.mark.timeout(600)
def test_tree_cp_rsync_diff_sftp_http(fsd, mnt):
    src = fsd.path("tree")
    files = make_tree(src)
    assert len(files) == 2000
    a, b = os.path.join(mnt.path, "cpa"), os.path.join(mnt.path, "rs")
    # both at once: the mount serves them on several threads
    t0 = time.monotonic()
    p1 = subprocess.Popen(["cp", "-a", src, a], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    p2 = subprocess.Popen(["rsync", "-a", src + "/", b + "/"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    o1, o2 = p1.communicate(timeout=400), p2.communicate(timeout=400)
    took = time.monotonic() - t0
    assert p1.returncode == 0, f"cp -a: {o1}"
    assert p2.returncode == 0, f"rsync -a: {o2}"
    r = run(["rsync", "-a", "--stats", src + "/", b + "/"], timeout=200)
    assert r.returncode == 0 and "Number of regular files transferred: 0" in r.stdout, \
        f"a second rsync transfers nothing: {out(r)}"
    for dst in (a, b):
        r = run(["diff", "-r", src, dst], timeout=200)
        assert r.returncode == 0, f"diff -r {dst}: {out(r)}"
    st = os.stat(os.path.join(a, files[5]))
    assert int(st.st_mtime) == 1_600_000_005, f"cp -a kept the mtime (seconds): {st.st_mtime}"
    # the same files over SFTP: every name and size
    seen = {}
    with SftpSession(fsd.sport, *ALICE) as s:
        def walk(p):
            for e in s.listdir_attr(p):
                q = p + "/" + e.filename
                if e.st_mode & 0o040000:
                    walk(q)
                else:
                    seen[q[len("/rs/"):]] = e.st_size
        walk("/rs")
        want = {f: os.path.getsize(os.path.join(src, f)) for f in files}
        assert seen == want, f"SFTP sees the same {len(want)} files and sizes ({len(seen)} seen)"
        sample = random.Random(1).sample(files, 20)
        for f in sample:
            with s.open("/cpa/" + f, "rb") as fh:
                assert fh.read() == open(os.path.join(src, f), "rb").read(), f"SFTP reads {f}"
    # and over HTTP
    for f in sample:
        r = curl("-u", "alice:pw-alice", "--path-as-is",
                 f"{url(fsd)}/api/v1/stat/rs/" + "/".join(
                     __import__("urllib.parse").parse.quote(x) for x in f.split("/")))
        assert r.code == 200 and r.json()["sha256"] == sha256_file(os.path.join(src, f)), \
            f"HTTP stat of {f}: {r}"
    print(f"cp -a + rsync -a of 2 x 2,000 files at once: {took:.1f} s")


def test_tar_make_git_sqlite(fsd, mnt):
    w = os.path.join(mnt.path, "work")
    os.makedirs(w)
    # tar in and out
    src = fsd.path("tarsrc")
    os.makedirs(os.path.join(src, "sub", "deep"))
    for i in range(30):
        with open(os.path.join(src, "sub" if i % 2 else "sub/deep", f"f{i}.bin"), "wb") as f:
            f.write(os.urandom(i * 1000))
    tarf = fsd.path("t.tar")
    assert run(["tar", "-C", fsd.path(), "-cf", tarf, "tarsrc"]).returncode == 0
    r = run(["tar", "-C", w, "-xf", tarf])
    assert r.returncode == 0, f"tar x onto the mount: {out(r)}"
    assert run(["diff", "-r", src, os.path.join(w, "tarsrc")]).returncode == 0, "tar in"
    r = run(["tar", "-C", w, "-cf", os.path.join(w, "out.tar"), "tarsrc"])
    assert r.returncode == 0, f"tar c on the mount: {out(r)}"
    back = fsd.path("back")
    os.makedirs(back)
    assert run(["tar", "-C", back, "-xf", os.path.join(w, "out.tar")]).returncode == 0
    assert run(["diff", "-r", src, os.path.join(back, "tarsrc")]).returncode == 0, "tar out"
    # make of a small C program
    p = os.path.join(w, "prog")
    os.makedirs(p)
    with open(os.path.join(p, "util.c"), "w") as f:
        f.write('int twice(int x) { return 2 * x; }\n')
    with open(os.path.join(p, "main.c"), "w") as f:
        f.write('#include <stdio.h>\nint twice(int);\n'
                'int main(void) { printf("%d\\n", twice(21)); return 0; }\n')
    with open(os.path.join(p, "Makefile"), "w") as f:
        f.write("prog: main.o util.o\n\t$(CC) -o $@ $^\n%.o: %.c\n\t$(CC) -c -o $@ $<\n")
    r = run(["make", "-C", p])
    assert r.returncode == 0, f"make: {out(r)}"
    assert run([os.path.join(p, "prog")]).stdout == "42\n", "the program built on the mount runs"
    r = run(["make", "-C", p])
    assert "is up to date" in r.stdout, f"a second make has nothing to do: {out(r)}"
    # git
    g = os.path.join(w, "repo")
    os.makedirs(g)
    env = dict(os.environ, GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@x", GIT_COMMITTER_NAME="a",
               GIT_COMMITTER_EMAIL="a@x", HOME=fsd.path())
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "first"]):
        if args[0] == "add":
            for i in range(20):
                with open(os.path.join(g, f"file{i}.txt"), "w") as f:
                    f.write(f"line {i}\n" * (i + 1))
        r = run(["git", *args], cwd=g, env=env)
        assert r.returncode == 0, f"git {args}: {out(r)}"
    with open(os.path.join(g, "file3.txt"), "a") as f:
        f.write("changed\n")
    r = run(["git", "status", "--short"], cwd=g, env=env)
    assert r.stdout.strip() == "M file3.txt", f"git status sees the change: {out(r)}"
    assert run(["git", "commit", "-qam", "second"], cwd=g, env=env).returncode == 0
    r = run(["git", "log", "--format=%s"], cwd=g, env=env)
    assert r.stdout.split() == ["second", "first"], f"git log: {out(r)}"
    assert run(["git", "fsck", "--no-progress"], cwd=g, env=env).returncode == 0, "git fsck"
    # SQLite: 1,000 transactions
    db = os.path.join(w, "t.db")
    sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n" + "".join(
        f"BEGIN; INSERT INTO t(v) VALUES('{i}-{'x' * (i % 50)}'); COMMIT;\n" for i in range(1000))
    r = run(["sqlite3", db], input=sql, timeout=300)
    assert r.returncode == 0, f"sqlite3: {out(r)}"
    r = run(["sqlite3", db, "PRAGMA integrity_check; SELECT count(*) FROM t;"])
    assert r.stdout.split() == ["ok", "1000"], f"integrity_check: {out(r)}"


@pytest.mark.timeout(300)
def test_fsx_through_the_mount(fsd, mnt):
    seed = int(os.environ.get("FSX_SEED", random.randrange(1, 2**31)))
    r = run([FSXP, os.path.join(mnt.path, "fsxp.bin"), fsd.path(), "-n", "2500", "-s", seed],
            timeout=280)
    assert r.returncode == 0, f"fsxp failed (seed {seed}; FSX_SEED={seed} reruns it):\n{out(r)}"
    assert f"2500 operations, seed {seed}: ok" in r.stdout, out(r)


def test_posix_suite_mount_vs_tmpfs(fsd, mnt):
    tmpfs = fsd.path("tmpfs")
    os.makedirs(tmpfs)
    assert run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", tmpfs]).returncode == 0
    try:
        local = run([POSIX, tmpfs])
    finally:
        run(["umount", tmpfs])
    remote = run([POSIX, mnt.path], timeout=200)

    def parse(r):
        rows = {}
        for line in r.stdout.splitlines():
            f = line.split("\t")
            if len(f) == 3:
                rows[f[0]] = (f[1], f[2])
        return rows
    lo, re_ = parse(local), parse(remote)
    assert len(lo) >= 80 and set(lo) == set(re_), f"both ran every case:\n{out(local)}\n{out(remote)}"
    bad = {k: v for k, v in lo.items() if v[0] != v[1]}
    assert not bad, f"on tmpfs every case answers what POSIX says: {bad}"
    diff = {k: v[1] for k, v in re_.items() if v[0] != v[1]}
    assert diff == DIFFERENCES, f"the mount differs from POSIX exactly where the docs say: {diff}"


def test_statfs_xattr(fsd, mnt):
    fsd.ctl("user", "quota", "alice", "10G")
    sv = os.statvfs(mnt.path)
    assert sv.f_blocks * sv.f_frsize == 10 * 2**30, f"statfs size is the quota: {sv}"
    me = api(fsd, "GET", "/api/v1/me").json()
    assert abs(sv.f_bavail * sv.f_frsize - min(me["quota"] - me["used"], me["disk_free"])) < 2**20, \
        f"free is what is left of the quota: {sv} {me}"
    p = os.path.join(mnt.path, "x.bin")
    data = os.urandom(123456)
    with open(p, "wb") as f:
        f.write(data)
    assert os.getxattr(p, "user.storaged.sha256").decode() == hashlib.sha256(data).hexdigest()
    assert "user.storaged.sha256" in os.listxattr(p)
    fsd.ctl("user", "quota", "alice", "0")
    sv = os.statvfs(mnt.path)
    assert sv.f_blocks * sv.f_frsize == me["disk_total"] // 4096 * 4096, "no quota: the disk"


# ---------------------------------------------------------------- two mounts

def test_two_mounts_close_to_open_and_exclusive(fsd, mounts):
    a = mounts(fsd, fsd.path("m-a"))
    b = mounts(fsd, fsd.path("m-b"))
    pa, pb = os.path.join(a.path, "shared.bin"), os.path.join(b.path, "shared.bin")
    for size in (100_000, 3_000_000, 5, 700_000):
        data = os.urandom(size)
        with open(pb, "rb") if os.path.exists(pb) else open(os.devnull, "rb") as f:
            f.read()  # b has the file (and its pages) cached
        with open(pa, "wb") as f:
            f.write(data)
        with open(pb, "rb") as f:
            got = f.read()
        assert got == data, f"b sees a's close whole ({len(got)} of {size} bytes)"
        assert os.stat(pb).st_size == size, "and its size"
    # an exclusive open through the API: the mounts' opens fail with EBUSY
    r = api(fsd, "POST", "/api/v1/open", "-d", '{"path":"/shared.bin","share":"exclusive"}')
    assert r.code == 201, f"exclusive open: {r}"
    h = r.json()["handle"]
    for p in (pa, pb):
        with pytest.raises(OSError) as e:
            open(p, "rb")
        assert e.value.errno == errno.EBUSY, f"open on the mount: EBUSY: {e.value}"
    assert api(fsd, "POST", f"/api/v1/handles/{h}/close").code == 200
    assert open(pb, "rb").read() == data, "open again once it is closed"
    # a conflict: b writes on an old version while a commits a new one
    fb = open(pb, "r+b")
    fb.write(b"B" * 10)
    with open(pa, "r+b") as fa:
        fa.write(b"A" * 10)
    with pytest.raises(OSError) as e:
        fb.close()
    assert e.value.errno == errno.EIO, f"b's close over a's newer version: EIO: {e.value}"
    assert open(pa, "rb").read(10) == b"A" * 10, "a's version is not written over"
    assert "conflict" in b.logtext(), "storfs says why"


@pytest.mark.timeout(120)
def test_handles_kept_alive(make_daemon, mounts):
    port, sport = free_port(), free_port()
    d = make_daemon(sections(port, sport), storaged={"handle_idle_timeout": "2s"},
                    name="storfs-idle", start=False)
    d.port, d.sport = port, sport
    setup_users(d)
    d.start()
    # a 16 KiB cache: most of what is written goes to the server's handle before the
    # close, so a handle dropped by the server would lose it (close: EIO)
    m = mounts(d, d.path("mnt"), opts=["keepalive=1", "cache_pages=4", "page_size=4K"])
    p = os.path.join(m.path, "idle.bin")
    data = os.urandom(200_000)
    with open(p, "wb") as f:
        f.write(data)
        f.flush()
        time.sleep(5)  # the server's handle_idle_timeout is 2 s
    assert api(d, "GET", "/api/v1/fs/idle.bin").body == data, "kept alive: nothing lost"
    assert d.log_count("handle_expired") == 0, "no handle expired"


@pytest.mark.timeout(180)
def test_daemon_killed_under_the_mount(make_daemon, mounts):
    port, sport = free_port(), free_port()
    d = make_daemon(sections(port, sport), name="storfs-kill", start=False)
    d.port, d.sport = port, sport
    setup_users(d)
    d.start()
    m = mounts(d, d.path("mnt"), timeout=3)
    os.makedirs(os.path.join(m.path, "dir"))
    with open(os.path.join(m.path, "dir", "f"), "w") as f:
        f.write("kept")
    d.kill()
    t0 = time.monotonic()
    r = run(["ls", os.path.join(m.path, "dir")], timeout=60)
    took = time.monotonic() - t0
    assert r.returncode != 0 and "Input/output error" in r.stderr, f"ls fails with EIO: {out(r)}"
    assert took < 6, f"within the timeout (3 s): {took:.1f} s"
    # a server that stops answering (SIGSTOP) rather than refusing: EIO after the timeout
    d.start()
    d.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = run(["ls", "-l", os.path.join(m.path, "dir")], timeout=60)
        took = time.monotonic() - t0
    finally:
        d.signal(signal.SIGCONT)
    assert r.returncode != 0 and "Input/output error" in r.stderr, f"EIO: {out(r)}"
    assert took < 10, f"after the timeout, no hang: {took:.1f} s"
    assert m.proc.poll() is None, "the mount process is still up"
    r = run(["ls", os.path.join(m.path, "dir")])
    assert r.returncode == 0 and r.stdout.split() == ["f"], f"works again: {out(r)}"
    assert open(os.path.join(m.path, "dir", "f")).read() == "kept"
    # no process left in D state on the mount
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            assert not (st == "D" and cwd.startswith(m.path)), f"process {pid} in D state"


@pytest.mark.timeout(120)
def test_unmount_pushes_dirty_pages(fsd, mounts):
    # fusermount3 -u: pages written through a shared mapping after the close reach the server
    m = mounts(fsd, fsd.path("m-u"))
    p = os.path.join(m.path, "mapped.bin")
    with open(p, "wb") as f:
        f.write(b"\0" * 8192)
    fd = os.open(p, os.O_RDWR)
    mm = mmap.mmap(fd, 8192)
    os.close(fd)
    mm[0:6] = b"mapped"
    mm.close()
    rc = m.stop()
    assert rc == 0, f"storfs exits 0 after fusermount3 -u: {m.logtext()}"
    assert api(fsd, "GET", "/api/v1/fs/mapped.bin").body[:6] == b"mapped", "pushed at unmount"
    # SIGTERM while a process holds a file open with unsaved writes
    m2 = mounts(fsd, fsd.path("m-t"), opts=["writeback_cache"])
    p = os.path.join(m2.path, "open.bin")
    data = os.urandom(3 * 2**20 + 7)
    f = open(p, "wb")
    f.write(data[:2**20])
    f.flush()
    # (curl is a child process: its exit closes an inherited copy of f, a close(2) that
    # commits; what is written after it is only in the page caches)
    r = api(fsd, "GET", "/api/v1/stat/open.bin")
    assert r.code in (200, 404), f"{r}"
    f.write(data[2**20:])
    f.flush()
    rc = m2.stop(how="signal")
    try:
        f.close()
    except OSError:
        pass
    assert rc == 0, f"storfs exits 0 on SIGTERM: {m2.logtext()}"
    assert "pushing dirty pages" in m2.logtext(), m2.logtext()
    r = api(fsd, "GET", "/api/v1/stat/open.bin")
    assert r.code == 200 and r.json()["sha256"] == hashlib.sha256(data).hexdigest(), \
        f"every byte pushed before the unmount: {r}"
    assert not mounted(m2.path), "unmounted"
