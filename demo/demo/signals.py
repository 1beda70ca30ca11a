"""Server-side signals called by the demo pages.

Every handler is callable from browsers (``is_allowed_to=everyone``) and
answers by triggering one built-in browser signal on the calling window
(``to=[WINDOW]``), except ``demo.broadcast`` which updates every open window
(``to=[BROADCAST]``), and the sheet's and the chat's, which save to the
database (``demo.live`` sends the change to the windows of that sheet or room).

Browsers are untrusted: handlers never echo client-provided text as HTML (they
use ``html.text`` or escape it) and validate their arguments.
"""
import logging

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from df_websockets.decorators import everyone, signal
from df_websockets.tasks import WINDOW, trigger
from df_websockets.utils import SerializedForm

from demo.broadcast import broadcast, next_count
from demo.forms import ChatForm, DemoForm
from demo.models import CELL_MAX_LENGTH, COLUMNS, ROWS, Cell, Message, Room, Sheet

logger = logging.getLogger(__name__)

PREVIEW_MAX_LENGTH = 80


def _click(window_info, name):
    """Number of clicks of this window on this signal's button (1, 2, ...)."""
    return next_count("%s:%s" % (name, getattr(window_info, "window_key", None) or "-"))


def _to_window(window_info, browser_signal, **opts):
    trigger(window_info, browser_signal, to=[WINDOW], **opts)


@signal(path="demo.html.after", is_allowed_to=everyone)
def html_after(window_info):
    n = _click(window_info, "html.after")
    _to_window(
        window_info,
        "html.after",
        selector="#after-anchor",
        content=format_html('<div class="box inserted">inserted after the anchor ({})</div>', n),
    )


@signal(path="demo.html.append", is_allowed_to=everyone)
def html_append(window_info):
    n = _click(window_info, "html.append")
    _to_window(
        window_info,
        "html.append",
        selector="#append-list",
        content=format_html('<li class="inserted">appended item {}</li>', n),
    )


@signal(path="demo.html.prepend", is_allowed_to=everyone)
def html_prepend(window_info):
    n = _click(window_info, "html.prepend")
    _to_window(
        window_info,
        "html.prepend",
        selector="#prepend-list",
        content=format_html('<li class="inserted">prepended item {}</li>', n),
    )


@signal(path="demo.html.before", is_allowed_to=everyone)
def html_before(window_info):
    n = _click(window_info, "html.before")
    _to_window(
        window_info,
        "html.before",
        selector="#before-anchor",
        content=format_html('<div class="box inserted">inserted before the anchor ({})</div>', n),
    )


@signal(path="demo.html.content", is_allowed_to=everyone)
def html_content(window_info):
    n = _click(window_info, "html.content")
    _to_window(
        window_info,
        "html.content",
        selector="#content-target",
        content=format_html("<strong>new content</strong>, version {}", n),
    )


@signal(path="demo.html.replace_with", is_allowed_to=everyone)
def html_replace_with(window_info):
    n = _click(window_info, "html.replace_with")
    # the new element keeps the id, so the next click replaces it again
    _to_window(
        window_info,
        "html.replace_with",
        selector="#replace-target",
        content=format_html(
            '<p id="replace-target" class="box replaced">replacement element {}</p>', n
        ),
    )


@signal(path="demo.html.empty", is_allowed_to=everyone)
def html_empty(window_info):
    _to_window(window_info, "html.empty", selector="#empty-list")


@signal(path="demo.html.remove", is_allowed_to=everyone)
def html_remove(window_info):
    _to_window(window_info, "html.remove", selector="#remove-list li:last-child")


@signal(path="demo.html.add_class", is_allowed_to=everyone)
def html_add_class(window_info):
    _to_window(window_info, "html.add_class", selector="#add-class-target", class_name="highlight")


@signal(path="demo.html.remove_class", is_allowed_to=everyone)
def html_remove_class(window_info):
    _to_window(
        window_info, "html.remove_class", selector="#remove-class-target", class_name="highlight"
    )


@signal(path="demo.html.remove_attr", is_allowed_to=everyone)
def html_remove_attr(window_info):
    _to_window(
        window_info, "html.remove_attr", selector="#remove-attr-target", attr_name="disabled"
    )


@signal(path="demo.html.add_attribute", is_allowed_to=everyone)
def html_add_attribute(window_info):
    n = _click(window_info, "html.add_attribute")
    _to_window(
        window_info,
        "html.add_attribute",
        selector="#add-attribute-target",
        attr_name="placeholder",
        attr_value="placeholder set by the server (%d)" % n,
    )


@signal(path="demo.html.boolean_attribute", is_allowed_to=everyone)
def html_boolean_attribute(window_info, state=True):
    if not isinstance(state, bool):
        logger.warning("demo.html.boolean_attribute: ignoring invalid state %r", state)
        return
    _to_window(
        window_info,
        "html.boolean_attribute",
        selector="#boolean-attribute-target",
        name="disabled",
        value=state,
    )


@signal(path="demo.html.text", is_allowed_to=everyone)
def html_text(window_info):
    n = _click(window_info, "html.text")
    # html.text sets textContent: the markup is shown, not interpreted
    _to_window(
        window_info,
        "html.text",
        selector="#text-target",
        content="<b>this is text, not bold</b> (%d)" % n,
    )


