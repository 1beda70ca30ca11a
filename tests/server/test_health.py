"""--health-path: answered by the server itself, never by the application:
200 while serving, 503 while the worker drains."""
import signal
import threading
import time

from conftest import build_request, run_cli


def test_health_path_is_answered_without_the_app(start_server):
    s = start_server("hello_app:app", "--health-path", "/healthz")
    r = s.request("GET", "/healthz")
    assert (r.status, r.body) == (200, b"ok\n")
    assert r.header("content-type") == "text/plain; charset=utf-8"
    assert r.header("cache-control") == "no-store"
    assert s.request("GET", "/healthz?probe=lb").body == b"ok\n"
    head = s.request("HEAD", "/healthz")
    assert head.status == 200 and head.body == b""
    # other paths, and paths that only start like it, reach the application
    assert s.request("GET", "/healthz/").body == b"hello world!"
    assert s.request("GET", "/healthzz").body == b"hello world!"
    # keep-alive: the health answer leaves the connection usable
    c = s.connect()
    c.send(build_request("GET", "/healthz") + build_request("GET", "/app"))
    assert c.read_response().body == b"ok\n"
    assert c.read_response().body == b"hello world!"
    c.close()


def test_health_path_off_by_default(start_server):
    s = start_server("hello_app:app")
    assert s.request("GET", "/healthz").body == b"hello world!"


def test_health_path_says_503_while_draining(start_server):
    s = start_server("slow_app:app", "--health-path", "/healthz", "--shutdown-timeout", "10")
    probe = s.connect()
    probe.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # header section not complete yet
    busy = s.connect()
    busy.send(build_request("GET", "/sleep?s=1.5"))
    time.sleep(0.3)
    s.signal(signal.SIGTERM)
    time.sleep(0.3)  # draining: the slow request keeps the worker alive
    probe.send(b"\r\n")
    r = probe.read_response()
    assert (r.status, r.body) == (503, b"draining\n")
    assert busy.read_response().body == b"slept"
    s.stop()


def test_health_path_must_be_a_path():
    r = run_cli(["--health-path", "healthz"], "hello_app:app")
    assert r.returncode == 2 and "--health-path" in r.stderr
