"""The history of topic groups: the writer side of the recovery of missed
signals (docs/recovery.md).

Every browser message sent to a topic is appended to that topic group's
history, which gives it a position (``"topic"`` and ``"pos"`` added to its
JSON), and the message with its position is what the group receives. Where
the history lives depends on the channel layer this process uses:

- channels_redis' ``RedisChannelLayer`` / ``RedisPubSubChannelLayer``
  (Celery and Channels workers, ``manage.py shell``, views under any
  server): in Redis, on the group's shard, through the layer's own
  connection, one ``EVAL`` of history_append.lua per topic;
- df_websockets' ``EmbeddedChannelLayer`` inside dfws-asgi: the C layer
  appends and sends in one call (in the process, or in Redis when the C
  layer speaks Redis);
- any other layer (Channels' in-memory layer in tests, the embedded layer
  outside dfws-asgi): no history; messages go without a position (said
  once at info).

``WEBSOCKET_HISTORY_SIZE = 0`` turns it off everywhere.
"""
import json
import logging
import os
import re
import secrets
import uuid
from urllib.parse import unquote_to_bytes

from df_websockets.signal_call import too_deep

logger = logging.getLogger("df_websockets.history")

_HERE = os.path.dirname(os.path.abspath(__file__))
_scripts = {}
_told = set()
_configured = set()


def script(name):
    """The text of df_websockets/history_<name>.lua ("append" or "read")."""
    text = _scripts.get(name)
    if text is None:
        with open(os.path.join(_HERE, "history_%s.lua" % name), encoding="utf-8") as f:
            text = _scripts[name] = f.read()
    return text


def settings():
    from df_websockets import ws_settings

    return ws_settings.get_history_settings()


def keys(prefix, group):
    """The sorted set and the meta hash of group's history."""
    return "%s:hist:%s" % (prefix, group), "%s:hist:%s:m" % (prefix, group)


def _now_ms():
    import time

    return int(time.time() * 1000)


def _kind(layer):
    """"native", "redis", "pubsub" or None (no history with this layer)."""
    from df_websockets.layers import EmbeddedChannelLayer, get_native_layer

    if isinstance(layer, EmbeddedChannelLayer):
        return "native" if get_native_layer() is not None else None
    for klass in type(layer).__mro__:
        path = "%s.%s" % (klass.__module__, klass.__qualname__)
        if path == "channels_redis.core.RedisChannelLayer":
            return "redis"
        if path == "channels_redis.pubsub.RedisPubSubChannelLayer":
            return "pubsub"
    return None


def _tell_once(layer):
    name = "%s.%s" % (type(layer).__module__, type(layer).__qualname__)
    if name in _told:
        return
    _told.add(name)
    logger.info("channel layer %s keeps no history: signals sent through it carry no position "
                "and cannot be recovered by windows that reconnect", name)


async def _redis_connection(layer, kind, group):
    """(connection, lock or None, prefix) for group's shard."""
    if kind == "redis":
        return layer.connection(layer.consistent_hash(group)), None, layer.prefix
    loop_layer = layer._get_layer()
    shard = loop_layer._get_shard(group)
    return shard, shard._lock, loop_layer.prefix


def _sha(name):
    key = name + ".sha1"
    sha = _scripts.get(key)
    if sha is None:
        import hashlib

        sha = _scripts[key] = hashlib.sha1(script(name).encode("utf-8")).hexdigest()
    return sha


async def _run_script(redis, name, zset, meta, args):
    """EVALSHA (the script text crosses once per Redis server), EVAL when
    the server does not know it yet."""
    from redis.exceptions import NoScriptError

    try:
        return await redis.evalsha(_sha(name), 2, zset, meta, *args)
    except NoScriptError:
        return await redis.eval(script(name), 2, zset, meta, *args)


async def _eval(layer, kind, group, name, args):
    conn, lock, prefix = await _redis_connection(layer, kind, group)
    zset, meta = keys(prefix, group)
    if lock is None:
        return await _run_script(conn, name, zset, meta, args)
    async with lock:
        conn._ensure_redis()
        return await _run_script(conn._redis, name, zset, meta, args)


