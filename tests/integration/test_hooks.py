"""Event hooks (docs/hooks.md): a hook command and a webhook (a local receiver) see each
event once with its fields, over FTP, SFTP and HTTP alike (the engine fires them); the
webhook is signed with HMAC-SHA256; a slow or failing hook and a failing webhook never slow
a transfer (bounded queue, drops logged); a crashing hook is logged with its signal.
"""
import ftplib
import hashlib
import hmac
import http.server
import io
import json
import os
import threading
import time

import paramiko

from conftest import HOST, curl, free_port, free_port_range

ALICE = ("alice", "pw-alice")
CAROL = ("carol", "pw-carol")
SECRET = "s3cret-key"


class Receiver:
    """A local webhook receiver: records (headers, body); answers `status` after `delay`."""

    def __init__(self, status=200, delay=0.0):
        self.got, self.status, self.delay = [], status, delay
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                rec.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(rec.delay)
                self.send_response(rec.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.srv = http.server.ThreadingHTTPServer((HOST, self.port), H)
        self.thr = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thr.start()
        self.url = f"http://{HOST}:{self.port}/hook"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def hook_script(d):
    """A hook command that appends {env, stdin} as one JSON line to hooks.jsonl."""
    out = os.path.join(d.tmp, "hooks.jsonl")
    path = os.path.join(d.tmp, "hook.py")
    with open(path, "w") as f:
        f.write(f"""#!/usr/bin/python3
import json, os, sys
data = sys.stdin.read()
env = {{k: v for k, v in os.environ.items() if k.startswith("STORAGED_")}}
line = json.dumps({{"env": env, "stdin": json.loads(data)}}) + "\\n"
fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
os.write(fd, line.encode())
os.close(fd)
""")
    os.chmod(path, 0o755)
    return path, out


def start(make_daemon, name, keys):
    hp, fp, sp = free_port(), free_port(), free_port()
    pasv = free_port_range(10)
    d = make_daemon({
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{hp}"},
        "ftp": {"enabled": "yes", "module": "ftp", "listen": f"{HOST}:{fp}",
                "pasv_min_port": str(pasv), "pasv_max_port": str(pasv + 9)},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sp}"},
    }, storaged=keys, name=name, start=False)
    d.base, d.fport, d.sport = f"http://{HOST}:{hp}", fp, sp
    return d


def wait_for(fn, n, timeout=20):
    end = time.time() + timeout
    got = fn()
    while len(got) < n and time.time() < end:
        time.sleep(0.1)
        got = fn()
    time.sleep(0.5)  # and no more than n
    return fn()


