"""WindowInfo middlewares: copy data from an HttpRequest into a WindowInfo,
serialize it for workers, and prepare the worker before a signal runs.

The order of ``WINDOW_INFO_MIDDLEWARES`` decides the key order of
``WindowInfo.to_dict()``.
"""
import logging

from django.conf import settings
from django.utils import translation

logger = logging.getLogger("df_websockets.signals")


class WindowInfoMiddleware:
    """Base class: every hook is a no-op."""

    def from_request(self, request, window_info):
        pass

    def new_window_info(self, window_info):
        pass

    def to_dict(self, window_info):
        return {}

    def from_dict(self, window_info, values):
        pass

    def get_context(self, window_info):
        return {}

    def before_process(self, window_info):
        pass

    def install_methods(self, window_info_cls):
        pass


class WindowKeyMiddleware(WindowInfoMiddleware):
    def from_request(self, request, window_info):
        window_info.window_key = getattr(request, "window_key", None)
        session = getattr(request, "session", None)
        # kept in-process only (not in to_dict): used by the SESSION topic
        window_info.session_key = getattr(session, "session_key", None)

    def new_window_info(self, window_info):
        window_info.window_key = None
        window_info.session_key = None

    def to_dict(self, window_info):
        return {"window_key": window_info.window_key}

    def from_dict(self, window_info, values):
        window_info.window_key = values.get("window_key")
        window_info.session_key = None

    def get_context(self, window_info):
        return {"df_window_key": window_info.window_key}


def _wi_user(self):
    """Lazy ``WindowInfo.user``: the user model instance, or AnonymousUser."""
    if getattr(self, "_user", None) is None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import AnonymousUser

        user = None
        if self.user_pk is not None:
            user = get_user_model()._default_manager.filter(pk=self.user_pk).first()
        self._user = user if user is not None else AnonymousUser()
    return self._user


def _wi_set_user(self, value):
    self._user = value


def _wi_perms(self):
    """Set of ``"app_label.codename"`` the user has (empty if inactive)."""
    if getattr(self, "_perms", None) is None:
        if self.user_pk is None or not self.is_active:
            self._perms = set()
        else:
            self._perms = set(self.user.get_all_permissions())
    return self._perms


def _wi_set_perms(self, value):
    self._perms = set(value) if value is not None else None


def _wi_has_perm(self, perm):
    if not self.is_active or self.user_pk is None:
        return False
    if self.is_superuser:
        return True
    return perm in self.perms


def _wi_is_authenticated(self):
    return self.user_pk is not None


def _wi_is_anonymous(self):
    return self.user_pk is None


def _copy_user(window_info, user):
    """An authenticated user's pk, name and flags onto ``window_info``."""
    window_info.user_pk = user.pk
    window_info.username = user.get_username()
    window_info.is_superuser = bool(getattr(user, "is_superuser", False))
    window_info.is_staff = bool(getattr(user, "is_staff", False))
    window_info.is_active = bool(getattr(user, "is_active", True))


class DjangoAuthMiddleware(WindowInfoMiddleware):
    def from_request(self, request, window_info):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            _copy_user(window_info, user)
            window_info.user_set = True
            window_info._user = user
        else:
            window_info.user_set = False
        window_info.csrf_cookie = request.COOKIES.get(settings.CSRF_COOKIE_NAME, "")
        window_info.user_agent = request.META.get("HTTP_USER_AGENT", "")

    def new_window_info(self, window_info):
        window_info.user_pk = None
        window_info.username = None
        window_info.is_superuser = False
        window_info.is_staff = False
        window_info.is_active = False
        window_info.csrf_cookie = ""
        window_info.user_agent = ""
        window_info.user_set = False
        window_info._user = None
        window_info._perms = None

    def to_dict(self, window_info):
        perms = window_info._perms
        return {
            "user_pk": window_info.user_pk,
            "username": window_info.username,
            "is_superuser": window_info.is_superuser,
            "is_staff": window_info.is_staff,
            "is_active": window_info.is_active,
            "csrf_cookie": window_info.csrf_cookie,
            "perms": sorted(perms) if perms is not None else None,
            "user_agent": window_info.user_agent,
            "user_set": window_info.user_set,
        }

    def from_dict(self, window_info, values):
        window_info.user_pk = values.get("user_pk")
        window_info.username = values.get("username")
        window_info.is_superuser = bool(values.get("is_superuser", False))
        window_info.is_staff = bool(values.get("is_staff", False))
        window_info.is_active = bool(values.get("is_active", False))
        window_info.csrf_cookie = values.get("csrf_cookie", "")
        window_info.user_agent = values.get("user_agent", "")
        window_info.user_set = bool(values.get("user_set", False))
        window_info._user = None
        perms = values.get("perms")
        window_info._perms = set(perms) if perms is not None else None
        if window_info.user_pk is not None and not window_info.user_set:
            # a dict written by hand (a script, a shell) with just the user's pk:
            # name and flags come from the database, as upstream reads them
            user = window_info.user
            if user.is_authenticated:
                _copy_user(window_info, user)

    def get_context(self, window_info):
        from django.contrib.auth.context_processors import PermWrapper

        user = window_info.user
        return {
            "user": user,
            "perms": PermWrapper(user),
            "csrf_token": window_info.csrf_cookie,
        }

    def install_methods(self, window_info_cls):
        window_info_cls.user = property(_wi_user, _wi_set_user)
        window_info_cls.perms = property(_wi_perms, _wi_set_perms)
        window_info_cls.has_perm = _wi_has_perm
        window_info_cls.is_authenticated = property(_wi_is_authenticated)
        window_info_cls.is_anonymous = property(_wi_is_anonymous)


class Djangoi18nMiddleware(WindowInfoMiddleware):
    def from_request(self, request, window_info):
        code = getattr(request, "LANGUAGE_CODE", None)
        if not code:
            try:
                code = translation.get_language_from_request(request)
            except Exception:  # a half-built request (no COOKIES/META)
                code = None
        window_info.language_code = code or settings.LANGUAGE_CODE

    def new_window_info(self, window_info):
        window_info.language_code = settings.LANGUAGE_CODE

    def to_dict(self, window_info):
        return {"language_code": window_info.language_code}

    def from_dict(self, window_info, values):
        window_info.language_code = values.get("language_code") or settings.LANGUAGE_CODE

    def get_context(self, window_info):
        return {
            "LANGUAGES": settings.LANGUAGES,
            "LANGUAGE_CODE": window_info.language_code,
            "LANGUAGE_BIDI": translation.get_language_bidi(),
        }

    def before_process(self, window_info):
        if window_info.language_code:
            translation.activate(window_info.language_code)


class BrowserMiddleware(WindowInfoMiddleware):
    def from_request(self, request, window_info):
        window_info.user_agent = request.META.get("HTTP_USER_AGENT", "")

    def new_window_info(self, window_info):
        window_info.user_agent = ""

    def to_dict(self, window_info):
        return {"user_agent": window_info.user_agent}

    def from_dict(self, window_info, values):
        window_info.user_agent = values.get("user_agent", "")

    def get_context(self, window_info):
        from django.contrib.messages.constants import DEFAULT_LEVELS

        return {
            "df_user_agent": window_info.user_agent,
            "messages": [],
            "DEFAULT_MESSAGE_LEVELS": DEFAULT_LEVELS,
        }
