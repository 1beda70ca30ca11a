#!/usr/bin/env python3
"""dfws-asgi against the servers Django users pick, side by side in one run.

One worker each: dfws-asgi, granian (ASGI, --runtime-mode st; and its WSGI
interface as granian-wsgi), uvicorn (uvloop, httptools), daphne, hypercorn
(uvloop worker), gunicorn (sync worker, Django cases only), and nginx
answering `return 200 "Hello, world!"` (hello case only) as the limit of a C
HTTP server on this machine. The peers run from bench/.venv-peers (pinned in
bench/requirements-peers.txt), dfws-asgi from its own environment (--dfws);
every server serves the same files from bench/apps/.

Cases (HTTP ones driven by wrk: warmed up with check.lua, which checks every
answer, then measured with request.lua, which only counts them; WebSocket
ones by bench/wsgen):
  hello      raw ASGI hello world (apps/hello.py)
  big        raw ASGI 10 KiB response (apps/payload.py)
  echo       raw ASGI 10 KiB POST echoed back (apps/payload.py)
  django     Django 5.2 startproject defaults, sync view, short HttpResponse
  template   the same project, a template rendered with a session read
  ws-echo    WebSocket echo, --ws-clients connections (apps/ws_echo.py)
  ws-broadcast  one message to --ws-listeners connections, --broadcasts rounds
Each case runs with every server's access log off, then on (--access-log).

The server is pinned to --server-cpu, the load generator to --client-cpu.
Prints req/s, requests per server CPU-second (utime+stime of the server's
process tree from /proc), p99 latency, peak RSS and dfws' ratio to each peer;
--docs also writes the tables into docs/performance.md and a chart into
docs/bench/peers.png.
"""

import argparse
import dataclasses
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import runner

HOST = "127.0.0.1"
HELLO = b"Hello, world!"
BIG = b"0123456789abcdef" * 640            # what apps/payload.py sends
POSTED = b"0123456789" * 1024              # what the echo case posts
TEMPLATE_MARK = b"<title>bench page</title>"
DJPROJ = os.path.join(runner.APPS, "djproj")

ALL_SERVERS = ("dfws", "granian", "granian-wsgi", "uvicorn", "daphne", "hypercorn",
               "gunicorn", "nginx")
WSGI_SERVERS = ("granian-wsgi", "gunicorn")
ASGI_SERVERS = ("dfws", "granian", "uvicorn", "daphne", "hypercorn")


@dataclasses.dataclass
class Case:
    label: str
    servers: tuple
    asgi: str = None
    wsgi: str = None
    path: str = "/"
    method: str = "GET"
    body: bytes = None          # request body
    expect: bytes = None        # the exact answer, or None: contains `mark`
    mark: bytes = None
    pythonpath: str = runner.APPS
    ws: bool = False


CASES = {
    "hello": Case("raw ASGI hello", ASGI_SERVERS + ("granian-wsgi", "nginx"),
                  "hello:app", "hello_wsgi:application", expect=HELLO),
    "big": Case("raw ASGI 10 KiB response", ASGI_SERVERS + ("granian-wsgi",),
                "payload:app", "hello_wsgi:application", path="/big", expect=BIG),
    "echo": Case("raw ASGI 10 KiB POST echo", ASGI_SERVERS + ("granian-wsgi",),
                 "payload:app", "hello_wsgi:application", path="/echo", method="POST",
                 body=POSTED, expect=POSTED),
    "django": Case("Django default stack, sync view", ASGI_SERVERS + WSGI_SERVERS,
                   "djproj.asgi:application", "djproj.wsgi:application", expect=HELLO,
                   pythonpath=DJPROJ),
    "template": Case("Django template + session read", ASGI_SERVERS + WSGI_SERVERS,
                     "djproj.asgi:application", "djproj.wsgi:application", path="/page/",
                     mark=TEMPLATE_MARK, pythonpath=DJPROJ),
    "ws-echo": Case("WebSocket echo (round trips)", ASGI_SERVERS, "ws_echo:app", ws=True),
    "ws-broadcast": Case("WebSocket broadcast to 1,000 (deliveries)", ASGI_SERVERS,
                         "ws_echo:app", ws=True),
}


