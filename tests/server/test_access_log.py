"""Access log in daphne's format: --access-log FILE and --access-log -."""
import datetime
import re
import time

import pytest

from conftest import READY_PATH

LINE = re.compile(r'^127\.0\.0\.1:(\d+) - - \[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2})\] '
                  r'"([A-Z]+) ([^"]*)" (\d{3}) (\S+)$')


def wait_lines(read, n, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in (read() or "").splitlines()
                 if LINE.match(l) and READY_PATH not in l]
        if len(lines) >= n or time.monotonic() > deadline:
            return lines


def check_line(line, port, method, path, status, size):
    m = LINE.match(line)
    assert m, line
    assert int(m.group(1)) == port
    when = datetime.datetime.strptime(m.group(2), "%d/%b/%Y:%H:%M:%S")
    assert abs((datetime.datetime.now() - when).total_seconds()) < 10
    assert (m.group(3), m.group(4), m.group(5), m.group(6)) == (method, path, str(status), size)


@pytest.mark.ref("daphne")
def test_access_log_to_file(start_server, tmp_path):
    log = tmp_path / "access.log"
    s = start_server("hello_app:app", "--access-log", str(log))
    c = s.connect()
    from conftest import build_request
    c.send(build_request("GET", "/path/x"))
    c.read_response()
    c.send(build_request("POST", "/form", body=b"abc"))
    c.read_response()
    port = c.local_port()
    c.close()
    lines = wait_lines(lambda: log.read_text() if log.exists() else "", 2)
    assert len(lines) == 2, log.read_text() if log.exists() else None
    check_line(lines[0], port, "GET", "/path/x", 200, "12")
    check_line(lines[1], port, "POST", "/form", 200, "12")
    s.stop()
    assert "/path/x" not in s.stdout()


@pytest.mark.ref("daphne")
def test_access_log_to_stdout(start_server):
    s = start_server("stream_resp_app:app", "--access-log", "-")
    from conftest import build_request
    c = s.connect()
    c.send(build_request("GET", "/status?code=404"))
    r = c.read_response()
    assert r.status == 404
    port = c.local_port()
    c.close()
    lines = wait_lines(s.stdout, 1)
    assert len(lines) == 1, s.stdout()
    check_line(lines[0], port, "GET", "/status?code=404", 404, "11")


def test_access_log_default_follows_daphne(start_server):
    # daphne: without --access-log, the access log goes to stdout at
    # verbosity >= 1 (the default) and nowhere at -v 0
    s = start_server("hello_app:app")
    assert s.request("GET", "/default-path").status == 200
    s.stop()
    assert '"GET /default-path" 200' in s.stdout()
    q = start_server("hello_app:app", "-v", "0")
    assert q.request("GET", "/quiet-path").status == 200
    q.stop()
    assert "/quiet-path" not in q.stdout()
    assert "/quiet-path" not in q.stderr()


def test_access_log_goes_through_python_logger(start_server, tmp_path):
    log = tmp_path / "access.log"
    s = start_server("logcapture_app:app", "--access-log", str(log))
    c = s.connect()
    from conftest import build_request
    c.send(build_request("GET", "/via-logging"))
    assert c.read_response().body == b"logged"
    port = c.local_port()
    c.close()
    text = s.wait_out("access-py", 5, contains="/via-logging")
    assert text is not None, s.describe()
    line = [l for l in text.splitlines() if "/via-logging" in l][0]
    name, msg = line.split("|", 1)
    assert name == "dfws.access"
    check_line(msg, port, "GET", "/via-logging", 200, "6")
    lines = wait_lines(lambda: log.read_text() if log.exists() else "", 1)
    check_line(lines[0], port, "GET", "/via-logging", 200, "6")
