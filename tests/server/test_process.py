"""Graceful shutdown, --workers, -u unix socket, --fd, --proxy-headers."""
import ast
import os
import signal
import socket
import threading
import time

import pytest

from conftest import (IMPL, RawConn, build_request, children_of, free_port,
                      process_tree)


@pytest.mark.ref("uvicorn")
def test_graceful_shutdown_finishes_inflight_request(start_server):
    s = start_server("slow_app:app")
    c = s.connect()
    c.send(build_request("GET", "/sleep?s=2"))
    time.sleep(0.4)
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    # new connections are refused while the slow request is still in flight
    refused = False
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        try:
            probe = socket.create_connection(("127.0.0.1", s.port), 0.5)
            probe.close()
            time.sleep(0.05)
        except ConnectionRefusedError:
            refused = True
            break
    assert refused, "listener still accepting after SIGTERM"
    assert s.proc.poll() is None, "server exited before its in-flight request finished"
    r = c.read_response()
    assert (r.status, r.body) == (200, b"slept")
    c.close()
    s.stopped = True
    assert s.proc.wait(5) == 0
    assert time.monotonic() - t0 < 5


def test_shutdown_timeout_bounds_the_wait(start_server):
    s = start_server("slow_app:app", "--shutdown-timeout", "1")
    c = s.connect()
    c.send(build_request("GET", "/sleep?s=30"))
    time.sleep(0.3)
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    s.stopped = True
    assert s.proc.wait(6) == 0, s.describe()
    assert time.monotonic() - t0 < 4
    c.close()


@pytest.mark.ref("uvicorn")
def test_sigterm_as_soon_as_port_accepts_exits_0(start_server):
    s = start_server("lifespan_app:app", wait=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", s.port), 0.5).close()
            break
        except OSError:
            time.sleep(0.01)
    s.signal(signal.SIGTERM)
    s.stopped = True
    assert s.proc.wait(8) == 0, s.describe()


@pytest.mark.ref("uvicorn")
def test_sigint_also_exits_0(start_server):
    s = start_server("hello_app:app")
    assert s.request("GET", "/").status == 200
    s.signal(signal.SIGINT)
    s.stopped = True
    assert s.proc.wait(5) == 0


def _pids(s, n_rounds=12):
    """Concurrent blocking requests until two distinct pids answered."""
    pids = set()
    for _ in range(n_rounds):
        results = []

        def one():
            r = s.request("GET", "/block?s=0.25")
            results.append(int(r.body))
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pids.update(results)
        if len(pids) >= 2:
            break
    return pids


@pytest.mark.ref("uvicorn")
def test_workers_two_processes_serve(start_server):
    s = start_server("slow_app:app", "--workers", "2")
    pids = _pids(s)
    assert len(pids) == 2, pids
    assert s.pid not in pids
    for p in pids:
        assert p in process_tree(s.pid)


def test_workers_dead_worker_restarted(start_server):
    s = start_server("slow_app:app", "--workers", "2")
    pids = _pids(s)
    assert len(pids) == 2, pids
    assert sorted(children_of(s.pid)) == sorted(pids)
    victim = min(pids)
    # killed at once, right after it served: a worker killed by a signal is
    # always restarted (only a quick non-zero *exit*, e.g. an app that cannot
    # be imported, stops the server)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    kids = []
    while time.monotonic() < deadline:
        kids = children_of(s.pid)
        if len(kids) == 2 and victim not in kids:
            break
        time.sleep(0.1)
    assert len(kids) == 2 and victim not in kids, kids
    newcomer = (set(kids) - pids).pop()
    time.sleep(0.5)
    served = _pids(s, 20)
    assert served == set(kids), (served, kids, newcomer)
    s.stop()  # the parent forwards SIGTERM and exits 0
    for p in kids:
        assert not os.path.exists("/proc/%d" % p) or \
            open("/proc/%d/stat" % p).read().split()[2] == "Z"


@pytest.mark.ref("uvicorn", "daphne")
def test_unix_socket(start_server, tmp_path):
    path = str(tmp_path / "dfws.sock")
    s = start_server("scope_app:app", unix=path)
    r = s.request("GET", "/unix?a=b")
    sc = ast.literal_eval(r.body.decode())["scope"]
    assert sc["path"] == "/unix" and sc["query_string"] == b"a=b"
    assert sc["server"] is None
    s.stop()


@pytest.mark.ref("uvicorn", "daphne")
def test_fd_inherited_listening_socket(start_server):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    fd = lsock.fileno()
    try:
        s = start_server("scope_app:app", "--fd", str(fd), port=port, pass_fds=(fd,),
                         wait=False)
        c = RawConn.tcp(port, 15)
        c.send(build_request("GET", "/fd"))
        r = c.read_response()
        c.close()
        sc = ast.literal_eval(r.body.decode())["scope"]
        assert sc["path"] == "/fd"
        assert list(sc["server"]) == ["127.0.0.1", port]
    finally:
        lsock.close()


def _scope(s, headers):
    r = s.request("GET", "/p", headers)
    assert r.status == 200
    return ast.literal_eval(r.body.decode())["scope"]


@pytest.mark.ref("daphne")
def test_proxy_headers(start_server):
    s = start_server("scope_app:app", "--proxy-headers")
    sc = _scope(s, [("X-Forwarded-For", "10.1.2.3"), ("X-Forwarded-Port", "4242"),
                    ("X-Forwarded-Proto", "https")])
    assert list(sc["client"]) == ["10.1.2.3", 4242]
    assert sc["scheme"] == "https"
    # several hops: the first address is the original client
    sc = _scope(s, [("X-Forwarded-For", "10.9.9.9, 10.1.1.1"), ("X-Forwarded-Port", "80")])
    assert list(sc["client"]) == ["10.9.9.9", 80]
    assert sc["scheme"] == "http"


@pytest.mark.ref("daphne")
def test_proxy_headers_ignored_without_flag(start_server):
    s = start_server("scope_app:app")
    sc = _scope(s, [("X-Forwarded-For", "10.1.2.3"), ("X-Forwarded-Port", "4242"),
                    ("X-Forwarded-Proto", "https")])
    assert sc["client"][0] == "127.0.0.1" and sc["client"][1] != 4242
    assert sc["scheme"] == "http"


@pytest.mark.ref("daphne")
def test_proxy_headers_custom_names(start_server):
    s = start_server("scope_app:app", "--proxy-headers", "--proxy-headers-host",
                     "X-Real-IP", "--proxy-headers-port", "X-Real-Port")
    sc = _scope(s, [("X-Real-IP", "192.0.2.7"), ("X-Real-Port", "5555"),
                    ("X-Forwarded-For", "10.1.2.3")])
    assert list(sc["client"]) == ["192.0.2.7", 5555]
