"""The integration harness: the real ./storaged on loopback, driven by real clients.

Everything a test needs comes from here (see README.md in this directory):

  Daemon            one storaged: temp dir, generated config, start/stop/kill, storagectl
  make_daemon       fixture: a factory of function-scoped daemons (own config, own data)
  daemon_scope      a context manager for module-scoped daemon fixtures in test files
  run, need         run a client program (curl, lftp, sftp, scp, ssh, ssh-keygen, rclone,
                    openssl, sqlite3) with a timeout; a missing program fails the test
  curl, lftp        thin wrappers with the options every test uses
  sftp_batch, ...   OpenSSH clients with the options every test uses
  ftp_login, ...    in-process python clients (ftplib, paramiko)

Helpers here raise AssertionError (never `assert`): the assertion counter in the summary
counts only the asserts written in test files. Run with /usr/bin/python3 (Debian's python,
which has paramiko, pytest and pytest-timeout).
"""
import contextlib
import ftplib
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
# SD_STORAGED / SD_MODULE_DIR: another build of the daemon and its modules (make
# integration-asan points them at the ASan/UBSan build in build/asan/).
STORAGED = os.environ.get("SD_STORAGED") or os.path.join(ROOT, "storaged")
STORAGECTL = os.path.join(ROOT, "storagectl")
MODULE_DIR = os.environ.get("SD_MODULE_DIR") or os.path.join(ROOT, "frontends")
PY = "/usr/bin/python3"
HOST = "127.0.0.1"
KEEP = os.environ.get("KEEP") == "1"

# The [storaged] keys every daemon gets (what lib.sh and sdtest.py wrote): debug log in a
# file the tests grep, a short failed-login delay and a lockout the tests do not trip by
# accident. A test overrides any of them with storaged={...}.
BASE_KEYS = {
    "log_level": "debug",
    "auth_fail_delay": "50ms",
    "auth_max_failures": "20",
    "auth_block_time": "2s",
}


def fail(msg):
    """Fail the current test with msg (an assertion failure, not an error)."""
    raise AssertionError(msg)


# ---------------------------------------------------------------- ports

# Ports are drawn at random below the kernel's ephemeral range (32768-60999 here): a port
# bind(0) hands out can be taken a moment later by any outgoing connection on the machine
# (other test suites run on it at the same time), one from this range cannot.
PORT_LO, PORT_HI = 20000, 32000
_rng = random.Random()
_handed_out = set()   # never the same port twice in one run


