"""Model data binding: refresh every open window that shows an object.

>>> from df_websockets.binding import bind_model
>>> bind_model(Article, "html.content", serialize=lambda obj, deleted: {
...     "selector": "#article-%d" % obj.pk, "content": "" if deleted else obj.title})

Whenever an ``Article`` is saved or deleted, ``signal_name`` is triggered to
the instance's topic (the windows whose view called
``set_websocket_topics(request, article)``), with ``to_model=True`` to the
model's topic (``set_websocket_topics(request, Article)``, e.g. list pages),
and to the targets ``to(instance)`` returns (e.g. the object whose page shows
the instance: ``bind_model(Comment, ..., to=lambda comment: [comment.post])``).
The signal's arguments are ``serialize(instance, deleted)`` (default:
``{"pk": …, "model": "app_label.model_name", "deleted": bool}``).
Call it once, e.g. in ``AppConfig.ready()`` or a ``signals.py`` module.
"""
import copy
import logging

from django.db.models.signals import post_delete, post_save

logger = logging.getLogger("df_websockets.signals")

# (model, signal_name) -> (save receiver, delete receiver)
_BINDINGS = {}


def default_serializer(instance, deleted):
    meta = instance._meta
    return {"pk": instance.pk, "model": "%s.%s" % (meta.app_label, meta.model_name),
            "deleted": deleted}


def bind_model(model, signal_name, to_model=False, serialize=None, on_commit=True, to=None):
    """Trigger ``signal_name`` to the topics of saved/deleted ``model`` instances.

    ``to``: a callable ``to(instance)`` returning more targets (objects,
    classes or topic constants, as ``trigger(to=...)`` takes).

    ``on_commit``: wait for the transaction to commit (so windows never see
    rolled-back data). Returns an ``unbind()`` callable; binding the same
    (model, signal_name) twice replaces the previous binding.
    """
    from django.db import transaction

    from df_websockets.tasks import trigger

    serialize = serialize or default_serializer
    unbind_model(model, signal_name)

    def prepare(instance, deleted):
        # computed now: Django clears a deleted instance's pk after post_delete
        try:
            kwargs = serialize(instance, deleted)
        except Exception:
            logger.exception("bind_model(%s, %r): serializer failed", model.__name__, signal_name)
            return
        try:
            targets = [copy.copy(instance)] + ([model] if to_model else []) + (
                list(to(instance)) if to else [])
        except Exception:
            logger.exception("bind_model(%s, %r): to() failed", model.__name__, signal_name)
            return

        def send():
            try:
                trigger(None, signal_name, to=targets, **kwargs)
            except Exception:
                logger.exception("bind_model(%s, %r): trigger failed", model.__name__, signal_name)

        if on_commit:
            transaction.on_commit(send)
        else:
            send()

    def on_save(sender, instance, raw=False, **kwargs):
        if not raw:  # not loaddata
            prepare(instance, False)

    def on_delete(sender, instance, **kwargs):
        prepare(instance, True)

    post_save.connect(on_save, sender=model, weak=False)
    post_delete.connect(on_delete, sender=model, weak=False)
    _BINDINGS[(model, signal_name)] = (on_save, on_delete)
    return lambda: unbind_model(model, signal_name)


def unbind_model(model, signal_name):
    receivers = _BINDINGS.pop((model, signal_name), None)
    if receivers:
        post_save.disconnect(receivers[0], sender=model)
        post_delete.disconnect(receivers[1], sender=model)
