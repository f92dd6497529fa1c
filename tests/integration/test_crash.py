"""Crash torture (issue 18): kill -9 at a random moment during mixed FTP, SFTP and HTTP uploads
(new files and overwrites; sequential writes, and random writes into existing files over SFTP),
then restart and check what "the old file or the new one, never a torn one" promises:

  - every acknowledged upload is there, byte for byte (or, for a name written again after its
    last acknowledgement, the content of that later write: it may have committed unacknowledged);
  - no file is visible that was never acknowledged unless it holds exactly what was sent (no
    0-byte or partial new files);
  - storagectl fsck is clean; no temp file survives the cleaner.

TORTURE_ROUNDS rounds (5 in `make test`; e.g. TORTURE_ROUNDS=100 by hand).
"""
import ftplib
import hashlib
import io
import os
import random
import threading
import time
import urllib.request
import base64

import pytest

from conftest import HOST, SftpSession, free_port

ROUNDS = int(os.environ.get("TORTURE_ROUNDS", "5"))
USER = ("tort", "pw-tort-1")


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Ledger:
    """Per name: the content acknowledged last, and what was sent after it (unacknowledged)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}    # name -> bytes (None: known absent)
        self.pending = {}  # name -> [bytes, ...] sent after the last ack
        self.acks = {}     # protocol -> acknowledged writes

    def sent(self, name, data):
        with self.lock:
            self.pending.setdefault(name, []).append(data)

    def ack(self, name, data):
        with self.lock:
            proto = name.split("-", 1)[0]
            self.acks[proto] = self.acks.get(proto, 0) + 1
            self.acked[name] = data
            self.pending[name] = []

    def allowed(self, name):
        """Contents the name may hold after the crash; None in the set = may be absent."""
        with self.lock:
            ok = {sha(c) for c in self.pending.get(name, [])}
            if name in self.acked and self.acked[name] is not None:
                ok.add(sha(self.acked[name]))
            else:
                ok.add(None)
            return ok

    def settle(self, name, content):
        """After a verified restart the content found is the new baseline."""
        with self.lock:
            self.acked[name] = content
            self.pending[name] = []

    def names(self):
        with self.lock:
            return set(self.acked) | set(self.pending)


def rnd_data(rng, lo=1, hi=1 << 20):
    n = rng.randrange(lo, hi)
    return os.urandom(n)


def ftp_worker(port, ledger, rng, stop, tag):
    try:
        f = ftplib.FTP()
        f.connect(HOST, port, timeout=10)
        f.login(*USER)
        i = 0
        while not stop.is_set():
            # new file, or an overwrite of one of a few names of this worker
            name = f"ftp-{tag}-new{i}.bin" if rng.random() < 0.6 else f"ftp-{tag}-ow{rng.randrange(3)}.bin"
            data = rnd_data(rng)
            ledger.sent(name, data)
            f.storbinary("STOR " + name, io.BytesIO(data))
            ledger.ack(name, data)
            i += 1
    except Exception:
        pass


def http_worker(port, ledger, rng, stop, tag):
    auth = "Basic " + base64.b64encode(f"{USER[0]}:{USER[1]}".encode()).decode()
    i = 0
    try:
        while not stop.is_set():
            name = f"http-{tag}-new{i}.bin" if rng.random() < 0.6 else f"http-{tag}-ow{rng.randrange(3)}.bin"
            data = rnd_data(rng)
            ledger.sent(name, data)
            req = urllib.request.Request(f"http://{HOST}:{port}/api/v1/fs/{name}", data=data,
                                         method="PUT", headers={"Authorization": auth})
            with urllib.request.urlopen(req, timeout=10) as r:
                if r.status not in (200, 201):
                    return
            ledger.ack(name, data)
            i += 1
    except Exception:
        pass


def sftp_close(s, f):
    """CLOSE whose failure raises (paramiko's close() swallows errors)."""
    from paramiko.sftp import CMD_CLOSE
    f.flush()
    f._closed = True
    s._request(CMD_CLOSE, f.handle)


def sftp_worker(port, ledger, rng, stop, tag):
    try:
        with SftpSession(port, *USER) as s:
            i = 0
            while not stop.is_set():
                r = rng.random()
                if r < 0.5:  # a new file, written sequentially in chunks
                    name = f"sftp-{tag}-new{i}.bin"
                    data = rnd_data(rng)
                    ledger.sent(name, data)
                    f = s.open("/" + name, "w")
                    for off in range(0, len(data), 32768):
                        f.write(data[off:off + 32768])
                    sftp_close(s, f)
                    ledger.ack(name, data)
                elif r < 0.75:  # overwrite (truncate) an own name
                    name = f"sftp-{tag}-ow{rng.randrange(3)}.bin"
                    data = rnd_data(rng)
                    ledger.sent(name, data)
                    f = s.open("/" + name, "w")
                    f.write(data)
                    sftp_close(s, f)
                    ledger.ack(name, data)
                else:  # random writes into an existing acknowledged file
                    with ledger.lock:
                        mine = [n for n, c in ledger.acked.items()
                                if n.startswith(f"sftp-{tag}-") and c and not ledger.pending.get(n)]
                    if not mine:
                        i += 1
                        continue
                    name = rng.choice(sorted(mine))
                    base = bytearray(ledger.acked[name])
                    f = s.open("/" + name, "r+")
                    for _ in range(rng.randrange(1, 6)):
                        off = rng.randrange(0, len(base) + 4096)
                        piece = os.urandom(rng.randrange(1, 65536))
                        if off > len(base):
                            base.extend(b"\0" * (off - len(base)))
                        base[off:off + len(piece)] = piece
                        f.seek(off)
                        f.write(piece)
                    data = bytes(base)
                    ledger.sent(name, data)
                    sftp_close(s, f)
                    ledger.ack(name, data)
                i += 1
    except Exception:
        pass


def listing(d):
    """name -> bytes of every file in the user's root, read back over HTTP."""
    auth = "Basic " + base64.b64encode(f"{USER[0]}:{USER[1]}".encode()).decode()
    base = f"http://{HOST}:{d.hport}/api/v1"
    import json
    names, after = [], None
    while True:
        url = base + "/fs/?limit=1000" + (f"&after={after}" if after else "")
        req = urllib.request.Request(url, headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=30) as r:
            j = json.loads(r.read())
        ents = j.get("entries", j.get("items", []))
        names += [e["name"] for e in ents if e.get("kind", "file") == "file"]
        if not j.get("more") or not ents:
            break
        after = j.get("next") or ents[-1]["name"]
    out = {}
    for n in names:
        req = urllib.request.Request(f"{base}/fs/{n}", headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=30) as r:
            out[n] = r.read()
    return out


@pytest.mark.timeout(60 + 60 * ROUNDS)
def test_kill9_during_mixed_uploads(make_daemon):
    hport, sport, fport = free_port(), free_port(), free_port()
    d = make_daemon({
        "http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{hport}", "threads": "4"},
        "sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{sport}"},
        "ftp": {"enabled": "yes", "module": "ftp", "listen": f"{HOST}:{fport}"},
    }, storaged={"temp_max_age": "1s", "inline_max": "16K"}, name="torture")
    d.hport = hport
    d.add_user(*USER)
    ledger = Ledger()
    rng = random.Random(int(os.environ.get("TORTURE_SEED", str(int(time.time())))))
    acked_total = 0
    for rnd in range(ROUNDS):
        if not d.alive():
            d.start()
        stop = threading.Event()
        workers = []
        for k, fn in enumerate((ftp_worker, ftp_worker, http_worker, http_worker,
                                sftp_worker, sftp_worker)):
            port = {ftp_worker: fport, http_worker: hport, sftp_worker: sport}[fn]
            t = threading.Thread(target=fn, args=(port, ledger, random.Random(rng.random()), stop,
                                                  f"r{rnd}w{k}"), daemon=True)
            t.start()
            workers.append(t)
        time.sleep(rng.uniform(0.5, 2.5))
        d.kill()
        stop.set()
        for t in workers:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in workers), "workers end once the daemon is gone"
        d.start()
        found = listing(d)
        for name in sorted(ledger.names() | set(found)):
            ok = ledger.allowed(name)
            got = found.get(name)
            h = sha(got) if got is not None else None
            assert h in ok, (
                f"round {rnd}: {name}: found {'nothing' if got is None else f'{len(got)} bytes'}, "
                f"expected {'absent or ' if None in ok else ''}one of {len(ok - {None})} contents "
                f"sent (acknowledged: {name in ledger.acked and ledger.acked[name] is not None})")
            ledger.settle(name, got)
        acked_total += sum(1 for c in ledger.acked.values() if c is not None)
        r = d.ctl("fsck", check=False)
        assert r.returncode == 0, f"round {rnd}: fsck clean after kill -9: {r.stdout}{r.stderr}"
        time.sleep(1.1)
        r = d.ctl("gc", "--now", check=False)
        assert r.returncode == 0, f"gc: {r.stdout}{r.stderr}"
        assert d.tmp_files() == [], f"round {rnd}: no temp file left: {d.tmp_files()}"
    for proto in ("ftp", "sftp", "http"):
        assert ledger.acks.get(proto, 0) >= ROUNDS, \
            f"every protocol got uploads acknowledged: {ledger.acks}"
    print(f"torture: {ROUNDS} rounds, acknowledged writes {ledger.acks}, files {acked_total}")
