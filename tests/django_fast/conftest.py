"""Two dfws-asgi servers on the battery project (site/): the Django fast path
on (the default) and off, each with its own copy of one migrated SQLite
database holding the user the login scenario signs in."""
import http.client
import os
import shutil
import signal
import subprocess
import sys
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))  # dfws_testsupport
from dfws_testsupport.binary import dfws_binary  # noqa: E402
from dfws_testsupport.net import free_port, port_open, wait_until  # noqa: E402

SITE = os.path.join(HERE, "site")


def site_env(db):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(DJANGO_SETTINGS_MODULE="fastsite.settings", FASTSITE_DB=str(db),
               PYTHONPATH=SITE, PYTHONUNBUFFERED="1")
    return env


class Server:
    def __init__(self, db, log, *args):
        self.port = free_port()
        self.log_path = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [dfws_binary(), "-b", "127.0.0.1", "-p", str(self.port), "-v", "1", *args,
                 "fastsite.asgi:application"],
                cwd=SITE, env=site_env(db), stdout=out, stderr=subprocess.STDOUT)

        def listening():
            assert self.proc.poll() is None, self.log()
            return port_open(self.port, timeout=1)

        wait_until(listening, 30, 0.1, "dfws-asgi on port %d (its log: %s)" % (self.port, log))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("django_fast")
    db = tmp / "base.sqlite3"
    env = site_env(db)
    for argv in (["migrate", "-v", "0"],
                 ["shell", "-c", "from django.contrib.auth.models import User; "
                  "User.objects.create_user('alice', password='battery-pass')"]):
        subprocess.run([sys.executable, "manage.py", *argv], cwd=SITE, env=env, check=True,
                       timeout=120)
    made = []
    for name, args in (("fast", ()), ("asgi", ("--no-django-fast-path",))):
        shutil.copy(db, tmp / (name + ".sqlite3"))
        made.append(Server(tmp / (name + ".sqlite3"), tmp / (name + ".log"), *args))
    yield made
    for server in made:
        assert server.stop() == 0, server.log()


class Client:
    """A browser-like client: one cookie jar, a new connection per request
    (no state carried by the connection), raw header lists (duplicates kept)."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def request(self, method, path, body=None, headers=()):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            names = {name.lower() for name, _ in headers}
            if "host" not in names:
                conn.putheader("Host", "127.0.0.1:%d" % self.port)
            if self.cookies:
                conn.putheader("Cookie", "; ".join("%s=%s" % kv for kv in self.cookies.items()))
            for name, value in headers:
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            raw = resp.getheaders()
        finally:
            conn.close()
        for name, value in raw:
            if name.lower() == "set-cookie":
                jar = SimpleCookie()
                jar.load(value)
                for key, morsel in jar.items():
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[key] = morsel.value
                    else:
                        self.cookies.pop(key, None)
        return resp.status, raw, data

    def get(self, path, headers=()):
        return self.request("GET", path, headers=headers)

    def post_form(self, path, fields, headers=()):
        body = urlencode(fields).encode()
        return self.request("POST", path, body=body, headers=[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Referer", "http://127.0.0.1:%d/form/" % self.port), *headers])
