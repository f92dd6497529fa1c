"""The daemon itself: start-up errors are one clear line and a non-zero exit, SIGHUP
reopens the log, SIGTERM exits 0, --check-config validates, systemd readiness, a really
full disk, and storagectl run as root on a data directory owned by another user."""
import os
import re
import signal
import socket
import subprocess
import time

from conftest import ROOT, STORAGED, out, run, write_random, same_file


def storaged(conf, *args, timeout=30):
    return run([STORAGED, "-c", conf, *args], timeout=timeout)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_unknown_key_is_fatal_with_file_line(make_daemon):
    d = make_daemon(start=False)
    bad = write(os.path.join(d.tmp, "bad.conf"), f"[storaged]\ndata_dir = {d.tmp}/d\nbogus_key = 1\n")
    r = storaged(bad)
    assert r.returncode == 2, f"unknown key exits 2: {r.returncode} {out(r)}"
    assert re.search(r"bad\.conf:3:.*bogus_key", out(r)), \
        f"unknown key message names file:line:key: {out(r)!r}"
    assert len(out(r).splitlines()) == 1, f"the message is one line: {out(r)!r}"
    assert not os.path.exists(f"{d.tmp}/d"), "nothing was created for a bad config"


def test_bad_size_value(make_daemon):
    d = make_daemon(start=False)
    bad = write(os.path.join(d.tmp, "bad2.conf"), f"[storaged]\ndata_dir = {d.tmp}/d\nwrite_buffer = 4Q\n")
    r = storaged(bad)
    assert r.returncode == 2, f"bad size exits 2: {r.returncode} {out(r)}"
    assert "write_buffer" in out(r), f"bad size message names the key: {out(r)!r}"


def test_missing_config(make_daemon):
    d = make_daemon(start=False)
    r = storaged(os.path.join(d.tmp, "missing.conf"))
    assert r.returncode == 2, f"missing config exits 2: {r.returncode} {out(r)}"


def test_uncreatable_data_dir(make_daemon):
    # root can write anywhere: use a path under a regular file
    d = make_daemon(start=False)
    write(os.path.join(d.tmp, "afile"), "")
    conf = write(os.path.join(d.tmp, "nodir.conf"),
                 f"[storaged]\ndata_dir = {d.tmp}/afile/data\nlog_file = {d.tmp}/l1\n")
    r = storaged(conf)
    assert r.returncode == 1, f"uncreatable data dir exits 1: {r.returncode} {out(r)}"
    assert "cannot create data directory" in out(r), f"... with one line saying why: {out(r)!r}"


def test_database_newer_than_binary(make_daemon):
    d = make_daemon()
    rc = d.stop()
    assert rc == 0, f"storaged exited {rc} on SIGTERM"
    r = run(["sqlite3", os.path.join(d.data, "storaged.db"), "PRAGMA user_version=999"])
    assert r.returncode == 0, out(r)
    r = storaged(d.conf)
    assert r.returncode == 1, f"newer database exits 1: {r.returncode} {out(r)}"
    assert "newer than this storaged" in out(r), f"... saying it is newer: {out(r)!r}"


def test_missing_module(make_daemon):
    d = make_daemon(start=False)
    d.write_conf()
    conf = write(os.path.join(d.tmp, "nomod.conf"),
                 open(d.conf).read() + "\n[nosuch]\nenabled = yes\nlisten = 127.0.0.1:1\n")
    r = storaged(conf)
    assert r.returncode == 1, f"missing module exits 1: {r.returncode} {out(r)}"
    assert "nosuch" in out(r), f"... naming the module: {out(r)!r}"


def test_docs_configuration_matches_binary(make_daemon):
    d = make_daemon(start=False)
    gen = os.path.join(d.tmp, "configuration.md")
    with open(gen, "w") as f:
        subprocess.run([os.path.join(ROOT, "docs", "gen-config-reference.sh"), STORAGED,
                        os.path.join(ROOT, "storaged.conf"),
                        os.path.join(ROOT, "docs", "configuration.md")],
                       stdout=f, stderr=subprocess.STDOUT, timeout=60)
    with open(gen, "rb") as a, open(os.path.join(ROOT, "docs", "configuration.md"), "rb") as b:
        assert a.read() == b.read(), \
            "docs/configuration.md lists every key the build knows (run make doc-config)"


def test_check_config(make_daemon):
    d = make_daemon(start=False)
    d.write_conf()
    r = storaged(d.conf, "--check-config")
    assert r.returncode == 0, f"--check-config on a good file exits 0: {out(r)}"


