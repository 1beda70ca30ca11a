"""Turn Django's ``CHANNEL_LAYERS["default"]`` into the JSON the C channel
layer reads (``dfws_layer_config_parse_json`` in server/layer.h).

Only plain data crosses: hosts become URL strings, ``channel_capacity``
patterns become tagged rules (``{"glob": ...}`` for strings,
``{"regex": ...}`` for compiled regexes, translated to POSIX extended
syntax), byte keys become ``{"base64": ...}``. The backend's dotted class
path is kept and classified as ``"redis"`` (channels_redis core layer),
``"pubsub"`` (channels_redis pub/sub layer), ``"memory"`` (Channels'
in-memory layer, or no layer configured) or ``"unsupported"`` (anything
else: the server refuses to start with a clear message instead of silently
talking a different protocol).

The pub/sub layer of channels_redis 4.3 reads ``hosts``, ``prefix``,
``symmetric_encryption_keys`` and ``serializer_format``; it accepts
``on_disconnect``/``on_reconnect`` and every other keyword without using
them (no expiry, capacity or random prefix): so does this translation.
"""

import base64
import json
import re
from urllib.parse import quote

REDIS_CORE = "channels_redis.core.RedisChannelLayer"
REDIS_PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
IN_MEMORY = "channels.layers.InMemoryChannelLayer"

EMBEDDED = "df_websockets.layers.EmbeddedChannelLayer"

_PUBSUB_PREFIX = re.compile(r"[A-Za-z0-9._-]{0,58}")

_KIND = {REDIS_CORE: "redis", REDIS_PUBSUB: "pubsub", IN_MEMORY: "memory", EMBEDDED: "memory"}

# Python regex escapes and their POSIX ERE equivalents (glibc regcomp).
_ESCAPES = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "w": "[A-Za-z0-9_]",
    "W": "[^A-Za-z0-9_]",
    "s": "[ \t\n\r\f\v]",
    "S": "[^ \t\n\r\f\v]",
}


