"""sdtest - start the real storaged on loopback from a python test.

    from sdtest import Daemon, free_port
    with Daemon(sections={"ftp": {"enabled": "yes", "listen": f"127.0.0.1:{port}"}}) as d:
        d.add_user("alice", "secret1")
        ...  # talk to 127.0.0.1:port with a real client
        d.ctl("stats", "--json")

Run under /usr/bin/python3 (Debian's, which has paramiko and pytest).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    def __init__(self, sections=None, storaged=None):
        self.sections = sections or {}
        self.storaged_keys = storaged or {}
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix="sdtest.")
        self.conf = os.path.join(self.tmp, "storaged.conf")
        self.data = os.path.join(self.tmp, "data")
        self.log = os.path.join(self.tmp, "storaged.log")

    def write_conf(self):
        base = {
            "data_dir": self.data,
            "module_dir": os.path.join(ROOT, "frontends"),
            "log_level": "debug",
            "log_file": self.log,
            "auth_fail_delay": "50ms",
            "auth_max_failures": "20",
            "auth_block_time": "2s",
        }
        base.update(self.storaged_keys)
        with open(self.conf, "w") as f:
            f.write("[storaged]\n")
            for k, v in base.items():
                f.write(f"{k} = {v}\n")
            for name, keys in self.sections.items():
                f.write(f"\n[{name}]\n")
                for k, v in keys.items():
                    f.write(f"{k} = {v}\n")

    def start(self):
        self.write_conf()
        open(self.log, "w").close()
        self.out = open(os.path.join(self.tmp, "stdout"), "w")
        self.proc = subprocess.Popen([os.path.join(ROOT, "storaged"), "-c", self.conf],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(self.log) as f:
                if "event=ready" in f.read():
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError("storaged exited during start-up:\n" + self.logtext())
            time.sleep(0.05)
        raise RuntimeError("storaged not ready after 10s:\n" + self.logtext())

    def logtext(self):
        text = ""
        for p in (os.path.join(self.tmp, "stdout"), self.log):
            try:
                with open(p) as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def stop(self):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.out.close()
        return rc

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def ctl(self, *args, input=None, check=True):
        """Run storagectl against this daemon's config; returns stdout."""
        r = subprocess.run([os.path.join(ROOT, "storagectl"), "-c", self.conf, *args],
                           input=input, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"storagectl {args} failed ({r.returncode}): {r.stderr}")
        return r.stdout

    def add_user(self, name, password, *opts):
        self.ctl("user", "add", name, "--password-stdin", *opts, input=password + "\n")

    def blob_count(self):
        n = 0
        for _, _, files in os.walk(os.path.join(self.data, "blobs")):
            n += sum(1 for f in files if len(f) == 64)
        return n

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        rc = self.stop()
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)
        if exc[0] is None:
            assert rc == 0, f"storaged exited {rc} on SIGTERM"
