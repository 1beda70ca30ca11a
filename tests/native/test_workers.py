"""A browser call reaches a ``@signal(is_allowed_to=everyone)`` handler in
each worker mode (thread, process, channels, celery), with the Redis channel
layer and a django_redis cache; a server-side-only signal never runs; a call
without ``opts`` means ``{}``. Each handler leaves a proof file (with its pid
and the WindowInfo it got) and triggers ``native.echoed`` back to WINDOW, which
must reach the window through Redis."""
import asyncio
import json
import os
import re
import time

import pytest

from conftest import PYTHON, Project, Server, login_window, open_window, run, wait_until

MODES = ["thread", "process", "channels", "celery"]
WINDOW_INFO_KEYS = ["window_key", "user_pk", "username", "is_superuser", "is_staff", "is_active",
                    "csrf_cookie", "perms", "user_agent", "user_set", "language_code"]
# the one traceback a browser may legitimately cause: a Celery option outside celery mode
BROWSER_FAILURE = re.compile(
    r"signal '[\w.]+' from the browser failed\nTraceback .*?\nValueError: Unable to use eta, "
    r"countdown or expires in signals when not using Celery\.\n", re.S)


from conftest import proc_children


def descendants(pid):
    found, todo = set(), [pid]
    while todo:
        for child in proc_children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture(scope="module", params=MODES)
def setup(request, tmp_path_factory, native_db, redis_server):
    """One server (and worker) per mode, shared by the tests of that mode; the
    first test of each mode sees a server that has not run any signal yet."""
    mode = request.param
    redis_server.command("FLUSHALL")
    project = Project(tmp_path_factory.mktemp(mode), native_db, redis_url=redis_server.url,
                      workers=mode)
    worker = None
    if mode == "channels":
        worker = project.spawn("worker", [PYTHON, "manage.py", "worker", "-Q", "celery"])
        wait_until(lambda: "listening on celery" in project.logs(), 30, what="channels worker")
    elif mode == "celery":
        worker = project.spawn("worker", [
            PYTHON, "manage.py", "worker", "-Q", "celery", "-P", "solo", "-c", "1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"])
        wait_until(lambda: " ready." in project.logs(), 60, what="celery worker")
    server = Server(project).start()
    log = server.log()
    assert "channel layer: Redis" in log
    assert "served natively (%s workers" % mode in log
    yield mode, server, worker
    forked = descendants(server.proc.pid)  # process-mode pools
    code = server.stop()
    wait_until(lambda: not [pid for pid in forked if os.path.exists("/proc/%d" % pid)
                            and "zombie" not in open("/proc/%d/status" % pid).read()],
               10, what="the server's pool processes to exit with it")
    project.stop_all()
    assert code == 0, "dfws-asgi exit status %s" % code
    logs = BROWSER_FAILURE.sub("", project.logs())
    assert "Traceback" not in logs, logs


def user_pk(username):
    from conftest import user_pk_of

    return user_pk_of(username)


def test_first_calls_back_to_back_all_run(setup):
    """A page flushing its buffered calls as soon as its socket opens, on a
    server that has not handled any signal yet: every call runs."""
    mode, server, worker = setup
    project = server.project

    async def scenario():
        window = await open_window(server, "/page/")
        values = ["first-%d" % i for i in range(3)]
        for value in values:
            await window.send(json.dumps({"signal": "native.echo", "opts": {"value": value}}))
        replies = []
        for _ in values:
            try:
                replies.append((await window.recv_json(timeout=6))["opts"]["value"])
            except asyncio.TimeoutError:
                break
        ran = [name.split("--")[2][:-5] for name in project.proofs("native.echo--" + window.key)]
        assert (sorted(replies), sorted(ran)) == (values, values), \
            "calls lost on a fresh server (replies, handlers that ran)"
        await window.close()

    run(scenario())


def test_browser_call_reaches_handler(setup):
    mode, server, worker = setup
    project = server.project

    async def scenario():
        window = await login_window(server, "carol")
        other = await open_window(server, "/page/")
        await window.heartbeat()
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": mode}}))
        reply = await window.recv_json(timeout=10)
        assert reply["signal"] == "native.echoed"
        proof = project.proof("native.echo", window.key, mode)
        assert reply["opts"] == {"value": mode, "pid": proof["pid"]}
        assert proof["kwargs"] == {"value": mode, "reply": True}
        assert proof["window_key"] == window.key
        # the WindowInfo (built at connect, carried to the worker) has the user
        assert proof["user_pk"] == user_pk("carol")
        info = proof["info"]
        assert list(info) == WINDOW_INFO_KEYS
        assert (info["window_key"], info["username"], info["is_active"]) == (
            window.key, "carol", True)
        # Django's get_language_from_request: LANGUAGE_CODE en-us -> supported variant "en"
        assert info["user_agent"].startswith("Python/") and info["language_code"] == "en"
        if mode == "thread":
            assert proof["pid"] == server.proc.pid
        elif mode == "process":
            assert proof["pid"] in descendants(server.proc.pid)
        else:
            assert proof["pid"] == worker.pid or proof["pid"] in descendants(worker.pid)
        assert await other.drain(0.3) == []
        await window.close()
        await other.close()

    run(scenario())