@dataclasses.dataclass
class Result:
    """One server on one case with one access-log setting."""
    runs: list = dataclasses.field(default_factory=list)   # dicts: rate, per_cpu, p99, cpu...
    peak_kib: int = 0
    error: str = None
    notes: list = dataclasses.field(default_factory=list)

    def median(self, key):
        values = [r[key] for r in self.runs if r.get(key) is not None]
        return statistics.median(values) if values else None


# --------------------------------------------------------------------------
# servers

def peer(tool):
    return os.path.join(runner.PEERS_BIN, tool)


def nginx_conf(workdir, port, log_on):
    """A one-worker nginx answering the hello body; returns the file path."""
    path = os.path.join(workdir, "nginx-%d.conf" % port)
    access = ("access_log %s/nginx-access-%d.log;" % (workdir, port) if log_on
              else "access_log off;")
    with open(path, "w") as f:
        f.write("worker_processes 1;\ndaemon off;\npid %s/nginx-%d.pid;\n"
                "error_log stderr warn;\nevents { worker_connections 4096; }\n"
                "http {\n  %s\n  server {\n    listen %s:%d;\n"
                "    location / { default_type text/plain; return 200 \"%s\"; }\n  }\n}\n"
                % (workdir, port, access, HOST, port, HELLO.decode()))
    return path


def server_argv(name, app, port, log_on, args, workdir):
    """argv of one worker of server `name` serving app on HOST:port, with its
    default access log on (log_on) or off."""
    if name == "dfws":
        # -v 1 writes daphne-style access lines to stdout, -v 0 none
        return [args.dfws, "-b", HOST, "-p", str(port), "-v", "1" if log_on else "0", app]
    if name in ("granian", "granian-wsgi"):
        return [peer("granian"), "--interface", "wsgi" if name in WSGI_SERVERS else "asgi",
                "--host", HOST, "--port", str(port), "--workers", "1", "--runtime-mode", "st",
                "--access-log" if log_on else "--no-access-log", app]
    if name == "uvicorn":
        return ([peer("uvicorn"), "--host", HOST, "--port", str(port), "--workers", "1",
                 "--loop", "uvloop", "--http", "httptools"]
                + ([] if log_on else ["--no-access-log"]) + [app])
    if name == "daphne":
        return [peer("daphne"), "-b", HOST, "-p", str(port), "-v", "1" if log_on else "0", app]
    if name == "hypercorn":
        return ([peer("hypercorn"), "--bind", "%s:%d" % (HOST, port), "--workers", "1",
                 "--worker-class", "uvloop"]
                + (["--access-logfile", "-"] if log_on else []) + [app])
    if name == "gunicorn":
        return ([peer("gunicorn"), "--bind", "%s:%d" % (HOST, port), "--workers", "1",
                 "--worker-class", "sync"]
                + (["--access-logfile", "-"] if log_on else []) + [app])
    if name == "nginx":
        return ["nginx", "-e", "stderr", "-p", workdir, "-c", nginx_conf(workdir, port, log_on)]
    raise ValueError(name)


def make_server(name, case, log_on, args, workdir):
    port = runner.free_port()
    app = case.wsgi if name in WSGI_SERVERS else case.asgi
    return runner.Server(name, server_argv(name, app, port, log_on, args, workdir), port,
                         os.path.join(workdir, "%s-%d.log" % (name, port)),
                         env={"PYTHONPATH": case.pythonpath}, cpu=args.server_cpu)


def http_check(server, case, expect_path):
    """A check for Server.wait_ready: the case's request must answer 200
    with the case's body, twice; the body is written to expect_path for
    check.lua."""
    def check():
        for _ in range(2):
            status, _, body = runner.http_get(server.port, case.path, case.method, case.body)
            right = body == case.expect if case.expect is not None else case.mark in body
            if status != 200 or not right:
                return "%s %s answered %d %r" % (case.method, case.path, status, body[:80])
        with open(expect_path, "wb") as f:
            f.write(body)
        return None
    return check


