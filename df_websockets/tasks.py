"""Trigger signals: run Python handlers in workers and/or send them to browser windows.

Public API (upstream-compatible): ``SERVER``, ``SESSION``, ``WINDOW``, ``USER``,
``BROADCAST``, ``SYNC``, ``set_websocket_topics``, ``trigger``,
``trigger_signal``, ``call_task``, ``process_task``, ``get_expected_queues``,
``import_signals_and_functions``, the Celery task ``_server_signal_call``, and
the async helpers projects' tests use: ``await _trigger_signal_async(...)``
and ``await _call_ws_signal(...)``.
"""
import asyncio
import importlib
import importlib.util
import inspect
import json
import logging
import os
import pkgutil
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import lru_cache

from asgiref.sync import async_to_sync, sync_to_async
from django.apps import apps
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from df_websockets import window_keys, ws_settings
from df_websockets.constants import (
    WORKER_ALIASES,
    WORKER_CELERY,
    WORKER_CHANNEL,
    WORKER_PROCESS,
    WORKER_THREAD,
)
from df_websockets.decorators import REGISTERED_SIGNALS, DynamicQueueName, SignalConnection  # noqa: F401
from df_websockets.load import load_celery
from df_websockets.utils import valid_topic_name
from df_websockets.window_info import WindowInfo, middlewares

logger = logging.getLogger("df_websockets.signals")


class Constant:
    """A named sentinel: printed by its name, compared by identity."""

    def __init__(self, name):
        self.name = name

    def __str__(self):
        return self.name

    def __repr__(self):
        return self.name

    def __reduce__(self):  # pickling keeps identity (process pools)
        return self.name


SERVER = Constant("SERVER")
SESSION = Constant("SESSION")
WINDOW = Constant("WINDOW")
USER = Constant("USER")
BROADCAST = Constant("BROADCAST")
SYNC = Constant("SYNC")


@lru_cache(maxsize=8)
def _import_cached(path):
    return import_string(path)


def get_signal_encoder():
    return _import_cached(ws_settings.WEBSOCKET_SIGNAL_ENCODER)


def get_signal_decoder():
    return _import_cached(ws_settings.WEBSOCKET_SIGNAL_DECODER)


def get_topic_serializer():
    return _import_cached(ws_settings.WEBSOCKET_TOPIC_SERIALIZER)


def _topic_serializer(window_info, obj):
    return get_topic_serializer()(window_info, obj)


# upstream imports these from the settings once, as module-level objects;
# here they are read from the current settings at each access
_SETTING_OBJECTS = {
    "_signal_encoder": get_signal_encoder,
    "signal_decoder": get_signal_decoder,
    "topic_serializer": get_topic_serializer,
}


def _setting_attributes(module_globals, names):
    """``__getattr__`` and ``__dir__`` of a module exposing ``names`` (keys
    of _SETTING_OBJECTS) as attributes."""

    def module_getattr(name):
        if name in names:
            return _SETTING_OBJECTS[name]()
        raise AttributeError("module %r has no attribute %r" % (module_globals["__name__"], name))

    def module_dir():
        return sorted(list(module_globals) + list(names))

    return module_getattr, module_dir


__getattr__, __dir__ = _setting_attributes(globals(), ["_signal_encoder"])


def _as_target_list(to):
    """Any non-list value is one target (a bare str or SYNC included)."""
    if to is None:
        return [USER]
    if isinstance(to, (list, tuple, set, frozenset)):
        return list(to)
    return [to]


# ---------------------------------------------------------------------------
def set_websocket_topics(request, *topics):
    """Subscribe the window rendered by this request to ``topics``.

    Accepts ``set_websocket_topics(request, a, b)`` and the README's
    ``set_websocket_topics(request, [a, b])``. ``WINDOW`` and ``BROADCAST``
    (and ``USER`` for authenticated users) are always added.
    """
    if not hasattr(request, "window_key"):
        raise ImproperlyConfigured("WebsocketMiddleware middleware is required.")
    request.has_websocket_topics = True
    binding = window_keys.request_binding(request, save_new_session=True)
    stored = window_keys.stored_binding(request.window_key)
    if stored is not None and stored != binding:
        # a key that belongs to another session (an XMLHttpRequest may name
        # any key in its DFWSKEY header): this window gets a key of its own
        from df_websockets.middleware import new_window_key

        logger.warning("window key %s... belongs to another session: a new key is used",
                       request.window_key[:6])
        request.window_key = new_window_key()
    flat = []
    for topic in topics:
        if isinstance(topic, (list, tuple, set, frozenset)):
            flat.extend(topic)
        else:
            flat.append(topic)
    window_info = WindowInfo.from_request(request)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        flat.append(USER)
    flat += [WINDOW, BROADCAST]
    topic_strings = []
    for topic in flat:
        if topic is SERVER:
            continue
        serialized = _topic_serializer(window_info, topic)
        if serialized is not None and serialized not in topic_strings:
            topic_strings.append(serialized)
    cache = caches[ws_settings.WEBSOCKET_CACHE_BACKEND]
    cache_key = "%s%s" % (ws_settings.WEBSOCKET_CACHE_PREFIX, request.window_key)
    cache.set(cache_key, json.dumps(topic_strings), ws_settings.WEBSOCKET_CACHE_EXPIRE)
    request.websocket_binding = window_keys.store_binding(request, binding)
    logger.debug("window %s bound to topics %s", request.window_key, topic_strings)


