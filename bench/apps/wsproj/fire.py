#!/usr/bin/env python3
"""Broadcast trigger process of bench/native_bench.py: another process than
the server, like a Celery worker or ``manage.py shell`` would be.

Configures Django with wsproj.settings, then reads JSON commands on stdin:
  {"cmd": "fire", "seqs": [1, 2, ...], "interval": 0, "pad": 0}
    -> for each seq: trigger(WindowInfo(), "bench.tick", to=[BROADCAST],
       seq=seq, ts=time.time()[, html=...]) and answers one line
       {"event": "fired", "fired": [[seq, ts_before, ts_after], ...]}
     "pad": N adds an html argument of N characters: table rows such as a
     page update carries (markup repeats, the cells vary), so that the
     message is about as compressible as a real one.
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


def html_rows(size):
    """size characters of table rows: the same markup each row, a row
    number, a word and a price drawn from a fixed LCG (the same text every
    run). It never contains "seq" or "ts" as a quoted key, which wsgen scans
    for."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
             "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa"]
    rows, total, state, i = [], 0, 12345, 0
    while total < size:
        state = (state * 1103515245 + 12345) % 2 ** 31
        row = ('<tr class="row-%d"><td>%d</td><td>%s %s</td><td>%d.%02d</td></tr>'
               % (i % 2, i, words[state % 16], words[(state >> 8) % 16],
                  (state >> 4) % 1000, state % 100))
        rows.append(row)
        total += len(row)
        i += 1
    return "".join(rows)[:size]


def main():
    window_info = WindowInfo()
    print(json.dumps({"event": "ready"}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        fired = []
        extra = {"html": html_rows(cmd["pad"])} if cmd.get("pad") else {}
        for seq in cmd["seqs"]:
            ts = time.time()
            trigger(window_info, "bench.tick", to=[BROADCAST], seq=seq, ts=ts, **extra)
            fired.append([seq, ts, time.time()])
            if cmd.get("interval"):
                time.sleep(cmd["interval"])
        print(json.dumps({"event": "fired", "fired": fired}), flush=True)


if __name__ == "__main__":
    main()
