"""Test helper: intercept signal dispatch.

>>> with SignalQueue() as fd:
...     trigger(wi, "test.signal", to=[SERVER, WINDOW], arg_1="test")
>>> fd.ws_signals      # {unhashed topic: [(signal_name, kwargs), ...]}
>>> fd.python_signals  # {queue: [[7 process_task arguments], ...]}
>>> fd.execute_delayed_signals()   # FIFO, whatever WEBSOCKET_WORKERS is
"""
import json

from df_websockets import tasks as tasks_module


class SignalQueue:
    def __init__(self, immediate_execution: bool = False):
        self.immediate = immediate_execution
        self.ws_signals = {}
        self.python_signals = {}
        self._saved = []

    def _call_task(self, worker_mode, queue, signal_args, celery_options=None):
        json.dumps(signal_args, cls=tasks_module.get_signal_encoder())  # must be JSON-encodable
        if self.immediate:
            tasks_module.process_task(*signal_args)
        else:
            self.python_signals.setdefault(queue, []).append(signal_args)

    def _call_ws_signal(self, signal_name, signal_id, serialized_topics, kwargs):
        """Replaces ``tasks._call_ws_signal`` (upstream's arguments); records at
        once, so a trigger made inside an event loop is seen right away."""
        json.dumps(kwargs, cls=tasks_module.get_signal_encoder())
        for topic in tasks_module._as_topic_list(serialized_topics):
            self.ws_signals.setdefault(topic, []).append((signal_name, kwargs))

    def activate(self):
        self._saved.append((tasks_module.call_task, tasks_module._call_ws_signal))
        tasks_module.call_task = self._call_task
        tasks_module._call_ws_signal = self._call_ws_signal

    def deactivate(self):
        tasks_module.call_task, tasks_module._call_ws_signal = self._saved.pop()

    def execute_delayed_signals(self, queues=None):
        """Run the queued tasks in the order they were queued (per queue,
        queues in ``queues`` order or first-use order)."""
        if queues is None:
            queues = list(self.python_signals)
        for queue in queues:
            pending = self.python_signals.get(queue, [])
            while pending:
                args = pending.pop(0)
                tasks_module.process_task(*args)

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.deactivate()
