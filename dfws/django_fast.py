"""Django's HTTP handling in one thread hop (the "Django fast path").

Django's ASGIHandler runs a request on the event loop and crosses to a worker
thread for every piece of sync code: each sync middleware method, the view,
the request signals and the response's close(); with the default
`startproject` stack that is about a dozen hops per request, each a Future,
a thread hand-off and a GIL switch. A WSGI server crosses once.

When the HTTP application is exactly Django's ASGIHandler (directly, or as
the "http" entry of Channels' ProtocolTypeRouter), dfws-asgi reads the whole
request in C, then runs `FastPath.run(scope, body)` on one of its worker
threads: the same ASGIRequest built from the same scope, the same signals
with the same sender, the sync middleware chain and the view, the same
exception handling (the handler *is* an ASGIHandler, only with its
middleware loaded for sync), and the response's headers collected exactly as
ASGIHandler.send_response() does. C writes the response. WebSocket and every
other scope type stay ASGI, in the same process.

What the fast path hands back to the ASGI path (`FALLBACK`, decided before
any signal is sent or middleware runs): requests whose view is a coroutine
function (async views keep running on the server's event loop). Streaming
responses with an async iterator are streamed from the loop (`run_async_stream`).
An application whose middleware includes one that cannot run synchronously
gets no fast path at all (`FastPath.create` says why).
"""
import logging
from contextlib import aclosing
from io import BytesIO

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import Resolver404, get_resolver, set_script_prefix
from django.utils.module_loading import import_string

logger = logging.getLogger("dfws.server")

try:
    from django.core.handlers.asgi import get_script_prefix
except ImportError:  # Django < 5.0: a method of ASGIHandler that does not use self

    def get_script_prefix(scope):
        return ASGIHandler.get_script_prefix(None, scope)

# run() answers: the request goes back to the ASGI application
FALLBACK = None
# run()'s 4th item: the body came from a streaming response (sent chunked)
STREAMED = True


def django_http_app(app):
    """The ASGIHandler serving the HTTP scopes of `app`, when the fast path
    can stand in for it: `app` itself, or the "http" entry of a Channels
    ProtocolTypeRouter, of exactly the class ASGIHandler (a subclass may
    change what a request does, e.g. ASGIStaticFilesHandler)."""
    if type(app) is ASGIHandler:
        return app
    mapping = getattr(app, "application_mapping", None)
    if isinstance(mapping, dict) and type(mapping.get("http")) is ASGIHandler:
        try:
            from channels.routing import ProtocolTypeRouter
        except ImportError:
            return None
        if isinstance(app, ProtocolTypeRouter):
            return mapping["http"]
    return None


class FastPath(ASGIHandler):
    """An ASGIHandler whose middleware chain is loaded for sync calls, run on
    one worker thread per request. Everything else is ASGIHandler's own:
    request class, create_request, handle_uncaught_exception, chunk_size."""

    @classmethod
    def create(cls, app):
        """A FastPath for `app`, or (None, why not)."""
        handler = django_http_app(app)
        if handler is None:
            return None, "the HTTP application is not Django's ASGIHandler"
        from django.conf import settings

        for path in settings.MIDDLEWARE:
            middleware = import_string(path)
            if not getattr(middleware, "sync_capable", True):
                return None, "middleware %s cannot run synchronously" % path
        return cls(type(handler)), None

    def __init__(self, sender):
        BaseHandler.__init__(self)  # not ASGIHandler's: it loads the async chain
        self.load_middleware(is_async=False)
        self.sender = sender  # the project's handler class, sender of the signals

    def run(self, scope, body):
        """Serves one request on the calling (pool) thread.

        Returns FALLBACK when the ASGI application must serve it, else
        (status, headers, content): `content` is the whole body as bytes
        (the response is closed; a 4th item, STREAMED, when it was read
        from a streaming response), or, for a streaming response with an async
        iterator, an ASGI application that streams it from the loop (and
        closes it). A sync iterator is read here to its end, as
        ASGIHandler reads it (into a list, on a thread) before sending."""
        from django.core import signals

        if self._async_view(scope):
            return FALLBACK
        body_file = BytesIO(body)
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.sender, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.sender
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        headers = response_headers(response)
        if not response.streaming:
            content = response.content
            response.close()
            return response.status_code, headers, content
        if response.is_async:
            return response.status_code, headers, _stream_app(response)
        try:
            content = b"".join(_chunks(response))
        finally:
            response.close()
        return response.status_code, headers, content, STREAMED

    def _async_view(self, scope):
        """Whether the default URLconf sends this path to a coroutine view
        (resolved again, as usual, inside the middleware chain)."""
        path = scope["path"]
        prefix = get_script_prefix(scope)
        if prefix:
            path = path.removeprefix(prefix)
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return False
        return iscoroutinefunction(match.func)


def response_headers(response):
    """The response's headers and cookies as ASGIHandler.send_response()
    sends them (header case kept)."""
    headers = []
    for header, value in response.items():
        if isinstance(header, str):
            header = header.encode("ascii")
        if isinstance(value, str):
            value = value.encode("latin1")
        headers.append((bytes(header), bytes(value)))
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    return headers


def _chunks(response):
    for part in response:
        yield from (chunk for chunk, _ in ASGIHandler.chunk_bytes(part) if chunk)


def _stream_app(response):
    """An ASGI application that sends `response` (a streaming response with
    an async iterator) as ASGIHandler's send_response() does."""

    async def stream(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": response_headers(response)})
            async with aclosing(aiter(response)) as content:
                async for part in content:
                    for chunk, _ in ASGIHandler.chunk_bytes(part):
                        if chunk:
                            await send({"type": "http.response.body", "body": chunk,
                                        "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await sync_to_async(response.close)()

    return stream
