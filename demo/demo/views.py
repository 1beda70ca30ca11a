"""Views of the dfws demo. Every page calls ``set_websocket_topics`` so that
the middleware sets the ``dfwsurl``/``dfwskey`` cookies and the page's window
joins its topics (its own WINDOW and BROADCAST)."""
import logging

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from df_websockets.tasks import set_websocket_topics

from demo.broadcast import BROADCAST_SELECTOR, broadcast
from demo.catalog import BUILTIN_SIGNALS, BY_NAME
from demo.forms import COLORS
from demo.models import COLUMNS, ROWS, Message, Room, Sheet

HISTORY = 50  # messages shown when a room page opens
SUGGESTED_ROOMS = ("lobby", "python", "random")

logger = logging.getLogger(__name__)

SAMPLE_FILE = b"This file was downloaded through the html.download_file signal of df_websockets.\n"


def _page(request, template, context=None, topics=()):
    """Render a demo page; its window joins ``topics`` (and its own WINDOW
    and BROADCAST, which set_websocket_topics always adds)."""
    set_websocket_topics(request, *topics)
    base = {"builtin_signals": BUILTIN_SIGNALS}
    base.update(context or {})
    return render(request, template, base)


@require_GET
def index(request):
    return _page(request, "demo/index.html")


@require_GET
def signal_page(request, name):
    demo = BY_NAME.get(name)
    if demo is None:
        logger.info("unknown demo signal page %r", name)
        raise Http404("No demo page for the signal %r." % name)
    return _page(request, "demo/signals/%s.html" % demo.slug, {"demo": demo})


@require_GET
def broadcast_page(request):
    return _page(request, "demo/broadcast.html")


@require_GET
def form_page(request):
    return _page(request, "demo/form.html", {"colors": COLORS})


@never_cache
@require_GET
def ping(request):
    """Broadcasts to every open window; ``?content=...`` sets the text shown."""
    content = request.GET.get("content") or None
    sent = broadcast(content, source="ping")
    return JsonResponse(
        {"signal": "html.text", "selector": BROADCAST_SELECTOR, "content": sent}
    )


@require_GET
def download_sample(request):
    response = HttpResponse(SAMPLE_FILE, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="dfws-demo.txt"'
    return response


@require_GET
def sheet(request, name="main"):
    """A sheet, created on first visit; its window joins the sheet's topic."""
    sheet, _ = Sheet.objects.get_or_create(name=name)
    values = {(cell.row, cell.col): cell.value for cell in sheet.cells.all()}
    rows = [
        (row + 1, [(col, "c-%d-%d" % (row, col), values.get((row, col), ""))
                   for col in range(len(COLUMNS))])
        for row in range(ROWS)
    ]
    return _page(request, "demo/sheet.html", {"sheet": sheet, "columns": COLUMNS, "rows": rows},
                 topics=[sheet])


@require_GET
def chat_index(request):
    return redirect("chat_room", name="lobby")


@require_GET
def chat_room(request, name):
    """A room's page: its history from the database; its window joins the
    room's topic, so new messages arrive live."""
    room, _ = Room.objects.get_or_create(name=name)
    history = list(Message.objects.filter(room=room).order_by("-created", "-pk")[:HISTORY])[::-1]
    rooms = sorted(set(SUGGESTED_ROOMS) | set(Room.objects.values_list("name", flat=True)))
    return _page(request, "demo/chat.html", {"room": room, "history": history, "rooms": rooms},
                 topics=[room])
