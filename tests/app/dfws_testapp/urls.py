from django.http import HttpResponse
from django.urls import path

from df_websockets.tasks import set_websocket_topics


def with_topics(request):
    set_websocket_topics(request, "test", 100)
    return HttpResponse("ok")


def session_topics(request):
    """A page that starts a session (no key until it is saved) and sets topics."""
    request.session["visited"] = True
    set_websocket_topics(request, "test")
    return HttpResponse("ok")


def topics_then_login(request):
    """Topics first, then a login (a new session key) in the same view."""
    from django.contrib.auth import get_user_model, login

    set_websocket_topics(request, "test")
    user, _ = get_user_model().objects.get_or_create(username="late")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponse("ok")


def without_topics(request):
    return HttpResponse("ok")


urlpatterns = [
    path("topics/", with_topics),
    path("plain/", without_topics),
    path("session-topics/", session_topics),
    path("topics-then-login/", topics_then_login),
]
