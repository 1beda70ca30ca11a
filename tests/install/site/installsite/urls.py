import os
import sys

import django
import uvloop
from django.http import JsonResponse
from django.urls import path

from df_websockets.tasks import BROADCAST, set_websocket_topics, trigger


def page(request):
    """A page with a window (df_websockets' cookies), and what the test checks
    about the process serving it."""
    set_websocket_topics(request)
    return JsonResponse({
        "pid": os.getpid(),
        "django": django.get_version(),
        "uvloop": uvloop.__version__,
        "uvloop_file": uvloop.__file__,
        "prefix": sys.prefix,
    })


def broadcast(request):
    """A server-side signal to every window."""
    trigger(request, "install.hello", to=[BROADCAST], value=request.GET["value"])
    return JsonResponse({"sent": True})


urlpatterns = [path("", page), path("broadcast/", broadcast)]
