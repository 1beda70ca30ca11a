"""Several hosts, nothing lost (issue 15, item 3): two dfws-asgi hosts with
``--workers 2`` each, two Redis shards (channels_redis' consistent hashing:
groups and process queues spread over both), a Celery worker and a Channels
worker. Windows on both hosts; broadcasts triggered from a view on host A, a
view on host B, a ``manage.py shell`` script, a Celery task and a Channels
worker: every window receives every one exactly once.

Run twice: with every role on a loopback address of its own (always), and
with every role in a network namespace of its own (conftest.py)."""
import asyncio
import http.client
import json
import os
from http.cookies import SimpleCookie
from urllib.parse import quote, unquote_plus

import pytest
import websockets

from conftest import HERE, Shard, make_net, native

APP = "nativeproj.asgi:application"


class Host:
    """dfws-asgi --workers 2 on a host (an address, maybe a namespace)."""

    def __init__(self, net, project, role):
        self.net = net
        self.project = project
        self.role = role
        self.addr = net.addr(role)
        self.port = native.free_port() if net.kind == "loopback" else 8000
        argv = net.prefix(role) + [native.dfws_binary(), "-b", self.addr, "-p", str(self.port), "-v", "1",
                                   "--shutdown-timeout", "2", "--workers", "2", APP]
        self.proc = project.spawn(role, argv)

    @property
    def origin(self):
        return "http://%s:%d" % (self.addr, self.port)

    def log(self):
        with open(self.proc.log_path, "rb") as f:
            return f.read().decode("utf8", "replace")

    def get(self, path, cookies=None):
        with self.net.client():
            conn = http.client.HTTPConnection(self.addr, self.port, timeout=native.TIMEOUT)
            try:
                headers = {"Host": "%s:%d" % (self.addr, self.port)}
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

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (self.role, self.proc.returncode, self.log()))
            try:
                return self.get("/pid/")[0] == 200
            except OSError:
                return False
        native.wait_until(ready, 40, what="dfws-asgi on %s" % self.role)
        native.wait_until(lambda: self.log().count("served natively") == 2, 20, what="both workers of " + self.role)

    def fire(self, value):
        status, body, _ = self.get("/trigger/?specs=" + quote(json.dumps([{"to": "broadcast", "value": value}])))
        assert status == 200, body

    async def open_window(self):
        status, body, jar = self.get("/page/")
        assert status == 200, body
        key = json.loads(body)["window_key"]
        assert unquote_plus(jar["dfwsurl"].value) == "ws://%s:%d/ws/" % (self.addr, self.port)
        cookies = {k: m.value for k, m in jar.items()}
        with self.net.client():
            ws = await websockets.connect(
                "ws://%s:%d/ws/" % (self.addr, self.port), origin=self.origin,
                extra_headers={"Cookie": "; ".join("%s=%s" % kv for kv in cookies.items())},
                open_timeout=native.TIMEOUT, ping_interval=None, close_timeout=2)
        return native.Window(key, cookies, ws)

    def stop(self):
        return native.stop_process(self.proc)


@pytest.fixture(params=["loopback", "netns"])
def topology(request, tmp_path_factory, native_db):
    net = make_net(request.param)
    tmp = tmp_path_factory.mktemp("multihost-" + request.param)
    shards, hosts, project = [], [], None
    try:
        shards = [Shard(net, tmp, "shard0"), Shard(net, tmp, "shard1")]
        project = native.Project(tmp, native_db, redis_url=shards[0].url,
                                 cache_url=shards[0].url + "/1")
        project.env.update({
            "DJANGO_SETTINGS_MODULE": "mhsettings",
            "PYTHONPATH": os.pathsep.join([HERE, native.PROJ]),
            "LAYER_HOSTS_JSON": json.dumps([s.url for s in shards]),
        })
        hosts = [Host(net, project, "hosta"), Host(net, project, "hostb")]
        workers = net.prefix("workers")
        project.spawn("celery", workers + [native.PYTHON, "manage.py", "worker", "-Q", "celery", "-P", "solo",
                                           "-c", "1", "--without-gossip", "--without-mingle",
                                           "--without-heartbeat", "-l", "INFO"],
                      {"NATIVE_WORKERS": "celery"})
        project.spawn("channels", workers + [native.PYTHON, "manage.py", "worker", "-Q", "celery"],
                      {"NATIVE_WORKERS": "channels"})
        for host in hosts:
            host.wait_ready()
            assert "channel layer: Redis" in host.log()
        native.wait_until(lambda: " ready." in project.logs(), 60, what="the Celery worker")
        native.wait_until(lambda: "listening on celery" in project.logs(), 60, what="the Channels worker")
        yield net, shards, hosts, project
        for host in hosts:
            assert host.stop() == 0, host.log()
        logs = project.logs()
        assert "Traceback" not in logs, logs
    finally:
        for host in hosts:
            host.stop()
        if project is not None:
            project.stop_all()
        for shard in shards:
            shard.stop()
        net.close()


def run_script(net, project, code, workers="thread"):
    """manage.py shell -c code, in the workers' namespace, in worker mode ``workers``."""
    env = dict(project.env, NATIVE_WORKERS=workers)
    import subprocess

    res = subprocess.run(net.prefix("workers") + [native.PYTHON, "manage.py", "shell", "-c", code],
                         cwd=native.PROJ, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


RELAY = ("from df_websockets.tasks import SERVER, trigger; from df_websockets.window_info import WindowInfo; "
         "trigger(WindowInfo(), 'mh.relay', to=[SERVER], value=%r)")


def test_every_window_on_every_host_gets_every_trigger_once(topology):
    net, shards, hosts, project = topology

    async def scenario():
        windows = []
        for host in hosts:  # a few per host, opened together so both workers get some
            windows += await asyncio.gather(*(host.open_window() for _ in range(4)))
        # both shards carry group members (the groups hash over both)
        members = sum(int(s.cli("EVAL", "return #redis.call('KEYS', 'asgi:group:*')", "0") or 0)
                      for s in shards)
        assert members > 0
        hosts[0].fire("view-a")
        hosts[1].fire("view-b")
        run_script(net, project, "from nativeapp.fire import fire; fire([{'to': 'broadcast', 'value': 'shell'}])")
        run_script(net, project, RELAY % "celery", workers="celery")
        run_script(net, project, RELAY % "channels", workers="channels")
        # a Channels worker polls each shard in turn (channels_redis' receive
        # of a plain channel), up to brpop_timeout (5 s) on each: be patient
        await asyncio.get_running_loop().run_in_executor(None, lambda: native.wait_until(
            lambda: len([n for n in os.listdir(project.out) if n.startswith("relay--")]) == 2, 30,
            what="the relays run by the Celery worker and the Channels worker"))
        expected = sorted(["view-a", "view-b", "shell", "celery", "channels"])
        frames = await native.drain_all(windows, len(expected), quiet=1.5)
        for window, got in zip(windows, frames):
            assert native.signal_values(got) == expected, window.key
        # the relays ran in the workers, not in the script
        relays = [n for n in os.listdir(project.out) if n.startswith("relay--")]
        assert sorted(n.split("--")[1] for n in relays) == ["celery", "channels"], relays
        for w in windows:
            await w.heartbeat()
            await w.close()

    native.run(scenario(), timeout=120)
    # each shard holds some group keys: the layer sharded across both
    keys = [s.cli("EVAL", "return #redis.call('KEYS', 'asgi*')", "0") for s in shards]
    assert all(k.isdigit() for k in keys), keys
