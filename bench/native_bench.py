#!/usr/bin/env python3
"""df_websockets windows: dfws-asgi's native socket against daphne + Channels.

N windows connect to the Django project bench/apps/wsproj the way a browser
does (bench/wsgen -mode windows): GET /page/ (the view calls
set_websocket_topics, df_websockets' middleware sets the dfwskey/dfwsurl
cookies), then the WebSocket upgrade on /ws/ with those cookies and an Origin
header, and a "--heartbeat--" every --heartbeat seconds. The channel layer is
channels_redis' RedisChannelLayer and Django's Redis cache, both on one
redis-server this script starts (flushed before each server). For each
window count in --windows and each server:

1. memory: server RSS (VmRSS, process tree) with N idle windows minus RSS
   before them (after --warmup-windows windows connected, sent a broadcast
   and closed: one-off costs are not per-window memory), / N;
2. one at a time: --broadcasts broadcasts, each fired by ANOTHER process
   (apps/wsproj/fire.py: df_websockets.tasks.trigger(..., to=[BROADCAST])
   with time.time() in its opts), the next once every window received the
   previous one: per-delivery latency p50/p99 and the time to reach all;
3. burst: --burst broadcasts fired back to back: deliveries/s =
   deliveries / (last receipt - first trigger), latency under that load;
4. lost (never received) and duplicated deliveries;
5. bytes: the frame bytes each delivery took on the wire (what wsgen read,
   headers included, before inflation) and the message's own bytes; with
   --deflate the windows offer permessage-deflate (RFC 7692, no context
   takeover) and wsgen inflates what arrives compressed, so "compressed /
   plain" is what the extension saved. --payload pads the signal with table
   rows (fire.py) so that it is long enough to be compressed at all: dfws
   sends messages under --ws-deflate-threshold (128 bytes) as they are, and
   the bare signal is about 120. --no-server-deflate starts dfws-asgi with
   --no-ws-per-message-deflate: the same offer, refused.

One wsgen process holds up to 19,000 windows (this machine's open-files
limit is 20,000 per process); above that, one process per 19,000, each bound
to its own source address 127.0.0.2, .3, ... (its own ephemeral ports), and
the server needs --workers to hold them.
"""

import argparse
import math
import os
import shlex
import shutil
import sys
import tempfile
import time

import runner

HOST = "127.0.0.1"
PROJ = os.path.join(runner.APPS, "wsproj")
FIRE = os.path.join(PROJ, "fire.py")
APP = "wsproj.asgi:application"
ALL_SERVERS = ("dfws", "daphne")
PER_PROCESS = 19000
# issue 17's targets for dfws
TARGET_RATIO, TARGET_P99, TARGET_KIB, TARGET_P99_19K = 100.0, 0.050, 3.0, 0.250


def server_argv(name, port, args):
    if name == "dfws":
        workers = ["--workers", str(args.workers)] if args.workers > 1 else []
        extra = ["--no-ws-per-message-deflate"] if args.no_server_deflate else []
        return ([args.dfws, "-b", HOST, "-p", str(port), "-v", "0"] + workers + extra
                + shlex.split(args.dfws_args) + [APP])
    return [os.path.join(runner.PEERS_BIN, "daphne"), "-b", HOST, "-p", str(port), "-v", "0",
            APP]


def page_check(port):
    def check():
        status, headers, _ = runner.http_get(port, "/page/")
        cookies = headers.get_all("Set-Cookie") or []
        if status != 200 or not any(c.startswith("dfwskey=") for c in cookies):
            return "GET /page/ answered %d without a dfwskey cookie" % status
        return None
    return check


def open_windows(args, port, count):
    procs = math.ceil(count / PER_PROCESS)
    sources = ["127.0.0.%d" % (2 + i) for i in range(procs)] if procs > 1 else ()
    return runner.Generator("windows", port, count, procs=procs, cpu=args.client_cpu,
                            sources=sources, path="/ws/", page="/page/",
                            origin="http://%s:%d" % (HOST, port),
                            concurrency=args.connect_concurrency, heartbeat=args.heartbeat,
                            deflate=args.deflate)