def _bindable(port):
    s = socket.socket()
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (not in the ephemeral range)."""
    for _ in range(200):
        port = _rng.randrange(PORT_LO, PORT_HI)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    fail("no free port")


def free_port_range(n):
    """The first of n consecutive free ports on 127.0.0.1."""
    for _ in range(200):
        base = _rng.randrange(PORT_LO, PORT_HI - n)
        ports = range(base, base + n)
        if not _handed_out.intersection(ports) and all(_bindable(p) for p in ports):
            _handed_out.update(ports)
            return base
    fail("no range of %d free ports" % n)


def listening_ports():
    """Ports in LISTEN state on 127.0.0.1 or 0.0.0.0 (from /proc/net/tcp, no connection)."""
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            addr, state = fields[1], fields[3]
            if state != "0A":
                continue
            ip, port = addr.split(":")
            if ip in ("0100007F", "00000000"):
                ports.add(int(port, 16))
    return ports


# ---------------------------------------------------------------- programs

def need(prog):
    """The path of a client program; fails the test (no skip) if it is not installed."""
    path = shutil.which(prog)
    if path is None:
        pytest.fail(f"{prog} is not installed: run packaging/install-deps.sh as root", pytrace=False)
    return path


def run(args, input=None, timeout=120, env=None, cwd=None, binary=False):
    """Run a program; returns the CompletedProcess (stdout/stderr as text unless binary).

    Never raises on a non-zero exit: the test asserts on returncode. A program still
    running after timeout seconds is killed and the test fails saying so.
    """
    args = [str(a) for a in args]
    need(args[0])
    if isinstance(input, str) and binary:
        input = input.encode()
    try:
        r = subprocess.run(args, input=input, capture_output=True, timeout=timeout, env=env,
                           cwd=cwd, text=not binary,
                           errors=None if binary else "surrogateescape",
                           stdin=subprocess.DEVNULL if input is None else None)
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(args)}: still running after {timeout}s")
    return r


def out(r):
    """stdout + stderr of a CompletedProcess, for assertion messages (last 2000 chars)."""
    o = (r.stdout or "") + (r.stderr or "")
    if isinstance(o, bytes):
        o = o.decode("utf-8", "replace")
    return o[-2000:]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def write_random(path, size, chunk=1 << 24):
    """A file of size random bytes; returns its path."""
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n
    return path


def same_file(a, b):
    """True when both files exist and hold the same bytes."""
    if not (os.path.isfile(a) and os.path.isfile(b)):
        return False
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    return sha256_file(a) == sha256_file(b)


def diff_r(a, b):
    """`diff -r a b`: returns the CompletedProcess (returncode 0 = identical trees)."""
    return run(["diff", "-r", a, b], timeout=120)


# ---------------------------------------------------------------- the daemon

_LIVE = []   # daemons started and not yet stopped: their logs go into failure reports


class Daemon:
    """One storaged with its own temp dir (config, data dir, log).

    sections: {"ftp": {"enabled": "yes", "listen": ...}, ...} in config order;
    storaged: keys added to or overriding BASE_KEYS in [storaged].
    The config is written by start() (or write_conf()); until then storagectl alone works
    on it too (ctl() writes it first).
    """

    def __init__(self, sections=None, storaged=None, name="sd"):
        self.sections = dict(sections or {})
        self.keys = dict(BASE_KEYS)
        self.keys.update(storaged or {})
        self.tmp = tempfile.mkdtemp(prefix=f"sdtest.{name}.")
        self.conf = os.path.join(self.tmp, "storaged.conf")
        self.data = os.path.join(self.tmp, "data")
        self.log = os.path.join(self.tmp, "storaged.log")
        self.stdout_path = os.path.join(self.tmp, "stdout")
        self.work = os.path.join(self.tmp, "work")
        os.makedirs(self.work)
        self.proc = None
        self._out = None

    # -- config
    def config_text(self):
        base = {"data_dir": self.data, "module_dir": MODULE_DIR, "log_file": self.log}
        base.update(self.keys)
        lines = ["[storaged]"] + [f"{k} = {v}" for k, v in base.items()]
        for name, keys in self.sections.items():
            lines += ["", f"[{name}]"] + [f"{k} = {v}" for k, v in keys.items()]
        return "\n".join(lines) + "\n"

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write(self.config_text())

    def listen_ports(self):
        ports = []
        for keys in self.sections.values():
            if keys.get("enabled", "yes") != "yes":
                continue
            for k in ("listen", "implicit_tls_listen"):
                if k in keys:
                    ports.append(int(str(keys[k]).rsplit(":", 1)[1]))
        return ports

    # -- process
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=15):
        """Start and wait for `event=ready` in the log and every listen port in LISTEN.
        Fails the test with the daemon's output if it exits or is not ready in time."""
        ok, text = self.try_start(timeout)
        if not ok:
            fail("storaged did not start:\n" + text[-3000:])
        return self

    def try_start(self, timeout=15):
        """Like start() but returns (started, output) instead of failing."""
        if self.proc is not None:
            fail("storaged already running")
        self.write_conf()
        open(self.log, "w").close()
        self._out = open(self.stdout_path, "w")
        self.proc = subprocess.Popen([STORAGED, "-c", self.conf], stdout=self._out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _LIVE.append(self)
        want = set(self.listen_ports())
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._reap()
                return False, f"storaged exited {rc} during start-up:\n" + self.logtext()
            log = self.logtext(log_only=True)
            if ("event=ready" in log or "\"event\":\"ready\"" in log) and want <= listening_ports():
                return True, self.logtext()
            time.sleep(0.05)
        self.kill()
        return False, f"storaged not ready after {timeout}s:\n" + self.logtext()

    def _reap(self):
        if self in _LIVE:
            _LIVE.remove(self)
        self.proc = None
        if self._out:
            self._out.close()
            self._out = None

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status (None if it was not running).
        A daemon still running after timeout is killed and -9 returned."""
        if self.proc is None:
            return None
        try:
            self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = -9
        self._reap()
        return rc

    def kill(self):
        """SIGKILL and wait (no status check)."""
        if self.proc is not None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            self._reap()

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def cleanup(self):
        self.kill()
        # a test that mounted something in the temp dir (a tmpfs) and failed before
        # unmounting it: unmount, or rmtree would empty the mount and leave it
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f]
        for m in reversed(mounts):
            if m == self.tmp or m.startswith(self.tmp + "/"):
                subprocess.run(["umount", "-l", m], capture_output=True)
        if not KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- output
    def logtext(self, log_only=False):
        paths = (self.log,) if log_only else (self.stdout_path, self.log)
        text = ""
        for p in paths:
            try:
                with open(p, errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def log_count(self, pattern):
        """Number of log lines matching the regular expression."""
        r = re.compile(pattern)
        return sum(1 for line in self.logtext(log_only=True).splitlines() if r.search(line))

    def wait_log(self, pattern, count=1, timeout=5.0):
        """Wait until at least count log lines match; returns the number that match."""
        deadline = time.time() + timeout
        n = self.log_count(pattern)
        while n < count and time.time() < deadline:
            time.sleep(0.05)
            n = self.log_count(pattern)
        return n

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # -- storagectl
    def ctl(self, *args, input=None, check=True, timeout=300, binary=False, env=None):
        """Run ./storagectl -c <this config> ARGS; returns the CompletedProcess.
        check=True fails the test when it exits non-zero."""
        if not os.path.exists(self.conf):
            self.write_conf()
        r = run([STORAGECTL, "-c", self.conf, *args], input=input, timeout=timeout,
                binary=binary, env=env)
        if check and r.returncode != 0:
            fail(f"storagectl {' '.join(map(str, args))} exited {r.returncode}: {out(r)}")
        return r

    def ctl_json(self, *args):
        return json.loads(self.ctl(*args).stdout)

    def add_user(self, name, password, *opts):
        self.ctl("user", "add", name, "--password-stdin", *opts, input=password + "\n")

    def add_key(self, name, pubfile):
        self.ctl("user", "key", "add", name, pubfile)

    def token(self, user, *opts):
        """A new token for user (storagectl token create); returns the token text."""
        return self.ctl("token", "create", user, *opts).stdout.strip()

    # -- the data directory
    def blob_names(self):
        """The set of content addresses (64-hex names) in the blob store."""
        names = set()
        for _, _, files in os.walk(os.path.join(self.data, "blobs")):
            names.update(f for f in files if re.fullmatch(r"[0-9a-f]{64}", f))
        return names

    def blob_count(self):
        return len(self.blob_names())

    def tmp_files(self):
        """Regular files under <data>/tmp (upload leftovers)."""
        res = []
        for d, _, files in os.walk(os.path.join(self.data, "tmp")):
            res += [os.path.join(d, f) for f in files]
        return res

    def path(self, *parts):
        """A path in this daemon's work dir (scratch space for the test)."""
        return os.path.join(self.work, *parts)


@contextlib.contextmanager
def daemon_scope(sections=None, storaged=None, name="sd", start=True, setup=None):
    """A daemon for the duration of a with block; for module-scoped fixtures:

        @pytest.fixture(scope="module")
        def ftpd():
            with daemon_scope({"ftp": {...}}, name="ftp") as d:
                yield d

    At the end: the daemon must still be running and must exit 0 on SIGTERM (the check
    lib.sh's t_done and sdtest.Daemon made); then the temp dir is removed (KEEP=1 keeps it).
    """
    d = Daemon(sections, storaged, name)
    try:
        if setup:
            setup(d)
        if start:
            d.start()
        yield d
        if start or d.proc is not None:
            assert d.alive(), "storaged died during the tests:\n" + d.logtext()[-3000:]
            rc = d.stop()
            assert rc == 0, f"storaged exited {rc} on SIGTERM (expected 0):\n" + d.logtext()[-3000:]
    finally:
        d.cleanup()


@pytest.fixture
def make_daemon():
    """Factory of function-scoped daemons: make_daemon(sections, storaged, start=True).

    Each gets a fresh temp dir and data dir. At teardown every daemon still running is
    stopped with SIGTERM and must exit 0; a test that kills one (d.kill()) or stops it
    itself (rc = d.stop()) takes that check over.
    """
    made = []

    def factory(sections=None, storaged=None, name="sd", start=True):
        d = Daemon(sections, storaged, name)
        made.append(d)
        if start:
            d.start()
        return d

    yield factory
    bad = []
    for d in made:
        if d.proc is not None:
            rc = d.stop()
            if rc != 0:
                bad.append(f"{d.tmp}: storaged exited {rc} on SIGTERM:\n{d.logtext()[-2000:]}")
    for d in made:
        d.cleanup()
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- TLS material

@pytest.fixture(scope="session")
def tls_cert():
    """(cert.pem, key.pem): a self-signed P-256 certificate for CN=127.0.0.1."""
    d = tempfile.mkdtemp(prefix="sdtest.tls.")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert])
    if r.returncode != 0:
        fail("openssl req failed: " + out(r))
    yield cert, key
    shutil.rmtree(d, ignore_errors=True)


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------- curl

