from django.http import HttpResponse
from django.urls import path

from df_websockets.tasks import set_websocket_topics


def with_topics(request):
    set_websocket_topics(request, "test", 100)
    return HttpResponse("ok")


def without_topics(request):
    return HttpResponse("ok")


urlpatterns = [
    path("topics/", with_topics),
    path("plain/", without_topics),
]
