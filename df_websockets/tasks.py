"""Trigger signals: run Python handlers in workers and/or send them to browser windows.

Public API (upstream-compatible): ``SERVER``, ``SESSION``, ``WINDOW``, ``USER``,
``BROADCAST``, ``SYNC``, ``set_websocket_topics``, ``trigger``,
``trigger_signal``, ``call_task``, ``process_task``, ``get_expected_queues``,
``import_signals_and_functions`` and the Celery task ``_server_signal_call``.
"""
import asyncio
import importlib
import importlib.util
import json
import logging
import os
import pkgutil
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import lru_cache

from asgiref.sync import async_to_sync
from django.apps import apps
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from df_websockets import ws_settings
from df_websockets.constants import (
    WORKER_ALIASES,
    WORKER_CELERY,
    WORKER_CHANNEL,
    WORKER_PROCESS,
    WORKER_THREAD,
)
from df_websockets.decorators import REGISTERED_SIGNALS, DynamicQueueName
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


def _topic_serializer(window_info, obj):
    return _import_cached(ws_settings.WEBSOCKET_TOPIC_SERIALIZER)(window_info, obj)


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
        signal_id = str(uuid.uuid4())
        for topic in client_topics:
            _call_ws_signal(signal_name, signal_id, topic, kwargs)


# ---------------------------------------------------------------------------
# channel layer access from sync code or from inside a running event loop
_pending_tasks = set()


def _on_layer_task_done(task):
    _pending_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("channel layer call failed", exc_info=task.exception())


def channel_layer_call(method_name, *args):
    """Call ``get_channel_layer().<method_name>(*args)`` from any context.

    Without a running event loop in this thread the call is made at once
    (``async_to_sync``); inside a running loop (async views, consumers) it is
    scheduled on that loop and this returns immediately, instead of raising
    "You cannot use AsyncToSync in the same thread as an async event loop".
    Returns False when no channel layer is configured.
    """
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        logger.error(
            "no channel layer is configured (CHANNEL_LAYERS): %s dropped", method_name
        )
        return False
    method = getattr(layer, method_name)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        async_to_sync(method)(*args)
    else:
        task = loop.create_task(method(*args))
        _pending_tasks.add(task)
        task.add_done_callback(_on_layer_task_done)
    return True


def _call_ws_signal(signal_name, signal_id, serialized_topic, kwargs):
    """Send one browser message to the group of ``serialized_topic``."""
    message = json.dumps(
        {"signal": signal_name, "opts": kwargs, "signal_id": signal_id},
        cls=get_signal_encoder(),
    )
    group = valid_topic_name(serialized_topic)
    logger.debug("send %s to topic %s (group %s)", signal_name, serialized_topic, group)
    channel_layer_call("group_send", group, {"type": "ws_message", "message": message})


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


def call_task(mode, queue, args, celery_options=None):
    """Dispatch one ``process_task`` call (7-item ``args``) to ``queue``."""
    celery_options = celery_options or {}
    mode = WORKER_ALIASES.get(mode, mode)
    if mode == WORKER_CELERY:
        load_celery()
        _server_signal_call.apply_async(args=args, queue=queue, **celery_options)
    elif mode == WORKER_CHANNEL:
        channel_layer_call("send", queue, {"type": "process.signal", "args": args})
    elif mode in (WORKER_THREAD, WORKER_PROCESS):
        future = _get_pool(mode, queue).submit(_run_pooled_task, args)
        future.add_done_callback(_on_pool_task_done)
    else:
        raise ImproperlyConfigured("Unknown WEBSOCKET_WORKERS value %r." % (mode,))


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
                _call_ws_signal(signal_name, signal_id, topic, kwargs)
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
    from celery import shared_task
except ImportError:  # celery not installed: only thread/process/channels modes
    shared_task = None

if shared_task is not None:

    @shared_task(serializer="json", bind=True)
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
