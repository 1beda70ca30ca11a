"""The Django fast path is invisible: every request of this battery gets the
same status, headers and body from dfws-asgi with the fast path (the
default) and with `--no-django-fast-path` (Django's own ASGIHandler on the
event loop), on a project made by `startproject` (tests/django_fast/site).

Only what differs between any two runs of the same server is masked: the
Date header, random tokens (CSRF, session keys), cookie expiry dates and the
server's own port number.
"""
import hashlib
import json
import re
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Client, Server

CSRF_INPUT = re.compile(rb'(name="csrfmiddlewaretoken" value=")[^"]+(")')
COOKIE_VALUE = re.compile(r"^(csrftoken|sessionid)=[^;]*")
EXPIRES = re.compile(r"expires=[^;]+")


def normalize(response, port):
    status, headers, body = response
    body = body.replace(str(port).encode(), b"<port>")
    out = []
    for name, value in headers:
        lname = name.lower()
        if lname == "date":
            continue
        if lname == "set-cookie":
            value = EXPIRES.sub("expires=<date>", COOKIE_VALUE.sub(r"\1=<token>", value))
        out.append((lname, value.replace(str(port), "<port>")))
    return status, out, CSRF_INPUT.sub(rb"\1<token>\2", body)


def multipart(fields, files):
    boundary = "battery-boundary-7d1c"
    parts = []
    for name, value in fields.items():
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                      % (boundary, name, value)).encode())
    for name, (filename, data) in files.items():
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                      "Content-Type: application/octet-stream\r\n\r\n"
                      % (boundary, name, filename)).encode() + data + b"\r\n")
    parts.append(("--%s--\r\n" % boundary).encode())
    return b"".join(parts), "multipart/form-data; boundary=%s" % boundary


def scenario_plain(c):
    return [c.get("/"), c.get("/big/"), c.request("HEAD", "/head/"), c.get("/head/"),
            c.get("/caf%C3%A9/"), c.get("/cookies/"),
            c.get("/page/"), c.get("/form")]  # APPEND_SLASH redirect


def scenario_meta(c):
    headers = [("User-Agent", "battery"), ("X-Custom", "v"), ("X-Dup", "1"), ("X-Dup", "2"),
               ("X_Under", "spoofed"), ("Accept-Language", "fr, en;q=0.5")]
    return [c.get("/meta/?a=1&b=%C3%A9&a=2&empty=", headers=headers),
            c.request("POST", "/meta/?x=y", body=b"k=v",
                      headers=[("Content-Type", "application/x-www-form-urlencoded")]),
            c.get("/meta/", headers=[("Content-Type", "text/plain; charset=latin-1")])]


def scenario_session(c):
    return [c.get("/session/") for _ in range(3)] + [c.get("/page/")]


def scenario_csrf_form(c):
    first = c.get("/form/")
    token = c.cookies["csrftoken"]
    return [
        first,
        c.post_form("/form/", {"name": "Ada", "age": "36", "csrfmiddlewaretoken": token}),
        c.post_form("/form/", {"name": "", "age": "-1", "csrfmiddlewaretoken": token}),
        c.post_form("/form/", {"name": "Ada", "age": "36"}),  # no token: 403
        c.post_form("/form/", {"name": "Ada", "age": "36"}, headers=[("X-CSRFToken", token)]),
    ]


def scenario_login(c):
    c.get("/form/")
    token = c.cookies["csrftoken"]
    return [
        c.get("/whoami/"),
        c.post_form("/login/", {"username": "alice", "password": "wrong",
                                "csrfmiddlewaretoken": token}),
        c.post_form("/login/", {"username": "alice", "password": "battery-pass",
                                "csrfmiddlewaretoken": token}),
        c.get("/whoami/"),
        c.get("/page/"),
    ]


def scenario_messages(c):
    return [c.get("/msg/add/?what=draft"), c.get("/msg/show/"), c.get("/msg/show/")]


def scenario_upload(c):
    small = bytes(range(256)) * 40  # 10 KiB
    large = hashlib.sha256(b"x").digest() * 40000  # 1.25 MiB, above FILE_UPLOAD_MAX_MEMORY_SIZE
    out = []
    for name, data in (("small.bin", small), ("large.bin", large)):
        body, ctype = multipart({"field": "value é"}, {"file": (name, data)})
        out.append(c.request("POST", "/upload/", body=body, headers=[("Content-Type", ctype)]))
    return out


