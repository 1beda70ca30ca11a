"""--metrics-bind: Prometheus metrics of every worker, served by the
supervisor, read here with prometheus_client's own text-format parser."""
import signal
import socket
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import build_request, free_port, run_cli


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def wait_for(cond, timeout=5):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_metrics_count_what_was_sent(start_server):
    mport = free_port()
    s = start_server("slow_app:app", "--workers", "2", "--metrics-bind", "127.0.0.1:%d" % mport)
    time.sleep(0.3)  # the readiness probe's request is counted once its worker moves on
    before = scrape(mport)
    assert value(before, "dfws_workers") == 2

    # under load: 4 threads, 50 requests each, keep-alive
    def load(n):
        c = s.connect()
        for _ in range(n):
            c.send(build_request("GET", "/pid"))
            assert c.read_response().status == 200
        c.close()

    threads = [threading.Thread(target=load, args=(50,)) for _ in range(4)]
    for t in threads:
        t.start()
    mid = scrape(mport)  # a scrape during the load answers
    for t in threads:
        t.join()
    assert value(mid, "dfws_workers") == 2
    for _ in range(7):
        c = s.connect()
        c.send(build_request("POST", "/pid", body=b"x" * 10))
        assert c.read_response().status == 200
        c.close()
    c = s.connect()
    c.send(b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400 from the server itself
    assert c.read_response().status == 400
    c.close()
    # an open connection shows as a gauge of the worker holding it (refreshed each second)
    held = s.connect()
    held.send(build_request("GET", "/pid"))
    held.read_response()
    time.sleep(1.3)
    after = scrape(mport)
    gets = value(after, "dfws_http_requests_total", method="GET", status="2xx") \
        - value(before, "dfws_http_requests_total", method="GET", status="2xx")
    assert gets == 200 + 1, gets
    assert value(after, "dfws_http_requests_total", method="POST", status="2xx") == 7
    assert value(after, "dfws_http_requests_total", method="GET", status="4xx") == 1
    count = value(after, "dfws_http_request_duration_seconds_count") \
        - value(before, "dfws_http_request_duration_seconds_count")
    assert count == 200 + 1 + 7 + 1
    assert value(after, "dfws_http_request_duration_seconds_bucket", le="+Inf") == \
        value(after, "dfws_http_request_duration_seconds_count")
    assert value(after, "dfws_http_request_duration_seconds_sum") > 0
    assert total(after, "dfws_http_connections") >= 1
    assert len([k for k in after if k[0] == "dfws_http_connections"]) == 2  # one per worker
    assert value(after, "dfws_received_bytes_total") > 200 * 30
    assert value(after, "dfws_sent_bytes_total") > 200 * 30
    held.close()

    # a worker killed: it is replaced, and no counter goes down
    pid = int(s.request("GET", "/pid").body)
    time.sleep(0.3)  # the worker counts a request just after writing its response
    import os
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: value(scrape(mport), "dfws_worker_restarts_total") == 1, 15)
    wait_for(lambda: value(scrape(mport), "dfws_workers") == 2, 15)
    later = scrape(mport)
    assert value(later, "dfws_http_requests_total", method="GET", status="2xx") >= \
        value(after, "dfws_http_requests_total", method="GET", status="2xx") + 1
    assert value(later, "dfws_received_bytes_total") >= value(after, "dfws_received_bytes_total")


def test_metrics_other_paths_404(start_server):
    mport = free_port()
    start_server("hello_app:app", "--metrics-bind", "127.0.0.1:%d" % mport)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:%d/" % mport, timeout=5)
    assert e.value.code == 404
    # a scraper that connects and says nothing does not stop the next one
    idle = socket.create_connection(("127.0.0.1", mport))
    assert value(scrape(mport), "dfws_workers") == 1
    idle.close()


def test_metrics_bind_refused_when_invalid():
    r = run_cli(["--metrics-bind", "127.0.0.1:notaport"], "hello_app:app")
    assert r.returncode == 2 and "--metrics-bind" in r.stderr
