"""The live parts of the sheet and the chat: ``bind_model`` sends every saved
cell and message to the windows showing its sheet or room (their views call
``set_websocket_topics(request, sheet_or_room)``), with built-in browser
signals only: no JavaScript of the demo's own.

Registered once, from ``DemoConfig.ready()``.
"""
from django.template.loader import render_to_string

from df_websockets.binding import bind_model

from demo.models import Cell, Message

SHEET_FORM = "#sheet-form"
SHEET_STATUS = "#sheet-status"
CHAT_LOG = "#chat-log"


def cell_value(cell, deleted):
    """html.forms.set: the cell's input in every window showing the sheet."""
    return {"selector": SHEET_FORM,
            "values": [{"name": cell.field_name, "value": "" if deleted else cell.value}]}


def cell_status(cell, deleted):
    """html.text: the sheet's last change, as text (never parsed as HTML)."""
    return {"selector": SHEET_STATUS,
            "content": "%s cleared" % cell.label if deleted or not cell.value
            else "%s = %s" % (cell.label, cell.value)}


def new_message(message, deleted):
    """html.append: the message at the end of the room's log (escaped by the template)."""
    return {"selector": CHAT_LOG,
            "content": "" if deleted else render_to_string("demo/chat_message.html",
                                                           {"message": message})}


def bind():
    bind_model(Cell, "html.forms.set", serialize=cell_value, to=lambda cell: [cell.sheet])
    bind_model(Cell, "html.text", serialize=cell_status, to=lambda cell: [cell.sheet])
    bind_model(Message, "html.append", serialize=new_message,
               to=lambda message: [message.room])
