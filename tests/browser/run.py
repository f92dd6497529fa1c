#!/usr/bin/python3
"""make test-browser (run.py --bench: the listing benchmark, bench.js; --bench-upload: 1 GiB against curl): start storaged (HTTP with the web client from the source tree) with
users alice and root (admin), run e2e.js in Debian's headless chromium, stop the daemon
(it must exit 0). Screenshots go to tests/browser/artifacts/. Exit status: e2e's."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from conftest import HOST, ROOT, Daemon, free_port  # noqa: E402


def main():
    port = free_port()
    d = Daemon({"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}",
                         "threads": "4", "metrics": "token",
                         "web_root": os.path.join(ROOT, "frontends", "http", "web")}},
               name="browser")
    arts = os.path.join(HERE, "artifacts")
    rc = 1
    try:
        d.start()
        d.add_user("alice", "pw-alice")
        d.add_user("root", "pw-root", "--admin")
        if "--bench" in sys.argv:
            # a folder of 10,000 small files, stored with storagectl import
            src = os.path.join(d.work, "big")
            os.makedirs(src)
            for i in range(10000):
                with open(os.path.join(src, f"file-{i:05d}.txt"), "w") as f:
                    f.write(str(i))
            d.ctl("import", "alice", src, "/big", "-j", "4", timeout=900)
            rc = subprocess.run(["node", os.path.join(HERE, "bench.js"), f"http://{HOST}:{port}",
                                 "5"], cwd=HERE, timeout=900).returncode
        elif "--bench-upload" in sys.argv:
            files = []
            for n in ("a.bin", "b.bin"):
                files.append(os.path.join(d.work, n))
                subprocess.run(["head", "-c", "1G", "/dev/urandom"], check=True,
                               stdout=open(files[-1], "wb"))
            rc = subprocess.run(["node", os.path.join(HERE, "bench-upload.js"),
                                 f"http://{HOST}:{port}", *files], cwd=HERE, timeout=900).returncode
        else:
            rc = subprocess.run(["node", os.path.join(HERE, "e2e.js"), f"http://{HOST}:{port}",
                                 d.work, arts], cwd=HERE, timeout=900).returncode
        if rc == 0 and "--bench" not in " ".join(sys.argv) and "via=proof" not in d.logtext(log_only=True):
            print("FAIL: no instant upload by proof of possession in the daemon's log")
            rc = 1
        if not d.alive():
            print("storaged died during the browser tests:\n" + d.logtext()[-3000:])
            rc = 1
        else:
            src = d.stop()
            if src != 0:
                print(f"storaged exited {src} on SIGTERM")
                rc = 1
        if rc != 0:
            print("--- storaged log tail ---\n" + d.logtext()[-3000:])
    finally:
        d.cleanup()
    print(f"screenshots: {arts}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
