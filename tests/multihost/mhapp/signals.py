"""A server-side signal for the multi-host tests: run wherever the worker
mode sends SERVER signals (a Celery worker, a Channels worker), it
broadcasts ``native.msg`` with its value and the pid it ran in."""
import os

from df_websockets.decorators import signal
from df_websockets.tasks import BROADCAST, trigger


@signal(path="mh.relay")  # server-side only: browsers cannot call it
def relay(window_info, value=None):
    trigger(window_info, "native.msg", to=[BROADCAST], value=value)
    out = os.environ.get("NATIVE_OUT")
    if out:  # proof of which process ran it
        with open(os.path.join(out, "relay--%s--%d" % (value, os.getpid())), "w"):
            pass
