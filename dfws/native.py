"""Python side of the native df_websockets socket.

The C server handles every frame of a df_websockets window itself; Python is
called once per window at connect (what df_websockets' consumer does: the
project's full middleware chain, the window key from the ``dfwskey`` cookie,
topics from the cache, the WindowInfo) and, outside ``channels`` worker mode,
for each signal call a browser makes, always off the loop thread.
"""
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import msgpack

logger = logging.getLogger("dfws.native")

_executors = {}
_loop = None


def _pool(kind="signal"):
    """The threads of ``kind``: "connect" (a window's one Python call) or
    "signal" (browser calls). Two pools, so that a flood of calls, each
    sender under the rate limit, queues behind itself and never in front of
    a new window's connect (whose number the C side bounds with
    --websocket-connect-capacity)."""
    executor = _executors.get(kind)
    if executor is None:
        workers = int(os.environ.get("DFWS_NATIVE_THREADS", "0")) or min(32, (os.cpu_count() or 1) + 4)
        executor = _executors[kind] = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="dfws-native-%s" % kind)
    return executor


def signal_queue_table():
    """{signal: [queue, ...]} for signals whose queues are static; None for a
    signal with a callable queue (Python must pick it per call)."""
    from df_websockets.decorators import REGISTERED_SIGNALS
    from df_websockets.tasks import import_signals_and_functions

    import_signals_and_functions()
    table = {}
    for name, connections in REGISTERED_SIGNALS.items():
        queues = []
        for connection in connections:
            if callable(connection.queue):
                queues = None
                break
            queue = str(connection.queue)
            if queue not in queues:
                queues.append(queue)
        table[name] = queues
    return table


def setup(server, loop, settings):
    """Serve WEBSOCKET_URL natively. Returns the URL served."""
    global _loop
    from df_websockets import ws_settings
    from df_websockets.constants import WORKER_CHANNEL

    _loop = loop
    mode = ws_settings.get_worker_mode()
    # fill the signal registry now, before the first browser call can race
    # the import of the apps' signals modules
    from df_websockets.tasks import import_signals_and_functions

    import_signals_and_functions()
    json_in_c = ws_settings.WEBSOCKET_SIGNAL_DECODER in ("json.JSONDecoder", "json.decoder.JSONDecoder")
    channels_mode = mode == WORKER_CHANNEL
    table = json.dumps(signal_queue_table()) if channels_mode else None
    url = ws_settings.WEBSOCKET_URL
    from df_websockets import history

    size, ttl, max_bytes = ws_settings.get_history_settings()
    server.enable_native(url, channels_mode, json_in_c, table, connect, signal,
                         size, ttl, max_bytes, history.script("append"), history.script("read"))
    logger.info(
        "df_websockets socket %s served natively (%s workers, %s)",
        url, mode, "signal calls dispatched in C" if channels_mode else "signal calls run in Python",
    )
    return url


# ---- connect ------------------------------------------------------------------


def _origin_allowed(scope):
    from df_websockets.routing import AllowedHostsOrigin
    from urllib.parse import urlparse

    origin = None
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = value.decode("latin1")
            break
    if origin is None:
        return True
    parsed = urlparse(origin.lower())
    if not parsed.hostname:
        return False
    return AllowedHostsOrigin(None).valid_origin(parsed)


def _connect_sync(scope):
    """df_websockets' consumer connect, in a worker thread. Returns
    (window_info_dict, groups) or None to refuse."""
    from django.db import close_old_connections

    from df_websockets.constants import WEBSOCKET_KEY_COOKIE_NAME
    from df_websockets.consumers import build_http_request, get_handler, get_handshake_topics
    from df_websockets.window_info import WindowInfo

    close_old_connections()
    try:
        if not _origin_allowed(scope):
            logger.warning("df_websockets window refused: Origin not in ALLOWED_HOSTS")
            return None
        request = build_http_request(scope)
        get_handler().get_response(request)
        request.window_key = request.COOKIES.get(WEBSOCKET_KEY_COOKIE_NAME, "")
        groups = list(get_handshake_topics(request))
        info = WindowInfo.from_request(request).to_dict()
        return info, groups
    finally:
        close_old_connections()


# Exceptions that mean "a service the window needs is unreachable" (the
# cache or the database down), by class name so that no client library has
# to be imported: redis-py's ConnectionError and TimeoutError are not
# OSErrors, Django's OperationalError wraps the database driver's.
_UNAVAILABLE = {"ConnectionError", "TimeoutError", "OperationalError", "InterfaceError"}


