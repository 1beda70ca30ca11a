"""The page a browser window loads: it subscribes the window to the default
topics (WINDOW and BROADCAST), so df_websockets' middleware sets the
``dfwskey``/``dfwsurl`` cookies."""
from django.http import HttpResponse

from df_websockets.tasks import set_websocket_topics


def page(request):
    set_websocket_topics(request)
    return HttpResponse("<!doctype html><title>bench</title>window %s" % request.window_key)
