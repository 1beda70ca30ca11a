"""EmbeddedChannelLayer: the default channel layer of df_websockets.

Outside the dfws-asgi server it is Channels' ``InMemoryChannelLayer`` (same
options: ``expiry``, ``group_expiry``, ``capacity``, ``channel_capacity``),
plus one fix: a message sent from another thread or event loop (thread-mode
signal handlers, ``async_to_sync`` in a worker thread) wakes the receiver on
its own loop through ``call_soon_threadsafe`` instead of touching that loop's
futures from the wrong thread.

Inside dfws-asgi, the built-in module ``_dfws`` exposes the server's C channel
layer; when ``_dfws.layer_available()`` is true, ``send`` and ``group_send``
are forwarded to ``_dfws.layer_send(channel, message)`` and
``_dfws.layer_group_send(group, message)`` so windows served natively by C
receive them. Everything else (receive, groups of Python-side consumers)
stays in memory. Absence of ``_dfws`` means pure in-memory behaviour.

It is installed as ``CHANNEL_LAYERS["default"]`` when a project does not
define ``CHANNEL_LAYERS`` (see ``df_websockets.apps``).
"""
import asyncio
import logging
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

logger = logging.getLogger("df_websockets.layers")

_UNSET = object()
_native_module = _UNSET


def get_native_layer():
    """The ``_dfws`` module when the C layer is usable, else None."""
    global _native_module
    if _native_module is _UNSET:
        try:
            import _dfws  # provided by the dfws-asgi binary only
        except ImportError:
            _dfws = None
        _native_module = _dfws
    module = _native_module
    if module is None:
        return None
    try:
        if module.layer_available():
            return module
    except Exception:
        logger.exception("_dfws.layer_available() failed; using the in-memory layer")
    return None


class EmbeddedChannelLayer(InMemoryChannelLayer):
    def __init__(self, expiry=60, group_expiry=86400, capacity=100, channel_capacity=None, **kwargs):
        super().__init__(
            expiry=expiry, group_expiry=group_expiry, capacity=capacity,
            channel_capacity=channel_capacity, **kwargs,
        )
        # channel -> event loop of its current receiver
        self._receiver_loops = {}

    async def send(self, channel, message):
        assert isinstance(message, dict), "message is not a dict"
        assert self.valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        native = get_native_layer()
        if native is not None:
            native.layer_send(channel, message)
            return
        item = (time.time() + self.expiry, deepcopy(message))
        running = asyncio.get_running_loop()
        target = self._receiver_loops.get(channel)
        if target is not None and target is not running and not target.is_closed():
            queue = self.channels.get(channel)
            if queue is not None and queue.qsize() >= self.get_capacity(channel):
                raise ChannelFull(channel)
            target.call_soon_threadsafe(self._deliver, channel, item)
            return
        queue = self.channels.setdefault(channel, asyncio.Queue())
        if queue.qsize() >= self.get_capacity(channel):
            raise ChannelFull(channel)
        queue.put_nowait(item)

    def _deliver(self, channel, item):
        """Runs on the receiver's loop."""
        queue = self.channels.setdefault(channel, asyncio.Queue())
        queue.put_nowait(item)

    async def receive(self, channel):
        self._receiver_loops[channel] = asyncio.get_running_loop()
        try:
            return await super().receive(channel)
        finally:
            if channel not in self.channels:
                self._receiver_loops.pop(channel, None)

    async def group_send(self, group, message):
        assert isinstance(message, dict), "Message is not a dict"
        assert self.valid_group_name(group), "Invalid group name"
        native = get_native_layer()
        if native is not None:
            native.layer_group_send(group, message)
            return
        self._clean_expired()
        for channel in list(self.groups.get(group, {})):
            try:
                await self.send(channel, message)
            except ChannelFull:
                pass

    async def flush(self):
        await super().flush()
        self._receiver_loops = {}

    def _remove_from_groups(self, channel):
        super()._remove_from_groups(channel)
        self._receiver_loops.pop(channel, None)
