"""EmbeddedChannelLayer inside dfws-asgi: the behaviours of Channels'
in-memory layer, served by the C layer (tests run in the server, see
apps/layerapp.py), and Channels consumers sharing it."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import websockets

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"


def binary():
    path = os.environ.get("DFWS_ASGI") or str(ROOT / ".venv/bin/dfws-asgi")
    if not os.path.exists(path):
        pytest.fail(f"dfws-asgi not found at {path}: build it first (scripts/build.sh)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("embedded") / "server.log"
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the server runs the installed dfws
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary(), "-p", str(port), "layerapp:app"], cwd=APPS, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/run/native", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("server exited: " + log.read_text())
            time.sleep(0.1)
    yield port
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text, text


CASES = ["native", "send_receive", "new_channel", "groups", "capacity", "group_send_skips_full",
         "expiry", "flush", "from_thread", "receive_in_thread", "send_from_thread"]


@pytest.mark.parametrize("case", CASES)
def test_layer_behaviour_inside_server(server, case):
    body = urllib.request.urlopen(f"http://127.0.0.1:{server}/run/{case}", timeout=10).read()
    result = json.loads(body)
    assert result["ok"], result.get("traceback")


@pytest.mark.parametrize("kinds", [("async", "async"), ("sync", "sync"), ("async", "sync")])
def test_consumers_share_the_layer(server, kinds):
    async def go():
        url = f"ws://127.0.0.1:{server}/chat/"
        async with websockets.connect(url + kinds[0] + "/") as a, \
                websockets.connect(url + kinds[1] + "/") as b:
            await asyncio.sleep(0.2)  # both joined the room
            await a.send("hello")
            got_a = await asyncio.wait_for(a.recv(), 5)
            got_b = await asyncio.wait_for(b.recv(), 5)
            assert got_a == f"{kinds[0]}:hello"
            assert got_b == f"{kinds[1]}:hello"
            await b.send("back")
            assert await asyncio.wait_for(a.recv(), 5) == f"{kinds[0]}:back"
            assert await asyncio.wait_for(b.recv(), 5) == f"{kinds[1]}:back"

    asyncio.run(go())
