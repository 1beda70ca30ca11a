"""The battery's views: what a project does with Django, each answered the
same way by the fast path and by Django's ASGI handler."""
import asyncio
import hashlib
import os
import threading
import time

from django import forms
from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.http import (
    FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

HERE = os.path.dirname(os.path.abspath(__file__))


def hello(request):
    return HttpResponse("Hello, world!")


def meta(request):
    """request.META, but for what changes from one connection to the next."""
    varying = {"REMOTE_PORT", "HTTP_COOKIE", "CSRF_COOKIE"}
    data = {k: v for k, v in request.META.items()
            if k not in varying and isinstance(v, (str, int, bool))}
    data["scheme"] = request.scheme
    data["host"] = request.get_host()
    data["path"] = request.path
    data["path_info"] = request.path_info
    data["full_path"] = request.get_full_path()
    data["GET"] = {k: request.GET.getlist(k) for k in request.GET}
    data["encoding"] = request.encoding
    data["content_type"] = request.content_type
    data["scope_type"] = request.scope["type"]
    return JsonResponse(data)


def session(request):
    count = request.session.get("count", 0) + 1
    request.session["count"] = count
    return HttpResponse("count=%d" % count)


class NameForm(forms.Form):
    name = forms.CharField(max_length=20)
    age = forms.IntegerField(min_value=0)


def form(request):
    if request.method == "POST":
        f = NameForm(request.POST)
        if f.is_valid():
            return JsonResponse({"valid": True, **f.cleaned_data})
        return render(request, "form.html", {"form": f}, status=400)
    return render(request, "form.html", {"form": NameForm()})


def login_view(request):
    user = authenticate(request, username=request.POST.get("username"),
                        password=request.POST.get("password"))
    if user is None:
        return HttpResponse("bad credentials", status=401)
    login(request, user)
    return HttpResponseRedirect("/whoami/")


def whoami(request):
    return HttpResponse(request.user.username if request.user.is_authenticated else "anonymous")


def message_add(request):
    messages.info(request, "saved %s" % request.GET.get("what", "it"))
    messages.warning(request, "careful")
    return HttpResponseRedirect("/msg/show/")


def message_show(request):
    return HttpResponse("|".join("%s:%s" % (m.level_tag, m) for m in messages.get_messages(request)))


@csrf_exempt
def upload(request):
    f = request.FILES["file"]
    data = f.read()
    return JsonResponse({"name": f.name, "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest(),
                         "field": request.POST.get("field"), "in_memory": f.size <= 65536})


def stream(request):
    def lines():
        for i in range(50):
            yield "line %d\n" % i
    return StreamingHttpResponse(lines(), content_type="text/plain")


def astream(request):
    async def lines():
        for i in range(50):
            await asyncio.sleep(0)
            yield "async line %d\n" % i
    return StreamingHttpResponse(lines(), content_type="text/plain")


def file(request):
    return FileResponse(open(os.path.join(HERE, "settings.py"), "rb"), as_attachment=True,
                        filename="settings.py")


async def async_view(request):
    await asyncio.sleep(0)
    return HttpResponse("async %s" % request.GET.get("q", ""))


def boom(request):
    raise ValueError("view failed on purpose")


def not_found(request):
    raise Http404("nothing here")


def page(request):
    """A template with a session read (the benchmark's case d)."""
    visits = request.session.get("visits", 0)
    return render(request, "page.html", {"visits": visits, "items": range(20)})


def big(request):
    return HttpResponse(b"0123456789" * 20000, content_type="application/octet-stream")


def head_or_get(request):
    response = HttpResponse("body for %s" % request.method)
    response["X-Length"] = "12"
    return response


def cookies(request):
    response = HttpResponse("cookies")
    response.set_cookie("a", "1", max_age=60, samesite="Lax")
    response.set_cookie("b", "two words", httponly=True)
    response.delete_cookie("c")
    return response


def served_by(request):
    """Not compared: which thread served the request (the tests' proof that
    the fast path was taken)."""
    return HttpResponse(threading.current_thread().name)


def sleep(request):
    """Not compared: holds its thread for ?s= seconds (concurrency and
    shutdown tests)."""
    time.sleep(float(request.GET.get("s", "0.5")))
    return HttpResponse("slept on %s" % threading.current_thread().name)
