#!/usr/bin/python3
"""WebSocket load generator used by ws_bench.py and native_bench.py.

One process holds many client connections cheaply: raw asyncio Protocols on
uvloop (no websockets library object per connection), a minimal RFC 6455
client (handshake check incl. Sec-WebSocket-Accept, unmasked server frames,
pings answered with pongs, masked client frames with a zero masking key so
no Python-side XOR is needed — servers still unmask every byte).

The driver starts several of these processes and talks to each over
stdin/stdout, one JSON object per line:

  argv: wsload.py CONFIG_JSON
    {"mode": "echo"|"listen"|"windows", "host": "127.0.0.1", "port": N,
     "path": "/ws/", "count": N, "concurrency": C, "origin": "http://...",
     "page": "/page/", "connect_timeout": S}
  out:  {"event": "ready", "open": n, "failed": n, "errors": [...]}
  in:   {"cmd": "echo", "duration": S, "size": B}   (mode echo)
        -> {"event": "echo", "round_trips": n, "errors": n, "sample": [s...], "wall": s}
        {"cmd": "wait", "seqs": [..], "timeout": S}  (modes listen, windows)
        -> {"event": "waited", "complete": bool, "missing": n, "last_recv": t}
        {"cmd": "collect"} -> {"event": "collected", "lat": {seq: [s...]},
             "first_recv": {seq: t}, "last_recv": {seq: t}, "dups": n,
             "unexpected": n, "closed_by_server": n, "open": n}
        {"cmd": "send", "index": i, "text": "..."}  -> {"event": "sent", "t": t}
        {"cmd": "quit"} -> {"event": "bye", "cpu": seconds}

Messages the "listen"/"windows" modes count carry a sequence number and the
sender's time.time(): listen mode expects text "b:<seq>:<ts>:..." (ws_bench's
broadcast), windows mode df_websockets' JSON
{"signal": ..., "opts": {"seq": n, "ts": t, ...}, "signal_id": ...}.
Latency = receive time.time() - ts (same machine, same clock).
"""
import asyncio
import base64
import hashlib
import json
import os
import random
import resource
import sys
import time

try:
    import uvloop
except ImportError:  # still works, just slower
    uvloop = None

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SAMPLE_MAX = 5000


