"""Backpressure: a 1 GiB upload and a 512 MiB download with a slow peer keep
the server's memory bounded (RSS of the whole process tree < 200 MiB)."""
import threading
import time
import zlib

import pytest

from conftest import RssSampler, build_request

MiB = 1024 * 1024
LIMIT = 200 * MiB


@pytest.mark.ref("uvicorn")
def test_upload_1gib_slow_app_bounded_memory(start_server):
    s = start_server("big_app:app")
    size = 1024 * MiB
    block = bytes(range(256)) * 4096  # 1 MiB
    c = s.connect(timeout=60)
    result = {}

    def sender():
        crc = 0
        c.send(b"POST /upload?stall=2&pause_every=%d&pause=0.5 HTTP/1.1\r\n"
               b"Host: t\r\nContent-Length: %d\r\n\r\n" % (256 * MiB, size))
        for i in range(size // len(block)):
            # vary the content a little so a lost or repeated block shows
            data = block if i % 7 else bytes([i % 251]) + block[1:]
            c.send(data)
            crc = zlib.crc32(data, crc)
        result["crc"] = crc
        result["sent_at"] = time.monotonic()

    t0 = time.monotonic()
    with RssSampler(s.pid) as rss:
        th = threading.Thread(target=sender)
        th.start()
        # while the app stalls, the sender must be blocked (server stopped reading)
        time.sleep(1.5)
        assert th.is_alive(), "1 GiB accepted while the app did not read"
        th.join(60)
        assert not th.is_alive(), "upload did not finish in 60 s"
        r = c.read_response()
    elapsed = time.monotonic() - t0
    c.close()
    total, crc, msgs = (int(x) for x in r.body.split())
    assert total == size
    assert crc == result["crc"]
    assert msgs > 1
    print("peak RSS %.1f MiB" % (rss.peak / MiB))
    assert rss.peak < LIMIT, "server RSS peaked at %.1f MiB" % (rss.peak / MiB)
    assert elapsed < 60, elapsed


@pytest.mark.ref("uvicorn")
def test_download_512mib_slow_client_bounded_memory(start_server):
    s = start_server("big_app:app")
    size = 512 * MiB
    c = s.connect(timeout=60)
    c.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 65536)
    with RssSampler(s.pid) as rss:
        c.send(build_request("GET", "/download?size=%d" % size))
        version, status, reason, headers = c.read_head()
        assert status == 200
        assert ("content-length", str(size)) in headers
        time.sleep(2)  # a slow client: the app must be held back meanwhile
        got = len(c.buf)
        c.buf = b""
        while got < size:
            data = c.sock.recv(4 * MiB)
            assert data, "EOF after %d bytes" % got
            got += len(data)
    c.close()
    assert got == size
    print("peak RSS %.1f MiB" % (rss.peak / MiB))
    assert rss.peak < LIMIT, "server RSS peaked at %.1f MiB" % (rss.peak / MiB)
