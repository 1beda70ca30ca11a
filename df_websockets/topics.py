"""Default topic serializer: Python object -> topic string (``WEBSOCKET_TOPIC_SERIALIZER``).

The channel-layer group of a topic is ``df_websockets.utils.valid_topic_name(topic)``.
"""
import hashlib
import logging

from django.db.models import Model

from df_websockets.window_info import Session

logger = logging.getLogger("df_websockets.signals")


def serialize_topic(window_info, obj):
    """Return the topic string of ``obj`` or None when it designates no window.

    ``BROADCAST`` -> ``-broadcast``; ``WINDOW`` -> ``-window.<key>``; a class,
    e.g. ``User`` -> ``-<User>`` (brackets included, as upstream writes it); a
    str -> ``-str.<sha224>``; a model instance ->
    ``-<app_label>.<model_name>.<pk or 0>``; ``USER`` -> the user's model
    topic (None for anonymous windows); ``SESSION`` -> ``-session.<session
    key>`` (None when unknown); ``Session(key)`` -> ``-session.<key>``;
    anything else -> ``-<ClassName>.<hash(obj)>``.
    """
    from df_websockets.tasks import BROADCAST, SESSION, USER, WINDOW

    if obj is BROADCAST:
        return "-broadcast"
    if obj is WINDOW:
        key = getattr(window_info, "window_key", None) if window_info else None
        if not key:
            return None
        return "-window.%s" % key
    if isinstance(obj, type):
        return "-<%s>" % obj.__name__
    if isinstance(obj, str):
        return "-str.%s" % hashlib.sha224(obj.encode("utf-8")).hexdigest()
    if isinstance(obj, Model):
        meta = obj._meta
        return "-%s.%s.%s" % (meta.app_label, meta.model_name, obj.pk or 0)
    if obj is USER:
        if window_info is None or getattr(window_info, "user_pk", None) is None:
            return None
        from django.contrib.auth import get_user_model

        meta = get_user_model()._meta
        return "-%s.%s.%s" % (meta.app_label, meta.model_name, window_info.user_pk)
    if obj is SESSION:
        key = getattr(window_info, "session_key", None) if window_info else None
        if not key:
            logger.debug("SESSION topic: no session key known for this window")
            return None
        return "-session.%s" % key
    if isinstance(obj, Session):
        return "-session.%s" % obj.key
    return "-%s.%s" % (obj.__class__.__name__, hash(obj))