def fire(trigger, seqs, timeout, pad):
    """Have fire.py trigger the broadcasts seqs, each padded with pad
    characters of html; [(seq, ts before, ts after)]."""
    trigger.tell({"cmd": "fire", "seqs": seqs, "pad": pad})
    answer = trigger.read(timeout)
    if answer is None:
        raise RuntimeError("the trigger process (fire.py) died or hung")
    return answer["fired"]


def merged(gen, seqs):
    """wsgen's stats for seqs, summed over its processes."""
    parts = gen.command({"cmd": "stats", "seqs": seqs}, 120)
    if any(p is None for p in parts):
        raise RuntimeError("a wsgen process died or hung while reporting")
    return {"lat": [x / 1e6 for p in parts for x in p["lat_us"]],
            "last": max(p["last_recv"] for p in parts),
            "dups": sum(p["dups"] for p in parts),
            "unexpected": sum(p["unexpected"] for p in parts),
            "closed": sum(p["closed"] for p in parts),
            "codes": sorted({c for p in parts for c in p["close_codes"]}),
            "wire": sum(p["wire_bytes"] for p in parts),
            "plain": sum(p["message_bytes"] for p in parts),
            "inflate_errors": sum(p["inflate_errors"] for p in parts)}


def measure_windows(srv, args, count, trigger):
    """Steps 1-4 of the module doc on a started server; returns a dict."""
    res = {}
    warm = open_windows(args, srv.port, args.warmup_windows)
    fire(trigger, [0], 30, args.payload)
    waited = warm.command({"cmd": "wait", "seqs": [0], "timeout": 10}, 40)
    warm.close()
    if warm.error or not all(w and w["complete"] for w in waited):
        raise RuntimeError("warm-up windows failed: %s" % (warm.error or waited))
    time.sleep(args.settle)
    rss0 = runner.memory_kib(srv.pids(), "VmRSS")

    t0 = time.monotonic()
    gen = open_windows(args, srv.port, count)
    try:
        res.update(open=gen.open, connect_s=time.monotonic() - t0,
                   deflate_accepted=sum((r or {}).get("deflate_accepted", 0) for r in gen.ready))
        print("  %-7s %d windows open in %.1fs" % (srv.name, gen.open, res["connect_s"]),
              file=sys.stderr)
        if gen.error:
            srv.notes.append(gen.error)
        if not gen.open:
            raise RuntimeError("no window connected")
        time.sleep(args.settle)
        rss1 = runner.memory_kib(srv.pids(), "VmRSS")
        res.update(rss0=rss0, rss1=rss1, kib_per_window=(rss1 - rss0) / gen.open)

        paced = list(range(1, args.broadcasts + 1))
        rounds, calls = [], []

        def one_at_a_time():
            for seq in paced:
                _, before, after = fire(trigger, [seq], 60, args.payload)[0]
                calls.append(after - before)
                waited = gen.command({"cmd": "wait", "seqs": [seq],
                                      "timeout": args.round_timeout}, args.round_timeout + 60)
                if any(w is None for w in waited):
                    raise RuntimeError("a wsgen process died or hung in broadcast %d" % seq)
                rounds.append(max(w["last_recv"] for w in waited) - before)
        _, wall, scpu, ccpu = runner.measure(srv, gen.cpu, one_at_a_time)
        res.update(paced_cpu=scpu / wall, paced_client_cpu=ccpu / wall,
                   round_p50=runner.pct(rounds, 50), round_p99=runner.pct(rounds, 99),
                   trigger_p50=runner.pct(calls, 50))

        burst = list(range(args.broadcasts + 1, args.broadcasts + args.burst + 1))

        def back_to_back():
            fired = fire(trigger, burst, 120, args.payload)
            timeout = args.round_timeout * max(1, args.burst / 4)
            gen.command({"cmd": "wait", "seqs": burst, "timeout": timeout}, timeout + 60)
            return fired
        fired, wall, scpu, ccpu = runner.measure(srv, gen.cpu, back_to_back)
        first_ts = fired[0][1]
        res.update(burst_cpu=scpu / wall, burst_client_cpu=ccpu / wall, burst_scpu=scpu,
                   fire_rate=len(burst) / (fired[-1][2] - first_ts))

        p, b = merged(gen, paced), merged(gen, burst)
        res.update(lat_p50=runner.pct(p["lat"], 50), lat_p99=runner.pct(p["lat"], 99),
                   burst_p50=runner.pct(b["lat"], 50), burst_p99=runner.pct(b["lat"], 99),
                   deliveries_s=len(b["lat"]) / (b["last"] - first_ts)
                   if b["last"] > first_ts else None,
                   lost=gen.open * (len(paced) + len(burst)) - len(p["lat"]) - len(b["lat"]),
                   dups=b["dups"], closed=b["closed"])
        if b["lat"]:
            res["burst_cpu_us"] = res["burst_scpu"] * 1e6 / len(b["lat"])
        delivered = len(p["lat"]) + len(b["lat"])
        if delivered:
            res.update(wire_per_delivery=(p["wire"] + b["wire"]) / delivered,
                       plain_per_delivery=(p["plain"] + b["plain"]) / delivered)
        if p["inflate_errors"] + b["inflate_errors"]:
            srv.notes.append("%d compressed messages did not inflate"
                             % (p["inflate_errors"] + b["inflate_errors"]))
        if b["closed"]:
            srv.notes.append("%d windows closed by the server (codes %s)" % (b["closed"],
                                                                             b["codes"]))
        if res["lost"] or b["dups"] or b["unexpected"]:
            srv.notes.append("%d deliveries lost, %d duplicated, %d unexpected messages"
                             % (res["lost"], b["dups"], b["unexpected"]))
    finally:
        gen.close()
    if srv.alive:
        time.sleep(args.settle)
        res["rss2"] = runner.memory_kib(srv.pids(), "VmRSS")
    return res


