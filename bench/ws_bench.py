#!/usr/bin/python3
"""WebSocket benchmark: dfws-asgi against uvicorn (websockets, uvloop) and daphne.

One raw ASGI app (bench/apps/ws_echo.py) for every server, one worker each,
side by side in one run. Two measurements per server:

- echo: --clients connections, each sends a --size byte text message and
  waits for its echo, again and again for --duration seconds: round trips/s
  and round-trip latency;
- broadcast: --broadcast-conns connections; one of them sends a trigger and
  the app sends that message to every open connection; the time until the
  last of them received it is one round; --broadcasts rounds (after 2
  unmeasured ones): deliveries/s and the p50/p99 of the round time.

The load generator is bench/wsload.py (raw asyncio protocols on uvloop) in
--client-procs separate processes. By default the server is pinned to CPU 0
and the clients to CPU 1 (taskset); their CPU use is printed, near 100% of
their CPUs means the client was the limit.

Run with Debian's interpreter:  /usr/bin/python3 bench/ws_bench.py --help
"""

import argparse
import dataclasses
import http.client
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # importing http_bench must not leave bench/__pycache__
import http_bench as hb  # noqa: E402  (shared helpers: /proc, tables, stop)

APPS_DIR = os.path.join(HERE, "apps")
PYTHON = "/usr/bin/python3"
WSLOAD = os.path.join(HERE, "wsload.py")
APP = "ws_echo:app"
ALL_SERVERS = ("dfws", "uvicorn", "daphne")
WARMUP_ROUNDS = 2


def server_command(name, port, dfws_path):
    if name == "dfws":
        return [dfws_path, "-b", "127.0.0.1", "-p", str(port), "-v", "0", APP]
    if name == "uvicorn":
        return [PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "--loop", "uvloop", "--ws", "websockets", "--http", "httptools",
                "--log-level", "warning", "--no-access-log", "--workers", "1", APP]
    if name == "daphne":
        return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", APP]
    raise ValueError(name)


@dataclasses.dataclass
class Server:
    name: str
    argv: list
    port: int
    log_path: str
    proc: subprocess.Popen = None
    error: str = None
    notes: list = dataclasses.field(default_factory=list)
    echo: dict = None        # results of the echo run
    bcast: dict = None       # results of the broadcast rounds
    peak_rss_kib: int = None

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    log_tail = hb.Server.log_tail
    log_tracebacks = hb.Server.log_tracebacks


def start_server(server, cpu, timeout):
    argv = list(server.argv)
    if cpu:
        argv = ["taskset", "-c", cpu] + argv
    env = dict(os.environ)
    env["PYTHONPATH"] = APPS_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with open(server.log_path, "wb") as log:
        try:
            server.proc = subprocess.Popen(argv, cwd=APPS_DIR, env=env, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        except OSError as exc:
            server.error = "cannot execute: %s" % exc
            return
    deadline = time.monotonic() + timeout
    while True:
        if not server.alive:
            server.error = "exited with code %s before listening" % server.proc.returncode
            return
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status != 200 or body != b"ws_echo":
                server.error = "GET / answered %d %r" % (resp.status, body[:60])
                hb.stop_server(server)
            return
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                server.error = "not answering after %.0fs" % timeout
                hb.stop_server(server)
                return
            time.sleep(0.2)


# --------------------------------------------------------------------------
# client processes

class Clients:
    """--client-procs wsload.py processes sharing `count` connections."""

    def __init__(self, args, mode, port, count):
        self.procs = []
        self.error = None
        per = [count // args.client_procs + (1 if i < count % args.client_procs else 0)
               for i in range(args.client_procs)]
        for n in per:
            if n == 0:
                continue
            cfg = {"mode": mode, "port": port, "path": "/", "count": n,
                   "concurrency": args.connect_concurrency, "connect_timeout": 30}
            argv = [PYTHON, WSLOAD, json.dumps(cfg)]
            if args.client_cpu:
                argv = ["taskset", "-c", args.client_cpu] + argv
            self.procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, text=True, bufsize=1))
        self.ready = [self.read(p, 120) for p in self.procs]
        self.open = sum(r.get("open", 0) for r in self.ready if r)
        self.failed = count - self.open
        if self.failed:
            errs = [e for r in self.ready if r for e in r.get("errors", [])]
            self.error = "%d of %d connections failed (%s)" % (self.failed, count,
                                                              "; ".join(errs[:3]) or "client died")

    @staticmethod
    def read(proc, timeout):
        """Next JSON line from a client process, None if it died or timed out."""
        import select
        r, _, _ = select.select([proc.stdout], [], [], timeout)
        if not r:
            return None
        line = proc.stdout.readline()
        return json.loads(line) if line else None

    def command(self, cmd, timeout, procs=None):
        procs = self.procs if procs is None else procs
        for p in procs:
            p.stdin.write(json.dumps(cmd) + "\n")
            p.stdin.flush()
        return [self.read(p, timeout) for p in procs]

    def cpu(self):
        return sum((r or {}).get("cpu", 0) for r in self.command({"cmd": "cpu"}, 10))

    def close(self):
        out = []
        for p in self.procs:
            try:
                out += self.command({"cmd": "quit"}, 10, [p])
            except (OSError, ValueError):
                pass
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return out


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[k]


