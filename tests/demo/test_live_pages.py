"""The demo's live pages: the shared sheet and the chat rooms. Pages render
from the database and join the sheet's / room's topic; the handlers save,
and demo.live's bind_model sends the saved row to that topic (the browser
tests in tests/browser/live.test.js show it across two browsers).

Run from the repository root: python3 -m pytest tests/demo -q
"""
import html
import json
import re

import pytest
from django.core.cache import cache

from df_websockets import ws_settings
from df_websockets.tasks import process_task

from demo.models import Cell, Message, Room, Sheet

pytestmark = pytest.mark.django_db(transaction=True)  # bind_model waits for the commit
DATA_DF_SIGNAL = re.compile(r' data-df-signal="([^"]*)" ')


def browser_call(window_info, name, **opts):
    """What the websocket endpoint does for a browser call."""
    process_task(name, window_info.to_dict(), opts, True, [], True,
                 ws_settings.WEBSOCKET_DEFAULT_QUEUE)


def topics_of(response):
    key = response.cookies["dfwskey"].value
    return sorted(json.loads(cache.get(ws_settings.WEBSOCKET_CACHE_PREFIX + key)))


# ---- sheet --------------------------------------------------------------------------


def test_sheet_page_shows_the_stored_cells_and_joins_the_sheet(client):
    sheet = Sheet.objects.create(name="budget")
    Cell.objects.create(sheet=sheet, row=1, col=2, value='<script>"x"</script>')
    response = client.get("/sheet/budget/")
    assert response.status_code == 200
    content = response.content.decode()
    assert ('name="c-1-2" value="&lt;script&gt;&quot;x&quot;&lt;/script&gt;"' in content)
    calls = [json.loads(html.unescape(a))[0] for a in DATA_DF_SIGNAL.findall(content)]
    assert len(calls) == 60
    assert calls[8] == {"name": "demo.sheet.set", "prevent": None, "value": "value",
                        "opts": {"sheet": sheet.pk, "row": 1, "col": 2}}
    assert "-demo.sheet.%d" % sheet.pk in topics_of(response)
    # /sheet/ is the sheet "main", created on first visit
    assert client.get("/sheet/").status_code == 200
    assert Sheet.objects.filter(name="main").exists()
    assert client.get("/sheet/not a slug/").status_code == 404


def test_sheet_edit_is_stored_and_sent_to_the_sheet(signal_queue, window_info):
    sheet = Sheet.objects.create(name="s")
    browser_call(window_info, "demo.sheet.set", sheet=sheet.pk, row=2, col=3, value="hello")
    assert Cell.objects.get(sheet=sheet, row=2, col=3).value == "hello"
    assert signal_queue.ws_signals["-demo.sheet.%d" % sheet.pk] == [
        ("html.forms.set", {"selector": "#sheet-form",
                            "values": [{"name": "c-2-3", "value": "hello"}]}),
        ("html.text", {"selector": "#sheet-status", "content": "D3 = hello"}),
    ]
    # an edit of the same cell updates the row; an empty value clears it
    signal_queue.ws_signals.clear()
    browser_call(window_info, "demo.sheet.set", sheet=str(sheet.pk), row="2", col="3", value="")
    assert Cell.objects.filter(sheet=sheet).count() == 1
    assert signal_queue.ws_signals["-demo.sheet.%d" % sheet.pk][1] == (
        "html.text", {"selector": "#sheet-status", "content": "D3 cleared"})


@pytest.mark.parametrize("opts", [
    {"row": 10, "col": 0}, {"row": 0, "col": 6}, {"row": -1, "col": 0},
    {"row": "x", "col": 0}, {"sheet": 999999, "row": 0, "col": 0},
])
def test_sheet_refuses_cells_outside_it(signal_queue, window_info, opts):
    sheet = Sheet.objects.create(name="bounds")
    browser_call(window_info, "demo.sheet.set", **dict({"sheet": sheet.pk, "value": "v"}, **opts))
    assert not Cell.objects.exists()
    assert signal_queue.ws_signals == {}


def test_sheet_value_is_cut_to_the_cell_size(signal_queue, window_info):
    sheet = Sheet.objects.create(name="long")
    browser_call(window_info, "demo.sheet.set", sheet=sheet.pk, row=0, col=0, value="x" * 500)
    assert Cell.objects.get().value == "x" * 100


# ---- chat ---------------------------------------------------------------------------


def form(**values):
    return [{"name": name, "value": value} for name, value in values.items()]


def test_chat_page_renders_the_history_and_joins_the_room(client):
    room = Room.objects.create(name="lobby")
    for n in range(55):
        Message.objects.create(room=room, author="a", text="message %d" % n)
    Message.objects.create(room=Room.objects.create(name="other"), author="b", text="elsewhere")
    response = client.get("/chat/lobby/")
    content = response.content.decode()
    shown = re.findall(r'<span class="text">(message \d+)</span>', content)
    assert shown == ["message %d" % n for n in range(5, 55)]  # the last 50, oldest first
    assert "elsewhere" not in content
    assert 'href="/chat/other/"' in content and 'href="/chat/python/"' in content
    assert "-demo.room.%d" % room.pk in topics_of(response)
    assert client.get("/chat/").url == "/chat/lobby/"


def test_chat_message_is_stored_and_appended_in_the_room(signal_queue, window_info):
    room = Room.objects.create(name="r")
    browser_call(window_info, "demo.chat.post", room=room.pk,
                 form_data=form(author="Ada", text="<b>hi</b>"))
    message = Message.objects.get()
    assert (message.room, message.author, message.text) == (room, "Ada", "<b>hi</b>")
    [(signal, opts)] = signal_queue.ws_signals["-demo.room.%d" % room.pk]
    assert (signal, opts["selector"]) == ("html.append", "#chat-log")
    assert ('<li class="message" id="message-%d"><span class="author">Ada</span> '
            '<span class="text">&lt;b&gt;hi&lt;/b&gt;</span>' % message.pk) in opts["content"]
    # the sender's window: its text field emptied
    assert signal_queue.ws_signals["-window." + window_info.window_key][0] == (
        "html.forms.set", {"selector": "#chat-form", "values": [{"name": "text", "value": ""}]})


def test_chat_invalid_message_is_refused_with_the_errors(signal_queue, window_info):
    room = Room.objects.create(name="r")
    browser_call(window_info, "demo.chat.post", room=room.pk, form_data=form(author="Ada", text=""))
    browser_call(window_info, "demo.chat.post", room=room.pk + 1000,
                 form_data=form(author="Ada", text="no such room"))
    assert not Message.objects.exists()
    [(signal, opts)] = signal_queue.ws_signals["-window." + window_info.window_key]
    assert (signal, opts["selector"]) == ("html.text", "#chat-error")
    assert "text" in opts["content"] and "required" in opts["content"]
