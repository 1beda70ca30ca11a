"""What a window key is bound to (docs/df_websockets.md, "Threat model").

A window key alone would be a bearer token: whoever presents it in the
``dfwskey`` cookie of a handshake receives the window's signals, its user's
included. The browser client reads and writes that cookie from JavaScript
(each tab keeps its own key), so it cannot be HttpOnly; instead the server
remembers, next to the window's topics, what the page was served with, and a
handshake that does not present the same gets no topics (the client is told
to get a new key, as for an unknown window).

The binding is the page's session (a SHA-256 of its session key, never the
key itself), or ``"none"`` for a page served without one (anonymous pages
keep working: any handshake without a session cookie may use their key). With
the signed-cookie session engine the session key is the cookie itself and
changes whenever the session does, so the user is used instead.
"""
import hashlib
import logging

from django.conf import settings
from django.core.cache import caches

from df_websockets import ws_settings

logger = logging.getLogger("df_websockets.signals")
NO_SESSION = "none"


def binding_cache_key(window_key):
    # a key of its own (the topics entry keeps upstream's format); a value
    # that is not a JSON list, so a forged dfwskey naming this entry reads
    # as no topics
    return "%sbind:%s" % (ws_settings.WEBSOCKET_CACHE_PREFIX, window_key)


def _signed_cookies():
    return getattr(settings, "SESSION_ENGINE", "").endswith("signed_cookies")


def request_binding(request, save_new_session=False):
    """What ``request`` (a page, or a handshake after the middleware chain)
    presents: ``"session:<sha256>"``, ``"user:<pk>:<sha256>"`` (signed-cookie
    sessions) or ``"none"``. ``save_new_session``: a page that created its
    session has no key until SessionMiddleware saves it, after this runs; it
    is saved now so that the window is bound to it."""
    session = getattr(request, "session", None)
    if session is not None and _signed_cookies():
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return NO_SESSION
        auth_hash = getattr(user, "get_session_auth_hash", lambda: "")()
        return "user:%s:%s" % (user.pk, hashlib.sha256(auth_hash.encode()).hexdigest())
    if session is None:
        return NO_SESSION
    # loaded, so that a cookie naming no stored session counts as none
    # (Django's SessionStore keeps the cookie's value until it loads)
    session.keys()
    key = session.session_key
    if not key and save_new_session and session.modified and not session.is_empty():
        session.save()
        key = session.session_key
    if not key:
        return NO_SESSION
    return "session:%s" % hashlib.sha256(key.encode()).hexdigest()


def store_binding(request, binding=None):
    """Record what the window of ``request.window_key`` is bound to."""
    binding = binding or request_binding(request, save_new_session=True)
    caches[ws_settings.WEBSOCKET_CACHE_BACKEND].set(
        binding_cache_key(request.window_key), binding, ws_settings.WEBSOCKET_CACHE_EXPIRE)
    return binding


def stored_binding(window_key):
    return caches[ws_settings.WEBSOCKET_CACHE_BACKEND].get(binding_cache_key(window_key))


def handshake_allowed(request):
    """Whether the handshake ``request`` (middleware chain run, ``window_key``
    set) may use its key's topics: it presents what the page was served with."""
    stored = stored_binding(request.window_key)
    if stored is None:
        return False
    presented = request_binding(request)
    if presented == stored:
        return True
    logger.warning(
        "websocket window with key %s...: the handshake presents %s, its page was served with "
        "%s: no topics, told to get a new window key", request.window_key[:6],
        _describe(presented, stored), _describe(stored, presented))
    return False


def _describe(binding, other):
    if binding == NO_SESSION:
        return "no session"
    kind = "session" if binding.startswith("session:") else "user"
    return ("another " if other.startswith(kind) else "a ") + kind
