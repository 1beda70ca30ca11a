"""Slow steps for the capacity tests: a handshake to WEBSOCKET_URL with
``?slowconnect=S`` spends S seconds in the middleware chain; with
NATIVE_DECODER=nativeapp.slow.SlowDecoder, a browser call whose text holds
``"slowcall"`` spends 0.5 s being decoded (both in dfws' native threads)."""
import json
import time


class SlowConnectMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        delay = request.GET.get("slowconnect") if request.path == "/ws/" else None
        if delay:
            time.sleep(float(delay))
        return self.get_response(request)


class SlowDecoder(json.JSONDecoder):
    def decode(self, s, *args, **kwargs):
        if "slowcall" in s:
            time.sleep(0.5)
        return super().decode(s, *args, **kwargs)
