from django.http import HttpResponse


def hello(request):
    """Plain synchronous view: Django runs it in its thread executor under ASGI."""
    return HttpResponse("Hello, world!", content_type="text/plain; charset=utf-8")
