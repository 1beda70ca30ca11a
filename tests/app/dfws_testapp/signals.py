"""Signals used by the end-to-end tests (imported by import_signals_and_functions)."""
from df_websockets.decorators import everyone, signal
from df_websockets.tasks import WINDOW, trigger

CALLS = []


@signal(path="dfws_testapp.record", is_allowed_to=everyone, queue="dfws-q1")
def record(window_info, path, value):
    """Append ``value`` to the file ``path`` then echo it to the window."""
    with open(path, "a") as fd:
        fd.write("%s\n" % value)
    CALLS.append((window_info.window_key, value))
    trigger(window_info, "dfws_testapp.recorded", to=WINDOW, value=value)


@signal(path="dfws_testapp.record", is_allowed_to=everyone, queue="dfws-q2")
def record_again(window_info, path, value):
    with open(path, "a") as fd:
        fd.write("again %s\n" % value)
