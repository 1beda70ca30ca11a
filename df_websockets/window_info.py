"""WindowInfo: what a signal handler knows about the browser window that
triggered it (window key, user, language…), built from an HttpRequest and
serialized to a dict for workers."""
import logging

from django.http import HttpRequest
from django.template.loader import render_to_string as django_render_to_string
from django.utils.module_loading import import_string

from df_websockets import ws_settings

logger = logging.getLogger("df_websockets.signals")


class Session:
    """A browser session as a topic: serialized as ``-session.<key>``."""

    def __init__(self, key=None):
        self.key = key

    def __repr__(self):
        return "Session(%r)" % self.key


class WindowInfo:
    def __init__(self, init=True):
        self.celery_request = None
        if init:
            for middleware in middlewares:
                middleware.new_window_info(self)

    def to_dict(self):
        result = {}
        for middleware in middlewares:
            result.update(middleware.to_dict(self))
        return result

    @classmethod
    def from_dict(cls, values):
        if values is None:
            return None
        window_info = cls(init=True)
        for middleware in middlewares:
            middleware.from_dict(window_info, values)
        return window_info

    @classmethod
    def from_request(cls, request):
        """WindowInfo -> itself, None -> blank WindowInfo, HttpRequest -> converted."""
        if isinstance(request, WindowInfo):
            return request
        window_info = cls(init=True)
        if request is None:
            return window_info
        if not isinstance(request, HttpRequest) and not hasattr(request, "META"):
            raise TypeError(
                "WindowInfo.from_request expects an HttpRequest, a WindowInfo "
                "or None, not %s" % type(request).__name__
            )
        for middleware in middlewares:
            middleware.from_request(request, window_info)
        return window_info

    def __repr__(self):
        return "<WindowInfo %r>" % getattr(self, "window_key", None)


def _load_middlewares():
    result = []
    for path in ws_settings.WINDOW_INFO_MIDDLEWARES:
        middleware = import_string(path)()
        middleware.install_methods(WindowInfo)
        result.append(middleware)
    return result


middlewares = _load_middlewares()


def get_window_context(window_info):
    """Template context built by every WindowInfo middleware."""
    context = {}
    if window_info is None:
        return context
    for middleware in middlewares:
        context.update(middleware.get_context(window_info))
    return context


def render_to_string(template_name, context=None, window_info=None, using=None):
    """Render a template with the window's context (user, perms, language…)."""
    full_context = get_window_context(window_info)
    if context:
        full_context.update(context)
    return django_render_to_string(template_name, full_context, using=using)