def run_server(name, count, args, env, redis, workdir):
    """One server holding `count` windows; returns (Server, results dict)."""
    redis.command(b"FLUSHALL")
    port = runner.free_port()
    # dfws-asgi runs the dfws and df_websockets its environment installed:
    # the checkout on PYTHONPATH would shadow them (and has no built C server)
    server_env = dict(env, PYTHONPATH=PROJ) if name == "dfws" else env
    srv = runner.Server(name, server_argv(name, port, args), port,
                        os.path.join(workdir, "%s-%d.log" % (name, count)), cwd=PROJ,
                        env=server_env, cpu=args.server_cpu)
    res = {}
    print("== %s, %d windows" % (name, count), file=sys.stderr)
    if not srv.launch(page_check(port), args.start_timeout):
        return srv, res
    with open(srv.log_path + ".fire", "wb") as fire_log:
        trigger = runner.JsonProcess([runner.PEERS_PYTHON, FIRE], cwd=PROJ,
                                     env=dict(os.environ, **env), stderr=fire_log)
    try:
        if trigger.read(60) is None:
            raise RuntimeError("the trigger process (fire.py) did not start")
        res = measure_windows(srv, args, count, trigger)
    except RuntimeError as exc:
        srv.error = str(exc)
        print("  %-7s FAILED: %s" % (name, exc), file=sys.stderr)
    finally:
        trigger.close(10)
        srv.finish()
        res["peak_kib"] = srv.peak_kib
    return srv, res


# --------------------------------------------------------------------------
# reporting