def frame(opcode, payload):
    """A masked client frame with the all-zero masking key."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


class WSClient(asyncio.Protocol):
    """One client connection: sends the upgrade request in connection_made,
    then parses frames; text messages go to on_text(self, payload, t)."""

    def __init__(self, request, key, on_text):
        self.request = request
        self.accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.on_text = on_text
        self.buf = b""
        self.transport = None
        self.handshake_done = False
        self.opened = asyncio.get_running_loop().create_future()
        self.closed = False
        self.close_code = None
        self.frag = None
        self.index = -1

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during handshake: %s" % exc))

    def data_received(self, data):
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.handshake_done:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            head = data[:end].decode("latin-1")
            data = data[end + 4:]
            status = head.split("\r\n", 1)[0]
            if " 101 " not in status + " ":
                self.opened.set_exception(ConnectionError("handshake answered %r" % status))
                self.transport.close()
                return
            if self.accept.decode() not in head:
                self.opened.set_exception(ConnectionError("bad Sec-WebSocket-Accept"))
                self.transport.close()
                return
            self.handshake_done = True
            self.opened.set_result(True)
            if not data:
                return
        t = time.time()
        pos, size = 0, len(data)
        while size - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            n = b1 & 0x7F
            i = pos + 2
            if n == 126:
                if size - i < 2:
                    break
                n = int.from_bytes(data[i:i + 2], "big")
                i += 2
            elif n == 127:
                if size - i < 8:
                    break
                n = int.from_bytes(data[i:i + 8], "big")
                i += 8
            if b1 & 0x80:  # servers must not mask; tolerate it anyway
                if size - i < 4 + n:
                    break
                mask = data[i:i + 4]
                i += 4
                payload = bytes(c ^ mask[k & 3] for k, c in enumerate(data[i:i + n]))
            else:
                if size - i < n:
                    break
                payload = data[i:i + n]
            pos = i + n
            self._frame(b0 & 0x80, b0 & 0x0F, payload, t)
        if pos < size:
            self.buf = data[pos:]

    def _frame(self, fin, opcode, payload, t):
        if opcode == 0x9:
            self.transport.write(frame(0xA, payload))
        elif opcode == 0x8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self.transport.is_closing():
                self.transport.write(frame(0x8, payload[:2]))
                self.transport.close()
        elif opcode in (0x1, 0x2):
            if fin:
                self.on_text(self, payload, t)
            else:
                self.frag = payload
        elif opcode == 0x0 and self.frag is not None:
            self.frag += payload
            if fin:
                payload, self.frag = self.frag, None
                self.on_text(self, payload, t)

    def send_text(self, text):
        self.transport.write(frame(0x1, text))

    def close(self):
        if self.transport is not None and not self.transport.is_closing():
            if self.handshake_done:
                self.transport.write(frame(0x8, (1000).to_bytes(2, "big")))
            self.transport.close()


def upgrade_request(host, port, path, origin=None, cookies=None):
    key = base64.b64encode(os.urandom(16))
    lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host, port), "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key.decode(),
             "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append("Origin: %s" % origin)
    if cookies:
        lines.append("Cookie: " + "; ".join("%s=%s" % kv for kv in cookies.items()))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


async def http_get(conn, host, port, path):
    """GET over a keep-alive (reader, writer) pair; returns (status, cookies,
    body, conn) where conn is None when the server closes the connection."""
    reader, writer = conn
    writer.write(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/html\r\n\r\n"
                  % (path, host, port)).encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    cookies, length, close = {}, 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "set-cookie":
            kv = value.split(";", 1)[0]
            k, _, v = kv.partition("=")
            cookies[k.strip()] = v.strip()
        elif name == "content-length":
            length = int(value)
        elif name == "connection" and value.lower() == "close":
            close = True
        elif name == "transfer-encoding" and "chunked" in value.lower():
            length = -1
    if length >= 0:
        body = await reader.readexactly(length) if length else b""
    else:   # chunked (daphne streams Django responses without Content-Length)
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
            body = body[:-2]
    if close:
        writer.close()
        conn = None
    return status, cookies, body, conn


class Worker:
    def __init__(self, cfg):
        self.cfg = cfg
        self.mode = cfg["mode"]
        self.host, self.port = cfg.get("host", "127.0.0.1"), cfg["port"]
        self.clients = []
        self.errors = []
        self.failed = 0
        # listen/windows: seq -> list of latencies; per-client set of seqs seen
        self.lat = {}
        self.first_recv, self.last_recv = {}, {}
        self.dups = 0
        self.unexpected = 0
        self.waiting = None   # (set of seqs, asyncio.Event)
        self.echo_waiter = {}

    # ---------------------------------------------------------------- receive
    def on_message(self, client, payload, t):
        try:
            if self.mode == "listen":
                parts = payload.split(b":", 3)
                seq, ts = int(parts[1]), float(parts[2])
            elif self.mode == "windows":
                opts = json.loads(payload)["opts"]
                seq, ts = int(opts["seq"]), float(opts["ts"])
            else:
                fut = self.echo_waiter.pop(client.index, None)
                if fut is not None and not fut.done():
                    fut.set_result(t)
                else:
                    self.unexpected += 1
                return
        except (ValueError, KeyError, IndexError, TypeError):
            self.unexpected += 1
            return
        seen = client.seen
        if seq in seen:
            self.dups += 1
            return
        seen.add(seq)
        self.lat.setdefault(seq, []).append(t - ts)
        self.first_recv.setdefault(seq, t)
        self.last_recv[seq] = t
        if self.waiting is not None:
            seqs, event = self.waiting
            if seq in seqs and self._complete(seqs):
                event.set()

    def _complete(self, seqs):
        live = sum(1 for c in self.clients if not c.closed)
        return all(len(self.lat.get(s, ())) >= live for s in seqs)

    # ---------------------------------------------------------------- connect
    async def open_one(self, index, http_conn):
        loop = asyncio.get_running_loop()
        cookies = None
        if self.mode == "windows":
            for attempt in (1, 2):   # a reused keep-alive connection may have timed out
                fresh = http_conn[0] is None
                if fresh:
                    http_conn[0] = await asyncio.open_connection(self.host, self.port)
                try:
                    status, cookies, _, http_conn[0] = await http_get(
                        http_conn[0], self.host, self.port, self.cfg["page"])
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    http_conn[0][1].close()
                    http_conn[0] = None
                    if fresh:
                        raise
            if status != 200 or "dfwskey" not in cookies:
                raise ConnectionError("page GET answered %d, cookies %s" % (status,
                                                                           sorted(cookies)))
        request, key = upgrade_request(self.host, self.port, self.cfg.get("path", "/"),
                                       self.cfg.get("origin"), cookies)
        _, client = await loop.create_connection(
            lambda: WSClient(request, key, self.on_message), self.host, self.port)
        await client.opened
        client.index = index
        client.seen = set()
        return client

    async def open_all(self):
        count = self.cfg["count"]
        todo = list(range(count))
        timeout = self.cfg.get("connect_timeout", 30)

        async def runner():
            http_conn = [None]
            while todo:
                index = todo.pop()
                try:
                    client = await asyncio.wait_for(self.open_one(index, http_conn), timeout)
                    self.clients.append(client)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                        asyncio.LimitOverrunError, ValueError, IndexError) as exc:
                    self.failed += 1
                    http_conn[0] = None
                    if len(self.errors) < 5:
                        self.errors.append("%s: %s" % (type(exc).__name__, exc))
            if http_conn[0] is not None:
                http_conn[0][1].close()

        await asyncio.gather(*(runner() for _ in range(max(1, self.cfg.get("concurrency", 16)))))
        self.clients.sort(key=lambda c: c.index)

    # ---------------------------------------------------------------- commands
    async def echo(self, duration, size):
        payload = b"x" * size
        stop = time.monotonic() + duration
        counts, errors, sample = [0], [0], []
        loop = asyncio.get_running_loop()

        async def one(client):
            while time.monotonic() < stop and not client.closed:
                fut = loop.create_future()
                self.echo_waiter[client.index] = fut
                t0 = time.time()
                client.send_text(payload)
                try:
                    t1 = await asyncio.wait_for(fut, 10)
                except asyncio.TimeoutError:
                    errors[0] += 1
                    return
                counts[0] += 1
                if len(sample) < SAMPLE_MAX * 20:
                    sample.append(t1 - t0)

        t0 = time.monotonic()
        await asyncio.gather(*(one(c) for c in self.clients if not c.closed))
        wall = time.monotonic() - t0
        step = max(1, len(sample) // SAMPLE_MAX)
        return {"event": "echo", "round_trips": counts[0], "errors": errors[0],
                "closed": sum(1 for c in self.clients if c.closed),
                "sample": sample[::step], "wall": wall}

    async def wait(self, seqs, timeout):
        seqs = set(seqs)
        if not self._complete(seqs):
            event = asyncio.Event()
            self.waiting = (seqs, event)
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self.waiting = None
        live = sum(1 for c in self.clients if not c.closed)
        missing = sum(max(0, live - len(self.lat.get(s, ()))) for s in seqs)
        last = max((self.last_recv.get(s, 0) for s in seqs), default=0)
        return {"event": "waited", "complete": missing == 0, "missing": missing,
                "last_recv": last}

    def collect(self):
        return {"event": "collected", "lat": self.lat, "first_recv": self.first_recv,
                "last_recv": self.last_recv, "dups": self.dups, "unexpected": self.unexpected,
                "open": sum(1 for c in self.clients if not c.closed),
                "closed_by_server": sum(1 for c in self.clients if c.closed),
                "close_codes": sorted({c.close_code for c in self.clients
                                       if c.closed and c.close_code})}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cpu_self():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def amain(cfg):
    w = Worker(cfg)
    t0 = time.monotonic()
    await w.open_all()
    emit({"event": "ready", "open": len(w.clients), "failed": w.failed, "errors": w.errors,
          "seconds": time.monotonic() - t0, "cpu": cpu_self()})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        c = cmd["cmd"]
        if c == "echo":
            emit(await w.echo(cmd["duration"], cmd.get("size", 16)))
        elif c == "wait":
            emit(await w.wait(cmd["seqs"], cmd.get("timeout", 30)))
        elif c == "collect":
            emit(w.collect())
        elif c == "send":
            t = time.time()   # "{ts}" in the text becomes the send time
            w.clients[cmd.get("index", 0)].send_text(cmd["text"].replace("{ts}", repr(t)).encode())
            emit({"event": "sent", "t": t})
        elif c == "cpu":
            emit({"event": "cpu", "cpu": cpu_self()})
        elif c == "quit":
            for client in w.clients:
                client.close()
            await asyncio.sleep(0.2)
            emit({"event": "bye", "cpu": cpu_self()})
            break


def main():
    cfg = json.loads(sys.argv[1])
    random.seed()
    if uvloop is not None:
        uvloop.install()
    asyncio.run(amain(cfg))


if __name__ == "__main__":
    main()
