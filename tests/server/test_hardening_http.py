"""Issue #10 (HTTP/1 side): what an attacker and a bad day found.

Lenient parsing, unbounded heads and bodies, the request after an upgrade
nobody takes, application-controlled framing, and daphne's behaviour where
users rely on it. Each case: a clear answer, and the server keeps serving
(the bystander connection opened before still works)."""
import ast
import signal
import socket
import subprocess
import time

import pytest

from conftest import build_command, build_request, free_port, server_env, APPS
from test_bad_input import bystander, expect_error_and_close  # noqa: F401 (fixture)


def bad(s, check, raw, status):
    """Sends `raw` on a fresh connection: `status` comes back, the
    connection closes, no second response follows, the server still serves."""
    c = s.connect()
    try:
        c.send(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = expect_error_and_close(c, status)
    assert b"HTTP/1.1 200" not in c.buf, "a request after the bad one was served"
    c.close()
    check()
    return r


# ---- item 3: lenient HTTP/1 parsing -----------------------------------------

SMUGGLING = {
    "cr_without_lf_ends_no_head":
        b"GET / HTTP/1.1\r\nHost: t\r\n\rXGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    "chunk_data_without_crlf":
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabcXY0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    "obs_fold_in_transfer_encoding":
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
    "obs_fold_in_any_header": b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
    "transfer_encoding_in_http10_keep_alive":
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    "empty_header_name": b"GET / HTTP/1.1\r\nHost: t\r\n: empty\r\n\r\n",
    "tab_after_method": b"GET\t/ HTTP/1.1\r\nHost: t\r\n\r\n",
    "tab_in_target": b"GET /\tx HTTP/1.1\r\nHost: t\r\n\r\n",
    "http09_request_line": b"GET /\r\n\r\n",
    "http20_request_line": b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
    "http11_without_host": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "transfer_encoding_chunked_twice":
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    # item 10: daphne answers 400 to a target with raw non-ASCII bytes
    "non_ascii_path": "GET /äöü HTTP/1.1\r\nHost: t\r\n\r\n".encode(),
    "non_ascii_query": "GET /?q=ä HTTP/1.1\r\nHost: t\r\n\r\n".encode(),
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_lenient_parsing_refused_400(start_server, bystander, name):
    s = start_server("hello_app:app")
    bad(s, bystander(s), SMUGGLING[name], 400)


@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "identity"])
def test_transfer_coding_other_than_chunked_501(start_server, bystander, coding):
    s = start_server("hello_app:app")
    bad(s, bystander(s), ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: %s\r\n\r\n"
                          "0\r\n\r\n" % coding).encode(), 501)


def test_trailing_whitespace_stripped_from_header_values(start_server):
    s = start_server("scope_app:app")
    c = s.connect()
    c.send(b"GET / HTTP/1.1\r\nHost: t \t\r\nX-A: a b  \r\nX-B:\t \r\n\r\n")
    r = c.read_response()
    c.close()
    headers = ast.literal_eval(r.body.decode())["scope"]["headers"]
    assert headers == [(b"host", b"t"), (b"x-a", b"a b"), (b"x-b", b"")]


# ---- item 4: header count, every head byte, stalled bodies ------------------

def test_header_field_count_limit_431(start_server, bystander):
    s = start_server("hello_app:app")
    check = bystander(s)
    ok = build_request("GET", "/", [("X-%d" % i, "") for i in range(99)])
    r = s.connect()
    r.send(ok)
    assert r.read_response().status == 200  # Host + 99 = 100 fields
    r.close()
    bad(s, check, build_request("GET", "/", [("X-%d" % i, "") for i in range(100)]), 431)


def test_every_head_byte_counts(start_server, bystander):
    # 95 names of 18 bytes: 1710 bytes of names and values, 3135 of head
    s = start_server("hello_app:app", "--limit-request-headers", "2048")
    check = bystander(s)
    head = b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(
        b"X-Padding-Field-%02d:            \r\n" % i for i in range(95)) + b"\r\n"
    bad(s, check, head, 431)


def test_trickled_body_times_out_408(start_server):
    s = start_server("scope_app:app", "--header-timeout", "1")
    c = s.connect()
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < 8:
        try:
            c.send(b"x")  # a byte every 0.2 s: 5 bytes/s
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        c.sock.settimeout(0.2)
        try:
            data = c.sock.recv(4096)
        except socket.timeout:
            continue
        c.buf += data
        closed = True
        break
    c.sock.settimeout(5)
    assert closed, "a body trickling at 5 bytes/s held the connection for 8 s"
    assert c.buf.startswith(b"HTTP/1.1 408 "), c.buf
    assert time.monotonic() - t0 < 4
    c.close()
    assert s.request("GET", "/after").status == 200


def test_slow_but_steady_body_is_not_timed_out(start_server):
    # 2000 bytes/s for 2.5 s with --header-timeout 1: above the minimum rate
    s = start_server("scope_app:app", "--header-timeout", "1")
    c = s.connect()
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
    for _ in range(25):
        c.send(b"y" * 200)
        time.sleep(0.1)
    r = c.read_response()
    c.close()
    assert r.status == 200
    assert ast.literal_eval(r.body.decode())["body"] == b"y" * 5000


def test_client_waiting_for_100_continue_is_not_timed_out(start_server):
    # the app reads the body 2 s after the head, --header-timeout 1: the
    # client waits for "100 Continue", the stall is not its own
    s = start_server("late_reader_app:app", "--header-timeout", "1")
    c = s.connect()
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert c.read_response(allow_100=True).status == 100
    c.send(b"12345")
    r = c.read_response()
    assert (r.status, r.body) == (200, b"5")
    c.close()