def test_sd_notify_ready_then_stopping(make_daemon):
    d = make_daemon(start=False)
    d.write_conf()
    sock_path = os.path.join(d.tmp, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path)
    p = subprocess.Popen([STORAGED, "-c", d.conf], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        first = s.recv(100)
        p.terminate()
        second = s.recv(100)
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        s.close()
    assert (first, second, rc) == (b"READY=1", b"STOPPING=1", 0), \
        f"sd_notify: READY=1 then STOPPING=1, exit 0; got {first!r} {second!r} rc={rc}"


def test_sighup_reopens_log(make_daemon):
    d = make_daemon()
    os.rename(d.log, d.log + ".1")
    d.signal(signal.SIGHUP)
    for _ in range(50):
        if os.path.exists(d.log) and os.path.getsize(d.log) > 0:
            break
        time.sleep(0.05)
    assert os.path.exists(d.log) and os.path.getsize(d.log) > 0, "SIGHUP reopens the log file"
    with open(d.log + ".1") as f:
        assert "event=reopen" not in f.read(), \
            "... and the old file got no new lines after the rename"
    d.add_user("alice", "pw-alice-1")
    r = d.ctl("user", "list", check=False)
    assert r.returncode == 0 and "alice" in r.stdout, \
        f"storagectl works while the daemon runs: {out(r)}"
    rc = d.stop()
    assert rc == 0, f"SIGTERM exits 0 (got {rc})"


def test_full_disk(make_daemon):
    """A data directory on a 10 MiB tmpfs: an upload that does not fit fails with a clear
    "no space" error, the previous version stays intact, no temp file is left, and the
    store is consistent; once space is freed, uploads work again."""
    d = make_daemon(start=False)
    full = os.path.join(d.tmp, "fullfs")
    os.makedirs(full)
    r = run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", full])
    assert r.returncode == 0, f"cannot mount a 10 MiB tmpfs for the full-disk check: {out(r)}"
    try:
        conf = write(os.path.join(d.tmp, "full.conf"), f"[storaged]\ndata_dir = {full}/data\n")
        ctl = [os.path.join(ROOT, "storagectl"), "-c", conf]
        r = run(ctl + ["user", "add", "f", "--password-stdin"], input="pw-f\n")
        assert r.returncode == 0, out(r)
        small = write_random(d.path("small"), 3000000)
        big = write_random(d.path("big"), 8000000)
        r = run(ctl + ["put", "f", small, "/doc"])
        assert r.returncode == 0, f"full disk: a small file fits: {out(r)}"
        r = run(ctl + ["put", "f", big, "/doc"])
        assert r.returncode == 1, f"full disk: an upload that does not fit fails (exit 1): {r.returncode} {out(r)}"
        assert "no space" in out(r).lower(), f"full disk: ... saying there is no space: {out(r)!r}"
        run(ctl + ["get", "f", "/doc", d.path("doc.back")])
        assert same_file(small, d.path("doc.back")), "full disk: the previous version is intact"
        left = [os.path.join(dp, f) for dp, _, fs in os.walk(f"{full}/data/tmp") for f in fs]
        assert left == [], f"full disk: no temp file left: {left}"
        r = run(ctl + ["fsck"])
        assert r.returncode == 0, f"full disk: fsck clean: {out(r)}"
        r1 = run(ctl + ["rm", "f", "/doc"])
        r2 = run(ctl + ["gc", "--now"])
        assert r1.returncode == 0 and r2.returncode == 0, out(r1) + out(r2)
        r = run(ctl + ["put", "f", big, "/doc"])
        assert r.returncode == 0, f"full disk: after freeing space the big file fits: {out(r)}"
    finally:
        run(["umount", full])


def test_storagectl_as_root_in_nobody_owned_dir(make_daemon):
    """storagectl as root on a data directory owned by another user (the packaged storaged
    user) works as that user: every file it creates stays writable by the daemon."""
    d = make_daemon(start=False)
    owned = os.path.join(d.tmp, "owned")
    os.makedirs(os.path.join(owned, "data"))
    os.chmod(d.tmp, 0o755)  # mkdtemp's 0700 would keep the owner out, unlike /var/lib
    r = run(["chown", "-R", "nobody:nogroup", owned])
    assert r.returncode == 0, out(r)
    conf = write(os.path.join(d.tmp, "owned.conf"), f"[storaged]\ndata_dir = {owned}/data\n")
    ctl = [os.path.join(ROOT, "storagectl"), "-c", conf]
    r = run(ctl + ["user", "add", "x", "--password-stdin"], input="pw-x\n")
    assert r.returncode == 0, f"storagectl user add as root into a nobody-owned data dir: {out(r)}"
    f = write(os.path.join(d.tmp, "f"), "content")
    os.chmod(f, 0o644)
    r = run(ctl + ["put", "x", f, "/f"])
    assert r.returncode == 0, f"storagectl put as root into a nobody-owned data dir: {out(r)}"
    db = os.path.join(owned, "data", "storaged.db")
    assert os.path.exists(db) and os.path.getsize(db) > 0, "... created the database"
    rootowned = [os.path.join(dp, n) for dp, dns, fns in os.walk(os.path.join(owned, "data"))
                 for n in dns + fns if os.lstat(os.path.join(dp, n)).st_uid == 0]
    if os.lstat(os.path.join(owned, "data")).st_uid == 0:
        rootowned.insert(0, os.path.join(owned, "data"))
    assert rootowned == [], f"no file in it is owned by root: {rootowned[:3]}"
