"""Hashes over SSH exec, as rclone uses them (docs/sftp.md): sha256sum from the stored
content address, md5sum and sha1sum computed from the content, with file arguments and on
stdin (rclone's probe), on an exec channel of its own connection (OpenSSH ssh) and beside an
open SFTP channel (rclone); names stay inside the user's tree; every other command (and any
shell operator) is still refused. `rclone check` without --download compares hashes: a file
changed on the server to a same-size content is found.
"""
import hashlib
import os

import paramiko

from conftest import (HOST, daemon_scope, free_port, out, rclone, ssh, ssh_keygen, write_random)

import pytest


@pytest.fixture(scope="module")
def hashd(tmp_path_factory):
    kd = tmp_path_factory.mktemp("hash-keys")
    key = ssh_keygen(str(kd / "alice_key"), comment="alice")
    port = free_port()
    with daemon_scope({"sftp": {"enabled": "yes", "module": "sftp", "listen": f"{HOST}:{port}"}},
                      name="sftp-hash") as d:
        d.port, d.key = port, key
        d.add_user("alice", "alicepw1")
        d.add_user("bob", "bobpw1")
        d.add_key("alice", key + ".pub")
        yield d


def put(d, user, pw, path, data):
    t = paramiko.Transport((HOST, d.port))
    t.connect(username=user, password=pw)
    s = paramiko.SFTPClient.from_transport(t)
    with s.open(path, "wb") as f:
        f.write(data)
    s.close()
    t.close()


def test_hash_commands_over_ssh(hashd):
    d, k = hashd, hashd.key
    data = os.urandom(300000)
    put(d, "alice", "alicepw1", "/a b.bin", data)
    put(d, "bob", "bobpw1", "/secret.bin", b"bob's")
    for cmd, h in (("sha256sum", hashlib.sha256), ("md5sum", hashlib.md5), ("sha1sum", hashlib.sha1)):
        r = ssh(d.port, k, f"alice@{HOST}", cmd, "'/a b.bin'")
        assert r.returncode == 0 and r.stdout == f"{h(data).hexdigest()}  /a b.bin\n", \
            f"{cmd} of a file: {out(r)}"
        r = run_stdin(d, k, cmd, b"abc")
        assert r.returncode == 0 and r.stdout == f"{h(b'abc').hexdigest()}  -\n", f"{cmd} of stdin: {out(r)}"
    r = ssh(d.port, k, f"alice@{HOST}", "sha256sum", "/a\\ b.bin", "/nope", "/")
    assert r.returncode == 1, f"a missing file and a folder: exit 1: {out(r)}"
    assert r.stdout == f"{hashlib.sha256(data).hexdigest()}  /a b.bin\n", f"the good one: {out(r)}"
    assert "/nope: No such file or directory" in r.stderr and "/: Is a directory" in r.stderr, out(r)
    # names resolve in the user's own tree
    r = ssh(d.port, k, f"alice@{HOST}", "sha256sum", "../../secret.bin", "/../../../etc/passwd")
    assert r.returncode == 1 and r.stdout == "", f"nothing outside alice's tree: {out(r)}"
    assert "secret.bin: No such file" in r.stderr and "passwd: No such file" in r.stderr, out(r)
    # everything else is refused, shell operators included
    for cmd in (["ls", "/"], ["sha256sum", "/a\\ b.bin;", "cat", "/etc/passwd"],
                ["sha256sum", "$(id)"], ["md5sum", "/a*"], ["cat", "/a"], ["sha256sum", "|", "sh"]):
        r = ssh(d.port, k, f"alice@{HOST}", *cmd)
        assert r.returncode == 1 and "SFTP only" in r.stderr, f"refused: {cmd}: {out(r)}"
        assert r.stdout == "", f"nothing ran: {cmd}: {out(r)}"
    assert d.log_count(r"event=exec user=alice .*cmd=md5sum") >= 2, "exec logged"


def run_stdin(d, k, cmd, data):
    from conftest import SSH_OPTS, run
    return run(["ssh", *SSH_OPTS, "-o", "IdentitiesOnly=yes", "-p", str(d.port), "-i", k,
                f"alice@{HOST}", cmd], input=data.decode())


def test_exec_beside_sftp_channel(hashd):
    """rclone runs its hash command on a second channel of a connection whose SFTP channel
    stays open; both keep working."""
    d = hashd
    data = os.urandom(5000)
    t = paramiko.Transport((HOST, d.port))
    t.connect(username="alice", password="alicepw1")
    s = paramiko.SFTPClient.from_transport(t)
    with s.open("/beside.bin", "wb") as f:
        f.write(data)
    for _ in range(3):
        ch = t.open_session()
        ch.exec_command("sha1sum /beside.bin")
        got = ch.makefile("rb").read().decode()
        assert ch.recv_exit_status() == 0, "exit 0"
        ch.close()
        assert got == f"{hashlib.sha1(data).hexdigest()}  /beside.bin\n", f"sha1sum beside sftp: {got!r}"
    assert s.stat("/beside.bin").st_size == 5000, "the SFTP channel still serves"
    ch = t.open_session()
    ch.exec_command("ls")
    assert ch.recv_exit_status() == 1, "another command on a second channel: refused"
    ch.close()
    assert s.listdir("/"), "and the SFTP channel is still fine"
    s.close()
    t.close()


def test_rclone_check_compares_hashes(hashd, tmp_path):
    d = hashd
    tree = str(tmp_path / "tree")
    os.makedirs(os.path.join(tree, "sub"))
    for i in range(6):
        write_random(os.path.join(tree, "sub" if i % 2 else "", f"f{i}.bin"), 10000 + i * 777)
    rc = f":sftp,host={HOST},port={d.port},user=alice,key_file={d.key}"
    r = rclone("copy", tree, f"{rc}:/rc")
    assert r.returncode == 0, f"rclone copy: {out(r)}"
    r = rclone("check", "-v", tree, f"{rc}:/rc")
    assert r.returncode == 0, f"rclone check (hashes): {out(r)}"
    text = out(r)
    assert "0 differences found" in text and "hashes could not be checked" not in text, text
    r = rclone("hashsum", "md5", f"{rc}:/rc/f0.bin")
    with open(os.path.join(tree, "f0.bin"), "rb") as f:
        want = hashlib.md5(f.read()).hexdigest()
    assert r.returncode == 0 and r.stdout.split()[0] == want, f"rclone hashsum md5 over sftp: {out(r)}"
    # same size, other content, changed on the server: only a hash can tell
    size = os.path.getsize(os.path.join(tree, "f0.bin"))
    put(d, "alice", "alicepw1", "/rc/f0.bin", os.urandom(size))
    r = rclone("check", tree, f"{rc}:/rc")
    assert r.returncode != 0 and "1 differences found" in out(r), f"found by hash: {out(r)}"
