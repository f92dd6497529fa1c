"""The web client's server side, driven by curl: its pages at / with a strict
Content-Security-Policy, and browser sessions (docs/web-client.md): login by password or
token -> a cookie (HttpOnly, SameSite=Strict, Secure under TLS), the CSRF header every
state-changing cookie request needs (a cross-site form post is refused and touches
nothing), logout (the cookie and its token are dead at once), idle expiry, the login
limiter, a disabled user, and the policy headers on API answers (a stored page runs no
script next to the session).

The browser itself (puppeteer + Debian chromium) is `make test-browser`
(tests/browser/).
"""
import json
import os
import re
import time

import pytest

from conftest import HOST, ROOT, curl, daemon_scope, free_port

ALICE = ("alice", "pw-alice")
WEB_ROOT = os.path.join(ROOT, "frontends", "http", "web")


def sections(port, tport=None, cert=None, key=None, **extra):
    s = {"http": {"enabled": "yes", "module": "http", "listen": f"{HOST}:{port}",
                  "threads": "2", "web_root": WEB_ROOT, **extra}}
    if tport:
        s["https"] = {"enabled": "yes", "module": "http", "listen": f"{HOST}:{tport}",
                      "threads": "2", "tls_cert": cert, "tls_key": key, "web_root": WEB_ROOT}
    return s


@pytest.fixture(scope="module")
def webd(tls_cert):
    port, tport = free_port(), free_port()
    with daemon_scope(sections(port, tport, *tls_cert), name="web") as d:
        d.base = f"http://{HOST}:{port}"
        d.tls_base = f"https://{HOST}:{tport}"
        d.add_user(*ALICE)
        d.add_user("bob", "pw-bob")
        yield d


