#!/usr/bin/python3
"""bench/bench.py - the driver behind bench/run.sh (see its header for usage).

One run: machine limits, then per protocol the same workloads against
storaged and its peers with the same client, then the engine's scale
figures; prints a table of medians with min-max spread and rewrites
docs/benchmarks.md. Every process it starts is recorded and stopped by PID
at exit; every file it writes lives in one temp directory on the same disk
as the data (under /var/tmp), removed at exit unless --keep.
"""
import argparse
import atexit
import base64
import datetime
import ftplib
import hashlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
MiB = 1 << 20
PW = "benchpw1"
CIPHER = "aes128-gcm@openssh.com"

# ------------------------------------------------------------ process registry
PROCS = []  # Popen objects we started; stopped by PID at exit
TMP = None
KEEP = False


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


def stop_proc(p, sig=signal.SIGTERM, timeout=30):
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    if p in PROCS:
        PROCS.remove(p)


def cleanup():
    for p in list(PROCS):
        try:
            stop_proc(p, timeout=10)
        except Exception:  # keep stopping the others
            pass
    if TMP and not KEEP:
        shutil.rmtree(TMP, ignore_errors=True)


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=check, **kw)


def out(cmd):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=False, capture_output=True,
                          text=True).stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sync():
    os.sync()


def mutate(path):
    """Make a source file's content new (first 32 bytes) so no upload is a dedup hit."""
    with open(path, "r+b") as f:
        f.write(os.urandom(32))


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def dates(text):
    return [float(x) for x in re.findall(r"^(\d{9,}\.\d+)$", text, re.M)]


