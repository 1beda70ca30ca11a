"""tests/native's project settings, with the channel layer's ``hosts`` taken
from ``LAYER_HOSTS_JSON`` (a JSON list: URLs, or Sentinel entries whose
``sentinels`` pairs become tuples, as a settings file would write them)."""
import json
import os

from nativeproj.settings import *  # noqa: F401,F403
from nativeproj.settings import CHANNEL_LAYERS

_HOSTS = os.environ.get("LAYER_HOSTS_JSON")
if _HOSTS:
    def _entry(h):
        if isinstance(h, dict) and "sentinels" in h:
            return dict(h, sentinels=[tuple(s) for s in h["sentinels"]])
        return h

    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [_entry(h) for h in json.loads(_HOSTS)]
