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
import logging
import os
import secrets

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


async def _eval(layer, kind, group, name, args):
    conn, lock, prefix = await _redis_connection(layer, kind, group)
    zset, meta = keys(prefix, group)
    if lock is None:
        return await conn.eval(script(name), 2, zset, meta, *args)
    async with lock:
        conn._ensure_redis()
        return await conn._redis.eval(script(name), 2, zset, meta, *args)


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
            message = await append(layer, kind, group, message, size, ttl)
        except Exception:
            # a window misses nothing live because history could not be written
            logger.warning("history of %s not written; message sent without a position", group,
                           exc_info=True)
    elif size:
        _tell_once(layer)
    await layer.group_send(group, {"type": "ws_message", "message": message})
