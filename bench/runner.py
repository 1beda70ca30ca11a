"""What every benchmark script in bench/ shares: the paths of the Python
environments, starting a server and knowing when it is ready, stopping it,
reading its CPU time and memory from /proc, the redis-server and the wsgen
load generator processes, tables, the machine line, and writing results
into docs/.

Standard library only (the chart imports matplotlib when it is drawn), so
any python3 can import it.
"""

import datetime
import http.client
import json
import os
import platform
import re
import resource
import select
import shlex
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APPS = os.path.join(HERE, "apps")
DOCS = os.path.join(REPO, "docs")
PERFORMANCE_MD = os.path.join(DOCS, "performance.md")
# The peers (granian, uvicorn, daphne, hypercorn, gunicorn), Django 5.2 and
# matplotlib, pinned in requirements-peers.txt; made by bench/setup.sh.
PEERS_VENV = os.path.join(HERE, ".venv-peers")
PEERS_BIN = os.path.join(PEERS_VENV, "bin")
PEERS_PYTHON = os.path.join(PEERS_BIN, "python")
WSGEN = os.path.join(HERE, ".bin", "wsgen")
# opens the result of a --smoke run wherever it is written
SMOKE_NOTE = "**SMOKE RUN, placeholder figures.** "

# the lookup, ports, /proc and redis-server helpers the test suites use too
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from dfws_testsupport.binary import dfws_binary  # noqa: E402
from dfws_testsupport.net import free_port  # noqa: E402,F401
from dfws_testsupport.proc import process_tree  # noqa: E402
from dfws_testsupport.redis import RedisServer  # noqa: E402


def default_dfws():
    """The dfws-asgi under test: env DFWS_ASGI, else tests/support's lookup
    (next to this Python, the repo's .venv, build/)."""
    return dfws_binary()


def require(paths):
    """Exit 2 with a hint when a tool bench/setup.sh makes is missing."""
    missing = [p for p in paths if not os.access(p, os.X_OK)]
    if missing:
        sys.exit("error: missing %s; run bench/setup.sh" % ", ".join(missing))


def reexec_in_peers_venv():
    """Run this script again with the peers venv's python when the current
    interpreter lacks what that venv has (matplotlib): the one command then
    works as `python3 bench/SCRIPT.py`."""
    if os.path.realpath(sys.prefix) == os.path.realpath(PEERS_VENV):
        return
    require([PEERS_PYTHON])
    os.execv(PEERS_PYTHON, [PEERS_PYTHON] + sys.argv)


def add_common_args(parser, client="load generator"):
    """The options every driver of servers has."""
    parser.add_argument("--dfws-asgi", dest="dfws", metavar="PATH", default=default_dfws(),
                        help="the dfws-asgi to measure; it runs with the Python environment it "
                             "was installed into")
    parser.add_argument("--server-cpu", default="1",
                        help="taskset CPU list for the servers ('' = not pinned)")
    parser.add_argument("--client-cpu", default="0",
                        help="taskset CPU list for the %s ('' = not pinned)" % client)
    parser.add_argument("--start-timeout", type=float, default=30,
                        help="seconds a server gets to answer after its start")
    parser.add_argument("--markdown", metavar="FILE", help="also write the result here")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the servers' logs (the folder is printed)")


