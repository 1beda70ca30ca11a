"""WebSocket lines of the access log, in daphne's format: WSCONNECTING and
WSCONNECT for an accepted socket, WSDISCONNECT when it ends, WSREJECT for a
refused handshake."""
import re
import time

from conftest import RawConn, upgrade_request

LINE = re.compile(r'^127\.0\.0\.1:\d+ - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\] "(\w+) ([^"]*)" - -$')


def _lines(path, count, timeout=5):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        lines = [l for l in path.read_text().splitlines()
                 if l and "/__ready__" not in l] if path.exists() else []  # the harness's probe
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return lines


def test_websocket_access_log_lines(start_server, tmp_path):
    log = tmp_path / "access.log"
    srv = start_server("ws_app:app", "--access-log", str(log))
    ws = srv.ws_raw("/echo?tag=log")
    ws.send_text("hi")
    assert ws.recv_message(timeout=5)[1] == b"hi"
    ws.close()
    c = RawConn.tcp(srv.port)
    c.send(upgrade_request("/reject"))
    assert c.read_head()[0] == 403
    c.close()
    lines = _lines(log, 5)
    parsed = [LINE.match(l) for l in lines]
    assert all(parsed), lines
    got = [(m.group(1), m.group(2)) for m in parsed]
    assert got == [
        ("WSCONNECTING", "/echo?tag=log"),
        ("WSCONNECT", "/echo?tag=log"),
        ("WSDISCONNECT", "/echo?tag=log"),
        ("WSCONNECTING", "/reject"),
        ("WSREJECT", "/reject"),
    ], lines