def ws_check(server):
    def check():
        status, _, body = runner.http_get(server.port, "/")
        if status != 200 or body != b"ws_echo":
            return "GET / answered %d %r" % (status, body[:60])
        return None
    return check


# --------------------------------------------------------------------------
# wrk

_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.M)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_CHECK = re.compile(r"^check: good (\d+) bad (\d+)", re.M)
_FIRST_BAD = re.compile(r"^check-first-bad: (.*)", re.M)
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def run_wrk(server, case, args, duration, files, check):
    """One wrk run against server; a dict with rate, per_cpu, p99, cpu,
    client_cpu, or error. With check, check.lua compares every answer with
    the expected body (files[2]); else request.lua only sends the requests,
    so that wrk runs no Lua per response, and any non-2xx answer is an error."""
    script = "check.lua" if check else "request.lua"
    argv = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", "%gs" % duration,
            "--timeout", "10s", "--latency", "-s", script,
            "http://%s:%d%s" % (HOST, server.port, case.path), "--"] + files
    if args.client_cpu:
        argv = ["taskset", "-c", args.client_cpu] + argv
    out, wall, scpu, ccpu = runner.measure(
        server, runner.children_cpu,
        lambda: subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                               cwd=runner.HERE))   # where check.lua finds request.lua
    text = out.stdout + out.stderr
    total, p99 = _TOTAL.search(text), _P99.search(text)
    if out.returncode != 0 or not total or not p99:
        return {"error": "wrk failed: " + text.strip()[-300:]}
    if check:
        found = _CHECK.search(text)
        if not found or int(found.group(2)):
            first = _FIRST_BAD.search(text)
            return {"error": "%s wrong answers, first: %s" % (
                found.group(2) if found else "?", first.group(1) if first else "?")}
    non2xx = _NON2XX.search(text)
    if non2xx:
        return {"error": "%s answers were not 2xx" % non2xx.group(1)}
    if not server.alive:
        return {"error": "server died during the run"}
    good = int(total.group(1))
    return {"rate": good / wall, "per_cpu": good / scpu if scpu else None,
            "p99": float(p99.group(1)) * _UNIT[p99.group(2)], "cpu": scpu / wall,
            "client_cpu": ccpu / wall}


def run_http_case(case, log_on, names, args, workdir):
    """Start every server of the case, check it, warm it up with every
    answer checked, then --repeat measured wrk runs round-robin (a burst of
    other work hurts all alike)."""
    results, live = {}, []
    body_file = "-"
    if case.body is not None:
        body_file = os.path.join(workdir, "request-body")
        with open(body_file, "wb") as f:
            f.write(case.body)
    for name in names:
        srv = make_server(name, case, log_on, args, workdir)
        expect = os.path.join(workdir, "expect-%d" % srv.port)
        results[name] = Result()
        if not srv.launch(http_check(srv, case, expect), args.start_timeout):
            results[name].error = srv.error
            continue
        warm = run_wrk(srv, case, args, max(args.warmup, 1), [case.method, body_file, expect],
                       check=True)
        if "error" in warm:
            results[name].error = "warm-up: " + warm["error"]
            print("  %-13s warm-up FAILED: %s" % (name, warm["error"]), file=sys.stderr)
            srv.finish()
            results[name].notes = srv.notes
        else:
            live.append(srv)
    try:
        for rep in range(args.repeat):
            for srv in live:
                if not srv.alive:
                    continue
                run = run_wrk(srv, case, args, args.duration, [case.method, body_file],
                              check=False)
                srv.sample_peak()
                results[srv.name].runs.append(run)
                print("  %-13s run %d: %s" % (srv.name, rep + 1, describe_run(run)),
                      file=sys.stderr)
    finally:
        for srv in live:
            srv.finish()
            res = results[srv.name]
            res.peak_kib, res.notes = srv.peak_kib, srv.notes
            if not any("rate" in r for r in res.runs):
                res.error = next((r["error"] for r in res.runs if "error" in r), "no clean run")
    return results


def describe_run(run):
    if "error" in run:
        return "ERROR " + run["error"]
    return ("%8.0f/s  p99 %s  server CPU %3.0f%%  client CPU %3.0f%%"
            % (run["rate"], runner.fmt_ms(run["p99"]), 100 * run["cpu"],
               100 * run["client_cpu"]))


