"""libstoraged and the `stor` tools against the real daemon on loopback.

Covers: what a FUSE mount needs (a create seen before its commit, attributes kept for the
commit, unlink and rename of open files, rmdir, 200 open files, readdir pages, conditional
commits between two clients), the fsx-style random test (10,000 seeded operations through a 4-page cache,
compared with a local file after every step), open-mode conflicts between two clients,
hibernate in one process and restore in another (the work finishes and the server holds
exactly the expected bytes), a conflict after the file changed on the server (reported,
nothing overwritten), kill -9 of the daemon while a client has written-back and dirty
pages (the previous version intact, the error on the next fsync), a server that stops
answering (ETIMEDOUT within the timeout), open handles kept alive past
handle_idle_timeout by sdc_keepalive (and lost without it), and `stor` end to end: login, put (plain,
instant, instant with proof of possession for another user), get, cat, ls, stat, mv, cp,
rm, mkdir, rmdir, chmod, chown, exit codes and one-line errors, cp between two daemons,
and a `stor put` killed mid-transfer that the next `stor put` resumes.
"""
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import ROOT, curl, daemon_scope, free_port, out, run, sha256_file, write_random

STOR = os.path.join(ROOT, "stor")
FSX = os.path.join(ROOT, "build", "tests", "client-fsx")
TOOL = os.path.join(ROOT, "build", "tests", "client-tool")
ALICE = ("alice", "pw-alice")
BOB = ("bob", "pw-bob")


def http_section(port):
    return {"http": {"enabled": "yes", "module": "http", "listen": f"127.0.0.1:{port}"}}


def url(d):
    return f"http://127.0.0.1:{d.port}"


def new_daemon(make_daemon, name, users=(ALICE, BOB), storaged=None):
    port = free_port()
    d = make_daemon(http_section(port), storaged=storaged, name=name, start=False)
    d.port = port
    for u, p in users:
        d.add_user(u, p)
    d.start()
    return d


@pytest.fixture(scope="module")
def cd():
    port = free_port()

    def setup(d):
        d.port = port
        d.add_user(*ALICE)
        d.add_user(*BOB)

    with daemon_scope(http_section(port), name="client", setup=setup) as d:
        yield d


def stor(d, *args, user=ALICE, env=None, input=None, timeout=120, config=None):
    e = dict(os.environ)
    e.pop("STOR_URL", None)
    e.update({"STOR_CONFIG": config or d.path("no-config"), "STOR_URL": url(d),
              "STOR_USER": user[0], "STOR_PASSWORD": user[1], "HOME": d.path(),
              "XDG_CACHE_HOME": d.path("cache")})
    if config:
        for k in ("STOR_URL", "STOR_USER", "STOR_PASSWORD"):
            e.pop(k)
    e.update(env or {})
    return run([STOR] + list(args), env=e, input=input, timeout=timeout)


def get(d, path, user=ALICE):
    return curl("-u", f"{user[0]}:{user[1]}", f"{url(d)}/api/v1/fs{path}")


# ---------------------------------------------------------------- the cache

@pytest.mark.timeout(240)
def test_fsx_random_operations(cd):
    seed = int(os.environ.get("FSX_SEED", random.randrange(1, 2**31)))
    r = run([FSX, url(cd), *ALICE, "-n", "10000", "-s", seed, "-P", "4096", "-c", "4",
             "-m", "65536", "-f", "/fsx.bin", "-d", cd.path()], timeout=230)
    assert r.returncode == 0, f"fsx failed (seed {seed}; rerun with FSX_SEED={seed}):\n{out(r)}"
    assert "10000 operations, seed %d: ok" % seed in r.stdout, f"fsx summary: {out(r)}"
    hits = [ln for ln in r.stdout.splitlines() if "evictions" in ln]
    ev = int(hits[0].split("evictions ")[1].split(",")[0])
    wb = int(hits[0].split("written back ")[1].split(",")[0])
    assert ev > 10000 and wb > 1000, f"a 4-page cache evicts and writes back a lot: {hits}"