def rss_line(r):
    if "rss1" not in r:
        return None
    return "%.1f / %.1f / %s MiB" % (r["rss0"] / 1024, r["rss1"] / 1024,
                                     "%.1f" % (r["rss2"] / 1024) if "rss2" in r else "?")


ROWS = [
    # label, key (or a function of the results), format, ratio: "up" = dfws/daphne
    # is better when larger, "down" = daphne/dfws, None = no ratio
    ("windows connected", "open", "{:d}".format, None),
    ("windows with permessage-deflate", "deflate_accepted", "{:d}".format, None),
    ("connect time (GET + upgrade)", "connect_s", "{:.1f} s".format, "down"),
    ("server RSS before / with windows / after closing", rss_line, str, None),
    ("RSS per idle window", "kib_per_window", "{:.2f} KiB".format, "down"),
    ("one at a time: latency p50", "lat_p50", runner.fmt_ms, "down"),
    ("one at a time: latency p99", "lat_p99", runner.fmt_ms, "down"),
    ("one at a time: time to reach all, p50", "round_p50", runner.fmt_ms, "down"),
    ("one at a time: time to reach all, p99", "round_p99", runner.fmt_ms, "down"),
    ("one at a time: trigger() call in fire.py, p50", "trigger_p50", runner.fmt_ms, None),
    ("one at a time: server CPU", "paced_cpu", "{:.0%}".format, None),
    ("one at a time: load generator CPU", "paced_client_cpu", "{:.0%}".format, None),
    ("burst: deliveries/s", "deliveries_s", "{:,.0f}".format, "up"),
    ("burst: latency p50", "burst_p50", runner.fmt_ms, "down"),
    ("burst: latency p99", "burst_p99", runner.fmt_ms, "down"),
    ("burst: server CPU", "burst_cpu", "{:.0%}".format, None),
    ("burst: server CPU per delivery", "burst_cpu_us", "{:.1f} µs".format, "down"),
    ("burst: load generator CPU", "burst_client_cpu", "{:.0%}".format, None),
    ("burst: trigger rate (fire.py)", "fire_rate", "{:.0f}/s".format, None),
    ("bytes on the wire per delivery", "wire_per_delivery", "{:,.0f}".format, "down"),
    ("message bytes per delivery", "plain_per_delivery", "{:,.0f}".format, None),
    ("compressed / plain", lambda r: r["wire_per_delivery"] / r["plain_per_delivery"]
     if r.get("plain_per_delivery") else None, "{:.2f}".format, None),
    ("lost deliveries", "lost", "{:d}".format, None),
    ("duplicated deliveries", "dups", "{:d}".format, None),
    ("peak RSS (VmHWM)", "peak_kib", runner.fmt_mib, None),
]


def build_table(runs):
    """runs: {(server, count): (Server, results)} -> (head, rows)."""
    cols = list(runs)
    pairs = [c for c in sorted({n for _, n in cols}) if ("dfws", c) in runs
             and ("daphne", c) in runs]
    head = ["measure"] + ["%s, %d" % c for c in cols] + ["dfws vs daphne, %d" % c
                                                          for c in pairs]
    rows = []
    for label, key, fmt, kind in ROWS:
        get = key if callable(key) else (lambda r, k=key: r.get(k))
        row = [label]
        for c in cols:
            srv, res = runs[c]
            value = get(res)
            row.append(fmt(value) if value is not None else ("failed" if srv.error else "-"))
        for c in pairs:
            a, b = get(runs[("dfws", c)][1]), get(runs[("daphne", c)][1])
            row.append("" if not (kind and a and b) else
                       "%.2fx more" % (a / b) if kind == "up" else "%.2fx less" % (b / a))
        rows.append(row)
    return head, rows


