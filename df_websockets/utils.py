"""Helpers: group names, argument converters for signal annotations."""
import hashlib
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms import FileField
from django.utils.datastructures import MultiValueDict


def valid_topic_name(x):
    """Channel-layer group name of a topic string (or bytes): its SHA-256 hex digest."""
    if isinstance(x, str):
        x = x.encode("utf-8")
    return hashlib.sha256(x).hexdigest()


class RE:
    """Converter: ``str(value)`` must match ``pattern`` (from the start).

    Returns group 1 when the pattern has groups, else the original value, then
    applies ``caster``; raises ValueError when it does not match.
    """

    def __init__(self, pattern, caster=None, flags=0):
        self.regexp = re.compile(pattern, flags=flags)
        self.caster = caster

    def __call__(self, value):
        matcher = self.regexp.match(str(value))
        if not matcher:
            raise ValueError("%r does not match %r" % (value, self.regexp.pattern))
        if self.regexp.groups:
            value = matcher.group(1)
        return self.caster(value) if self.caster else value

    def __repr__(self):
        return "RE(%r)" % self.regexp.pattern


class Choice:
    """Converter: ``caster(value)`` must be one of ``values``."""

    def __init__(self, values, caster=None):
        self.values = set(values)
        self.caster = caster

    def __call__(self, value):
        if self.caster:
            value = self.caster(value)
        if value not in self.values:
            raise ValueError("%r is not a valid choice" % (value,))
        return value


class SerializedForm:
    """Converter: a serialized HTML form (``[{"name": …, "value": …}, …]``, as
    sent by the browser client) -> a bound ``form_cls`` instance.

    ``None`` gives an unbound form (or ValueError when ``allow_none`` is False).
    """

    def __init__(self, form_cls, allow_none=True):
        self.form_cls = form_cls
        self.allow_none = allow_none

    def __call__(self, value, *args, **kwargs):
        if value is None:
            if not self.allow_none:
                raise ValueError("a form is required")
            return self.form_cls(*args, **kwargs)
        if not isinstance(value, (list, tuple)):
            raise ValueError("a serialized form must be a list of {name, value}")
        data = MultiValueDict()
        files = MultiValueDict()
        file_fields = {
            name for name, field in getattr(self.form_cls, "base_fields", {}).items()
            if isinstance(field, FileField)
        }
        prefix = kwargs.get("prefix")
        for item in value:
            if not isinstance(item, dict) or "name" not in item:
                raise ValueError("invalid serialized form item %r" % (item,))
            name, item_value = item["name"], item.get("value")
            field_name = name
            if prefix and name.startswith(prefix + "-"):
                field_name = name[len(prefix) + 1:]
            if field_name in file_fields:
                if item_value:
                    files.appendlist(
                        name, SimpleUploadedFile(str(item_value), str(item_value).encode("utf-8"))
                    )
            else:
                data.appendlist(name, item_value)
        return self.form_cls(data, files, *args, **kwargs)
