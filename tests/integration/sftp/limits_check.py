"""Session limits of the SFTP front end; run by run.sh against a daemon
restarted with idle_timeout = 2s, max_per_ip = 2, max_auth_tries = 2.

    limits_check.py idle|per_ip|auth_tries     exit 0 = pass
"""
import os
import struct
import sys
import time

import paramiko

PORT = int(os.environ["SFTP_PORT"])


def transport(user="alice", password="alicepw1"):
    t = paramiko.Transport(("127.0.0.1", PORT))
    t.banner_timeout = 10
    t.connect(username=user, password=password)
    return t


def check_idle():
    t = transport()
    ch = t.open_session()
    ch.settimeout(10)
    ch.invoke_subsystem("sftp")
    ch.sendall(struct.pack(">IBI", 5, 1, 3))
    n = struct.unpack(">I", ch.recv(4))[0]
    ch.recv(n)
    t0 = time.time()
    # say nothing: the server must end the session after ~2 s
    data = ch.recv(1)
    waited = time.time() - t0
    assert data == b"", data
    assert 1.5 <= waited <= 6, waited
    t.close()


def check_per_ip():
    a = transport()
    b = transport()
    try:
        transport()
    except (paramiko.SSHException, EOFError, OSError):
        pass
    else:
        raise AssertionError("third connection from one address was accepted")
    a.close()
    time.sleep(0.5)
    c = transport()  # a slot is free again
    c.close()
    b.close()


def check_auth_tries():
    t = paramiko.Transport(("127.0.0.1", PORT))
    t.start_client(timeout=10)
    for _ in range(2):
        try:
            t.auth_password("alice", "wrong-password")
            raise AssertionError("wrong password accepted")
        except paramiko.AuthenticationException:
            pass
    # the right password after max_auth_tries failures must not log in
    try:
        t.auth_password("alice", "alicepw1")
        raise AssertionError("login accepted after max_auth_tries failures")
    except (paramiko.AuthenticationException, paramiko.SSHException, EOFError, OSError):
        pass
    time.sleep(0.7)
    assert not t.is_active(), "still connected after max_auth_tries failures"
    t.close()
    # the address is not locked out by that (auth_max_failures is 20)
    transport().close()


if __name__ == "__main__":
    {"idle": check_idle, "per_ip": check_per_ip, "auth_tries": check_auth_tries}[sys.argv[1]]()
    print("ok")
