import asyncio
import hashlib
import threading

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.utils.html import escape


def sync_view(request):
    return JsonResponse({
        "view": "sync",
        "thread": threading.current_thread().name,
        "is_main_thread": threading.current_thread() is threading.main_thread(),
        "method": request.method,
        "path": request.path,
        "query": request.GET.dict(),
        "scheme": request.scheme,
        "host": request.get_host(),
        "remote_addr": request.META.get("REMOTE_ADDR"),
        "header": request.headers.get("X-Test", ""),
    })


async def async_view(request):
    await asyncio.sleep(0.01)
    return JsonResponse({
        "view": "async",
        "task": asyncio.current_task() is not None,
        "path": request.path,
    })


def form_view(request):
    if request.method == "POST":
        return HttpResponse("posted name=%s" % request.POST.get("name", ""),
                            content_type="text/plain")
    token = get_token(request)
    return HttpResponse(
        '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" '
        'value="%s"><input name="name"></form>' % escape(token))


def upload_view(request):
    if request.method != "POST":
        return HttpResponse(get_token(request), content_type="text/plain")
    f = request.FILES["file"]
    digest = hashlib.sha256()
    for chunk in f.chunks():
        digest.update(chunk)
    return JsonResponse({"name": f.name, "size": f.size, "sha256": digest.hexdigest(),
                         "field": request.POST.get("note", "")})


def stream_view(request):
    def gen():
        for i in range(5):
            yield ("part-%d\n" % i).encode()
    return StreamingHttpResponse(gen(), content_type="text/plain")
