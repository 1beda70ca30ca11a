"""Register Python functions as df_websockets signals.

>>> @signal(path="myproject.hello", is_allowed_to=everyone, queue="fast")
... def hello(window_info, content: str = None): ...
"""
import inspect
import logging
import random
import re

from df_websockets import ws_settings

logger = logging.getLogger("df_websockets.signals")

# signal path -> list of connections (several functions may share a path)
REGISTERED_SIGNALS = {}

_IDENTIFIER = re.compile(r"^([_a-zA-Z]\w*)(\.[_a-zA-Z]\w*)*$")


# ---- permission helpers: (connection, window_info, kwargs) -> bool ----------
def server_side(connection, window_info, kwargs):
    """Default: browsers may not call the signal."""
    return False


def everyone(connection, window_info, kwargs):
    return True


def is_authenticated(connection, window_info, kwargs):
    return bool(window_info and window_info.is_authenticated)


def is_anonymous(connection, window_info, kwargs):
    return bool(window_info and window_info.is_anonymous)


def is_staff(connection, window_info, kwargs):
    return bool(window_info and window_info.is_active and window_info.is_staff)


def is_superuser(connection, window_info, kwargs):
    return bool(window_info and window_info.is_active and window_info.is_superuser)


class has_perm:
    """``is_allowed_to=has_perm("app_label.codename")``."""

    def __init__(self, perm):
        self.perm = perm

    def __call__(self, connection, window_info, kwargs):
        return bool(window_info and window_info.has_perm(self.perm))

    def __repr__(self):
        return "has_perm(%r)" % self.perm


# ---- queues ---------------------------------------------------------------
class DynamicQueueName:
    """Base class of a queue computed at trigger time.

    Subclasses implement ``__call__(connection, window_info, original_kwargs)``
    (returning a queue name) and ``get_available_queues()`` (every name it may
    return, so workers know what to listen to).
    """

    def __call__(self, connection, window_info, original_kwargs):
        raise NotImplementedError

    def get_available_queues(self):
        return {ws_settings.WEBSOCKET_DEFAULT_QUEUE}


class RandomDynamicQueueName(DynamicQueueName):
    """Spread calls over ``prefix0`` … ``prefix<size-1>``."""

    def __init__(self, prefix, size):
        self.prefix = prefix
        self.size = size

    def __call__(self, connection, window_info, original_kwargs):
        return "%s%d" % (self.prefix, random.randrange(self.size))

    def get_available_queues(self):
        return {"%s%d" % (self.prefix, i) for i in range(self.size)}


