"""The native df_websockets socket over TLS: the page is served over HTTPS
(Django sees a secure request: the dfwsurl cookie says wss://), the window
connects over wss, heartbeats are echoed by C and signals triggered from a
view reach it, through the TLS transport."""
import asyncio
import datetime
import http.client
import ipaddress
import ssl
from http.cookies import SimpleCookie
from urllib.parse import unquote_plus

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import TIMEOUT, Project, Server, run, signal_values, stop_clean


def make_certs(d):
    """A CA and a certificate for 127.0.0.1 signed by it: (ca, cert, key) paths."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject, issuer, public_key, signing_key, ca):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(public_key).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return b.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dfws native test CA")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = build(name, ca_name, key.public_key(), ca_key, False)
    paths = (d / "ca.pem", d / "cert.pem", d / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


class TlsServer(Server):
    """The conftest's Server, spoken to over HTTPS."""

    def __init__(self, project, ca, cert, key, *args):
        super().__init__(project, "--ssl-certfile", cert, "--ssl-keyfile", key, *args)
        self.ctx = ssl.create_default_context(cafile=ca)

    @property
    def origin(self):
        return "https://127.0.0.1:%d" % self.port

    def get(self, path, cookies=None, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=TIMEOUT,
                                           context=self.ctx)
        try:
            headers = dict(headers or {}, Host="127.0.0.1:%d" % self.port)
            if cookies:
                headers["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            jar = SimpleCookie()
            for value in resp.headers.get_all("Set-Cookie") or []:
                jar.load(value)
            return resp.status, resp.read(), jar
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, native_db):
    tmp = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_certs(tmp)
    project = Project(tmp, native_db, workers="thread")
    srv = TlsServer(project, ca, cert, key).start()
    assert "served natively" in srv.log()
    yield srv
    stop_clean(srv)


async def open_secure_window(server):
    status, body, jar = server.get("/page/")
    assert status == 200, body
    assert unquote_plus(jar["dfwsurl"].value) == "wss://127.0.0.1:%d/ws/" % server.port
    key = jar["dfwskey"].value
    ws = await websockets.connect(
        "wss://127.0.0.1:%d/ws/" % server.port, ssl=server.ctx, origin=server.origin,
        extra_headers={"Cookie": "dfwskey=%s" % key}, open_timeout=TIMEOUT,
        ping_interval=None, close_timeout=2)
    return key, ws


def test_native_socket_over_wss(server):
    async def scenario():
        key, ws = await open_secure_window(server)
        other_key, other = await open_secure_window(server)
        for _ in range(3):
            await ws.send("--heartbeat--")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "--heartbeat--"
        server.fire([{"to": "window", "key": key, "value": "over-tls"},
                     {"to": "broadcast", "value": "all"}])
        got = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(2)]
        assert signal_values(got) == ["all", "over-tls"]
        assert signal_values([await asyncio.wait_for(other.recv(), TIMEOUT)]) == ["all"]
        await ws.close()
        await other.close()

    run(scenario())


def test_plain_websocket_to_tls_port_is_closed(server):
    """A ws:// client on the TLS port fails its handshake; the port keeps
    serving TLS windows."""
    async def scenario():
        with pytest.raises((websockets.exceptions.WebSocketException, OSError,
                            asyncio.TimeoutError, EOFError)):
            await websockets.connect("ws://127.0.0.1:%d/ws/" % server.port,
                                     open_timeout=TIMEOUT)
        key, ws = await open_secure_window(server)
        await ws.send("--heartbeat--")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "--heartbeat--"
        await ws.close()

    run(scenario())
