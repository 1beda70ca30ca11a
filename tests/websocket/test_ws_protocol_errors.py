"""Malformed WebSocket input over raw sockets (frames built by hand): each
case asserts the exact close code the server sends (RFC 6455 section 7.4),
that it then closes the TCP connection, and that another client still works."""
import socket
import time

import pytest

from conftest import (OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                      close_payload, encode_frame)

pytestmark = pytest.mark.ref("uvicorn")


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory("ws_app:app")


def still_works(srv):
    ws = srv.ws_raw("/echo?tag=check")
    try:
        ws.send_text("alive?")
        assert ws.recv_message(timeout=5) == (OP_TEXT, b"alive?")
    finally:
        ws.close()


def fails_with(srv, frames, code):
    """Sends `frames` (bytes) on a fresh WebSocket, expects close `code`
    then TCP close, then checks a new client is served."""
    fails_with.n += 1
    tag = "bad%d" % fails_with.n
    ws = srv.ws_raw("/echo?tag=" + tag)
    try:
        ws.conn.send(frames)
        ws.expect_close(code, timeout=5, then_eof=True)
    finally:
        ws.close()
    # the app is told, and saw none of the bad data
    srv.wait_event(tag, "websocket.disconnect", timeout=5)
    assert [e["type"] for e in srv.events(tag)] == ["websocket.connect", "websocket.disconnect"]
    still_works(srv)


fails_with.n = 0


@pytest.mark.parametrize("rsv", [4, 2, 1, 7])
def test_reserved_bits_1002(srv, rsv):
    fails_with(srv, encode_frame(OP_TEXT, b"hi", rsv=rsv), 1002)


def test_reserved_bits_on_control_frame_1002(srv):
    fails_with(srv, encode_frame(OP_PING, b"p", rsv=4), 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcode_1002(srv, opcode):
    fails_with(srv, encode_frame(opcode, b"data"), 1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BIN, OP_PING])
def test_unmasked_client_frame_1002(srv, opcode):
    fails_with(srv, encode_frame(opcode, b"plain", mask=False), 1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_fragmented_control_frame_1002(srv, opcode):
    payload = close_payload(1000) if opcode == OP_CLOSE else b"c"
    fails_with(srv, encode_frame(opcode, payload, fin=False), 1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_control_payload_over_125_1002(srv, opcode):
    payload = b"p" * 126
    if opcode == OP_CLOSE:
        payload = close_payload(1000, b"r" * 124)
    fails_with(srv, encode_frame(opcode, payload), 1002)


@pytest.mark.parametrize("fin", [True, False])
def test_continuation_without_start_1002(srv, fin):
    fails_with(srv, encode_frame(OP_CONT, b"orphan", fin=fin), 1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BIN])
def test_new_message_inside_fragmented_message_1002(srv, opcode):
    frames = encode_frame(OP_TEXT, b"start", fin=False) + encode_frame(opcode, b"again")
    fails_with(srv, frames, 1002)


@pytest.mark.parametrize("payload", [
    b"\xff",                    # never valid
    b"ok\x80",                  # lone continuation byte
    b"\xc0\xaf",                # overlong "/"
    b"\xe0\x80\xaf",            # overlong, 3 bytes
    b"\xed\xa0\x80",            # UTF-16 surrogate
    b"\xf4\x90\x80\x80",        # > U+10FFFF
    b"abc\xe2\x82",             # ends inside a sequence
], ids=["ff", "lone-cont", "overlong2", "overlong3", "surrogate", "too-big", "truncated"])
def test_invalid_utf8_text_1007(srv, payload):
    fails_with(srv, encode_frame(OP_TEXT, payload), 1007)


def test_invalid_utf8_split_across_fragments_1007(srv):
    # "\xe2\x82" is a valid start; "(" cannot continue it
    frames = (encode_frame(OP_TEXT, b"ok\xe2\x82", fin=False)
              + encode_frame(OP_CONT, b"(", fin=True))
    fails_with(srv, frames, 1007)


def test_invalid_utf8_in_first_fragment_1007(srv):
    # must be detected without waiting for the rest of the message
    ws = srv.ws_raw("/echo?tag=bad")
    try:
        ws.conn.send(encode_frame(OP_TEXT, b"\xff\xfe", fin=False))
        ws.expect_close(1007, timeout=5)
    finally:
        ws.close()
    still_works(srv)


def test_fragmented_message_ending_inside_sequence_1007(srv):
    frames = (encode_frame(OP_TEXT, b"ab\xf0\x9f", fin=False)
              + encode_frame(OP_CONT, b"\x98", fin=True))
    fails_with(srv, frames, 1007)


def test_invalid_utf8_close_reason_1007(srv):
    fails_with(srv, encode_frame(OP_CLOSE, close_payload(1000, b"\xff\xfe")), 1007)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_bad_close_code_1002(srv, code):
    fails_with(srv, encode_frame(OP_CLOSE, close_payload(code)), 1002)


def test_close_payload_of_one_byte_1002(srv):
    fails_with(srv, encode_frame(OP_CLOSE, b"\x03"), 1002)


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 3000, 4999])
def test_valid_close_code_echoed(srv, code):
    ws = srv.ws_raw("/echo?tag=okclose")
    try:
        ws.send_frame(OP_CLOSE, close_payload(code, b"fine"))
        ws.expect_close(code, timeout=5)
    finally:
        ws.close()


