"""``{% load websockets %}``: ``{% js_call %}`` and ``{% js_calls %}`` render a
``data-df-signal`` attribute read by the browser client."""
import json

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()


class JSCall:
    """One browser-side binding: call signal ``name`` on event ``on``."""

    def __init__(self, name, on=None, opts=None, form=None, value=None, prevent=None):
        self.name = name
        self.on = on
        self.opts = opts if opts is not None else {}
        self.form = form
        self.value = value
        self.prevent = prevent

    def to_dict(self):
        result = {"name": self.name, "prevent": self.prevent}
        if self.on:
            result["on"] = self.on
        result["opts"] = self.opts
        if self.form:
            result["form"] = self.form
        if self.value:
            result["value"] = self.value
        return result

    get_json_dict = to_dict  # upstream's name

    def __str__(self):
        return json.dumps(self.to_dict())


def _render(calls):
    data = json.dumps([call.to_dict() for call in calls])
    return mark_safe(' data-df-signal="%s" ' % escape(data))


@register.simple_tag
def js_call(name, on=None, form=None, value=None, prevent=None, **kwargs):
    """``{% js_call "signal.name" on="change" form="form_data" id=42 %}``."""
    return _render([JSCall(name, on=on, opts=kwargs, form=form, value=value, prevent=prevent)])


@register.simple_tag
def js_calls(*calls):
    """``{% js_calls call1 call2 %}`` with JSCall objects from the context."""
    return _render(calls)
