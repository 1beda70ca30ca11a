from django.core.exceptions import SuspiciousOperation


class HeaderOnlyMiddleware:
    """A project's own middleware that knows nothing of ASGI: it reads
    request.headers and META, and fails on purpose when asked to."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.GET.get("mwboom"):
            raise ValueError("middleware failed on purpose")
        if request.GET.get("mwsuspicious"):
            raise SuspiciousOperation("suspicious on purpose")
        response = self.get_response(request)
        response["X-Seen-Agent"] = request.headers.get("User-Agent", "-")
        response["X-Seen-Method"] = request.META["REQUEST_METHOD"]
        return response
