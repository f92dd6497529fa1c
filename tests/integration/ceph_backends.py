"""Remote blob stores over a real daemon, against a real single-host Ceph cluster.

Not part of `make test` (the file name does not match test_*.py, so `make integration`
does not collect it): `make test-backends` starts the cluster (tests/ceph/cluster.sh),
points SD_CEPH_ENV at its env file and runs this file by name.

With blob_store = s3 (radosgw) and rados (a pool): HTTP round trips of small and
multipart-sized (striped) files,
re-downloads served from the read cache, dedup (a second user's copy adds no object),
instant upload by header, the cleaner removing the object once nothing refers to it,
fsck clean, and fsck catching an object deleted behind storaged's back; radosgw (or the
OSD) stopped mid-upload (the client gets an error, nothing is half-visible, the retry after
it is back succeeds); and start-up refusing bad config with one line naming the key.
"""
import hashlib
import os
import re
import subprocess
import urllib.parse
import uuid

import pytest

from conftest import HOST, ROOT, curl, daemon_scope, free_port, out, run, sha256_file, write_random

ALICE = ("alice", "pw-alice")
BOB = ("bob", "pw-bob")
CLUSTER = os.path.join(ROOT, "tests", "ceph", "cluster.sh")


def ceph_env():
    path = os.environ.get("SD_CEPH_ENV")
    assert path and os.path.exists(path), (
        "SD_CEPH_ENV must name the env file of a running cluster: run `make test-backends`")
    env = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep:
                env[k] = v
    return env


def s3_keys(env, prefix, **over):
    keys = {
        "blob_store": "s3",
        "inline_max": "0",
        "s3_endpoint": env["S3_ENDPOINT"],
        "s3_bucket": env["S3_BUCKET"],
        "s3_region": env["S3_REGION"],
        "s3_access_key": env["S3_ACCESS_KEY"],
        "s3_secret_key": env["S3_SECRET_KEY"],
        "s3_prefix": prefix,
        "s3_part_size": "5M",
        "s3_retries": "2",
        "s3_timeout": "3s",
        "cache_size": "128M",  # contents up to a quarter of it are cached
    }
    keys.update(over)
    return keys


def rados_keys(env, ns, **over):
    keys = {
        "blob_store": "rados",
        "inline_max": "0",
        "rados_pool": env["RADOS_POOL"],
        "rados_user": env["RADOS_USER"],
        "rados_conf": env["CEPH_CONF"],
        "rados_keyring": env["RADOS_USER_KEYRING"],
        "rados_namespace": ns,
        "rados_stripe_size": "4M",
        "rados_inline_max": "1M",
        "rados_timeout": "5s",
        "cache_size": "128M",
    }
    keys.update(over)
    return keys


def store_keys(env, backend, where, **over):
    """[storaged] keys of a daemon on backend; where: its s3 prefix or rados namespace."""
    return s3_keys(env, where + "/", **over) if backend == "s3" else rados_keys(env, where, **over)


def rados_cmd(env, ns, *args):
    return run(["rados", "-c", env["CEPH_CONF"], "--keyring", env["CEPH_KEYRING"],
                "-p", env["RADOS_POOL"], "-N", ns, *args], timeout=60)


def objects(env, backend, where):
    """Every object name of a daemon's store, as the service lists it."""
    if backend == "s3":
        return [k[len(where) + 1:] for k in bucket_keys(env, where + "/")]
    r = rados_cmd(env, where, "ls")
    assert r.returncode == 0, f"rados ls: {out(r)}"
    return r.stdout.split()


def delete_object(env, backend, where, name):
    if backend == "s3":
        r = s3_curl(env, "-X", "DELETE", path=f"/{where}/{name}")
        assert r.code == 204, f"deleting the object directly: {r}"
    else:
        r = rados_cmd(env, where, "rm", name)
        assert r.returncode == 0, f"rados rm: {out(r)}"


def s3_curl(env, *args, path=""):
    """curl signed for radosgw directly (not through storaged)."""
    e = hashlib.sha256(b"").hexdigest()
    return curl("--aws-sigv4", f"aws:amz:{env['S3_REGION']}:s3", "-H", f"x-amz-content-sha256: {e}",
                "--user", f"{env['S3_ACCESS_KEY']}:{env['S3_SECRET_KEY']}", *args,
                f"{env['S3_ENDPOINT']}/{env['S3_BUCKET']}{path}")


def bucket_keys(env, prefix):
    """Every object key under prefix (one listing page is enough for these tests)."""
    # the query already percent-encoded: curl 7.88 signs it as given
    r = s3_curl(env, path=f"?list-type=2&max-keys=1000&prefix={urllib.parse.quote(prefix, safe='')}")
    assert r.code == 200, f"listing the bucket directly: {r}"
    return re.findall(r"<Key>([^<]*)</Key>", r.text)


def auth(user):
    return ["-u", f"{user[0]}:{user[1]}"]


def put(d, user, path, local, *args):
    return curl("-X", "PUT", *auth(user), "-T", local, *args, f"{d.base}/api/v1/fs{path}",
                timeout=300)


