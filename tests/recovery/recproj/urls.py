"""The page under test, the client bundle, and a view that triggers signals
(as any view of a project would: in the server process, through its layer).

- ``/page/?topic=T``: subscribes the window to topic T; a handler of
  ``rec.item`` appends ``opts.n`` to ``#items`` (one ``<li>`` per signal
  applied), a handler of ``df_websockets.recovery_failed`` appends its
  topics to ``#failed``; every socket URL the client opens is kept in
  ``window.socketUrls``. Reconnections are quick (backoff 200 ms to 1 s).
- ``/client.js``: the installed df_websockets' bundle.
- ``/trigger/?topic=T&n=1&n=2``: ``trigger(..., "rec.item", to=[T], n=n)``
  for each n, in order.
"""

import os

import df_websockets
from django.http import HttpResponse
from django.urls import path
from django.utils.html import escape

from df_websockets.tasks import set_websocket_topics, trigger
from df_websockets.window_info import WindowInfo

BUNDLE = os.path.join(os.path.dirname(df_websockets.__file__), "static", "js",
                      "df_websockets.min.js")

PAGE = """<!doctype html>
<html><head><title>recovery</title>
<script>
window.socketUrls = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) { super(url, protocols); window.socketUrls.push(url); }
};
window.DFSignals = {config: {backoffBase: 200, backoffMax: 1000, backoffJitter: 0,
                             heartbeatInterval: 1000, heartbeatTimeout: 2000}};
</script>
<script src="/client.js"></script>
<script>
window.received = [];
window.failed = [];
DFSignals.connect('rec.item', (opts) => {
  window.received.push(opts.n);
  const li = document.createElement('li');
  li.textContent = String(opts.n);
  document.getElementById('items').appendChild(li);
});
DFSignals.connect('df_websockets.recovery_failed', (opts) => {
  window.failed.push(opts.topics);
  const li = document.createElement('li');
  li.textContent = JSON.stringify(opts.topics);
  document.getElementById('failed').appendChild(li);
});
</script></head>
<body><p>topic %(topic)s</p><ul id="items"></ul><ul id="failed"></ul></body></html>
"""


def page(request):
    topic = request.GET.get("topic", "rec")
    set_websocket_topics(request, topic)
    return HttpResponse(PAGE % {"topic": escape(topic)})


def client_js(request):
    with open(BUNDLE, "rb") as f:
        return HttpResponse(f.read(), content_type="text/javascript")


def fire(request):
    topic = request.GET.get("topic", "rec")
    info = WindowInfo()
    numbers = [int(n) for n in request.GET.getlist("n")]
    for n in numbers:
        trigger(info, "rec.item", to=[topic], n=n)
    return HttpResponse("fired %d" % len(numbers))


urlpatterns = [
    path("page/", page),
    path("client.js", client_js),
    path("trigger/", fire),
]