def test_body_unread_by_the_app_is_not_timed_out(start_server):
    # 4 MiB sent at once while the app does not read for 2 s: backpressure
    s = start_server("late_reader_app:app", "--header-timeout", "1")
    c = s.connect()
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (4 << 20))
    c.send(b"z" * (4 << 20))
    r = c.read_response()
    assert (r.status, r.body) == (200, b"%d" % (4 << 20))
    c.close()


# ---- item 6: the request after an upgrade nobody takes ----------------------

@pytest.mark.parametrize("first", [
    b"GET /h2c HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: no-such-protocol\r\n\r\n",
    b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n",
], ids=["h2c", "unknown", "connect"])
def test_request_after_unhandled_upgrade_is_answered(start_server, first):
    s = start_server("hello_app:app")
    c = s.connect(timeout=3)
    c.send(first)
    assert c.read_response().status == 200
    c.send(build_request("GET", "/next"))
    r = c.read_response()
    assert (r.status, r.body) == (200, b"hello world!")
    # pipelined behind the upgrade request, too
    c2 = s.connect(timeout=3)
    c2.send(first + build_request("GET", "/next"))
    assert c2.read_response().status == 200
    assert c2.read_response().body == b"hello world!"
    c.close()
    c2.close()


# ---- item 7: application-controlled framing ---------------------------------

@pytest.mark.parametrize("status", [100, 103, 199, 600, 4294967496, -1])
def test_bad_status_from_app_500(start_server, status):
    s = start_server("bad_status_app:app")
    c = s.connect()
    c.send(build_request("GET", "/?s=%d" % status))
    r = c.read_response()
    assert r.status == 500, r
    c.close()
    s.stop()
    assert "Exception inside application" in s.stderr()


@pytest.mark.parametrize("path", ["/crlf", "/str-name", "/str-value", "/cl-conflict"])
def test_refused_app_header_gets_500_not_a_drop(start_server, path):
    s = start_server("bad_header_app:app")
    c = s.connect()
    c.send(build_request("GET", path))
    r = c.read_response()
    assert r.status == 500, r
    assert r.header("set-cookie") is None and r.header("x-str") is None
    c.close()
    s.stop()
    assert "Exception inside application" in s.stderr()


def test_app_may_start_again_after_a_refused_header(start_server):
    s = start_server("bad_header_app:app")
    r = s.request("GET", "/crlf?retry=1")
    assert (r.status, r.body) == (200, b"retried")
    assert r.header("x-evil") is None and r.header_all("content-length") == ["7"]


def test_same_content_length_twice_sent_once(start_server):
    s = start_server("bad_header_app:app")
    c = s.connect()
    c.send(build_request("GET", "/cl-same"))
    r = c.read_response()
    assert (r.status, r.body, r.header_all("content-length")) == (200, b"ok", ["2"])
    c.send(build_request("GET", "/cl-same"))  # the connection is still good
    assert c.read_response().body == b"ok"
    c.close()


# ---- item 10: daphne's behaviour --------------------------------------------

def scope_of(s, headers):
    r = s.request("GET", "/p", headers)
    assert r.status == 200, r
    return ast.literal_eval(r.body.decode())["scope"]


@pytest.mark.ref("daphne")
def test_daphne_root_path_header(start_server):
    s = start_server("scope_app:app")
    scope = scope_of(s, [("Daphne-Root-Path", "/mounted%20here")])
    assert scope["root_path"] == "/mounted here"
    assert b"daphne-root-path" not in dict(scope["headers"])


@pytest.mark.ref("daphne")
def test_daphne_root_path_header_replaces_flag(start_server):
    s = start_server("scope_app:app", "--root-path", "/base")
    assert scope_of(s, [])["root_path"] == "/base"
    assert scope_of(s, [("Daphne-Root-Path", "/proxy")])["root_path"] == "/proxy"


def test_lifespan_auto_serves_app_that_never_answers_startup(start_server):
    t0 = time.monotonic()
    s = start_server("lifespan_silent_app:app", "--lifespan-timeout", "1")
    r = s.request("GET", "/")
    assert (r.status, r.body) == (200, b"served")
    assert time.monotonic() - t0 < 8
    assert s.read_out("lifespan") == "lifespan.startup\n"
    s.stop()
    assert "lifespan startup not answered within 1 s" in s.stderr()


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_sigterm_during_lifespan_startup_stops(tmp_path, mode):
    port = free_port()
    cmd = build_command(["-p", str(port), "--lifespan", mode, "--lifespan-timeout", "60"],
                        "lifespan_silent_app:app")
    env = server_env(tmp_path)
    proc = subprocess.Popen(cmd, cwd=APPS, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "lifespan").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "lifespan").exists(), "the app never got the lifespan scope"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"received SIGTERM during lifespan startup" in err


def test_lifespan_shutdown_not_answered_is_bounded(start_server):
    s = start_server("lifespan_stuck_shutdown_app:app", "--shutdown-timeout", "1")
    assert s.request("GET", "/").status == 200
    t0 = time.monotonic()
    s.stop(timeout=6)  # exit 0
    assert time.monotonic() - t0 < 4
    assert s.read_out("lifespan") == "lifespan.shutdown\n"
    assert "lifespan shutdown not answered within 1 s" in s.stderr()


def test_second_sigterm_ends_lifespan_shutdown(start_server):
    s = start_server("lifespan_stuck_shutdown_app:app", "--shutdown-timeout", "60")
    s.signal(signal.SIGTERM)
    assert s.wait_out("lifespan", 5) == "lifespan.shutdown\n"
    t0 = time.monotonic()
    s.stop(timeout=5)  # the second SIGTERM
    assert time.monotonic() - t0 < 3
    assert "lifespan shutdown abandoned" in s.stderr()
