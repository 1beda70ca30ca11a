"""Recovery of missed signals on the native socket, embedded (in-process C)
channel layer (docs/recovery.md): every delivery carries its topic group and
position; a window that reconnects with ``dfws_recover`` gets what it
missed, in order, once, then live deliveries; what cannot be recovered is
told with one ``df_websockets.recovery_failed``; the request is untrusted.
Triggers come from a view of the server (the C layer's history). Served by
the native socket in C, and by df_websockets' Python consumer
(``--no-native-websockets``) with the same rules."""
import asyncio
import json
import re
from urllib.parse import quote

import pytest

from conftest import (FAILED, TIMEOUT, Project, Server, connect_ws, nothing_more, open_window,
                      receive, recover_path, run, stop_clean)

HISTORY_SIZE = 8
MAX_BYTES = 3000


@pytest.fixture(scope="module", params=["native", "python"])
def server(request, tmp_path_factory, native_db):
    project = Project(tmp_path_factory.mktemp("recovery"), native_db, workers="thread",
                      log_level="DEBUG")
    project.env.update(NATIVE_HISTORY_SIZE=str(HISTORY_SIZE), NATIVE_RECOVERY_MAX_BYTES=str(MAX_BYTES))
    # a request line long enough for the parameter's own 8 KiB bound
    args = ["-v", "2", "--limit-request-line", "40000"]
    if request.param == "python":
        args.append("--no-native-websockets")
    srv = Server(project, *args).start()
    assert ("served natively" in srv.log()) == (request.param == "native")
    assert "channel layer: in-process" in srv.log()
    yield srv
    stop_clean(srv)


def note(positions, messages):
    """What the browser client keeps: the last position per topic."""
    for m in messages:
        if "pos" in m:
            positions[m["topic"]] = m["pos"]
    return positions


def test_reconnect_gets_exactly_what_it_missed_then_live(server):
    async def scenario():
        window = await open_window(server, "/page/")
        for i in range(3):
            server.fire([{"to": "window", "key": window.key, "value": "before %d" % i}])
        got = await receive(window, 3)
        assert [m["opts"]["value"] for m in got] == ["before 0", "before 1", "before 2"]
        # one topic, consecutive offsets of one epoch
        assert len({m["topic"] for m in got}) == 1
        epochs = {m["pos"].split("-")[0] for m in got}
        offsets = [int(m["pos"].split("-")[1]) for m in got]
        assert len(epochs) == 1 and offsets == list(range(offsets[0], offsets[0] + 3))
        positions = note({}, got)
        await window.close()
        for i in range(5):
            server.fire([{"to": "window", "key": window.key, "value": "missed %d" % i}])
        ws = await connect_ws(server, window.cookies, path=recover_path(positions))
        window.ws = ws
        got = await receive(window, 5)
        assert [m["opts"]["value"] for m in got] == ["missed %d" % i for i in range(5)]
        assert [int(m["pos"].split("-")[1]) for m in got] == list(range(offsets[2] + 1, offsets[2] + 6))
        await nothing_more(ws)
        server.fire([{"to": "window", "key": window.key, "value": "live"}])
        (live,) = await receive(window, 1)
        assert live["opts"]["value"] == "live"
        assert int(live["pos"].split("-")[1]) == offsets[2] + 6
        await ws.close()

    run(scenario())


def test_signal_to_window_and_broadcast_is_replayed_once(server):
    async def scenario():
        window = await open_window(server, "/page/")
        server.fire([{"to": "window+broadcast", "key": window.key, "value": "both 1"}])
        got = await receive(window, 2)  # live: once per topic, as upstream
        assert got[0]["signal_id"] == got[1]["signal_id"]
        assert {m["topic"] for m in got} and len({m["topic"] for m in got}) == 2
        positions = note({}, got)
        await window.close()
        server.fire([{"to": "window+broadcast", "key": window.key, "value": "both 2"}])
        window.ws = await connect_ws(server, window.cookies, path=recover_path(positions))
        (replayed,) = await receive(window, 1)
        assert replayed["opts"]["value"] == "both 2"
        await nothing_more(window.ws)
        await window.ws.close()

    run(scenario())


def test_group_the_window_does_not_hold_is_never_replayed(server):
    async def scenario():
        victim = await open_window(server, "/page/")
        server.fire([{"to": "window", "key": victim.key, "value": "secret 0"}])
        (first,) = await receive(victim, 1)
        victim_group = first["topic"]
        epoch = first["pos"].split("-")[0]
        server.fire([{"to": "window", "key": victim.key, "value": "secret 1"}])
        await receive(victim, 1)

        attacker = await open_window(server, "/page/")
        server.fire([{"to": "window", "key": attacker.key, "value": "mine"}])
        positions = note({}, await receive(attacker, 1))
        await attacker.close()
        # names the victim's group from its start, and an unknown one
        positions[victim_group] = "%s-0" % epoch
        positions["0" * 64] = "%s-0" % epoch
        attacker.ws = await connect_ws(server, attacker.cookies, path=recover_path(positions))
        await nothing_more(attacker.ws)  # nothing missed, nothing foreign, no failure
        server.fire([{"to": "window", "key": victim.key, "value": "secret 2"}])
        await nothing_more(attacker.ws)
        await attacker.ws.close()
        await victim.close()

    run(scenario())