def trigger(window_info, signal_name, to=None, **kwargs):
    """``trigger(request, "my.signal", to=[SERVER, WINDOW], arg=1)``."""
    return _trigger_signal(window_info, signal_name, to=to, kwargs=kwargs, from_client=False)


def trigger_signal(
    window_info, signal_name, to=None, kwargs=None, countdown=None, expires=None, eta=None
):
    """Like :func:`trigger`, with explicit ``kwargs`` and Celery options."""
    return _trigger_signal(
        window_info, signal_name, to=to, kwargs=kwargs, countdown=countdown,
        expires=expires, eta=eta, from_client=False,
    )


def _trigger_signal(
    window_info, signal_name, to=None, kwargs=None, countdown=None, expires=None,
    eta=None, from_client=False,
):
    import_signals_and_functions()
    window_info = WindowInfo.from_request(window_info)
    if kwargs is None:
        kwargs = {}
    to_server = False
    to_sync = False
    client_topics = []
    for target in _as_target_list(to):
        if target is SERVER:
            to_server = True
        elif target is SYNC:
            to_sync = True
        else:
            serialized = _topic_serializer(window_info, target)
            if serialized is not None:
                client_topics.append(serialized)
    if (to_server or to_sync) and signal_name not in REGISTERED_SIGNALS:
        logger.debug('Signal "%s" is unknown by the server.', signal_name)
    celery_options = {}
    for name, value in (("eta", eta), ("expires", expires), ("countdown", countdown)):
        if value:
            celery_options[name] = value
    mode = ws_settings.get_worker_mode()
    if celery_options and mode != WORKER_CELERY:
        raise ValueError(
            "Unable to use eta, countdown or expires in signals when not using Celery."
        )
    queues = []
    for connection in REGISTERED_SIGNALS.get(signal_name, []):
        queue = connection.get_queue(window_info, kwargs)
        if queue not in queues:
            queues.append(queue)
    window_info_dict = window_info.to_dict()

    if to_sync:
        # run the handlers here, in the caller's synchronous context
        for queue in queues:
            process_task(signal_name, window_info_dict, kwargs, from_client, [], True, queue)
        to_server = False
    # queue -> [client topics delivered by the task, run server handlers?]
    tasks = {}
    if to_server:
        for queue in queues:
            tasks[queue] = [[], True]
    if celery_options and client_topics:
        # browser delivery deferred to the default queue's task; server
        # handlers run only if SERVER was asked
        default_queue = ws_settings.WEBSOCKET_DEFAULT_QUEUE
        tasks.setdefault(default_queue, [[], False])[0] = client_topics
    for queue, (topics, run_server) in tasks.items():
        args = [signal_name, window_info_dict, kwargs, from_client, topics, run_server, queue]
        call_task(mode, queue, args, celery_options)
    if client_topics and not celery_options:
        _send_to_browsers(signal_name, str(uuid.uuid4()), client_topics, kwargs)


async def _trigger_signal_async(
    window_info, signal_name, to=None, kwargs=None, countdown=None, expires=None,
    eta=None, from_client=False,
):
    """``await _trigger_signal_async(...)``: trigger from async code and return
    once every message is handed to the channel layer (or worker pool).

    The trigger runs in a worker thread: ``SYNC`` handlers may use the ORM
    and building a WindowInfo from a request may load its user.
    """
    return await sync_to_async(_trigger_signal)(
        window_info, signal_name, to=to, kwargs=kwargs, countdown=countdown,
        expires=expires, eta=eta, from_client=from_client,
    )


# ---------------------------------------------------------------------------
# channel layer access from sync code or from inside a running event loop
_pending_tasks = set()


def _on_layer_task_done(task):
    _pending_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("channel layer call failed", exc_info=task.exception())


async def _await(awaitable):
    return await awaitable