# ------------------------------------------------------------ servers
class Storaged:
    """storaged with the HTTP, FTP and SFTP front ends on loopback ports."""

    def __init__(self, name, durability):
        self.name, self.durability = name, durability
        self.http_extra = ""
        self.dir = os.path.join(TMP, f"storaged-{durability}")
        os.makedirs(self.dir)
        self.http, self.ftp, self.sftp = free_port(), free_port(), free_port()
        self.conf = os.path.join(self.dir, "storaged.conf")
        self.log = os.path.join(self.dir, "storaged.log")
        with open(self.conf, "w") as f:
            f.write(f"""[storaged]
data_dir = {self.dir}/data
module_dir = {ROOT}/frontends
log_level = info
log_file = {self.log}
durability = {durability}

[http]
enabled = yes
module = http
listen = 127.0.0.1:{self.http}
max_connections = 2000
max_per_ip = 0
{{HTTP_EXTRA}}

[ftp]
enabled = yes
module = ftp
listen = 127.0.0.1:{self.ftp}
max_clients = 2000
max_per_ip = 2000

[sftp]
enabled = yes
module = sftp
listen = 127.0.0.1:{self.sftp}
max_sessions = 2000
max_per_ip = 2000
""")
        self.conf_text = open(self.conf).read()
        self.proc = None
        self.start()
        ctl = [os.path.join(ROOT, "storagectl"), "-c", self.conf]
        sh(ctl + ["user", "add", "bench", "--password-stdin"], input=PW + "\n", text=True,
           stdout=subprocess.DEVNULL)
        sh(ctl + ["user", "key", "add", "bench", os.path.join(TMP, "client_key.pub")],
           stdout=subprocess.DEVNULL)

    def start(self):
        for attempt in range(3):
            try:
                return self.start_once()
            except RuntimeError as e:
                if attempt == 2:
                    raise
                # most likely a port taken between free_port() and bind(): new ports
                log(f"{e}; retrying with new ports")
                old = (self.http, self.ftp, self.sftp)
                self.http, self.ftp, self.sftp = free_port(), free_port(), free_port()
                for o, n in zip(old, (self.http, self.ftp, self.sftp)):
                    self.conf_text = self.conf_text.replace(f"listen = 127.0.0.1:{o}\n", f"listen = 127.0.0.1:{n}\n")

    def start_once(self):
        with open(self.conf, "w") as f:
            f.write(self.conf_text.replace("{HTTP_EXTRA}", self.http_extra))
        pos = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        self.proc = spawn([os.path.join(ROOT, "storaged"), "-c", self.conf],
                          stdout=open(os.path.join(self.dir, "stdout"), "ab"), stderr=subprocess.STDOUT)
        end = time.time() + 30
        while time.time() < end:
            if os.path.exists(self.log):
                with open(self.log) as f:
                    f.seek(pos)
                    if "event=ready" in f.read():
                        return
            if self.proc.poll() is not None:
                with open(os.path.join(self.dir, "stdout"), errors="replace") as f:
                    tail = f.read()[-300:].strip()
                PROCS.remove(self.proc)
                raise RuntimeError(f"{self.name} exited during start-up: {tail}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after 30 s")

    def restart(self):
        stop_proc(self.proc)
        self.start()

    def warm(self):
        """One authenticated request (fills the engine's password cache, so no workload pays the
        Argon2id verification), then resets VmHWM to the current RSS (clear_refs 5). Returns the
        peak RSS of start-up plus that login, in kB."""
        sh(["curl", "-sSf", "-u", f"bench:{PW}", "-o", "/dev/null", f"http://127.0.0.1:{self.http}/api/v1/me"])
        peak = self.status("VmHWM")
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")
        return peak

    def status(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
        return 0


class Peer:
    def __init__(self, name):
        self.name = name
        self.procs = []


def start_vsftpd():
    d = os.path.join(TMP, "vsftpd")
    os.makedirs(os.path.join(d, "root", "up"))
    os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
    os.chmod(os.path.join(d, "root"), 0o755)
    shutil.chown(os.path.join(d, "root", "up"), "ftp", "ftp")
    port = free_port()
    with open(os.path.join(d, "vsftpd.conf"), "w") as f:
        f.write(f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_umask=022
no_anon_password=YES
anon_root={d}/root
ftp_username=ftp
secure_chroot_dir=/var/run/vsftpd/empty
seccomp_sandbox=NO
xferlog_enable=NO
max_clients=2000
max_per_ip=0
pasv_enable=YES
""")
    p = spawn(["/usr/sbin/vsftpd", os.path.join(d, "vsftpd.conf")],
              stdout=open(os.path.join(d, "stdout"), "wb"), stderr=subprocess.STDOUT)
    if not wait_port(port) or p.poll() is not None:
        raise RuntimeError("vsftpd did not start")
    ver = out("dpkg-query -W -f '${Version}' vsftpd").split("-")[0]
    return {"name": f"vsftpd {ver}", "port": port, "login": "anonymous,x", "user": "anonymous",
            "pw": "x", "dir": "/up", "proc": p}


def start_pureftpd():
    d = os.path.join(TMP, "pure")
    for sub in ("deb", "x", "home"):
        os.makedirs(os.path.join(d, sub))
    sh(["apt-get", "download", "pure-ftpd", "pure-ftpd-common"], cwd=os.path.join(d, "deb"),
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    debs = [x for x in os.listdir(os.path.join(d, "deb")) if x.endswith(".deb")]
    for deb in debs:
        sh(["dpkg", "-x", os.path.join(d, "deb", deb), os.path.join(d, "x")])
    ver = next((re.sub(r"^pure-ftpd_([0-9.]+).*", r"\1", x) for x in debs
                if x.startswith("pure-ftpd_")), "?")
    pf, pw = os.path.join(d, "x/usr/sbin/pure-ftpd"), os.path.join(d, "x/usr/bin/pure-pw")
    shutil.chown(os.path.join(d, "home"), "ftp", "ftp")
    sh([pw, "useradd", "bench", "-u", "ftp", "-g", "ftp", "-d", os.path.join(d, "home"),
        "-f", os.path.join(d, "pureftpd.passwd")], input=f"{PW}\n{PW}\n", text=True,
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sh([pw, "mkdb", os.path.join(d, "pureftpd.pdb"), "-f", os.path.join(d, "pureftpd.passwd")],
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    # -E no anonymous, -H no DNS, -A chroot everyone, -u 1 min uid, -c/-C clients
    p = spawn([pf, "-S", f"127.0.0.1,{port}", "-l", f"puredb:{d}/pureftpd.pdb", "-E", "-H", "-A",
               "-u", "1", "-c", "2000", "-C", "2000"],
              stdout=open(os.path.join(d, "stdout"), "wb"), stderr=subprocess.STDOUT)
    if not wait_port(port) or p.poll() is not None:
        raise RuntimeError("pure-ftpd did not start")
    return {"name": f"pure-ftpd {ver}", "port": port, "login": f"bench,{PW}", "user": "bench",
            "pw": PW, "dir": "", "proc": p}


def start_sshd():
    d = os.path.join(TMP, "sshd")
    os.makedirs(os.path.join(d, "root"))
    os.makedirs("/run/sshd", exist_ok=True)
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "host_key"), "-C", "host"])
    shutil.copy(os.path.join(TMP, "client_key.pub"), os.path.join(d, "authorized_keys"))
    port = free_port()
    with open(os.path.join(d, "sshd_config"), "w") as f:
        f.write(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 2000
MaxSessions 10
Subsystem sftp internal-sftp
""")
    p = spawn(["/usr/sbin/sshd", "-f", os.path.join(d, "sshd_config"), "-D", "-e"],
              stdout=open(os.path.join(d, "log"), "wb"), stderr=subprocess.STDOUT)
    if not wait_port(port) or p.poll() is not None:
        raise RuntimeError("sshd did not start")
    ver = out("ssh -V 2>&1").split(",")[0]
    return {"name": f"OpenSSH sshd {ver.replace('OpenSSH_', '')} internal-sftp", "port": port,
            "user": "root", "dir": os.path.join(d, "root"), "proc": p}


def start_nginx():
    d = os.path.join(TMP, "nginx")
    os.makedirs(os.path.join(d, "root"))
    os.makedirs(os.path.join(d, "tmp"))
    os.chmod(d, 0o755)
    os.chmod(os.path.join(d, "root"), 0o777)
    os.chmod(os.path.join(d, "tmp"), 0o777)
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {d}/root;
        client_max_body_size 0;
        location / {{
            dav_methods PUT DELETE MKCOL;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
    }}
}}
""")
    p = spawn(["nginx", "-c", os.path.join(d, "nginx.conf"), "-p", d],
              stdout=open(os.path.join(d, "stdout"), "wb"), stderr=subprocess.STDOUT)
    if not wait_port(port) or p.poll() is not None:
        raise RuntimeError("nginx did not start")
    ver = out("nginx -v 2>&1").split("/")[-1]
    return {"name": f"nginx {ver} (dav PUT)", "port": port, "base": f"http://127.0.0.1:{port}",
            "auth": [], "proc": p}


# ------------------------------------------------------------ clients
LFTP_SET = "set ftp:ssl-allow no; set net:max-retries 1; set cmd:fail-exit yes; set xfer:clobber yes"


def barrier_cmds(tag):
    """Shell escapes that make a client wait, once logged in, until every parallel client is:
    it creates ready.TAG, then waits for the file `go` (see release())."""
    if tag is None:
        return []
    return [f"!touch {TMP}/ready.{tag}", f"!while [ ! -e {TMP}/go ]; do sleep 0.002; done"]


def release(n, procs):
    """Waits until n clients are logged in (ready.* files), then lets them all go."""
    end = time.time() + 120
    while len([x for x in os.listdir(TMP) if x.startswith("ready.")]) < n:
        if time.time() > end or any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.01)
    open(os.path.join(TMP, "go"), "w").close()


def reset_barrier():
    for x in os.listdir(TMP):
        if x.startswith("ready.") or x == "go":
            os.unlink(os.path.join(TMP, x))


def lftp_start(srv, cmds, tag, barrier=False):
    """Starts one lftp session: login, [barrier,] timestamp, cmds, timestamp."""
    script = os.path.join(TMP, f"lftp.{tag}")
    with open(script, "w") as f:
        f.write("\n".join([LFTP_SET, f"open -u {srv['login']} -p {srv['port']} 127.0.0.1",
                           "cls / > /dev/null"] + barrier_cmds(tag if barrier else None) + ["!date +%s.%N"]
                          + cmds + ["!date +%s.%N", "bye"]) + "\n")
    return subprocess.Popen(["lftp", "-f", script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def span_of(procs, what):
    """Waits for client processes that print two timestamps; max(end) - min(start)."""
    starts, ends = [], []
    for p in procs:
        text, _ = p.communicate()
        ts = dates(text)
        if p.returncode != 0 or len(ts) < 2:
            raise RuntimeError(f"{what} failed (rc {p.returncode}): {text[-400:]}")
        starts.append(ts[0])
        ends.append(ts[-1])
    return max(ends) - min(starts)


def ssh_opts(srv):
    return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-i", os.path.join(TMP, "client_key"),
            "-c", CIPHER, "-P", str(srv["port"])]


def sftp_start(srv, cmds, tag, barrier=False):
    batch = os.path.join(TMP, f"sftp.{tag}")
    with open(batch, "w") as f:
        f.write("\n".join(barrier_cmds(tag if barrier else None) + ["!date +%s.%N"] + cmds + ["!date +%s.%N"])
                + "\n")
    return subprocess.Popen(["sftp"] + ssh_opts(srv) + ["-b", batch, f"{srv['user']}@127.0.0.1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def curl_wall(args, what):
    t0 = time.time()
    r = subprocess.run(["curl", "-sSf"] + args, capture_output=True, text=True)
    t1 = time.time()
    if r.returncode != 0:
        raise RuntimeError(f"{what}: curl rc {r.returncode}: {r.stderr[-300:]}")
    return t1 - t0, r.stdout


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


# ------------------------------------------------------------ the benchmark
class Bench:
    def __init__(self, a):
        self.a = a
        q = a.quick
        self.big_mb = 256 if q else 1024
        self.nsmall = 500 if q else 2000
        self.npar, self.par_mb = 8, (16 if q else 64)
        self.npsmall = 125 if q else 500  # files per session in the 8-session small-file workload
        self.nlat = 100 if q else 200
        self.scale_files = 100_000 if q else 1_000_000
        self.scale_bigdir = 50_000 if q else 100_000
        self.nidle = 1000
        self.http_conn_memory = "?"
        if a.sizes:  # debugging: BIG_MB,NSMALL,PAR_MB,NLAT,SCALE_FILES,SCALE_BIGDIR,NIDLE
            (self.big_mb, self.nsmall, self.par_mb, self.nlat, self.scale_files, self.scale_bigdir,
             self.nidle) = [int(x) for x in a.sizes.split(",")]
        self.runs = a.runs
        self.res = {}      # (proto, workload, server) -> [values]
        self.rss = {}      # (proto, workload, server) -> peak kB
        self.notes = []    # free-text lines for the doc
        self.failed = []   # (what, why)
        self.servers = {}  # proto -> [(key, label)]
        self.limits = {}
        self.scale = {}
        self.idle = {}
        self.profiles = []
        self.login_peak = []  # VmHWM after start-up + one Argon2id login, kB

    def add(self, proto, wl, srv, v):
        self.res.setdefault((proto, wl, srv), []).append(v)

    # -------------------------------------------------------- inputs
    def make_inputs(self):
        log(f"generating inputs in {TMP}")
        src = os.path.join(TMP, "src")
        os.makedirs(os.path.join(src, "small"))
        self.big = os.path.join(src, "big.bin")
        sh(f"head -c {self.big_mb * MiB} /dev/urandom > {self.big}")
        self.par = []
        for i in range(self.npar):
            p = os.path.join(src, f"p{i + 1}.bin")
            sh(f"head -c {self.par_mb * MiB} /dev/urandom > {p}")
            self.par.append(p)
        self.small_dir = os.path.join(src, "small")
        self.small_names = [f"s{i:05d}" for i in range(self.nsmall)]
        self.refresh_small()
        # 8 sessions x npsmall files: one directory per session
        self.psmall_dirs = [os.path.join(src, f"psmall{i}") for i in range(self.npar)]
        for d in self.psmall_dirs:
            os.makedirs(d)
        self.refresh_psmall()
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(TMP, "client_key"), "-C", "bench"])

    def refresh_psmall(self):
        for d in self.psmall_dirs:
            for i in range(self.npsmall):
                with open(os.path.join(d, f"s{i:05d}"), "wb") as f:
                    f.write(os.urandom(4096))

    def big_sha(self):
        """SHA-256 of the big input as it is now (mutate() changes it), cached by mtime."""
        st = os.stat(self.big)
        if getattr(self, "_big_sha", (None, None))[0] != (st.st_mtime_ns, st.st_size):
            h = hashlib.sha256()
            with open(self.big, "rb") as fh:
                for b in iter(lambda: fh.read(MiB), b""):
                    h.update(b)
            self._big_sha = ((st.st_mtime_ns, st.st_size), h.hexdigest())
        return self._big_sha[1]

    def store_big(self, proto):
        """Stores the big input as it is now in every storaged (over HTTP, not timed), for the
        instant workloads; returns (sha256, size)."""
        for sd in self.sds:
            curl_wall(["-u", f"bench:{PW}", "-T", self.big, "-o", "/dev/null",
                       f"http://127.0.0.1:{sd.http}/api/v1/fs/instant-src-{proto}"], "PUT")
        return self.big_sha(), self.big_mb * MiB

    def refresh_small(self):
        self.small_sums = {}
        for n in self.small_names:
            data = os.urandom(4096)
            with open(os.path.join(self.small_dir, n), "wb") as f:
                f.write(data)
            self.small_sums[n] = hashlib.sha256(data).hexdigest()

    # -------------------------------------------------------- physical limits
    def physical(self):
        log("physical limits: dd with fsync, fsync latency, SHA-256, loopback TCP")
        dd, lat, dgst, tcp = [], [], [], []
        ddf = os.path.join(TMP, "dd.out")
        for r in range(self.runs):
            sync()
            t0 = time.time()
            sh(["dd", f"if={self.big}", f"of={ddf}", "bs=4M", "conv=fsync", "status=none"])
            dd.append(self.big_mb / (time.time() - t0))
            os.unlink(ddf)
            sync()
            # fsync latency: 4 KiB write + fsync of a new file, 100 times
            ls = []
            fd = os.open(os.path.join(TMP, "fsync.test"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            for i in range(100):
                t0 = time.perf_counter()
                os.pwrite(fd, os.urandom(4096), i * 4096)
                os.fsync(fd)
                ls.append((time.perf_counter() - t0) * 1000)
            os.close(fd)
            os.unlink(os.path.join(TMP, "fsync.test"))
            lat.append(statistics.median(ls))
            t0 = time.time()
            sh(["openssl", "dgst", "-sha256", self.big], stdout=subprocess.DEVNULL)
            dgst.append(self.big_mb / (time.time() - t0))
            tcp.append(self.loopback())
        self.limits["dd"] = dd
        self.limits["fsync_ms"] = lat
        self.limits["sha"] = dgst
        self.limits["tcp"] = tcp
        o = out(f"openssl speed -evp sha256 -bytes 16384 -seconds {1 if self.a.quick else 3} 2>/dev/null")
        m = re.search(r"^sha256\s.*?([\d.]+)k\s*$", o, re.M)
        self.limits["sha_speed"] = float(m.group(1)) * 1000 / MiB if m else None
        for k in ("dd", "sha", "tcp"):
            log(f"  {k}: {fmt(self.limits[k])} MiB/s")
        log(f"  fsync 4 KiB: {fmt(self.limits['fsync_ms'])} ms; openssl speed sha256: {self.limits['sha_speed']}")

    def loopback(self):
        """MiB/s of 1 GiB (quick: 256 MiB) over one loopback TCP connection, two processes."""
        code = r"""