def scenario_streaming(c):
    return [c.get("/stream/"), c.get("/astream/"), c.get("/file/"),
            c.request("HEAD", "/stream/")]


def scenario_async_view(c):
    return [c.get("/async/?q=1"), c.request("POST", "/async/?q=2", body=b"")]


def scenario_errors(c):
    return [c.get("/boom/"), c.get("/missing/"), c.get("/nowhere/"), c.get("/?mwboom=1"),
            c.get("/?mwsuspicious=1"), c.request("DELETE", "/form/"),
            c.get("/", headers=[("Host", "evil.example")])]


SCENARIOS = [scenario_plain, scenario_meta, scenario_session, scenario_csrf_form,
             scenario_login, scenario_messages, scenario_upload, scenario_streaming,
             scenario_async_view, scenario_errors]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__[9:])
def test_fast_path_answers_like_djangos_asgi_handler(servers, scenario):
    fast, asgi = servers
    got = [normalize(r, fast.port) for r in scenario(Client(fast.port))]
    expected = [normalize(r, asgi.port) for r in scenario(Client(asgi.port))]
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, "response %d of %s differs" % (i, scenario.__name__)


def test_meta_is_what_django_builds_from_the_scope(servers):
    """Not only equal on both paths: right (a guard against a battery that
    compares two wrong answers)."""
    fast, _ = servers
    status, _, body = Client(fast.port).get(
        "/meta/?a=1&b=%C3%A9", headers=[("X-Dup", "1"), ("X-Dup", "2"), ("X_Under", "no")])
    meta = json.loads(body)
    assert status == 200
    assert meta["GET"] == {"a": ["1"], "b": ["é"]}
    assert meta["HTTP_X_DUP"] == "1,2" and "HTTP_X_UNDER" not in meta
    assert meta["SERVER_PORT"] == str(fast.port) and meta["REMOTE_ADDR"] == "127.0.0.1"
    assert meta["scope_type"] == "http" and meta["wsgi.multithread"] is True


def test_requests_took_the_path_each_server_was_asked_for(servers):
    fast, asgi = servers
    assert Client(fast.port).get("/served-by/")[2].startswith(b"dfws-django")
    assert not Client(asgi.port).get("/served-by/")[2].startswith(b"dfws-django")
    # async views go back to the event loop, even on the fast server
    assert "Django fast path: on" in fast.log()
    assert "Django fast path: off (--no-django-fast-path)" in asgi.log()


def test_sync_views_run_side_by_side_on_the_pool(servers):
    """Four 0.5 s sync views at once take about 0.5 s, not 2 s (four pool
    threads); the loop keeps answering meanwhile."""
    fast, _ = servers
    with ThreadPoolExecutor(5) as pool:
        t0 = time.monotonic()
        slow = [pool.submit(Client(fast.port).get, "/sleep/?s=0.5") for _ in range(4)]
        quick = pool.submit(Client(fast.port).get, "/async/?q=3").result(timeout=10)
        results = [f.result(timeout=10) for f in slow]
        elapsed = time.monotonic() - t0
    assert quick[0] == 200
    assert all(r[0] == 200 and r[2].startswith(b"slept on dfws-django-") for r in results)
    assert len({r[2] for r in results}) == 4  # four different threads
    assert elapsed < 1.5, elapsed


def test_client_gone_while_its_view_runs(servers):
    """The view finishes on its thread, its answer is dropped, nothing is
    logged as an error and the next requests are served."""
    fast, _ = servers
    seen = len(fast.log())
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", fast.port))
        s.sendall(b"GET /sleep/?s=0.3 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.close()
    time.sleep(0.6)
    assert Client(fast.port).get("/")[0] == 200
    log = fast.log()[seen:]
    assert log.count('"GET /sleep/?s=0.3"') == 0, log  # no response, no access-log line
    assert "Traceback" not in log and "ERROR" not in log, log


def test_shutdown_waits_for_a_running_view(tmp_path):
    """SIGTERM while a view runs on the pool: its response is sent, then the
    worker exits 0 (the threads are joined)."""
    db = tmp_path / "db.sqlite3"
    server = Server(db, tmp_path / "log")
    try:
        assert Client(server.port).get("/")[0] == 200  # serving (the port opens earlier)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(Client(server.port).get, "/sleep/?s=1")
            time.sleep(0.3)
            server.proc.send_signal(signal.SIGTERM)
            status, _, body = pending.result(timeout=15)
        assert status == 200 and body.startswith(b"slept on dfws-django-")
        assert server.proc.wait(20) == 0, server.log()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
