"""HTTPS and WSS: uvicorn's --ssl-* flags and daphne's ``-e ssl:`` endpoint,
against real TLS clients (Python's ssl with http.client, the websockets
client, Chromium trusting the test certificate).

A CA and a certificate for localhost/127.0.0.1 are made for the module
with the ``cryptography`` package. The server is probed over TLS (the
conftest's plain-HTTP probe would be a bad ClientHello).

The TLS handshake has no timeout of its own: it is the start of the
request head, so --header-timeout bounds it (test_handshake_never_completes).
"""
import base64
import datetime
import hashlib
import http.client
import ipaddress
import os
import socket
import ssl
import sys
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import run_cli

APP = "tls_app:app"
PERIOD = bytes(range(251))


# ------------------------------------------------------------ certificates

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(key, cn, issuer_name, issuer_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, *items):
    with open(path, "wb") as f:
        for item in items:
            if isinstance(item, x509.Certificate):
                f.write(item.public_bytes(serialization.Encoding.PEM))
            else:
                f.write(item.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(path)


class Certs:
    def __init__(self, d):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert(ca_key, "dfws test CA", _name("dfws test CA"), ca_key, True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(key, "localhost", ca.subject, ca_key, False)
        other = ec.generate_private_key(ec.SECP256R1())
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = _cert(client_key, "client", ca.subject, ca_key, False)
        self.ca = _write(d / "ca.pem", ca)
        self.cert = _write(d / "cert.pem", cert)
        self.key = _write(d / "key.pem", key)
        self.both = _write(d / "both.pem", cert, key)
        self.other_key = _write(d / "other-key.pem", other)
        self.client = _write(d / "client.pem", client, client_key)
        # a leaf signed by an intermediate CA: clients trust the root only,
        # so the server must send the intermediate (Twisted's extraCertChainFile)
        mid_key = ec.generate_private_key(ec.SECP256R1())
        mid = _cert(mid_key, "dfws test intermediate", ca.subject, ca_key, True)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert(leaf_key, "localhost", mid.subject, mid_key, False)
        self.mid = _write(d / "intermediate.pem", mid)
        self.leaf = _write(d / "leaf.pem", leaf)
        self.leaf_key = _write(d / "leaf-key.pem", leaf_key)
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        self.spki_sha256 = base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def client_context(self, alpn=("http/1.1",), client_cert=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        if client_cert:
            ctx.load_cert_chain(client_cert)
        return ctx


@pytest.fixture(scope="module")
def certs(module_tmp):
    return Certs(module_tmp)


# ------------------------------------------------------------------ helpers

def tls_args(certs):
    return ["--ssl-certfile", certs.cert, "--ssl-keyfile", certs.key]


def connect(srv, certs, timeout=10, **kw):
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout)
    return certs.client_context(**kw).wrap_socket(raw, server_hostname="localhost")


def https(srv, certs, timeout=10, **kw):
    return http.client.HTTPSConnection("localhost", srv.port, timeout=timeout,
                                       context=certs.client_context(**kw))


def get(conn, path, body=None, method="GET"):
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    return resp.status, resp.read()


def wait_tls(srv, certs, timeout=20):
    """Ready once a TLS client gets an answer."""
    deadline = time.monotonic() + timeout
    while True:
        if srv.proc.poll() is not None:
            srv.stopped = True
            pytest.fail("server exited early with %s\n%s" % (srv.proc.returncode, srv.describe()))
        try:
            c = https(srv, certs, timeout=2)
            try:
                get(c, "/__ready__")
                return srv
            finally:
                c.close()
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                pytest.fail("not serving TLS within %ss\n%s" % (timeout, srv.describe()))
            time.sleep(0.05)


@pytest.fixture
def tls_server(start_server, certs):
    def factory(*args, port=None):
        srv = start_server(APP, *tls_args(certs), *args, port=port, wait=False)
        return wait_tls(srv, certs)
    return factory


def closed_by_server(sock, timeout):
    """True when the server closes the connection within timeout s."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# -------------------------------------------------------------------- HTTPS

def test_https_scheme_and_keep_alive(tls_server, certs):
    srv = tls_server()
    conn = https(srv, certs)
    try:
        for i in range(3):  # one connection: keep-alive over TLS
            status, body = get(conn, "/scope/%d" % i)
            assert status == 200
            assert body == b"scheme=https version=1.1 path=/scope/%d" % i
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert conn.sock.selected_alpn_protocol() == "http/1.1"
    finally:
        conn.close()


def test_trusted_proxy_scheme_wins(tls_server, certs):
    """Behind a trusted proxy, its X-Forwarded-Proto names the scheme; without
    the header the TLS connection itself says https."""
    srv = tls_server("--proxy-headers")
    conn = https(srv, certs)
    try:
        conn.request("GET", "/p", headers={"X-Forwarded-Proto": "http"})
        resp = conn.getresponse()
        assert resp.read() == b"scheme=http version=1.1 path=/p"
        assert get(conn, "/q") == (200, b"scheme=https version=1.1 path=/q")
    finally:
        conn.close()


def test_alpn_h2_only_client_still_served(tls_server, certs):
    """A client offering only h2 gets no ALPN answer, not a failed handshake."""
    srv = tls_server()
    conn = https(srv, certs, alpn=("h2",))
    try:
        assert get(conn, "/x") == (200, b"scheme=https version=1.1 path=/x")
        assert conn.sock.selected_alpn_protocol() is None
    finally:
        conn.close()


def test_tls12_client(tls_server, certs):
    srv = tls_server()
    ctx = certs.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = http.client.HTTPSConnection("localhost", srv.port, timeout=10, context=ctx)
    try:
        assert get(conn, "/v")[0] == 200
        assert conn.sock.version() == "TLSv1.2"
    finally:
        conn.close()


def test_certificate_file_holding_the_key(start_server, certs):
    """uvicorn's --ssl-certfile alone: the key is in the same PEM file."""
    srv = wait_tls(start_server(APP, "--ssl-certfile", certs.both, wait=False), certs)
    conn = https(srv, certs)
    try:
        assert get(conn, "/")[0] == 200
    finally:
        conn.close()


def test_daphne_ssl_endpoint(start_server, certs, port):
    spec = "ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s" % (port, certs.key, certs.cert)
    srv = wait_tls(start_server(APP, "-e", spec, port=port, wait=False), certs)
    conn = https(srv, certs)
    try:
        assert get(conn, "/e") == (200, b"scheme=https version=1.1 path=/e")
    finally:
        conn.close()


def test_daphne_ssl_endpoint_with_chain_file(start_server, certs, port):
    """extraCertChainFile is Twisted's intermediate chain: sent after the
    server's certificate, so a client that trusts only the root accepts it.
    Without it the same client refuses the leaf."""
    spec = "ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s:extraCertChainFile=%s" % (
        port, certs.leaf_key, certs.leaf, certs.mid)
    srv = wait_tls(start_server(APP, "-e", spec, port=port, wait=False), certs)
    conn = https(srv, certs)
    try:
        assert get(conn, "/chain") == (200, b"scheme=https version=1.1 path=/chain")
    finally:
        conn.close()


def test_leaf_without_its_chain_is_refused_by_the_client(start_server, certs):
    srv = start_server(APP, "--ssl-certfile", certs.leaf, "--ssl-keyfile", certs.leaf_key,
                       wait=False)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", srv.port), 1).close()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(srv, certs).close()


def test_chain_file_without_certificates_is_a_clear_error(certs, port, tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    spec = "ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s:extraCertChainFile=%s" % (
        port, certs.leaf_key, certs.leaf, empty)
    out = run_cli(["-e", spec], APP)
    assert out.returncode == 1, out
    assert "no PEM certificate in the TLS certificate chain" in out.stderr, out.stderr


def test_large_response_and_upload(tls_server, certs):
    """20 MB each way: the response waits for a client that reads slowly at
    first (backpressure), the upload streams through the app."""
    srv = tls_server()
    n = 20 * 1000 * 1000
    sock = connect(srv, certs, timeout=30)
    try:
        sock.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
        time.sleep(1.0)  # the server meets a full socket buffer
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, body = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        body = bytearray(body)
        while len(body) < n:
            chunk = sock.recv(1 << 20)
            assert chunk, "connection closed after %d bytes" % len(body)
            body += chunk
        assert len(body) == n
        assert body == (PERIOD * (n // 251 + 1))[:n]
    finally:
        sock.close()

    data = os.urandom(1 << 20) * 20
    conn = https(srv, certs, timeout=60)
    try:
        status, body = get(conn, "/upload", body=data, method="POST")
        assert status == 200
        assert body == b"%d %s" % (len(data), hashlib.sha256(data).hexdigest().encode())
    finally:
        conn.close()


def test_workers_share_the_certificate(tls_server, certs):
    srv = tls_server("--workers", "2")
    for _ in range(6):
        conn = https(srv, certs)
        try:
            assert get(conn, "/w")[0] == 200
        finally:
            conn.close()


def test_client_certificates_with_ca(tls_server, certs):
    """--ssl-ca-certs: a client certificate from that CA is accepted, no
    certificate is accepted, one from elsewhere is refused."""
    srv = tls_server("--ssl-ca-certs", certs.ca)
    for client in (None, certs.client):
        conn = https(srv, certs, client_cert=client)
        try:
            assert get(conn, "/c")[0] == 200
        finally:
            conn.close()
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _cert(rogue_key, "rogue", _name("rogue"), rogue_key, False)
    path = _write(os.path.join(os.path.dirname(certs.ca), "rogue.pem"), rogue, rogue_key)
    conn = https(srv, certs, client_cert=path)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        try:
            get(conn, "/c")
        finally:
            conn.close()
    conn = https(srv, certs)
    try:
        assert get(conn, "/after")[0] == 200
    finally:
        conn.close()


def test_tls_on_unix_socket(start_server, certs, tmp_path):
    """TLS over a UNIX socket (a proxy that re-encrypts to a local socket)."""
    path = str(tmp_path / "tls.sock")
    srv = start_server(APP, *tls_args(certs), unix=path, wait=False)
    deadline = time.monotonic() + 20
    while True:
        assert srv.proc.poll() is None, srv.describe()
        try:
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.settimeout(5)
            raw.connect(path)
            break
        except OSError:
            raw.close()
            assert time.monotonic() < deadline, srv.describe()
            time.sleep(0.05)
    sock = certs.client_context().wrap_socket(raw, server_hostname="localhost")
    try:
        sock.sendall(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data
        assert data.endswith(b"scheme=https version=1.1 path=/u"), data
    finally:
        sock.close()


# ---------------------------------------------------------------------- WSS

def test_wss_echo_and_scheme(tls_server, certs):
    from websockets.sync.client import connect as ws_connect
    srv = tls_server()
    with ws_connect("wss://localhost:%d/echo" % srv.port, ssl=certs.client_context(alpn=None),
                    open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "scheme=wss"
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        big = os.urandom(800 * 1000)  # under the 1 MiB default message limit
        ws.send(big)
        assert ws.recv(timeout=30) == big


# ------------------------------------------------------------- bad clients

def test_handshake_never_completes(tls_server, certs):
    """A client that connects and says nothing is closed after
    --header-timeout; a TLS client meanwhile is served."""
    srv = tls_server("--header-timeout", "1")
    silent = socket.create_connection(("127.0.0.1", srv.port), 10)
    half = socket.create_connection(("127.0.0.1", srv.port), 10)
    try:
        # the first bytes of a ClientHello, then nothing
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        conn = https(srv, certs)
        try:
            assert get(conn, "/meanwhile")[0] == 200
        finally:
            conn.close()
        t0 = time.monotonic()
        assert closed_by_server(silent, 5), "silent client not closed"
        assert closed_by_server(half, 5), "half a ClientHello not closed"
        assert time.monotonic() - t0 < 4.5
    finally:
        silent.close()
        half.close()


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",  # plain HTTP to the TLS port
    bytes(range(256)) * 4,                          # not TLS at all
    b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff",     # a handshake record that is no ClientHello
])
def test_garbage_instead_of_client_hello(tls_server, certs, garbage):
    srv = tls_server("-v", "2")
    good = https(srv, certs)
    try:
        assert get(good, "/before")[0] == 200  # connected before, kept alive
        bad = socket.create_connection(("127.0.0.1", srv.port), 10)
        try:
            bad.sendall(garbage)
            assert closed_by_server(bad, 5), "garbage did not close the connection"
        finally:
            bad.close()
        assert get(good, "/after")[0] == 200
    finally:
        good.close()
    conn = https(srv, certs)
    try:
        assert get(conn, "/new")[0] == 200
    finally:
        conn.close()
    assert "TLS handshake failed" in srv.stderr() + srv.stdout()


def test_many_garbage_clients_concurrently(tls_server, certs):
    srv = tls_server()
    errors = []

    def bad():
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), 10)
            s.sendall(os.urandom(600))
            closed_by_server(s, 5)
            s.close()
        except OSError:
            pass

    def good():
        try:
            conn = https(srv, certs)
            for i in range(5):
                assert get(conn, "/g%d" % i)[0] == 200
            conn.close()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=bad) for _ in range(20)]
    threads += [threading.Thread(target=good) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


# ------------------------------------------------------------ start errors

def test_missing_certificate_is_a_clear_error(certs, tmp_path):
    missing = str(tmp_path / "nope.pem")
    out = run_cli(["--ssl-certfile", missing, "--ssl-keyfile", certs.key], APP)
    assert out.returncode == 1, out
    assert "cannot read the TLS certificate chain %s: No such file or directory" % missing \
        in out.stderr, out.stderr


def test_key_of_another_certificate_is_a_clear_error(certs):
    out = run_cli(["--ssl-certfile", certs.cert, "--ssl-keyfile", certs.other_key], APP)
    assert out.returncode == 1, out
    assert "does not match the certificate" in out.stderr, out.stderr


def test_garbage_certificate_is_a_clear_error(certs, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("this is not a certificate\n")
    out = run_cli(["--ssl-certfile", str(bad), "--ssl-keyfile", certs.key], APP)
    assert out.returncode == 1, out
    assert "cannot load the TLS certificate chain %s" % bad in out.stderr, out.stderr


def test_bad_endpoint_key_is_a_clear_error(certs, port):
    out = run_cli(["-e", "ssl:%d:privateKey=/nonexistent/key.pem:certKey=%s" % (port, certs.cert)],
                  APP)
    assert out.returncode == 1, out
    assert "/nonexistent/key.pem" in out.stderr, out.stderr


@pytest.mark.parametrize("args, message", [
    (["--ssl-keyfile", "k.pem"], "--ssl-keyfile needs --ssl-certfile"),
    (["--ssl-ca-certs", "ca.pem"], "--ssl-ca-certs needs --ssl-certfile"),
    (["--ssl-certfile", "c.pem", "--proxy-protocol"], "--proxy-protocol cannot be combined"),
])
def test_usage_errors(args, message):
    out = run_cli(args, APP)
    assert out.returncode == 2, out
    assert message in out.stderr, out.stderr


# ---------------------------------------------------------------- Chromium

def test_chromium_https_and_wss(tls_server, certs, tmp_path):
    """Chromium loads a page over HTTPS and opens a wss WebSocket, the test
    certificate trusted by its public key hash."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from cdp import chromium, close_page, open_page, run

    srv = tls_server()
    base = "https://127.0.0.1:%d" % srv.port

    async def scenario(devtools):
        page = await open_page(devtools)
        try:
            await page.goto(base + "/page")
            text = await page.js("document.body.innerText")
            assert text == "scheme=https version=1.1 path=/page", text
            assert await page.js("window.isSecureContext") is True
            got = await page.js("""new Promise((resolve, reject) => {
                const ws = new WebSocket("wss://127.0.0.1:%d/echo");
                const seen = [];
                ws.onmessage = (e) => {
                    seen.push(e.data);
                    if (seen.length === 1) ws.send("from chromium");
                    else { ws.close(); resolve(seen); }
                };
                ws.onerror = () => reject(new Error("websocket error"));
                setTimeout(() => reject(new Error("timeout")), 8000);
            })""" % srv.port)
            assert got == ["scheme=wss", "from chromium"], got
        finally:
            await close_page(devtools, page)

    flags = ["--ignore-certificate-errors-spki-list=" + certs.spki_sha256]
    with chromium(tmp_path / "profile", args=flags) as devtools:
        run(scenario(devtools), timeout=60)