async def append(layer, kind, group, message, size, ttl):
    """Append message (JSON text) to group's history in Redis; the final
    JSON (with "topic" and "pos")."""
    final = await _eval(layer, kind, group, "append",
                        [secrets.token_hex(4), message, group, size, ttl, _now_ms()])
    return final.decode("utf-8") if isinstance(final, bytes) else final


async def read(layer, group, epoch, offset):
    """What history_read.lua answers for group on this layer's Redis:
    (epoch or None, seq or None, [final JSON, ...]); for the Python
    consumer's recovery."""
    kind = _kind(layer)
    if kind not in ("redis", "pubsub"):
        raise ValueError("no Redis history on %r" % layer)
    size, ttl, _ = settings()
    reply = await _eval(layer, kind, group, "read", [epoch, offset, size, _now_ms(), ttl])

    def text(value):
        return value.decode("utf-8") if isinstance(value, bytes) else value

    epoch_now, seq = text(reply[0]), text(reply[1])
    items = [text(m).split("|", 1)[1] for m in reply[2:] if "|" in text(m)]
    return epoch_now, (int(seq) if seq is not None else None), items


def configure_native(native):
    """Give the C layer the history settings and scripts (once per process
    and settings; the native socket's setup does the same)."""
    size, ttl, _ = settings()
    key = (id(native), size, ttl)
    if key not in _configured:
        native.layer_history_configure(size, ttl, script("append"), script("read"))
        _configured.add(key)


def _connection_lost(exc):
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError))


async def _append_retrying(layer, kind, group, message, size, ttl):
    """append(), once more on a fresh connection when the pooled one was
    lost: after a Redis restart the pool still holds connections to the old
    process, and the first command on each fails although the server is
    back. Without the second try the message would go out without a
    position, and a window away at that moment could never recover it."""
    try:
        return await append(layer, kind, group, message, size, ttl)
    except Exception as exc:
        if not _connection_lost(exc):
            raise
        logger.info("history of %s: %s (%s); trying once more on a new connection",
                    group, type(exc).__name__, exc)
        return await append(layer, kind, group, message, size, ttl)


async def group_send(layer, group, message):
    """Send browser message (JSON text) to group, through its history when
    this layer keeps one."""
    size, ttl, _ = settings()
    kind = _kind(layer) if size else None
    if kind == "native":
        from df_websockets.layers import get_native_layer

        native = get_native_layer()
        configure_native(native)
        native.layer_history_send(group, message, secrets.token_hex(4))
        return
    if kind in ("redis", "pubsub"):
        try:
            message = await _append_retrying(layer, kind, group, message, size, ttl)
        except Exception as exc:
            # a window misses nothing live because history could not be
            # written (one line: an outage is no bug, group_send says more)
            logger.warning("history of %s not written (%s: %s); message sent without a position",
                           group, type(exc).__name__, exc)
    elif size:
        _tell_once(layer)
    await layer.group_send(group, {"type": "ws_message", "message": message})


# ---- recovery on the Python consumer path (--no-native-websockets, daphne, runserver) ----
# The same rules as the native socket (server/recovery.c): see docs/recovery.md.

PARAM = "dfws_recover"
MAX_PARAM = 8192
MAX_GROUPS = 64
MAX_DEPTH = 2
FAILED_SIGNAL = "df_websockets.recovery_failed"
MAX_OFFSET = 1 << 53
_POSITION = re.compile(r"\A([0-9a-f]{8})-(0|[1-9][0-9]{0,15})\Z")


def request_param(query_string):
    """The decoded dfws_recover parameter of a query string: None when
    absent, False when unreadable (bad encoding, over MAX_PARAM bytes)."""
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin1")
    for part in query_string.split("&"):
        name, sep, value = part.partition("=")
        if name != PARAM or not sep:
            continue
        if len(value) > 3 * MAX_PARAM or re.search(r"%(?![0-9A-Fa-f]{2})", value):
            return False
        raw = unquote_to_bytes(value.replace("+", " "))
        if len(raw) > MAX_PARAM or b"\0" in raw:
            return False
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return None


def parse_position(value):
    """(epoch, offset) of "<epoch>-<offset>", or None."""
    match = _POSITION.match(value) if isinstance(value, str) else None
    if not match or int(match.group(2)) > MAX_OFFSET:
        return None
    return match.group(1), int(match.group(2))


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key %r" % key)
        result[key] = value
    return result