def get(d, user, path):
    return curl(*auth(user), f"{d.base}/api/v1/fs{path}", timeout=300)


@pytest.fixture(scope="module")
def env():
    return ceph_env()


@pytest.fixture(scope="module", params=["s3", "rados"])
def rd(env, request):
    """A daemon with [http] on blob_store = s3 (radosgw) or rados (the pool), in a prefix
    or namespace of its own; users alice and bob."""
    port = free_port()
    where = f"it-{uuid.uuid4().hex[:12]}"
    with daemon_scope({"http": {"enabled": "yes", "listen": f"{HOST}:{port}", "threads": "4"}},
                      storaged=store_keys(env, request.param, where), name=request.param) as d:
        d.base = f"http://{HOST}:{port}"
        d.backend = request.param
        d.where = where
        d.add_user(*ALICE)
        d.add_user(*BOB)
        yield d


def stored(d, env):
    """The contents (addresses) in d's store; stripes (<hex>.N) are not contents."""
    return {n for n in objects(env, d.backend, d.where) if re.fullmatch(r"[0-9a-f]{64}", n)}


def test_round_trip_cache_dedup_instant(rd, env):
    d = rd
    small = write_random(d.path("small"), 100_000)
    big = write_random(d.path("big"), 23 << 20)  # 5 parts of 5M
    for name, f in (("small", small), ("big", big)):
        r = put(d, ALICE, f"/{name}.bin", f)
        assert r.code == 201, f"PUT {name}: {r}"
        assert r.json()["sha256"] == sha256_file(f), f"PUT {name}: sha256 in the answer"
    want = {sha256_file(f) for f in (small, big)}
    assert stored(d, env) == want, f"one object per content in the store: {objects(env, d.backend, d.where)}"
    if d.backend == "rados":  # 23 MiB in stripes of 4M: <hex>.0 ... <hex>.5
        names = set(objects(env, d.backend, d.where))
        assert {f"{sha256_file(big)}.{i}" for i in range(6)} <= names, f"stripes: {sorted(names)}"

    # downloads: identical; the second is served from the read cache
    for name, f in (("small", small), ("big", big)):
        r = get(d, ALICE, f"/{name}.bin")
        assert r.code == 200, f"GET {name}: {r}"
        assert hashlib.sha256(r.body).hexdigest() == sha256_file(f), f"GET {name}: same bytes"
    cached = []
    for root, _dirs, files in os.walk(os.path.join(d.data, "cache")):
        cached += [n for n in files if len(n) == 64]
    assert sorted(cached) == sorted(sha256_file(f) for f in (small, big)), (
        f"both contents in the read cache after one read: {cached}")
    r = get(d, ALICE, "/big.bin")
    assert hashlib.sha256(r.body).hexdigest() == sha256_file(big), "cached GET: same bytes"

    # dedup: bob's copy of the same content adds no object
    r = put(d, BOB, "/mine.bin", big)
    assert r.code == 201, f"bob PUT: {r}"
    assert stored(d, env) == want, "dedup: no new object for bob's copy"
    # instant upload by header (alice has the content): no body byte sent
    r = put(d, ALICE, "/instant.bin", small, "-H", f"X-Checksum-SHA256: {sha256_file(small)}",
            "-H", "Expect: 100-continue")
    assert r.code == 201, f"instant PUT: {r}"
    assert r.header("X-Instant-Upload") == "1", f"instant PUT: X-Instant-Upload: 1: {r.headers!r}"
    assert r.info.get("size_upload") == 0, f"instant PUT sent no body byte: {r.info}"
    r = get(d, ALICE, "/instant.bin")
    assert hashlib.sha256(r.body).hexdigest() == sha256_file(small), "instant copy reads back"

    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean on {d.backend}: {out(r)}"


def test_cleaner_removes_unreferenced(rd, env):
    d = rd
    f = write_random(d.path("gone"), 300_000)
    h = sha256_file(f)
    r = put(d, ALICE, "/gone.bin", f)
    assert r.code == 201, f"PUT: {r}"
    assert h in stored(d, env), "the object is in the store"
    r = curl("-X", "DELETE", *auth(ALICE), f"{d.base}/api/v1/fs/gone.bin")
    assert r.code in (200, 204), f"DELETE: {r}"
    d.ctl("trash", "alice", "--empty")
    r = d.ctl("gc", "--now", check=False)
    assert r.returncode == 0, f"gc --now: {out(r)}"
    assert h not in stored(d, env), "the cleaner removed the object once nothing referred to it"
    assert not os.path.exists(os.path.join(d.data, "cache", h[:2], h)), "and its cache copy"
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean after gc: {out(r)}"


