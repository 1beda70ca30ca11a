"""RFC 6455 opening handshake and the ASGI WebSocket scope."""
import asyncio
import json

import pytest
import websockets

from conftest import (IMPL, RawConn, http_exchange, run, upgrade_request,
                      ws_accept_for, ws_connect, ws_key)

@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory("ws_app:app")


def b(v):
    """Decodes the {"__bytes__": ...} encoding of ws_app.jsonable."""
    assert isinstance(v, dict) and "__bytes__" in v, v
    return v["__bytes__"].encode("latin-1")


@pytest.mark.ref("uvicorn", "daphne")
def test_handshake_accept_key_and_echo(srv):
    key = ws_key()
    c = RawConn.tcp(srv.port)
    try:
        c.send(upgrade_request("/echo", key=key))
        status, headers = c.read_head()
        h = dict(headers)
        assert status == 101
        assert h["upgrade"].lower() == "websocket"
        assert "upgrade" in h["connection"].lower()
        assert h["sec-websocket-accept"] == ws_accept_for(key)
        assert "sec-websocket-protocol" not in h
    finally:
        c.close()


@pytest.mark.parametrize("version", ["8", "12", "14", "abc"])
def test_other_version_is_426(srv, version):
    # RFC 6455 4.2.2: 426 Upgrade Required + "Sec-WebSocket-Version: 13"
    # (websockets 10.4 answers 400 here, so no reference run)
    r = http_exchange(srv.port, upgrade_request("/echo", version=version))
    assert r.status == 426, r
    assert "13" in [v.strip() for v in ",".join(r.header_all("sec-websocket-version")).split(",")], r


@pytest.mark.ref("uvicorn")
def test_missing_version_is_rejected(srv):
    r = http_exchange(srv.port, upgrade_request("/echo", version=None))
    assert r.status in (400, 426), r


@pytest.mark.ref("uvicorn")
@pytest.mark.parametrize("key", [
    "short",                                  # not base64 of 16 bytes
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",           # base64 of 21 bytes
    "AAAAAAAAAAAAAAAAAAAAA===",               # bad padding
    "!!!!!!!!!!!!!!!!!!!!!!==",               # not base64 at all
])
def test_bad_key_is_400(srv, key):
    r = http_exchange(srv.port, upgrade_request("/echo", key=key))
    assert r.status == 400, r


@pytest.mark.ref("uvicorn")
def test_missing_key_is_400(srv):
    r = http_exchange(srv.port, upgrade_request("/echo", key=False))
    assert r.status == 400, r


@pytest.mark.ref("uvicorn")
def test_repeated_key_is_400(srv):
    r = http_exchange(srv.port, upgrade_request(
        "/echo", headers=[("Sec-WebSocket-Key", ws_key())]))
    assert r.status == 400, r


def test_bad_handshake_does_not_disturb_others(srv):
    async def go():
        async with ws_connect(srv.url("/echo?tag=calm")) as ws:
            r = await asyncio.get_running_loop().run_in_executor(
                None, http_exchange, srv.port, upgrade_request("/echo", key="bad"))
            assert r.status == 400
            await ws.send("still here")
            assert await ws.recv() == "still here"
    run(go())


@pytest.mark.ref("uvicorn", "daphne")
def test_subprotocols_offered_and_chosen(srv):
    async def go():
        async with ws_connect(srv.url("/scope?sub=superchat"),
                              subprotocols=["chat", "superchat", "v2"]) as ws:
            assert ws.subprotocol == "superchat"
            assert ws.response_headers["Sec-WebSocket-Protocol"] == "superchat"
            scope = json.loads(await ws.recv())
            assert scope["subprotocols"] == ["chat", "superchat", "v2"]
    run(go())