def _run_awaitable(awaitable):
    """Run ``awaitable`` from synchronous code.

    Without a running event loop in this thread it runs to its end
    (``async_to_sync``); inside a running loop (async views, consumers) it is
    scheduled on that loop and this returns at once, instead of raising "You
    cannot use AsyncToSync in the same thread as an async event loop".
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        async_to_sync(_await)(awaitable)
    else:
        task = asyncio.ensure_future(awaitable)
        _pending_tasks.add(task)
        task.add_done_callback(_on_layer_task_done)


def _get_layer(what):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        logger.error("no channel layer is configured (CHANNEL_LAYERS): %s dropped", what)
    return layer


def channel_layer_call(method_name, *args):
    """Call ``get_channel_layer().<method_name>(*args)`` from synchronous code
    (see _run_awaitable). Returns False when no channel layer is configured."""
    layer = _get_layer(method_name)
    if layer is None:
        return False
    _run_awaitable(getattr(layer, method_name)(*args))
    return True


def _browser_message(signal_name, signal_id, kwargs):
    return json.dumps(
        {"signal": signal_name, "opts": kwargs, "signal_id": signal_id},
        cls=get_signal_encoder(),
    )


def _as_topic_list(serialized_topics):
    if isinstance(serialized_topics, str):
        return [serialized_topics]
    return list(serialized_topics)


async def _group_send_message(message, serialized_topics):
    """``message`` (encoded) to the group of each topic string."""
    layer = _get_layer("group_send")
    if layer is None:
        return
    from df_websockets import history

    for topic in _as_topic_list(serialized_topics):
        logger.debug("send %.100s to topic %s", message, topic)
        # through the topic's history: the message gets its position there
        await history.group_send(layer, valid_topic_name(topic), message)


async def _call_ws_signal(signal_name, signal_id, serialized_topics, kwargs):
    """``await _call_ws_signal(name, signal_id, topics, kwargs)``: send one
    browser message to the group of each topic string (one or a list)."""
    await _group_send_message(_browser_message(signal_name, signal_id, kwargs), serialized_topics)


_default_call_ws_signal = _call_ws_signal


def _send_to_browsers(signal_name, signal_id, serialized_topics, kwargs):
    """Send a browser message from synchronous code (see _run_awaitable).

    ``_call_ws_signal`` is looked up here at each call: SignalQueue and
    projects' tests replace it (by a function or a coroutine function).
    Ours encodes the message before anything is scheduled, so an argument
    that JSON cannot encode raises in the caller even inside an event loop.
    """
    if _call_ws_signal is not _default_call_ws_signal:
        result = _call_ws_signal(signal_name, signal_id, serialized_topics, kwargs)
        if inspect.isawaitable(result):
            _run_awaitable(result)
        return
    message = _browser_message(signal_name, signal_id, kwargs)
    _run_awaitable(_group_send_message(message, serialized_topics))


# ---------------------------------------------------------------------------
_pools = {}
_pools_lock = threading.Lock()


def _process_pool_init():
    import django

    if not apps.ready:
        django.setup()


def _run_pooled_task(args):
    from django.db import close_old_connections

    close_old_connections()
    try:
        process_task(*args)
    finally:
        close_old_connections()


def _on_pool_task_done(future):
    exc = future.exception()
    if exc is not None:
        logger.error("signal task failed", exc_info=exc)


def _get_pool(mode, queue):
    key = (mode, queue, os.getpid())
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            size = ws_settings.get_pool_size(queue)
            if mode == WORKER_THREAD:
                pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="dfws-%s" % queue)
            else:
                pool = ProcessPoolExecutor(max_workers=size, initializer=_process_pool_init)
            _pools[key] = pool
        return pool


def shutdown_pools(wait=True):
    """Stop the thread/process pools (tests, shutdown)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=wait)


def call_task(worker_mode, queue, signal_args, celery_options=None):
    """Dispatch one ``process_task`` call (7-item ``signal_args``) to ``queue``."""
    celery_options = celery_options or {}
    mode = WORKER_ALIASES.get(worker_mode, worker_mode)
    if mode == WORKER_CELERY:
        load_celery()
        _server_signal_call.apply_async(args=signal_args, queue=queue, **celery_options)
    elif mode == WORKER_CHANNEL:
        channel_layer_call("send", queue, {"type": "process.signal", "args": signal_args})
    elif mode in (WORKER_THREAD, WORKER_PROCESS):
        future = _get_pool(mode, queue).submit(_run_pooled_task, signal_args)
        future.add_done_callback(_on_pool_task_done)
    else:
        raise ImproperlyConfigured("Unknown WEBSOCKET_WORKERS value %r." % (worker_mode,))


