"""Channels consumers for the daphne-compatible path.

``DFConsumer`` serves ``WEBSOCKET_URL``; ``BackgroundConsumer`` runs
``process.signal`` messages (channels worker mode); ``DFChannelNameRouter``
sends every ``channel`` scope to it.
"""
import json
import logging
import time
import uuid
from functools import lru_cache

from asgiref.compatibility import guarantee_single_callable
from asgiref.sync import async_to_sync
from channels.consumer import SyncConsumer
from channels.generic.websocket import WebsocketConsumer
from channels.routing import ChannelNameRouter
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponse, QueryDict

from df_websockets import history, tasks, window_keys, ws_settings
from df_websockets.constants import (
    UNKNOWN_WINDOW_CLOSE_CODE,
    UNKNOWN_WINDOW_REASON,
    UNKNOWN_WINDOW_SIGNAL,
    WEBSOCKET_KEY_COOKIE_NAME,
)
from df_websockets.utils import valid_topic_name
from df_websockets.window_info import WindowInfo

logger = logging.getLogger("df_websockets.signals")
HEARTBEAT_MESSAGE = "--heartbeat--"
# seconds after a recovery during which live deliveries already replayed are
# dropped (they were queued in the channel layer while it was read)
RECOVERY_DEDUP_SECONDS = 10


# upstream's module-level _signal_encoder, signal_decoder and topic_serializer
__getattr__, __dir__ = tasks._setting_attributes(
    globals(), ["_signal_encoder", "signal_decoder", "topic_serializer"])


def unknown_window_notice():
    """The text frame that tells a browser window its key has no topics
    (the client then gets a new key, see npm/README.md)."""
    return json.dumps({
        "signal": UNKNOWN_WINDOW_SIGNAL,
        "opts": {"code": UNKNOWN_WINDOW_CLOSE_CODE, "reason": UNKNOWN_WINDOW_REASON},
        "signal_id": str(uuid.uuid4()),
    })


def log_unknown_window(window_key):
    """Say why a window that connected will receive nothing."""
    alias = ws_settings.WEBSOCKET_CACHE_BACKEND
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "?")
    logger.warning(
        "websocket window %s has no topics in CACHES[%r] (%s): told to get a new window key. "
        "set_websocket_topics() stores them when its page is rendered; they are missing when "
        "that page came from a process that does not share this cache (a LocMemCache with "
        "several processes), after a restart emptied it, or after WEBSOCKET_CACHE_EXPIRE.",
        ("with key %s..." % window_key[:6]) if window_key else "without a dfwskey cookie",
        alias, backend.rpartition(".")[2],
    )


def get_handshake_topics(request):
    """Group names for a handshake (middleware chain run, ``window_key`` set
    from the cookie): the window's topics when the handshake presents what
    its page was served with (df_websockets.window_keys), else none."""
    # the cache is read even without a key: a cache that is down is an
    # outage (503 on the native socket), whatever the window presents
    if not window_keys.handshake_allowed(request):
        return []
    return get_websocket_topics(request)


def get_websocket_topics(request):
    """Group names of the window ``request`` (a request or WindowInfo with a
    ``window_key``), read from the cache written by ``set_websocket_topics``."""
    window_key = getattr(request, "window_key", None)
    if window_key is None:
        return []
    cache_key = "%s%s" % (ws_settings.WEBSOCKET_CACHE_PREFIX, window_key)
    raw = caches[ws_settings.WEBSOCKET_CACHE_BACKEND].get(cache_key, "[]")
    try:
        topics = json.loads(raw)
    except (TypeError, ValueError):
        logger.warning("invalid topics in the cache for %s: %r", cache_key, raw)
        return []
    logger.debug("websocket %s is bound to topics %s", cache_key, topics)
    return [valid_topic_name(x) for x in topics]


class WebsocketHandler(BaseHandler):
    """Runs the project's MIDDLEWARE chain; the 'view' returns an empty 200."""

    def _get_response(self, request):
        return HttpResponse(status=200)


@lru_cache()
def get_handler():
    handler = WebsocketHandler()
    handler.load_middleware()
    return handler


