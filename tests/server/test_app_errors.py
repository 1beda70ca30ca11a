"""App failures, http.disconnect, --application-close-timeout, --http-timeout."""
import time

import pytest

from conftest import IMPL, IncompleteResponse, build_request


def assert_still_serving(s):
    r = s.request("GET", "/ok")
    assert (r.status, r.body) == (200, b"ok")


@pytest.mark.ref("uvicorn", "daphne")
def test_exception_before_start_gives_500(start_server):
    s = start_server("errors_app:app")
    r = s.request("GET", "/before")
    assert r.status == 500
    assert_still_serving(s)
    s.stop()
    assert "boom-before-start" in s.stderr()


@pytest.mark.ref("uvicorn")  # daphne leaves the connection open
def test_exception_after_start_with_length_closes_connection(start_server):
    s = start_server("errors_app:app")
    c = s.connect()
    c.send(build_request("GET", "/after-length"))
    with pytest.raises(IncompleteResponse) as info:
        c.read_response()
    c.close()
    # status and 10 of the announced 100 bytes, then the connection closed
    assert info.value.partial.startswith(b"HTTP/1.1 200")
    assert info.value.partial.endswith(b"\r\n\r\n0123456789")
    assert_still_serving(s)
    s.stop()
    assert "boom-after-start" in s.stderr()


@pytest.mark.ref("uvicorn")
def test_exception_after_start_chunked_has_no_terminator(start_server):
    s = start_server("errors_app:app")
    c = s.connect()
    c.send(build_request("GET", "/after-chunked"))
    with pytest.raises(IncompleteResponse) as info:
        c.read_response()
    c.close()
    assert info.value.partial.startswith(b"HTTP/1.1 200")
    assert b"0123456789" in info.value.partial
    assert not info.value.partial.endswith(b"0\r\n\r\n")
    assert_still_serving(s)


@pytest.mark.ref("uvicorn")  # daphne never answers
def test_app_returns_without_response_gives_500(start_server):
    s = start_server("errors_app:app")
    r = s.request("GET", "/noresponse")
    assert r.status == 500
    assert_still_serving(s)


@pytest.mark.ref("uvicorn", "daphne")
def test_disconnect_delivered_when_client_closes(start_server):
    s = start_server("disconnect_app:app")
    c = s.connect()
    c.send(build_request("POST", "/wait", body=b"abc"))
    assert s.wait_out("wait", 5) == "waiting\n"
    c.close()
    assert s.wait_out("wait", 5, contains="http.disconnect") == "waiting\nhttp.disconnect\n"


@pytest.mark.ref("uvicorn")
def test_disconnect_on_receive_after_response(start_server):
    s = start_server("disconnect_app:app")
    c = s.connect()
    c.send(build_request("GET", "/after"))
    r = c.read_response()
    assert r.body == b"done"
    # the app's receive() after its response completes with http.disconnect
    # even though the keep-alive connection is still open
    assert s.wait_out("after", 5) == "http.disconnect\n"
    c.close()


@pytest.mark.ref("daphne")
def test_application_close_timeout_cancels_app(start_server):
    s = start_server("slow_app:app", "--application-close-timeout", "1")
    c = s.connect()
    c.send(build_request("GET", "/ignore"))
    assert s.wait_out("ignore", 5) is not None
    t0 = time.time()
    c.close()
    text = s.wait_out("ignore", 8, contains="CancelledError")
    assert text is not None and "CancelledError" in text, text
    cancelled_at = float(text.split("CancelledError")[1].split()[0])
    # cancelled about 1 s after the disconnect, not at once and not at 60 s
    assert 0.7 <= cancelled_at - t0 <= 4.0, cancelled_at - t0
    assert "not cancelled" not in text


@pytest.mark.ref("daphne")
def test_http_timeout_gives_503(start_server):
    s = start_server("slow_app:app", "-t", "1")
    t0 = time.monotonic()
    r = s.request("GET", "/sleep?s=5")
    took = time.monotonic() - t0
    assert r.status == 503
    assert 0.8 <= took <= 3.5, took
    # a fast request under the same timeout is fine
    r = s.request("GET", "/sleep?s=0.1")
    assert (r.status, r.body) == (200, b"slept")