def test_open_modes_between_two_clients(cd):
    r = run([TOOL, url(cd), *ALICE, "modes", "/modes.bin"])
    assert r.returncode == 0 and "FAIL" not in r.stdout, f"open modes: {out(r)}"
    assert r.stdout.count("ok:") >= 12, f"every check ran: {out(r)}"


def test_names_of_open_files_and_conditional_commits(cd):
    """What a FUSE mount needs of the library (tests/client/tool.c `names`)."""
    r = run([TOOL, url(cd), *ALICE, "names", "/names"], timeout=120)
    assert r.returncode == 0 and "FAIL" not in r.stdout, f"names: {out(r)}"
    assert r.stdout.count("ok:") >= 25 and "names: 0 failed" in r.stdout, f"every check ran: {out(r)}"


def test_hibernate_restore_in_another_process(cd):
    dump, exp1, exp2 = cd.path("hib.dump"), cd.path("exp1"), cd.path("exp2")
    before = b"0123456789" * 2000
    assert curl("-u", "alice:pw-alice", "-T", "-", f"{url(cd)}/api/v1/fs/hib.bin",
                input=before).code in (200, 201)
    r = run([TOOL, url(cd), *ALICE, "hibernate", dump, "/hib.bin", exp1])
    assert r.returncode == 0, f"hibernate: {out(r)}"
    assert "4 dirty" in r.stdout and "written back" in r.stdout, f"dirty pages in the dump: {out(r)}"
    assert os.path.exists(dump) and oct(os.stat(dump).st_mode & 0o777) == "0o600", "dump 0600"
    # the written-back pages were committed at hibernate; the dirty ones are only in the dump
    mid = get(cd, "/hib.bin").body
    assert mid != open(exp1, "rb").read(), "the dirty pages are not on the server yet"
    r = run([TOOL, url(cd), *ALICE, "restore", dump, "/hib.bin", exp2])
    assert r.returncode == 0, f"restore and finish: {out(r)}"
    assert "open fd=0 where=srv:/hib.bin" in r.stdout, f"the descriptor came back: {out(r)}"
    want = open(exp2, "rb").read()
    got = get(cd, "/hib.bin").body
    assert got == want, f"after restore the server holds the finished work ({len(got)} vs {len(want)})"


def test_hibernate_conflict_is_reported_and_nothing_overwritten(cd):
    dump, exp1, exp2 = cd.path("hib2.dump"), cd.path("e1"), cd.path("e2")
    assert curl("-u", "alice:pw-alice", "-T", "-", f"{url(cd)}/api/v1/fs/hib2.bin",
                input=b"x" * 30000).code in (200, 201)
    r = run([TOOL, url(cd), *ALICE, "hibernate", dump, "/hib2.bin", exp1])
    assert r.returncode == 0, f"hibernate: {out(r)}"
    theirs = b"someone else's newer version\n"
    assert curl("-u", "alice:pw-alice", "-T", "-", f"{url(cd)}/api/v1/fs/hib2.bin",
                input=theirs).code == 200
    r = run([TOOL, url(cd), *ALICE, "restore", dump, "/hib2.bin", exp2])
    assert r.returncode == 3, f"restore reports a conflict: {out(r)}"
    assert "conflict fd=0 where=srv:/hib2.bin reason=1" in r.stdout, f"conflict listed: {out(r)}"
    assert "close fd=0: -20001" in r.stdout, f"close answers SDC_ECONFLICT: {out(r)}"
    assert get(cd, "/hib2.bin").body == theirs, "the newer version is not overwritten"


