"""Signal handlers of the native-socket tests. Each leaves a proof file
``<NATIVE_OUT>/<signal>--<window_key>--<value>.json`` (written atomically)
so the tests see that it ran, in whatever process it ran."""
import json
import os

from django.conf import settings

from df_websockets.decorators import everyone, signal
from df_websockets.tasks import WINDOW, trigger


def _proof(name, window_info, kwargs):
    out = settings.NATIVE_OUT
    if not out:
        return
    value = str(kwargs.get("value", "none"))
    path = os.path.join(out, "%s--%s--%s.json" % (name, window_info.window_key or "", value))
    data = {
        "signal": name, "kwargs": kwargs, "window_key": window_info.window_key,
        "user_pk": window_info.user_pk, "pid": os.getpid(), "info": window_info.to_dict(),
    }
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


@signal(path="native.echo", is_allowed_to=everyone)
def echo(window_info, value=None, reply=True):
    """Browser-callable: proof file, then ``native.echoed`` back to the window."""
    _proof("native.echo", window_info, {"value": value, "reply": reply})
    if reply:
        trigger(window_info, "native.echoed", to=[WINDOW], value=value, pid=os.getpid())


@signal(path="native.noopts", is_allowed_to=everyone)
def noopts(window_info):
    """Browser-callable without arguments (a call without ``opts``)."""
    _proof("native.noopts", window_info, {})
    trigger(window_info, "native.echoed", to=[WINDOW], value="noopts", pid=os.getpid())


@signal(path="native.secret")
def secret(window_info, value=None):
    """Server-side only (default is_allowed_to): a browser call must not run it."""
    _proof("native.secret", window_info, {"value": value})
    trigger(window_info, "native.echoed", to=[WINDOW], value="secret-ran", pid=os.getpid())