def test_malformed_future_and_foreign_epoch_positions_fail_once(server):
    async def scenario():
        window = await open_window(server, "/page/?room=7")  # window, broadcast, room 7
        server.fire([{"to": "window", "key": window.key, "value": "w"},
                     {"to": "broadcast", "value": "b"},
                     {"to": "room", "room": 7, "value": "r"}])
        got = await receive(window, 3)
        by_value = {m["opts"]["value"]: m for m in got}
        positions = note({}, got)
        await window.close()
        w, b, r = (by_value[v]["topic"] for v in "wbr")
        epoch_b, offset_b = by_value["b"]["pos"].split("-")
        other = "ffffffff" if epoch_b != "ffffffff" else "00000000"
        positions[w] = "not-a-position"
        positions[b] = "%s-%d" % (epoch_b, int(offset_b) + 1000)  # from the future
        positions[r] = "%s-1" % other                              # another epoch
        window.ws = await connect_ws(server, window.cookies, path=recover_path(positions))
        (failed,) = await receive(window, 1)
        assert failed["signal"] == FAILED
        assert sorted(failed["opts"]["topics"]) == sorted([w, b, r])
        assert re.match(r"^[0-9a-f-]{36}$", failed["signal_id"])
        await nothing_more(window.ws)
        # the window keeps working
        server.fire([{"to": "window", "key": window.key, "value": "after"}])
        (live,) = await receive(window, 1)
        assert live["opts"]["value"] == "after"
        await window.ws.close()

    run(scenario())


@pytest.mark.parametrize("query", [
    "dfws_recover=%7B",                      # not JSON
    "dfws_recover=%5B%5D",                   # not an object
    "dfws_recover=%zz",                      # bad percent-encoding
    "dfws_recover=" + "a" * 9000,            # over the 8 KiB bound
    "dfws_recover=" + quote('{"a":{"b":{"c":1}}}'),  # nested too deep
])
def test_unreadable_request_fails_every_held_group(server, query):
    async def scenario():
        window = await open_window(server, "/page/")
        await window.close()
        ws = await connect_ws(server, window.cookies, path="/ws/?" + query)
        failed = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert failed["signal"] == FAILED
        assert len(failed["opts"]["topics"]) == 2  # the window's and broadcast
        await ws.send("--heartbeat--")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "--heartbeat--"
        await ws.close()

    run(scenario())


def test_gap_older_than_history_fails(server):
    async def scenario():
        window = await open_window(server, "/page/")
        server.fire([{"to": "window", "key": window.key, "value": "seen"}])
        positions = note({}, await receive(window, 1))
        await window.close()
        server.fire([{"to": "window", "key": window.key, "value": "gone %d" % i}
                     for i in range(HISTORY_SIZE + 1)])
        window.ws = await connect_ws(server, window.cookies, path=recover_path(positions))
        (failed,) = await receive(window, 1)
        assert failed["signal"] == FAILED
        assert failed["opts"]["topics"] == list(positions)
        await nothing_more(window.ws)
        await window.ws.close()

    run(scenario())


def test_byte_budget_fails_past_it(server):
    async def scenario():
        window = await open_window(server, "/page/")
        server.fire([{"to": "window", "key": window.key, "value": "seen"}])
        positions = note({}, await receive(window, 1))
        await window.close()
        big = "x" * (MAX_BYTES // 3)
        server.fire([{"to": "window", "key": window.key, "value": big + str(i)} for i in range(4)])
        window.ws = await connect_ws(server, window.cookies, path=recover_path(positions))
        (failed,) = await receive(window, 1)
        assert failed["signal"] == FAILED and failed["opts"]["topics"] == list(positions)
        await nothing_more(window.ws)
        await window.ws.close()

    run(scenario())


def test_upstream_client_without_the_parameter_keeps_working(server):
    async def scenario():
        window = await open_window(server, "/page/")
        await window.close()
        server.fire([{"to": "window", "key": window.key, "value": "while away"}])
        window.ws = await connect_ws(server, window.cookies)  # no dfws_recover
        await nothing_more(window.ws)
        server.fire([{"to": "window", "key": window.key, "value": "live"}])
        (live,) = await receive(window, 1)
        assert live["opts"]["value"] == "live"
        await window.heartbeat()
        await window.ws.close()

    run(scenario())
