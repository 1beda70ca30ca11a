#!/usr/bin/python3
"""df_websockets windows benchmark: dfws-asgi's native socket against daphne.

N windows connect to the Django project bench/apps/wsproj the way a browser
does: GET /page/ (the view calls set_websocket_topics, df_websockets'
middleware sets the dfwskey/dfwsurl cookies), then the WebSocket upgrade on
/ws/ with those cookies and an Origin header. The channel layer is
channels_redis' RedisChannelLayer and the cache django_redis, both on one
redis-server this script starts. Each server is measured in turn in the same
run on the same redis-server (flushed in between):

1. memory: server RSS (VmRSS, process tree) after N idle windows minus RSS
   before them (after a warm-up of a few windows, closed again), / N;
2. one at a time: --broadcasts broadcasts, each fired by ANOTHER process
   (bench/apps/wsproj/fire.py: df_websockets.tasks.trigger(..., to=[BROADCAST])
   carrying time.time()), the next one only after every window received the
   previous one: per-delivery latency p50/p99 and the time to reach all;
3. burst: --burst broadcasts fired back to back: deliveries/s =
   N x burst / (last receive - first trigger), latency under that load;
4. lost deliveries (a window that never received a broadcast) and duplicates.

The clients are bench/wsload.py processes (raw asyncio protocols on uvloop;
--client-procs of them). Their CPU use is printed: near 100% of the CPUs they
had means they, not the server, were the limit.

Run with Debian's interpreter:  /usr/bin/python3 bench/native_bench.py --help
"""

import argparse
import dataclasses
import json
import os
import platform
import resource
import select
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # importing http_bench must not leave bench/__pycache__
import http_bench as hb  # noqa: E402  (shared helpers: /proc, tables, stop)

REPO = os.path.dirname(HERE)
PROJ = os.path.join(HERE, "apps", "wsproj")
PYTHON = "/usr/bin/python3"
WSLOAD = os.path.join(HERE, "wsload.py")
FIRE = os.path.join(PROJ, "fire.py")
APP = "wsproj.asgi:application"
ALL_SERVERS = ("dfws", "daphne")
TARGETS = {"ratio": 50.0, "p99": 0.100, "lost": 0, "kib": 4.0}


def server_command(name, port, dfws_path):
    if name == "dfws":
        return [dfws_path, "-b", "127.0.0.1", "-p", str(port), "-v", "0", APP]
    if name == "daphne":
        return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", APP]
    raise ValueError(name)


# --------------------------------------------------------------------------
# file descriptors

def raise_nofile(want):
    """Raise RLIMIT_NOFILE of this process (inherited by children) to `want`
    (root may raise the hard limit up to fs.nr_open). Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if want > hard:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                cap = int(f.read())
        except OSError:
            cap = hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, cap), min(want, cap)))
            return min(want, cap)
        except (ValueError, OSError):
            want = hard
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def child_limits(nofile):
    def fn():
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, max(nofile, resource.getrlimit(
                resource.RLIMIT_NOFILE)[1])))
        except (ValueError, OSError):
            pass
    return fn


# --------------------------------------------------------------------------
# redis

class Redis:
    def __init__(self):
        self.port = hb.free_port()
        self.url = "redis://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--bind", "127.0.0.1", "--maxclients", "10000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while self.command(b"PING") != b"+PONG":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start on port %d" % self.port)
            time.sleep(0.1)

    def command(self, *words):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"*%d\r\n" % len(words) +
                          b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))
                return s.recv(64).split(b"\r\n")[0]
        except OSError:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------
# processes

def read_line(proc, timeout):
    """Next JSON line from a child's stdout; None when it died or timed out."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([proc.stdout], [], [], left)
        if not r:
            return None
        line = proc.stdout.readline()
        if not line:
            return None
        try:
            return json.loads(line)
        except ValueError:
            continue   # stray output (e.g. a warning printed by a library)


def tell(proc, obj):
    proc.stdin.write(json.dumps(obj) + "\n")
    proc.stdin.flush()


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


