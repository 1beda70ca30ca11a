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