# --------------------------------------------------------------------------
# WebSocket cases (bench/wsgen)

def ws_echo(srv, args):
    gen = runner.Generator("echo", srv.port, args.ws_clients, cpu=args.client_cpu)
    try:
        if gen.error:
            return {"error": gen.error}
        if args.warmup > 0:
            gen.command({"cmd": "echo", "duration": args.warmup, "size": 32}, args.warmup + 30)
        out, wall, scpu, ccpu = runner.measure(srv, gen.cpu, lambda: gen.command(
            {"cmd": "echo", "duration": args.duration, "size": 32}, args.duration + 60))
        if any(o is None for o in out):
            return {"error": "a wsgen process died or hung"}
        trips = sum(o["round_trips"] for o in out)
        lost = sum(o["errors"] + o["closed"] for o in out)
        run = {"rate": trips / wall, "per_cpu": trips / scpu if scpu else None,
               "p99": runner.pct([x for o in out for x in o["lat_us"]], 99) / 1e6,
               "cpu": scpu / wall, "client_cpu": ccpu / wall}
        if lost:
            run["note"] = "%d echoes unanswered within 10 s or connections closed" % lost
        return run
    finally:
        gen.close()


def ws_broadcast(srv, args):
    gen = runner.Generator("broadcast", srv.port, args.ws_listeners, cpu=args.client_cpu)
    try:
        if gen.error:
            return {"error": gen.error}
        cmd = {"cmd": "broadcast", "rounds": args.broadcasts, "warmup": 2, "size": 32,
               "timeout": 30}
        out, wall, scpu, ccpu = runner.measure(
            srv, gen.cpu, lambda: gen.command(cmd, 30 * (args.broadcasts + 2) + 30))
        o = out[0]
        if o is None or "round_s" not in o:
            return {"error": "wsgen failed: %s" % (o or {}).get("error", "died or hung")}
        delivered = o["received"]
        run = {"rate": delivered / sum(o["round_s"]) if sum(o["round_s"]) > 0 else None,
               "per_cpu": delivered / scpu if scpu else None,
               "p99": runner.pct(o["lat_us"], 99) / 1e6 if o["lat_us"] else None,
               "cpu": scpu / wall, "client_cpu": ccpu / wall}
        if o["missing"] or o["dups"] or o["unexpected"]:
            run["note"] = "%d deliveries missing, %d duplicated, %d unexpected" % (
                o["missing"], o["dups"], o["unexpected"])
        return run
    finally:
        gen.close()


def run_ws_case(key, case, log_on, names, args, workdir):
    """One server at a time: 100 echoing or 1,000 listening connections from
    one wsgen process pinned to the client CPU."""
    measure = ws_echo if key == "ws-echo" else ws_broadcast
    results = {}
    for name in names:
        srv = make_server(name, case, log_on, args, workdir)
        res = results[name] = Result()
        if not srv.launch(ws_check(srv), args.start_timeout):
            res.error = srv.error
            continue
        try:
            run = measure(srv, args)
            print("  %-13s %s" % (name, describe_run(run)), file=sys.stderr)
            if "note" in run:
                res.notes.append(run.pop("note"))
            if "error" in run:
                res.error = run["error"]
            else:
                res.runs.append(run)
        finally:
            srv.finish()
            res.peak_kib = srv.peak_kib
            res.notes += srv.notes
    return results


# --------------------------------------------------------------------------
# reporting

def row_label(key, log):
    return "%s, log %s" % (CASES[key].label, log)


def cell(res, value, fmt):
    if res is None:
        return "-"
    if value is None:
        return "failed" if res.error else "-"
    return fmt(value) + ("*" if res.notes else "")