@pytest.mark.timeout(120)
def test_kill9_with_dirty_pages(make_daemon):
    d = new_daemon(make_daemon, "client-kill")
    before = os.urandom(40000)
    assert curl("-u", "alice:pw-alice", "-T", "-", f"{url(d)}/api/v1/fs/k.bin",
                input=before).code == 201
    p = subprocess.Popen([TOOL, url(d), *ALICE, "dirty", "/k.bin"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("READY"), f"client ready: {line}"
        assert "dirty=0 " not in line and "writebacks=0" not in line, f"written back and dirty: {line}"
        d.kill()
        d.start()
        p.stdin.write("go\n")
        p.stdin.flush()
        rest = p.stdout.read()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert "fsync: -20002" in rest, f"the next fsync reports the lost writes (SDC_ELOST): {rest}"
    assert p.returncode == 0, f"client saw the error: {rest}"
    assert get(d, "/k.bin").body == before, "the previous version is intact after the restart"


@pytest.mark.timeout(120)
def test_keepalive_keeps_open_handles(make_daemon):
    """sdc_keepalive: a file open and idle past handle_idle_timeout keeps its server handle
    and the writes already sent to it; without keep-alive the handle expires and the close
    fails, the file not committed."""
    d = new_daemon(make_daemon, "client-idle", storaged={"handle_idle_timeout": "2s"})
    exp = d.path("exp")
    r = run([TOOL, url(d), *ALICE, "keepalive", "/kept.bin", "5", "300", exp], timeout=60)
    assert r.returncode == 0 and "close: 0 ok" in r.stdout, f"kept alive: {out(r)}"
    assert "written back 0," not in r.stdout, f"data was on the server handle: {out(r)}"
    touched = int(r.stdout.split("touched ")[1].split()[0])
    assert 2 <= touched <= 12, f"touched about every idle_timeout / 3, not on every call: {out(r)}"
    assert get(d, "/kept.bin").body == open(exp, "rb").read(), "every byte committed"
    assert d.log_count("handle_expired") == 0, "no handle expired"
    # the same without keep-alive: the handle expires with the written-back pages
    r = run([TOOL, url(d), *ALICE, "keepalive", "/lost.bin", "5", "0", exp], timeout=60)
    assert r.returncode == 1 and "touched 0" in r.stdout, f"the close fails: {out(r)}"
    assert "close: 0 " not in r.stdout, f"{out(r)}"
    assert d.log_count("handle_expired") >= 1, "the server expired the handle"
    assert get(d, "/lost.bin").body != open(exp, "rb").read(), "nothing half-written committed"


def test_server_that_stops_answering_times_out(cd):
    cd.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = stor(cd, "ls", "/", env={"STOR_TIMEOUT": "2"}, timeout=30)
        took = time.monotonic() - t0
    finally:
        cd.signal(signal.SIGCONT)
    assert r.returncode == 1, f"stor fails: {out(r)}"
    assert "timed out" in r.stderr.lower(), f"says it timed out: {out(r)}"
    assert took < 8, f"within the timeout (2 s), not a hang: {took:.1f} s"


# ---------------------------------------------------------------- stor

def test_stor_end_to_end(cd):
    w = cd.path("stor-e2e")
    os.makedirs(w, exist_ok=True)
    big, small = os.path.join(w, "big.bin"), os.path.join(w, "small.txt")
    write_random(big, 12 * 1024 * 1024 + 123)
    with open(small, "w") as f:
        f.write("hello stor\n")
    # login writes the config, and the config alone works
    conf = os.path.join(w, "config")
    r = stor(cd, "login", "--password-stdin", url(cd), "alice", config=conf, input="pw-alice\n")
    assert r.returncode == 0, f"login: {out(r)}"
    assert "password = pw-alice" in open(conf).read(), "config written"
    assert oct(os.stat(conf).st_mode & 0o777) == "0o600", "config is 0600"
    r = stor(cd, "login", "--password-stdin", url(cd), "alice", config=os.path.join(w, "c2"),
             input="wrong\n")
    assert r.returncode == 1 and "Authentication failed" in r.stderr, f"bad password: {out(r)}"

    r = stor(cd, "put", "-p", big, "/e2e/dir/big.bin", config=conf)
    assert r.returncode == 0 and "sent %d bytes" % (12 * 1024 * 1024 + 123) in r.stdout, out(r)
    r = stor(cd, "put", big, "/e2e/again.bin", config=conf)
    assert r.returncode == 0 and "instant" in r.stdout, f"second put is instant: {out(r)}"
    r = stor(cd, "put", big, "/theirs.bin", user=BOB)
    assert r.returncode == 0 and "instant" in r.stdout, f"bob proves possession: {out(r)}"
    r = stor(cd, "put", small, "/e2e/", config=conf)
    assert r.returncode == 0 and "/e2e/small.txt" in r.stdout, f"put into a dir: {out(r)}"

    r = stor(cd, "ls", "/e2e", config=conf)
    assert r.returncode == 0 and r.stdout.split() == ["again.bin", "dir/", "small.txt"], out(r)
    r = stor(cd, "ls", "-l", "/e2e/dir", config=conf)
    assert r.returncode == 0 and "big.bin" in r.stdout and str(12 * 1024 * 1024 + 123) in r.stdout
    r = stor(cd, "stat", "/e2e/again.bin", config=conf)
    assert sha256_file(big) in r.stdout, f"stat shows the sha256: {out(r)}"
    r = stor(cd, "cat", "/e2e/small.txt", config=conf)
    assert r.stdout == "hello stor\n", f"cat: {out(r)}"
    got = os.path.join(w, "got.bin")
    r = stor(cd, "get", "/e2e/dir/big.bin", got, config=conf)
    assert r.returncode == 0 and sha256_file(got) == sha256_file(big), f"get: {out(r)}"
    assert not os.path.exists(got + ".stor-part"), "no partial file left"

    r = stor(cd, "cp", "/e2e/small.txt", "/e2e/copy.txt", config=conf)
    assert r.returncode == 0 and "instant" in r.stdout, f"cp on one server: {out(r)}"
    r = stor(cd, "mv", "/e2e/copy.txt", "/e2e/dir/", config=conf)
    assert r.returncode == 0, f"mv into a dir: {out(r)}"
    assert get(cd, "/e2e/dir/copy.txt").body == b"hello stor\n", "moved"
    r = stor(cd, "chmod", "0600", "/e2e/dir/copy.txt", config=conf)
    assert r.returncode == 0 and curl("-u", "alice:pw-alice",
                                      f"{url(cd)}/api/v1/stat/e2e/dir/copy.txt").json()["mode"] == "0600"
    r = stor(cd, "chown", "bob", "/e2e/dir/copy.txt", config=conf)
    assert r.returncode == 1 and "belong to the user whose tree" in r.stderr, f"chown: {out(r)}"
    r = stor(cd, "chown", "alice", "/e2e/dir/copy.txt", config=conf)
    assert r.returncode == 0, f"chown to the owner it has is a no-op: {out(r)}"

    r = stor(cd, "mkdir", "-p", "/e2e/a/b/c", config=conf)
    assert r.returncode == 0, out(r)
    r = stor(cd, "rmdir", "/e2e/a", config=conf)
    assert r.returncode == 1 and r.stderr.strip() == \
        "stor: rmdir: '/e2e/a': Directory not empty", f"one-line error: {out(r)}"
    r = stor(cd, "rm", "/e2e/dir", config=conf)
    assert r.returncode == 1 and "Is a directory" in r.stderr, out(r)
    r = stor(cd, "rm", "-r", "/e2e/dir", "/e2e/a", config=conf)
    assert r.returncode == 0, out(r)
    r = stor(cd, "ls", "/e2e", config=conf)
    assert r.stdout.split() == ["again.bin", "small.txt"], f"after rm -r: {out(r)}"
    r = stor(cd, "rm", "/e2e/nope", config=conf)
    assert r.returncode == 1 and r.stderr.strip() == \
        "stor: rm: '/e2e/nope': No such file or directory", f"coreutils-like: {out(r)}"
    r = stor(cd, "rm", "-f", "/e2e/nope", config=conf)
    assert r.returncode == 0, f"rm -f of nothing: {out(r)}"
    r = stor(cd, "frobnicate", config=conf)
    assert r.returncode == 2, f"unknown command: {out(r)}"
    r = stor(cd, "ls", "nosuch:/x", config=conf)
    assert r.returncode == 1 and "No such server" in r.stderr, f"unknown server: {out(r)}"


@pytest.mark.timeout(180)
def test_stor_cp_between_two_servers(make_daemon):
    a = new_daemon(make_daemon, "client-a")
    b = new_daemon(make_daemon, "client-b")
    w = a.path("two")
    os.makedirs(w)
    conf = os.path.join(w, "config")
    with open(conf, "w") as f:
        f.write(f"[a]\nurl = {url(a)}\nuser = alice\npassword = pw-alice\n\n"
                f"[b]\nurl = {url(b)}\nuser = alice\npassword = pw-alice\n")
    src = os.path.join(w, "src.bin")
    write_random(src, 20 * 1024 * 1024 + 5)
    r = stor(a, "put", src, "a:/src.bin", config=conf)
    assert r.returncode == 0, out(r)
    r = stor(a, "cp", "a:/src.bin", "b:/copy.bin", config=conf)
    assert r.returncode == 0 and "(copied)" in r.stdout, f"streamed from a to b: {out(r)}"
    got = os.path.join(w, "got.bin")
    r = stor(a, "get", "b:/copy.bin", got, config=conf)
    assert r.returncode == 0 and sha256_file(got) == sha256_file(src), f"same bytes on b: {out(r)}"
    # bob on b proves possession by reading the ranges from a
    r = stor(a, "cp", "a:/src.bin", "b:/copy2.bin", config=conf)
    assert r.returncode == 0 and "(instant)" in r.stdout, f"b has it now: instant: {out(r)}"
    r = stor(a, "servers", config=conf)
    assert r.stdout.splitlines()[0].startswith("a (default)"), out(r)


@pytest.mark.timeout(180)
def test_stor_put_resumes_after_kill(cd):
    w = cd.path("resume")
    os.makedirs(w, exist_ok=True)
    f = os.path.join(w, "r.bin")
    write_random(f, 48 * 1024 * 1024)
    e = dict(os.environ)
    e.update({"STOR_CONFIG": cd.path("none"), "STOR_URL": url(cd), "STOR_USER": "alice",
              "STOR_PASSWORD": "pw-alice", "HOME": cd.path(), "XDG_CACHE_HOME": cd.path("rc"),
              "STOR_LIMIT_RATE": "8m"})
    p = subprocess.Popen([STOR, "put", f, "/resume.bin"], env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(2.5)
    assert p.poll() is None, "still sending (rate-limited) when killed"
    p.kill()
    p.wait()
    assert get(cd, "/resume.bin").code == 404, "nothing visible after the kill"
    e.pop("STOR_LIMIT_RATE")
    r = run([STOR, "put", f, "/resume.bin"], env=e)
    assert r.returncode == 0 and "(resumed)" in r.stdout, f"resumed: {out(r)}"
    sent = int(r.stdout.split("sent ")[1].split()[0])
    assert sent < 48 * 1024 * 1024 - 8 * 1024 * 1024, f"only the rest was sent: {sent}"
    got = os.path.join(w, "got.bin")
    r = run([STOR, "get", "/resume.bin", got], env=e)
    assert r.returncode == 0 and sha256_file(got) == sha256_file(f), f"whole file: {out(r)}"
    assert not os.listdir(cd.path("rc", "stor")), "resume state removed after success"
