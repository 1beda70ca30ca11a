"""The list of demo pages, one per built-in browser signal of df_websockets.

Each entry names the browser signal it shows, the template that renders its
page (``demo/signals/<slug>.html``) and the server-side signals (defined in
``demo.signals``) that its buttons call.
"""
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class SignalDemo:
    name: str  # built-in browser signal, e.g. "html.after"
    title: str
    description: str
    server_signals: Tuple[str, ...]  # server-side signals called by the page

    @property
    def slug(self):
        return self.name.replace(".", "_")


BUILTIN_SIGNALS = (
    SignalDemo(
        "html.after",
        "Insert after",
        "Inserts HTML right after each element matching the selector (afterend).",
        ("demo.html.after",),
    ),
    SignalDemo(
        "html.append",
        "Append",
        "Inserts HTML at the end of each element matching the selector (beforeend).",
        ("demo.html.append",),
    ),
    SignalDemo(
        "html.prepend",
        "Prepend",
        "Inserts HTML at the beginning of each element matching the selector (afterbegin).",
        ("demo.html.prepend",),
    ),
    SignalDemo(
        "html.before",
        "Insert before",
        "Inserts HTML right before each element matching the selector (beforebegin).",
        ("demo.html.before",),
    ),
    SignalDemo(
        "html.content",
        "Replace content",
        "Replaces the inner HTML of each element matching the selector.",
        ("demo.html.content",),
    ),
    SignalDemo(
        "html.replace_with",
        "Replace element",
        "Replaces each element matching the selector by new HTML (outerHTML).",
        ("demo.html.replace_with",),
    ),
    SignalDemo(
        "html.empty",
        "Empty",
        "Removes every child of each element matching the selector.",
        ("demo.html.empty",),
    ),
    SignalDemo(
        "html.remove",
        "Remove",
        "Removes every element matching the selector.",
        ("demo.html.remove",),
    ),
    SignalDemo(
        "html.add_class",
        "Add a class",
        "Adds a CSS class to each element matching the selector.",
        ("demo.html.add_class",),
    ),
    SignalDemo(
        "html.remove_class",
        "Remove a class",
        "Removes a CSS class from each element matching the selector.",
        ("demo.html.remove_class",),
    ),
    SignalDemo(
        "html.remove_attr",
        "Remove an attribute",
        "Removes an attribute from each element matching the selector.",
        ("demo.html.remove_attr",),
    ),
    SignalDemo(
        "html.add_attribute",
        "Set an attribute",
        "Sets an attribute to a value on each element matching the selector.",
        ("demo.html.add_attribute",),
    ),
    SignalDemo(
        "html.boolean_attribute",
        "Boolean attribute",
        "Sets (truthy value) or removes (falsy value) a boolean attribute.",
        ("demo.html.boolean_attribute",),
    ),
    SignalDemo(
        "html.text",
        "Set text",
        "Replaces the text of each element matching the selector (no HTML parsing).",
        ("demo.html.text",),
    ),
    SignalDemo(
        "html.download_file",
        "Download a file",
        "Makes the browser download a file from a URL.",
        ("demo.html.download_file",),
    ),
    SignalDemo(
        "html.focus",
        "Focus",
        "Gives the focus to the first element matching the selector.",
        ("demo.html.focus",),
    ),
    SignalDemo(
        "html.forms.set",
        "Fill a form",
        "Sets the values of the fields of the forms matching the selector.",
        ("demo.html.forms.set",),
    ),
)

BY_NAME = {demo.name: demo for demo in BUILTIN_SIGNALS}
