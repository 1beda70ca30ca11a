"""The embedded in-process layer through layer_tool serve (no Redis)."""


def test_memory_layer_end_to_end(serve):
    c = serve({"kind": "memory", "capacity": 2})
    ch = c.cmd("listen-new", ["room"])["channel"]
    assert c.cmd("group-send", "room", {"type": "ws_message", "message": "hi"})["ok"]
    assert c.message() == {"event": "message", "channel": ch,
                           "message": {"type": "ws_message", "message": "hi"}}
    assert c.cmd("send", ch, {"type": "direct", "b": {"$bin": "ff00"}})["ok"]
    assert c.message()["message"] == {"type": "direct", "b": {"$bin": "ff00"}}
    # capacity on a queue nobody listens to
    assert c.cmd("send", "idle.q", {"type": "t"})["ok"]
    assert c.cmd("send", "idle.q", {"type": "t"})["ok"]
    r = c.cmd("send", "idle.q", {"type": "t"})
    assert r["code"] == -2 and r["error"] == "channel full"
    assert c.cmd("listen", "idle.q")["ok"]
    assert [c.message()["channel"] for _ in range(2)] == ["idle.q", "idle.q"]
    assert c.cmd("group-discard", "room", ch)["ok"]
    assert c.cmd("group-send", "room", {"type": "nobody"})["ok"]
    c.no_message(0.3)
    bad = c.cmd("send", "bad name", {"type": "t"})
    assert bad["code"] == -1
    st = c.cmd("stats")
    assert st["received"] == 4