def run_echo(server, args):
    clients = Clients(args, "echo", server.port, args.clients)
    try:
        if clients.error:
            return {"error": clients.error}
        if args.warmup > 0:
            clients.command({"cmd": "echo", "duration": args.warmup, "size": args.size},
                            args.warmup + 30)
        pids = hb.process_tree(server.proc.pid)
        cpu0, ccpu0, t0 = hb.cpu_seconds(pids), clients.cpu(), time.monotonic()
        res = clients.command({"cmd": "echo", "duration": args.duration, "size": args.size},
                              args.duration + 60)
        wall = time.monotonic() - t0
        ccpu1 = clients.cpu()
        scpu = hb.cpu_seconds(hb.process_tree(server.proc.pid)) - cpu0
        if any(r is None for r in res):
            return {"error": "a client process died or hung during the echo run"}
        rts = sum(r["round_trips"] for r in res)
        run_wall = max(r["wall"] for r in res)
        sample = [x for r in res for x in r["sample"]]
        out = {"rps": rts / run_wall, "p50": pct(sample, 50), "p99": pct(sample, 99),
               "server_cpu": scpu / wall, "client_cpu": (ccpu1 - ccpu0) / wall,
               "round_trips": rts}
        errors = sum(r["errors"] for r in res)
        closed = sum(r["closed"] for r in res)
        if errors or closed:
            out["error"] = "%d echo(s) not answered within 10 s, %d connection(s) closed" % (
                errors, closed)
        return out
    finally:
        clients.close()


