"""tests/native's project settings for several hosts: the channel layer's
``hosts`` from ``LAYER_HOSTS_JSON`` (one URL per Redis shard, list order =
shard index, as channels_redis shards), plus the ``mhapp`` signals."""
import json
import os

from nativeproj.settings import *  # noqa: F401,F403
from nativeproj.settings import CHANNEL_LAYERS, INSTALLED_APPS

# socket_timeout None: redis-py 8 reads with a 5 s timeout by default, which
# breaks channels_redis' blocking receive (BZPOPMIN 5) of a Channels worker
# (channels_redis issue 422); the C layer ignores the key.
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [
    {"address": url, "socket_timeout": None} for url in json.loads(os.environ["LAYER_HOSTS_JSON"])]
INSTALLED_APPS = INSTALLED_APPS + ["mhapp"]
ALLOWED_HOSTS = ["*"]  # the hosts' own addresses (127.0.0.x, 10.213.x.y)
