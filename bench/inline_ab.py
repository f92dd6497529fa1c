#!/usr/bin/python3
"""bench/inline_ab.py - what inline blobs and group commit buy, on this machine, today.

    /usr/bin/python3 bench/inline_ab.py [--files 500] [--sessions 8] [--runs 3]

Two storaged daemons from this checkout (build first: make all), both with durability = full
and HTTP on 127.0.0.1: one with the default inline_max (32K: a 4 KiB file is stored inside the
database), one with inline_max = 0 (every content is a file under blobs/, as before issue 14).
Per run, interleaved (A then B, run after run): FILES x 4 KiB uploaded with curl over one
keep-alive connection (`curl -K`), then the same number split over SESSIONS curl processes in
parallel. Prints files/s per run and the ratios of each run (inline / file, parallel / one
session). The daemons use the integration tests' fixtures (tests/integration/conftest.py); their
temp directories are removed at the end.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import HOST, Daemon, free_port  # noqa: E402

PW = "inline-ab-1"


def main():
    ap = argparse.ArgumentParser(prog="bench/inline_ab.py")
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="inline_ab.", dir="/var/tmp")
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    ds = {}
    try:
        for im in ("32K", "0"):
            port = free_port()
            d = Daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}"}},
                       {"durability": "full", "log_level": "info", "inline_max": im}, name="inline_ab")
            d.add_user("ab", PW)
            d.start()
            d.port = port
            ds[im] = d

        def config(d, tag, idx):
            subprocess.run(["curl", "-sSf", "-u", f"ab:{PW}", "-X", "POST", "-o", "/dev/null",
                            f"http://{HOST}:{d.port}/api/v1/fs/{tag}?op=mkdir"], check=True)
            path = os.path.join(tmp, f"{tag}-{d.port}.cfg")
            with open(path, "w") as f:
                for i in idx:
                    f.write(f'upload-file = "{src}/f{i}"\nurl = "http://{HOST}:{d.port}/api/v1/fs/{tag}/f{i}"\n'
                            'output = "/dev/null"\n')
            return path

        def timed(cfgs):
            t0 = time.time()
            ps = [subprocess.Popen(["curl", "-sSf", "-u", f"ab:{PW}", "-K", c]) for c in cfgs]
            if any(p.wait() for p in ps):
                sys.exit("inline_ab: an upload failed")
            return a.files / (time.time() - t0)

        res = {}
        for r in range(a.runs):
            for i in range(a.files):  # new content every run: no dedup
                with open(os.path.join(src, f"f{i}"), "wb") as f:
                    f.write(os.urandom(4096))
            for im, d in ds.items():
                res.setdefault((im, "one"), []).append(timed([config(d, f"one{r}", range(a.files))]))
                cfgs = [config(d, f"par{r}-{k}", range(k, a.files, a.sessions)) for k in range(a.sessions)]
                res.setdefault((im, "par"), []).append(timed(cfgs))
    finally:
        for d in ds.values():
            d.stop()
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    def row(v):
        return " ".join(f"{x:7.0f}" for x in v)

    def ratios(x, y):
        return " ".join(f"{p / q:7.2f}" for p, q in zip(x, y))

    print(f"{a.files} x 4 KiB over HTTP, durability = full, files/s per run ({a.runs} runs, interleaved)")
    print(f"  inline_max 32K, one session      {row(res[('32K', 'one')])}")
    print(f"  inline_max 0,   one session      {row(res[('0', 'one')])}")
    print(f"  inline_max 32K, {a.sessions} sessions       {row(res[('32K', 'par')])}")
    print(f"  inline_max 0,   {a.sessions} sessions       {row(res[('0', 'par')])}")
    print(f"  inline / file, one session       {ratios(res[('32K', 'one')], res[('0', 'one')])}")
    print(f"  inline / file, {a.sessions} sessions        {ratios(res[('32K', 'par')], res[('0', 'par')])}")
    print(f"  {a.sessions} sessions / one, inline        {ratios(res[('32K', 'par')], res[('32K', 'one')])}")
    print(f"  {a.sessions} sessions / one, file          {ratios(res[('0', 'par')], res[('0', 'one')])}")


if __name__ == "__main__":
    main()