def build_tables(results, names):
    """[(title, head, rows)]: results[(case, log)][server] -> Result."""
    peers = [n for n in names if n != "dfws"]
    with_ratio = "dfws" in names
    tables = []
    metrics = [
        ("Throughput per second (requests; WebSocket: round trips or deliveries)",
         "rate", "{:,.0f}".format, True),
        ("Per server CPU-second (user+system of the server's process tree)",
         "per_cpu", "{:,.0f}".format, True),
        ("Latency p99 (wrk; WebSocket: echo round trip, broadcast delivery)",
         "p99", runner.fmt_ms, False),
        ("Server CPU during the runs (100% = one core)", "cpu", "{:.0%}".format, False),
        ("Load generator CPU during the runs (near 100% = it may be the limit)",
         "client_cpu", "{:.0%}".format, False),
    ]
    for title, key, fmt, ratios in metrics:
        head = ["case"] + names + (["dfws/" + p for p in peers] if ratios and with_ratio else [])
        rows = []
        for (case, log), by in results.items():
            row = [row_label(case, log)]
            row += [cell(by.get(n), by[n].median(key) if n in by else None, fmt) for n in names]
            if ratios and with_ratio:
                d = by["dfws"].median(key) if "dfws" in by else None
                row += [runner.ratio(d, by[p].median(key)) if p in by else "-" for p in peers]
            rows.append(row)
        tables.append((title, head, rows))
    rows = [[row_label(case, log)] + [cell(by.get(n), by[n].peak_kib if n in by else None,
                                           runner.fmt_mib) for n in names]
            for (case, log), by in results.items()]
    tables.append(("Peak RSS (VmHWM, server process tree)", ["case"] + names, rows))
    rows = []
    for case in dict.fromkeys(c for c, _ in results):
        off, on = results.get((case, "off"), {}), results.get((case, "on"), {})
        if off and on:
            rows.append([CASES[case].label] + [
                runner.ratio(on[n].median("rate"), off[n].median("rate"))
                if n in on and n in off else "-" for n in names])
    if rows:
        tables.append(("Access log cost: throughput with the log on / off", ["case"] + names,
                       rows))
    return tables


def problem_lines(results):
    lines = []
    for (case, log), by in results.items():
        for name, res in by.items():
            if res.error:
                lines.append("FAILED %s / %s: %s" % (name, row_label(case, log), res.error))
            lines += ["NOTE %s / %s: %s" % (name, row_label(case, log), n) for n in res.notes]
    return lines


def versions(args):
    out = runner.python_versions(runner.PEERS_PYTHON, ["granian", "uvicorn", "daphne",
                                                        "hypercorn", "gunicorn", "Django",
                                                        "uvloop", "httptools", "websockets"])
    out["Django (peers env)"] = out.pop("Django")
    out["dfws-asgi"] = runner.dfws_version(args.dfws)
    out["Django (dfws env)"] = runner.python_versions(runner.dfws_python(args.dfws),
                                                      ["Django"])["Django"]
    out["nginx"] = runner.command_version(["nginx", "-v"]).split("/")[-1]
    out["wrk"] = runner.command_version(["wrk", "-v"]).split()[1]
    return out