@pytest.mark.parametrize("backend", ["s3", "rados"])
def test_fsck_finds_object_deleted_behind_its_back(env, make_daemon, backend):
    where = f"it-{uuid.uuid4().hex[:12]}"
    d = make_daemon(storaged=store_keys(env, backend, where), start=False)
    d.add_user(*ALICE)
    f = write_random(d.path("x"), 50_000)
    d.ctl("put", "alice", f, "/x.bin")
    h = sha256_file(f)
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck clean: {out(r)}"
    delete_object(env, backend, where, h)
    r = d.ctl("fsck", check=False)
    assert r.returncode != 0, f"fsck notices the missing object: {out(r)}"
    assert h in out(r) or "missing" in out(r).lower(), f"fsck names what is missing: {out(r)}"


def test_service_down_mid_upload(rd, env):
    """radosgw (s3) or the OSD (rados) stopped before an upload's content is stored."""
    d = rd
    f = write_random(d.path("during"), 30 << 20)
    h = sha256_file(f)
    ceph_dir = env["CEPH_DIR"]
    what = "rgw" if d.backend == "s3" else "osd"
    r = run([CLUSTER, f"kill-{what}", ceph_dir], timeout=60)
    assert r.returncode == 0, f"kill-{what}: {out(r)}"
    try:
        r = put(d, ALICE, "/during.bin", f)
        assert r.code >= 500 or r.returncode != 0, f"upload while the service is down fails: {r}"
        r = get(d, ALICE, "/during.bin")
        assert r.code == 404, f"nothing half-visible: {r}"
    finally:
        r = run([CLUSTER, f"start-{what}", ceph_dir], timeout=180)
        assert r.returncode == 0, f"start-{what}: {out(r)}"
    assert h not in stored(d, env), "no object for the failed upload"
    r = put(d, ALICE, "/during.bin", f)
    assert r.code == 201, f"the retry succeeds: {r}"
    r = get(d, ALICE, "/during.bin")
    assert hashlib.sha256(r.body).hexdigest() == h, "and reads back"
    assert h in stored(d, env), "its object is there"


@pytest.mark.parametrize("backend,key,value,named", [
    ("s3", "s3_secret_key", "wrong-secret", "s3_secret_key"),
    ("s3", "s3_access_key", "NOSUCHKEY0000", "s3_access_key"),
    ("s3", "s3_bucket", "no-such-bucket-sd", "s3_bucket"),
    ("s3", "s3_endpoint", "http://127.0.0.1:1", "s3_endpoint"),
    ("rados", "rados_pool", "no-such-pool", "rados_pool"),
    ("rados", "rados_keyring", "ADMIN_KEYRING", "rados_keyring"),  # another user's key
    ("rados", "rados_conf", "UNREACHABLE", "rados_conf"),
])
def test_bad_config_fails_startup(env, make_daemon, backend, key, value, named):
    if value == "ADMIN_KEYRING":
        value = env["CEPH_KEYRING"]
    elif value == "UNREACHABLE":  # a ceph.conf whose monitor does not answer
        value = os.path.join(os.path.dirname(env["CEPH_CONF"]), "unreachable.conf")
        with open(value, "w") as f:
            f.write(f"[global]\nmon_host = v1:127.0.0.1:{free_port()}\nauth_client_required = cephx\n")
    d = make_daemon(storaged=store_keys(env, backend, "bad", **{key: value}), start=False)
    ok, text = d.try_start(timeout=30)
    assert not ok, f"storaged started with a bad {key}"
    lines = [ln for ln in text.splitlines() if named in ln]
    assert lines, f"start-up failure names {named}: {text[-2000:]}"


@pytest.mark.parametrize("backend", ["s3", "rados"])
def test_fsck_checksum_and_deep(env, make_daemon, backend):
    """fsck checks the SHA-256 the service keeps; --deep re-reads the bytes."""
    where = f"it-{uuid.uuid4().hex[:12]}"
    d = make_daemon(storaged=store_keys(env, backend, where), start=False)
    d.add_user(*ALICE)
    f = write_random(d.path("x"), 50_000)
    h = sha256_file(f)
    d.ctl("put", "alice", f, "/x.bin")
    r = d.ctl("fsck", "--deep", check=False)
    assert r.returncode == 0, f"fsck --deep clean: {out(r)}"
    # other bytes of the same length under the same name, the recorded checksum kept
    other = write_random(d.path("other"), 50_000)
    if backend == "s3":
        r = curl("--aws-sigv4", f"aws:amz:{env['S3_REGION']}:s3",
                 "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-H", f"x-amz-meta-sha256: {h}",
                 "--user", f"{env['S3_ACCESS_KEY']}:{env['S3_SECRET_KEY']}", "-T", other,
                 f"{env['S3_ENDPOINT']}/{env['S3_BUCKET']}/{where}/{h}")
        assert r.code == 200, f"overwriting the object directly: {r}"
    else:
        r = rados_cmd(env, where, "put", h, other)  # write_full: the xattrs stay
        assert r.returncode == 0, f"rados put: {out(r)}"
    r = d.ctl("fsck", check=False)
    assert r.returncode == 0, f"fsck trusts the recorded checksum (no read): {out(r)}"
    r = d.ctl("fsck", "--deep", check=False)
    assert r.returncode != 0, f"fsck --deep re-reads and finds the damage: {out(r)}"
    assert f"damaged blob {h}" in out(r), f"and names it: {out(r)}"
