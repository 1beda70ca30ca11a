"""Behind proxies: RFC 7239 Forwarded, --forwarded-allow-ips (uvicorn's
flag), and header names with '_' kept from the application (daphne)."""
import ast
import socket
import time

import pytest

from conftest import READY_PATH, build_request, run_cli


def _scope(s, headers):
    r = s.request("GET", "/p", headers)
    assert r.status == 200
    return ast.literal_eval(r.body.decode())["scope"]


def test_forwarded_header_names_client_and_scheme(start_server):
    s = start_server("scope_app:app", "--proxy-headers")
    sc = _scope(s, [("Forwarded", 'for=192.0.2.60;proto=https;by=203.0.113.43, for=10.0.0.1')])
    assert list(sc["client"]) == ["192.0.2.60", 0] and sc["scheme"] == "https"
    sc = _scope(s, [("Forwarded", 'For="[2001:db8:cafe::17]:4711"; Proto=http')])
    assert list(sc["client"]) == ["2001:db8:cafe::17", 4711] and sc["scheme"] == "http"
    sc = _scope(s, [("Forwarded", 'for="192.0.2.43:47011"')])
    assert list(sc["client"]) == ["192.0.2.43", 47011]
    # Forwarded wins over X-Forwarded-For when both are sent
    sc = _scope(s, [("Forwarded", "for=198.51.100.9"), ("X-Forwarded-For", "10.1.2.3")])
    assert sc["client"][0] == "198.51.100.9"
    # a Forwarded with only proto: the client comes from X-Forwarded-For
    sc = _scope(s, [("Forwarded", "proto=https"), ("X-Forwarded-For", "10.1.2.3")])
    assert sc["client"][0] == "10.1.2.3" and sc["scheme"] == "https"


def test_forwarded_ignored_without_proxy_headers(start_server):
    s = start_server("scope_app:app")
    sc = _scope(s, [("Forwarded", "for=192.0.2.60;proto=https")])
    assert sc["client"][0] == "127.0.0.1" and sc["scheme"] == "http"


def test_forwarded_allow_ips_limits_trusted_peers(start_server, tmp_path):
    """The test connects from 127.0.0.1: trusted when listed (address or
    network), ignored otherwise; the access log follows the scope."""
    for allow, trusted in (("127.0.0.1", True), ("10.0.0.0/8, 127.0.0.0/30", True),
                           ("10.0.0.0/8,::1", False), ("*", True)):
        log = tmp_path / ("a%d.log" % len(allow))
        s = start_server("scope_app:app", "--proxy-headers", "--forwarded-allow-ips", allow,
                         "--access-log", str(log))
        sc = _scope(s, [("X-Forwarded-For", "10.1.2.3"), ("X-Forwarded-Proto", "https")])
        assert (sc["client"][0] == "10.1.2.3") is trusted, allow
        assert (sc["scheme"] == "https") is trusted, allow
        s.stop()
        lines = [l for l in log.read_text().splitlines() if '"GET /p"' in l]
        assert lines and lines[0].startswith("10.1.2.3:0 ") is trusted, (allow, lines)


def test_forwarded_allow_ips_from_environment(start_server):
    s = start_server("scope_app:app", "--proxy-headers",
                     extra_env={"FORWARDED_ALLOW_IPS": "192.0.2.1"})
    sc = _scope(s, [("X-Forwarded-For", "10.1.2.3")])
    assert sc["client"][0] == "127.0.0.1"


@pytest.mark.parametrize("bad", ["", "10.0.0.0/33", "not-an-ip", "::1/129"])
def test_forwarded_allow_ips_refused_when_invalid(bad):
    r = run_cli(["--proxy-headers", "--forwarded-allow-ips", bad], "scope_app:app")
    assert r.returncode == 2 and "--forwarded-allow-ips" in r.stderr, r.stderr


@pytest.mark.ref("daphne")
def test_header_names_with_underscores_never_reach_the_app(start_server):
    s = start_server("scope_app:app")
    sc = _scope(s, [("X_User", "spoofed"), ("X-User", "real"), ("Accept", "a")])
    names = [n for n, _ in sc["headers"]]
    assert b"x_user" not in names
    assert (b"x-user", b"real") in [tuple(h) for h in sc["headers"]]
    assert b"accept" in names


def start_pp(start_server, *args):
    """A --proxy-protocol server, ready once a request behind a PROXY header
    gets a status line (the usual readiness probe sends none)."""
    s = start_server("scope_app:app", "--proxy-protocol", *args, wait=False)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", s.port), 1) as probe:
                probe.sendall(b"PROXY UNKNOWN\r\n" + build_request("GET", READY_PATH))
                if probe.recv(16).startswith(b"HTTP/1."):
                    return s
        except OSError:
            pass
        assert time.monotonic() < deadline and s.proc.poll() is None, s.describe()
        time.sleep(0.05)


def _raw_scope(c, prefix):
    c.send(prefix + b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    assert r.status == 200
    return ast.literal_eval(r.body.decode())["scope"]


def test_proxy_protocol_v1_and_v2(start_server, tmp_path):
    """--proxy-protocol: the balancer's header names the client (scope and
    access log); keep-alive requests after it keep that client."""
    log = tmp_path / "pp.log"
    s = start_pp(start_server, "--access-log", str(log))
    c = s.connect()
    sc = _raw_scope(c, b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 8443\r\n")
    assert list(sc["client"]) == ["192.0.2.7", 51234]
    assert list(sc["server"]) == ["10.0.0.1", 8443]
    assert list(_raw_scope(c, b"")["client"]) == ["192.0.2.7", 51234]  # same connection
    c.close()
    # v2, TCP over IPv6: 2001::7 port 12345 -> ::1 port 443
    v2 = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24" + b"\x20\x01" + bytes(13) + b"\x07"
          + bytes(15) + b"\x01" + b"\x30\x39\x01\xbb")
    c = s.connect()
    sc = _raw_scope(c, v2)
    assert list(sc["client"]) == ["2001::7", 12345] and sc["server"][1] == 443
    c.close()
    # LOCAL (a health check of the balancer itself): the socket's addresses
    c = s.connect()
    sc = _raw_scope(c, b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")
    assert sc["client"][0] == "127.0.0.1"
    c.close()
    s.stop()
    assert any(l.startswith("192.0.2.7:51234 - - [") and '"GET /p"' in l
               for l in log.read_text().splitlines())


def test_proxy_protocol_missing_or_invalid_closes_that_connection(start_server):
    s = start_pp(start_server)
    for junk in (b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n", b"PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n",
                 b"PROXY " + b"A" * 200):
        c = s.connect()
        c.send(junk)
        assert c.is_closed_by_peer(5)  # closed without an answer
        c.close()
    # the others are served meanwhile
    c = s.connect()
    assert _raw_scope(c, b"PROXY TCP4 198.51.100.1 10.0.0.1 1000 80\r\n")["client"][0] == \
        "198.51.100.1"
    c.close()
    assert "no valid PROXY protocol header" in s.stderr() + s.stdout()


def test_proxy_protocol_only_from_allowed_peers(start_server):
    s = start_server("scope_app:app", "--proxy-protocol", "--forwarded-allow-ips", "10.0.0.0/8",
                     wait=False)
    s.wait_ready(probe=False)
    c = s.connect()
    c.send(b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 8443\r\nGET /p HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.is_closed_by_peer(5)
    c.close()
    assert "not in --forwarded-allow-ips" in s.stderr() + s.stdout()
