#!/usr/bin/env python3
"""Memory under a slow-client attack, against one dfws-asgi worker.

    bench/memory_attack.py [--ws 5000] [--trickle 5000] [--duration 60]
                           [--dfws .venv/bin/dfws-asgi] [--port P --pid PID]

Two kinds of attackers, opened at once and kept for --duration seconds:

- WebSocket clients that complete the upgrade request, then send bursts of
  pings and never read anything: every ping makes the server owe a pong that
  nobody takes, so the server must stop reading them (backpressure) rather
  than queue pongs without bound;
- HTTP clients that announce a large body and trickle it, one byte every
  2 s: the server holds them (one pending request each) with bounded memory,
  or times them out; both are fine, unbounded growth is not.

Meanwhile a prober opens a normal connection every second, alternately an
HTTP request and a WebSocket echo, and times it (probes started while the
attackers are still connecting are counted apart, under "ramp": one worker
that accepts 10,000 connections in a couple of seconds serves a newcomer
after them). Prints the server's RSS
(VmRSS of its process tree) as the attack goes, then one JSON line with the
figures: RSS before, with every attacker connected, at the middle and at the
end of the attack, the peak, RSS per attacker, the probes' latencies and
failures, and how many attackers the server closed or stopped reading.

Without --port the script starts dfws-asgi (--dfws, default
.venv/bin/dfws-asgi) itself with tests/server/apps/attack_app.py on a free
loopback port. RLIMIT_NOFILE is raised to its hard limit (the server it
starts inherits it): each side needs one descriptor per client.

Loopback only. Not for CI: tests/server/test_memory_attack.py runs
run_attack() with 500 + 500 clients.
"""
import argparse
import base64
import errno
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APPS = os.path.join(REPO, "tests", "server", "apps")
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from dfws_testsupport.binary import dfws_binary  # noqa: E402
from dfws_testsupport.net import free_port  # noqa: E402
from dfws_testsupport.proc import tree_rss_bytes as tree_rss  # noqa: E402  (bytes)
MiB = 1024 * 1024

TRICKLE_INTERVAL = 2.0  # seconds between two body bytes of a trickle client
PING_BURST = 64         # pings per WebSocket attacker per round
PING_PAYLOAD = b"p" * 125
WS_KEY = base64.b64encode(b"0123456789abcdef").decode()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ws_frame(opcode, payload, mask=b"\x11\x22\x33\x44"):
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def upgrade_request(path="/ws"):
    return ("GET %s HTTP/1.1\r\nHost: attack\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, WS_KEY)).encode()


def _connect(host, port, rcvbuf=None, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # a small window: the pongs back up into the server, not into the
        # kernel buffers of this side
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def _recv_until(s, marker, limit=65536):
    data = b""
    while marker not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed after %r" % data[:200])
        data += chunk
        if len(data) > limit:
            raise ConnectionError("no %r in %d bytes" % (marker, len(data)))
    return data


def _recv_exact(s, n, have=b""):
    while len(have) < n:
        chunk = s.recv(n - len(have))
        if not chunk:
            raise ConnectionError("closed")
        have += chunk
    return have


def probe_http(host, port, timeout):
    t0 = time.monotonic()
    with _connect(host, port, timeout=timeout) as s:
        s.sendall(b"POST /probe HTTP/1.1\r\nHost: probe\r\nContent-Length: 5\r\n"
                  b"Connection: close\r\n\r\nhello")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 200") or not data.endswith(b"\r\n\r\n5"):
        raise AssertionError("bad HTTP answer %r" % data[:200])
    return time.monotonic() - t0


def probe_ws(host, port, timeout, n):
    t0 = time.monotonic()
    with _connect(host, port, timeout=timeout) as s:
        s.sendall(upgrade_request("/probe"))
        head = _recv_until(s, b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError("bad upgrade answer %r" % head[:200])
        rest = head.split(b"\r\n\r\n", 1)[1]
        text = ("echo %d" % n).encode()
        s.sendall(ws_frame(1, text))
        frame = _recv_exact(s, 2, rest)
        length = frame[1] & 0x7F
        frame = _recv_exact(s, 2 + length, frame)
        if frame[0] != 0x81 or frame[2:2 + length] != text:
            raise AssertionError("bad echo %r" % frame[:200])
        s.sendall(ws_frame(8, struct.pack(">H", 1000)))
    return time.monotonic() - t0


class Prober(threading.Thread):
    """A normal client, once a second: HTTP and WebSocket echo in turn."""

    def __init__(self, host, port, timeout):
        super().__init__(daemon=True)
        self.host, self.port, self.timeout = host, port, timeout
        self.http, self.ws, self.failures = [], [], []  # (phase, latency or text)
        self.stop = threading.Event()
        self.ramp = threading.Event()  # set while the attackers connect

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            # a probe belongs to the phase it started in
            phase = "ramp" if self.ramp.is_set() else "attack"
            try:
                if n % 2:
                    self.http.append((phase, probe_http(self.host, self.port, self.timeout)))
                else:
                    self.ws.append((phase, probe_ws(self.host, self.port, self.timeout, n)))
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                self.failures.append((phase, "%s probe %d: %r" % ("http" if n % 2 else "ws", n, e)))
            self.stop.wait(1.0)

    def figures(self, phase):
        http = [t for p, t in self.http if p == phase]
        ws = [t for p, t in self.ws if p == phase]
        fails = [f for p, f in self.failures if p == phase]
        return {"probes_http": len(http), "probes_ws": len(ws), "probe_failures": fails[:10],
                "n_probe_failures": len(fails), "http_p50_ms": _pct(http, 50),
                "http_max_ms": _pct(http, 100), "ws_p50_ms": _pct(ws, 50), "ws_max_ms": _pct(ws, 100)}


def _pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(p / 100.0 * len(v)))] * 1000, 1)