def build_http_request(scope):
    """An HttpRequest (GET) equivalent to a websocket handshake scope."""
    request = HttpRequest()
    query_string = scope.get("query_string", b"")
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin1")
    request.method = "GET"
    request.path = request.path_info = scope.get("path", "/")
    request.GET = QueryDict(query_string=query_string)
    for name_bytes, value_bytes in scope.get("headers", []):
        name = name_bytes.decode("latin1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = "HTTP_%s" % name
        value = value_bytes.decode("latin1")
        if name in request.META:
            request.META[name] += "," + value
        else:
            request.META[name] = value
    client = scope.get("client")
    if client:
        request.META["REMOTE_ADDR"] = client[0]
        request.META["REMOTE_HOST"] = client[0]
        request.META["REMOTE_PORT"] = client[1]
    server = scope.get("server")
    if server:
        request.META["SERVER_NAME"] = server[0]
        request.META["SERVER_PORT"] = str(server[1])
    else:
        request.META["SERVER_NAME"] = "unknown"
        request.META["SERVER_PORT"] = "0"
    request.META["HTTP_X_REQUESTED_WITH"] = "XMLHttpRequest"
    request.COOKIES = dict(scope.get("cookies") or {})
    if not request.COOKIES and "HTTP_COOKIE" in request.META:
        from django.http.cookie import parse_cookie

        request.COOKIES = parse_cookie(request.META["HTTP_COOKIE"])
    return request


class DFConsumer(WebsocketConsumer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.window_info = None
        self.topics = []
        self.recovery = None
        self.recovery_until = 0.0

    def build_http_request(self):
        return build_http_request(self.scope)

    def connect(self):
        try:
            request = self.build_http_request()
            get_handler().get_response(request)
            request.window_key = request.COOKIES.get(WEBSOCKET_KEY_COOKIE_NAME, "")
            self.topics = get_handshake_topics(request)
            self.window_info = WindowInfo.from_request(request)
            if not self.channel_layer:
                raise ImproperlyConfigured("a channel layer must be configured (CHANNEL_LAYERS).")
            for topic in self.topics:
                async_to_sync(self.channel_layer.group_add)(topic, self.channel_name)
        except Exception:
            logger.exception("websocket connection refused")
            self.close()
            return
        self.accept()
        if not self.topics:
            log_unknown_window(request.window_key)
            self.send(text_data=unknown_window_notice())
            self.close(code=UNKNOWN_WINDOW_CLOSE_CODE, reason=UNKNOWN_WINDOW_REASON)
            return
        self.recover()

    def recover(self):
        """Replay what the window missed (docs/recovery.md): it names its
        last positions in the dfws_recover query parameter. Live deliveries
        wait in the channel layer meanwhile (this consumer handles one event
        at a time); those replayed already are dropped in ws_message."""
        raw = history.request_param(self.scope.get("query_string", b""))
        if raw is None:
            return
        try:
            recovery = async_to_sync(history.recover)(self.channel_layer, raw, self.topics)
        except Exception:
            logger.exception("recovery of missed signals failed")
            recovery = history.Recovery()
            recovery.failed = list(self.topics)
        if recovery is None:
            return
        for text in recovery.messages:
            self.send(text_data=text)
        if recovery.failed:
            self.send(text_data=history.failed_message(dict.fromkeys(recovery.failed)))
        if recovery.replayed:
            self.recovery = recovery
            self.recovery_until = time.monotonic() + RECOVERY_DEDUP_SECONDS

    def disconnect(self, close_code):
        if self.channel_layer:
            for topic in self.topics:
                async_to_sync(self.channel_layer.group_discard)(topic, self.channel_name)

    def ws_message(self, event):
        """Group message ``{"type": "ws_message", "message": str}`` -> text frame."""
        if self.recovery is not None:
            if time.monotonic() > self.recovery_until:
                self.recovery = None
            elif self.recovery.skip(event["message"]):
                return
        self.send(text_data=event["message"])

    def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            logger.warning("binary websocket frame ignored")
            return
        if text_data == HEARTBEAT_MESSAGE:
            self.send(text_data=HEARTBEAT_MESSAGE)
            return
        try:
            msg = json.loads(text_data, cls=tasks.get_signal_decoder())
        except ValueError as e:
            logger.warning("invalid JSON frame ignored (%s): %.200r", e, text_data)
            return
        if not isinstance(msg, dict) or "signal" not in msg:
            logger.debug("frame without signal ignored: %.200r", text_data)
            return
        try:
            kwargs = msg["opts"]
            if not isinstance(kwargs, dict):
                raise ValueError("opts must be an object")
            signal_name = msg["signal"]
            eta = int(msg.get("eta") or 0) or None
            expires = int(msg.get("expires") or 0) or None
            countdown = int(msg.get("countdown") or 0) or None
        except (KeyError, TypeError, ValueError) as e:
            logger.warning("invalid signal call ignored (%s): %.200r", e, text_data)
            return
        try:
            tasks._trigger_signal(
                self.window_info, signal_name, to=[tasks.SERVER], kwargs=kwargs,
                from_client=True, eta=eta, expires=expires, countdown=countdown,
            )
        except Exception:
            logger.exception("signal %r from the browser failed", signal_name)


class BackgroundConsumer(SyncConsumer):
    """Handles ``{"type": "process.signal", "args": [7 items]}`` messages."""

    def process_signal(self, data):
        try:
            (signal_name, window_info_dict, kwargs, from_client,
             serialized_client_topics, to_server, queue) = data["args"]
        except (KeyError, TypeError, ValueError):
            logger.error("invalid process.signal message: %.200r", data)
            return
        tasks.process_task(
            signal_name, window_info_dict, kwargs=kwargs, from_client=from_client,
            serialized_client_topics=serialized_client_topics, to_server=to_server,
            queue=queue, celery_request=None,
        )


class DFChannelNameRouter(ChannelNameRouter):
    """Every ``channel`` scope (whatever its name) goes to BackgroundConsumer."""

    def __init__(self):
        super().__init__({})
        self.application = BackgroundConsumer.as_asgi()

    async def __call__(self, scope, receive, send):
        if "channel" not in scope:
            raise ValueError("DFChannelNameRouter got a scope without a 'channel' key.")
        application = guarantee_single_callable(self.application)
        return await application(scope, receive, send)