@dataclasses.dataclass
class Server:
    name: str
    argv: list
    port: int
    log_path: str
    proc: subprocess.Popen = None
    error: str = None
    notes: list = dataclasses.field(default_factory=list)
    res: dict = dataclasses.field(default_factory=dict)

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    log_tail = hb.Server.log_tail
    log_tracebacks = hb.Server.log_tracebacks


class Clients:
    def __init__(self, args, port, count, nofile, env):
        self.procs = []
        per = [count // args.client_procs + (1 if i < count % args.client_procs else 0)
               for i in range(args.client_procs)]
        for n in per:
            if not n:
                continue
            cfg = {"mode": "windows", "port": port, "path": "/ws/", "page": "/page/",
                   "count": n, "concurrency": args.connect_concurrency,
                   "origin": "http://127.0.0.1:%d" % port, "connect_timeout": 60}
            argv = [PYTHON, WSLOAD, json.dumps(cfg)]
            if args.client_cpu:
                argv = ["taskset", "-c", args.client_cpu] + argv
            self.procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                               text=True, bufsize=1, env=env,
                                               preexec_fn=child_limits(nofile)))
        self.ready = [read_line(p, 60 + count / 20) for p in self.procs]

    def command(self, cmd, timeout):
        for p in self.procs:
            try:
                tell(p, cmd)
            except (OSError, ValueError):
                pass
        return [read_line(p, timeout) for p in self.procs]

    def cpu(self):
        return sum((r or {}).get("cpu", 0) for r in self.command({"cmd": "cpu"}, 30))

    def close(self):
        for p in self.procs:
            try:
                tell(p, {"cmd": "quit"})
            except (OSError, ValueError):
                pass
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))]


# --------------------------------------------------------------------------
# one server

def start_server(server, args, env, nofile):
    argv = list(server.argv)
    if args.server_cpu:
        argv = ["taskset", "-c", args.server_cpu] + argv
    with open(server.log_path, "wb") as log:
        try:
            server.proc = subprocess.Popen(argv, cwd=PROJ, env=env, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True,
                                           preexec_fn=child_limits(nofile))
        except OSError as exc:
            server.error = "cannot execute: %s" % exc
            return
    deadline = time.monotonic() + args.start_timeout
    url = "http://127.0.0.1:%d/page/" % server.port
    while True:
        if not server.alive:
            server.error = "exited with code %s before answering" % server.proc.returncode
            return
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                cookies = resp.headers.get_all("Set-Cookie") or []
                if resp.status != 200 or not any(c.startswith("dfwskey=") for c in cookies):
                    server.error = "GET /page/ answered %d without a dfwskey cookie" % resp.status
                    hb.stop_server(server)
                return
        except OSError:
            if time.monotonic() > deadline:
                server.error = "GET /page/ not answered after %.0fs" % args.start_timeout
                hb.stop_server(server)
                return
            time.sleep(0.2)