def _send_nb(s, data):
    """Non-blocking send: 'ok', 'blocked' (would block) or 'closed'."""
    try:
        s.send(data)
        return "ok"
    except BlockingIOError:
        return "blocked"
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            return "blocked"
        return "closed"


def run_attack(host, port, pid, n_ws, n_trickle, duration, probe_timeout=10.0, log=print):
    """Runs the attack against a server already listening; returns the
    figures as a dict (see the module docstring)."""
    rss = {"before": tree_rss(pid)}
    peak = [rss["before"]]
    prober = Prober(host, port, probe_timeout)
    prober.ramp.set()
    prober.start()
    ws, trickle, connect_errors = [], [], []
    pings = b"".join(ws_frame(9, PING_PAYLOAD) for _ in range(PING_BURST))
    t_connect = time.monotonic()
    for i in range(max(n_ws, n_trickle)):
        try:
            if i < n_ws:
                s = _connect(host, port, rcvbuf=4096)
                s.sendall(upgrade_request())  # and never read the 101
                s.setblocking(False)
                ws.append(s)
            if i < n_trickle:
                s = _connect(host, port)
                s.sendall(b"POST /upload HTTP/1.1\r\nHost: attack\r\nContent-Length: 100000000\r\n\r\n")
                s.setblocking(False)
                trickle.append(s)
        except OSError as e:
            connect_errors.append(repr(e))
            if len(connect_errors) > 50:
                break
        if i % 500 == 499:
            peak.append(tree_rss(pid))
            log("connected %d + %d clients: server RSS %.1f MiB" % (len(ws), len(trickle), peak[-1] / MiB))
    connect_s = time.monotonic() - t_connect
    prober.ramp.clear()
    rss["connected"] = tree_rss(pid)
    log("all connected in %.1f s: server RSS %.1f MiB" % (connect_s, rss["connected"] / MiB))

    ws_state = ["ok"] * len(ws)
    trickle_state = ["ok"] * len(trickle)
    t0 = time.monotonic()
    next_trickle = t0
    next_log = t0 + 5
    mid_taken = False
    rounds = 0
    while time.monotonic() - t0 < duration:
        now = time.monotonic()
        # one burst of pings per WebSocket attacker per round
        for i, s in enumerate(ws):
            if ws_state[i] != "closed":
                r = _send_nb(s, pings)
                ws_state[i] = r if r == "closed" or ws_state[i] == "ok" else ws_state[i]
                if r == "blocked" and ws_state[i] == "ok":
                    ws_state[i] = "blocked"
        rounds += 1
        if now >= next_trickle:
            for i, s in enumerate(trickle):
                if trickle_state[i] != "closed" and _send_nb(s, b"x") == "closed":
                    trickle_state[i] = "closed"
            next_trickle += TRICKLE_INTERVAL
        cur = tree_rss(pid)
        peak.append(cur)
        if not mid_taken and now - t0 >= duration / 2:
            rss["middle"] = cur
            mid_taken = True
        if now >= next_log:
            log("t=%4.0f s: server RSS %.1f MiB, ws blocked %d closed %d, trickle closed %d, "
                "probes ok %d failed %d" % (now - t0, cur / MiB, ws_state.count("blocked"),
                                            ws_state.count("closed"), trickle_state.count("closed"),
                                            len(prober.http) + len(prober.ws), len(prober.failures)))
            next_log += 5
        time.sleep(0.5)
    rss["end"] = tree_rss(pid)
    rss.setdefault("middle", rss["end"])
    prober.stop.set()
    prober.join(probe_timeout + 5)
    for s in ws + trickle:
        s.close()
    time.sleep(2)
    rss["after_close"] = tree_rss(pid)
    attackers = len(ws) + len(trickle)
    res = {
        "ws_clients": len(ws), "trickle_clients": len(trickle), "connect_errors": len(connect_errors),
        "connect_s": round(connect_s, 1), "duration_s": duration, "ping_rounds": rounds,
        "pings_per_round": PING_BURST, "trickle_interval_s": TRICKLE_INTERVAL,
        "rss_before_mib": round(rss["before"] / MiB, 1),
        "rss_connected_mib": round(rss["connected"] / MiB, 1),
        "rss_middle_mib": round(rss["middle"] / MiB, 1),
        "rss_end_mib": round(rss["end"] / MiB, 1),
        "rss_peak_mib": round(max(peak) / MiB, 1),
        "rss_after_close_mib": round(rss["after_close"] / MiB, 1),
        "rss_per_attacker_kib": round((max(peak) - rss["before"]) / 1024 / max(1, attackers), 2),
        "ws_blocked": ws_state.count("blocked"), "ws_closed_by_server": ws_state.count("closed"),
        "trickle_closed_by_server": trickle_state.count("closed"),
    }
    # probes once every attacker is connected (the attack proper) at the top
    # level; those started while they were still connecting under "ramp"
    res.update(prober.figures("attack"))
    res["ramp"] = prober.figures("ramp")
    if connect_errors:
        res["connect_error_sample"] = connect_errors[:3]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ws", type=int, default=5000, help="WebSocket ping attackers")
    ap.add_argument("--trickle", type=int, default=5000, help="HTTP body tricklers")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of attack once connected")
    ap.add_argument("--dfws", default=dfws_binary())
    ap.add_argument("--port", type=int, help="attack a server already listening on 127.0.0.1:PORT")
    ap.add_argument("--pid", type=int, help="its process id (with --port)")
    ap.add_argument("--server-log", help="the started server's stderr (-v 1) into this file")
    args = ap.parse_args()
    nofile = raise_nofile()
    need = max(args.ws, 0) + max(args.trickle, 0) + 100
    if nofile < need:
        print("RLIMIT_NOFILE is %d, %d needed" % (nofile, need), file=sys.stderr)
        return 2
    proc = None
    if args.port:
        if not args.pid:
            ap.error("--port needs --pid")
        port, pid = args.port, args.pid
    else:
        port = free_port()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        log = open(args.server_log, "wb") if args.server_log else None
        proc = subprocess.Popen([args.dfws, "-b", "127.0.0.1", "-p", str(port), "--backlog", "4096",
                                 "-v", "1" if log else "0", "attack_app:app"], cwd=APPS, env=env,
                                stderr=log)
        pid = proc.pid
        deadline = time.monotonic() + 30
        while True:
            try:
                probe_http("127.0.0.1", port, 2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print("dfws-asgi did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
    print("RLIMIT_NOFILE %d; attacking 127.0.0.1:%d (pid %d) with %d WebSocket + %d trickle clients"
          % (nofile, port, pid, args.ws, args.trickle))
    try:
        res = run_attack("127.0.0.1", port, pid, args.ws, args.trickle, args.duration)
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)
    print(json.dumps(res))
    return 0 if res["n_probe_failures"] == 0 and res["ramp"]["n_probe_failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
