"""``/page/?topic=T``: what a browser window of the soak loads; subscribes
it to topic T (plus WINDOW and BROADCAST), so df_websockets' middleware sets
the dfwskey/dfwsurl cookies."""
from django.http import HttpResponse
from django.urls import path

from df_websockets.tasks import set_websocket_topics


def page(request):
    set_websocket_topics(request, request.GET.get("topic", "soak"))
    return HttpResponse("<!doctype html><title>soak</title>")


urlpatterns = [path("page/", page)]
