"""Views of the native-socket test project. Every page answers JSON so the
tests read the window key without parsing HTML."""
import json
import os
import sys

from django.contrib.auth import get_user_model, login
from django.http import HttpResponseBadRequest, JsonResponse

from df_websockets.tasks import set_websocket_topics
from nativeapp.fire import fire
from nativeapp.models import Room


def _topics(request):
    topics = []
    room = request.GET.get("room")
    if room:
        topics.append(Room(pk=int(room)))
    return topics


def _answer(request):
    user = request.user
    return JsonResponse({
        "window_key": request.window_key,
        "user": user.username if user.is_authenticated else None,
        "pid": os.getpid(),
        "client": request.META.get("REMOTE_ADDR"),
        "secure": request.is_secure(),
    })


def page(request):
    """A page whose window listens to WINDOW, BROADCAST, USER (when logged in)
    and the room ?room=N if given."""
    set_websocket_topics(request, *_topics(request))
    return _answer(request)


def login_page(request, username):
    """Log ``username`` in (created on first use), then act as ``page``."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    set_websocket_topics(request, *_topics(request))
    return _answer(request)


def trigger_view(request):
    """``?specs=<JSON list>``: see nativeapp.fire.fire."""
    try:
        specs = json.loads(request.GET["specs"])
    except (KeyError, ValueError):
        return HttpResponseBadRequest("specs: a JSON list is required")
    fire(specs)
    return JsonResponse({"fired": len(specs), "pid": os.getpid()})


def pid(request):
    return JsonResponse({"pid": os.getpid()})


def deflate_stats(request):
    """The server's permessage-deflate counters (dfws._dfws, loaded by
    dfws-asgi at start-up; never imported here)."""
    module = sys.modules.get("dfws._dfws")
    return JsonResponse(module.ws_deflate_stats() if module else {})


def c_history_send(request):
    """``?key=<window key>&value=...``: a native.msg to the window's topic
    through the C layer's own history append (dfws._dfws.layer_history_send:
    in the process, or EVAL on the C layer's Redis shard), whatever
    CHANNEL_LAYERS says."""
    import json as json_module
    import secrets
    import uuid

    from df_websockets import history
    from df_websockets.utils import valid_topic_name

    module = sys.modules["dfws._dfws"]
    history.configure_native(module)
    group = valid_topic_name("-window.%s" % request.GET["key"])
    message = json_module.dumps({"signal": "native.msg", "opts": {"value": request.GET["value"]},
                                 "signal_id": str(uuid.uuid4())})
    module.layer_history_send(group, message, secrets.token_hex(4))
    return JsonResponse({"group": group})
