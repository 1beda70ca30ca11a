"""Responses: chunked streaming, Content-Length, keep-alive, pipelining,
HTTP/1.0, Expect: 100-continue, HEAD, Date/Server headers."""
import email.utils
import os
import socket
import time

import pytest

from conftest import IMPL, build_request


@pytest.mark.ref("uvicorn", "daphne")
def test_streaming_response_is_chunked_and_streamed(start_server):
    s = start_server("stream_resp_app:app")
    c = s.connect()
    c.send(build_request("GET", "/gate"))
    version, status, reason, headers = c.read_head()
    assert (version, status) == ("1.1", 200)
    names = [k for k, v in headers]
    assert ("transfer-encoding", "chunked") in headers
    assert "content-length" not in names
    # the first part arrives while the app still waits for the gate file
    assert c.read_chunk() == b"one"
    open(s.out_file("gate"), "w").close()
    rest = []
    while True:
        part = c.read_chunk()
        if part == b"":
            break
        rest.append(part)
    assert b"".join(rest) == b"twothree"
    # nothing after the terminating chunk
    c.sock.settimeout(0.3)
    try:
        extra = c.sock.recv(100)
    except socket.timeout:
        extra = b""
    assert c.buf + extra == b""
    c.close()


@pytest.mark.ref("uvicorn", "daphne")
def test_empty_body_part_does_not_end_chunked_stream(start_server):
    s = start_server("stream_resp_app:app")
    c = s.connect()
    c.send(build_request("GET", "/empty-middle"))
    r = c.read_response()
    assert r.body == b"ab"
    assert r.raw.count(b"\r\n0\r\n\r\n") == 1 and r.raw.endswith(b"\r\n0\r\n\r\n")
    # connection still usable: the stream ended exactly there
    c.send(build_request("GET", "/empty-middle"))
    assert c.read_response().body == b"ab"
    c.close()


def test_content_length_added_for_single_body(start_server):
    s = start_server("stream_resp_app:app")
    r = s.request("GET", "/whole")
    assert r.status == 200
    assert r.header("content-length") == "16"
    assert r.header("transfer-encoding") is None
    assert r.body == b"hello whole body"


@pytest.mark.ref("uvicorn", "daphne")
def test_app_content_length_kept_with_streamed_body(start_server):
    s = start_server("stream_resp_app:app")
    r = s.request("GET", "/length")
    assert r.header_all("content-length") == ["5"]
    assert r.header("transfer-encoding") is None
    assert r.body == b"hello"


@pytest.mark.ref("uvicorn")
def test_status_and_repeated_app_headers(start_server):
    s = start_server("stream_resp_app:app")
    r = s.request("GET", "/status?code=418")
    assert r.status == 418
    assert r.header_all("x-custom") == ["Value-1", "v2"]
    assert r.body == b"status body"


@pytest.mark.ref("uvicorn", "daphne")
def test_204_has_no_body(start_server):
    s = start_server("stream_resp_app:app")
    c = s.connect()
    c.send(build_request("GET", "/nocontent") + build_request("GET", "/whole"))
    r = c.read_response()
    assert r.status == 204
    assert r.header("transfer-encoding") is None
    r2 = c.read_response()
    assert r2.body == b"hello whole body"
    c.close()


@pytest.mark.ref("uvicorn", "daphne")
def test_keep_alive_two_requests_one_socket(start_server):
    s = start_server("scope_app:app")
    c = s.connect()
    import ast
    c.send(build_request("GET", "/one"))
    r1 = c.read_response()
    c.send(build_request("POST", "/two", body=b"xyz"))
    r2 = c.read_response()
    c.close()
    s1, s2 = ast.literal_eval(r1.body.decode()), ast.literal_eval(r2.body.decode())
    assert s1["scope"]["path"] == "/one" and s2["scope"]["path"] == "/two"
    assert s2["body"] == b"xyz"
    assert s1["scope"]["client"] == s2["scope"]["client"]


@pytest.mark.ref("uvicorn", "daphne")
def test_pipelining_three_requests_in_one_send(start_server):
    s = start_server("scope_app:app")
    c = s.connect()
    c.send(build_request("GET", "/p1") + build_request("POST", "/p2", body=b"body2")
           + build_request("GET", "/p3"))
    import ast
    got = [ast.literal_eval(c.read_response().body.decode()) for _ in range(3)]
    c.close()
    assert [g["scope"]["path"] for g in got] == ["/p1", "/p2", "/p3"]
    assert got[1]["body"] == b"body2"