@pytest.mark.ref("uvicorn")
def test_subprotocols_from_several_headers(srv):
    c = RawConn.tcp(srv.port)
    try:
        c.send(upgrade_request("/scope?sub=v2", headers=[
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Protocol", "v2")]))
        status, headers = c.read_head()
        assert status == 101
        assert [v for k, v in headers if k == "sec-websocket-protocol"] == ["v2"]
    finally:
        c.close()


@pytest.mark.ref("uvicorn", "daphne")
def test_no_subprotocol_offered(srv):
    async def go():
        async with ws_connect(srv.url("/scope")) as ws:
            assert ws.subprotocol is None
            assert "Sec-WebSocket-Protocol" not in ws.response_headers
            scope = json.loads(await ws.recv())
            assert scope["subprotocols"] == []
    run(go())


@pytest.mark.ref("uvicorn")
def test_accept_extra_headers_in_101(srv):
    async def go():
        url = srv.url("/accept?sub=chat&h=x-accepted:yes&h=set-cookie:flavour%3Dlemon")
        async with ws_connect(url, subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response_headers["X-Accepted"] == "yes"
            assert ws.response_headers.get_all("Set-Cookie") == ["flavour=lemon"]
            assert await ws.recv() == "ok"
    run(go())


def _scope_over(srv, path, headers=()):
    c = RawConn.tcp(srv.port)
    try:
        c.send(upgrade_request(path, headers=headers))
        status, _ = c.read_head()
        assert status == 101
        from conftest import WSRaw
        ws = WSRaw(c)
        op, payload = ws.recv_message()
        assert op == 1
        return json.loads(payload), c.local_port()
    finally:
        c.close()


@pytest.mark.ref("uvicorn")
def test_scope_complete(srv):
    scope, local_port = _scope_over(
        srv, "/scope/caf%C3%A9/a%20b?x=1&y=%20z&tag=scope",
        headers=[("X-Custom", "One"), ("X-Custom", "Two"),
                 ("Sec-WebSocket-Protocol", "p1, p2")])
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"].get("spec_version", "2.0") in ("2.0", "2.1", "2.2", "2.3", "2.4")
    assert scope["http_version"] in ("1.1",)
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope/caf\u00e9/a b"
    if IMPL != "uvicorn":  # uvicorn 0.17.6 wrongly passes raw_path as str
        assert b(scope["raw_path"]) == b"/scope/caf%C3%A9/a%20b"
    assert b(scope["query_string"]) == b"x=1&y=%20z&tag=scope"
    assert scope["root_path"] == ""
    headers = [[b(k), b(v)] for k, v in scope["headers"]]
    assert [b"x-custom", b"One"] in headers and [b"x-custom", b"Two"] in headers
    assert headers.index([b"x-custom", b"One"]) < headers.index([b"x-custom", b"Two"])
    names = [k for k, _ in headers]
    for n in (b"host", b"upgrade", b"connection", b"sec-websocket-key",
              b"sec-websocket-version"):
        assert n in names, names
    assert all(k == k.lower() for k in names)
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["server"] == ["127.0.0.1", srv.port]
    assert scope["subprotocols"] == ["p1", "p2"]


def test_scope_state_and_extensions(srv):
    scope, _ = _scope_over(srv, "/scope")
    assert scope["state"] == {"answer": 42}
    assert "websocket.http.response" in scope["extensions"]
    assert scope["extensions"]["websocket.http.response"] == {}


def test_scope_root_path(start_server):
    s = start_server("ws_app:app", "--root-path", "/prefix")
    scope, _ = _scope_over(s, "/scope")
    assert scope["root_path"] == "/prefix"


def test_scope_proxy_headers_scheme_wss(start_server):
    s = start_server("ws_app:app", "--proxy-headers")
    scope, _ = _scope_over(s, "/scope", headers=[
        ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.7")])
    assert scope["scheme"] == "wss"
    assert scope["client"][0] == "203.0.113.7"
    scope, _ = _scope_over(s, "/scope", headers=[("X-Forwarded-Proto", "http")])
    assert scope["scheme"] == "ws"


def test_scope_no_proxy_headers_by_default(srv):
    scope, _ = _scope_over(srv, "/scope", headers=[
        ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.7")])
    assert scope["scheme"] == "ws"
    assert scope["client"][0] == "127.0.0.1"


@pytest.mark.ref("uvicorn", "daphne")
def test_close_before_accept_is_403(srv):
    r = http_exchange(srv.port, upgrade_request("/reject?tag=reject"))
    assert r.status == 403, r

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            async with ws_connect(srv.url("/reject")):
                pass
        assert ei.value.status_code == 403
    run(go())


def test_denial_response_extension(srv):
    c = RawConn.tcp(srv.port)
    try:
        c.send(upgrade_request("/deny?tag=deny"))
        r = c.read_response()
        assert r.status == 401, r
        assert r.header("x-deny") == "yes"
        assert r.header("content-type") == "text/plain"
        assert r.body == b"go away"
        assert c.wait_closed(5) == b""
    finally:
        c.close()
    # the server is still fine
    async def go():
        async with ws_connect(srv.url("/echo")) as ws:
            await ws.send("after deny")
            assert await ws.recv() == "after deny"
    run(go())


@pytest.mark.ref("uvicorn", "daphne")
def test_plain_http_still_served(srv):
    r = http_exchange(srv.port, b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and r.body == b"http ok"


def test_bad_input_is_logged(start_server):
    """Bad input gets a log line naming the problem (default verbosity)."""
    import time
    from conftest import OP_TEXT, encode_frame
    s = start_server("ws_app:app")
    assert http_exchange(s.port, upgrade_request("/echo", key="bad")).status == 400
    ws = s.ws_raw("/echo")
    try:
        ws.conn.send(encode_frame(OP_TEXT, b"x", rsv=4))
        ws.expect_close(1002)
    finally:
        ws.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        err = s.stderr()
        if "handshake" in err.lower() and "1002" in err:
            break
        time.sleep(0.1)
    assert "handshake" in err.lower(), err
    assert "1002" in err and "reserved" in err.lower(), err


@pytest.mark.ref("uvicorn")
def test_app_exception_before_accept_is_500(srv):
    r = http_exchange(srv.port, upgrade_request("/raise_early?tag=early"))
    assert r.status == 500, r
    async def go():
        async with ws_connect(srv.url("/echo")) as ws:
            await ws.send("fine")
            assert await ws.recv() == "fine"
    run(go())


@pytest.mark.ref("uvicorn")
def test_firefox_style_connection_header(srv):
    # Firefox sends "Connection: keep-alive, Upgrade"; tokens are case-insensitive
    key = ws_key()
    req = ("GET /echo HTTP/1.1\r\nHost: testserver\r\nUpgrade: WebSocket\r\n"
           "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\nOrigin: http://testserver\r\n\r\n" % key)
    c = RawConn.tcp(srv.port)
    try:
        c.send(req.encode())
        status, headers = c.read_head()
        assert status == 101, headers
        assert dict(headers)["sec-websocket-accept"] == ws_accept_for(key)
    finally:
        c.close()


def test_unsupported_extension_not_negotiated(srv):
    # only permessage-deflate is implemented (tests/websocket/test_ws_deflate.py):
    # another extension must not be accepted (else the client would send RSV1
    # frames the server rejects)
    c = RawConn.tcp(srv.port)
    try:
        c.send(upgrade_request("/echo", headers=[
            ("Sec-WebSocket-Extensions", "x-webkit-deflate-frame; no_context_takeover")]))
        status, headers = c.read_head()
        assert status == 101
        assert "sec-websocket-extensions" not in dict(headers), headers
    finally:
        c.close()
