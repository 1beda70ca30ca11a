"""Raw HTTP/1: requests built byte by byte, and a strict response reader
over a plain socket (every framing error is an AssertionError, an early
close an IncompleteResponse holding what came)."""
import json
import re
import socket


def build_request(method="GET", path="/", headers=(), body=b"", version="1.1",
                  host=True):
    lines = ["%s %s HTTP/%s" % (method, path, version)]
    names = {k.lower() for k, _ in headers}
    if host and "host" not in names:
        lines.append("Host: testserver")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if isinstance(body, str):
        body = body.encode()
    return head + body


class Response:
    def __init__(self, version, status, reason, headers, body, raw, chunks=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name str, value str)
        self.body = body
        self.raw = raw  # exact bytes of this response as received
        self.chunks = chunks  # list of chunk payloads if chunked, else None

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %r %r>" % (self.status, self.headers, self.body[:200])


class IncompleteResponse(EOFError):
    """The peer closed before a complete response; ``partial`` holds the bytes."""

    def __init__(self, msg, partial):
        super().__init__(msg)
        self.partial = partial


class RawConn:
    """A raw client socket with a strict HTTP/1.x response reader."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False
        self._raw = None  # the bytes of the response being read (read_head on)

    @classmethod
    def tcp(cls, port, timeout=10, host="127.0.0.1", rcvbuf=None):
        """Connected to host:port; ``rcvbuf``: SO_RCVBUF set before connecting
        (a small one makes a slow reader)."""
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except OSError:
            s.close()
            raise
        return cls(s)

    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        out, self.buf = self.buf[:n], self.buf[n:]
        if self._raw is not None:
            self._raw += out
        return out

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise IncompleteResponse("EOF in line", (self._raw or b"") + self.buf)
        i = self.buf.index(b"\r\n")
        line = self._take(i + 2)
        return line[:-2]

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise IncompleteResponse("EOF after %d of %d bytes" % (len(self.buf), n),
                                         (self._raw or b"") + self.buf)
        return self._take(n)

    def read_line(self):
        """The next CRLF-terminated line, without its CRLF."""
        self._raw = None
        return self._read_line()

    def read_exact(self, n):
        """The next n bytes (EOFError before them: IncompleteResponse)."""
        self._raw = None
        return self._read_exact(n)

    def read_head(self):
        """Read one status line + headers; returns (version, status, reason, headers)."""
        return self._read_head()

    def _read_head(self):
        self._raw = b""
        line = self._read_line()
        m = re.match(rb"^HTTP/(1\.[01]) (\d{3})(?: (.*))?$", line)
        if not m:
            raise AssertionError("bad status line %r" % line)
        headers = []
        while True:
            h = self._read_line()
            if h == b"":
                break
            name, sep, value = h.partition(b":")
            assert sep, "bad header line %r" % h
            assert name == name.strip() and name, "bad header name %r" % h
            headers.append((name.decode("latin-1").lower(),
                            value.strip().decode("latin-1")))
        return m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1"), headers

    def read_response(self, head=False, allow_100=False):
        """Read one full response. 1xx responses are returned as such only if
        allow_100; otherwise they are an error (none is expected)."""
        version, status, reason, headers = self._read_head()
        raw_head = self._raw
        resp = Response(version, status, reason, headers, b"", raw_head)
        if 100 <= status < 200 or status in (204, 304) or head:
            if 100 <= status < 200 and not allow_100:
                raise AssertionError("unexpected interim response %d" % status)
            resp.raw = self._raw
            return resp
        te = [v.lower() for k, v in headers if k == "transfer-encoding"]
        cl = [v for k, v in headers if k == "content-length"]
        if te:
            assert te == ["chunked"], "unexpected transfer-encoding %r" % te
            assert not cl, "both content-length and chunked"
            chunks = []
            while True:
                chunk = self.read_chunk()
                if not chunk:
                    break
                chunks.append(chunk)
            resp.chunks = chunks
            resp.body = b"".join(chunks)
        elif cl:
            assert len(set(cl)) == 1, "several content-length %r" % cl
            resp.body = self._read_exact(int(cl[0]))
        else:
            while self._fill():
                pass
            resp.body = self._take(len(self.buf))
        resp.raw = self._raw
        return resp

    def read_chunk(self):
        """After read_head() of a chunked response: the next chunk's payload,
        b"" for the last chunk (trailers consumed)."""
        size_line = self._read_line()
        m = re.match(rb"^([0-9a-fA-F]+)(;.*)?$", size_line)
        assert m, "bad chunk size line %r" % size_line
        size = int(m.group(1), 16)
        if size == 0:
            while self._read_line() != b"":
                pass
            return b""
        data = self._read_exact(size)
        assert self._read_exact(2) == b"\r\n", "chunk not followed by CRLF"
        return data

    def read_until_close(self, timeout=None):
        """All bytes until the peer closes; returns them."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def wait_closed(self, timeout=5):
        """Reads until EOF/RST; returns the bytes received before it, or
        raises AssertionError if the peer keeps the connection open."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
        except socket.timeout:
            raise AssertionError("peer did not close within %ss (got %r)"
                                 % (timeout, self.buf[:200]))
        out, self.buf = self.buf, b""
        return out

    def is_closed_by_peer(self, timeout=5):
        """True if the peer closes (EOF/RST) within timeout without sending data."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if data:
            self.buf += data
            return False
        self.eof = True
        return True


def get(port, path="/", headers=(), timeout=10):
    """GET on a fresh TCP connection to 127.0.0.1:port; the Response."""
    c = RawConn.tcp(port, timeout)
    try:
        c.send(build_request("GET", path, headers))
        return c.read_response()
    finally:
        c.close()


def exchange(port, data, timeout=10):
    """Raw bytes sent on a fresh connection; the Response."""
    c = RawConn.tcp(port, timeout)
    try:
        c.send(data)
        return c.read_response()
    finally:
        c.close()
