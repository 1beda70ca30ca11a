"""The signal-call case table (tests/signal_calls.json) against a real
native endpoint: the cases marked "e2e" are sent by a real WebSocket client
to dfws-asgi (thread workers: C parses each call, then Python parses the text
it is handed again, with df_websockets.signal_call). An accepted call runs
its handler (native.echo answers with its value), a refused one runs
nothing, and the window keeps being served either way."""
import json
import os

import pytest

from conftest import Project, Server, open_window, run, stop_clean

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "signal_calls.json")
with open(TABLE, encoding="utf-8") as f:
    CASES = [c for c in json.load(f)["cases"] if c.get("e2e")]

# what the endpoint's log line says for each reason (C and Python alike)
LOGGED = {"invalid_json": "invalid JSON frame ignored", "not_a_call": "frame without signal ignored"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, native_db):
    project = Project(tmp_path_factory.mktemp("signal_calls"), native_db, workers="thread",
                      log_level="DEBUG")
    srv = Server(project, "-v", "2").start()
    assert "served natively (thread workers" in srv.log()
    yield srv
    stop_clean(srv)


def test_table_has_both_outcomes():
    assert sum("accepted" in c for c in CASES) >= 3
    assert sum("rejected" in c for c in CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_native_endpoint_runs_the_case(server, case):
    project = server.project
    log_before = len(server.log())

    async def scenario():
        window = await open_window(server, "/page/")
        await window.send(case["text"])
        if "accepted" in case:
            want = case["accepted"]
            assert want["signal"] == "native.echo"
            reply = await window.recv_json()
            assert (reply["signal"], reply["opts"]["value"]) == ("native.echoed", want["opts"]["value"])
            project.proof("native.echo", window.key, want["opts"]["value"])
        else:
            await window.heartbeat()  # next frame back is the heartbeat: nothing else
            assert await window.drain(0.5) == []
        # the window is still served
        await window.send(json.dumps({"signal": "native.echo", "opts": {"value": "after"}}))
        assert (await window.recv_json())["opts"]["value"] == "after"
        # nothing else ran: only native.echo's proofs (no native.secret, no native.noopts)
        others = [p for p in project.proofs("native.") if not p.startswith("native.echo--")]
        assert others == []
        await window.close()

    run(scenario())
    if "rejected" in case:
        assert LOGGED.get(case["rejected"], "invalid signal call ignored") in server.log()[log_before:]
