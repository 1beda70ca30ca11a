"""A real Django 3.2 project served by the server: sync and async views,
CSRF-protected form POST, 5 MB file upload, StreamingHttpResponse."""
import hashlib
import json
import os
import re

import pytest

from conftest import Server, build_request, free_port


@pytest.fixture(scope="module")
def dj(tmp_path_factory):
    s = Server("djproj.asgi:application", [], tmp_path_factory.mktemp("dj"),
               port=free_port(), extra_env={"DJANGO_SETTINGS_MODULE": "djproj.settings"})
    yield s
    s.stop()


@pytest.mark.ref("uvicorn", "daphne")
def test_sync_view(dj):
    r = dj.request("GET", "/sync/?a=1&b=%C3%A9", [("X-Test", "yes")])
    assert r.status == 200
    assert r.header("content-type") == "application/json"
    d = r.json()
    assert d["view"] == "sync" and d["method"] == "GET" and d["path"] == "/sync/"
    assert d["query"] == {"a": "1", "b": "é"}
    assert d["scheme"] == "http" and d["host"] == "testserver"
    assert d["remote_addr"] == "127.0.0.1"
    assert d["header"] == "yes"
    assert d["is_main_thread"] is False  # sync views run in a worker thread


@pytest.mark.ref("uvicorn", "daphne")
def test_async_view(dj):
    r = dj.request("GET", "/async/")
    assert r.status == 200
    assert r.json() == {"view": "async", "task": True, "path": "/async/"}


@pytest.mark.ref("uvicorn", "daphne")
def test_not_found(dj):
    assert dj.request("GET", "/nope/").status == 404


def _csrf(dj, path):
    r = dj.request("GET", path)
    assert r.status == 200
    cookies = r.header_all("set-cookie")
    m = [re.match(r"csrftoken=([^;]+)", c) for c in cookies]
    cookie = [x.group(1) for x in m if x][0]
    return r, cookie


@pytest.mark.ref("uvicorn", "daphne")
def test_post_form_with_csrf(dj):
    r, cookie = _csrf(dj, "/form/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', r.body).group(1).decode()
    body = ("csrfmiddlewaretoken=%s&name=Ren%%C3%%A9" % token).encode()
    hdrs = [("Cookie", "csrftoken=" + cookie),
            ("Content-Type", "application/x-www-form-urlencoded")]
    r = dj.request("POST", "/form/", hdrs, body)
    assert (r.status, r.body.decode()) == (200, "posted name=René")
    # without the token: CSRF failure
    r = dj.request("POST", "/form/", hdrs, b"name=x")
    assert r.status == 403


@pytest.mark.ref("uvicorn", "daphne")
def test_file_upload_5mb(dj):
    _, cookie = _csrf(dj, "/upload/")
    data = os.urandom(5 * 1024 * 1024)
    boundary = "----dfwsboundary7MA4YWxkTrZu0gW"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n%s\r\n"
             "--%s\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n"
             "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n")
            % (boundary, cookie, boundary, boundary)).encode()
    body += data + ("\r\n--%s--\r\n" % boundary).encode()
    hdrs = [("Cookie", "csrftoken=" + cookie),
            ("Content-Type", "multipart/form-data; boundary=" + boundary)]
    r = dj.request("POST", "/upload/", hdrs, body, timeout=30)
    assert r.status == 200, r
    assert r.json() == {"name": "big.bin", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "field": "hi"}


@pytest.mark.ref("uvicorn", "daphne")
def test_streaming_http_response(dj):
    c = dj.connect()
    c.send(build_request("GET", "/stream/"))
    r = c.read_response()
    assert r.status == 200
    assert r.header("transfer-encoding") == "chunked"
    assert r.header("content-length") is None
    assert r.body == b"".join(b"part-%d\n" % i for i in range(5))
    assert r.raw.endswith(b"0\r\n\r\n")
    # keep-alive still works after a streamed response
    c.send(build_request("GET", "/async/"))
    assert c.read_response().status == 200
    c.close()
