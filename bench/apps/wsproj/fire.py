#!/usr/bin/env python3
"""Broadcast trigger process of bench/native_bench.py: another process than
the server, like a Celery worker or ``manage.py shell`` would be.

Configures Django with wsproj.settings, then reads JSON commands on stdin:
  {"cmd": "fire", "seqs": [1, 2, ...], "interval": 0}
    -> for each seq: trigger(WindowInfo(), "bench.tick", to=[BROADCAST],
       seq=seq, ts=time.time()) and answers one line
       {"event": "fired", "fired": [[seq, ts_before, ts_after], ...]}
  {"cmd": "quit"}
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wsproj.settings")

import django  # noqa: E402

django.setup()

from df_websockets.tasks import BROADCAST, trigger  # noqa: E402
from df_websockets.window_info import WindowInfo  # noqa: E402


def main():
    window_info = WindowInfo()
    print(json.dumps({"event": "ready"}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        fired = []
        for seq in cmd["seqs"]:
            ts = time.time()
            trigger(window_info, "bench.tick", to=[BROADCAST], seq=seq, ts=ts)
            fired.append([seq, ts, time.time()])
            if cmd.get("interval"):
                time.sleep(cmd["interval"])
        print(json.dumps({"event": "fired", "fired": fired}), flush=True)


if __name__ == "__main__":
    main()
