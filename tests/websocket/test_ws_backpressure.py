"""Outgoing backpressure: an app sending 200 MiB to a client that does not
read must wait in send() while the server's memory stays bounded."""
import socket
import threading
import time

import pytest

from conftest import OP_BIN, OP_PING, OP_PONG, OP_TEXT, RssSampler, encode_frame, tree_rss_bytes

MiB = 1 << 20


@pytest.mark.ref("uvicorn")
def test_send_waits_for_slow_reader(start_server):
    s = start_server("ws_app:app")
    ws = s.ws_raw("/flood?mb=200&tag=flood", rcvbuf=64 * 1024)
    try:
        time.sleep(0.3)
        base = tree_rss_bytes(s.pid)
        with RssSampler(s.pid) as sampler:
            ws.send_text("go")
            time.sleep(3.0)  # the client reads nothing meanwhile
            progress = s.read_out("flood-flood", "0 0").split()
            sent_while_stalled = int(progress[0])
        growth = sampler.peak - base
        assert growth < 150 * MiB, "server RSS grew by %.1f MiB" % (growth / MiB)
        assert s.read_out("flood-done-flood") is None, "all 200 MiB 'sent' to a stalled client"
        assert sent_while_stalled < 100, (
            "%d of 200 send() calls returned while the client read nothing"
            % sent_while_stalled)

        # now read everything: every send() eventually completes, data intact
        with RssSampler(s.pid) as sampler2:
            total = 0
            for _ in range(200):
                f = ws.recv_frame(timeout=20)
                assert (f.opcode, f.fin) == (OP_BIN, 1)
                assert len(f.payload) == MiB and f.payload[:1] == b"x" and f.payload[-1:] == b"x"
                total += len(f.payload)
        assert total == 200 * MiB
        assert sampler2.peak - base < 150 * MiB
        assert s.wait_out("flood-done-flood", timeout=10) == "done 200\n"
    finally:
        ws.close()


@pytest.mark.ref("uvicorn")
def test_incoming_flow_control_when_app_does_not_receive(start_server):
    """A client sending 100 MiB to an app that does not call receive() for
    3 s: the server stops reading, its memory stays bounded, nothing is lost."""
    s = start_server("ws_app:app")
    ws = s.ws_raw("/sink?sleep=3")
    ws.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    msg = encode_frame(OP_BIN, b"y" * (512 * 1024), key=b"\x00\x00\x00\x00")
    count = 200  # 100 MiB
    sent = [0]
    errors = []

    def sender():
        try:
            for _ in range(count):
                ws.conn.send(msg)
                sent[0] += 1
        except OSError as e:
            errors.append(e)

    try:
        time.sleep(0.2)
        base = tree_rss_bytes(s.pid)
        t = threading.Thread(target=sender, daemon=True)
        with RssSampler(s.pid) as sampler:
            t.start()
            time.sleep(2.5)  # the app is still asleep
            sent_while_asleep = sent[0]
        assert sampler.peak - base < 150 * MiB, (
            "server RSS grew by %.1f MiB" % ((sampler.peak - base) / MiB))
        assert sent_while_asleep < count * 3 // 4, (
            "the client wrote %d of %d messages while the app received nothing"
            % (sent_while_asleep, count))
        t.join(30)
        assert not t.is_alive() and not errors, errors
        ws.send_frame(OP_TEXT, b"end")
        assert ws.recv_message(timeout=20) == (OP_TEXT, str(count * 512 * 1024).encode())
    finally:
        ws.close()



def test_ping_flood_from_a_client_that_never_reads(start_server):
    """Every ping asks for a pong: a client that pings without reading must
    not make the server queue one pong per ping. Once its output is backed
    up the server keeps one pending pong at most (the latest ping's) and
    stops reading while the output is above the high-water mark; memory
    stays flat and the connection still works when the client reads."""
    s = start_server("ws_app:app")
    ws = s.ws_raw("/echo", rcvbuf=16 * 1024)
    ping = encode_frame(OP_PING, b"p" * 125, key=b"\x01\x02\x03\x04")
    chunk = ping * 2048  # ~262 KiB of pings per send
    total = 32 * MiB
    sent = [0]

    def sender():
        ws.conn.sock.settimeout(None)
        while sent[0] < total:
            ws.conn.sock.sendall(chunk)
            sent[0] += len(chunk)

    time.sleep(0.3)
    base = tree_rss_bytes(s.pid)
    with RssSampler(s.pid) as sampler:
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        t.join(60)
    growth = sampler.peak - base
    assert not t.is_alive(), "the server stopped reading pings for good (%d bytes sent)" % sent[0]
    assert growth < 16 * MiB, "server RSS grew by %.1f MiB for %.1f MiB of pings" % (
        growth / MiB, sent[0] / MiB)
    assert s.proc.poll() is None, s.describe()
    # What the server queued is pongs only, then it answers as usual.
    ws.send_text("still here")
    pongs = 0
    while True:
        f = ws.recv_frame(timeout=20)
        if f.opcode != OP_PONG:
            break
        assert f.payload == b"p" * 125
        pongs += 1
    assert (f.opcode, f.payload) == (OP_TEXT, b"still here")
    assert 1 <= pongs < 100000, pongs
    ws.close()
