"""bandwidth_limit on SFTP and HTTP (the limiter FTP has, moved to util/bw.c and shared):
a user's transfers are held to the rate, uploads and downloads, all that user's
connections together; another user has a budget of its own; a limited HTTP transfer never
holds up other requests (with a limit, each HTTP connection has a thread of its own, so a
limited one waits by sleeping there). FTP's own test of the limiter is test_ftp.py::test_require_tls_bandwidth_anonymous.
"""
import os
import threading
import time

import paramiko

from conftest import HOST, curl, free_port

RATE = 1 << 20  # 1 MiB/s
ALICE = ("alice", "pw-alice")
BOB = ("bob", "pw-bob")


def start(make_daemon):
    hp, sp = free_port(), free_port()
    d = make_daemon({
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{hp}", "threads": "1",
                 "bandwidth_limit": "1M"},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sp}", "bandwidth_limit": "1M"},
    }, name="bw")
    d.base, d.sport = f"http://{HOST}:{hp}", sp
    d.add_user(*ALICE)
    d.add_user(*BOB)
    return d


def timed(fn):
    t0 = time.time()
    fn()
    return time.time() - t0


def test_http_and_sftp_are_limited_per_user(make_daemon):
    d = start(make_daemon)
    data = os.urandom(2 * RATE)
    u = ["-u", f"{ALICE[0]}:{ALICE[1]}"]
    # HTTP upload and download: about 2 s each at 1 MiB/s (0.2 s of burst); the upper
    # bounds only catch a limiter far off (the machine running the tests may be loaded)
    t = timed(lambda: curl(*u, "-T", "-", f"{d.base}/api/v1/fs/a.bin", input=data))
    assert 1.5 < t < 15, f"HTTP upload of 2 MiB at 1 MiB/s: {t:.2f}s"
    got = {}
    t = timed(lambda: got.update(r=curl(*u, f"{d.base}/api/v1/fs/a.bin")))
    assert got["r"].body == data, "the download is whole"
    assert 1.5 < t < 15, f"HTTP download of 2 MiB at 1 MiB/s: {t:.2f}s"
    # while two downloads of alice go on (4 MiB at 1 MiB/s: about 4 s; threads = 1 in the
    # config), other requests are answered at once and bob moves at his own rate
    assert curl("-u", f"{BOB[0]}:{BOB[1]}", "-T", "-", f"{d.base}/api/v1/fs/b.bin",
                input=data[:RATE]).code == 201
    done = [threading.Event() for _ in range(2)]
    ths = [threading.Thread(target=lambda e=e: (curl(*u, f"{d.base}/api/v1/fs/a.bin"), e.set()))
           for e in done]
    for th in ths:
        th.start()
    time.sleep(0.5)
    t = timed(lambda: curl(f"{d.base}/healthz"))
    assert t < 1.5, f"another request is not held up: {t:.2f}s"
    # bob's 1 MiB: about 0.8 s alone; behind alice's budget it would take 2.5 s or more
    t = timed(lambda: curl("-u", f"{BOB[0]}:{BOB[1]}", f"{d.base}/api/v1/fs/b.bin"))
    assert t < 2.0, f"another user's 1 MiB while alice is limited: {t:.2f}s"
    assert not any(e.is_set() for e in done), "alice's downloads were still going on"
    for th in ths:
        th.join()
    # two downloads of one user share its budget: 2 x 1 MiB in about 2 s
    assert curl(*u, "-T", "-", f"{d.base}/api/v1/fs/c.bin", input=data[:RATE]).code == 201
    ths = [threading.Thread(target=lambda: curl(*u, f"{d.base}/api/v1/fs/c.bin")) for _ in range(2)]
    t0 = time.time()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    t = time.time() - t0
    assert t > 1.5, f"two downloads of one user share 1 MiB/s: {t:.2f}s"
    # SFTP: the same limit for writes and reads
    tr = paramiko.Transport((HOST, d.sport))
    tr.connect(username=ALICE[0], password=ALICE[1])
    s = paramiko.SFTPClient.from_transport(tr)

    def put():
        with s.open("/s.bin", "wb") as f:
            f.set_pipelined(True)  # requests in flight, as OpenSSH sftp keeps them
            f.write(data)
    t = timed(put)
    assert 1.5 < t < 15, f"SFTP write of 2 MiB at 1 MiB/s: {t:.2f}s"

    def get():
        with s.open("/s.bin", "rb") as f:
            f.prefetch()
            assert f.read() == data
    t = timed(get)
    assert 1.5 < t < 15, f"SFTP read of 2 MiB at 1 MiB/s: {t:.2f}s"
    s.close()
    tr.close()