def _unavailable(exc):
    return isinstance(exc, OSError) or any(c.__name__ in _UNAVAILABLE for c in type(exc).__mro__)


def _answer(window, future):
    try:
        result = future.result()
    except Exception as exc:
        if _unavailable(exc):
            # an outage, not a bug: one line naming it, no traceback
            logger.warning("df_websockets window refused (503): a service it needs is "
                           "unavailable: %s: %s", type(exc).__name__, exc)
            window.refuse(503)
        else:
            logger.exception("df_websockets window refused (500): connect failed")
            window.refuse(500)
        return
    if result is None:
        window.refuse()
        return
    info, groups = result
    try:
        packed = msgpack.packb(info, use_bin_type=True)
    except Exception:
        logger.exception("df_websockets window refused (500): WindowInfo is not serializable")
        window.refuse(500)
        return
    if groups:
        window.accept(packed, groups)
        return
    _tell_unknown_window(window, packed, info.get("window_key") or "")


def _tell_unknown_window(window, packed, window_key):
    """A window whose key has no topics would be connected but deaf: it is
    accepted into a group of its own, only to receive the notice that makes
    the browser client get a new key (and close this socket). The C server
    has no way to close a window with a code yet (the Python consumer closes
    it with UNKNOWN_WINDOW_CLOSE_CODE)."""
    import uuid

    from df_websockets.consumers import log_unknown_window, unknown_window_notice
    from df_websockets.utils import valid_topic_name

    from dfws.binding import load_extension

    log_unknown_window(window_key)
    group = valid_topic_name("-dfws.unknown_window.%s" % uuid.uuid4().hex)
    window.accept(packed, [group])
    load_extension().layer_group_send(
        group, {"type": "ws_message", "message": unknown_window_notice()})


def connect(scope, window):
    """Called by C on the loop thread for each new window."""
    future = _loop.run_in_executor(_pool("connect"), _connect_sync, scope)
    future.add_done_callback(lambda f: _answer(window, f))


# ---- signal calls that C does not dispatch itself ---------------------------------


def _parse_call(text):
    from df_websockets import tasks

    try:
        msg = json.loads(text, cls=tasks.get_signal_decoder())
    except (ValueError, RecursionError) as exc:
        # RecursionError: the C side refuses calls nested deeper than 64
        # levels; a custom decoder may still recurse more per level
        logger.warning("invalid JSON frame ignored (%s): %.200r", exc, text)
        return None
    if not isinstance(msg, dict) or "signal" not in msg:
        logger.debug("frame without signal ignored: %.200r", text)
        return None
    try:
        opts = msg.get("opts")
        if opts is None:
            opts = {}
        if not isinstance(opts, dict) or not isinstance(msg["signal"], str):
            raise ValueError("signal must be a string and opts an object")
        celery = {k: int(msg.get(k) or 0) or None for k in ("eta", "expires", "countdown")}
    except (TypeError, ValueError) as exc:
        logger.warning("invalid signal call ignored (%s): %.200r", exc, text)
        return None
    return msg["signal"], opts, celery


def _signal_sync(info, text):
    from django.db import close_old_connections

    from df_websockets import tasks
    from df_websockets.window_info import WindowInfo

    parsed = _parse_call(text)
    if parsed is None:
        return
    name, opts, celery = parsed
    close_old_connections()
    try:
        from df_websockets.decorators import REGISTERED_SIGNALS

        if name not in REGISTERED_SIGNALS:
            logger.warning("unknown signal %.100r from the browser ignored", name)
            return
        tasks._trigger_signal(
            WindowInfo.from_dict(info), name, to=[tasks.SERVER], kwargs=opts,
            from_client=True, **celery,
        )
    except ValueError as exc:
        logger.warning("signal %r from the browser refused: %s", name, exc)
    except Exception:
        logger.exception("signal %r from the browser failed", name)
    finally:
        close_old_connections()


def signal(window, text):
    """Called by C on the loop thread for a browser call it does not dispatch."""
    info = window.window_info
    if info is None:
        return
    _pool("signal").submit(_signal_sync, info, text).add_done_callback(_log_failure)


def _log_failure(future):
    """An exception _signal_sync did not handle would die with its future."""
    exc = future.exception()
    if exc is not None:
        logger.error("signal call from the browser failed", exc_info=exc)