def run_server(server, args, env, nofile, redis):
    """Measure one server; fills server.res / server.error, never raises."""
    redis.command(b"FLUSHALL")
    start_server(server, args, env, nofile)
    if server.error:
        return
    pids = lambda: hb.process_tree(server.proc.pid)   # noqa: E731
    fire = subprocess.Popen([PYTHON, FIRE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(server.log_path + ".fire", "wb"), text=True,
                            bufsize=1, env=env, cwd=PROJ)
    clients = None
    try:
        if read_line(fire, 60) is None:
            server.error = "the trigger process (fire.py) did not start"
            return
        # warm-up: a few windows and one broadcast (imports, first requests)
        warm = Clients(args, server.port, args.warmup_windows, nofile, env)
        bad = [r for r in warm.ready if not r or r.get("failed")]
        if bad:
            server.error = "warm-up windows failed: %s" % (bad[0] or "client died")
            warm.close()
            return
        tell(fire, {"cmd": "fire", "seqs": [0]})
        read_line(fire, 30)
        w = warm.command({"cmd": "wait", "seqs": [0], "timeout": 10}, 40)
        warm.close()
        if not all(x and x["complete"] for x in w):
            server.error = "warm-up broadcast not received by every window: %s" % w
            return
        time.sleep(args.settle)
        rss0 = rss_kib(pids())

        t0, cpu0 = time.monotonic(), hb.cpu_seconds(pids())
        clients = Clients(args, server.port, args.windows, nofile, env)
        connect_s = time.monotonic() - t0
        connect_cpu = hb.cpu_seconds(pids()) - cpu0
        opened = sum((r or {}).get("open", 0) for r in clients.ready)
        errors = [e for r in clients.ready if r for e in r.get("errors", [])]
        server.res.update(open=opened, connect_s=connect_s, connect_cpu=connect_cpu,
                          connect_rate=opened / connect_s if connect_s else None)
        if opened < args.windows:
            server.notes.append("%d of %d windows failed to connect (%s)"
                                % (args.windows - opened, args.windows,
                                   "; ".join(errors[:3]) or "a client process died"))
        print("  %-7s %d windows open in %.1fs" % (server.name, opened, connect_s),
              file=sys.stderr)
        if not opened or not server.alive:
            server.error = server.error or "no window connected"
            return
        time.sleep(args.settle)
        rss1 = rss_kib(pids())
        server.res.update(rss0=rss0, rss1=rss1, kib_per_window=(rss1 - rss0) / opened)

        # one broadcast at a time
        seqs_paced = list(range(1, args.broadcasts + 1))
        rounds, sent, calls = [], {}, []
        cpu0, ccpu0, t0 = hb.cpu_seconds(pids()), clients.cpu(), time.monotonic()
        for seq in seqs_paced:
            tell(fire, {"cmd": "fire", "seqs": [seq]})
            f = read_line(fire, 60)
            if f is None:
                server.error = "the trigger process died or hung (see %s.fire)" % server.log_path
                return
            sent[seq] = f["fired"][0][1]
            calls.append(f["fired"][0][2] - f["fired"][0][1])
            w = clients.command({"cmd": "wait", "seqs": [seq], "timeout": args.round_timeout},
                                args.round_timeout + 60)
            if any(x is None for x in w):
                server.error = "a client process died or hung in broadcast %d" % seq
                return
            last = max(x["last_recv"] for x in w)
            if last:
                rounds.append(last - sent[seq])
        paced_wall = time.monotonic() - t0
        server.res.update(paced_cpu=(hb.cpu_seconds(pids()) - cpu0) / paced_wall,
                          paced_client_cpu=(clients.cpu() - ccpu0) / paced_wall,
                          round_p50=pct(rounds, 50), round_p99=pct(rounds, 99),
                          trigger_p50=pct(calls, 50))

        # burst
        seqs_burst = list(range(args.broadcasts + 1, args.broadcasts + args.burst + 1))
        cpu0, ccpu0, t0 = hb.cpu_seconds(pids()), clients.cpu(), time.monotonic()
        tell(fire, {"cmd": "fire", "seqs": seqs_burst})
        f = read_line(fire, 120)
        if f is None:
            server.error = "the trigger process died or hung (see %s.fire)" % server.log_path
            return
        for seq, ts, _ in f["fired"]:
            sent[seq] = ts
        fire_s = f["fired"][-1][2] - f["fired"][0][1]
        timeout = args.round_timeout * max(1, args.burst / 4)
        w = clients.command({"cmd": "wait", "seqs": seqs_burst, "timeout": timeout},
                            timeout + 60)
        burst_wall = time.monotonic() - t0
        if any(x is None for x in w):
            server.error = "a client process died or hung in the burst"
            return
        server.res.update(burst_cpu=(hb.cpu_seconds(pids()) - cpu0) / burst_wall,
                          burst_client_cpu=(clients.cpu() - ccpu0) / burst_wall,
                          fire_rate=len(seqs_burst) / fire_s if fire_s > 0 else None)

        # collect
        col = clients.command({"cmd": "collect"}, 120)
        if any(c is None for c in col):
            server.error = "a client process died or hung while reporting"
            return
        lat_paced, lat_burst, burst_last, got = [], [], 0, 0
        for c in col:
            for seq, xs in c["lat"].items():
                seq = int(seq)
                got += len(xs)
                if seq in seqs_paced:
                    lat_paced += xs
                elif seq in seqs_burst:
                    lat_burst += xs
                    burst_last = max(burst_last, c["last_recv"][str(seq)])
        expected = opened * (len(seqs_paced) + len(seqs_burst))
        burst_got = len(lat_burst)
        first = min(sent[s] for s in seqs_burst)
        server.res.update(
            lat_p50=pct(lat_paced, 50), lat_p99=pct(lat_paced, 99),
            burst_p50=pct(lat_burst, 50), burst_p99=pct(lat_burst, 99),
            deliveries_s=burst_got / (burst_last - first) if burst_last > first else None,
            lost=expected - got, dups=sum(c["dups"] for c in col),
            unexpected=sum(c["unexpected"] for c in col),
            closed=sum(c["closed_by_server"] for c in col),
            close_codes=sorted({x for c in col for x in c["close_codes"]}))
        if server.res["closed"]:
            server.notes.append("%d windows closed by the server during the run (codes %s)"
                                % (server.res["closed"], server.res["close_codes"]))
        if server.res["lost"] or server.res["dups"] or server.res["unexpected"]:
            server.notes.append("%d deliveries lost, %d duplicated, %d unexpected messages"
                                % (server.res["lost"], server.res["dups"],
                                   server.res["unexpected"]))
    finally:
        if clients is not None:
            clients.close()
            if server.alive and "rss1" in server.res:
                time.sleep(args.settle)
                server.res["rss2"] = rss_kib(pids())
        try:
            tell(fire, {"cmd": "quit"})
            fire.wait(10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            fire.kill()
        if server.alive:
            server.res["peak_kib"] = hb.peak_rss_kib(hb.process_tree(server.proc.pid))
        unclean = hb.stop_server(server)
        if unclean:
            server.notes.append("unclean shutdown: " + unclean)
        tb, first_tb = server.log_tracebacks()
        if tb:
            server.notes.append("%d Python traceback(s) in the server log, first: %s"
                                % (tb, first_tb))


# --------------------------------------------------------------------------
# reporting

def fmt_ms(v):
    return "%.1f ms" % (1000 * v)


ROWS = [
    # label, key, format, ratio kind (None, "up" = dfws/other, "down" = other/dfws)
    ("windows connected", "open", "{:d}".format, None),
    ("connect time (GET + upgrade)", "connect_s", "{:.1f} s".format, "down"),
    ("server RSS before / with windows / after closing", None, None, None),
    ("RSS per idle window", "kib_per_window", "{:.2f} KiB".format, "down"),
    ("one at a time: latency p50", "lat_p50", fmt_ms, "down"),
    ("one at a time: latency p99", "lat_p99", fmt_ms, "down"),
    ("one at a time: time to reach all, p50", "round_p50", fmt_ms, "down"),
    ("one at a time: time to reach all, p99", "round_p99", fmt_ms, "down"),
    ("one at a time: trigger() call in fire.py, p50", "trigger_p50", fmt_ms, None),
    ("one at a time: server CPU", "paced_cpu", "{:.0%}".format, None),
    ("one at a time: client CPU", "paced_client_cpu", "{:.0%}".format, None),
    ("burst: deliveries/s", "deliveries_s", "{:.0f}".format, "up"),
    ("burst: latency p50", "burst_p50", fmt_ms, "down"),
    ("burst: latency p99", "burst_p99", fmt_ms, "down"),
    ("burst: server CPU", "burst_cpu", "{:.0%}".format, None),
    ("burst: client CPU", "burst_client_cpu", "{:.0%}".format, None),
    ("burst: trigger rate (fire.py)", "fire_rate", "{:.0f}/s".format, None),
    ("lost deliveries", "lost", "{:d}".format, None),
    ("duplicated deliveries", "dups", "{:d}".format, None),
    ("peak RSS (VmHWM)", "peak_kib", lambda v: "%.1f MiB" % (v / 1024), None),
]


def build_table(servers):
    names = list(servers)
    ratio = "dfws" in servers and len(names) > 1
    others = [n for n in names if n != "dfws"]
    head = ["measure"] + names + (["dfws vs %s" % n for n in others] if ratio else [])
    rows = []
    for label, key, fmt, kind in ROWS:
        row = [label]
        for n in names:
            srv = servers[n]
            if key is None:
                r = srv.res
                row.append("%.1f / %.1f / %s MiB" % (r["rss0"] / 1024, r["rss1"] / 1024,
                                                     "%.1f" % (r["rss2"] / 1024) if "rss2" in r
                                                     else "?")
                           if "rss1" in r else ("failed" if srv.error else "-"))
                continue
            v = srv.res.get(key)
            row.append(fmt(v) if v is not None else ("failed" if srv.error else "-"))
        if ratio:
            for o in others:
                a, b = servers["dfws"].res.get(key) if key else None, \
                    servers[o].res.get(key) if key else None
                if kind and a and b:
                    row.append("%.2fx %s" % ((a / b, "more") if kind == "up" else
                                              (b / a, "less")))
                else:
                    row.append("")
        rows.append(row)
    return head, rows


def targets(servers, args):
    """Lines saying whether each target of the issue is met (dfws)."""
    d = servers.get("dfws")
    if d is None or not d.res.get("open"):
        return ["targets: not evaluated (dfws has no result)"]
    r = d.res
    lines = []
    if args.windows != 2000:
        lines.append("(the targets are stated for 2,000 windows; this run has %d)" % args.windows)
    dap = servers.get("daphne")
    ds = r.get("deliveries_s")
    if dap is not None and dap.res.get("deliveries_s") and ds:
        ratio = ds / dap.res["deliveries_s"]
        lines.append("%s deliveries/s >= 50x daphne's: %.1fx (%.0f vs %.0f)"
                     % ("MET    " if ratio >= TARGETS["ratio"] else "NOT MET", ratio, ds,
                        dap.res["deliveries_s"]))
    else:
        lines.append("n/a     deliveries/s >= 50x daphne's: daphne not measured")
    p99 = r.get("lat_p99")
    if p99 is not None:
        lines.append("%s latency p99 <= 100 ms (one broadcast at a time): %.1f ms; under the "
                     "burst: %s" % ("MET    " if p99 <= TARGETS["p99"] else "NOT MET", 1000 * p99,
                                    fmt_ms(r["burst_p99"]) if r.get("burst_p99") else "-"))
    if "lost" in r:
        lines.append("%s no delivery lost: %d lost" % ("MET    " if r["lost"] == 0 else "NOT MET",
                                                      r["lost"]))
    if r.get("kib_per_window") is not None:
        lines.append("%s <= 4 KiB RSS per idle window: %.2f KiB"
                     % ("MET    " if r["kib_per_window"] <= TARGETS["kib"] else "NOT MET",
                        r["kib_per_window"]))
    return lines


def versions(dfws_path):
    out = {}
    for mod in ("daphne", "django", "channels", "channels_redis", "django_redis"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            out[mod] = "?"
    try:
        v = subprocess.run([dfws_path, "--version"], capture_output=True, text=True, timeout=10)
        out["dfws"] = (v.stdout or v.stderr).strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        out["dfws"] = "?"
    try:
        v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                           timeout=10)
        out["redis-server"] = v.stdout.split()[2].replace("v=", "")
    except (OSError, subprocess.TimeoutExpired, IndexError):
        out["redis-server"] = "?"
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--servers", default=",".join(ALL_SERVERS))
    p.add_argument("--windows", type=int, default=2000)
    p.add_argument("--broadcasts", type=int, default=20, help="broadcasts fired one at a time")
    p.add_argument("--burst", type=int, default=20, help="broadcasts fired back to back")
    p.add_argument("--round-timeout", type=float, default=60,
                   help="seconds a broadcast may take to reach every window before the "
                        "missing ones count as lost")
    p.add_argument("--client-procs", type=int, default=4)
    p.add_argument("--connect-concurrency", type=int, default=8,
                   help="windows each client process opens at a time")
    p.add_argument("--warmup-windows", type=int, default=200,
                   help="windows connected (and closed) before the idle RSS is read, with the "
                        "same clients and concurrency as the measured ones: one-time costs "
                        "(worker threads, lazily built caches, the allocators' high-water of "
                        "concurrent handshakes) are not per-window memory")
    p.add_argument("--settle", type=float, default=2, help="idle seconds before reading RSS")
    p.add_argument("--dfws", default=hb.default_dfws())
    p.add_argument("--server-cpu", default="", help="taskset list for the server ('' = none)")
    p.add_argument("--client-cpu", default="", help="taskset list for the clients ('' = none)")
    p.add_argument("--start-timeout", type=float, default=30)
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in args.servers:
        if s not in ALL_SERVERS:
            p.error("unknown server %r" % s)
    if min(args.windows, args.broadcasts, args.burst, args.client_procs,
           args.warmup_windows) < 1:
        p.error("counts must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    if shutil.which("redis-server") is None:
        print("error: redis-server not found", file=sys.stderr)
        return 2
    per_proc = args.windows // args.client_procs + 1
    nofile = raise_nofile(max(args.windows, per_proc) * 2 + 1024)
    if nofile < args.windows + 100:
        print("error: cannot raise the open-files limit above %d for %d windows"
              % (nofile, args.windows), file=sys.stderr)
        return 2
    logdir = tempfile.mkdtemp(prefix="dfws-nativebench-")
    load_before = hb.loadavg()
    redis = Redis()
    env = dict(os.environ)
    env.update(WSPROJ_REDIS_URL=redis.url, PYTHONDONTWRITEBYTECODE="1",
               DJANGO_SETTINGS_MODULE="wsproj.settings",
               PYTHONPATH=PROJ + os.pathsep + REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""))
    servers = {}
    try:
        for name in args.servers:
            port = hb.free_port()
            srv = Server(name, server_command(name, port, args.dfws), port,
                         os.path.join(logdir, name + ".log"))
            servers[name] = srv
            print("== %s (%d windows)" % (name, args.windows), file=sys.stderr)
            run_server(srv, args, env, nofile, redis)
            if srv.error:
                print("  %-7s FAILED: %s\n    %s" % (name, srv.error,
                                                    srv.log_tail(8).replace("\n", "\n    ")),
                      file=sys.stderr)
            for note in srv.notes:
                print("  %-7s NOTE: %s" % (name, note), file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for srv in servers.values():
            hb.stop_server(srv)
        redis.stop()
        if args.keep_logs:
            print("logs kept in %s" % logdir, file=sys.stderr)
        else:
            shutil.rmtree(logdir, ignore_errors=True)
    load = (load_before, hb.loadavg())
    head, rows = build_table(servers)
    print()
    print(hb.text_table(head, rows))
    problems = ["%s %s: %s" % ("FAILED", n, s.error) for n, s in servers.items() if s.error]
    problems += ["NOTE %s: %s" % (n, x) for n, s in servers.items() for x in s.notes]
    if problems:
        print("\n" + "\n".join(problems))
    tl = targets(servers, args)
    print("\nTargets (dfws):\n" + "\n".join("  " + t for t in tl))
    print("\nload average: %s before, %s after" % load)
    if args.markdown:
        vers = versions(args.dfws)
        cmd = "/usr/bin/python3 bench/native_bench.py " + " ".join(
            shlex.quote(a) for a in sys.argv[1:])
        lines = ["Command: `%s`" % cmd.strip(), "",
                 "%d windows (GET /page/ + upgrade on /ws/ with the cookies and Origin), "
                 "%d broadcasts one at a time then a burst of %d, fired by another process "
                 "(fire.py: df_websockets.tasks.trigger to BROADCAST); %d client processes "
                 "(bench/wsload.py); server %s, clients %s; open-files limit %d."
                 % (args.windows, args.broadcasts, args.burst, args.client_procs,
                    "pinned to CPU " + args.server_cpu if args.server_cpu else "not pinned",
                    "pinned to CPU " + args.client_cpu if args.client_cpu else "not pinned",
                    nofile),
                 "Machine: %s, %d CPUs, Python %s, load average %s before / %s after; "
                 "versions: %s." % (hb.cpu_model(), os.cpu_count(), platform.python_version(),
                                    load[0], load[1],
                                    ", ".join("%s %s" % kv for kv in sorted(vers.items()))),
                 "", hb.md_table(head, rows)]
        if problems:
            lines += [""] + ["- " + p for p in problems]
        lines += ["", "Targets (dfws):", ""] + ["- " + t.replace("MET    ", "MET")
                                                  for t in tl]
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("markdown written to %s" % args.markdown, file=sys.stderr)
    bad = any(s.error or s.notes for s in servers.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