@signal(path="demo.html.download_file", is_allowed_to=everyone)
def html_download_file(window_info):
    _to_window(
        window_info,
        "html.download_file",
        url=reverse("download_sample"),
        filename="dfws-demo.txt",
    )


@signal(path="demo.html.focus", is_allowed_to=everyone)
def html_focus(window_info):
    _to_window(window_info, "html.focus", selector="#focus-target")


FORM_PRESETS = {
    "filled": [
        {"name": "title", "value": "set by the server"},
        {"name": "agree", "value": True},
        {"name": "color", "value": "green"},
        {"name": "tags", "value": ["python", "c"]},
        {"name": "size", "value": "large"},
        {"name": "notes", "value": "These values come from demo.signals."},
    ],
    "cleared": [
        {"name": "title", "value": ""},
        {"name": "agree", "value": False},
        {"name": "color", "value": []},
        {"name": "tags", "value": []},
        {"name": "size", "value": "small"},
        {"name": "notes", "value": ""},
    ],
}


@signal(path="demo.html.forms.set", is_allowed_to=everyone)
def html_forms_set(window_info, preset="filled"):
    values = FORM_PRESETS.get(preset)
    if values is None:
        logger.warning("demo.html.forms.set: unknown preset %r", preset)
        return
    _to_window(window_info, "html.forms.set", selector="#forms-set-target", values=values)


@signal(path="demo.hello", is_allowed_to=everyone)
def hello(window_info):
    """The index page's button: proves the round trip works."""
    n = _click(window_info, "hello")
    _to_window(
        window_info,
        "html.text",
        selector="#hello-target",
        content="The server answered through the websocket (%d)." % n,
    )


@signal(path="demo.broadcast", is_allowed_to=everyone)
def broadcast_click(window_info):
    """Updates ``#broadcast-target`` in every open window."""
    broadcast(source="click")


@signal(path="demo.form.preview", is_allowed_to=everyone)
def form_preview(window_info, name=""):
    text = str(name)[:PREVIEW_MAX_LENGTH].strip()
    _to_window(
        window_info,
        "html.text",
        selector="#form-preview",
        content=("Hello, %s!" % text) if text else "Type your name above.",
    )


@signal(path="demo.form.submit", is_allowed_to=everyone)
def form_submit(window_info, form_data: SerializedForm(DemoForm) = None):
    """Validates the serialized form on the server and shows the result."""
    if form_data is None or not form_data.is_bound:
        _to_window(window_info, "html.text", selector="#form-result", content="No form data.")
        return
    if form_data.is_valid():
        data = form_data.cleaned_data
        content = format_html(
            '<p class="ok">Thank you, {}! Favourite color: {}; newsletter: {}.</p>',
            data["name"],
            data["color"],
            "yes" if data["newsletter"] else "no",
        )
        _to_window(window_info, "html.content", selector="#form-result", content=content)
        _to_window(window_info, "html.remove_class", selector="#demo-form", class_name="invalid")
    else:
        errors = sorted(form_data.errors.items())
        items = format_html_join(
            "", "<li>{}: {}</li>", ((field, " ".join(messages)) for field, messages in errors)
        )
        content = format_html('<ul class="errors">{}</ul>', items)
        _to_window(window_info, "html.content", selector="#form-result", content=content)
        _to_window(window_info, "html.add_class", selector="#demo-form", class_name="invalid")


# ---- the shared sheet and the chat rooms ----------------------------------------
# The handlers only write to the database: demo.live's bind_model sends the
# saved cell or message to every window of that sheet or room.


@signal(path="demo.sheet.set", is_allowed_to=everyone)
def sheet_set(window_info, sheet: int, row: int, col: int, value=""):
    if not (0 <= row < ROWS and 0 <= col < len(COLUMNS)):
        logger.warning("demo.sheet.set: no cell at row %r, column %r", row, col)
        return
    value = str(value)[:CELL_MAX_LENGTH]
    try:
        sheet = Sheet.objects.get(pk=sheet)
    except Sheet.DoesNotExist:
        logger.warning("demo.sheet.set: no sheet %r", sheet)
        return
    Cell.objects.update_or_create(sheet=sheet, row=row, col=col, defaults={"value": value})


@signal(path="demo.chat.post", is_allowed_to=everyone)
def chat_post(window_info, room: int, form_data: SerializedForm(ChatForm) = None):
    try:
        room = Room.objects.get(pk=room)
    except Room.DoesNotExist:
        logger.warning("demo.chat.post: no room %r", room)
        return
    if form_data is None or not form_data.is_valid():
        errors = form_data.errors.as_text() if form_data is not None else "no form data"
        _to_window(window_info, "html.text", selector="#chat-error", content=errors)
        return
    Message.objects.create(room=room, **form_data.cleaned_data)
    # the sender's text field is emptied; its name is kept
    _to_window(window_info, "html.forms.set", selector="#chat-form",
               values=[{"name": "text", "value": ""}])
    _to_window(window_info, "html.text", selector="#chat-error", content="")
