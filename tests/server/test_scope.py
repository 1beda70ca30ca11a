"""The HTTP connection scope: every key, its type and its exact value."""
import ast

import pytest

from conftest import RawConn, Server, build_request, free_port


def scope_of(resp):
    assert resp.status == 200, resp
    return ast.literal_eval(resp.body.decode())


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server("scope_app:app", [], tmp_path_factory.mktemp("scope"), port=free_port())
    yield s
    s.stop()


def ask(srv, raw_request):
    c = srv.connect()
    try:
        c.send(raw_request)
        return scope_of(c.read_response()), c
    finally:
        c.close()


@pytest.mark.ref("uvicorn")  # daphne 4 omits asgi.spec_version
def test_scope_keys_and_types(srv):
    res, _ = ask(srv, build_request("GET", "/a/b?x=1"))
    sc, types = res["scope"], res["scope"]["_types"]
    assert sc["type"] == "http"
    assert sc["asgi"]["version"] == "3.0"
    assert sc["asgi"]["spec_version"] == "2.3"
    assert sc["http_version"] == "1.1"
    assert sc["method"] == "GET"
    assert sc["scheme"] == "http"
    assert types["path"] == "str" and sc["path"] == "/a/b"
    assert types["raw_path"] == "bytes" and sc["raw_path"] == b"/a/b"
    assert types["query_string"] == "bytes" and sc["query_string"] == b"x=1"
    assert types["root_path"] == "str" and sc["root_path"] == ""
    assert types["headers"] in ("list", "tuple")
    for h in sc["headers"]:
        assert len(h) == 2 and type(h[0]) is bytes and type(h[1]) is bytes
    assert types["client"] in ("list", "tuple") and types["server"] in ("list", "tuple")


def test_scope_extensions_is_dict(srv):
    res, _ = ask(srv, build_request("GET", "/"))
    assert res["scope"]["_types"].get("extensions") == "dict"


@pytest.mark.ref("uvicorn", "daphne")
def test_path_percent_decoded_utf8_and_raw_path(srv):
    res, _ = ask(srv, build_request("GET", "/caf%C3%A9/a%20b%2Fc/%E2%82%AC?q=%20%C3%A9&r"))
    sc = res["scope"]
    assert sc["path"] == "/café/a b/c/€"
    assert sc["raw_path"] == b"/caf%C3%A9/a%20b%2Fc/%E2%82%AC"
    assert sc["query_string"] == b"q=%20%C3%A9&r"


@pytest.mark.ref("uvicorn", "daphne")
def test_no_query_string_is_empty_bytes(srv):
    res, _ = ask(srv, build_request("GET", "/plain"))
    assert res["scope"]["query_string"] == b""
    assert res["scope"]["raw_path"] == b"/plain"


@pytest.mark.ref("uvicorn")  # daphne (twisted) groups repeated headers
def test_headers_order_repeats_lowercase(srv):
    req = (b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Alpha: 1\r\nx-BETA: Two Words\r\n"
           b"X-Alpha: 3\r\nAccept: */*\r\n\r\n")
    res, _ = ask(srv, req)
    hdrs = [tuple(h) for h in res["scope"]["headers"]]
    assert hdrs == [(b"host", b"example.com"), (b"x-alpha", b"1"),
                    (b"x-beta", b"Two Words"), (b"x-alpha", b"3"), (b"accept", b"*/*")]


@pytest.mark.ref("uvicorn", "daphne")
def test_client_and_server_addresses(srv):
    c = srv.connect()
    try:
        c.send(build_request("GET", "/"))
        sc = scope_of(c.read_response())["scope"]
        assert list(sc["client"]) == ["127.0.0.1", c.local_port()]
        assert list(sc["server"]) == ["127.0.0.1", srv.port]
    finally:
        c.close()


@pytest.mark.ref("uvicorn", "daphne")
def test_http_version_1_0(srv):
    res, _ = ask(srv, build_request("GET", "/old", version="1.0"))
    assert res["scope"]["http_version"] == "1.0"


@pytest.mark.ref("uvicorn", "daphne")
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods(srv, method):
    res, _ = ask(srv, build_request(method, "/m", body=b"abc"))
    assert res["scope"]["method"] == method
    assert res["body"] == b"abc"


@pytest.mark.ref("uvicorn", "daphne")
def test_root_path_from_flag(start_server):
    s = start_server("scope_app:app", "--root-path", "/sub")
    r = s.request("GET", "/sub/x?y=1")
    sc = scope_of(r)["scope"]
    assert sc["root_path"] == "/sub"
    assert sc["path"] == "/sub/x"
    assert sc["raw_path"] == b"/sub/x"


def test_state_from_lifespan_copied_per_request(start_server):
    s = start_server("lifespan_app:app")
    r1 = s.request("GET", "/mutate")
    assert (r1.status, r1.body) == (200, b"[('list', [1, 2]), ('token', 'abc123')]")
    # the first request wrote "mut" into its copy: the next one must not see it
    r2 = s.request("GET", "/")
    assert (r2.status, r2.body) == (200, b"[('list', [1, 2]), ('token', 'abc123')]")
