"""Constants shared by df_websockets' modules (names kept from upstream 1.2.5)."""

WORKER_CELERY = "celery"
WORKER_CHANNEL = "channels"
WORKER_PROCESS = "process"
WORKER_THREAD = "thread"
WORKER_MODES = (WORKER_CELERY, WORKER_CHANNEL, WORKER_PROCESS, WORKER_THREAD)
# names printed in upstream's README; accepted as aliases
WORKER_ALIASES = {"multithread": WORKER_THREAD, "multiprocess": WORKER_PROCESS}

WEBSOCKET_URL_COOKIE_NAME = "dfwsurl"
WEBSOCKET_KEY_COOKIE_NAME = "dfwskey"


class RemovedInDfWebsockets2Warning(PendingDeprecationWarning):
    """Emitted when a deprecated setting or API is used."""

# A window whose key has no topics in the cache (its page was rendered by a
# process whose cache it cannot read, or before a restart that emptied a
# per-process cache) is deaf: the server tells it with this signal (the
# native socket of dfws-asgi) or closes it with this code (the Python
# consumer does both); the browser client then gets a new window key.
UNKNOWN_WINDOW_SIGNAL = "df_websockets.unknown_window"
UNKNOWN_WINDOW_CLOSE_CODE = 4004
UNKNOWN_WINDOW_REASON = "unknown window key"

# manage.py runserver -> its dfws-asgi: the file where the server lists its
# modules' files for runserver's reloader (df_websockets.devserver)
RUNSERVER_MODULES_ENV = "DFWS_RUNSERVER_MODULES"