class CurlResult:
    def __init__(self, r, body, headers):
        self.returncode = r.returncode
        self.stderr = r.stderr.decode("utf-8", "replace")
        self.info = {}
        try:
            self.info = json.loads(r.stdout.decode() or "{}")
        except ValueError:
            pass
        self.code = int(self.info.get("http_code", self.info.get("response_code", 0)) or 0)
        self.body = body
        self.headers = headers

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        """The last value of a response header (case-insensitive), or None."""
        val = None
        for line in self.headers.splitlines():
            k, sep, v = line.partition(":")
            if sep and k.strip().lower() == name.lower():
                val = v.strip()
        return val

    def __repr__(self):
        return (f"<curl rc={self.returncode} code={self.code} body={self.body[:300]!r} "
                f"stderr={self.stderr[-300:]!r}>")


def curl(*args, input=None, timeout=120):
    """curl -s --path-as-is ARGS with the body and headers captured.

    Returns a CurlResult: .code (HTTP status, 0 if none), .body (bytes), .headers (text),
    .info (curl's -w %{json}: size_upload, num_connects, time_total ...), .returncode.
    """
    fd, bodyf = tempfile.mkstemp(prefix="sdtest.body.")
    os.close(fd)
    fd, headf = tempfile.mkstemp(prefix="sdtest.head.")
    os.close(fd)
    try:
        r = run(["curl", "-s", "--path-as-is", "-o", bodyf, "-D", headf, "-w", "%{json}", *args],
                input=input, timeout=timeout, binary=True)
        with open(bodyf, "rb") as f:
            body = f.read()
        with open(headf, errors="replace") as f:
            headers = f.read()
    finally:
        os.unlink(bodyf)
        os.unlink(headf)
    return CurlResult(r, body, headers)