def test_hooks_fire_once_with_fields(make_daemon):
    rec = Receiver()
    try:
        d = start(make_daemon, "hooks", {})
        script, out = hook_script(d)
        d.keys.update({"hook_command": script, "webhook_url": rec.url, "webhook_secret": SECRET,
                       "hook_concurrency": "2"})
        d.start()
        d.add_user(*ALICE)
        d.add_user(*CAROL, "--quota", "1000")
        # FTP: login, mkdir, upload, download, rename, delete
        f = ftplib.FTP()
        f.connect(HOST, d.fport, timeout=30)
        f.login(*ALICE)
        f.mkd("/d")
        f.storbinary("STOR /d/a.txt", io.BytesIO(b"hello"))
        f.retrbinary("RETR /d/a.txt", lambda b: None)
        f.rename("/d/a.txt", "/d/b.txt")
        f.delete("/d/b.txt")
        f.quit()
        # HTTP: a failed login; SFTP: carol over quota
        assert curl("-u", "alice:wrong", f"{d.base}/api/v1/fs/").code == 401
        t = paramiko.Transport((HOST, d.sport))
        t.connect(username=CAROL[0], password=CAROL[1])
        s = paramiko.SFTPClient.from_transport(t)
        try:
            with s.open("/big.bin", "wb") as fh:
                fh.write(b"q" * 3000)
        except IOError:
            pass
        s.close()
        t.close()
        want = [("login", "alice", None), ("mkdir", "alice", "/d"), ("upload", "alice", "/d/a.txt"),
                ("download", "alice", "/d/a.txt"), ("rename", "alice", "/d/a.txt"),
                ("delete", "alice", "/d/b.txt"), ("login_failed", "alice", None),
                ("login", "carol", None), ("quota_exceeded", "carol", "/big.bin")]

        def cmd_events():
            try:
                return [json.loads(l) for l in open(out).read().splitlines()]
            except OSError:
                return []
        got = wait_for(cmd_events, len(want))
        keys = sorted((g["stdin"]["event"], g["stdin"].get("user"), g["stdin"].get("path")) for g in got)
        assert keys == sorted(want), f"the command saw each event once: {keys}"
        by = {g["stdin"]["event"] + ":" + g["stdin"].get("user", ""): g for g in got}
        up = by["upload:alice"]
        assert up["stdin"]["size"] == 5 and up["stdin"]["sha256"] == hashlib.sha256(b"hello").hexdigest()
        assert up["stdin"]["proto"] == "ftp" and up["stdin"]["addr"] == "127.0.0.1", up
        assert up["env"]["STORAGED_EVENT"] == "upload" and up["env"]["STORAGED_PATH"] == "/d/a.txt"
        assert up["env"]["STORAGED_SIZE"] == "5" and up["env"]["STORAGED_USER"] == "alice", up["env"]
        assert "alice uploaded /d/a.txt" in up["stdin"]["text"], up
        rn = by["rename:alice"]
        assert rn["stdin"]["target"] == "/d/b.txt" and rn["env"]["STORAGED_TARGET"] == "/d/b.txt", rn
        lf = by["login_failed:alice"]
        assert lf["stdin"]["proto"] == "http" and lf["stdin"]["reason"] == "bad_password", lf
        assert by["login:alice"]["stdin"]["method"] == "password", by["login:alice"]
        assert by["quota_exceeded:carol"]["stdin"]["proto"] == "sftp", by["quota_exceeded:carol"]
        # the webhook got the same, signed
        hooks = wait_for(lambda: list(rec.got), len(want))
        wk = sorted((json.loads(b)["event"], json.loads(b).get("user"), json.loads(b).get("path"))
                    for _, b in hooks)
        assert wk == sorted(want), f"the webhook saw each event once: {wk}"
        for h, b in hooks:
            sig = "sha256=" + hmac.new(SECRET.encode(), b, hashlib.sha256).hexdigest()
            assert h["x-storaged-signature"] == sig, f"HMAC-SHA256 signature: {h}"
            assert h["x-storaged-event"] == json.loads(b)["event"], h
            assert h["content-type"] == "application/json", h
    finally:
        rec.close()


def test_slow_failing_hooks_never_slow_transfers(make_daemon):
    rec = Receiver(status=500, delay=1.0)
    try:
        d = start(make_daemon, "hooks-slow", {})
        d.keys.update({"hook_command": "sleep 5", "hook_timeout": "1s", "hook_concurrency": "1",
                       "hook_queue": "4", "webhook_url": rec.url, "webhook_retries": "1",
                       "webhook_timeout": "300ms"})
        d.start()
        d.add_user(*ALICE)
        t0 = time.time()
        for i in range(30):
            r = curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-T", "-", f"{d.base}/api/v1/fs/f{i}.bin",
                     input=os.urandom(20000))
            assert r.code == 201, f"upload {i}: {r}"
        took = time.time() - t0
        assert took < 6, f"30 uploads with a 5 s hook and a failing webhook took {took:.1f}s"
        assert d.wait_log(r"event=hook_timeout", timeout=10) >= 1, "the slow hook was killed and logged"
        assert d.wait_log(r"event=hook_dropped", timeout=5) >= 1, "a full queue drops, logged"
        assert d.wait_log(r"event=webhook_failed .*attempts=2", timeout=15) >= 1, "webhook retried, logged"
    finally:
        rec.close()


def test_crashing_hook_is_logged(make_daemon):
    d = start(make_daemon, "hooks-crash", {})
    d.keys.update({"hook_command": "echo about to crash; kill -SEGV $$", "hook_events": "upload"})
    d.start()
    d.add_user(*ALICE)
    assert curl("-u", f"{ALICE[0]}:{ALICE[1]}", "-T", "-", f"{d.base}/api/v1/fs/x.bin",
                input=b"x").code == 201
    assert d.wait_log(r'event=hook_failed type=upload signal=11 .*output="about to crash"',
                      timeout=10) >= 1, "the crash is logged with the signal and the output"
    assert d.alive(), "the daemon is fine"
    # a bad event list is refused at start-up
    bad = start(make_daemon, "hooks-bad", {"hook_command": "true", "hook_events": "upload,nope"})
    ok, text = bad.try_start()
    assert not ok and "hook_events" in text, f"bad hook_events refused: {text[-500:]}"