def run_broadcast(server, args):
    clients = Clients(args, "listen", server.port, args.broadcast_conns)
    try:
        if clients.error:
            return {"error": clients.error}
        first = clients.procs[:1]
        pids = hb.process_tree(server.proc.pid)
        rounds, missing_total = [], 0
        pad = "x" * max(0, args.size - 30)
        for seq in range(1, args.broadcasts + WARMUP_ROUNDS + 1):
            measured = seq > WARMUP_ROUNDS
            if seq == WARMUP_ROUNDS + 1:   # CPU over the whole measured phase
                cpu0, ccpu0, t0 = hb.cpu_seconds(pids), clients.cpu(), time.monotonic()
            sent = clients.command({"cmd": "send", "index": 0,
                                    "text": "b:%d:{ts}:%s" % (seq, pad)}, 10, first)[0]
            waited = clients.command({"cmd": "wait", "seqs": [seq], "timeout": args.round_timeout},
                                     args.round_timeout + 30)
            if sent is None or any(w is None for w in waited):
                return {"error": "a client process died or hung in round %d" % seq}
            missing = sum(w["missing"] for w in waited)
            if measured:
                missing_total += missing
                rounds.append(max(w["last_recv"] for w in waited) - sent["t"])
        wall = time.monotonic() - t0
        scpu = hb.cpu_seconds(pids) - cpu0
        ccpu = clients.cpu() - ccpu0
        col = clients.command({"cmd": "collect"}, 60)
        lat = [x for c in col if c for seq, xs in c["lat"].items()
               if int(seq) > WARMUP_ROUNDS for x in xs]
        n = args.broadcast_conns
        out = {"deliveries_s": n * len(rounds) / sum(rounds) if rounds else None,
               "round_p50": pct(rounds, 50), "round_p99": pct(rounds, 99),
               "lat_p99": pct(lat, 99), "server_cpu": scpu / wall if wall else None,
               "client_cpu": ccpu / wall if wall else None, "missing": missing_total,
               "eff": n * len(rounds) / scpu if scpu else None,
               "dups": sum(c["dups"] for c in col if c)}
        if missing_total or out["dups"]:
            out["error"] = "%d deliveries missing after %gs, %d duplicated" % (
                missing_total, args.round_timeout, out["dups"])
        return out
    finally:
        clients.close()


# --------------------------------------------------------------------------
# reporting

def ms(v):
    return "-" if v is None else "%.2f ms" % (1000 * v)


def cell(server, part, key, fmt):
    if server.error:
        return "failed"
    res = getattr(server, part)
    if not res or res.get(key) is None:
        return "failed"
    return fmt(res[key]) + ("*" if res.get("error") else "")


def ratio_cells(servers, part, key, invert=False):
    d = servers.get("dfws")
    out = []
    for name in servers:
        if name == "dfws":
            continue
        a = d and not d.error and (getattr(d, part) or {}).get(key)
        b = not servers[name].error and (getattr(servers[name], part) or {}).get(key)
        out.append("%.2fx" % ((b / a) if invert else (a / b)) if a and b else "-")
    return out


def build_tables(servers):
    names = list(servers)
    others = [n for n in names if n != "dfws"]
    rat = ["dfws/%s" % n for n in others] if "dfws" in servers else []
    tables = []
    head = ["measure"] + names + rat
    rows = [
        ["echo round trips/s"] + [cell(servers[n], "echo", "rps", "{:.0f}".format)
                                   for n in names] + ratio_cells(servers, "echo", "rps"),
        ["echo round trips per server CPU-s"]
        + [cell(servers[n], "echo", "eff", "{:.0f}".format) for n in names]
        + ratio_cells(servers, "echo", "eff"),
        ["echo latency p50"] + [cell(servers[n], "echo", "p50", ms) for n in names] + [""] * len(rat),
        ["echo latency p99"] + [cell(servers[n], "echo", "p99", ms) for n in names] + [""] * len(rat),
        ["echo server CPU"] + [cell(servers[n], "echo", "server_cpu", "{:.0%}".format)
                               for n in names] + [""] * len(rat),
        ["echo client CPU"] + [cell(servers[n], "echo", "client_cpu", "{:.0%}".format)
                               for n in names] + [""] * len(rat),
    ]
    tables.append(("Echo", head, rows))
    rows = [
        ["broadcast deliveries/s"]
        + [cell(servers[n], "bcast", "deliveries_s", "{:.0f}".format) for n in names]
        + ratio_cells(servers, "bcast", "deliveries_s"),
        ["deliveries per server CPU-s"]
        + [cell(servers[n], "bcast", "eff", "{:.0f}".format) for n in names]
        + ratio_cells(servers, "bcast", "eff"),
        ["time to reach all, p50"] + [cell(servers[n], "bcast", "round_p50", ms) for n in names]
        + ratio_cells(servers, "bcast", "round_p50", invert=True),
        ["time to reach all, p99"] + [cell(servers[n], "bcast", "round_p99", ms) for n in names]
        + ratio_cells(servers, "bcast", "round_p99", invert=True),
        ["per-delivery latency p99"] + [cell(servers[n], "bcast", "lat_p99", ms) for n in names]
        + [""] * len(rat),
        ["broadcast server CPU"] + [cell(servers[n], "bcast", "server_cpu", "{:.0%}".format)
                                    for n in names] + [""] * len(rat),
        ["broadcast client CPU"] + [cell(servers[n], "bcast", "client_cpu", "{:.0%}".format)
                                    for n in names] + [""] * len(rat),
        ["peak RSS (VmHWM)"] + [("failed" if servers[n].error or not servers[n].peak_rss_kib else
                                 "%.1f MiB" % (servers[n].peak_rss_kib / 1024)) for n in names]
        + [""] * len(rat),
    ]
    tables.append(("Broadcast", head, rows))
    return tables


