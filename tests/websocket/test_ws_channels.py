"""A Django Channels project (Debian's channels 4.0, Django 3.2) served by
dfws-asgi unchanged: chat rooms through the in-memory channel layer, with a
sync WebsocketConsumer and an AsyncWebsocketConsumer behind
AuthMiddlewareStack(URLRouter(...)), and the session user in scope["user"]."""
import asyncio
import json
import os
import subprocess

import pytest
import websockets

from conftest import APPS, PYTHON, http_exchange, run, server_env, ws_connect

pytestmark = pytest.mark.ref("uvicorn", "daphne")

PROJECT = os.path.join(APPS, "chatproj")


@pytest.fixture(scope="module")
def chat(module_server_factory, tmp_path_factory):
    dbdir = tmp_path_factory.mktemp("chatdb")
    db = str(dbdir / "chat.sqlite3")
    env = server_env(None)
    env["CHAT_DB"] = db
    done = subprocess.run([PYTHON, "setup_db.py"], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    srv = module_server_factory("chatproj.asgi:application", cwd=PROJECT,
                                extra_env={"CHAT_DB": db})
    srv.session_key = done.stdout.strip().splitlines()[-1]
    return srv


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def test_http_side_served(chat):
    r = http_exchange(chat.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and r.body == b"chat http ok"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_two_clients_in_one_room(chat, kind):
    async def go():
        url = chat.url("/chat/%s/lobby-%s/" % (kind, kind))
        other = chat.url("/chat/%s/elsewhere/" % kind)
        async with ws_connect(url) as a, ws_connect(url) as b, ws_connect(other) as c:
            for ws in (a, b, c):
                assert await recv_json(ws) == {"type": "hello", "kind": kind,
                                               "user": "anonymous"}
            await a.send("hi from a")
            for ws in (a, b):
                assert await recv_json(ws) == {"type": "message", "text": "hi from a",
                                               "user": "anonymous"}
            await b.send("caf\u00e9 from b")
            for ws in (a, b):
                assert await recv_json(ws) == {"type": "message", "text": "caf\u00e9 from b",
                                               "user": "anonymous"}
            # the other room saw nothing
            await c.send("only c")
            assert (await recv_json(c))["text"] == "only c"
            # b leaves: the room keeps working for a
            await b.close()
            await a.send("alone")
            assert (await recv_json(a))["text"] == "alone"
    run(go())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_many_messages_between_two_clients(chat, kind):
    async def go():
        url = chat.url("/chat/%s/busy-%s/" % (kind, kind))
        async with ws_connect(url) as a, ws_connect(url) as b:
            await recv_json(a)
            await recv_json(b)
            for i in range(50):
                await a.send("n%d" % i)
            for ws in (a, b):
                got = [(await recv_json(ws))["text"] for _ in range(50)]
                assert got == ["n%d" % i for i in range(50)]
    run(go())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_session_user_reaches_scope(chat, kind):
    async def go():
        url = chat.url("/chat/%s/auth-%s/" % (kind, kind))
        cookie = [("Cookie", "sessionid=%s" % chat.session_key)]
        bogus = [("Cookie", "sessionid=notavalidsessionkey0123456789abcd")]
        async with ws_connect(url, extra_headers=cookie) as alice, \
                ws_connect(url, extra_headers=bogus) as anon:
            assert await recv_json(alice) == {"type": "hello", "kind": kind, "user": "alice"}
            assert await recv_json(anon) == {"type": "hello", "kind": kind,
                                             "user": "anonymous"}
            await alice.send("signed")
            for ws in (alice, anon):
                assert await recv_json(ws) == {"type": "message", "text": "signed",
                                               "user": "alice"}
    run(go())


def test_unrouted_path_is_refused(chat):
    async def go():
        with pytest.raises((websockets.exceptions.InvalidStatusCode,
                            websockets.exceptions.InvalidHandshake,
                            websockets.exceptions.ConnectionClosed)):
            async with ws_connect(chat.url("/nowhere/")) as ws:
                await ws.recv()
    run(go())
    # and the server is still serving the chat
    async def again():
        async with ws_connect(chat.url("/chat/async/after/")) as ws:
            assert (await recv_json(ws))["kind"] == "async"
    run(again())
