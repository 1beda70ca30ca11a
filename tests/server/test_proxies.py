"""Behind proxies: RFC 7239 Forwarded, --forwarded-allow-ips (uvicorn's
flag), and header names with '_' kept from the application (daphne)."""
import ast

import pytest

from conftest import run_cli


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
