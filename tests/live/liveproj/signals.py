"""A df_websockets signal the page calls through the native socket; the
answer says which process ran it and whether dfws-asgi served the socket."""
import os
import sys

from df_websockets.decorators import everyone, signal
from df_websockets.tasks import WINDOW, trigger

from liveproj.models import Note


@signal(path="live.hello", is_allowed_to=everyone)
def hello(window_info, who=""):
    native = sys.modules.get("dfws.native")
    trigger(window_info, "html.text", to=[WINDOW], selector="#answer",
            content="hello %s from %d (%s, %d notes)" % (
                str(who)[:50], os.getpid(),
                "native" if native is not None and native._loop is not None else "python",
                Note.objects.count()))