def raise_nofile():
    """Raise this process's open-files soft limit to the hard one (children
    inherit it: servers and clients holding thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pct(values, q):
    """The q-th percentile (nearest rank) of values, None when empty."""
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))]


# --------------------------------------------------------------------------
# /proc: a server's process tree, CPU time, memory

def cpu_seconds(pids):
    """user+system CPU seconds used so far by pids (all their threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / ticks


def memory_kib(pids, field):
    """Sum of a /proc/PID/status field (VmRSS now, VmHWM peak) in KiB."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


# --------------------------------------------------------------------------
# servers

def http_get(port, path, method="GET", body=None):
    """One request to 127.0.0.1:port: (status, headers, body). Raises
    OSError for anything that is not an answer, as Server.wait_ready wants
    from a server that is not listening yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    except http.client.HTTPException as exc:
        raise OSError("%s: %s" % (type(exc).__name__, exc))
    finally:
        conn.close()


class Server:
    """One server process: started in its own session (so stopping it stops
    its workers), stdout and stderr into log_path, pinned with taskset."""

    def __init__(self, name, argv, port, log_path, cwd=APPS, env=None, cpu=None):
        self.name, self.argv, self.port, self.log_path = name, argv, port, log_path
        self.cwd, self.env, self.cpu = cwd, env, cpu
        self.proc = None
        self.error = None    # why it has no result at all
        self.notes = []      # caveats on the results it has
        self.peak_kib = 0

    def start(self):
        """Start the process; False (and self.error) when it cannot run."""
        argv = list(self.argv)
        if self.cpu:
            argv = ["taskset", "-c", self.cpu] + argv   # taskset execs: same pid
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)   # the caller's project is not ours
        env.update(PYTHONDONTWRITEBYTECODE="1", **(self.env or {}))
        with open(self.log_path, "wb") as log:
            try:
                self.proc = subprocess.Popen(argv, cwd=self.cwd, env=env,
                                             stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                self.error = "cannot execute: %s" % exc
                return False
        return True

    def wait_ready(self, check, timeout):
        """Poll check() (None when the server answers right, a string saying
        what is wrong, or raises OSError while it does not listen yet) until
        it passes; on failure sets self.error and stops the server."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                self.error = "exited with code %s before answering" % self.proc.returncode
                return False
            try:
                problem = check()
            except OSError as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                problem = "not answering after %gs (%s)" % (timeout, exc)
            if problem:
                self.error = problem
                self.stop()
                return False
            return True

    def launch(self, check, timeout):
        """start() then wait_ready(); prints the outcome."""
        ok = self.start() and self.wait_ready(check, timeout)
        if ok:
            print("  %-13s up on port %d" % (self.name, self.port), file=sys.stderr)
        else:
            print("  %-13s FAILED: %s\n    %s" % (self.name, self.error,
                                                 self.log_tail(8).replace("\n", "\n    ")),
                  file=sys.stderr)
        return ok

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        return process_tree(self.proc.pid)

    def cpu_seconds(self):
        return cpu_seconds(self.pids())

    def sample_peak(self):
        """Keep the peak RSS of the process tree (VmHWM is gone once it exits)."""
        if self.alive:
            self.peak_kib = max(self.peak_kib, memory_kib(self.pids(), "VmHWM"))

    def stop(self, grace=10):
        """SIGTERM its process group, SIGKILL after grace seconds. Returns
        None when it stopped cleanly (or was not running), else why not."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            code = self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return "still running %gs after SIGTERM, killed" % grace
        except ProcessLookupError:
            return None
        if code in (0, -signal.SIGTERM):
            return None
        return "exit code %s after SIGTERM" % code

    def finish(self):
        """Stop it and turn what went wrong into notes: death during the
        run, an unclean stop, Python tracebacks in its log."""
        if self.proc is not None and not self.alive and not self.error:
            self.notes.append("died (exit code %s); log: %s"
                              % (self.proc.returncode, self.log_tail(3).replace("\n", " | ")))
        self.sample_peak()
        unclean = self.stop()
        if unclean:
            self.notes.append("unclean shutdown: " + unclean)
        count, first = self.log_tracebacks()
        if count:
            self.notes.append("%d Python traceback(s) in its log, first: %s" % (count, first))

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:]).rstrip()
        except OSError:
            return ""

    def log_tracebacks(self):
        """(number of Python tracebacks in the log, the first exception line)."""
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


def measure(server, clients_cpu, run):
    """Call run() and return (its result, wall seconds, server CPU seconds,
    load generator CPU seconds) over the call; clients_cpu() gives the load
    generator's CPU seconds so far."""
    s0, c0, t0 = server.cpu_seconds(), clients_cpu(), time.monotonic()
    result = run()
    wall = time.monotonic() - t0
    return result, wall, server.cpu_seconds() - s0, clients_cpu() - c0


def children_cpu():
    """CPU seconds of this process's finished children (wrk runs)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# --------------------------------------------------------------------------
# helper processes speaking JSON lines (wsgen, fire.py, the channels_redis worker)

class JsonProcess:
    def __init__(self, argv, cpu=None, **popen):
        if cpu:
            argv = ["taskset", "-c", cpu] + list(argv)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1, **popen)

    def read(self, timeout):
        """Next JSON line, None when the process died or timed out."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            line = self.proc.stdout.readline()
            if not line:
                return None
            try:
                return json.loads(line)
            except ValueError:
                continue   # stray output (a library's warning)

    def tell(self, obj):
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def close(self, timeout=30):
        self.tell({"cmd": "quit"})
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Generator:
    """One or more wsgen processes sharing `count` connections (see
    bench/wsgen/main.go for the modes and the commands). Process i binds to
    sources[i] when sources are given."""

    def __init__(self, mode, port, count, procs=1, cpu=None, sources=(), connect_timeout=60,
                 **flags):
        self.procs, self.ready = [], []
        shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        for i, n in enumerate(shares):
            if not n:
                continue
            argv = [WSGEN, "-mode", mode, "-port", str(port), "-count", str(n),
                    "-timeout", str(connect_timeout)]
            if sources:
                argv += ["-sources", sources[i % len(sources)]]
            for key, value in flags.items():
                if value is True or value is False:   # Go's bool flags take no word
                    argv += ["-" + key] if value else []
                else:
                    argv += ["-" + key, str(value)]
            self.procs.append(JsonProcess(argv, cpu))
        # daphne opens ~35 df_websockets windows a second on a quiet machine:
        # allow 100 ms per connection before calling a wsgen process hung
        wait = 60 + count / 10
        self.ready = [p.read(wait) for p in self.procs]
        self.open = sum((r or {}).get("open", 0) for r in self.ready)
        errors = [e for r in self.ready if r for e in r.get("errors") or []]
        if None in self.ready:
            errors.append("a wsgen process died or was still connecting after %gs" % wait)
        self.error = None
        if self.open < count:
            self.error = "%d of %d connections failed (%s)" % (count - self.open, count,
                                                              "; ".join(errors[:3]))

    def command(self, cmd, timeout):
        for p in self.procs:
            p.tell(cmd)
        return [p.read(timeout) for p in self.procs]

    def cpu(self):
        return sum((r or {}).get("cpu", 0) for r in self.command({"cmd": "cpu"}, 30))

    def close(self):
        for p in self.procs:
            p.close()