@pytest.mark.ref("uvicorn", "daphne")
def test_connection_close_from_client(start_server):
    s = start_server("hello_app:app")
    c = s.connect()
    c.send(build_request("GET", "/", [("Connection", "close")]))
    r = c.read_response()
    assert r.body == b"hello world!"
    assert c.is_closed_by_peer(3)
    c.close()


@pytest.mark.ref("uvicorn", "daphne")
def test_http10_closes_without_keep_alive(start_server):
    s = start_server("hello_app:app")
    c = s.connect()
    c.send(build_request("GET", "/", version="1.0"))
    r = c.read_response()
    assert r.version in ("1.0", "1.1")
    assert r.body == b"hello world!"
    assert c.is_closed_by_peer(3)
    c.close()


def test_http10_keep_alive_requested(start_server):
    s = start_server("hello_app:app")
    c = s.connect()
    c.send(build_request("GET", "/", [("Connection", "keep-alive")], version="1.0"))
    r = c.read_response()
    assert r.body == b"hello world!"
    c.send(build_request("GET", "/", [("Connection", "keep-alive")], version="1.0"))
    assert c.read_response().body == b"hello world!"
    c.close()


def test_http10_streaming_response_not_chunked(start_server):
    s = start_server("stream_resp_app:app")
    c = s.connect()
    c.send(build_request("GET", "/empty-middle", version="1.0"))
    version, status, reason, headers = c.read_head()
    assert status == 200
    assert "transfer-encoding" not in [k for k, v in headers]
    assert c.read_until_close(5) == b"ab"
    c.close()


@pytest.mark.ref("uvicorn")
def test_expect_100_continue_when_app_reads(start_server):
    s = start_server("scope_app:app")
    c = s.connect()
    c.send(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    interim = c.read_response(allow_100=True)
    assert interim.status == 100
    assert interim.raw.startswith(b"HTTP/1.1 100 Continue\r\n")
    c.send(b"12345")
    import ast
    r = c.read_response()
    assert ast.literal_eval(r.body.decode())["body"] == b"12345"
    c.close()


@pytest.mark.ref("uvicorn")
def test_expect_100_not_sent_when_app_does_not_read(start_server):
    s = start_server("hello_app:app")
    c = s.connect()
    c.send(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response()  # fails on an interim 100
    assert (r.status, r.body) == (200, b"hello world!")
    c.close()


@pytest.mark.ref("uvicorn", "daphne")
def test_head_has_headers_but_no_body(start_server):
    s = start_server("stream_resp_app:app")
    c = s.connect()
    c.send(build_request("HEAD", "/head"))
    r = c.read_response(head=True)
    assert r.status == 200
    assert r.header("content-length") == "5"
    # no body bytes: the next response on the connection starts right away
    c.send(build_request("GET", "/head"))
    r2 = c.read_response()
    assert r2.raw.startswith(b"HTTP/1.1 200")
    assert r2.body == b"hello"
    c.close()


@pytest.mark.ref("uvicorn")  # daphne sends no Date
def test_date_header(start_server):
    s = start_server("hello_app:app")
    r = s.request("GET", "/")
    date = r.header("date")
    assert date is not None
    assert date.endswith(" GMT")
    parsed = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(parsed - time.time()) < 5
    assert email.utils.format_datetime(email.utils.parsedate_to_datetime(date), usegmt=True) == date


def test_server_header_default(start_server):
    s = start_server("hello_app:app")
    r = s.request("GET", "/")
    assert r.header_all("server") == ["dfws"]


@pytest.mark.ref("daphne")
def test_server_header_from_flag(start_server):
    s = start_server("hello_app:app", "-s", "custom-name/2")
    r = s.request("GET", "/")
    assert r.header_all("server") == ["custom-name/2"]
    s2 = start_server("hello_app:app", "--server-name", "other")
    assert s2.request("GET", "/").header_all("server") == ["other"]


@pytest.mark.ref("uvicorn")
def test_no_server_name(start_server):
    s = start_server("hello_app:app", "--no-server-name")
    r = s.request("GET", "/")
    assert r.header_all("server") == []
    assert r.header("date") is not None


@pytest.mark.ref("daphne")  # daphne keeps the app's Server header; uvicorn sends both
def test_app_server_header_replaces_default(start_server):
    s = start_server("stream_resp_app:app")
    r = s.request("GET", "/server")
    assert r.header_all("server") == ["my-app-server"]


@pytest.mark.ref("uvicorn")
def test_headers_on_error_responses_too(start_server):
    s = start_server("errors_app:app")
    r = s.request("GET", "/before")
    assert r.status == 500
    assert r.header("date") is not None
    if IMPL == "dfws":
        assert r.header_all("server") == ["dfws"]