def _host_url(entry, index):
    if isinstance(entry, bytes):
        entry = entry.decode("utf8")
    if isinstance(entry, str):
        return entry
    if isinstance(entry, (tuple, list)):
        if len(entry) != 2:
            raise ValueError(f"hosts[{index}]: expected (host, port), got {entry!r}")
        host, port = entry
        host = str(host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"redis://{host}:{int(port)}"
    if isinstance(entry, dict):
        if "address" in entry:
            return _host_url(entry["address"], index)
        if "master_name" in entry or "sentinels" in entry:
            return _sentinel_host(entry, index)
        userinfo = ""
        username = entry.get("username")
        password = entry.get("password")
        if username or password:
            userinfo = quote(str(username or ""), safe="")
            if password:
                userinfo += ":" + quote(str(password), safe="")
            userinfo += "@"
        db = int(entry.get("db", 0) or 0)
        if entry.get("path") or entry.get("unix_socket_path"):
            path = entry.get("path") or entry.get("unix_socket_path")
            url = f"unix://{userinfo}{path}"
            return url + (f"?db={db}" if db else "")
        scheme = "rediss" if entry.get("ssl") else "redis"
        host = str(entry.get("host", "localhost"))
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        port = int(entry.get("port", 6379))
        return f"{scheme}://{userinfo}{host}:{port}" + (f"/{db}" if db else "")
    raise ValueError(f"hosts[{index}]: unsupported host entry {entry!r}")


def _sentinel_host(entry, index):
    """channels_redis' Sentinel entry (``create_pool``: ``master_name``,
    ``sentinels`` as ``(host, port)`` pairs, ``sentinel_kwargs`` for the
    sentinels, the other keys for the master) -> plain data for the C layer,
    which asks the sentinels itself (server/layer_sentinel.h)."""
    name = entry.get("master_name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"hosts[{index}]: master_name must be a non-empty string")
    sentinels = entry.get("sentinels")
    if not isinstance(sentinels, (list, tuple)) or not sentinels:
        raise ValueError(f"hosts[{index}]: sentinels must be a non-empty list of (host, port)")
    pairs = []
    for s in sentinels:
        if not isinstance(s, (list, tuple)) or len(s) != 2:
            raise ValueError(f"hosts[{index}]: sentinel {s!r} is not a (host, port) pair")
        pairs.append([str(s[0]), int(s[1])])
    out = {"master_name": name, "sentinels": pairs}
    kwargs = entry.get("sentinel_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"hosts[{index}]: sentinel_kwargs must be a dict")
    if kwargs.get("ssl") or entry.get("ssl"):
        raise ValueError(f"hosts[{index}]: TLS is not supported by the C layer")
    skw = {k: str(kwargs[k]) for k in ("username", "password") if kwargs.get(k)}
    if skw:
        out["sentinel_kwargs"] = skw
    for k in ("username", "password"):
        if entry.get(k):
            out[k] = str(entry[k])
    if entry.get("db"):
        out["db"] = int(entry["db"])
    return out


def _hosts(hosts):
    if not hosts:
        return ["redis://localhost:6379"]
    if isinstance(hosts, (str, bytes)):
        raise ValueError("You must pass a list of Redis hosts, even if there is only one.")
    return [_host_url(entry, i) for i, entry in enumerate(hosts)]


def regex_to_posix(pattern):
    """Translate a Python regex (as used with ``re.match``) into POSIX
    extended syntax. Raises ValueError for what POSIX cannot express."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern):
                raise ValueError(f"regex {pattern!r}: trailing backslash")
            n = pattern[i + 1]
            if n in _ESCAPES:
                rep = _ESCAPES[n]
                if in_class:
                    if n.isupper():
                        raise ValueError(f"regex {pattern!r}: \\{n} inside [...] is not supported")
                    rep = rep[1:-1]
                out.append(rep)
            elif n in "AZbB" or n.isdigit():
                raise ValueError(f"regex {pattern!r}: \\{n} is not supported by the C layer")
            elif in_class and n in "]\\^-":
                raise ValueError(f"regex {pattern!r}: escaped {n!r} inside [...] is not supported")
            elif n.isalnum():
                raise ValueError(f"regex {pattern!r}: \\{n} is not supported by the C layer")
            else:
                out.append("\\" + n)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            # a leading ] or ^] is literal in both dialects
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
            i += 1
            continue
        if c == "(" and pattern[i + 1 : i + 2] == "?":
            if pattern[i + 2 : i + 3] == ":":
                out.append("(")
                i += 3
                continue
            raise ValueError(f"regex {pattern!r}: (?...) groups are not supported by the C layer")
        if c in "*+?}" and pattern[i + 1 : i + 2] == "?":
            raise ValueError(f"regex {pattern!r}: lazy quantifiers are not supported by the C layer")
        out.append(c)
        i += 1
    if in_class:
        raise ValueError(f"regex {pattern!r}: unterminated [")
    return "".join(out)


def _capacity_rules(channel_capacity):
    rules = []
    for pattern, capacity in (channel_capacity or {}).items():
        if hasattr(pattern, "match"):
            flags = getattr(pattern, "flags", 0) & ~re.UNICODE
            if flags:
                raise ValueError(f"channel_capacity regex {pattern.pattern!r}: flags are not supported")
            source = pattern.pattern
            if isinstance(source, bytes):
                source = source.decode("utf8")
            rules.append({"regex": regex_to_posix(source), "capacity": int(capacity)})
        else:
            rules.append({"glob": str(pattern), "capacity": int(capacity)})
    return rules


def _keys(keys):
    if not keys:
        return []
    if isinstance(keys, (str, bytes)):
        raise ValueError("symmetric_encryption_keys must be a list of possible keys")
    out = []
    for key in keys:
        if isinstance(key, str):
            out.append(key)
        elif isinstance(key, (bytes, bytearray)):
            out.append({"base64": base64.b64encode(bytes(key)).decode("ascii")})
        else:
            raise ValueError(f"symmetric_encryption_keys: {type(key).__name__} is not str or bytes")
    return out


def to_dict(layer_settings):
    """The configuration as a JSON-ready dict (see to_json)."""
    layer_settings = layer_settings or {}
    backend = layer_settings.get("BACKEND") or IN_MEMORY
    if not isinstance(backend, str):
        backend = f"{backend.__module__}.{backend.__qualname__}"
    config = dict(layer_settings.get("CONFIG") or {})
    kind = _KIND.get(backend, "unsupported")
    result = {"backend": backend, "kind": kind}
    if kind == "unsupported":
        return result
    if kind in ("redis", "pubsub"):
        result["hosts"] = _hosts(config.get("hosts"))
        prefix = config.get("prefix", "asgi")
        if not isinstance(prefix, str):
            raise ValueError("Prefix must be unicode")
        result["prefix"] = prefix
        result["symmetric_encryption_keys"] = _keys(config.get("symmetric_encryption_keys"))
        if config.get("serializer_format", "msgpack") != "msgpack":
            raise ValueError("serializer_format: only 'msgpack' is supported by the C layer")
    if kind == "pubsub":
        # channels_redis.pubsub names channels "<prefix>specific.<32 hex>";
        # the C layer holds them to Channels' channel-name rules
        if not _PUBSUB_PREFIX.fullmatch(result["prefix"]):
            raise ValueError(
                f"prefix {result['prefix']!r}: with the pub/sub layer the C server names channels "
                "'<prefix>specific.<id>', so the prefix may hold only ASCII letters, digits, "
                "'-', '_' and '.', and at most 58 of them"
            )
        return result
    for name in ("expiry", "group_expiry", "capacity"):
        if config.get(name) is not None:
            result[name] = int(config[name])
    result["channel_capacity"] = _capacity_rules(config.get("channel_capacity"))
    if kind == "redis" and config.get("random_prefix_length", 12) != 12:
        raise ValueError("random_prefix_length: only 12 is supported by the C layer")
    return result


def to_json(layer_settings: dict) -> str:
    """``CHANNEL_LAYERS["default"]`` (``{"BACKEND": ..., "CONFIG": {...}}``,
    or None for "no layer configured") -> JSON for the C layer."""
    return json.dumps(to_dict(layer_settings), sort_keys=True)
