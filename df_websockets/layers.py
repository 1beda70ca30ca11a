"""EmbeddedChannelLayer: the default channel layer of df_websockets.

Outside the dfws-asgi server it is Channels' ``InMemoryChannelLayer`` (same
options: ``expiry``, ``group_expiry``, ``capacity``, ``channel_capacity``),
plus one fix: a message sent from another thread or event loop (thread-mode
signal handlers, ``async_to_sync`` in a worker thread) wakes the receiver on
its own loop through ``call_soon_threadsafe`` instead of touching that loop's
futures from the wrong thread.

Inside dfws-asgi, the server's module ``dfws._dfws`` exposes its C channel
layer; when ``_dfws.layer_available()`` is true, every operation goes to it
(``new_channel``, ``send``, ``receive``, ``group_add``, ``group_discard``,
``group_send``, ``flush``), so Python consumers, windows served natively by C
and code running in worker threads all share one layer with Channels'
in-memory semantics (capacity, expiry, group expiry). Messages cross as
msgpack, like channels_redis. A process that does not serve with dfws-asgi
(``manage.py shell``, a worker) has no ``dfws._dfws`` loaded: pure in-memory
behaviour.

It is installed as ``CHANNEL_LAYERS["default"]`` when a project does not
define ``CHANNEL_LAYERS`` (see ``df_websockets.apps``).
"""
import asyncio
import logging
import os
import sys
import threading
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

logger = logging.getLogger("df_websockets.layers")

UNREACHED = (
    "a group message went through the embedded channel layer of process %d, which serves "
    "no window or consumer (a manage.py shell, a worker, a script): it reaches none. The "
    "embedded layer lives inside the dfws-asgi server; to send from other processes, "
    "configure a layer they share: CHANNEL_LAYERS = {'default': {'BACKEND': "
    "'channels_redis.core.RedisChannelLayer', 'CONFIG': {'hosts': ['redis://127.0.0.1:6379']}}} "
    "(pip install 'dfws[redis]') for the server and for them."
)



def get_native_layer():
    """The C server's module when its channel layer runs in this process, else None.

    Looked up, never imported: dfws-asgi loads ``dfws._dfws`` at start-up
    (dfws.binding); importing it anywhere else would only bind a server that
    does not run.
    """
    module = sys.modules.get("dfws._dfws")
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
        # inside dfws-asgi: channel -> asyncio.Queue fed by the C layer
        self._native_queues = {}
        self._native_lock = threading.Lock()
        # outside dfws-asgi: whether a consumer of this process ever joined a
        # group, and whether group_send said that it reaches nobody
        self._joined = False
        self._told_unreached = False

    # ---- inside dfws-asgi: the C layer -------------------------------------

    def _native_queue(self, native, channel):
        """The queue the C layer fills for `channel` (listening on first use)."""
        loop = asyncio.get_running_loop()
        with self._native_lock:
            entry = self._native_queues.get(channel)
            if entry is None:
                entry = [asyncio.Queue(), loop]
                self._native_queues[channel] = entry
                native.layer_listen(channel, self._on_native_message)
            else:
                entry[1] = loop
        return entry[0]

    def _on_native_message(self, channel, raw):
        """Called by the C layer on the server's loop thread."""
        import msgpack

        message = msgpack.unpackb(raw, raw=False)
        with self._native_lock:
            entry = self._native_queues.get(channel)
        if entry is None:
            return
        queue, loop = entry
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is running:
            queue.put_nowait(message)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, message)

    async def _native_send(self, native, channel, message):
        """Send through the C layer; ChannelFull when it refuses."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(status):  # on the server's loop thread
            def resolve():
                if not future.done():
                    future.set_result(status)

            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                resolve()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(resolve)

        native.layer_send(channel, message, done)
        status = await future
        if status == native.LAYER_EFULL:
            raise ChannelFull(channel)
        if status:
            raise ConnectionError(f"channel layer send to {channel} failed ({status})")

    async def new_channel(self, prefix="specific"):
        native = get_native_layer()
        if native is not None:
            return native.layer_new_channel(prefix)
        return await super().new_channel(prefix)

    async def group_add(self, group, channel):
        native = get_native_layer()
        if native is not None:
            self.require_valid_group_name(group)
            self.require_valid_channel_name(channel)
            native.layer_group_add(group, channel)
            return
        self._joined = True
        await super().group_add(group, channel)

    async def group_discard(self, group, channel):
        native = get_native_layer()
        if native is not None:
            self.require_valid_group_name(group)
            self.require_valid_channel_name(channel)
            native.layer_group_discard(group, channel)
            return
        await super().group_discard(group, channel)

    # ---- everything else ----------------------------------------------------

    async def send(self, channel, message):
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        native = get_native_layer()
        if native is not None:
            await self._native_send(native, channel, message)
            return
        item = (time.time() + self.expiry, deepcopy(message))
        running = asyncio.get_running_loop()
        target = self._receiver_loops.get(channel)
        if target is not None and target is not running and not target.is_closed():
            queue = self.channels.get(channel)
            if queue is not None and queue.full():
                raise ChannelFull(channel)
            target.call_soon_threadsafe(self._deliver, channel, item)
            return
        try:
            self._queue(channel).put_nowait(item)
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    def _queue(self, channel):
        """The channel's queue, bounded by its capacity as Channels' own layer does."""
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    def _deliver(self, channel, item):
        """Runs on the receiver's loop."""
        try:
            self._queue(channel).put_nowait(item)
        except asyncio.QueueFull:  # filled since send() looked: dropped, as a full channel's are
            logger.debug("channel %s is full: message dropped", channel)

    async def receive(self, channel):
        native = get_native_layer()
        if native is not None:
            self.require_valid_channel_name(channel)
            return await self._native_queue(native, channel).get()
        self._receiver_loops[channel] = asyncio.get_running_loop()
        try:
            return await super().receive(channel)
        finally:
            if channel not in self.channels:
                self._receiver_loops.pop(channel, None)

    async def group_send(self, group, message):
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        native = get_native_layer()
        if native is not None:
            native.layer_group_send(group, message)
            return
        self._clean_expired()
        if not self._joined and not self._told_unreached:
            self._told_unreached = True
            logger.warning(UNREACHED, os.getpid())
        for channel in list(self.groups.get(group, {})):
            try:
                await self.send(channel, message)
            except ChannelFull:
                pass

    async def flush(self):
        native = get_native_layer()
        if native is not None:
            native.layer_flush()
            with self._native_lock:
                channels = list(self._native_queues)
                self._native_queues = {}
            for channel in channels:
                native.layer_unlisten(channel)
            return
        await super().flush()
        self._receiver_loops = {}

    def _remove_from_groups(self, channel):
        super()._remove_from_groups(channel)
        self._receiver_loops.pop(channel, None)
