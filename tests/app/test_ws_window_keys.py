"""Window keys are bound to the session their page was served with
(df_websockets.window_keys, docs/df_websockets.md "Threat model"): the
daphne-compatible consumer path, Django's database sessions."""
import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client

from df_websockets import ws_settings
from test_ws_consumer import communicator

pytestmark = pytest.mark.django_db(transaction=True)


def page(client, path="/topics/", **extra):
    response = client.get(path, HTTP_HOST="example.com:8000", **extra)
    assert response.status_code == 200
    return response.cookies["dfwskey"].value


def cookie_header(client, key):
    jar = {name: morsel.value for name, morsel in client.cookies.items()}
    jar["dfwskey"] = key
    return "; ".join("%s=%s" % kv for kv in jar.items()).encode()


def handshake(cookie):
    """Connect; 'joined' when the window got its topics, 'unknown' when told
    to get a new key (close 4004)."""
    async def scenario():
        comm = communicator(cookie)
        connected, _ = await comm.connect()
        assert connected
        if await comm.receive_nothing(0.2):
            await comm.disconnect()
            return "joined"
        notice = await comm.receive_json_from(2)
        assert notice["signal"] == "df_websockets.unknown_window"
        closed = await comm.receive_output(2)
        assert closed["code"] == 4004
        return "unknown"

    return async_to_sync(scenario)()


def logged_in_client(username):
    user, _ = get_user_model().objects.get_or_create(username=username)
    client = Client()
    client.force_login(user)
    return client


def test_key_of_a_logged_in_window_needs_its_session(caplog):
    alice = logged_in_client("alice")
    key = page(alice)
    assert handshake(cookie_header(alice, key)) == "joined"
    assert handshake(("dfwskey=%s" % key).encode()) == "unknown"
    bob = logged_in_client("bob")
    assert handshake(cookie_header(bob, key)) == "unknown"
    assert "the handshake presents no session, its page was served with a session" in caplog.text
    assert "presents another session, its page was served with another session" in caplog.text
    assert key not in caplog.text


def test_anonymous_window_without_a_session_keeps_working():
    client = Client()
    key = page(client)
    assert "sessionid" not in client.cookies
    assert handshake(("dfwskey=%s" % key).encode()) == "joined"
    # someone else's session with that key: no
    assert handshake(cookie_header(logged_in_client("carol"), key)) == "unknown"


def test_session_created_by_the_page_is_the_binding():
    client = Client()
    key = page(client, "/session-topics/")
    assert "sessionid" in client.cookies
    assert handshake(cookie_header(client, key)) == "joined"
    assert handshake(("dfwskey=%s" % key).encode()) == "unknown"


def test_login_after_set_websocket_topics_binds_the_new_session():
    client = Client()
    key = page(client, "/topics-then-login/")
    assert handshake(cookie_header(client, key)) == "joined"


def test_xhr_cannot_take_over_another_sessions_key():
    """An XMLHttpRequest names its window in DFWSKEY: naming a key of another
    session gets a key of its own, the other window's topics stay."""
    alice = logged_in_client("alice")
    key = page(alice)
    cache = caches[ws_settings.WEBSOCKET_CACHE_BACKEND]
    topics = cache.get(ws_settings.WEBSOCKET_CACHE_PREFIX + key)
    mallory = logged_in_client("mallory")
    new_key = page(mallory, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_DFWSKEY=key)
    assert new_key != key
    assert cache.get(ws_settings.WEBSOCKET_CACHE_PREFIX + key) == topics
    assert handshake(cookie_header(mallory, key)) == "unknown"
    assert handshake(cookie_header(alice, key)) == "joined"
    # the window's own XMLHttpRequests keep their key
    assert page(alice, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_DFWSKEY=key) == key