class Redis(RedisServer):
    """tests/support's redis-server of our own, started, with room for the
    benchmarks' clients."""

    def __init__(self):
        super().__init__(extra=["--maxclients", "10000"])
        self.start()

    def command(self, *words):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(b"*%d\r\n" % len(words) +
                          b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))
                return s.recv(64).split(b"\r\n")[0]
        except OSError:
            return None

    def cpu(self):
        return cpu_seconds([self.proc.pid])


# --------------------------------------------------------------------------
# reporting

def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def fmt_ms(seconds):
    return "-" if seconds is None else "%.1f ms" % (1000 * seconds)


def fmt_mib(kib):
    return "-" if not kib else "%.1f MiB" % (kib / 1024)


def text_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(r):
        return "  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                         for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def print_tables(tables):
    for title, head, rows in tables:
        print("\n" + title)
        print(text_table(head, rows))


def md_tables(tables):
    lines = []
    for title, head, rows in tables:
        lines += ["", "*%s*" % title, "", md_table(head, rows)]
    return lines


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def busy_label(load_before):
    """How the figures should be read: a 1-minute load average above 1 on
    this 2-core machine means other work shared the CPUs."""
    if load_before > 1.0:
        return "machine busy (load average %.2f at the start)" % load_before
    return "quiet machine (load average %.2f at the start)" % load_before


def run_header(script, load, versions, extra="", note=""):
    """The lines above a result: command, date, machine state, versions;
    note (e.g. that these are smoke figures) opens the second line."""
    cmd = " ".join(["python3", "bench/" + script] + [shlex.quote(a) for a in sys.argv[1:]])
    return ["Command: `%s`" % cmd,
            "",
            "%s%s, %s. Machine: %s, %d CPUs; load average %.2f before / %.2f after.%s"
            % (note, datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), busy_label(load[0]),
               cpu_model(), os.cpu_count(), load[0], load[1], extra),
            "Versions: %s." % ", ".join("%s %s" % kv for kv in sorted(versions.items()))]


def command_version(argv):
    """First line a tool prints about its version, '?' when it cannot run."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout.strip() or out.stderr.strip()).splitlines()
    return text[0].strip() if text else "?"


def python_versions(python, modules):
    """{module: version} as installed in the environment of `python`."""
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for name in sys.argv[1:]:\n"
            "    try: out[name] = m.version(name)\n"
            "    except Exception: out[name] = '?'\n"
            "print(json.dumps(out))")
    try:
        out = subprocess.run([python, "-c", code] + list(modules), capture_output=True,
                             text=True, timeout=30)
        return json.loads(out.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {m: "?" for m in modules}


def redis_version():
    return command_version(["redis-server", "--version"]).split()[2].replace("v=", "")


def dfws_version(dfws_path):
    return command_version([dfws_path, "--version"]).replace("dfws-asgi", "").strip()


def dfws_python(dfws_path):
    """The interpreter of the environment dfws-asgi was installed into."""
    return os.path.join(os.path.dirname(dfws_path), "python")


def publish(text, markdown=None, section=None):
    """Write a result to the file markdown and/or into section of
    docs/performance.md (either may be None)."""
    if markdown:
        with open(markdown, "w") as f:
            f.write(text + "\n")
    if section:
        replace_section(section, text + "\n")


def replace_section(name, text, path=PERFORMANCE_MD):
    """Put text between the markers <!-- bench:NAME --> and
    <!-- /bench:NAME --> of path (docs/performance.md); the rest of the page
    is kept as it is."""
    with open(path) as f:
        page = f.read()
    pattern = re.compile(r"(<!-- bench:%s -->\n).*?(<!-- /bench:%s -->)"
                         % (re.escape(name), re.escape(name)), re.S)
    if not pattern.search(page):
        raise SystemExit("error: no <!-- bench:%s --> section in %s" % (name, path))
    page = pattern.sub(lambda m: m.group(1) + text.rstrip("\n") + "\n" + m.group(2), page)
    with open(path, "w") as f:
        f.write(page)
