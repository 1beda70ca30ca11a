"""Native socket with CHANNEL_LAYERS on channels_redis.pubsub.RedisPubSubChannelLayer
and ``--workers 2``: the C layer speaks the pub/sub wire format, so triggers
from a separate ``manage.py shell`` process and from views (Python's pub/sub
layer) reach exactly the right windows on both workers, and a Redis restart
keeps windows connected and delivering (the C layer subscribes again)."""
import hashlib

import pytest

from conftest import Project, Server, drain_all, run, signal_values, stop_clean, wait_until
# The scenarios of the core layer's module, run again here against this
# module's server (pytest collects them in this namespace too).
from test_redis import (  # noqa: F401
    restart_keeps_windows,
    test_broadcast_reaches_windows_on_both_workers,
    test_shell_triggers_reach_exactly_the_right_windows,
    windows_on_both_workers,
)

BROADCAST_CHANNEL = "asgi__group__" + hashlib.sha256(b"-broadcast").hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory, native_db, redis_server):
    redis_server.command("FLUSHALL")
    project = Project(tmp_path_factory.mktemp("pubsub"), native_db, redis_url=redis_server.url,
                      workers="thread", redis_layer="pubsub")
    srv = Server(project, "--workers", "2").start()
    wait_until(lambda: srv.log().count("served natively") == 2, 20, what="both workers")
    assert "channel layer: Redis pub/sub (channels_redis.pubsub.RedisPubSubChannelLayer)" in srv.log()
    srv.redis = redis_server
    yield srv
    stop_clean(srv)


def subscribers(redis, channel):
    return int(redis.command("PUBSUB", "NUMSUB", channel).split()[1])


def test_membership_lives_in_the_workers(server):
    """No group key in Redis: each worker holds one subscription to the
    broadcast group's channel for all of its windows."""
    redis = server.redis

    async def scenario():
        windows, _ = await windows_on_both_workers(server, per_worker=2)
        wait_until(lambda: subscribers(redis, BROADCAST_CHANNEL) == 2, what="one subscription per worker")
        assert redis.command("KEYS", "asgi*").strip() == ""
        server.fire([{"to": "broadcast", "value": "from-view"}])
        for frames in await drain_all(windows, 1):
            assert signal_values(frames) == ["from-view"]
        for window in windows:
            await window.close()

    run(scenario())
    # the windows' own channels are gone from Redis with them
    wait_until(lambda: not [c for c in redis.command("PUBSUB", "CHANNELS").split()
                            if c.startswith("asgispecific.")], what="window channels unsubscribed")


def test_redis_restart_keeps_windows_and_delivers(server):
    """After the restart the workers subscribe again (Redis forgot them)."""
    redis = server.redis
    restart_keeps_windows(server, lambda windows: subscribers(redis, BROADCAST_CHANNEL) == 2,
                          "one subscription per worker")
    log = server.log()
    assert "subscribe connection): Server closed the connection; reconnecting" in log
    assert "subscribe connection): reconnected" in log
