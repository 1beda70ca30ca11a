#!/usr/bin/python3
"""HTTP throughput benchmark: dfws-asgi against uvicorn and daphne.

Each server runs as one worker process on a free loopback port; ``wrk``
drives it.  By default the server is pinned to CPU 0 and wrk (one thread) to
CPU 1 with ``taskset``, so on a 2-core machine the load generator never steals
the server's core and every server gets exactly one core (see bench/README.md).

For every case (a raw ASGI hello world, a Django sync hello view) all selected
servers are started side by side, each is checked to answer 200 with the
expected body, warmed up, then measured ``--repeat`` times in round-robin
order (so a noisy neighbour hurts every server alike); the median req/s is
reported.  A server that fails to start or answers wrongly is reported as
such and the others are still measured.

Run with Debian's interpreter:  /usr/bin/python3 bench/http_bench.py --help
"""

import argparse
import dataclasses
import http.client
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.join(HERE, "apps")
REPO = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"
EXPECTED_BODY = b"Hello, world!"

CASES = {
    # name: (ASGI application path, human label)
    "hello": ("hello:app", "raw ASGI hello world"),
    "django": ("djhello.asgi:application", "Django sync view"),
}
ALL_SERVERS = ("dfws", "uvicorn", "daphne")


def default_dfws():
    env = os.environ.get("DFWS_ASGI")
    if env:
        return env
    for candidate in (os.path.join(REPO, ".venv/bin/dfws-asgi"),
                      os.path.join(REPO, "build/dfws-asgi")):
        if os.path.exists(candidate):
            return candidate
    return os.path.join(REPO, "build/dfws-asgi")