def process_task(
    signal_name, window_info_dict, kwargs=None, from_client=False,
    serialized_client_topics=None, to_server=False, queue=None, celery_request=None,
):
    """Worker side: deliver deferred browser messages, then run the handlers
    of ``signal_name`` bound to ``queue`` (each isolated from the others)."""
    logger.info(
        'Signal "%s" called on queue "%s" to topics %s (from client?: %s, to server?: %s)',
        signal_name, queue, serialized_client_topics, from_client, to_server,
    )
    if kwargs is None:
        kwargs = {}
    if serialized_client_topics:
        signal_id = str(uuid.uuid4())
        for topic in serialized_client_topics:
            try:
                _send_to_browsers(signal_name, signal_id, [topic], kwargs)
            except Exception:
                logger.exception("cannot send %s to topic %s", signal_name, topic)
    if not to_server:
        return
    import_signals_and_functions()
    window_info = WindowInfo.from_dict(window_info_dict) or WindowInfo()
    window_info.celery_request = celery_request
    for middleware in middlewares:
        try:
            middleware.before_process(window_info)
        except Exception:
            logger.exception("WindowInfo middleware %r failed", middleware)
    for connection in list(REGISTERED_SIGNALS.get(signal_name, [])):
        try:
            if not connection.accepts_queue(window_info, kwargs, queue):
                continue
            if from_client and not connection.is_allowed_to(connection, window_info, kwargs):
                logger.info(
                    'Signal "%s": call from the browser refused by %r', signal_name, connection
                )
                continue
            new_kwargs = connection.check(kwargs)
            if new_kwargs is None:
                continue
            connection(window_info, **new_kwargs)
        except Exception:
            logger.exception('Signal "%s": handler %r raised', signal_name, connection)


# ---------------------------------------------------------------------------
_import_lock = threading.RLock()
_import_state = threading.local()  # .active: this thread is importing the modules
_imported = False


def _try_import(name):
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        return importlib.import_module(name)
    except Exception:
        logger.exception("cannot import %s", name)
        return None


def import_signals_and_functions():
    """Import every installed app's ``signals`` and ``forms`` modules (or
    packages and their submodules) once, so their ``@signal`` run."""
    global _imported
    if _imported:
        return
    with _import_lock:
        # _imported is set only once every module is imported: another thread
        # must not see "done" while the registry is still being filled (it
        # would drop signals as unknown). A signals module that triggers
        # while it is being imported re-enters here and goes on.
        if _imported or getattr(_import_state, "active", False):
            return
        _import_state.active = True
        try:
            load_celery()
            for app_config in apps.get_app_configs():
                for module_name in ("signals", "forms"):
                    module = _try_import("%s.%s" % (app_config.name, module_name))
                    if module is None or not hasattr(module, "__path__"):
                        continue
                    for info in pkgutil.iter_modules(module.__path__):
                        _try_import("%s.%s" % (module.__name__, info.name))
        finally:
            _import_state.active = False
        _imported = True
        logger.debug(
            "Found signals: %s",
            ", ".join("%s (%d)" % (k, len(v)) for k, v in REGISTERED_SIGNALS.items()),
        )


def _reset_imported_signals():
    """Make the next trigger import the apps' signals modules again (tests)."""
    global _imported
    _imported = False


import_signals_and_functions.cache_clear = _reset_imported_signals  # upstream: lru_cache


def get_expected_queues():
    """Every queue a worker should listen to for the registered signals."""
    import_signals_and_functions()
    expected = set()
    for connections in REGISTERED_SIGNALS.values():
        for connection in connections:
            if isinstance(connection.queue, DynamicQueueName):
                expected.update(str(x) for x in connection.queue.get_available_queues())
            elif not callable(connection.queue):
                expected.add(str(connection.queue))
    return expected


# ---------------------------------------------------------------------------
try:
    from celery import shared_task as celery_shared_task
except ImportError:  # celery not installed: only thread/process/channels modes
    celery_shared_task = None

if celery_shared_task is not None:

    @celery_shared_task(serializer="json", bind=True)
    def _server_signal_call(
        self, signal_name, window_info_dict, kwargs=None, from_client=False,
        serialized_client_topics=None, to_server=False, queue=None,
    ):
        process_task(
            signal_name, window_info_dict, kwargs=kwargs, from_client=from_client,
            serialized_client_topics=serialized_client_topics, to_server=to_server,
            queue=queue, celery_request=self.request,
        )

else:

    class _NoCelery:
        name = "df_websockets.tasks._server_signal_call"

        def __call__(self, *args):
            return process_task(*args)

        def apply_async(self, *args, **kwargs):
            raise ImproperlyConfigured("WEBSOCKET_WORKERS is 'celery' but Celery is not installed.")

    _server_signal_call = _NoCelery()