import os, socket, sys, time
n = int(sys.argv[1])
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
port = ls.getsockname()[1]
pid = os.fork()
if pid == 0:
    ls.close()
    s = socket.create_connection(("127.0.0.1", port))
    buf = memoryview(bytearray(1 << 20)); left = n
    while left > 0:
        k = min(left, len(buf)); s.sendall(buf[:k]); left -= k
    s.close(); os._exit(0)
c, _ = ls.accept()
buf = bytearray(1 << 20); got = 0; t0 = None
while True:
    k = c.recv_into(buf)
    if t0 is None: t0 = time.perf_counter()
    if not k: break
    got += k
t = time.perf_counter() - t0
os.waitpid(pid, 0)
print(got / t / 1048576)
"""
        return float(out([PY, "-c", code, str(self.big_mb * MiB)]))

    # -------------------------------------------------------- protocol runs
    def measure(self, proto, wl, targets, fn):
        """Runs fn(key, srv, run) for every run and target, interleaved; storaged restarted
        first so that its VmHWM is this workload's peak."""
        for sd in self.sds:
            sd.restart()
            self.login_peak.append(sd.warm())
        for r in range(self.runs):
            for key, srv in targets:
                if (proto, key) in self.dead:
                    continue
                try:
                    v = fn(key, srv, r)
                    if v is not None:
                        self.add(proto, wl, key, v)
                except Exception as e:  # a peer failing must not stop the others
                    self.failed.append((f"{proto} {wl} {key} run {r + 1}", str(e)[:300]))
                    log(f"FAILED {proto} {wl} {key}: {str(e)[:300]}")
        for sd in self.sds:
            if any(k == sd.name for k, _ in targets):
                self.rss[(proto, wl, sd.name)] = sd.status("VmHWM")
        summary = ", ".join(f"{k} {fmt(self.res.get((proto, wl, k)))}" for k, _ in targets)
        log(f"{proto} {wl}: {summary}")
        # every value in run order: ratios of one run (servers interleaved) can be paired up
        log(f"{proto} {wl} by run: " + "; ".join(
            f"{k} [{', '.join(f'{v:.3g}' for v in self.res.get((proto, wl, k), []))}]" for k, _ in targets))

    def sd_target(self, sd, proto):
        if proto == "ftp":
            return {"name": sd.name, "port": sd.ftp, "login": f"bench,{PW}", "user": "bench", "pw": PW,
                    "dir": ""}
        if proto == "sftp":
            return {"name": sd.name, "port": sd.sftp, "user": "bench", "dir": ""}
        return {"name": sd.name, "base": f"http://127.0.0.1:{sd.http}/api/v1/fs",
                "auth": ["-u", f"bench:{PW}"], "sd": sd}

    def proto_run(self, proto):
        peers = []
        starters = {"ftp": [start_vsftpd, start_pureftpd], "sftp": [start_sshd], "http": [start_nginx]}[proto]
        for st in starters:
            try:
                peers.append(st())
            except Exception as e:
                self.failed.append((f"{proto} peer {st.__name__[6:]}", str(e)[:300]))
                log(f"peer {st.__name__[6:]} could not start: {e}")
        targets = [(sd.name, self.sd_target(sd, proto)) for sd in self.sds]
        targets += [(p["name"], p) for p in peers]
        self.servers[proto] = [k for k, _ in targets]
        self.peer_names[proto] = [p["name"] for p in peers]
        self.dead = set()
        getattr(self, f"run_{proto}")(proto, targets)
        for p in peers:
            stop_proc(p["proc"])

    # ---- FTP (lftp; latency with python ftplib)
    def run_ftp(self, proto, T):
        def path(srv, name):  # one storaged serves all protocols: names carry the protocol
            return f"{srv['dir']}/{proto}-{name}" if srv["dir"] else f"{proto}-{name}"

        def big_up(key, srv, r):
            mutate(self.big)
            sync()
            return self.big_mb / span_of([lftp_start(srv, [f"put '{self.big}' -o {path(srv, f'big-{r}')}"],
                                                     "up")], "put")
        self.measure(proto, "big_up", T, big_up)

        def big_down(key, srv, r):
            return self.big_mb / span_of([lftp_start(srv, [f"get {path(srv, 'big-0')} -o /dev/null"],
                                                     "down")], "get")
        self.measure(proto, "big_down", T, big_down)

        def small_up(key, srv, r):
            if key == T[0][0]:
                self.refresh_small()
            d = path(srv, f"small-{r}")
            sync()
            return self.nsmall / span_of([lftp_start(srv, [f"mkdir {d}", f"mput -O {d} {self.small_dir}/s*"],
                                                     "small")], "mput")
        self.measure(proto, "small_up", T, small_up)

        def par_up(key, srv, r):
            for p in self.par:
                mutate(p)
            sync()
            reset_barrier()
            ps = [lftp_start(srv, [f"put '{p}' -o {path(srv, f'par-{r}-{i}')}"], f"par{i}", barrier=True)
                  for i, p in enumerate(self.par)]
            release(self.npar, ps)
            return self.npar * self.par_mb / span_of(ps, "parallel put")
        self.measure(proto, "par_up", T, par_up)

        def par_small(key, srv, r):
            if key == T[0][0]:
                self.refresh_psmall()
            sync()
            reset_barrier()
            ps = []
            for i, src in enumerate(self.psmall_dirs):
                d = path(srv, f"psmall-{r}-{i}")
                ps.append(lftp_start(srv, [f"mkdir {d}", f"mput -O {d} {src}/s*"], f"psmall{i}", barrier=True))
            release(self.npar, ps)
            return self.npar * self.npsmall / span_of(ps, "parallel mput")
        self.measure(proto, "par_small", T, par_small)

        lat_files = self.small_names[:self.nlat]

        def lat(key, srv, r):
            # small-{last run} holds the current small_sums
            d = path(srv, f"small-{self.runs - 1}")
            f = ftplib.FTP()
            f.connect("127.0.0.1", srv["port"], timeout=30)
            f.login(srv["user"], srv["pw"])
            ts = []
            for n in lat_files:
                chunks = []
                t0 = time.perf_counter()
                f.retrbinary(f"RETR {d}/{n}", chunks.append)
                ts.append((time.perf_counter() - t0) * 1000)
                if hashlib.sha256(b"".join(chunks)).hexdigest() != self.small_sums[n]:
                    raise RuntimeError(f"{n}: content differs")
            f.quit()
            self.add(proto, "lat_p99", key, pct(ts, 99))
            return pct(ts, 50)
        self.measure(proto, "lat_p50", T, lat)
        for sd in self.sds:
            self.rss[(proto, "lat_p99", sd.name)] = self.rss.get((proto, "lat_p50", sd.name))

        # instant re-upload of the stored big file (storaged only): SITE INSTANT after login
        digest, size = self.store_big("ftp")

        def instant(key, srv, r):
            f = ftplib.FTP()
            f.connect("127.0.0.1", srv["port"], timeout=30)
            f.login(srv["user"], srv["pw"])
            for i in range(max(5, self.runs)):
                t0 = time.perf_counter()
                rep = f.sendcmd(f"SITE INSTANT {digest} {size} ftp-again-{r}-{i}")
                t = (time.perf_counter() - t0) * 1000
                if not rep.startswith("250"):
                    raise RuntimeError(f"SITE INSTANT: {rep}")
                self.add(proto, "instant", key, t)
            f.quit()
            return None
        self.measure(proto, "instant", [(k, s_) for k, s_ in T if k in (sd.name for sd in self.sds)], instant)

    # ---- SFTP (OpenSSH sftp; latency with paramiko)
    def run_sftp(self, proto, T):
        def path(srv, name):  # one storaged serves all protocols: names carry the protocol
            return f"{srv['dir']}/{proto}-{name}" if srv["dir"] else f"{proto}-{name}"

        def big_up(key, srv, r):
            mutate(self.big)
            sync()
            return self.big_mb / span_of([sftp_start(srv, [f"put {self.big} {path(srv, f'big-{r}')}"], "up")],
                                         "put")
        self.measure(proto, "big_up", T, big_up)

        def big_down(key, srv, r):
            return self.big_mb / span_of([sftp_start(srv, [f"get {path(srv, 'big-0')} /dev/null"], "down")],
                                         "get")
        self.measure(proto, "big_down", T, big_down)

        def small_up(key, srv, r):
            if key == T[0][0]:
                self.refresh_small()
            sync()
            return self.nsmall / span_of([sftp_start(srv, [f"put -r {self.small_dir} {path(srv, f'small-{r}')}"],
                                                     "small")], "put -r")
        self.measure(proto, "small_up", T, small_up)

        def par_up(key, srv, r):
            for p in self.par:
                mutate(p)
            sync()
            reset_barrier()
            ps = [sftp_start(srv, [f"put {p} {path(srv, f'par-{r}-{i}')}"], f"par{i}", barrier=True)
                  for i, p in enumerate(self.par)]
            release(self.npar, ps)
            return self.npar * self.par_mb / span_of(ps, "parallel put")
        self.measure(proto, "par_up", T, par_up)

        def par_small(key, srv, r):
            if key == T[0][0]:
                self.refresh_psmall()
            sync()
            reset_barrier()
            ps = [sftp_start(srv, [f"put -r {src} {path(srv, f'psmall-{r}-{i}')}"], f"psmall{i}", barrier=True)
                  for i, src in enumerate(self.psmall_dirs)]
            release(self.npar, ps)
            return self.npar * self.npsmall / span_of(ps, "parallel put -r")
        self.measure(proto, "par_small", T, par_small)

        import paramiko
        lat_files = self.small_names[:self.nlat]
        key_obj = paramiko.Ed25519Key.from_private_key_file(os.path.join(TMP, "client_key"))

        def lat(key, srv, r):
            d = path(srv, f"small-{self.runs - 1}")
            tr = paramiko.Transport(("127.0.0.1", srv["port"]))
            tr.connect(username=srv["user"], pkey=key_obj)
            cl = paramiko.SFTPClient.from_transport(tr)
            ts = []
            for n in lat_files:
                t0 = time.perf_counter()
                with cl.open(f"{d}/{n}", "rb") as fh:
                    data = fh.read(8192)
                ts.append((time.perf_counter() - t0) * 1000)
                if hashlib.sha256(data).hexdigest() != self.small_sums[n]:
                    raise RuntimeError(f"{n}: content differs")
            self.sftp_lat_cipher = tr.remote_cipher
            cl.close()
            tr.close()
            self.add(proto, "lat_p99", key, pct(ts, 99))
            return pct(ts, 50)
        self.measure(proto, "lat_p50", T, lat)
        for sd in self.sds:
            self.rss[(proto, "lat_p99", sd.name)] = self.rss.get((proto, "lat_p50", sd.name))

        # instant re-upload of the stored big file (storaged only): instant@storaged after login
        from paramiko.sftp import CMD_EXTENDED
        try:
            from paramiko.sftp import int64
        except ImportError:
            from paramiko.py3compat import long as int64
        digest, size = self.store_big("sftp")

        def instant(key, srv, r):
            tr = paramiko.Transport(("127.0.0.1", srv["port"]))
            tr.connect(username=srv["user"], pkey=key_obj)
            cl = paramiko.SFTPClient.from_transport(tr)
            for i in range(max(5, self.runs)):
                t0 = time.perf_counter()
                _, msg = cl._request(CMD_EXTENDED, "instant@storaged", f"/sftp-again-{r}-{i}", digest,
                                     int64(size))
                t = (time.perf_counter() - t0) * 1000
                word = msg.get_text()
                if word != "stored":
                    raise RuntimeError(f"instant@storaged: {word}")
                self.add(proto, "instant", key, t)
            cl.close()
            tr.close()
            return None
        self.measure(proto, "instant", [(k, s_) for k, s_ in T if k in (sd.name for sd in self.sds)], instant)

    # ---- HTTP (curl)
    def run_http(self, proto, T):
        def big_up(key, srv, r):
            mutate(self.big)
            sync()
            t, _ = curl_wall(srv["auth"] + ["-T", self.big, "-o", "/dev/null", f"{srv['base']}/http-big-{r}"], "PUT")
            return self.big_mb / t
        self.measure(proto, "big_up", T, big_up)

        def big_down(key, srv, r):
            t, _ = curl_wall(srv["auth"] + ["-o", "/dev/null", f"{srv['base']}/http-big-0"], "GET")
            return self.big_mb / t
        self.measure(proto, "big_down", T, big_down)

        def small_up(key, srv, r):
            if key == T[0][0]:
                self.refresh_small()
            if "sd" in srv:
                curl_wall(srv["auth"] + ["-X", "POST", "-o", "/dev/null", f"{srv['base']}/http-small-{r}?op=mkdir"],
                          "mkdir")
            cfg = os.path.join(TMP, "curl.cfg")
            with open(cfg, "w") as f:
                for n in self.small_names:
                    f.write(f'upload-file = "{self.small_dir}/{n}"\nurl = "{srv["base"]}/http-small-{r}/{n}"\n'
                            f'output = "/dev/null"\n')
            sync()
            t, _ = curl_wall(srv["auth"] + ["-K", cfg], "PUT small")
            return self.nsmall / t
        self.measure(proto, "small_up", T, small_up)

        def par_up(key, srv, r):
            for p in self.par:
                mutate(p)
            sync()
            t0 = time.time()
            ps = [subprocess.Popen(["curl", "-sSf"] + srv["auth"] + ["-T", p, "-o", "/dev/null",
                                                                     f"{srv['base']}/http-par-{r}-{i}"])
                  for i, p in enumerate(self.par)]
            rcs = [p.wait() for p in ps]
            t = time.time() - t0
            if any(rcs):
                raise RuntimeError(f"parallel curl rc {rcs}")
            return self.npar * self.par_mb / t
        self.measure(proto, "par_up", T, par_up)

        def par_small(key, srv, r):
            if key == T[0][0]:
                self.refresh_psmall()
            cfgs = []
            for i, src in enumerate(self.psmall_dirs):
                if "sd" in srv:
                    curl_wall(srv["auth"] + ["-X", "POST", "-o", "/dev/null",
                                             f"{srv['base']}/http-psmall-{r}-{i}?op=mkdir"], "mkdir")
                cfg = os.path.join(TMP, f"curl-psmall{i}.cfg")
                with open(cfg, "w") as f:
                    for k in range(self.npsmall):
                        f.write(f'upload-file = "{src}/s{k:05d}"\nurl = "{srv["base"]}/http-psmall-{r}-{i}/s{k:05d}"\n'
                                f'output = "/dev/null"\n')
                cfgs.append(cfg)
            sync()
            t0 = time.time()
            ps = [subprocess.Popen(["curl", "-sSf"] + srv["auth"] + ["-K", cfg]) for cfg in cfgs]
            rcs = [p.wait() for p in ps]
            t = time.time() - t0
            if any(rcs):
                raise RuntimeError(f"parallel curl rc {rcs}")
            return self.npar * self.npsmall / t
        self.measure(proto, "par_small", T, par_small)

        lat_files = self.small_names[:self.nlat]

        def lat(key, srv, r):
            d = os.path.join(TMP, "lat")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            cfg = os.path.join(TMP, "curl-lat.cfg")
            with open(cfg, "w") as f:
                # one warm-up transfer first (its time is dropped): connection set-up
                f.write(f'url = "{srv["base"]}/http-small-{self.runs - 1}/{lat_files[0]}"\noutput = "/dev/null"\n')
                for n in lat_files:
                    f.write(f'url = "{srv["base"]}/http-small-{self.runs - 1}/{n}"\noutput = "{d}/{n}"\n')
            _, o = curl_wall(srv["auth"] + ["-w", "%{time_total}\\n", "-K", cfg], "GET small")
            ts = [float(x) * 1000 for x in o.split()][1:]
            if len(ts) != len(lat_files):
                raise RuntimeError("curl printed %d times" % len(ts))
            for n in lat_files:
                with open(os.path.join(d, n), "rb") as fh:
                    if hashlib.sha256(fh.read()).hexdigest() != self.small_sums[n]:
                        raise RuntimeError(f"{n}: content differs")
            self.add(proto, "lat_p99", key, pct(ts, 99))
            return pct(ts, 50)
        self.measure(proto, "lat_p50", T, lat)
        for sd in self.sds:
            self.rss[(proto, "lat_p99", sd.name)] = self.rss.get((proto, "lat_p50", sd.name))

        # instant re-upload of the stored big file (storaged only)
        sd_targets = [(k, s) for k, s in T if "sd" in s]
        with open(self.big, "rb") as fh:
            h = hashlib.sha256()
            while True:
                b = fh.read(MiB)
                if not b:
                    break
                h.update(b)
        self.big_sum = h.hexdigest()
        n_inst = max(5, self.runs)

        def instant(key, srv, r):
            if r == 0:  # store the file once, the normal way (not timed)
                curl_wall(srv["auth"] + ["-T", self.big, "-o", "/dev/null", f"{srv['base']}/instant-src"], "PUT")
            for i in range(n_inst):
                hdr = os.path.join(TMP, "inst.hdr")
                _, o = curl_wall(srv["auth"] + ["-T", self.big, "-H", f"X-Checksum-SHA256: {self.big_sum}",
                                                "-H", "Expect: 100-continue", "-D", hdr, "-o", "/dev/null",
                                                "-w", "%{time_total} %{size_upload} %{http_code}",
                                                f"{srv['base']}/again-{r}-{i}"], "instant PUT")
                t, sent, code = o.split()
                with open(hdr) as fh:
                    instant_hdr = re.search(r"^X-Instant-Upload: 1", fh.read(), re.M | re.I)
                if code != "201" or int(sent) != 0 or not instant_hdr:
                    raise RuntimeError(f"not instant: status {code}, {sent} body bytes sent")
                self.add(proto, "instant", key, float(t) * 1000)
                # the JSON API (proof of possession; this user holds the content: 201 at once)
                body = '{"path":"/api-again-%d-%d","sha256":"%s","size":%d}' % (r, i, self.big_sum,
                                                                               self.big_mb * MiB)
                base = srv["base"].replace("/api/v1/fs", "/api/v1/instant")
                _, o = curl_wall(srv["auth"] + ["-d", body, "-o", "/dev/null", "-w", "%{time_total} %{http_code}",
                                                base], "POST instant")
                t, code = o.split()
                if code != "201":
                    raise RuntimeError(f"POST /api/v1/instant: status {code}")
                self.add(proto, "instant_api", key, float(t) * 1000)
            return None
        self.measure(proto, "instant", sd_targets, instant)
        for sd in self.sds:
            self.rss[(proto, "instant_api", sd.name)] = self.rss.get((proto, "instant", sd.name))

    # -------------------------------------------------------- idle connections
    def idle_run(self):
        """nidle idle connections per front end; RSS per connection = (VmRSS after - before) / n.
        FTP and HTTP: `runs` times (median); SFTP once (opening 1,000 SSH sessions from one python
        client takes one to two minutes)."""
        sd = self.sds[0]
        for fe in ("ftp", "http", "sftp"):
            for r in range(1 if fe == "sftp" else self.runs):
                sd.restart()
                sd.warm()
                time.sleep(1)
                v = self.idle_once(sd, fe)
                self.idle.setdefault(fe, []).append(v)
                log(f"idle {fe} run {r + 1}: {v['n']} connections, RSS {v['before']} -> {v['after']} kB, "
                    f"{v['per_conn']} kB each" + (f" (stopped: {v['err']})" if v["err"] else ""))
        sd.restart()

    def idle_once(self, sd, fe):
        before = sd.status("VmRSS")
        conns, err = [], None
        t0 = time.time()
        try:
            if fe == "ftp":
                for _ in range(self.nidle):
                    f = ftplib.FTP()
                    f.connect("127.0.0.1", sd.ftp, timeout=30)
                    f.login("bench", PW)
                    conns.append(f)
            elif fe == "http":
                auth = base64.b64encode(f"bench:{PW}".encode()).decode()
                req = (f"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n").encode()
                for _ in range(self.nidle):
                    s = socket.create_connection(("127.0.0.1", sd.http), timeout=30)
                    s.sendall(req)
                    got = b""
                    while b"\r\n\r\n" not in got:
                        got += s.recv(65536)
                    head, _, body = got.partition(b"\r\n\r\n")
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError("GET /api/v1/me: " + head.split(b"\r\n")[0].decode())
                    m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                    need = int(m.group(1)) if m else 0
                    while len(body) < need:
                        body += s.recv(65536)
                    conns.append(s)
            else:
                import paramiko
                k = paramiko.Ed25519Key.from_private_key_file(os.path.join(TMP, "client_key"))
                for _ in range(self.nidle):
                    tr = paramiko.Transport(("127.0.0.1", sd.sftp))
                    tr.connect(username="bench", pkey=k)
                    cl = paramiko.SFTPClient.from_transport(tr)
                    cl.stat(".")
                    conns.append((tr, cl))
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
        open_s = time.time() - t0
        time.sleep(2)
        after = sd.status("VmRSS")
        threads = sd.status("Threads")
        n = len(conns)
        for c in conns:
            try:
                if fe == "sftp":
                    c[1].close()
                    c[0].close()
                else:
                    c.close()
            except Exception:
                pass
        return {"n": n, "before": before, "after": after, "threads": threads, "open_s": open_s,
                "per_conn": (after - before) / n if n else None, "err": err}

    # -------------------------------------------------------- scale (engine)
    def scale_run(self):
        exe = os.path.join(TMP, "scale")
        libs = out("pkg-config --libs sqlite3 libsodium libcrypto inih").split()
        cflags = out("pkg-config --cflags sqlite3 libsodium libcrypto inih").split()
        sh(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-pthread",
            f"-I{ROOT}", f"-I{ROOT}/core", f"-I{ROOT}/util"] + cflags + ["-o", exe, os.path.join(ROOT, "bench/scale.c"),
                                                      os.path.join(ROOT, "build/libsdcore.a")] + libs
           + ["-ldl", "-lpthread", "-lm"])
        d = os.path.join(TMP, "scale-data")
        os.makedirs(d)
        conf = os.path.join(d, "scale.conf")
        with open(conf, "w") as f:
            f.write(f"[storaged]\ndata_dir = {d}/data\nmodule_dir = {ROOT}/frontends\nlog_level = warn\n"
                    f"durability = normal\n")
        log(f"scale: importing {self.scale_files} files through the engine API (durability = normal)")
        r = subprocess.run([exe, conf, str(self.scale_files), str(self.scale_bigdir), "2"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.failed.append(("scale", r.stderr[-300:]))
            log("scale failed: " + r.stderr[-300:])
            return
        for line in r.stdout.split():
            k, _, v = line.partition("=")
            self.scale[k] = float(v)
        log(f"scale: {self.scale}")
        shutil.rmtree(d, ignore_errors=True)

    # -------------------------------------------------------- profiles
    def profile_run(self):
        """One extra run of the workloads whose targets are most often missed, observed from outside:
        perf record (on-CPU call samples) during an HTTP upload (full), 4 KiB uploads (normal) and a
        download; strace -f -c -w (system calls: count and wall time) during 4 KiB uploads with both
        durabilities. Neither changes what storaged does; strace slows it down (ptrace stops), so
        its times are for shares, not speed."""
        sdf, sdn = self.sds
        jobs = []
        if shutil.which("perf"):
            jobs += [("perf", "HTTP 1 file upload, durability=full", sdf, "up"),
                     ("perf", "HTTP 4 KiB uploads, durability=normal", sdn, "small"),
                     ("perf", "HTTP 1 file download", sdf, "down")]
        if shutil.which("strace"):
            jobs += [("strace", "HTTP 4 KiB uploads, durability=full", sdf, "small"),
                     ("strace", "HTTP 4 KiB uploads, durability=normal", sdn, "small"),
                     ("strace", "FTP 4 KiB uploads, durability=full", sdf, "ftp-small"),
                     ("strace", "SFTP 4 KiB uploads, durability=full", sdf, "sftp-small"),
                     ("strace", "HTTP 4 KiB downloads, durability=full", sdf, "small-down")]
        for sd in self.sds:
            sd.restart()
            sd.warm()
        prev_small = {}  # storaged -> the k of its last HTTP small upload (downloads read it back)
        for k, (tool, title, sd, kind) in enumerate(jobs):
            data = os.path.join(TMP, f"prof.{k}")
            if tool == "perf":
                p = spawn(["perf", "record", "-F", "999", "-g", "-p", str(sd.proc.pid), "-o", data],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            else:
                p = spawn(["strace", "-f", "-c", "-w", "-e", "trace=!" + WAITS, "-o", data, "-p", str(sd.proc.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
            base = f"http://127.0.0.1:{sd.http}/api/v1/fs"
            auth = ["-u", f"bench:{PW}"]
            t0 = time.time()
            try:
                if kind == "up":
                    mutate(self.big)
                    curl_wall(auth + ["-T", self.big, "-o", "/dev/null", f"{base}/prof-big"], "PUT")
                elif kind == "down":
                    curl_wall(auth + ["-o", "/dev/null", f"{base}/prof-big"], "GET")
                elif kind == "ftp-small":
                    self.refresh_small()
                    srv = self.sd_target(sd, "ftp")
                    span_of([lftp_start(srv, [f"mkdir prof-ftp-{k}", f"mput -O prof-ftp-{k} {self.small_dir}/s*"],
                                        "prof")], "mput")
                elif kind == "sftp-small":
                    self.refresh_small()
                    srv = self.sd_target(sd, "sftp")
                    span_of([sftp_start(srv, [f"put -r {self.small_dir} prof-sftp-{k}"], "prof")], "put -r")
                elif kind == "small-down":
                    cfg = os.path.join(TMP, "curl.cfg")
                    with open(cfg, "w") as f:
                        for n in self.small_names:
                            f.write(f'url = "{base}/prof-small-{prev_small[sd.name]}/{n}"\noutput = "/dev/null"\n')
                    curl_wall(auth + ["-K", cfg], "GET small")
                else:
                    self.refresh_small()
                    curl_wall(auth + ["-X", "POST", "-o", "/dev/null", f"{base}/prof-small-{k}?op=mkdir"], "mkdir")
                    cfg = os.path.join(TMP, "curl.cfg")
                    with open(cfg, "w") as f:
                        for n in self.small_names:
                            f.write(f'upload-file = "{self.small_dir}/{n}"\nurl = "{base}/prof-small-{k}/{n}"\n'
                                    f'output = "/dev/null"\n')
                    curl_wall(auth + ["-K", cfg], "PUT small")
                    prev_small[sd.name] = k
            except Exception as e:
                self.failed.append((f"profile {title}", str(e)[:200]))
            wall = time.time() - t0
            stop_proc(p, signal.SIGINT)
            if tool == "perf":
                rep = out(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym",
                           "-g", "none", "--percent-limit", "2"])
                lines = [ln for ln in rep.splitlines() if ln.strip() and not ln.startswith("#")][:14]
                head = out(f"perf report -i {data} --stdio -g none 2>/dev/null | grep -m1 '^# Samples'")
                note = f"perf, {wall:.1f} s wall"
            else:
                rep = open(data).read() if os.path.exists(data) else ""
                lines = [ln for ln in rep.splitlines() if ln.strip()]
                calls = {}
                for ln in lines:
                    f = ln.split()
                    if len(f) >= 5 and f[-1].isidentifier() and f[3].isdigit():
                        calls[f[-1]] = int(f[3])
                lines = lines[:16]
                head = f"{len(self.small_names)} files uploaded while traced"
                note = f"strace -f -c -w, {wall:.1f} s wall under ptrace"
            self.profiles.append({"title": f"{title} ({note})", "wall": wall, "samples": head, "lines": lines,
                                  "calls": calls if tool == "strace" else {}})
            if os.path.exists(data):
                os.unlink(data)


# system calls that only wait for work (idle threads); left out of the strace summaries
WAITS = ("epoll_wait,epoll_pwait,poll,ppoll,select,pselect6,restart_syscall,futex,nanosleep,"
         "clock_nanosleep,accept,accept4")


# ------------------------------------------------------------ formatting
def fmt(vals, nd=None):
    if not vals:
        return "n/a"
    med = statistics.median(vals)
    if nd is None:
        nd = 0 if med >= 100 else (1 if med >= 10 else 2)
    return f"{med:.{nd}f} ({min(vals):.{nd}f}-{max(vals):.{nd}f})"


def med(vals):
    return statistics.median(vals) if vals else None


WL = [("big_up", "upload 1 file of {big} MiB", "MiB/s", True),
      ("big_down", "download it (page cache)", "MiB/s", True),
      ("small_up", "{nsmall} x 4 KiB uploads, one session", "files/s", True),
      ("par_up", "{npar} clients x {par} MiB uploads in parallel", "MiB/s", True),
      ("par_small", "{npar} sessions x {npsmall} x 4 KiB uploads in parallel", "files/s", True),
      ("lat_p50", "4 KiB download latency p50 ({nlat} files, one session)", "ms", False),
      ("lat_p99", "4 KiB download latency p99", "ms", False),
      ("instant", "instant re-upload of the {big} MiB file (HTTP: PUT + X-Checksum-SHA256; FTP: SITE INSTANT; "
                  "SFTP: instant@storaged), after login", "ms", False),
      ("instant_api", "instant re-upload, POST /api/v1/instant", "ms", False)]

CLIENT = {"ftp": "lftp {lftp} (`put`, `get`, `mput`; 8 lftp processes; timed inside the session after "
                 "login); latency: python ftplib (PASV + RETR per file)",
          "sftp": "OpenSSH sftp ({ssh}, `-c aes128-gcm@openssh.com`, batch mode, timed inside the session "
                  "after login; `put -r` for the small files); latency: paramiko {paramiko} (open, read, "
                  "close per file)",
          "http": "curl {curl} (`-T`; the small files and the latency as one curl process over one "
                  "keep-alive connection, `--config`; latency = curl's `time_total` per transfer)"}


def main():
    global TMP, KEEP
    ap = argparse.ArgumentParser(prog="bench/run.sh")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="ftp,sftp,http,engine")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--md", metavar="FILE", help="write the report to FILE, not docs/benchmarks.md")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--cmd", default="bench/run.sh")
    ap.add_argument("--sizes", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    only = set(a.only.split(","))
    if not only <= {"ftp", "sftp", "http", "engine"}:
        ap.error("--only takes ftp, sftp, http, engine (comma-separated)")
    KEEP = a.keep
    for p in ("storaged", "storagectl", "frontends/http.so", "frontends/ftp.so", "frontends/sftp.so",
              "build/libsdcore.a"):
        if not os.path.exists(os.path.join(ROOT, p)):
            sys.exit(f"run.sh: {p} missing: build first (make all)")
    os.makedirs("/var/tmp", exist_ok=True)
    TMP = tempfile.mkdtemp(prefix="sdbench.", dir="/var/tmp")
    os.chmod(TMP, 0o755)
    atexit.register(cleanup)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = datetime.datetime.now(datetime.timezone.utc)
    load0 = open("/proc/loadavg").read().split()[:3]

    b = Bench(a)
    b.peer_names = {}
    b.build = build_info()
    b.make_inputs()
    b.physical()
    b.sds = [Storaged("storaged (durability=full)", "full"), Storaged("storaged (durability=normal)", "normal")]
    for proto in ("ftp", "sftp", "http"):
        if proto in only:
            log(f"==== {proto}")
            b.proto_run(proto)
    if "engine" in only:
        log("==== engine: idle connections")
        b.idle_run()
        log("==== engine: tree of files")
        b.scale_run()
    if "http" in only and not a.no_profile:
        log("==== profiles")
        try:
            b.profile_run()
        except Exception as e:
            b.failed.append(("profiles", str(e)[:200]))
    for sd in b.sds:
        stop_proc(sd.proc)
    if build_info()["stamps"] != b.build["stamps"]:
        b.failed.append(("binaries", "storaged, storagectl, a module or libsdcore.a was rebuilt during the run: "
                         "figures may mix two builds"))
    ended = datetime.datetime.now(datetime.timezone.utc)
    load1 = open("/proc/loadavg").read().split()[:3]
    doc = report(b, a, started, ended, load0, load1)
    print(doc["table"])
    for w, why in b.failed:  # also in the doc; --no-doc would hide them
        log(f"FAILED {w}: {why}")
    if a.md:
        with open(a.md, "w", encoding="utf-8") as f:
            f.write(doc["md"].rstrip("\n") + "\n")
        log(f"wrote {a.md}")
    elif not a.no_doc:
        write_doc(doc["md"])
        log(f"wrote {os.path.join(ROOT, 'docs/benchmarks.md')}")
    return 1 if b.failed else 0


BINARIES = ("storaged", "storagectl", "frontends/http.so", "frontends/ftp.so", "frontends/sftp.so",
            "build/libsdcore.a")


def build_info():
    stamps = {p: os.stat(os.path.join(ROOT, p)).st_mtime for p in BINARIES}
    head = out(["git", "-C", ROOT, "log", "-1", "--format=%h %s"])
    dirty = out(["git", "-C", ROOT, "status", "--porcelain", "--", "core", "db", "frontends", "cli",
                 "migrations"]).splitlines()
    return {"stamps": stamps, "head": head, "dirty": dirty,
            "built": datetime.datetime.fromtimestamp(max(stamps.values()), datetime.timezone.utc)}


def machine():
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    df = out(["df", "-T", "/var/tmp"]).splitlines()[-1].split()
    dev, fs = df[0], df[1]
    disk = os.path.basename(dev)
    rot = out(f"cat /sys/block/{disk}/queue/rotational 2>/dev/null")
    model = out(f"cat /sys/block/{disk}/device/model 2>/dev/null") or "virtio block device" \
        if disk.startswith("vd") else out(f"cat /sys/block/{disk}/device/model 2>/dev/null")
    mem = int(next(ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))) // 1024
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": out("uname -sr"), "disk": f"{dev} ({model}, "
            f"rotational={rot or '?'})", "fs": fs, "mem": f"{mem} MiB",
            "os": out(". /etc/os-release && echo $PRETTY_NAME")}


def ratio_cell(num, den, target, higher=True):
    if num is None or den is None or den == 0 or num == 0:
        return "n/a", None
    r = num / den if higher else den / num
    return f"{r:.2f}", r >= target


def verdict(ok):
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def report(b, a, started, ended, load0, load1):
    m = machine()
    sizes = {"big": b.big_mb, "nsmall": b.nsmall, "npar": b.npar, "par": b.par_mb, "nlat": b.nlat,
             "npsmall": b.npsmall}
    L = b.limits
    sha, dd, tcp = med(L.get("sha")), med(L.get("dd")), med(L.get("tcp"))
    sdf, sdn = b.sds[0].name, b.sds[1].name
    md, tbl = [], []
    cmd = a.cmd
    md.append("# storaged benchmarks\n")
    md.append("Everything above the hand-written analysis and the per-protocol sections was written by one run of\n\n"
              f"    {cmd}\n\n"
              f"(`make bench{' BENCH_ARGS=' + repr(cmd.split(' ', 1)[1]) if ' ' in cmd else ''}` runs the same after installing "
              f"the peers and building), started {started:%Y-%m-%d %H:%M} UTC, "
              f"finished {ended:%H:%M} UTC. Load average (1/5/15 min) at the start {' '.join(load0)}, at the end "
              f"{' '.join(load1)}: the machine is shared with other work, so every figure is the **median "
              f"of {b.runs} runs** with the spread **(min-max)** in brackets, and runs of the servers are "
              f"interleaved (run 1 of every server, then run 2 ...).\n")
    md.append("## Machine\n")
    md.append(f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['mem']}\n- kernel: {m['kernel']} ({m['os']})\n"
              f"- disk: {m['disk']}, file system {m['fs']}; every server's data directory and the test "
              f"files are on it (under /var/tmp)\n")
    bi = b.build
    md.append(f"Code measured: commit `{bi['head']}`"
              + (f" plus uncommitted changes in {len(bi['dirty'])} file(s) of core/, db/, frontends/, cli/"
                 if bi["dirty"] else " (no uncommitted changes in core/, db/, frontends/, cli/)")
              + f"; newest binary built {bi['built']:%Y-%m-%d %H:%M} UTC; `-O2 -g` (the Makefile's default CFLAGS).\n")
    md.append("## Physical limits (same run)\n")
    md.append("| measure | median (min-max) |\n|---|---|")
    md.append(f"| disk write with fsync: `dd bs=4M conv=fsync` of the {b.big_mb} MiB file | {fmt(L.get('dd'))} MiB/s |")
    md.append(f"| fsync latency: 4 KiB write + fsync, median of 100 per run | {fmt(L.get('fsync_ms'))} ms |")
    md.append(f"| SHA-256: `openssl dgst -sha256` of the {b.big_mb} MiB file (page cache, one core) | {fmt(L.get('sha'))} MiB/s |")
    md.append(f"| SHA-256: `openssl speed -evp sha256`, 16 KiB blocks (one core, single run) | "
              f"{L.get('sha_speed') and round(L['sha_speed'])} MiB/s |")
    md.append(f"| loopback TCP: {b.big_mb} MiB over one 127.0.0.1 connection (python sender and receiver processes) "
              f"| {fmt(L.get('tcp'))} MiB/s |\n")
    md.append("SHA-256 speed in the targets below is the `openssl dgst` figure: the OpenSSL code the engine "
              "hashes with, over data read through the kernel as an upload is.\n")

    tgt_rows = []
    head_len = len(md)
    for proto in ("ftp", "sftp", "http"):
        if proto not in b.servers:
            continue
        servers = b.servers[proto]
        peers = b.peer_names[proto]
        md.append(f"## {proto.upper()}\n")
        vers = {"lftp": out("lftp --version | head -1").split()[3] if shutil.which("lftp") else "?",
                "ssh": out("ssh -V 2>&1").split(",")[0], "curl": out("curl --version").split()[1],
                "paramiko": out([PY, "-c", "import paramiko; print(paramiko.__version__)"])}
        md.append("Client: " + CLIENT[proto].format(**vers) + ".\n")
        cols = servers
        head = "| workload | unit | " + " | ".join(cols) + " | storaged full / best peer | storaged normal / best peer | storaged peak RSS (full / normal) |"
        md.append(head)
        md.append("|" + "---|" * (len(cols) + 5))
        tbl.append(f"\n== {proto.upper()} ==")
        for wl, label, unit, higher in WL:
            if not any((proto, wl, s) in b.res for s in servers):
                continue
            cells = [fmt(b.res.get((proto, wl, s))) if (proto, wl, s) in b.res else "-" for s in cols]
            pv = [med(b.res.get((proto, wl, p))) for p in peers if (proto, wl, p) in b.res]
            best = (max(pv) if higher else min(pv)) if pv else None
            rf, _ = ratio_cell(med(b.res.get((proto, wl, sdf))), best, 1.0, higher)
            rn, _ = ratio_cell(med(b.res.get((proto, wl, sdn))), best, 1.0, higher)
            rss = "/".join(f"{b.rss[(proto, wl, s)] / 1024:.0f}" if b.rss.get((proto, wl, s)) else "-"
                           for s in (sdf, sdn)) + " MiB"
            row = f"| {label.format(**sizes)} | {unit} | " + " | ".join(cells) + f" | {rf} | {rn} | {rss} |"
            md.append(row)
            tbl.append(f"{label.format(**sizes):<62} {unit:>7} | " + " | ".join(
                f"{s.replace('storaged (durability=full)', 'sd-full').replace('storaged (durability=normal)', 'sd-normal')}: {c}" for s, c in zip(cols, cells))
                + f" | full/best {rf}, normal/best {rn} | RSS {rss}")
            # targets
            vf, vn = med(b.res.get((proto, wl, sdf))), med(b.res.get((proto, wl, sdn)))
            if wl in ("big_down", "small_up", "lat_p50", "lat_p99") and best:
                what = {"big_down": "download >= 1.0 x best peer", "small_up": "small-file rate >= 1.0 x best peer",
                        "lat_p50": "small-file download latency p50 <= best peer",
                        "lat_p99": "small-file download latency p99 <= best peer"}[wl]
                rfv, okf = ratio_cell(vf, best, 1.0, higher)
                rnv, okn = ratio_cell(vn, best, 1.0, higher)
                tgt_rows.append((proto, what, f"best peer {best:.1f} {unit}", rfv, verdict(okf), rnv, verdict(okn)))
            if wl in ("big_up", "par_up") and best:
                ref = min(best, sha or 1e18, dd or 1e18)
                rfv, okf = ratio_cell(vf, ref, 0.85)
                rnv, okn = ratio_cell(vn, ref, 0.85)
                what = ("1 file upload" if wl == "big_up" else "8 parallel uploads") + " >= 0.85 x min(best peer, SHA-256, dd fsync)"
                tgt_rows.append((proto, what, f"min({best:.0f}, {sha:.0f}, {dd:.0f}) = {ref:.0f} MiB/s",
                                 rfv, verdict(okf), rnv, verdict(okn)))
            if wl == "par_small" and best:
                rfv, okf = ratio_cell(vf, best, 1.5)
                rnv, okn = ratio_cell(vn, best, 1.5)
                tgt_rows.append((proto, f"{b.npar} sessions x {b.npsmall} x 4 KiB in parallel >= 1.5 x best peer",
                                 f"best peer {best:.0f} files/s", rfv, verdict(okf), rnv, verdict(okn)))
                one_f, one_n = med(b.res.get((proto, "small_up", sdf))), med(b.res.get((proto, "small_up", sdn)))
                rfv, okf = ratio_cell(vf, one_f, 4.0)
                rnv, okn = ratio_cell(vn, one_n, 4.0)
                tgt_rows.append((proto, f"{b.npar} sessions in parallel >= 4 x storaged's own one-session rate",
                                 f"one session: full {one_f or 0:.0f}, normal {one_n or 0:.0f} files/s",
                                 rfv, verdict(okf), rnv, verdict(okn)))
            if wl == "par_up":
                rf_ = b.rss.get((proto, wl, sdf))
                rn_ = b.rss.get((proto, wl, sdn))
                tgt_rows.append((proto, "peak RSS <= 128 MiB with 8 parallel uploads", "128 MiB",
                                 f"{rf_ / 1024:.0f} MiB" if rf_ else "n/a", verdict(rf_ <= 128 * 1024 if rf_ else None),
                                 f"{rn_ / 1024:.0f} MiB" if rn_ else "n/a", verdict(rn_ <= 128 * 1024 if rn_ else None)))
        md.append("")
        if proto in ("ftp", "sftp") and (proto, "instant", sdf) in b.res:
            label = "SITE INSTANT" if proto == "ftp" else "instant@storaged"
            vf, vn = med(b.res.get((proto, "instant", sdf))), med(b.res.get((proto, "instant", sdn)))
            cell = lambda v: f"{v:.1f} ms" if v is not None else "n/a"  # noqa: E731
            tgt_rows.append((proto, f"instant re-upload of {b.big_mb} MiB ({label}, after login) <= 10 ms", "10 ms",
                             cell(vf), verdict(vf <= 10 if vf is not None else None),
                             cell(vn), verdict(vn <= 10 if vn is not None else None)))
        if proto == "http" and (proto, "instant", sdf) in b.res:
            allpeer = [(med(b.res[(p_, "big_up", k)]), k, p_) for p_ in b.servers for k in b.peer_names[p_]
                       if (p_, "big_up", k) in b.res]
            best_up = max(allpeer) if allpeer else None  # the fastest full upload by any peer
            for label, key in (("PUT with X-Checksum-SHA256 + Expect: 100-continue", "instant"),
                               ("POST /api/v1/instant", "instant_api")):
                vf, vn = med(b.res.get((proto, key, sdf))), med(b.res.get((proto, key, sdn)))
                cell = lambda v: f"{v:.1f} ms" if v is not None else "n/a"  # noqa: E731
                tgt_rows.append((proto, f"instant re-upload of {b.big_mb} MiB ({label}) < 10 ms", "10 ms",
                                 cell(vf), verdict(vf < 10 if vf is not None else None),
                                 cell(vn), verdict(vn < 10 if vn is not None else None)))
                if best_up:
                    up_ms = b.big_mb / best_up[0] * 1000
                    x = lambda v: f"{up_ms / v:.0f} x" if v else "n/a"  # noqa: E731
                    tgt_rows.append((proto, f"instant re-upload ({label}) >= 50 x faster than the best peer's "
                                            f"full upload of it", f"{best_up[1]} ({best_up[2].upper()}): "
                                            f"{up_ms:.0f} ms", x(vf), verdict(up_ms / vf >= 50 if vf else None),
                                     x(vn), verdict(up_ms / vn >= 50 if vn else None)))
        md.append("")
    rows = list(tgt_rows)
    if b.idle:
        md.append("## Engine scale\n")
        md.append(f"Idle connections: {b.nidle} connections opened one after the other to one storaged "
                  "(durability=full, all three front ends loaded with their default settings, freshly restarted), "
                  f"then 2 s of rest; RSS is VmRSS from /proc; FTP and HTTP {b.runs} runs (median), SFTP one run. FTP: logged in (USER/PASS) and idle. HTTP: one authenticated "
                  "`GET /api/v1/me` answered, connection kept alive and idle. SFTP: **authenticated SSH sessions "
                  "with the sftp subsystem open** (paramiko, public key), idle.\n")
        md.append("| front end | runs | connections held | RSS before | RSS after | RSS per connection, median (min-max) | threads after | time to open all |")
        md.append("|---|---|---|---|---|---|---|---|")
        FE = {"ftp": "FTP", "http": "HTTP", "sftp": "SFTP"}
        for fe, vs in b.idle.items():
            per = [v["per_conn"] for v in vs if v["per_conn"] is not None]
            v = vs[len(vs) // 2]
            errs = "; ".join(sorted({x["err"] for x in vs if x["err"]}))
            held = "/".join(str(x["n"]) for x in vs)
            md.append(f"| {FE[fe]} | {len(vs)} | {held}{' (stopped: ' + errs + ')' if errs else ''} | "
                      f"{v['before'] / 1024:.1f} MiB | {v['after'] / 1024:.1f} MiB | {fmt(per, 1)} KiB | {v['threads']} | "
                      f"{v['open_s']:.1f} s |")
            if per:
                ok = statistics.median(per) <= 64 and all(x["n"] == b.nidle for x in vs)
                rows.append(("engine", f"{FE[fe]}: RSS per idle connection <= 64 KiB", "64 KiB",
                             f"{statistics.median(per):.1f} KiB", verdict(ok), "", ""))
        md.append("")

    if b.scale:
        s = b.scale
        md.append(f"Tree of files (`bench/scale.c`, compiled by run.sh against build/libsdcore.a, calling the "
                  f"engine through `sd_core_api` like the front ends; **durability = normal** for the import; "
                  f"2 threads): {b.scale_files:,} files, {b.scale_bigdir:,} of them in one directory and the "
                  f"rest 1,000 per directory; every file is a streamed upload "
                  f"(upload_begin/write/commit) of 64 bytes whose content is one of 1,000 distinct payloads, "
                  f"so this measures the metadata path (one node, one version and one commit per file) over "
                  f"1,000 blobs. Single run (it is one long measurement).\n")
        md.append("| measure | result |\n|---|---|")
        md.append(f"| import {b.scale_files:,} files | {s['import_s']:.1f} s ({s['files_per_s']:.0f} files/s) |")
        md.append(f"| `stat` of {int(s['stat_n']):,} random existing paths, one at a time | p50 {s['stat_p50_us']:.1f} us, **p99 {s['stat_p99_us']:.1f} us** |")
        if "list_s" in s:
            md.append(f"| list one directory of {int(s['list_entries']):,} entries, one readdir call | {s['list_s'] * 1000:.0f} ms |")
            md.append(f"| the same in pages of 1,000 (`after` = last name) | {s['list_pages_s'] * 1000:.0f} ms |")
        md.append(f"| database size (storaged.db after close, WAL checkpointed) | {s['db_bytes'] / MiB:.1f} MiB = **{s['db_per_file']:.0f} bytes per file** |\n")
    top = ["## Targets (issue 7)\n",
           "Ratios are storaged / reference, so above 1 is better for storaged (latency: reference / storaged). "
           "The verdict is given for the default `durability = full` (every upload hashed, fsynced and "
           "committed with SQLite FULL before it is acknowledged) and, where it matters, for "
           "`durability = normal` (no fsync), since none of the peers ever fsyncs.\n",
           "| protocol | target | reference | storaged full | verdict | storaged normal | verdict |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        top.append("| " + " | ".join(r) + " |")
    top.append("")
    if b.failed:
        top.append("**Failures in this run** (the figures affected are missing or n/a):\n")
        for w, why in b.failed:
            top.append(f"- {w}: {why}")
        top.append("")
    md[head_len:head_len] = top
    md += notes(b, sha, dd)
    if b.profiles:
        md.append("## Profiles (same run)\n")
        md.append("One extra run of each workload below, observed from outside. perf: `perf record -F 999 -g -p "
                  "<storaged>`, then `perf report --no-children --sort dso,sym --percent-limit 2` (shares of "
                  "storaged's on-CPU samples; waiting for fsync is off-CPU and does not show). strace: "
                  "`strace -f -c -w -e trace=!<waits> -p <storaged>` (every thread's system calls except those "
                  "that only wait for work (epoll_wait, poll, futex, accept ...): count and wall time; the "
                  "ptrace stops slow storaged down, so read it for counts per file and shares, not speed).\n")
        for p in b.profiles:
            md.append(f"### {p['title']}\n")
            md.append("```\n" + (p["samples"] + "\n" if p["samples"] else "") + "\n".join(p["lines"]) + "\n```\n")
    tbl.insert(0, "\n".join("| " + " | ".join(r) + " |" for r in rows))
    return {"md": "\n".join(md), "table": "\n".join(tbl)}


def notes(b, sha, dd):
    """Figures derived from this run's measurements that locate the time of the missed targets."""
    sdf, sdn = b.sds[0].name, b.sds[1].name
    L = med(b.limits.get("fsync_ms"))
    md = ["## Where the time goes (derived from this run's figures)\n"]
    for proto in ("ftp", "sftp", "http"):
        if proto not in b.servers:
            continue
        f, n = med(b.res.get((proto, "small_up", sdf))), med(b.res.get((proto, "small_up", sdn)))
        pv = [med(b.res[(proto, "small_up", p)]) for p in b.peer_names[proto] if (proto, "small_up", p) in b.res]
        if f and n and pv and L:
            pf, pn, pp = 1000 / f, 1000 / n, 1000 / max(pv)
            md.append(f"- {proto.upper()} 4 KiB uploads: {pf:.2f} ms per file with durability=full, {pn:.2f} ms with "
                      f"normal, {pp:.2f} ms for the fastest peer. The difference full - normal, {pf - pn:.2f} ms, is "
                      f"{(pf - pn) / L:.1f} x the disk's measured 4 KiB write+fsync latency ({L:.2f} ms): the price "
                      f"of acknowledging each file only once it is durable. The difference normal - peer, "
                      f"{pn - pp:.2f} ms per file, is storaged's own per-file work without fsync (temp file, "
                      f"hash, rename, SQLite commit; see the 4 KiB profile below).")
        uf, un = med(b.res.get((proto, "big_up", sdf))), med(b.res.get((proto, "big_up", sdn)))
        pu = [med(b.res[(proto, "big_up", p)]) for p in b.peer_names[proto] if (proto, "big_up", p) in b.res]
        if uf and un and pu and sha and dd:
            md.append(f"- {proto.upper()} 1-file upload: {uf:.0f} MiB/s with durability=full, {un:.0f} with normal, "
                      f"best peer {max(pu):.0f}; limits in the same run: SHA-256 {sha:.0f}, dd with fsync {dd:.0f}, "
                      f"loopback TCP {med(b.limits.get('tcp')):.0f} MiB/s.")
    for p in b.profiles:
        if " 4 KiB " not in p["title"] or "strace" not in p["title"]:
            continue
        calls = dict(p.get("calls") or {})
        calls.pop("total", None)
        nf = len(b.small_names)
        keys = [k for k in ("fsync", "fdatasync", "sync_file_range", "pwrite64", "pread64", "fcntl", "openat",
                            "mkdir", "newfstatat", "rename", "read", "write", "sendfile", "recvfrom", "sendto",
                            "sendmsg", "close") if k in calls]
        if keys:
            what = p["title"].split(" (")[0]
            md.append(f"- System calls per file, {what} (strace counts / {nf} files; total "
                      f"{sum(calls.values()) / nf:.1f}): "
                      + ", ".join(f"{k} {calls[k] / nf:.2f}" for k in keys) + ".")
    if b.login_peak:
        md.append(f"- Peak RSS figures are for the workload alone: storaged is restarted before each workload, one "
                  f"login is made, and VmHWM is reset (`clear_refs` 5) before the workload starts. Start-up plus "
                  f"that first password login peaks at {statistics.median(b.login_peak) / 1024:.0f} MiB "
                  f"(max {max(b.login_peak) / 1024:.0f} MiB): Argon2id password verification, by design; "
                  f"repeated logins hit the engine's verified-password cache.")
    md.append("")
    return md


def write_doc(md):
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    sections = re.findall(r"<!-- (\w+):begin -->.*?<!-- \1:end -->", old, re.S)
    found = [(m.group(1), m.group(0)) for m in re.finditer(r"<!-- (\w+):begin -->.*?<!-- \1:end -->", old, re.S)]
    # a hand-written analysis (it names the run it refers to) stays right after the generated part
    analysis = [t for n, t in found if n == "analysis"]
    kept = [t for n, t in found if n != "analysis"]
    text = md.rstrip("\n") + "\n"
    if analysis:
        text += "\n" + analysis[0] + "\n"
    if kept:
        text += ("\n## Per-protocol scripts (separate commands, earlier runs)\n\n"
                 "The sections below are written by the per-protocol scripts `bench/http.sh`, `bench/sftp.sh "
                 "--write-docs`, `bench/ftp.sh` (by hand) and `bench/ingest.sh`, each at its own time; "
                 "`bench/run.sh` keeps them as they are. They are single runs with the scripts' own "
                 "methods (best-of or single runs, not medians); the tables above supersede them where "
                 "they measure the same thing.\n\n")
        text += "\n\n".join(k.replace("\n## ", "\n### ") for k in kept) + "\n"
    _ = sections
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
