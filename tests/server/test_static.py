"""Static files served from C: --static-path-route / --static-path-mount
(granian's flags) and --django-static.

One server serves a temporary directory on /static in front of hello_app
(which answers "hello world!" to everything else): headers, HEAD, 304,
ranges, pre-compressed variants, 404s, traversal attempts, symlinks, a large
file to a slow client with bounded memory, keep-alive and pipelining."""
import email.utils
import gzip
import hashlib
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import (APPS, RssSampler, Server, build_request, free_port, rss_bytes, run_cli,
                      server_env)

MiB = 1024 * 1024
APP_JS = b"window.app = 1;\n" * 8
CSS = b"body { color: red; }\n" * 100
SECRET = b"top secret, outside the mount\n"
BIG = 20 * MiB


def _big_content():
    block = hashlib.sha256(b"dfws").digest() * 2048  # 64 KiB
    return b"".join(bytes([i % 251]) + block[1:] for i in range(BIG // len(block)))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("static")
    root = base / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "app.js").write_bytes(APP_JS)
    (root / "style.css").write_bytes(CSS)
    (root / "style.css.gz").write_bytes(gzip.compress(CSS))
    (root / "style.css.br").write_bytes(b"not really brotli, but only its bytes matter")
    (root / "sub" / "deeper" / "file.txt").write_bytes(b"deep\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "big.bin").write_bytes(_big_content())
    (root / "a b.txt").write_bytes(b"space\n")
    (base / "secret.txt").write_bytes(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "secret.txt").write_bytes(SECRET)
    os.symlink("app.js", root / "link_in.js")                       # relative, inside
    os.symlink(str(root / "style.css"), root / "link_abs_in.css")    # absolute, inside
    os.symlink("../secret.txt", root / "link_out.txt")               # relative, outside
    os.symlink(str(base / "secret.txt"), root / "link_abs_out.txt")  # absolute, outside
    os.symlink(str(base / "outside"), root / "dir_out")              # a directory outside
    os.symlink("/etc/passwd", root / "passwd")
    os.mkfifo(root / "fifo.js")
    return base


@pytest.fixture(scope="module")
def srv(tree, tmp_path_factory):
    s = Server("hello_app:app", ["--static-path-mount", str(tree / "root")],
               tmp_path_factory.mktemp("srv"), port=free_port())
    yield s
    s.stop()


def mtime_http(path):
    return email.utils.formatdate(os.stat(path).st_mtime, usegmt=True)


def get(srv, path, headers=(), method="GET"):
    return srv.request(method, path, headers)


# ------------------------------------------------------------------ basics

def test_get_headers(srv, tree):
    r = get(srv, "/static/app.js")
    assert r.status == 200
    assert r.body == APP_JS
    assert r.header("content-type") == "text/javascript; charset=utf-8"
    assert r.header("content-length") == str(len(APP_JS))
    assert r.header("last-modified") == mtime_http(tree / "root" / "app.js")
    assert r.header("etag").startswith('W/"')
    assert r.header("accept-ranges") == "bytes"
    assert r.header("cache-control") == "max-age=86400"  # granian's default
    assert r.header("vary") is None  # no pre-compressed sibling
    assert r.header("content-encoding") is None
    assert r.header("date") and r.header("server") == "dfws"
    # the query string is not part of the file name
    assert get(srv, "/static/app.js?v=123").body == APP_JS
    assert get(srv, "/static/a%20b.txt").body == b"space\n"
    assert get(srv, "/static/sub/deeper/file.txt").body == b"deep\n"
    assert get(srv, "/static//sub///deeper/file.txt").body == b"deep\n"
    r = get(srv, "/static/empty.txt")
    assert r.status == 200 and r.body == b"" and r.header("content-length") == "0"
    assert r.header("content-type") == "text/plain; charset=utf-8"


def test_head_then_keep_alive(srv):
    c = srv.connect()
    try:
        c.send(build_request("HEAD", "/static/style.css"))
        r = c.read_response(head=True)
        assert r.status == 200
        assert r.header("content-length") == str(len(CSS))
        assert r.header("content-type") == "text/css; charset=utf-8"
        # no body was sent: the next response follows at once on the connection
        c.send(build_request("GET", "/static/app.js"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == APP_JS
    finally:
        c.close()


def test_non_static_paths_reach_the_app(srv):
    for path in ("/", "/hello", "/staticfoo/app.js", "/statics", "/other/static/app.js"):
        r = get(srv, path)
        assert (r.status, r.body) == (200, b"hello world!"), path


def test_other_methods_405(srv):
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = srv.request(method, "/static/app.js", body=b"x" if method in ("POST", "PUT") else b"")
        assert r.status == 405, method
        assert r.header("allow") == "GET, HEAD"
        assert r.body != b"hello world!"


def test_access_log_line(srv):
    get(srv, "/static/app.js?logged=1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if '"GET /static/app.js?logged=1" 200 %d' % len(APP_JS) in srv.stdout():
            return
        time.sleep(0.05)
    pytest.fail("no access-log line\n" + srv.stdout()[-2000:])


# ----------------------------------------------------------- conditionals

def test_if_none_match_304(srv):
    r = get(srv, "/static/app.js")
    etag, lm = r.header("etag"), r.header("last-modified")
    for value in (etag, '"nope", ' + etag, etag[2:], "*"):
        r2 = get(srv, "/static/app.js", [("If-None-Match", value)])
        assert r2.status == 304, value
        assert r2.body == b""
        assert r2.header("etag") == etag and r2.header("last-modified") == lm
        assert r2.header("cache-control") == "max-age=86400"
    # If-None-Match decides alone when present (RFC 9110 13.2.2)
    r3 = get(srv, "/static/app.js", [("If-None-Match", '"other"'), ("If-Modified-Since", lm)])
    assert r3.status == 200 and r3.body == APP_JS


def test_if_modified_since_304(srv, tree):
    lm = mtime_http(tree / "root" / "app.js")
    assert get(srv, "/static/app.js", [("If-Modified-Since", lm)]).status == 304
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert get(srv, "/static/app.js", [("If-Modified-Since", later)]).status == 304
    earlier = email.utils.formatdate(os.stat(tree / "root" / "app.js").st_mtime - 10, usegmt=True)
    r = get(srv, "/static/app.js", [("If-Modified-Since", earlier)])
    assert r.status == 200 and r.body == APP_JS
    r = get(srv, "/static/app.js", [("If-Modified-Since", "yesterday")])
    assert r.status == 200


def test_304_on_head(srv):
    etag = get(srv, "/static/app.js").header("etag")
    c = srv.connect()
    try:
        c.send(build_request("HEAD", "/static/app.js", [("If-None-Match", etag)]))
        r = c.read_response(head=True)
        assert r.status == 304
        c.send(build_request("GET", "/static/app.js"))
        assert c.read_response().body == APP_JS
    finally:
        c.close()


# ------------------------------------------------------------------ ranges

def test_ranges(srv, tree):
    size = len(CSS)
    cases = [("bytes=0-4", 0, 4), ("bytes=10-", 10, size - 1), ("bytes=-7", size - 7, size - 1),
             ("bytes=5-999999", 5, size - 1), ("bytes=-999999", 0, size - 1)]
    for value, first, last in cases:
        r = get(srv, "/static/style.css", [("Range", value)])
        assert r.status == 206, value
        assert r.header("content-range") == "bytes %d-%d/%d" % (first, last, size), value
        assert r.header("content-length") == str(last - first + 1)
        assert r.body == CSS[first:last + 1], value


def test_range_unsatisfiable_416(srv):
    size = len(CSS)
    for value in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 10), "bytes=-0"):
        r = get(srv, "/static/style.css", [("Range", value)])
        assert r.status == 416, value
        assert r.header("content-range") == "bytes */%d" % size
    r = get(srv, "/static/empty.txt", [("Range", "bytes=0-")])
    assert r.status == 416 and r.header("content-range") == "bytes */0"


def test_range_ignored_cases_200(srv):
    for value in ("bytes=0-1,5-6", "bytes=9-3", "lines=1-2", "bytes=x-y"):
        r = get(srv, "/static/style.css", [("Range", value)])
        assert r.status == 200, value
        assert r.body == CSS


def test_if_range(srv):
    r = get(srv, "/static/style.css")
    lm, etag = r.header("last-modified"), r.header("etag")
    r = get(srv, "/static/style.css", [("Range", "bytes=0-3"), ("If-Range", lm)])
    assert r.status == 206 and r.body == CSS[:4]
    # a weak entity tag never matches If-Range: the whole file
    r = get(srv, "/static/style.css", [("Range", "bytes=0-3"), ("If-Range", etag)])
    assert r.status == 200 and r.body == CSS


def test_range_of_large_file(srv, tree):
    data = (tree / "root" / "big.bin").read_bytes()
    first, last = 5 * MiB + 3, 9 * MiB + 11  # beyond one read chunk: the async path
    r = get(srv, "/static/big.bin", [("Range", "bytes=%d-%d" % (first, last))])
    assert r.status == 206
    assert r.body == data[first:last + 1]


# --------------------------------------------------------- pre-compressed

def test_precompressed_variants(srv, tree):
    root = tree / "root"
    r = get(srv, "/static/style.css", [("Accept-Encoding", "gzip, deflate, br")])
    assert r.status == 200
    assert r.header("content-encoding") == "br"
    assert r.body == (root / "style.css.br").read_bytes()
    assert r.header("vary") == "Accept-Encoding"
    assert r.header("content-type") == "text/css; charset=utf-8"
    assert r.header("content-length") == str(len(r.body))

    r = get(srv, "/static/style.css", [("Accept-Encoding", "gzip")])
    assert r.header("content-encoding") == "gzip"
    assert gzip.decompress(r.body) == CSS
    assert r.header("vary") == "Accept-Encoding"
    gz_etag = r.header("etag")

    r = get(srv, "/static/style.css", [("Accept-Encoding", "br;q=0, gzip;q=0.8")])
    assert r.header("content-encoding") == "gzip"

    r = get(srv, "/static/style.css")
    assert r.header("content-encoding") is None and r.body == CSS
    assert r.header("vary") == "Accept-Encoding"  # a cache must keep the variants apart
    assert r.header("etag") != gz_etag

    # a conditional request on the compressed variant
    r = get(srv, "/static/style.css", [("Accept-Encoding", "gzip"), ("If-None-Match", gz_etag)])
    assert r.status == 304

    # ranges are served from the identity file
    r = get(srv, "/static/style.css", [("Accept-Encoding", "gzip, br"), ("Range", "bytes=0-9")])
    assert r.status == 206 and r.body == CSS[:10] and r.header("content-encoding") is None

    # the compressed files themselves stay reachable by name
    r = get(srv, "/static/style.css.gz")
    assert r.status == 200 and gzip.decompress(r.body) == CSS


# -------------------------------------------------------------- not found

def test_directories_and_missing_files_404(srv):
    for path in ("/static", "/static/", "/static/sub", "/static/sub/", "/static/sub/deeper/",
                 "/static/nope.js", "/static/sub/nope/x.js", "/static/app.js/x"):
        r = get(srv, path)
        assert r.status == 404, path
        assert r.body == b"Not Found\n"


def test_fifo_is_404_without_blocking(srv):
    t0 = time.monotonic()
    assert get(srv, "/static/fifo.js").status == 404
    assert time.monotonic() - t0 < 2


# -------------------------------------------------------------- traversal

TRAVERSALS = [
    "/static/../etc/passwd",
    "/static/../secret.txt",
    "/static/sub/../../secret.txt",
    "/static/./app.js",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/%2e%2e/etc/passwd",
    "/static/.%2e/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static/sub%2fdeeper%2ffile.txt",
    "/static%2f..%2fsecret.txt",
    "/static/app.js%00.png",
    "/static/%00",
    "/static/..\\secret.txt",
    "/static/%5c..%5csecret.txt",
    "/static/sub\\deeper\\file.txt",
    "/static/%zz",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_attempts_400(srv, target):
    r = get(srv, target)
    assert r.status == 400, (target, r)
    assert SECRET not in r.body and b"root:" not in r.body
    # the server goes on serving
    assert get(srv, "/static/app.js").body == APP_JS


def test_double_encoding_is_a_name(srv):
    # decoded once: "%2e%2e" is a (missing) file name, not a dot segment
    assert get(srv, "/static/%252e%252e/secret.txt").status == 404


def test_symlinks(srv):
    assert get(srv, "/static/link_in.js").body == APP_JS
    assert get(srv, "/static/link_abs_in.css").body == CSS
    for path in ("/static/link_out.txt", "/static/link_abs_out.txt", "/static/dir_out/secret.txt",
                 "/static/passwd"):
        r = get(srv, path)
        assert r.status == 404, path
        assert SECRET not in r.body and b"root:" not in r.body


# ------------------------------------------------- large file, connection

def test_large_file_slow_client_bounded_memory(srv, tree):
    data = (tree / "root" / "big.bin").read_bytes()
    before = rss_bytes(srv.pid)
    c = srv.connect(timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        with RssSampler(srv.pid) as rss:
            c.send(build_request("GET", "/static/big.bin"))
            version, status, reason, headers = c.read_head()
            assert status == 200
            assert ("content-length", str(BIG)) in headers
            time.sleep(1.5)  # a slow client: the server must hold the file back
            got = [c.buf]
            n = len(c.buf)
            c.buf = b""
            while n < BIG:
                chunk = c.sock.recv(4 * MiB)
                assert chunk, "EOF after %d bytes" % n
                got.append(chunk)
                n += len(chunk)
        body = b"".join(got)
        assert len(body) == BIG
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
        # keep-alive after a large static response
        c.send(build_request("GET", "/static/app.js"))
        assert c.read_response().body == APP_JS
    finally:
        c.close()
    growth = rss.peak - before
    print("RSS growth %.1f MiB" % (growth / MiB))
    assert growth < 8 * MiB, "server RSS grew by %.1f MiB for a 20 MiB file" % (growth / MiB)


def test_client_leaves_mid_file(srv):
    for _ in range(5):
        c = srv.connect()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(build_request("GET", "/static/big.bin"))
        c.read_head()
        c.close()
    assert get(srv, "/static/app.js").body == APP_JS
    assert get(srv, "/").body == b"hello world!"


def test_keep_alive_and_pipelining(srv, tree):
    big = (tree / "root" / "big.bin").read_bytes()
    c = srv.connect(timeout=30)
    try:
        c.send(build_request("GET", "/static/app.js"))
        assert c.read_response().body == APP_JS
        c.send(build_request("GET", "/"))
        assert c.read_response().body == b"hello world!"
        # pipelined: small static, app, large static (read in chunks), 404, static
        c.send(build_request("GET", "/static/app.js") + build_request("GET", "/x")
               + build_request("GET", "/static/big.bin") + build_request("GET", "/static/nope")
               + build_request("HEAD", "/static/style.css")
               + build_request("GET", "/static/style.css"))
        assert c.read_response().body == APP_JS
        assert c.read_response().body == b"hello world!"
        r = c.read_response()
        assert r.status == 200 and r.body == big
        assert c.read_response().status == 404
        r = c.read_response(head=True)
        assert r.status == 200 and r.header("content-length") == str(len(CSS))
        assert c.read_response().body == CSS
    finally:
        c.close()


def test_http10_closes(srv):
    c = srv.connect()
    try:
        c.send(build_request("GET", "/static/app.js", version="1.0"))
        r = c.read_response()
        assert r.status == 200 and r.body == APP_JS
        assert c.is_closed_by_peer()
    finally:
        c.close()


def test_get_with_body_closes_after_answer(srv):
    c = srv.connect()
    try:
        c.send(build_request("GET", "/static/app.js", body=b"unexpected"))
        r = c.read_response()
        assert r.status == 200 and r.body == APP_JS
        assert r.header("connection") == "close"
    finally:
        c.close()


# ---------------------------------------------------------- command line

def test_several_routes_and_expires(tree, start_server):
    root = tree / "root"
    s = start_server("hello_app:app", "--static-path-route", "/assets/",
                     "--static-path-mount", str(root), "--static-path-route", "/deep",
                     "--static-path-mount", str(root / "sub"), "--static-path-expires", "7d")
    r = s.request("GET", "/assets/app.js")
    assert r.body == APP_JS and r.header("cache-control") == "max-age=604800"
    assert s.request("GET", "/deep/deeper/file.txt").body == b"deep\n"
    # /deep is mounted on sub/: its parent is out of reach
    assert s.request("GET", "/deep/../app.js").status == 400
    assert s.request("GET", "/static/app.js").body == b"hello world!"


def test_expires_zero_no_cache_control(tree, start_server):
    s = start_server("hello_app:app", "--static-path-mount", str(tree / "root"),
                     "--static-path-expires", "0")
    r = s.request("GET", "/static/app.js")
    assert r.status == 200 and r.header("cache-control") is None


@pytest.mark.parametrize("args, message", [
    (["--static-path-mount", "/nonexistent/dir"], "not a directory: /nonexistent/dir"),
    (["--static-path-route", "/static"], "needs a --static-path-mount"),
    (["--static-path-mount", "/tmp", "--static-path-mount", "/tmp"], "one --static-path-route"),
    (["--static-path-route", "/", "--static-path-mount", "/tmp"], "not / alone"),
    (["--static-path-route", "static", "--static-path-mount", "/tmp"], "a path such as"),
    (["--static-path-mount", "/tmp", "--static-path-expires", "soon"], "--static-path-expires"),
])
def test_cli_errors(args, message):
    r = run_cli(args, app="hello_app:app")
    assert r.returncode == 2, r
    assert message in r.stderr, r.stderr


def test_help_lists_the_flags():
    r = run_cli(["--help"])
    assert r.returncode == 0
    for flag in ("--static-path-route", "--static-path-mount", "--static-path-expires",
                 "--django-static"):
        assert flag in r.stdout


# --------------------------------------------------------- --django-static

def _collectstatic(root):
    env = server_env(None)
    env.update(DJANGO_SETTINGS_MODULE="staticproj.settings", STATICPROJ_ROOT=str(root))
    subprocess.run([sys.executable, "-m", "django", "collectstatic", "--noinput", "-v0"],
                   cwd=APPS, env=env, check=True, timeout=60)


def test_django_static_serves_df_websockets_js(tmp_path, start_server):
    root = tmp_path / "collected"
    _collectstatic(root)
    import df_websockets

    js = os.path.join(os.path.dirname(df_websockets.__file__), "static", "js",
                      "df_websockets.min.js")
    s = start_server("staticproj.asgi:application", "--django-static",
                     extra_env={"DJANGO_SETTINGS_MODULE": "staticproj.settings",
                                "STATICPROJ_ROOT": str(root)})
    r = s.request("GET", "/static/js/df_websockets.min.js", [("Host", "localhost")])
    assert r.status == 200, r
    with open(js, "rb") as f:
        assert r.body == f.read()
    assert r.header("content-type") == "text/javascript; charset=utf-8"
    assert s.request("GET", "/", [("Host", "localhost")]).body == b"the page"
    assert s.request("GET", "/static/nope.js").status == 404


@pytest.mark.parametrize("root, message", [
    (None, "STATIC_ROOT is not set"),
    ("/nonexistent/collected", "run `python manage.py collectstatic`"),
])
def test_django_static_refused_without_collected_files(root, message, tmp_path):
    env = server_env(str(tmp_path))
    env["DJANGO_SETTINGS_MODULE"] = "staticproj.settings"
    env.pop("STATICPROJ_ROOT", None)
    if root:
        env["STATICPROJ_ROOT"] = root
    r = run_cli(["-p", str(free_port()), "--django-static"], app="staticproj.asgi:application",
                env=env, timeout=30)
    assert r.returncode == 1, r
    assert message in r.stderr, r.stderr
    assert "collectstatic" in r.stderr


def test_django_static_needs_django(tmp_path):
    r = run_cli(["-p", str(free_port()), "--django-static"], app="hello_app:app", timeout=30)
    assert r.returncode == 1, r
    assert "--django-static" in r.stderr and "Django" in r.stderr