# ---------------------------------------------------------------- lftp

LFTP_BASE = ("set net:max-retries 2; set net:reconnect-interval-base 1; set net:timeout 15; "
             "set cmd:fail-exit yes; set xfer:clobber yes")
LFTP_PLAIN = LFTP_BASE + "; set ftp:ssl-allow no"
LFTP_TLS = (LFTP_BASE + "; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; "
            "set ftp:ssl-protect-list yes; set ssl:verify-certificate no")


def lftp(port, user, password, script, tls=False, implicit=False, timeout=120):
    """lftp -e 'settings; script; bye': plain FTP, explicit FTPS (tls) or implicit FTPS
    (implicit: port is the implicit-TLS port). Returns the CompletedProcess."""
    settings = LFTP_TLS if (tls or implicit) else LFTP_PLAIN
    if implicit:
        args = ["lftp", "-u", f"{user},{password}", "-e", f"{settings}; {script}; bye",
                f"ftps://{HOST}:{port}"]
    else:
        args = ["lftp", "-u", f"{user},{password}", "-p", str(port), "-e",
                f"{settings}; {script}; bye", HOST]
    return run(args, timeout=timeout)


# ---------------------------------------------------------------- OpenSSH, rclone

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]


def ssh_keygen(path, kind="ed25519", bits=None, comment="sdtest"):
    """A new passphrase-less key pair at path (+ .pub); returns path."""
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", path, "-C", comment]
    if bits:
        args[4:4] = ["-b", str(bits)]
    r = run(args)
    if r.returncode != 0:
        fail("ssh-keygen failed: " + out(r))
    return path


def sftp_batch(port, user, key, batch, *opts, timeout=300):
    """OpenSSH sftp -b with batch (the commands, one a line), public-key login."""
    fd, bf = tempfile.mkstemp(prefix="sdtest.batch.")
    with os.fdopen(fd, "w") as f:
        f.write(batch if batch.endswith("\n") else batch + "\n")
    try:
        return run(["sftp", *SSH_OPTS, "-o", "IdentitiesOnly=yes", "-i", key, "-P", str(port),
                    *opts, "-b", bf, f"{user}@{HOST}"], timeout=timeout)
    finally:
        os.unlink(bf)


