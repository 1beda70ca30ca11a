"""The browser's signal call, parsed: one rule set for every path that reads
one.

The Channels consumer (``consumers.DFConsumer.receive``) and the native
endpoint's Python side (``dfws.native``, for calls C hands over) both call
:func:`parse_or_log`; the native endpoint's C side (``server/signal_call.c``)
applies the same rules, and ``tests/signal_calls.json`` holds the cases that
all of them must agree on.

A call is a text frame holding a JSON object::

    {"signal": "<name>", "opts": {...}, "eta"?: int, "expires"?: int, "countdown"?: int}

- the text is strict JSON: no NaN or Infinity, integers that fit in 64 bits
  (what the C parser can hold), finite reals, no lone surrogate and no NUL in
  strings; arrays and objects nest at most 64 deep; a repeated key keeps its
  last value;
- an object with a ``"signal"`` key, or it is not a call (ignored, as
  upstream df_websockets ignores it);
- ``"signal"`` is a string;
- ``"opts"`` is present and an object. Upstream's consumer drops a call
  without ``opts`` (its browser client forgot to send it when a call had no
  arguments; ours always sends it), and null is not an object;
- ``"eta"``, ``"expires"``, ``"countdown"`` are absent, null or JSON integers
  (not strings, reals or booleans); 0 means none, as upstream's
  ``int(x or 0) or None``.

Other keys (``"signal_id"``) are ignored. Whether the signal exists and its
arguments fit is decided by whoever dispatches the call.
"""
import json
import logging
import math
from collections import namedtuple

logger = logging.getLogger("df_websockets.signals")

MAX_DEPTH = 64
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
REASONS = ("invalid_json", "too_deep", "not_a_call", "bad_signal", "missing_opts",
           "bad_opts", "bad_eta", "bad_expires", "bad_countdown")

SignalCall = namedtuple("SignalCall", "signal opts eta expires countdown")


class SignalCallError(ValueError):
    """A frame that is not an acceptable call; ``reason`` is one of REASONS."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def too_deep(text, limit=MAX_DEPTH):
    """Whether the arrays and objects of text nest deeper than limit, read on
    the characters before any parser (json recurses once per level)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > limit:
                return True
        elif c in "]}" and depth > 0:
            depth -= 1
    return False


def _check_strict(value):
    """What Python's json accepts and RFC 8259 (and so the C side) does not."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                raise SignalCallError("invalid_json", "NUL in a string")
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise SignalCallError("invalid_json", "lone surrogate in a string") from None
        elif isinstance(v, bool):
            pass
        elif isinstance(v, int):
            if not INT_MIN <= v <= INT_MAX:
                raise SignalCallError("invalid_json", "integer out of 64-bit range")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise SignalCallError("invalid_json", "NaN, Infinity or a real out of range")
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _optional_int(msg, key):
    v = msg.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise SignalCallError("bad_" + key, "%s must be an integer" % key)
    return v or None


def parse(text, decoder=None):
    """The call in text (a str), or SignalCallError. decoder: the
    JSONDecoder class to read it with (WEBSOCKET_SIGNAL_DECODER)."""
    if too_deep(text):
        raise SignalCallError("too_deep", "nested deeper than %d levels" % MAX_DEPTH)
    try:
        msg = json.loads(text, cls=decoder)
    except (ValueError, RecursionError) as exc:
        # RecursionError: a custom decoder may recurse more than once a level
        raise SignalCallError("invalid_json", str(exc)) from None
    _check_strict(msg)
    if not isinstance(msg, dict) or "signal" not in msg:
        raise SignalCallError("not_a_call", 'no "signal" key in an object')
    if not isinstance(msg["signal"], str):
        raise SignalCallError("bad_signal", "signal must be a string")
    if "opts" not in msg:
        raise SignalCallError("missing_opts", 'no "opts"')
    if not isinstance(msg["opts"], dict):
        raise SignalCallError("bad_opts", "opts must be an object")
    return SignalCall(msg["signal"], msg["opts"], _optional_int(msg, "eta"),
                      _optional_int(msg, "expires"), _optional_int(msg, "countdown"))


def parse_or_log(text, decoder=None, log=logger):
    """parse(), with what is refused logged (a frame that is not a call at
    debug level, as upstream) and None returned for it."""
    try:
        return parse(text, decoder)
    except SignalCallError as exc:
        if exc.reason == "not_a_call":
            log.debug("frame without signal ignored: %.200r", text)
        elif exc.reason == "invalid_json":
            log.warning("invalid JSON frame ignored (%s): %.200r", exc.detail, text)
        else:
            log.warning("invalid signal call ignored (%s): %.200r", exc.detail, text)
        return None