def login(base, body, *args):
    return curl("-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                json.dumps(body), *args, base + "/api/v1/session")


def cookie_of(r):
    sc = r.header("Set-Cookie") or ""
    m = re.match(r"sd_session=([0-9a-f]{64});", sc)
    assert m, f"no session cookie in {r.headers!r}"
    return m.group(1)


def web(d, method, path, cookie, csrf=None, *args, base=None):
    h = ["-H", f"Cookie: sd_session={cookie}"]
    if csrf:
        h += ["-H", f"X-CSRF-Token: {csrf}"]
    return curl("-X", method, *h, *args, (base or d.base) + path)


def test_pages_served_with_strict_policy(webd):
    r = curl(webd.base + "/")
    assert r.code == 200, r
    assert r.header("Content-Type").startswith("text/html")
    assert b"/web/app.js" in r.body
    csp = r.header("Content-Security-Policy")
    assert "script-src 'self'" in csp and "default-src 'none'" in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert "frame-ancestors 'none'" in csp
    assert r.header("X-Content-Type-Options") == "nosniff"
    js = curl(webd.base + "/web/app.js")
    assert js.code == 200 and js.header("Content-Type").startswith("text/javascript"), js
    with open(os.path.join(WEB_ROOT, "app.js"), "rb") as f:
        assert js.body == f.read()
    etag = js.header("ETag")
    again = curl("-H", f"If-None-Match: {etag}", webd.base + "/web/app.js")
    assert again.code == 304 and again.body == b""
    for bad in ("/web/nope.js", "/web/..%2fmodule.c", "/web/", "/web/../routes.c"):
        assert curl(webd.base + bad).code in (404,), bad
    # the pages need no credentials; the API still does
    assert curl(webd.base + "/api/v1/me").code == 401


def test_login_cookie_flags_and_csrf(webd):
    # wrong password: 401 without a Basic challenge (the browser would pop its dialog)
    bad = login(webd.base, {"user": "alice", "password": "nope"})
    assert bad.code == 401 and bad.json()["error"] == "unauthorized", bad
    assert bad.header("WWW-Authenticate") is None and bad.header("Set-Cookie") is None
    # a form-encoded login (what a cross-site form can send without a preflight): 415
    form = curl("-X", "POST", "--data", "user=alice&password=pw-alice",
                webd.base + "/api/v1/session")
    assert form.code == 415 and form.header("Set-Cookie") is None, form
    assert login(webd.base, {"user": "alice"}).code == 400

    r = login(webd.base, {"user": "alice", "password": "pw-alice"})
    assert r.code == 201, r
    sc = r.header("Set-Cookie")
    assert "HttpOnly" in sc and "SameSite=Strict" in sc and "Path=/" in sc, sc
    assert "Secure" not in sc, sc  # plain HTTP: a Secure cookie would never come back
    cookie, j = cookie_of(r), r.json()
    assert j["user"] == "alice" and not j["admin"] and re.fullmatch(r"[0-9a-f]{64}", j["csrf"])
    csrf = j["csrf"]

    me = web(webd, "GET", "/api/v1/me", cookie)
    assert me.code == 200 and me.json()["user"] == "alice", me
    s = web(webd, "GET", "/api/v1/session", cookie)
    assert s.code == 200 and s.json()["csrf"] == csrf

    # state-changing requests without the header, or with a wrong one: 403, nothing done
    put = web(webd, "PUT", "/api/v1/fs/x.txt", cookie, None, "--data-binary", "x")
    assert put.code == 403 and put.json()["error"] == "csrf", put
    formpost = web(webd, "POST", "/api/v1/fs/evil?op=mkdir", cookie, None,
                   "-H", "Content-Type: application/x-www-form-urlencoded",
                   "-H", "Origin: http://evil.example", "--data", "a=b")
    assert formpost.code == 403 and formpost.json()["error"] == "csrf", formpost
    wrong = web(webd, "POST", "/api/v1/fs/evil?op=mkdir", cookie, "0" * 64)
    assert wrong.code == 403
    ls = curl("-u", "alice:pw-alice", webd.base + "/api/v1/fs/")
    names = [e["name"] for e in ls.json()["entries"]]
    assert "evil" not in names and "x.txt" not in names, names

    ok = web(webd, "POST", "/api/v1/fs/good?op=mkdir", cookie, csrf)
    assert ok.code == 201, ok
    up = web(webd, "PUT", "/api/v1/fs/good/a.txt", cookie, csrf, "--data-binary", "hello")
    assert up.code == 201, up
    got = web(webd, "GET", "/api/v1/fs/good/a.txt", cookie, None, "-r", "1-3")
    assert got.code == 206 and got.body == b"ell", got

    # the session is an ordinary token of the user's, listed with the others
    toks = web(webd, "GET", "/api/v1/me/tokens", cookie).json()["tokens"]
    assert len([t for t in toks if t["state"] == "active"]) == 1, toks

    # logout needs the header too; then the cookie is dead and its token revoked
    assert web(webd, "DELETE", "/api/v1/session", cookie).code == 403
    assert web(webd, "GET", "/api/v1/me", cookie).code == 200
    out = web(webd, "DELETE", "/api/v1/session", cookie, csrf)
    assert out.code == 204, out
    assert "Max-Age=0" in out.header("Set-Cookie")
    dead = web(webd, "GET", "/api/v1/me", cookie)
    assert dead.code == 401 and dead.header("WWW-Authenticate") is None, dead
    assert web(webd, "PUT", "/api/v1/fs/after.txt", cookie, csrf, "--data-binary", "x").code == 401
    toks = curl("-u", "alice:pw-alice", webd.base + "/api/v1/me/tokens").json()["tokens"]
    assert toks and all(t["state"] == "revoked" for t in toks), toks


def test_secure_cookie_under_tls(webd):
    r = login(webd.tls_base, {"user": "alice", "password": "pw-alice"}, "-k")
    assert r.code == 201, r
    assert "Secure" in r.header("Set-Cookie")
    cookie = cookie_of(r)
    assert web(webd, "GET", "/api/v1/me", cookie, None, "-k", base=webd.tls_base).code == 200
    # a session of one listener is no session of another
    assert web(webd, "GET", "/api/v1/me", cookie).code == 401


def test_token_login_keeps_the_token(webd):
    tok = webd.token("bob")
    r = login(webd.base, {"token": tok})
    assert r.code == 201 and r.json()["user"] == "bob", r
    cookie, csrf = cookie_of(r), r.json()["csrf"]
    assert web(webd, "DELETE", "/api/v1/session", cookie, csrf).code == 204
    assert web(webd, "GET", "/api/v1/me", cookie).code == 401
    # the user's own token was not revoked by the logout
    assert curl("-H", f"Authorization: Bearer {tok}", webd.base + "/api/v1/me").code == 200
    assert login(webd.base, {"token": tok + "x"}).code == 401


def test_disabled_user_ends_the_session(webd):
    webd.add_user("carol", "pw-carol")
    r = login(webd.base, {"user": "carol", "password": "pw-carol"})
    cookie = cookie_of(r)
    assert web(webd, "GET", "/api/v1/me", cookie).code == 200
    webd.ctl("user", "disable", "carol")
    assert web(webd, "GET", "/api/v1/me", cookie).code == 401


def test_api_answers_are_no_pages(webd):
    """A stored HTML file opened in the browser runs no script in this origin."""
    html = b"<html><script>alert(1)</script></html>"
    assert curl("-u", "alice:pw-alice", "-T", "-", webd.base + "/api/v1/fs/page.html",
                input=html).code in (200, 201)
    r = curl("-u", "alice:pw-alice", webd.base + "/api/v1/fs/page.html")
    assert r.code == 200 and r.body == html
    assert "sandbox" in r.header("Content-Security-Policy")
    assert r.header("X-Content-Type-Options") == "nosniff"


def test_idle_expiry_and_login_limiter(make_daemon):
    port = free_port()
    d = make_daemon(sections(port, session_idle="2s"),
                    storaged={"auth_max_failures": "3", "auth_block_time": "30s"})
    d.add_user(*ALICE)
    base = f"http://{HOST}:{port}"
    r = login(base, {"user": "alice", "password": "pw-alice"})
    cookie = cookie_of(r)
    assert web(d, "GET", "/api/v1/me", cookie, base=base).code == 200
    time.sleep(1.2)
    assert web(d, "GET", "/api/v1/me", cookie, base=base).code == 200  # use keeps it alive
    time.sleep(1.2)
    assert web(d, "GET", "/api/v1/me", cookie, base=base).code == 200
    time.sleep(2.5)
    assert web(d, "GET", "/api/v1/me", cookie, base=base).code == 401  # idle too long
    # the login limiter counts web logins like any other
    codes = [login(base, {"user": "alice", "password": "bad"}).code for _ in range(3)]
    assert codes[:2] == [401, 401] and codes[2] in (401, 429), codes  # the 3rd starts the block
    blocked = login(base, {"user": "alice", "password": "pw-alice"})
    assert blocked.code == 429 and blocked.header("Set-Cookie") is None, blocked
    assert blocked.header("Retry-After")