# ---- connections ------------------------------------------------------------
class Connection:
    """A Python function bound to a signal path.

    Attributes set by the signature analysis: ``required_arguments_names``,
    ``optional_arguments_names``, ``accepted_argument_names`` (sets, without
    ``window_info``), ``accept_kwargs`` and ``argument_types`` (name ->
    converter, from callable annotations that do not come from ``typing``).
    """

    required_function_arg = "window_info"

    def __init__(self, fn, path=None, is_allowed_to=server_side, queue=None):
        self.function = fn
        self.path = path or "%s.%s" % (fn.__module__, fn.__name__)
        if not isinstance(self.path, str) or not _IDENTIFIER.match(self.path):
            raise ValueError("Invalid identifier: %r" % (self.path,))
        self.is_allowed_to = is_allowed_to
        self.queue = queue if queue is not None else ws_settings.WEBSOCKET_DEFAULT_QUEUE
        self.accept_kwargs = False
        self.argument_types = {}
        self.required_arguments_names = set()
        self.optional_arguments_names = set()
        self.accepted_argument_names = set()
        self.signature_check(fn)

    def signature_check(self, fn):
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError) as e:
            raise ValueError("Cannot read the signature of %r: %s" % (fn, e))
        found = False
        for name, param in sig.parameters.items():
            if param.kind == param.VAR_POSITIONAL:
                raise ValueError(
                    "%s: *%s is not allowed in a signal function" % (self.path, name)
                )
            if param.kind == param.VAR_KEYWORD:
                self.accept_kwargs = True
                continue
            if name == self.required_function_arg:
                found = True
                continue
            if param.default is param.empty:
                self.required_arguments_names.add(name)
            else:
                self.optional_arguments_names.add(name)
            ann = param.annotation
            if (
                ann is not param.empty
                and callable(ann)
                and getattr(ann, "__module__", None) != "typing"
            ):
                self.argument_types[name] = ann
        if not found:
            raise ValueError(
                "%s: the function must take a 'window_info' argument"
                % self.path
            )
        self.accepted_argument_names = (
            self.required_arguments_names | self.optional_arguments_names
        )

    def check(self, kwargs):
        """Return a NEW dict of converted arguments, or None (logged) when invalid.

        The caller's dict is never modified, so each handler of a signal sees
        the original values.
        """
        kwargs = kwargs or {}
        result = {}
        for name, value in kwargs.items():
            if name not in self.accepted_argument_names and not self.accept_kwargs:
                logger.warning(
                    'Signal "%s": unexpected argument "%s" (accepted: %s)',
                    self.path, name, ", ".join(sorted(self.accepted_argument_names)),
                )
                return None
            converter = self.argument_types.get(name)
            if converter is not None:
                try:
                    value = converter(value)
                except (ValueError, TypeError) as e:
                    logger.warning(
                        'Signal "%s": invalid value for argument "%s": %s',
                        self.path, name, e,
                    )
                    return None
            result[name] = value
        missing = self.required_arguments_names - set(result)
        if missing:
            logger.warning(
                'Signal "%s": missing required argument(s) %s',
                self.path, ", ".join(sorted(missing)),
            )
            return None
        return result

    def get_queue(self, window_info, original_kwargs):
        if callable(self.queue):
            return str(self.queue(self, window_info, original_kwargs))
        return str(self.queue)

    def accepts_queue(self, window_info, original_kwargs, queue):
        """True when a task received on ``queue`` is meant for this connection.

        A dynamic queue is not picked again in the worker (upstream did, and
        skipped the handler whenever the two random picks differed).
        """
        if queue is None:
            return True
        if isinstance(self.queue, DynamicQueueName):
            try:
                return queue in {str(x) for x in self.queue.get_available_queues()}
            except NotImplementedError:
                pass
        elif not callable(self.queue):
            return str(self.queue) == queue
        return self.get_queue(window_info, original_kwargs) == queue

    def _identity(self):
        fn = self.function
        return (
            getattr(fn, "__module__", None),
            getattr(fn, "__qualname__", repr(fn)),
            self.path,
        )

    def register(self):
        raise NotImplementedError

    def __call__(self, window_info, **kwargs):
        return self.function(window_info, **kwargs)

    def __repr__(self):
        return "<%s %s -> %s.%s>" % (
            self.__class__.__name__, self.path,
            getattr(self.function, "__module__", "?"),
            getattr(self.function, "__qualname__", "?"),
        )


class SignalConnection(Connection):
    def register(self):
        """Add to REGISTERED_SIGNALS; a function registered twice (module
        imported twice, reloaded) replaces its previous registration."""
        connections = REGISTERED_SIGNALS.setdefault(self.path, [])
        identity = self._identity()
        for index, other in enumerate(connections):
            if other._identity() == identity:
                connections[index] = self
                return
        connections.append(self)

    def call(self, window_info, **kwargs):
        from df_websockets.tasks import SERVER, trigger_signal

        return trigger_signal(window_info, self.path, to=SERVER, kwargs=kwargs)


def signal(fn=None, path=None, is_allowed_to=server_side, queue=None, cls=SignalConnection):
    """Register ``fn`` as a signal handler; usable as ``@signal`` or ``@signal(...)``.

    Returns the original function unchanged.
    """

    def wrapped(f):
        cls(f, path=path, is_allowed_to=is_allowed_to, queue=queue).register()
        return f

    if fn is not None:
        return wrapped(fn)
    return wrapped
