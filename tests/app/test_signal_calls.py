"""The signal-call case table (tests/signal_calls.json), which the C parser
(tests/c/test_signal_call.c) and the native endpoint
(tests/native/test_signal_calls.py) run too: here through
df_websockets.signal_call.parse, then through the Channels consumer
(DFConsumer.receive), which must dispatch exactly the accepted calls."""
import json
import logging
import os
from unittest import mock

import pytest

from df_websockets import signal_call, tasks
from test_ws_consumer import communicator, open_page, run

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "signal_calls.json")
with open(TABLE, encoding="utf-8") as f:
    CASES = json.load(f)["cases"]


def expected(case):
    return {k: case[k] for k in ("accepted", "rejected") if k in case}


def outcome(text, decoder=None):
    try:
        call = signal_call.parse(text, decoder)
    except signal_call.SignalCallError as exc:
        assert exc.reason in signal_call.REASONS and exc.detail
        return {"rejected": exc.reason}
    return {"accepted": call._asdict()}


def test_table_is_read():
    assert len(CASES) >= 40
    assert all(len(expected(c)) == 1 for c in CASES)
    assert {c["rejected"] for c in CASES if "rejected" in c} == set(signal_call.REASONS)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_parse(case):
    assert outcome(case["text"]) == expected(case)
    # WEBSOCKET_SIGNAL_DECODER's default, named explicitly, reads the same
    assert outcome(case["text"], json.JSONDecoder) == expected(case)


def test_parse_or_log_levels(caplog):
    with caplog.at_level(logging.DEBUG, logger="df_websockets.signals"):
        assert signal_call.parse_or_log('{"signal": "a.b", "opts": {}}') == ("a.b", {}, None, None, None)
        assert signal_call.parse_or_log("[1]") is None
        assert signal_call.parse_or_log("nope") is None
        assert signal_call.parse_or_log('{"signal": "a.b"}') is None
    levels = [(r.levelname, r.getMessage().split(" (")[0].split(":")[0]) for r in caplog.records]
    assert levels == [("DEBUG", "frame without signal ignored"),
                      ("WARNING", "invalid JSON frame ignored"),
                      ("WARNING", "invalid signal call ignored")]


def test_depth_scan_matches_the_c_one():
    assert signal_call.MAX_DEPTH == 64
    assert not signal_call.too_deep("[" * 64)
    assert signal_call.too_deep("[" * 65)
    assert signal_call.too_deep("[" * 3, 2)
    assert not signal_call.too_deep('["' + "[" * 100 + '"]')
    assert not signal_call.too_deep('["\\"' + "[" * 100 + '"]')
    assert signal_call.too_deep('["\\\\"' + "[" * 100 + "]")
    assert signal_call.too_deep("]]]" + "[" * 65)


@pytest.mark.django_db(transaction=True)
def test_channels_consumer_runs_the_table():
    """One connection, every case in turn: an accepted call reaches
    _trigger_signal with the normalized fields, a refused one does not, and
    the connection keeps answering heartbeats throughout."""
    key, cookie = open_page()

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        with mock.patch.object(tasks, "_trigger_signal") as patched:
            for case in CASES:
                patched.reset_mock()
                # send_input: send_to() refuses an empty text frame
                await comm.send_input({"type": "websocket.receive", "text": case["text"]})
                await comm.send_to(text_data="--heartbeat--")
                assert await comm.receive_from(5) == "--heartbeat--", case["name"]
                if "accepted" in case:
                    want = case["accepted"]
                    assert patched.call_count == 1, case["name"]
                    args, kwargs = patched.call_args
                    assert args[1] == want["signal"], case["name"]
                    assert kwargs == {
                        "to": [tasks.SERVER], "kwargs": want["opts"], "from_client": True,
                        "eta": want["eta"], "expires": want["expires"], "countdown": want["countdown"],
                    }, case["name"]
                else:
                    assert patched.call_count == 0, case["name"]
            assert await comm.receive_nothing(0.1)
        await comm.disconnect()

    run(scenario)