def draw_chart(path, results, names, title):
    """One panel per case: throughput per server, log off solid, on hatched."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(c for c, _ in results))
    cols = min(4, len(cases))
    rows = (len(cases) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    colors = dict(zip(ALL_SERVERS, plt.get_cmap("tab10").colors))
    for ax, case in zip(axes.flat, cases):
        shown = [n for n in names if n in results.get((case, "off"), {})
                 or n in results.get((case, "on"), {})]
        for i, name in enumerate(shown):
            for offset, log, hatch in ((-0.2, "off", None), (0.2, "on", "//")):
                res = results.get((case, log), {}).get(name)
                value = res.median("rate") if res else None
                if value:
                    ax.bar(i + offset, value, 0.4, color=colors[name], hatch=hatch,
                           edgecolor="white" if hatch else colors[name])
        ax.set_xticks(range(len(shown)), shown, rotation=40, ha="right", fontsize=8)
        ax.set_title(CASES[case].label, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(cases):]:
        ax.set_visible(False)
    fig.suptitle(title + "\nthroughput per second, one worker each; solid: access log off, "
                 "hatched: on", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default=",".join(ALL_SERVERS))
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--access-log", default="off,on", help="off, on or both (off,on)")
    p.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=3, help="seconds of unmeasured load first")
    p.add_argument("--repeat", type=int, default=3,
                   help="HTTP: measured runs per server (median reported)")
    p.add_argument("--connections", type=int, default=50, help="wrk -c")
    p.add_argument("--threads", type=int, default=1, help="wrk -t")
    p.add_argument("--ws-clients", type=int, default=100, help="ws-echo connections")
    p.add_argument("--ws-listeners", type=int, default=1000, help="ws-broadcast connections")
    p.add_argument("--broadcasts", type=int, default=20, help="ws-broadcast measured rounds")
    runner.add_common_args(p, "load generator (wrk, wsgen)")
    p.add_argument("--smoke", action="store_true",
                   help="a few seconds per case (2 s runs, 1 s warm-up, one run, 3 broadcasts)"
                        " to prove the harness works; figures are labelled SMOKE")
    p.add_argument("--docs", action="store_true",
                   help="write the tables into docs/performance.md (section bench:peers) and "
                        "the chart into docs/bench/peers.png")
    args = p.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.cases = [c for c in args.cases.split(",") if c]
    args.access_log = [x for x in args.access_log.split(",") if x]
    for values, allowed, what in ((args.servers, ALL_SERVERS, "server"),
                                  (args.cases, CASES, "case"),
                                  (args.access_log, ("off", "on"), "--access-log value")):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            p.error("unknown %s %s (choose from %s)" % (what, bad, ", ".join(allowed)))
    if args.smoke:
        args.duration, args.warmup, args.repeat, args.broadcasts = 2, 1, 1, 3
    return args


def main():
    args = parse_args()
    runner.require([args.dfws, runner.WSGEN] + [peer(t) for t in (
        "granian", "uvicorn", "daphne", "hypercorn", "gunicorn")])
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            sys.exit("error: %s not found; run bench/setup.sh" % tool)
    workdir = tempfile.mkdtemp(prefix="dfws-peers-")
    load_before = runner.loadavg()
    results = {}
    try:
        for key in args.cases:
            case = CASES[key]
            names = [n for n in args.servers if n in case.servers]
            for log in args.access_log:
                print("== %s, access log %s" % (case.label, log), file=sys.stderr)
                results[(key, log)] = (run_ws_case(key, case, log == "on", names, args, workdir)
                                       if case.ws else
                                       run_http_case(case, log == "on", names, args, workdir))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep_logs:
            print("logs kept in %s" % workdir, file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    load = (load_before, runner.loadavg())
    names = [n for n in args.servers if any(n in by for by in results.values())]
    tables = build_tables(results, names)
    runner.print_tables(tables)
    problems = problem_lines(results)
    if problems:
        print("\n" + "\n".join(problems))
    print("\n" + runner.busy_label(load[0]))
    if args.docs or args.markdown:
        extra = (" wrk -t%d -c%d, %gs runs after %gs warm-up, median of %d; WebSocket: %d echo "
                 "connections, %d listeners x %d broadcasts; server on CPU %s, load generator "
                 "on CPU %s." % (args.threads, args.connections, args.duration, args.warmup,
                                 args.repeat, args.ws_clients, args.ws_listeners,
                                 args.broadcasts, args.server_cpu or "any",
                                 args.client_cpu or "any"))
        lines = runner.run_header("peers.py", load, versions(args), extra,
                                  runner.SMOKE_NOTE if args.smoke else "")
        lines += runner.md_tables(tables) + [""] + ["- " + p for p in problems]
        text = "\n".join(lines)
        if args.docs:
            chart = os.path.join(runner.DOCS, "bench", "peers.png")
            os.makedirs(os.path.dirname(chart), exist_ok=True)
            draw_chart(chart, results, names, "%s%s, %s" % (
                "SMOKE RUN, placeholder figures: " if args.smoke else "",
                time.strftime("%Y-%m-%d"), runner.busy_label(load[0])))
            text += "\n\n![peers chart](bench/peers.png)"
        runner.publish(text, args.markdown, "peers" if args.docs else None)
        if args.docs:
            print("docs/performance.md and %s written" % chart, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if "-h" not in sys.argv and "--help" not in sys.argv:
        runner.reexec_in_peers_venv()
    sys.exit(main())