# ---- valid but unusual input --------------------------------------------------

def test_fragmented_text_reassembled(srv):
    ws = srv.ws_raw("/echo?tag=frag")
    try:
        ws.conn.send(encode_frame(OP_TEXT, b"Hel", fin=False)
                     + encode_frame(OP_CONT, b"", fin=False)
                     + encode_frame(OP_CONT, b"lo, caf\xc3", fin=False)  # split "é"
                     + encode_frame(OP_CONT, b"\xa9 world", fin=True))
        assert ws.recv_message(timeout=5) == (OP_TEXT, "Hello, caf\u00e9 world".encode())
        ws.conn.send(encode_frame(OP_BIN, b"\x00\x01", fin=False)
                     + encode_frame(OP_CONT, b"\x02" * 70000, fin=False)
                     + encode_frame(OP_CONT, b"\x03", fin=True))
        assert ws.recv_message(timeout=5) == (OP_BIN, b"\x00\x01" + b"\x02" * 70000 + b"\x03")
    finally:
        ws.close()
    evs = [e for e in srv.events("frag") if e["type"] == "websocket.receive"]
    assert evs[0]["text"] == "Hello, caf\u00e9 world"


def test_ping_inside_fragmented_message_answered(srv):
    ws = srv.ws_raw("/echo?tag=pingfrag")
    try:
        ws.conn.send(encode_frame(OP_TEXT, b"Hel", fin=False)
                     + encode_frame(OP_PING, b"p1")
                     + encode_frame(OP_CONT, b"lo", fin=False)
                     + encode_frame(OP_PONG, b"unsolicited")
                     + encode_frame(OP_PING, b"")
                     + encode_frame(OP_CONT, b"!", fin=True))
        f = ws.recv_frame(timeout=5)
        assert (f.opcode, f.fin, f.payload) == (OP_PONG, 1, b"p1")
        f = ws.recv_frame(timeout=5)
        assert (f.opcode, f.payload) == (OP_PONG, b"")
        f = ws.recv_frame(timeout=5)
        assert (f.opcode, f.fin, f.payload) == (OP_TEXT, 1, b"Hello!")
    finally:
        ws.close()


def test_ping_answered_with_same_payload(srv):
    ws = srv.ws_raw("/echo?tag=ping")
    try:
        ws.send_frame(OP_PING, b"x" * 125)
        f = ws.recv_frame(timeout=5)
        assert (f.opcode, f.rsv, f.payload) == (OP_PONG, 0, b"x" * 125)
    finally:
        ws.close()


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300000])
def test_length_forms(srv, size):
    ws = srv.ws_raw("/echo?tag=len")
    try:
        data = bytes(i & 0xFF for i in range(size))
        ws.send_frame(OP_BIN, data)
        f = ws.recv_frame(timeout=5)
        assert (f.opcode, f.fin) == (OP_BIN, 1)
        assert f.payload == data
    finally:
        ws.close()


def test_frames_fed_one_byte_at_a_time(srv):
    ws = srv.ws_raw("/echo?tag=bytewise")
    ws.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        data = (encode_frame(OP_TEXT, "sl\u00f6w".encode(), fin=False)
                + encode_frame(OP_PING, b"pp")
                + encode_frame(OP_CONT, b"ly" * 70, fin=True))
        for i in range(len(data)):
            ws.conn.send(data[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.002)
        f = ws.recv_frame(timeout=5)
        assert (f.opcode, f.payload) == (OP_PONG, b"pp")
        assert ws.recv_message(timeout=5) == (OP_TEXT, "sl\u00f6w".encode() + b"ly" * 70)
    finally:
        ws.close()


def test_several_frames_in_one_segment(srv):
    ws = srv.ws_raw("/echo?tag=batch")
    try:
        ws.conn.send(b"".join(encode_frame(OP_TEXT, b"m%d" % i) for i in range(50)))
        for i in range(50):
            assert ws.recv_message(timeout=5) == (OP_TEXT, b"m%d" % i)
    finally:
        ws.close()


def test_frames_after_close_are_ignored(srv):
    ws = srv.ws_raw("/echo?tag=afterclose")
    try:
        ws.conn.send(encode_frame(OP_CLOSE, close_payload(1000))
                     + encode_frame(OP_TEXT, b"too late"))
        ws.expect_close(1000, timeout=5)
    finally:
        ws.close()
    time.sleep(0.2)
    assert not any(e.get("text") == "too late" for e in srv.events("afterclose"))
