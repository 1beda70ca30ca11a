"""Request bodies: http.request messages, more_body, streaming, chunked input."""
import ast

import pytest

from conftest import build_request


def echo(resp):
    assert resp.status == 200, resp
    return ast.literal_eval(resp.body.decode())


@pytest.mark.ref("uvicorn", "daphne")
def test_get_without_body_one_empty_message(start_server):
    s = start_server("scope_app:app")
    res = echo(s.request("GET", "/"))
    assert res["messages"] == [("http.request", 0, False)]
    assert res["body"] == b""


@pytest.mark.ref("uvicorn", "daphne")
def test_content_length_body(start_server):
    s = start_server("scope_app:app")
    body = bytes(range(256)) * 40
    res = echo(s.request("POST", "/", body=body))
    assert res["body"] == body
    assert all(t == "http.request" for t, _, _ in res["messages"])
    assert [m for _, _, m in res["messages"]][-1] is False
    assert all(m is True for _, _, m in res["messages"][:-1])
    assert sum(n for _, n, _ in res["messages"]) == len(body)


@pytest.mark.ref("uvicorn", "daphne")
def test_chunked_request_body_decoded(start_server):
    s = start_server("scope_app:app")
    c = s.connect()
    c.send(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n")
    res = echo(c.read_response())
    c.close()
    assert res["body"] == b"hello 0123456789"
    assert res["messages"][-1][2] is False


def _stream(s, headers, first, rest, framing):
    c = s.connect()
    c.send(headers + framing(first))
    version, status, reason, hdrs = c.read_head()
    assert status == 200
    line = c.read_chunk()
    # the app answered after its first receive(), before we sent the rest
    n, more = line.decode().strip().split(":")[1:]
    assert 0 < int(n) <= len(first) and more == "1", line
    c.send(framing(rest))
    tail = c.read_chunk()
    assert c.read_chunk() == b""
    c.close()
    return tail.decode()


@pytest.mark.ref("uvicorn")
def test_body_streamed_in_parts_content_length(start_server):
    s = start_server("stream_body_app:app")
    first, rest = b"a" * 100000, b"b" * 200000
    tail = _stream(s, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n",
                   first, rest, lambda b: b)
    total, msgs, types = [x.split(":")[1] for x in tail.split()]
    assert total == "300000" and int(msgs) >= 2 and types == "http.request"


@pytest.mark.ref("uvicorn")
def test_body_streamed_in_parts_chunked(start_server):
    s = start_server("stream_body_app:app")
    first, rest = b"a" * 50000, b"b" * 70000

    def chunk(b):
        out = b"%x\r\n%s\r\n" % (len(b), b)
        return out + (b"0\r\n\r\n" if b is rest else b"")
    tail = _stream(s, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
                   first, rest, chunk)
    total, msgs, types = [x.split(":")[1] for x in tail.split()]
    assert total == "120000" and int(msgs) >= 2 and types == "http.request"
