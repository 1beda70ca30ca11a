"""Access log in daphne's format: --access-log FILE and --access-log -."""
import datetime
import re
import time

import pytest

from conftest import READY_PATH, build_request

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


def read_lines(path, n, contains="", timeout=5):
    return [l for l in wait_lines(lambda: path.read_text() if path.exists() else "", n, timeout)
            if contains in l]


def test_access_log_format_fields(start_server, tmp_path):
    """--access-log-format: every field, client bytes escaped, %% kept."""
    log = tmp_path / "fmt.log"
    fmt = ("%(client_host)s|%(client)s|%(method)s|%(path)s|%(query)s|%(target)s|%(status)d|"
           "%(bytes)s|%(duration_ms).3f|%(user_agent)s|%(referer)s|%(protocol)s|[%(time)s]|100%%")
    s = start_server("hello_app:app", "--access-log", str(log), "--access-log-format", fmt)
    c = s.connect()
    c.send(build_request("GET", "/p/x?a=1&b=2",
                         headers=[("User-Agent", 'ua "quoted" \\ back'), ("Referer", "http://r/")]))
    assert c.read_response().status == 200
    port = c.local_port()
    c.close()
    assert s.request("GET", "/plain").status == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "/plain" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    lines = [l for l in log.read_text().splitlines() if READY_PATH not in l]
    assert len(lines) == 2, lines
    f = lines[0].split("|")
    assert f[:8] == ["127.0.0.1", "127.0.0.1:%d" % port, "GET", "/p/x", "a=1&b=2", "/p/x?a=1&b=2",
                     "200", "12"], f
    assert 0 <= float(f[8]) < 5000
    assert f[9] == "ua \\x22quoted\\x22 \\x5c back"  # a client cannot break the line's quoting
    assert f[10:12] == ["http://r/", "HTTP/1.1"]
    datetime.datetime.strptime(f[12], "[%d/%b/%Y:%H:%M:%S]")
    assert f[13] == "100%"
    g = lines[1].split("|")
    assert g[3:5] == ["/plain", ""] and g[9:11] == ["-", "-"]


def test_access_log_format_refused_when_invalid():
    from conftest import run_cli
    for bad, why in (("%(nope)s", "unknown field %(nope)"), ("50% done", "a lone %"),
                     ("%(status", "unclosed %(")):
        r = run_cli(["--access-log-format", bad], "hello_app:app")
        assert r.returncode == 2, r
        assert "--access-log-format" in r.stderr and why in r.stderr, r.stderr


@pytest.mark.ref("daphne")
def test_access_log_names_the_forwarded_client(start_server, tmp_path):
    """With --proxy-headers the line starts with the client the proxy named
    (daphne does the same), not the proxy's address."""
    log = tmp_path / "proxied.log"
    s = start_server("hello_app:app", "--access-log", str(log), "--proxy-headers")
    s.request("GET", "/fwd", headers=[("X-Forwarded-For", "203.0.113.7, 10.0.0.1"),
                                      ("X-Forwarded-Port", "4443")])
    s.request("GET", "/fwd-noport", headers=[("X-Forwarded-For", "198.51.100.2")])
    s.request("GET", "/direct")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "/direct" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert any(l.startswith("203.0.113.7:4443 - - [") and '"GET /fwd"' in l for l in lines), lines
    assert any(l.startswith("198.51.100.2:0 - - [") and "/fwd-noport" in l for l in lines), lines
    assert any(LINE.match(l) and "/direct" in l for l in lines), lines


def test_access_log_lines_are_batched_not_lost(start_server, tmp_path):
    """300 pipelined requests: 300 whole lines, in order."""
    log = tmp_path / "many.log"
    s = start_server("hello_app:app", "--access-log", str(log))
    c = s.connect()
    c.send(b"".join(build_request("GET", "/n/%d" % i) for i in range(300)))
    for _ in range(300):
        assert c.read_response().status == 200
    c.close()
    lines = read_lines(log, 300, contains="/n/")
    assert [LINE.match(l).group(4) for l in lines] == ["/n/%d" % i for i in range(300)]