def server_command(name, app, port, dfws_path):
    """argv that runs server `name` serving `app` on 127.0.0.1:`port`.

    Every server runs one worker with no access log."""
    if name == "dfws":
        # -v 0: like daphne, dfws-asgi writes an access log to stdout at -v 1
        return [dfws_path, "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
    if name == "uvicorn":
        return [PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                "--no-access-log", "--workers", "1", app]
    if name == "daphne":
        # -v 0: daphne writes an access log to stdout at the default verbosity 1.
        return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
    raise ValueError("unknown server %r" % name)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# /proc helpers (Linux only): process tree, peak RSS, CPU time

def _children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(pid):
    """pid and all its descendants (a pre-forking server has workers)."""
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def peak_rss_kib(pids):
    """Sum of VmHWM (peak resident set size) over `pids`, in KiB."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pids):
    """user+system CPU seconds consumed so far by `pids` (threads included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


# --------------------------------------------------------------------------
# servers

@dataclasses.dataclass
class Server:
    name: str
    case: str
    argv: list
    port: int
    log_path: str
    proc: subprocess.Popen = None
    error: str = None          # why it has no result at all (start/verify failure...)
    notes: list = dataclasses.field(default_factory=list)  # e.g. died after some runs
    runs: list = dataclasses.field(default_factory=list)   # WrkResult per run
    peak_rss_kib: int = None

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:]).rstrip()
        except OSError:
            return ""

    def log_tracebacks(self):
        """(number of Python tracebacks in the log, first exception line)."""
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return 0, ""
        count, first, in_tb = 0, "", False
        for line in lines:
            if line.startswith("Traceback (most recent call last)"):
                count += 1
                in_tb = True
            elif in_tb and line and not line[0].isspace():
                in_tb = False
                first = first or line.strip()
        return count, first

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def start_server(server, cpu, timeout):
    """Start `server`, wait until its port accepts and it answers correctly.

    On failure sets server.error (and stops the process); never raises."""
    argv = list(server.argv)
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv   # taskset execs: same pid
    env = dict(os.environ)
    env["PYTHONPATH"] = APPS_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = open(server.log_path, "wb")
    try:
        server.proc = subprocess.Popen(argv, cwd=APPS_DIR, env=env, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
    except OSError as exc:
        server.error = "cannot execute: %s" % exc
        return
    finally:
        log.close()

    deadline = time.monotonic() + timeout
    while True:
        if not server.alive:
            server.error = "exited with code %s before listening" % server.proc.returncode
            return
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.error = "not listening after %.0fs" % timeout
                stop_server(server)
                return
            time.sleep(0.1)
    problem = verify(server.port)
    if problem:
        server.error = "wrong answer: " + problem
        stop_server(server)


def verify(port):
    """None if GET / answers 200 with the expected body (twice on one
    keep-alive connection), else a description of what is wrong."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(2):
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or body != EXPECTED_BODY:
                return "status %d, body %r (expected 200, %r)" % (resp.status, body[:80],
                                                                  EXPECTED_BODY)
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return "%s: %s" % (type(exc).__name__, exc)
    return None


def stop_server(server, grace=10):
    """SIGTERM the server's own process group, SIGKILL it after `grace` s.

    Returns None if it was not running or stopped cleanly (exit 0 or killed
    by the SIGTERM), else a description of the unclean stop."""
    if server.proc is None or server.proc.poll() is not None:
        return None
    try:
        os.killpg(server.proc.pid, signal.SIGTERM)
        code = server.proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        return "still running %gs after SIGTERM, killed" % grace
    except ProcessLookupError:
        return None
    if code in (0, -signal.SIGTERM):
        return None
    return "exit code %s after SIGTERM" % code


# --------------------------------------------------------------------------
# wrk

@dataclasses.dataclass
class WrkResult:
    rps: float = None
    requests: int = 0
    latency_avg: str = ""
    latency_p99: str = ""
    non_2xx: int = 0
    socket_errors: str = ""
    server_cpu: float = None   # server CPU seconds / wall seconds during the run
    wrk_cpu: float = None      # same for wrk: near 100% per thread = wrk is the limit
    checked_good: int = None   # responses check.lua saw as 200 + expected body
    checked_bad: int = None    # ... and as anything else
    first_bad: str = ""
    error: str = None


_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.M)
_LAT = re.compile(r"^\s+Latency\s+(\S+)", re.M)
_P99 = re.compile(r"^\s+99%\s+(\S+)", re.M)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKERR = re.compile(r"Socket errors:\s*(.*)")
_CHECK = re.compile(r"^check: good (\d+) bad (\d+)", re.M)
_FIRST_BAD = re.compile(r"^check-first-bad: (.*)", re.M)
CHECK_LUA = os.path.join(HERE, "check.lua")


def parse_wrk(text):
    res = WrkResult()
    m = _RPS.search(text)
    if not m:
        res.error = "no Requests/sec in wrk output: " + text.strip()[-300:]
        return res
    res.rps = float(m.group(1))
    for regex, attr, conv in ((_TOTAL, "requests", int), (_LAT, "latency_avg", str),
                              (_P99, "latency_p99", str), (_NON2XX, "non_2xx", int),
                              (_SOCKERR, "socket_errors", str)):
        m = regex.search(text)
        if m:
            setattr(res, attr, conv(m.group(1).strip()))
    m = _CHECK.search(text)
    if m:
        res.checked_good, res.checked_bad = int(m.group(1)), int(m.group(2))
        m = _FIRST_BAD.search(text)
        res.first_bad = m.group(1).strip() if m else ""
    else:
        res.error = "no check line from check.lua in wrk output"
    return res


def run_wrk(server, args, duration):
    argv = ["wrk", "-t", str(args.threads), "-c", str(args.connections),
            "-d", "%gs" % duration, "--timeout", "%gs" % args.wrk_timeout, "--latency",
            "-s", CHECK_LUA, "http://127.0.0.1:%d/" % server.port]
    if args.wrk_cpu is not None:
        argv = ["taskset", "-c", args.wrk_cpu] + argv
    pids = process_tree(server.proc.pid)
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        return WrkResult(error="wrk did not finish")
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = parse_wrk(out.stdout + out.stderr)
    res.server_cpu = (cpu_seconds(process_tree(server.proc.pid)) - cpu0) / wall
    res.wrk_cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall
    if out.returncode != 0 and res.error is None:
        res.error = "wrk exit code %d" % out.returncode
    if res.error is None and res.non_2xx:
        res.error = "%d non-2xx responses" % res.non_2xx
    if res.error is None and res.checked_bad:
        res.error = "%d wrong responses (first: %s)" % (res.checked_bad, res.first_bad)
    if res.wrk_cpu > 0.9 * args.threads:
        print("  warning: wrk used %.0f%% CPU for %d thread(s): the load generator may be "
              "the limit" % (100 * res.wrk_cpu, args.threads), file=sys.stderr)
    if res.error is None and not server.alive:
        res.error = "server died during the run"
    return res


# --------------------------------------------------------------------------
# reporting

def _good_runs(server):
    if server is None or server.error:
        return []
    return [r for r in server.runs if r.error is None and r.rps is not None]


def median_rps(server):
    """Median req/s over the server's clean runs, None if it has none."""
    good = [r.rps for r in _good_runs(server)]
    return statistics.median(good) if good else None


def median_rps_per_cpu(server):
    """Median requests per second of server CPU time: robust against a busy
    machine stealing the server's core, since it divides that loss out."""
    good = [r.rps / r.server_cpu for r in _good_runs(server) if r.server_cpu]
    return statistics.median(good) if good else None


def median_cpu(server):
    good = [r.server_cpu for r in _good_runs(server) if r.server_cpu is not None]
    return statistics.median(good) if good else None


def _metric_table(results, servers, cases, dfws_pending, metric, title, fmt, ratios):
    head = ["case"] + ["%s %s" % (s, title) for s in servers]
    with_ratios = ratios and "dfws" in servers
    others = [s for s in servers if s != "dfws"]
    if with_ratios:
        head += ["dfws/%s" % s for s in others]
    rows = []
    for case in cases:
        by = results.get(case, {})
        values = {}
        row = [CASES[case][1]]
        for s in servers:
            srv = by.get(s)
            values[s] = metric(srv) if srv is not None else None
            if s == "dfws" and dfws_pending:
                row.append("pending")
            elif srv is None:
                row.append("-")
            elif values[s] is None:
                row.append("failed")
            else:   # '*': a caveat (e.g. died after some runs) listed below the tables
                row.append(fmt(values[s]) + ("*" if srv.notes else ""))
        if with_ratios:
            for s in others:
                a, b = values.get("dfws"), values.get(s)
                if dfws_pending:
                    row.append("pending")
                elif a is None or not b:
                    row.append("-")
                else:
                    row.append("%.2fx" % (a / b))
        rows.append(row)
    return head, rows


def build_tables(results, servers, cases, dfws_pending):
    """[(title, head, rows)] for throughput, CPU efficiency, server CPU and memory."""
    def peak(srv):
        if srv.peak_rss_kib is None or srv.error:
            return None
        return srv.peak_rss_kib / 1024

    args = (results, servers, cases, dfws_pending)
    return [
        ("Throughput (median req/s)",
         *_metric_table(*args, median_rps, "req/s", "{:.0f}".format, True)),
        ("Efficiency (requests per server CPU-second)",
         *_metric_table(*args, median_rps_per_cpu, "req/CPU-s", "{:.0f}".format, True)),
        ("Server CPU use during the measured runs (100% = one core)",
         *_metric_table(*args, median_cpu, "CPU", lambda v: "%.0f%%" % (100 * v), False)),
        ("Peak RSS (VmHWM, server process + children)",
         *_metric_table(*args, peak, "peak RSS", "{:.1f} MiB".format, False)),
    ]


def text_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                               for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def versions(dfws_path, dfws_pending):
    out = {}
    for mod in ("uvicorn", "daphne", "django"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - report, do not crash
            out[mod] = "?"
    if dfws_pending:
        out["dfws"] = "pending"
    else:
        try:
            v = subprocess.run([dfws_path, "--version"], capture_output=True, text=True,
                               timeout=10)
            out["dfws"] = (v.stdout or v.stderr).strip() or "?"
        except (OSError, subprocess.TimeoutExpired):
            out["dfws"] = "?"
    try:
        w = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        out["wrk"] = (w.stdout + w.stderr).split("[")[0].replace("wrk", "").strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        out["wrk"] = "?"
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def failure_lines(results, cases, servers):
    """One line per server and case that failed or has a caveat ('*' in the
    tables), with why."""
    lines = []
    for c in cases:
        for s in servers:
            srv = results.get(c, {}).get(s)
            if srv is None:
                continue
            if srv.error:
                lines.append("FAILED %s / %s: %s" % (s, CASES[c][1], srv.error))
            for why in srv.notes:
                lines.append("NOTE %s / %s: %s" % (s, CASES[c][1], why))
    return lines


def markdown_report(args, tables, vers, results, load):
    cmd = "/usr/bin/python3 bench/http_bench.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    lines = [
        "Command: `%s`" % cmd.strip(),
        "",
        "wrk `-t%d -c%d -d%gs` after a %gs warm-up, median of %d run(s); "
        "server %s, wrk %s; one worker per server, no access log."
        % (args.threads, args.connections, args.duration, args.warmup, args.repeat,
           "pinned to CPU %s" % args.server_cpu if args.server_cpu else "not pinned",
           "pinned to CPU %s" % args.wrk_cpu if args.wrk_cpu else "not pinned"),
        "Machine: %s, %d CPUs, Python %s, load average %s before / %s after; versions: %s."
        % (cpu_model(), os.cpu_count(), platform.python_version(), load[0], load[1],
           ", ".join("%s %s" % kv for kv in sorted(vers.items()))),
    ]
    for title, head, rows in tables:
        lines += ["", "*%s*" % title, "", md_table(head, rows)]
    problems = failure_lines(results, args.cases, args.servers)
    if problems:
        lines += [""] + ["- " + p for p in problems]
    return "\n".join(lines) + "\n"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=10, help="seconds per measured wrk run")
    p.add_argument("--warmup", type=float, default=3, help="seconds of unmeasured warm-up")
    p.add_argument("--connections", type=int, default=50, help="wrk -c")
    p.add_argument("--threads", type=int, default=1, help="wrk -t")
    p.add_argument("--repeat", type=int, default=1,
                   help="measured runs per server and case (median reported)")
    p.add_argument("--servers", default=",".join(ALL_SERVERS),
                   help="comma-separated subset of " + ",".join(ALL_SERVERS))
    p.add_argument("--cases", default=",".join(CASES),
                   help="comma-separated subset of " + ",".join(CASES))
    p.add_argument("--dfws", default=default_dfws(),
                   help="dfws-asgi binary (env DFWS_ASGI, else .venv/bin or build/)")
    p.add_argument("--server-cpu", default="0",
                   help="taskset CPU list for the servers ('' = no pinning)")
    p.add_argument("--wrk-cpu", default="1",
                   help="taskset CPU list for wrk ('' = no pinning)")
    p.add_argument("--wrk-timeout", type=float, default=5, help="wrk --timeout seconds")
    p.add_argument("--start-timeout", type=float, default=20,
                   help="seconds a server gets to start listening")
    p.add_argument("--markdown", metavar="FILE", help="also write a markdown fragment here")
    p.add_argument("--keep-logs", action="store_true", help="keep the servers' log files")
    args = p.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for s in args.servers:
        if s not in ALL_SERVERS:
            p.error("unknown server %r (choose from %s)" % (s, ", ".join(ALL_SERVERS)))
    for c in args.cases:
        if c not in CASES:
            p.error("unknown case %r (choose from %s)" % (c, ", ".join(CASES)))
    if not args.servers or not args.cases:
        p.error("need at least one server and one case")
    if args.duration <= 0 or args.repeat < 1 or args.connections < 1 or args.threads < 1:
        p.error("--duration, --repeat, --connections and --threads must be positive")
    if args.connections < args.threads:
        p.error("--connections must be >= --threads (wrk requirement)")
    args.server_cpu = args.server_cpu or None
    args.wrk_cpu = args.wrk_cpu or None
    return args