def sftp_batch_popen(port, user, key, batch_file, *opts):
    """sftp -b batch_file started in the background; returns the Popen."""
    need("sftp")
    return subprocess.Popen(["sftp", *SSH_OPTS, "-o", "IdentitiesOnly=yes", "-i", key,
                             "-P", str(port), *opts, "-b", batch_file, f"{user}@{HOST}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)


def scp(port, key, *args, timeout=300):
    return run(["scp", *SSH_OPTS, "-o", "IdentitiesOnly=yes", "-i", key, "-P", str(port), *args],
               timeout=timeout)


def ssh(port, key, *args, timeout=60):
    return run(["ssh", *SSH_OPTS, "-o", "IdentitiesOnly=yes", "-p", str(port), "-i", key, *args],
               timeout=timeout)


def rclone(*args, timeout=300):
    return run(["rclone", "--config", "/dev/null", "--retries", "1", "--low-level-retries", "1",
                *args], timeout=timeout)


# ---------------------------------------------------------------- ftplib

def ftp_login(port, user, password, encoding="utf-8"):
    """A logged-in ftplib.FTP on 127.0.0.1:port."""
    f = ftplib.FTP(encoding=encoding)
    f.connect(HOST, port, timeout=20)
    f.login(user, password)
    return f


def ftp_put(f, name, data):
    f.storbinary(f"STOR {name}", io.BytesIO(data))


def ftp_get(f, name, rest=None):
    buf = io.BytesIO()
    f.retrbinary(f"RETR {name}", buf.write, rest=rest)
    return buf.getvalue()


def ftp_code(f, line):
    """Send a raw command; returns the reply code (3 characters, errors included)."""
    try:
        return f.sendcmd(line)[:3]
    except ftplib.all_errors as e:
        return str(e)[:3]


class ReuseFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS that resumes the control connection's TLS session on data connections
    (what FileZilla does; python's own class does not)."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)
        return conn, size


# ---------------------------------------------------------------- paramiko

def ssh_transport(port, user, password=None, pkey=None, banner_timeout=15):
    """An authenticated paramiko.Transport to 127.0.0.1:port."""
    import paramiko
    t = paramiko.Transport((HOST, port))
    t.banner_timeout = banner_timeout
    try:
        t.connect(username=user, password=password, pkey=pkey)
    except BaseException:
        t.close()
        raise
    return t


class SftpSession:
    """`with SftpSession(port, "alice", "pw") as s:` gives a paramiko.SFTPClient."""

    def __init__(self, port, user, password=None, pkey=None):
        import paramiko
        self.t = ssh_transport(port, user, password=password, pkey=pkey)
        self.sftp = paramiko.SFTPClient.from_transport(self.t)

    def close(self):
        try:
            self.sftp.close()
        finally:
            self.t.close()

    def __enter__(self):
        return self.sftp

    def __exit__(self, *a):
        self.close()


# ---------------------------------------------------------------- pytest hooks

def pytest_configure(config):
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError("pytest-timeout is missing (Debian: python3-pytest-timeout; "
                                "packaging/install-deps.sh installs it). Run with /usr/bin/python3.")
    for prog in (STORAGED, STORAGECTL):
        if not os.access(prog, os.X_OK):
            raise pytest.UsageError(f"{prog} is not built: run `make all` at the repository root")
    config._sd_asserts = {}


def pytest_assertion_pass(item, lineno, orig, expl):
    """Counts passing asserts per test file (enable_assertion_pass_hook in pytest.ini)."""
    counts = item.config._sd_asserts
    key = os.path.basename(str(item.fspath))
    counts[key] = counts.get(key, 0) + 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = getattr(config, "_sd_asserts", {})
    if counts:
        terminalreporter.section("assertions that passed, per file")
        for k in sorted(counts):
            terminalreporter.write_line(f"{k:24} {counts[k]}")
        terminalreporter.write_line(f"{'total':24} {sum(counts.values())}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the last lines of every running daemon's log."""
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped:
        # nothing may be skipped and still let the run pass: a skip is a failure here
        rep.outcome = "failed"
        rep.longrepr = f"skipped, which this suite does not allow: {rep.longrepr}"
    if rep.failed:
        for d in list(_LIVE):
            tail = "\n".join(d.logtext().splitlines()[-40:])
            rep.sections.append((f"storaged log tail ({d.tmp})", tail))