def targets(runs):
    """Lines saying whether each of issue 17's targets is met by dfws."""
    lines = []
    d, p = runs.get(("dfws", 2000)), runs.get(("daphne", 2000))
    if d and d[1].get("deliveries_s") and p and p[1].get("deliveries_s"):
        ratio = d[1]["deliveries_s"] / p[1]["deliveries_s"]
        lines.append("%s deliveries/s at 2,000 windows >= 100x daphne's: %.1fx"
                     % ("MET" if ratio >= TARGET_RATIO else "NOT MET", ratio))
    if d and d[1].get("lat_p99") is not None:
        lines.append("%s p99 <= 50 ms at 2,000 windows (one at a time): %s"
                     % ("MET" if d[1]["lat_p99"] <= TARGET_P99 else "NOT MET",
                        runner.fmt_ms(d[1]["lat_p99"])))
    for (name, count), (_, res) in runs.items():
        if name != "dfws":
            continue
        if res.get("kib_per_window") is not None:
            lines.append("%s <= 3 KiB RSS per idle window at %d: %.2f KiB"
                         % ("MET" if res["kib_per_window"] <= TARGET_KIB else "NOT MET", count,
                            res["kib_per_window"]))
        if count == 19000 and res.get("lat_p99") is not None:
            lines.append("%s p99 <= 250 ms for a broadcast to 19,000 windows: %s"
                         % ("MET" if res["lat_p99"] <= TARGET_P99_19K else "NOT MET",
                            runner.fmt_ms(res["lat_p99"])))
        if "lost" in res:
            lines.append("%s nothing lost at %d: %d lost" % ("MET" if res["lost"] == 0
                                                             else "NOT MET", count, res["lost"]))
    return lines


def setup_label(args):
    """What --payload, --deflate, --no-server-deflate and --dfws-args
    changed, for the table's title; empty for the default run."""
    parts = []
    if args.payload:
        parts.append("signals padded to +%d characters" % args.payload)
    if args.deflate:
        parts.append("permessage-deflate offered")
    if args.no_server_deflate:
        parts.append("dfws --no-ws-per-message-deflate")
    if args.dfws_args:
        parts.append("dfws %s" % args.dfws_args)
    return " (%s)" % "; ".join(parts) if parts else ""


def versions(args):
    out = runner.python_versions(runner.PEERS_PYTHON, ["daphne", "Django", "channels",
                                                        "channels-redis", "django-redis"])
    out = {k + " (peers env)": v for k, v in out.items()}
    out.update({k + " (dfws env)": v for k, v in runner.python_versions(
        runner.dfws_python(args.dfws), ["Django", "channels", "channels-redis"]).items()})
    out["dfws-asgi"] = runner.dfws_version(args.dfws)
    out["redis-server"] = runner.redis_version()
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default=",".join(ALL_SERVERS))
    p.add_argument("--windows", default="2000",
                   help="comma-separated window counts, each measured for every server")
    p.add_argument("--workers", type=int, default=1, help="dfws-asgi --workers")
    p.add_argument("--broadcasts", type=int, default=20, help="broadcasts fired one at a time")
    p.add_argument("--burst", type=int, default=20, help="broadcasts fired back to back")
    p.add_argument("--round-timeout", type=float, default=60,
                   help="seconds a broadcast may take to reach every window before the "
                        "missing ones count as lost")
    p.add_argument("--connect-concurrency", type=int, default=32,
                   help="windows each wsgen process opens at a time")
    p.add_argument("--heartbeat", type=float, default=60,
                   help="seconds between a window's heartbeats (df_websockets' default)")
    p.add_argument("--warmup-windows", type=int, default=200,
                   help="windows connected and closed before the idle RSS is read")
    p.add_argument("--settle", type=float, default=2, help="idle seconds before reading RSS")
    p.add_argument("--payload", type=int, default=0, metavar="CHARS",
                   help="html characters added to each broadcast signal (fire.py's table "
                        "rows); 0: the bare signal, ~120 bytes, under dfws' deflate threshold")
    p.add_argument("--deflate", action="store_true",
                   help="the windows offer permessage-deflate (wsgen -deflate)")
    p.add_argument("--no-server-deflate", action="store_true",
                   help="dfws-asgi --no-ws-per-message-deflate: the offer is refused")
    p.add_argument("--dfws-args", default="",
                   help="more dfws-asgi arguments, one shell-quoted string "
                        "(e.g. '--ws-deflate-level 6')")
    runner.add_common_args(p, "wsgen processes")
    p.add_argument("--smoke", action="store_true",
                   help="3 broadcasts, a burst of 3, 50 warm-up windows: proves the harness "
                        "works; figures are labelled SMOKE")
    p.add_argument("--docs", metavar="SECTION",
                   help="write the result into docs/performance.md's section bench:SECTION")
    args = p.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.windows = [int(n) for n in args.windows.split(",") if n]
    if not args.servers or any(s not in ALL_SERVERS for s in args.servers):
        p.error("--servers: choose from %s" % ", ".join(ALL_SERVERS))
    if args.smoke:
        args.broadcasts, args.burst, args.warmup_windows = 3, 3, 50
    if min(args.windows + [args.broadcasts, args.burst, args.warmup_windows]) < 1:
        p.error("counts must be positive")
    if args.payload < 0:
        p.error("--payload must be 0 or more")
    if args.deflate and args.payload < 128:
        print("note: with --payload %d the signals stay under dfws' --ws-deflate-threshold "
              "(128 bytes) and go uncompressed; try --payload 1024" % args.payload,
              file=sys.stderr)
    return args


