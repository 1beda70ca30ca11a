"""docs/deploy.md's "Behind nginx", run as written (socket path, port and
folders changed): dfws-asgi on a UNIX socket with the documented flags, a
real nginx with the documented blocks on a non-default port. The page's
``dfwsurl`` cookie keeps the public port, the WebSocket goes through, the
client address and scheme are the forwarded ones (and cannot be forged), the
static files come from nginx. And ``Host $host`` instead of ``$http_host``
loses the port, as the documentation says."""
import json
import os
import re
import shlex
import shutil
import socket
import subprocess

import pytest

from conftest import (
    REPO, Project, dfws_binary, free_port, open_window, page_cookies, run, stop_process,
    wait_until,
)

DOC = os.path.join(REPO, "docs", "deploy.md")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def documented():
    """(dfws-asgi argv, nginx blocks) from the "## Behind nginx" section."""
    with open(DOC) as f:
        text = f.read()
    section = text.split("\n## Behind nginx\n", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```sh\n(.*?)\n```", section, re.S).group(1)
    config = re.search(r"```nginx\n(.*?)\n```", section, re.S).group(1)
    return shlex.split(command), config


class Nginx:
    def __init__(self, tmp, config, port):
        self.tmp = tmp
        self.port = port
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers may reach the socket
        paths = "".join("%s_temp_path %s/%s;\n" % (kind, tmp, kind)
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = tmp / "nginx.conf"
        conf.write_text("%sworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
                        "events { worker_connections 64; }\nhttp {\naccess_log off;\n%s%s\n}\n"
                        % (user, tmp, tmp, paths, config))
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)

        def up():
            assert self.proc.poll() is None, (tmp / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(up, 20, what="nginx on port %d" % port)

    def stop(self):
        stop_process(self.proc)


class Site:
    """The public side, nginx's port, as conftest's windows want it."""

    def __init__(self, port):
        self.port = port

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def get(self, path, cookies=None, headers=None):
        from conftest import Server

        return Server.get(self, path, cookies, headers)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, native_db):
    tmp = tmp_path_factory.mktemp("nginx")
    argv, config = documented()
    sock = str(tmp / "dfws.sock")
    argv = [dfws_binary() if w == "dfws-asgi" else sock if w == "/run/myproj/dfws.sock"
            else "nativeproj.asgi:application" if w == "myproj.asgi:application" else w
            for w in argv]
    project = Project(tmp, native_db)
    server = project.spawn("server", argv + ["--shutdown-timeout", "2"])
    wait_until(lambda: os.path.exists(sock) and "serving" in open(server.log_path).read(), 30,
               what="dfws-asgi on %s" % sock)
    static = tmp / "static"
    (static / "js").mkdir(parents=True)
    (static / "js" / "app.js").write_text("// from nginx\n")
    port = free_port()
    config = (config.replace("/run/myproj/dfws.sock", sock)
              .replace("listen 8080;", "listen 127.0.0.1:%d;" % port)
              .replace("/srv/myproj/static/", "%s/" % static))
    nginx = Nginx(tmp, config, port)
    yield Site(port), config, project, server
    nginx.stop()
    stop_process(server)
    project.stop_all()


def test_cookie_keeps_the_public_port_and_the_socket_goes_through(deployment):
    site, _, project, server = deployment
    # page_cookies checks dfwsurl == ws://127.0.0.1:<nginx's port>/ws/
    key, jar = page_cookies(site, "/page/")

    async def scenario():
        window = await open_window(site, "/page/")
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "via nginx"}}))
        reply = await window.recv_json()
        await window.heartbeat()
        await window.close()
        return reply["opts"]["value"]

    assert run(scenario()) == "via nginx"
    assert "served natively" in open(server.log_path).read()


def test_forwarded_client_and_scheme(deployment):
    site = deployment[0]
    status, body, _ = site.get("/page/")
    data = json.loads(body)
    assert (data["client"], data["secure"]) == ("127.0.0.1", False)
    # a client's own X-Forwarded-For is replaced by nginx
    status, body, _ = site.get("/page/", headers={"X-Forwarded-For": "203.0.113.9",
                                                  "X-Forwarded-Proto": "https"})
    data = json.loads(body)
    assert (data["client"], data["secure"]) == ("127.0.0.1", False)


def test_static_files_from_nginx(deployment):
    status, body, _ = deployment[0].get("/static/js/app.js")
    assert (status, body) == (200, b"// from nginx\n")


def test_host_without_the_port_breaks_the_cookie(deployment, tmp_path):
    """What the documentation warns about: ``$host`` drops the port."""
    _, config, _, _ = deployment
    port = free_port()
    assert "proxy_set_header Host $http_host;" in config
    wrong = re.sub(r"listen 127\.0\.0\.1:\d+;", "listen 127.0.0.1:%d;" % port,
                   config.replace("proxy_set_header Host $http_host;", "proxy_set_header Host $host;"))
    nginx = Nginx(tmp_path, wrong, port)
    try:
        from urllib.parse import unquote_plus

        status, _, jar = Site(port).get("/page/")
        assert status == 200
        assert unquote_plus(jar["dfwsurl"].value) == "ws://127.0.0.1/ws/"  # port 80: nobody
    finally:
        nginx.stop()