def parse_request(raw, held):
    """(wants [(group, epoch, offset)], failed [group], ignored count) for
    the parameter raw (False: unreadable) and the window's groups held."""
    held_set = set(held)
    obj = None
    if raw is not False and not too_deep(raw, MAX_DEPTH):
        try:
            obj = json.loads(raw, object_pairs_hook=_no_duplicates)
        except (ValueError, RecursionError):
            obj = None
    if not isinstance(obj, dict):
        return [], list(dict.fromkeys(held)), 0
    wants, failed, ignored = [], [], 0
    for group, value in obj.items():
        if group not in held_set:
            ignored += 1
            continue
        position = parse_position(value)
        if position is None or len(wants) >= MAX_GROUPS:
            failed.append(group)
        else:
            wants.append((group, position[0], position[1]))
    return wants, failed, ignored


async def _read_native(native, group, epoch, offset):
    import asyncio

    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def done(status, epoch_now=None, seq=None, items=()):  # on the server's loop thread
        def resolve():
            if not future.done():
                future.set_result((status, epoch_now, seq, list(items)))

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            resolve()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(resolve)

    native.layer_history_read(group, epoch, offset, done)
    status, epoch_now, seq, items = await future
    if status:
        raise ConnectionError("history read of %s failed (%s)" % (group, status))
    return epoch_now, seq, items


def _meta(text):
    try:
        message = json.loads(text)
    except ValueError:
        return None, None, None
    if not isinstance(message, dict):
        return None, None, None
    position = parse_position(message.get("pos"))
    return message.get("topic"), position, message.get("signal_id")


def failed_message(groups):
    return json.dumps({"signal": FAILED_SIGNAL, "opts": {"topics": list(groups)},
                       "signal_id": str(uuid.uuid4())})


class Recovery:
    """What a consumer replays for a window: ``messages`` (texts, in order,
    de-duplicated by signal_id), ``failed`` groups, and ``skip(text)`` for
    the live deliveries that follow (those already replayed)."""

    def __init__(self):
        self.messages = []
        self.failed = []
        self.replayed = {}   # group -> (epoch, seq)
        self.signal_ids = set()

    def skip(self, text):
        topic, position, signal_id = _meta(text)
        seen = self.replayed.get(topic)
        if seen and position and position[0] == seen[0] and position[1] <= seen[1]:
            return True
        return signal_id is not None and signal_id in self.signal_ids


async def recover(layer, raw, held):
    """A Recovery for the window holding groups ``held`` that sent the
    dfws_recover parameter ``raw``; None when this layer keeps no history."""
    size, ttl, max_bytes = settings()
    kind = _kind(layer) if size else None
    if kind is None:
        return None
    wants, failed, ignored = parse_request(raw, held)
    if ignored:
        logger.debug("recovery request names %d groups the window does not hold; ignored", ignored)
    result = Recovery()
    result.failed = failed
    used = 0
    for group, epoch, offset in wants:
        try:
            if kind == "native":
                from df_websockets.layers import get_native_layer

                native = get_native_layer()
                configure_native(native)
                epoch_now, seq, items = await _read_native(native, group, epoch, offset)
            else:
                epoch_now, seq, items = await read(layer, group, epoch, offset)
        except Exception as exc:
            logger.warning("history of %s not read (%s: %s); the window is told recovery_failed",
                           group, type(exc).__name__, exc)
            result.failed.append(group)
            continue
        if epoch_now != epoch or seq is None or offset > seq or len(items) != seq - offset:
            result.failed.append(group)
            continue
        metas = [_meta(text) for text in items]
        if any(m[1] != (epoch, offset + 1 + k) for k, m in enumerate(metas)):
            result.failed.append(group)
            continue
        size_bytes = sum(len(text.encode("utf-8")) for text in items)
        if used + size_bytes > max_bytes:
            result.failed.append(group)
            continue
        used += size_bytes
        result.replayed[group] = (epoch, seq)
        for text, (_, _, signal_id) in zip(items, metas):
            if signal_id is not None:
                if signal_id in result.signal_ids:
                    continue
                result.signal_ids.add(signal_id)
            result.messages.append(text)
    return result