def main():
    args = parse_args()
    runner.require([args.dfws, runner.WSGEN, runner.PEERS_PYTHON])
    if shutil.which("redis-server") is None:
        sys.exit("error: redis-server not found; run bench/setup.sh")
    runner.raise_nofile()
    workdir = tempfile.mkdtemp(prefix="dfws-native-")
    load_before = runner.loadavg()
    redis = runner.Redis()
    env = {"WSPROJ_REDIS_URL": redis.url, "DJANGO_SETTINGS_MODULE": "wsproj.settings",
           "PYTHONPATH": PROJ + os.pathsep + runner.REPO}
    runs = {}
    try:
        for count in args.windows:
            for name in args.servers:
                runs[(name, count)] = run_server(name, count, args, env, redis, workdir)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        redis.stop()
        if args.keep_logs:
            print("logs kept in %s" % workdir, file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    load = (load_before, runner.loadavg())
    head, rows = build_table(runs)
    runner.print_tables([("df_websockets windows" + setup_label(args), head, rows)])
    problems = ["FAILED %s, %d: %s" % (n, c, s.error) for (n, c), (s, _) in runs.items()
                if s.error]
    problems += ["NOTE %s, %d: %s" % (n, c, x) for (n, c), (s, _) in runs.items()
                 for x in s.notes]
    lines = targets(runs)
    print("\n".join([""] + problems + ["", "Targets (dfws):"] + ["  " + t for t in lines]
                    + ["", runner.busy_label(load[0])]))
    if args.docs or args.markdown:
        extra = (" %d broadcasts one at a time, a burst of %d, fired by fire.py; bench/wsgen "
                 "windows (heartbeat every %gs), up to %d per process; dfws --workers %d; "
                 "server on CPU %s, wsgen on CPU %s.%s"
                 % (args.broadcasts, args.burst, args.heartbeat, PER_PROCESS, args.workers,
                    args.server_cpu or "any", args.client_cpu or "any", setup_label(args)))
        text = "\n".join(runner.run_header("native_bench.py", load, versions(args), extra,
                                           runner.SMOKE_NOTE if args.smoke else "")
                         + ["", runner.md_table(head, rows), ""] + ["- " + x for x in problems]
                         + ["", "Targets (dfws):", ""] + ["- " + t for t in lines])
        runner.publish(text, args.markdown, args.docs)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