def main(argv=None):
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    if (args.server_cpu or args.wrk_cpu) and shutil.which("taskset") is None:
        print("error: taskset not found (util-linux); use --server-cpu '' --wrk-cpu ''",
              file=sys.stderr)
        return 2
    dfws_pending = "dfws" in args.servers and not os.access(args.dfws, os.X_OK)
    if dfws_pending:
        print("note: dfws-asgi not found at %s: its column is 'pending'" % args.dfws,
              file=sys.stderr)
    servers = [s for s in args.servers if not (s == "dfws" and dfws_pending)]
    logdir = tempfile.mkdtemp(prefix="dfws-bench-")
    load_before = loadavg()
    if load_before != "?" and float(load_before) > 1.0:
        print("warning: load average %s before the run: other work shares the CPUs, "
              "req/s will be low and noisy (the req/CPU-s table is more robust)"
              % load_before, file=sys.stderr)
    results = {}
    try:
        for case in args.cases:
            app, label = CASES[case]
            print("== %s (%s)" % (label, app), file=sys.stderr)
            started = {}
            results[case] = started
            for name in servers:
                port = free_port()
                srv = Server(name, case, server_command(name, app, port, args.dfws), port,
                             os.path.join(logdir, "%s-%s.log" % (case, name)))
                start_server(srv, args.server_cpu, args.start_timeout)
                started[name] = srv
                if srv.error:
                    print("  %-8s FAILED: %s" % (name, srv.error), file=sys.stderr)
                    tail = srv.log_tail()
                    if tail:
                        print("    " + tail.replace("\n", "\n    "), file=sys.stderr)
                else:
                    print("  %-8s up on port %d, answers 200 %r" % (name, port, EXPECTED_BODY),
                          file=sys.stderr)
            live = [srv for srv in started.values() if not srv.error]
            if args.warmup > 0:
                for srv in live:
                    warm = run_wrk(srv, args, args.warmup)
                    if warm.error:
                        print("  %-8s warm-up problem: %s" % (srv.name, warm.error),
                              file=sys.stderr)
            for rep in range(args.repeat):
                for srv in live:
                    if not srv.alive:
                        continue
                    res = run_wrk(srv, args, args.duration)
                    srv.runs.append(res)
                    if srv.alive:   # sample after every run: VmHWM is gone once it exits
                        srv.peak_rss_kib = max(srv.peak_rss_kib or 0,
                                               peak_rss_kib(process_tree(srv.proc.pid)))
                    if res.error:
                        print("  %-8s run %d: ERROR %s" % (srv.name, rep + 1, res.error),
                              file=sys.stderr)
                    else:
                        print("  %-8s run %d: %8.0f req/s  latency avg %s p99 %s  "
                              "server CPU %3.0f%%  wrk CPU %3.0f%%%s"
                              % (srv.name, rep + 1, res.rps, res.latency_avg, res.latency_p99,
                                 100 * res.server_cpu, 100 * res.wrk_cpu,
                                 "  socket errors: " + res.socket_errors
                                 if res.socket_errors else ""),
                              file=sys.stderr)
            for srv in live:
                if not srv.alive:
                    good = len(_good_runs(srv))
                    srv.notes.append("server died (exit code %s) after %d good run(s) of %d"
                                     % (srv.proc.returncode, good, args.repeat))
                    print("  %-8s %s; log tail:\n    %s"
                          % (srv.name, srv.notes[-1],
                             srv.log_tail().replace("\n", "\n    ") or "(empty)"),
                          file=sys.stderr)
                unclean = stop_server(srv)   # first, so the log is complete
                if unclean:
                    srv.notes.append("unclean shutdown: " + unclean)
                tracebacks, example = srv.log_tracebacks()
                if tracebacks:
                    srv.notes.append("%d Python traceback(s) in the server log, first: %s"
                                     " (--keep-logs to read it)" % (tracebacks, example))
                if not _good_runs(srv):
                    srv.error = (srv.runs[-1].error if srv.runs and srv.runs[-1].error
                                 else "no successful run")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for by in results.values():
            for srv in by.values():
                stop_server(srv)
        if args.keep_logs:
            print("server logs kept in %s" % logdir, file=sys.stderr)
        else:
            shutil.rmtree(logdir, ignore_errors=True)

    load = (load_before, loadavg())
    tables = build_tables(results, args.servers, args.cases, dfws_pending)
    for title, head, rows in tables:
        print()
        print(title)
        print(text_table(head, rows))
    problems = failure_lines(results, args.cases, args.servers)
    if problems:
        print()
        print("\n".join(problems))
    print("\nload average: %s before, %s after" % load)
    if args.markdown:
        vers = versions(args.dfws, dfws_pending)
        with open(args.markdown, "w") as f:
            f.write(markdown_report(args, tables, vers, results, load))
        print("markdown written to %s" % args.markdown, file=sys.stderr)
    failed = any(srv.error or srv.notes for by in results.values() for srv in by.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
