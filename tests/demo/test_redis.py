"""The demo with DFWS_DEMO_REDIS_URL: ``manage.py demo_broadcast`` run in
another process reaches a channels_redis group listener through a real
redis-server (started on a free loopback port for this module), and its
counter lives in the shared Redis cache.

Run from the repository root: python3 -m pytest tests/demo -q
"""
import asyncio
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
from channels_redis.core import RedisChannelLayer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_DIR = os.path.join(REPO_ROOT, "demo")
PYTHON = sys.executable  # the stack under test: the Python running pytest
BROADCAST_GROUP = hashlib.sha256(b"-broadcast").hexdigest()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = shutil.which("redis-server")
    assert server, "redis-server is required (Debian package redis-server)"
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield "redis://127.0.0.1:%d/0" % port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _manage(redis_url, *args):
    env = dict(os.environ, DFWS_DEMO_REDIS_URL=redis_url)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [PYTHON, "manage.py"] + list(args), cwd=DEMO_DIR, env=env,
        capture_output=True, text=True, timeout=60,
    )


def test_demo_broadcast_command_reaches_redis_group(redis_url):
    async def scenario():
        layer = RedisChannelLayer(hosts=[redis_url])
        channel = await layer.new_channel()
        await layer.group_add(BROADCAST_GROUP, channel)
        try:
            results = []
            for content in ("hello from a shell", None):
                args = ["demo_broadcast"] + ([content] if content else [])
                result = await asyncio.to_thread(_manage, redis_url, *args)
                assert result.returncode == 0, result.stderr
                assert "DFWS_DEMO_REDIS_URL is not set" not in result.stderr
                results.append(result.stdout)
                event = await asyncio.wait_for(layer.receive(channel), 10)
                assert event["type"] == "ws_message"
                message = json.loads(event["message"])
                # with its position in the topic's history in Redis (docs/recovery.md)
                assert set(message) == {"signal", "opts", "signal_id", "topic", "pos"}
                assert message["topic"] == BROADCAST_GROUP
                assert re.match(r"^[0-9a-f]{8}-[1-9][0-9]*$", message["pos"])
                assert message["signal"] == "html.text"
                expected = content or "shell 1"  # counter kept in the Redis cache
                assert message["opts"] == {"selector": "#broadcast-target", "content": expected}
            assert "broadcast sent: hello from a shell" in results[0]
            # a third process sees the counter of the second one
            result = await asyncio.to_thread(_manage, redis_url, "demo_broadcast")
            assert "broadcast sent: shell 2" in result.stdout
            event = await asyncio.wait_for(layer.receive(channel), 10)
            assert json.loads(event["message"])["opts"]["content"] == "shell 2"
        finally:
            await layer.group_discard(BROADCAST_GROUP, channel)
            await layer.flush()
            await layer.close_pools()

    asyncio.run(scenario())


def test_check_passes_with_redis_settings(redis_url):
    result = _manage(redis_url, "check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_demo_broadcast_command_reports_unreachable_redis():
    result = _manage("redis://127.0.0.1:%d/0" % _free_port(), "demo_broadcast", "lost")
    assert result.returncode == 1
    assert "CommandError: cannot broadcast: " in result.stderr
    assert "Traceback" not in result.stderr
