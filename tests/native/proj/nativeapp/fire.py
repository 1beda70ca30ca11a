"""Server-side triggers, shared by the ``/trigger/`` view and
``manage.py shell -c "from nativeapp.fire import fire; fire([...])"``.

A spec: ``{"to": "window"|"user"|"broadcast"|"room"|"window+broadcast", "value": str,
"key": window key, "user": username, "room": pk, "signal": name}``.
"""
from django.contrib.auth import get_user_model

from df_websockets.tasks import BROADCAST, USER, WINDOW, trigger
from df_websockets.window_info import WindowInfo
from nativeapp.models import Room


def fire(specs):
    for spec in specs:
        window_info = WindowInfo()
        target = spec["to"]
        if target == "window":
            window_info.window_key = spec["key"]
            to = WINDOW
        elif target == "window+broadcast":  # one signal, two topics
            window_info.window_key = spec["key"]
            to = [WINDOW, BROADCAST]
        elif target == "user":
            window_info.user_pk = get_user_model().objects.get(username=spec["user"]).pk
            to = USER
        elif target == "broadcast":
            to = BROADCAST
        elif target == "room":
            to = Room(pk=int(spec["room"]))
        else:
            raise ValueError("unknown target %r" % target)
        trigger(window_info, spec.get("signal", "native.msg"), to=to if isinstance(to, list) else [to],
                value=spec["value"])
