"""ASGI WebSocket events: receive/send text and bytes, close with code and
reason, the client's close code reaching the app as websocket.disconnect."""
import asyncio
import os

import pytest
import websockets

from conftest import OP_BIN, OP_TEXT, run, ws_connect


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory("ws_app:app")


@pytest.mark.ref("uvicorn", "daphne")
def test_connect_event_first_then_receive(srv):
    async def go():
        async with ws_connect(srv.url("/echo?tag=order")) as ws:
            await ws.send("one")
            assert await ws.recv() == "one"
    run(go())
    evs = srv.events("order")
    assert evs[0] == {"type": "websocket.connect"}
    assert evs[1]["type"] == "websocket.receive"
    assert evs[1]["text"] == "one"
    assert evs[1].get("bytes") is None


@pytest.mark.ref("uvicorn")
def test_text_and_bytes_roundtrip(srv):
    texts = ["hello", "", "caf\u00e9 \u2603 \U0001F600", "x" * 70000]
    blobs = [bytes(range(256)), b"", b"\x00" * 126, os.urandom(200000)]

    async def go():
        async with ws_connect(srv.url("/echo?tag=rt")) as ws:
            for t in texts:
                await ws.send(t)
                got = await ws.recv()
                assert isinstance(got, str) and got == t
            for data in blobs:
                await ws.send(data)
                got = await ws.recv()
                assert isinstance(got, bytes) and got == data
    run(go())
    evs = [e for e in srv.events("rt") if e["type"] == "websocket.receive"]
    assert len(evs) == len(texts) + len(blobs)
    for e, t in zip(evs, texts):
        assert e["text"] == t and e.get("bytes") is None
    for e, data in zip(evs[len(texts):], blobs):
        assert e["bytes"] == {"__bytes__": data.decode("latin-1")}
        assert e.get("text") is None


@pytest.mark.ref("uvicorn", "daphne")
def test_many_messages_in_order(srv):
    async def go():
        async with ws_connect(srv.url("/echo?tag=many")) as ws:
            for i in range(300):
                await ws.send("m%d" % i)
            for i in range(300):
                assert await ws.recv() == "m%d" % i
    run(go())


def test_raw_frame_types_preserved(srv):
    ws = srv.ws_raw("/echo?tag=rawtypes")
    try:
        ws.send_frame(OP_TEXT, "t\u00ebxt".encode())
        assert ws.recv_message() == (OP_TEXT, "t\u00ebxt".encode())
        ws.send_frame(OP_BIN, b"\xff\x00bin")
        assert ws.recv_message() == (OP_BIN, b"\xff\x00bin")
        ws.send_close(1000)
        f = ws.expect_close(1000)
        assert f.close_reason == ""
    finally:
        ws.close()


@pytest.mark.ref("uvicorn")
@pytest.mark.parametrize("code,reason", [(1000, ""), (4001, "bye now"),
                                         (3000, "caf\u00e9 \u2603")])
def test_app_close_code_and_reason(srv, code, reason):
    from urllib.parse import quote
    url = srv.url("/close?code=%d&reason=%s&tag=close%d" % (code, quote(reason), code))

    async def go():
        async with ws_connect(url) as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                await ws.recv()
            assert ei.value.rcvd is not None
            assert ei.value.rcvd.code == code
            assert ei.value.rcvd.reason == reason
            assert ws.close_code == code
    run(go())


@pytest.mark.parametrize("code", [66536, 2 ** 32 + 1000])
def test_app_close_code_out_of_range_refused(srv, code):
    # issue #10 item 7: the code was truncated (66536 went out as 1000); now
    # send() raises, and the app's exception closes with 1011
    async def go():
        async with ws_connect(srv.url("/close?code=%d&tag=range" % code)) as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1011
    run(go())


def test_app_close_seen_on_raw_socket(srv):
    ws = srv.ws_raw("/close?code=4321&reason=raw%20reason&tag=rawclose")
    try:
        f = ws.expect_close(4321, then_eof=False)
        assert f.close_reason == "raw reason"
        ws.send_close(4321)
        assert ws.conn.wait_closed(5) == b""
    finally:
        ws.close()
    ev = srv.wait_event("rawclose", "websocket.disconnect")
    assert ev["code"] == 4321


@pytest.mark.ref("uvicorn")
@pytest.mark.parametrize("code", [1000, 1001, 4123])
def test_client_close_code_reaches_app(srv, code):
    tag = "cc%d" % code

    async def go():
        async with ws_connect(srv.url("/echo?tag=" + tag)) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            await ws.close(code, "client leaves")
            assert ws.close_code == code
    run(go())
    ev = srv.wait_event(tag, "websocket.disconnect")
    assert ev["code"] == code


@pytest.mark.ref("uvicorn", "daphne")
def test_abrupt_client_disconnect_reaches_app(srv):
    ws = srv.ws_raw("/echo?tag=abrupt")
    ws.send_text("x")
    assert ws.recv_message() == (OP_TEXT, b"x")
    ws.close()  # TCP close, no close frame
    ev = srv.wait_event("abrupt", "websocket.disconnect")
    assert ev["code"] == 1006


@pytest.mark.ref("uvicorn")
def test_empty_client_close_is_1005(srv):
    ws = srv.ws_raw("/echo?tag=empty")
    try:
        ws.send_frame(8, b"")
        # the server answers with a close frame (empty or 1000) and closes
        fr = ws.recv_frame(timeout=5)
        assert fr.opcode == 8
        assert fr.payload == b"" or fr.close_code == 1000
        ws.conn.wait_closed(5)
    finally:
        ws.close()
    ev = srv.wait_event("empty", "websocket.disconnect")
    assert ev["code"] == 1005


@pytest.mark.ref("uvicorn")
def test_app_returning_closes_1000(srv):
    async def go():
        async with ws_connect(srv.url("/return")) as ws:
            assert await ws.recv() == "bye"
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1000
    run(go())


def test_app_exception_after_accept_closes_1011(srv):
    # RFC 6455 7.4.1: 1011 = the server hit an unexpected condition
    # (uvicorn 0.17.6 just drops TCP: 1006, so no reference run)
    async def go():
        async with ws_connect(srv.url("/raise")) as ws:
            assert await ws.recv() == "boom"
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1011
    run(go())
    async def again():
        async with ws_connect(srv.url("/echo")) as ws:
            await ws.send("fine")
            assert await ws.recv() == "fine"
    run(again())


@pytest.mark.ref("uvicorn", "daphne")
def test_concurrent_connections_independent(srv):
    async def one(i):
        async with ws_connect(srv.url("/echo?tag=conc")) as ws:
            for j in range(20):
                await ws.send("%d-%d" % (i, j))
                assert await ws.recv() == "%d-%d" % (i, j)
                await asyncio.sleep(0)

    async def go():
        await asyncio.gather(*(one(i) for i in range(30)))
    run(go())


def test_long_close_reason_truncated_on_char_boundary(srv):
    # a close frame's payload is at most 125 bytes: 2 for the code, 123 for
    # the reason; "\u00e9" is 2 bytes in UTF-8, so 61 of them fit
    from urllib.parse import quote
    ws = srv.ws_raw("/close?code=4000&reason=%s&tag=longreason" % quote("\u00e9" * 100))
    try:
        f = ws.expect_close(4000, then_eof=False)
        assert len(f.payload) <= 125
        assert f.close_reason == "\u00e9" * 61
        ws.send_close(4000)
        ws.conn.wait_closed(5)
    finally:
        ws.close()
