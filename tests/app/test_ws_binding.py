"""df_websockets.binding.bind_model: saved/deleted instances refresh their windows."""
import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from df_websockets.binding import bind_model
from df_websockets.testing import SignalQueue

pytestmark = pytest.mark.django_db(transaction=True)


def test_bind_model_save_and_delete_after_commit():
    unbind = bind_model(Group, "group.changed", to_model=True)
    try:
        with SignalQueue() as fd:
            with transaction.atomic():
                group = Group.objects.create(name="editors")
                assert fd.ws_signals == {}  # waits for the commit
            pk = group.pk
            expected = {"pk": pk, "model": "auth.group", "deleted": False}
            assert fd.ws_signals == {"-auth.group.%d" % pk: [("group.changed", expected)],
                                     "-<Group>": [("group.changed", expected)]}
            fd.ws_signals.clear()
            group.delete()
            gone = {"pk": pk, "model": "auth.group", "deleted": True}
            assert fd.ws_signals == {"-auth.group.%d" % pk: [("group.changed", gone)],
                                     "-<Group>": [("group.changed", gone)]}
            with transaction.atomic():
                Group.objects.create(name="rolled back")
                transaction.set_rollback(True)
            assert len(fd.ws_signals["-<Group>"]) == 1  # nothing for a rollback
    finally:
        unbind()
    with SignalQueue() as fd:
        Group.objects.create(name="after unbind")
    assert fd.ws_signals == {}


def test_bind_model_custom_serializer_instance_only_immediate():
    bind_model(Group, "html.text", serialize=lambda obj, deleted: {
        "selector": "#group-%d" % obj.pk, "content": "" if deleted else obj.name}, on_commit=False)
    bind_model(Group, "html.text", serialize=lambda obj, deleted: {
        "selector": "#g-%d" % obj.pk, "content": obj.name}, on_commit=False)  # replaces
    try:
        with SignalQueue() as fd:
            group = Group.objects.create(name="x")
        assert fd.ws_signals == {"-auth.group.%d" % group.pk: [
            ("html.text", {"selector": "#g-%d" % group.pk, "content": "x"})]}
    finally:
        from df_websockets.binding import unbind_model

        unbind_model(Group, "html.text")


def test_bind_model_to_the_objects_a_page_shows():
    """``to(instance)``: more targets, e.g. the parent object whose page
    shows the instance (the demo's sheet cells, chat messages)."""
    from django.contrib.auth.models import User

    from df_websockets.tasks import BROADCAST

    user = User.objects.create(username="owner")
    unbind = bind_model(Group, "group.saved", on_commit=False, to=lambda g: [user, BROADCAST],
                        serialize=lambda obj, deleted: {"name": obj.name})
    try:
        with SignalQueue() as fd:
            group = Group.objects.create(name="readers")
        assert fd.ws_signals == {
            "-auth.group.%d" % group.pk: [("group.saved", {"name": "readers"})],
            "-auth.user.%d" % user.pk: [("group.saved", {"name": "readers"})],
            "-broadcast": [("group.saved", {"name": "readers"})],
        }
    finally:
        unbind()
    bind_model(Group, "group.saved", on_commit=False, to=lambda g: 1 / 0)
    try:
        with SignalQueue() as fd:
            Group.objects.create(name="to() raises")  # logged, the save goes on
        assert fd.ws_signals == {}
    finally:
        unbind()
