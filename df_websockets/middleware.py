"""HTTP middleware: give every request a window key and, when the view called
``set_websocket_topics``, set the ``dfwsurl`` and ``dfwskey`` cookies."""
import logging
import secrets
import string
from urllib.parse import quote_plus

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin

from df_websockets import window_keys, ws_settings
from df_websockets.constants import WEBSOCKET_KEY_COOKIE_NAME, WEBSOCKET_URL_COOKIE_NAME

logger = logging.getLogger("df_websockets.signals")
_KEY_ALPHABET = string.ascii_lowercase + string.digits
COOKIE_MAX_AGE = 86400


def new_window_key():
    """A random 32-character key of lowercase letters and digits."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))


class WebsocketMiddleware(MiddlewareMixin):
    # upstream's class attributes (a subclass may rename the header)
    ws_windowkey_get_parameter = "dfwskey"
    ws_windowkey_header_name = "DFWSKEY"

    def process_request(self, request):
        # A page load is a new window: it gets a new key (the page's socket
        # reads it from the cookie set on this response). An XMLHttpRequest
        # made by a page belongs to that page's window: its key comes from
        # the DFWSKEY header, else from the cookie.
        key = None
        if request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            header = "HTTP_%s" % self.ws_windowkey_header_name.upper().replace("-", "_")
            key = request.META.get(header) or request.COOKIES.get(WEBSOCKET_KEY_COOKIE_NAME)
        request.window_key = key or new_window_key()
        request.has_websocket_topics = False

    def process_response(self, request, response):
        if not getattr(request, "has_websocket_topics", False):
            return response
        # bound to the session the page is served with: the view may have
        # logged a user in (a new session key) after set_websocket_topics
        binding = window_keys.request_binding(request, save_new_session=True)
        if binding != getattr(request, "websocket_binding", None):
            request.websocket_binding = window_keys.store_binding(request, binding)
        secure = request.is_secure()
        url = "%s://%s%s" % (
            "wss" if secure else "ws", request.get_host(), ws_settings.WEBSOCKET_URL
        )
        common = {
            "max_age": COOKIE_MAX_AGE,
            "domain": settings.CSRF_COOKIE_DOMAIN,
            "path": settings.CSRF_COOKIE_PATH,
            "secure": secure,
            # the browser client reads both cookies (and writes dfwskey, one
            # key per tab): they cannot be HttpOnly; the key is bound to the
            # session instead (df_websockets.window_keys)
            "httponly": False,
            "samesite": settings.CSRF_COOKIE_SAMESITE,
        }
        response.set_cookie(WEBSOCKET_URL_COOKIE_NAME, quote_plus(url), **common)
        response.set_cookie(WEBSOCKET_KEY_COOKIE_NAME, request.window_key, **common)
        return response