def test_server_side_signal_not_run_and_missing_opts(setup):
    mode, server, worker = setup
    project = server.project

    async def scenario():
        window = await open_window(server, "/page/")
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "warm"}}))
        assert (await window.recv_json(timeout=10))["opts"]["value"] == "warm"
        await window.send(json.dumps({"signal": "native.secret", "opts": {"value": "s"}}))
        # without "opts": refused, as upstream (tests/signal_calls.json)
        await window.send(json.dumps({"signal": "native.noopts"}))
        await window.send(json.dumps({"signal": "native.noopts", "opts": {}}))
        reply = await window.recv_json(timeout=10)
        assert (reply["signal"], reply["opts"]["value"]) == ("native.echoed", "noopts")
        assert project.proof("native.noopts", window.key, "none")["kwargs"] == {}
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "last"}}))
        reply = await window.recv_json(timeout=10)
        assert reply["opts"]["value"] == "last"
        assert await window.drain(0.8) == []  # one noopts reply, not two
        assert project.proofs("native.secret") == []
        await window.heartbeat()
        await window.close()

    run(scenario())
    if mode == "channels":
        # C built the process.signal message; the worker refused the call
        assert "refused" in project.logs()


def test_celery_options_from_browser(setup):
    """``countdown`` in a browser call: honoured in celery mode, refused (logged,
    dropped, connection kept) in the other modes."""
    mode, server, worker = setup
    project = server.project

    async def scenario():
        window = await open_window(server, "/page/")
        start = time.monotonic()
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "later"},
                                      "countdown": 2}))
        await window.heartbeat()
        if mode == "celery":
            reply = await window.recv_json(timeout=10)
            assert reply["opts"]["value"] == "later"
            assert time.monotonic() - start >= 1.5
        else:
            await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "now"}}))
            assert (await window.recv_json(timeout=10))["opts"]["value"] == "now"
            assert await window.drain(2.5) == []
            assert project.proofs("native.echo--%s--later" % window.key) == []
        await window.close()

    run(scenario())
    if mode != "celery":
        assert "Celery" in project.logs()


def test_unknown_signal_and_bad_calls_dropped(setup):
    mode, server, worker = setup

    async def scenario():
        window = await open_window(server, "/page/")
        for frame in ['{"signal": "no.such.signal", "opts": {}}',
                      '{"signal": "native.echo", "opts": [1]}', "{]", b"\x01"]:
            await window.send(frame)
            await window.heartbeat()
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "fine"}}))
        assert (await window.recv_json(timeout=10))["opts"]["value"] == "fine"
        await window.close()

    run(scenario())
    log = server.log()
    if mode == "channels":  # dispatched by C, which knows the signals
        assert "unknown signal no.such.signal ignored" in log
    assert "invalid signal call ignored" in log and "invalid JSON frame ignored" in log


def test_process_mode_with_in_process_layer_is_not_silent(tmp_path, native_db):
    """``process`` workers and no CHANNEL_LAYERS (the embedded in-process
    layer): the handler runs in a forked pool process, which cannot reach the
    server's in-process layer. Its WINDOW message must then either arrive or
    be reported (at start-up or when sent), never vanish silently. (The
    cache is a file cache: with a LocMemCache the server refuses to start,
    see test_startup.py.)"""
    project = Project(tmp_path, native_db, workers="process")
    project.env["NATIVE_FILE_CACHE"] = str(tmp_path / "cache")
    server = Server(project).start()
    try:
        async def scenario():
            window = await open_window(server, "/page/")
            await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "fork"}}))
            proof = project.proof("native.echo", window.key, "fork")
            assert proof["pid"] != server.proc.pid
            frames = await window.drain(1.5)
            await window.close()
            return frames

        frames = run(scenario())
    finally:
        server.stop()
        project.stop_all()
    if frames:
        assert json.loads(frames[0])["opts"]["value"] == "fork"
        return
    reported = [line for line in project.logs().splitlines()
                if re.search(r"WARNING|ERROR", line) and re.search(r"process", line, re.I)
                and re.search(r"layer|redis", line, re.I)]
    assert reported, "the handler's message to its window was lost without a word in the log"
