"""SIGHUP with --workers 2 on the Redis layer: native windows are closed
with 1012 "service restart", the page reconnects at once to a new worker
and receives signals again."""
import signal

import pytest
import websockets

from conftest import (TIMEOUT, Project, Server, open_window, run, signal_values, stop_clean,
                      wait_until)


def test_sighup_closes_native_windows_with_1012_and_they_come_back(tmp_path, native_db,
                                                                   redis_server):
    redis_server.command("FLUSHALL")
    project = Project(tmp_path, native_db, redis_url=redis_server.url, workers="thread")
    server = Server(project, "--workers", "2").start()
    try:
        wait_until(lambda: server.log().count(") ready") == 2, 30, what="two workers")
        old = set(server.children())

        async def scenario():
            windows = [await open_window(server, "/page/") for _ in range(4)]
            for w in windows:
                await w.heartbeat()
            server.proc.send_signal(signal.SIGHUP)
            for w in windows:
                with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                    await w.recv(TIMEOUT)
                assert ei.value.rcvd is not None, ei.value
                assert (ei.value.rcvd.code, ei.value.rcvd.reason) == (1012, "service restart")
            # reconnect at once, as the browser client does
            again = [await open_window(server, "/page/", cookies=w.cookies) for w in windows]
            wait_until(lambda: not set(server.children()) & old, 30,
                       what="the old workers to exit")
            # workers are replaced one at a time: a window that came back to
            # the old worker still serving was told 1012 in its turn, and
            # comes back once more, as the browser client does
            for i, w in enumerate(again):
                try:
                    await w.heartbeat()
                except websockets.exceptions.ConnectionClosed as e:
                    assert e.rcvd is not None and e.rcvd.code == 1012, e
                    again[i] = await open_window(server, "/page/", cookies=w.cookies)
            server.fire([{"to": "broadcast", "value": "after"}])
            for w in again:
                assert signal_values(await w.drain(expect=1)) == ["after"]
                await w.close()

        run(scenario())
    finally:
        stop_clean(server)
