#!/usr/bin/python3
"""gentree.py - write a deterministic test tree for the storagectl tests.

    gentree.py DIR --seed N --files N [--max-size BYTES] [--big N --big-size BYTES]

Nested directories (up to 4 levels), regular files of varied sizes from 0 B
to --max-size (about a sixth of them duplicates of earlier files, some of
them in other directories), an empty file, a file with a UTF-8 name and a
file with spaces in its name; --big adds N files of --big-size random bytes.
Also adds one symbolic link and one FIFO, which import must skip with a
warning. Prints "files=N distinct=N bytes=N" (regular files only).
"""
import argparse
import hashlib
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--max-size", type=int, default=3 << 20)
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--big-size", type=int, default=20 << 20)
    ap.add_argument("--no-special", action="store_true")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(a.dir, exist_ok=True)

    dirs = [""]
    for i in range(max(3, a.files // 12)):
        parent = rnd.choice(dirs)
        if parent.count("/") >= 3:
            parent = ""
        name = f"d{i:02d}" if i % 7 else f"dir {i} été"
        d = os.path.join(parent, name) if parent else name
        os.makedirs(os.path.join(a.dir, d), exist_ok=True)
        dirs.append(d)

    def size():
        r = rnd.random()
        if r < 0.35:
            return rnd.randint(1, 4096)
        if r < 0.75:
            return rnd.randint(4097, 256 << 10)
        if r < 0.93:
            return rnd.randint(256 << 10, max(256 << 10, a.max_size // 2))
        return rnd.randint(a.max_size // 2, a.max_size)

    contents = []
    made = []

    def put(rel, data):
        with open(os.path.join(a.dir, rel), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(a.dir, rel), rnd.choice([0o644, 0o600, 0o640, 0o755]))
        made.append((rel, data))

    fixed = [("empty.dat", b""),
             ("données naïve ☃.txt", "héllo wörld ☃\n".encode() * 37),
             ("name with spaces.bin", rnd.randbytes(12345))]
    for rel, data in fixed:
        put(rel, data)
    for i in range(a.files - len(fixed)):
        d = rnd.choice(dirs)
        rel = os.path.join(d, f"f{i:04d}.bin") if d else f"f{i:04d}.bin"
        if contents and rnd.random() < 0.17:
            data = rnd.choice(contents)
        else:
            data = rnd.randbytes(size())
            contents.append(data)
        put(rel, data)
    for i in range(a.big):
        put(f"big{i:02d}.bin", rnd.randbytes(a.big_size))
    # Fixed mtimes in the past so that preserving them is visible.
    for rel, _ in made:
        t = 1600000000 + rnd.randint(0, 10 ** 8)
        os.utime(os.path.join(a.dir, rel), (t, t))
    if not a.no_special:
        os.symlink("empty.dat", os.path.join(a.dir, "link-to-empty"))
        os.mkfifo(os.path.join(a.dir, "a-fifo"))
    distinct = len({hashlib.sha256(d).hexdigest() for _, d in made})
    print(f"files={len(made)} distinct={distinct} bytes={sum(len(d) for _, d in made)}")


if __name__ == "__main__":
    main()