def problem_lines(servers):
    lines = []
    for name, srv in servers.items():
        if srv.error:
            lines.append("FAILED %s: %s" % (name, srv.error))
        for part in ("echo", "bcast"):
            res = getattr(srv, part)
            if res and res.get("error"):
                lines.append("%s %s / %s: %s" % ("NOTE" if ("rps" in res or "deliveries_s" in res) else "FAILED", name,
                                                  part, res["error"]))
        for note in srv.notes:
            lines.append("NOTE %s: %s" % (name, note))
    return lines


def versions(dfws_path):
    out = {}
    for mod in ("uvicorn", "daphne", "websockets", "uvloop"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            out[mod] = "?"
    try:
        v = subprocess.run([dfws_path, "--version"], capture_output=True, text=True, timeout=10)
        out["dfws"] = (v.stdout or v.stderr).strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        out["dfws"] = "?"
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default=",".join(ALL_SERVERS))
    p.add_argument("--clients", type=int, default=100, help="echo: concurrent connections")
    p.add_argument("--duration", type=float, default=10, help="echo: measured seconds")
    p.add_argument("--warmup", type=float, default=2, help="echo: unmeasured seconds first")
    p.add_argument("--size", type=int, default=32, help="message size in bytes")
    p.add_argument("--broadcast-conns", type=int, default=1000)
    p.add_argument("--broadcasts", type=int, default=20, help="measured broadcast rounds")
    p.add_argument("--round-timeout", type=float, default=30,
                   help="seconds a broadcast round may take before counting losses")
    p.add_argument("--client-procs", type=int, default=2, help="load generator processes")
    p.add_argument("--connect-concurrency", type=int, default=16,
                   help="connections each client process opens at a time")
    p.add_argument("--dfws", default=hb.default_dfws())
    p.add_argument("--server-cpu", default="0", help="taskset list for servers ('' = none)")
    p.add_argument("--client-cpu", default="1", help="taskset list for clients ('' = none)")
    p.add_argument("--start-timeout", type=float, default=20)
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in args.servers:
        if s not in ALL_SERVERS:
            p.error("unknown server %r" % s)
    if min(args.clients, args.broadcast_conns, args.broadcasts, args.client_procs) < 1:
        p.error("counts must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    if (args.server_cpu or args.client_cpu) and shutil.which("taskset") is None:
        print("error: taskset not found; use --server-cpu '' --client-cpu ''", file=sys.stderr)
        return 2
    logdir = tempfile.mkdtemp(prefix="dfws-wsbench-")
    load_before = hb.loadavg()
    servers = {}
    try:
        for name in args.servers:
            port = hb.free_port()
            srv = Server(name, server_command(name, port, args.dfws), port,
                         os.path.join(logdir, name + ".log"))
            start_server(srv, args.server_cpu, args.start_timeout)
            servers[name] = srv
            print("  %-8s %s" % (name, "FAILED: " + srv.error if srv.error
                                 else "up on port %d" % port), file=sys.stderr)
            if srv.error and srv.log_tail():
                print("    " + srv.log_tail().replace("\n", "\n    "), file=sys.stderr)
        live = [s for s in servers.values() if not s.error]
        for srv in live:
            srv.echo = run_echo(srv, args)
            if srv.echo.get("rps") and srv.echo.get("server_cpu"):
                srv.echo["eff"] = srv.echo["rps"] / srv.echo["server_cpu"]
            e = srv.echo
            print("  %-8s echo: %s" % (srv.name, e.get("error") if "rps" not in e else
                                        "%.0f rt/s p50 %s p99 %s server CPU %.0f%% client CPU %.0f%%"
                                        % (e["rps"], ms(e["p50"]), ms(e["p99"]),
                                           100 * e["server_cpu"], 100 * e["client_cpu"])),
                  file=sys.stderr)
        for srv in live:
            if not srv.alive:
                srv.error = "died (exit code %s)" % srv.proc.returncode
                continue
            srv.bcast = run_broadcast(srv, args)
            b = srv.bcast
            print("  %-8s broadcast: %s" % (srv.name, b.get("error") if "deliveries_s" not in b
                                             else "%.0f deliveries/s, all reached p50 %s p99 %s, "
                                             "server CPU %.0f%% client CPU %.0f%%"
                                             % (b["deliveries_s"] or 0, ms(b["round_p50"]),
                                                ms(b["round_p99"]), 100 * (b["server_cpu"] or 0),
                                                100 * (b["client_cpu"] or 0))),
                  file=sys.stderr)
            if srv.alive:
                srv.peak_rss_kib = hb.peak_rss_kib(hb.process_tree(srv.proc.pid))
        for srv in live:
            if not srv.alive:
                srv.notes.append("server died (exit code %s); log tail: %s"
                                 % (srv.proc.returncode, srv.log_tail(5)))
            unclean = hb.stop_server(srv)
            if unclean:
                srv.notes.append("unclean shutdown: " + unclean)
            tb, first = srv.log_tracebacks()
            if tb:
                srv.notes.append("%d Python traceback(s) in the server log, first: %s"
                                 % (tb, first))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for srv in servers.values():
            hb.stop_server(srv)
        if args.keep_logs:
            print("server logs kept in %s" % logdir, file=sys.stderr)
        else:
            shutil.rmtree(logdir, ignore_errors=True)
    load = (load_before, hb.loadavg())
    tables = build_tables(servers)
    for title, head, rows in tables:
        print("\n" + title)
        print(hb.text_table(head, rows))
    problems = problem_lines(servers)
    if problems:
        print("\n" + "\n".join(problems))
    print("\nload average: %s before, %s after" % load)
    if args.markdown:
        vers = versions(args.dfws)
        cmd = "/usr/bin/python3 bench/ws_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        lines = ["Command: `%s`" % cmd.strip(), "",
                 "Echo: %d connections, %d-byte text messages, %gs after a %gs warm-up. "
                 "Broadcast: %d connections, %d rounds after %d unmeasured. Server %s, "
                 "%d client process(es) %s (bench/wsload.py, uvloop)."
                 % (args.clients, args.size, args.duration, args.warmup, args.broadcast_conns,
                    args.broadcasts, WARMUP_ROUNDS,
                    "pinned to CPU %s" % args.server_cpu if args.server_cpu else "not pinned",
                    args.client_procs,
                    "pinned to CPU %s" % args.client_cpu if args.client_cpu else "not pinned"),
                 "Machine: %s, %d CPUs, Python %s, load average %s before / %s after; "
                 "versions: %s." % (hb.cpu_model(), os.cpu_count(), platform.python_version(),
                                    load[0], load[1],
                                    ", ".join("%s %s" % kv for kv in sorted(vers.items())))]
        for title, head, rows in tables:
            lines += ["", "*%s*" % title, "", hb.md_table(head, rows)]
        if problems:
            lines += [""] + ["- " + p for p in problems]
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("markdown written to %s" % args.markdown, file=sys.stderr)
    bad = any(s.error or s.notes or (s.echo or {}).get("error") or (s.bcast or {}).get("error")
              for s in servers.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
