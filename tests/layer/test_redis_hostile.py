"""A Redis server that answers with absurd replies (found by
tests/fuzz/fuzz_redis.c): the C layer refuses them, drops the connection,
says so, and keeps going; it never asks for the memory they announce."""
import socket
import threading

from conftest import free_port


class HostileRedis:
    """Answers every command with the header of an array of 2**31-1
    elements (13 bytes announcing 16 GiB of element table), or with
    `reply` when given."""

    def __init__(self, reply=b"*2147483647\r\n"):
        self.reply = reply
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.connections = 0
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            while c.recv(65536):
                c.sendall(self.reply)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def _run(tool, reply):
    srv = HostileRedis(reply)
    try:
        conf = {"kind": "redis", "hosts": [f"redis://127.0.0.1:{srv.port}"]}
        res = tool.run(conf, "send", "x", {"type": "t"})
        return res, srv.connections
    finally:
        srv.close()


def test_array_of_two_billion_elements_refused(tool):
    res, connections = _run(tool, b"*2147483647\r\n")
    # the send fails like any Redis error (exit 3), the tool is not killed
    assert res.returncode == 3, res.stderr[-2000:]
    assert "redis reply with more than 1048576 array elements refused; dropping the connection" \
        in res.stderr, res.stderr[-2000:]
    assert "reconnecting" in res.stderr


def test_nested_arrays_over_the_bound_refused(tool):
    # each element an array of 600,000: the second one passes the bound
    res, _ = _run(tool, b"*3\r\n*600000\r\n*600000\r\n")
    assert res.returncode == 3, res.stderr[-2000:]
    assert "array elements refused" in res.stderr, res.stderr[-2000:]
