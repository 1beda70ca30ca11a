#!/usr/bin/env python3
"""Recovery soak (issue 15): windows recover what they missed, under faults.

    bench/soak.py --windows 2000 --minutes 5          # the short version (CI)
    bench/soak.py --windows 10000 --minutes 30        # the real one

What it starts, all on loopback:
- redis-server shards (--shards, 2) for channels_redis' layer (each topic
  group and its history on one shard), with an append-only file fsynced at
  every write (--redis-aof; "no" for none), plus one redis-server for
  Django's cache (the windows' topics), which no fault touches. With the
  sentinel fault, the last shard (shard 1) is a master and its replica
  watched by three sentinels (redis-server --sentinel), which every layer
  (the hosts' C layer, the trigger's channels_redis) is given as
  {"master_name": "soak", "sentinels": [...]}; shard 0 stays plain;
- --hosts (2) dfws-asgi hosts, each with --workers (2), serving
  bench/apps/soakproj (native socket, channels_redis on the shards);
- window processes (this script, --role windows), each holding up to
  --per-process windows: a window does what the browser client does
  (npm/src/client.js): GET /page/?topic=soak-<i mod topics> for its cookies,
  the WebSocket on /ws/ with those cookies and an Origin, positions per
  group from the deliveries' "topic"/"pos" (a new epoch replaces, the
  higher offset wins), de-duplication by signal_id, and on every reconnect
  the dfws_recover query parameter; df_websockets.recovery_failed drops
  the listed positions. Windows are spread over the hosts round-robin;
- one trigger process (--role fire), another process than the servers as
  Celery or manage.py shell would be: df_websockets.tasks.trigger(...,
  "soak.tick", to=["soak-<k mod topics>"], seq=k, ts=time.time()) at a
  steady --rate per second, each recorded with whether it raised.

Faults, in cycles of --fault-period (300) s over the measured part of the run
(after --warmup s; at least one cycle):
- drop: 10% of the windows lose their connection (client side: the socket
  is aborted) for 5-20 s, then reconnect (twice per cycle);
- redis-kill: kill -9 of shard 0 (a plain redis-server, never the
  Sentinel-managed one), restarted on the same port 3 s later;
- sighup: SIGHUP to one host (a rolling restart of its workers: windows
  get 1012 and reconnect);
- sentinel: SENTINEL FAILOVER of the Sentinel-managed shard while triggers
  flow (once its replica is in sync): the replica becomes the master, the
  layers follow the sentinels. Not run (faults_skipped says why) when
  redis-server has no --sentinel mode or with --shards 1;
- slow: 1% of the windows are slow readers the whole run (they stop
  reading for 20 s of every 60 s; the server's send buffer fills up).

What it reports (the last line of stdout is one JSON object):
expected (signals triggered without error to a topic a window held while
it was connected or recovering, summed over windows), delivered (of those,
received), recovered (received on a reconnected socket although triggered
before that socket opened: replayed), lost, duplicated (a seq applied twice
by one window after its de-duplication by signal_id), p50_ms/p99_ms (trigger
to receipt, live deliveries), recovery_failed (notices received),
lost_short_outage (lost by windows whose longest outage was shorter than
the history window and that got no recovery_failed: the target is 0),
rss_growth_pct (the servers' summed RSS, median of the last 10 minutes
against the first 10 after warm-up; a third of the measured time each when
shorter),
the RSS of every host over time, and which faults ran.
"""
import argparse
import asyncio
import collections
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import runner  # noqa: E402

PROJ = os.path.join(runner.APPS, "soakproj")
APP = "soakproj.asgi:application"
HOST = "127.0.0.1"
SIGNAL = "soak.tick"
RECOVERY_FAILED = "df_websockets.recovery_failed"
UNKNOWN_WINDOW = "df_websockets.unknown_window"
SENTINEL_MASTER = "soak"   # the Sentinel-managed shard's master name


def log(*args):
    print("[soak %s]" % time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- windows

def parse_position(pos):
    if not isinstance(pos, str) or "-" not in pos:
        return None
    epoch, _, offset = pos.partition("-")
    if not epoch or not offset.isdigit():
        return None
    return epoch, int(offset)


class Window:
    """One browser window: its cookies, positions, what it received."""

    def __init__(self, index, port, topic, slow):
        self.index, self.port, self.topic, self.slow = index, port, topic, slow
        self.cookie = ""
        self.positions = collections.OrderedDict()   # group -> (epoch, offset, "pos")
        self.seen_ids = collections.OrderedDict()    # signal_id LRU (the client's dedup)
        self.counts = collections.Counter()          # seq -> times applied
        self.recovered = 0
        self.dup_frames = 0
        self.recovery_failed = 0
        self.unknown_window = 0
        self.connects = 0
        self.recover_requests = 0
        self.first_open = None                       # wall time of the first open
        self.open_since = None                       # wall time the current socket opened
        self.closed_at = None
        self.outages = []
        self.ws = None
        self.drop_until = 0.0
        self.lat_ms = []

    def recover_url(self):
        url = "ws://%s:%d/ws/" % (HOST, self.port)
        if not self.positions:
            return url
        param = json.dumps({g: p[2] for g, p in self.positions.items()}, separators=(",", ":"))
        return url + "?dfws_recover=" + urllib.parse.quote(param, safe="")

    def update_position(self, group, pos):
        parsed = parse_position(pos)
        if not isinstance(group, str) or parsed is None:
            return
        current = self.positions.get(group)
        if current and current[0] == parsed[0] and current[1] >= parsed[1]:
            return
        self.positions.pop(group, None)
        self.positions[group] = (parsed[0], parsed[1], pos)
        while len(self.positions) > 64:
            self.positions.popitem(last=False)

    def on_message(self, data, now, sample):
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict) or "signal_id" not in message:
            return
        name = message.get("signal")
        opts = message.get("opts") or {}
        signal_id = message["signal_id"]
        new = signal_id not in self.seen_ids
        if new:
            self.seen_ids[signal_id] = True
            if len(self.seen_ids) > 1000:
                self.seen_ids.popitem(last=False)
        else:
            self.dup_frames += 1
        if name == RECOVERY_FAILED:
            for group in opts.get("topics") or ():
                self.positions.pop(group, None)
            if new:
                self.recovery_failed += 1
        elif name == UNKNOWN_WINDOW:
            self.unknown_window += 1
        elif name == SIGNAL and new:
            seq, ts = opts.get("seq"), opts.get("ts")
            self.counts[seq] += 1
            if self.connects > 1 and ts is not None and ts < self.open_since:
                self.recovered += 1
            elif ts is not None and sample():
                self.lat_ms.append((now - ts) * 1000)
        if "topic" in message:
            self.update_position(message.get("topic"), message.get("pos"))


async def http_cookies(port, path):
    """GET path, return the Cookie header made of its Set-Cookie answers."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                      % (path, HOST, port)).encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        await reader.read()
    finally:
        writer.close()
    lines = head.split("\r\n")
    if " 200 " not in lines[0] + " ":
        raise OSError("GET %s: %s" % (path, lines[0]))
    cookies = [line.split(":", 1)[1].strip().split(";", 1)[0] for line in lines[1:]
               if line.lower().startswith("set-cookie:")]
    return "; ".join(cookies)


async def run_window(win, state):
    import websockets

    attempt = 0
    while not state["stopping"]:
        now = time.time()
        if now < win.drop_until:
            await asyncio.sleep(win.drop_until - now)
            continue
        try:
            if not win.cookie:
                win.cookie = await http_cookies(win.port, "/page/?topic=%s" % win.topic)
            url = win.recover_url()
            async with state["connect_gate"]:
                ws = await websockets.connect(
                    url, extra_headers={"Cookie": win.cookie},
                    origin="http://%s:%d" % (HOST, win.port), open_timeout=30,
                    max_queue=4 if win.slow else 64, ping_interval=None, close_timeout=2,
                    compression=None)
        except Exception:
            attempt += 1
            await asyncio.sleep(min(1.0, 0.2 * 2 ** attempt) * (0.5 + random.random() / 2))
            continue
        attempt = 0
        now = time.time()
        win.ws = ws
        win.connects += 1
        if "dfws_recover=" in url:
            win.recover_requests += 1
        if win.closed_at is not None:
            win.outages.append(now - win.closed_at)
            win.closed_at = None
        if win.first_open is None:
            win.first_open = now
        win.open_since = now
        try:
            next_pause = now + random.uniform(10, 60) if win.slow else None
            while True:
                if next_pause is not None and time.time() > next_pause:
                    # a slow reader: the server's buffer fills; the end of
                    # the run (finish) ends the pause, so that what is
                    # waiting in buffers is counted
                    try:
                        await asyncio.wait_for(state["finish"].wait(), 20)
                        next_pause = None
                    except asyncio.TimeoutError:
                        next_pause = time.time() + 40
                data = await ws.recv()
                if isinstance(data, str):
                    win.on_message(data, time.time(), state["sample"])
        except Exception:
            pass
        win.ws = None
        if win.closed_at is None:
            win.closed_at = time.time()
        close_code = getattr(ws, "close_code", None)
        try:
            ws.transport.abort()
        except Exception:
            pass
        if close_code == 1012:
            await asyncio.sleep(random.random() * 0.1)   # the client's restartJitter
        else:
            await asyncio.sleep(0.2 + random.random() * 0.3)


def drop_windows(windows, fraction, low, high, rng):
    """Abort the sockets of `fraction` of the connected windows, which stay
    away for low..high s."""
    chosen = [w for w in windows if w.ws is not None]
    rng.shuffle(chosen)
    chosen = chosen[:int(round(len(windows) * fraction))]
    now = time.time()
    for win in chosen:
        win.drop_until = now + rng.uniform(low, high)
        win.closed_at = now
        try:
            win.ws.transport.abort()
        except Exception:
            pass
    return len(chosen)


def window_report(windows, fired, history_window_s, lat_cap):
    """Per-window accounting against the trigger log fired: {topic: [(seq,
    ts), ...]} of the triggers that did not raise."""
    out = collections.Counter()
    lat, samples = [], []
    for win in windows:
        if win.first_open is None:
            out["never_connected"] += 1
            continue
        expected = {seq for seq, ts in fired.get(win.topic, ()) if ts >= win.first_open}
        got = set(win.counts)
        lost = len(expected - got)
        dups = sum(c - 1 for c in win.counts.values() if c > 1)
        longest = max(win.outages, default=0.0)
        if win.closed_at is not None:   # still away at the end
            longest = max(longest, time.time() - win.closed_at)
        out["expected"] += len(expected)
        out["delivered"] += len(expected & got)
        out["unexpected"] += len(got - expected)
        out["recovered"] += win.recovered
        out["lost"] += lost
        out["duplicated"] += dups
        out["duplicate_frames"] += win.dup_frames
        out["recovery_failed"] += win.recovery_failed
        out["unknown_window"] += win.unknown_window
        out["reconnects"] += max(0, win.connects - 1)
        out["recover_requests"] += win.recover_requests
        out["windows"] += 1
        if win.outages or win.closed_at is not None:
            out["windows_with_outage"] += 1
        if lost:
            out["windows_with_loss"] += 1
            if len(samples) < 10:
                ts_of = dict(fired.get(win.topic, ()))
                samples.append({"window": win.index, "port": win.port, "slow": win.slow,
                                "lost_ts": sorted(ts_of[s] for s in expected - got)[:10],
                                "lost": lost, "connects": win.connects,
                                "outages_s": [round(o, 1) for o in win.outages],
                                "recovery_failed": win.recovery_failed})
        if longest < history_window_s and not win.recovery_failed:
            out["lost_short_outage"] += lost
            out["duplicated_short_outage"] += dups
        if win.slow:
            out["slow_lost"] += lost
        lat.extend(win.lat_ms)
    random.shuffle(lat)
    return dict(out), lat[:lat_cap], samples


async def windows_role(args):
    """A window process: commands on stdin, one JSON line each on stdout."""
    runner.raise_nofile()
    ports = [int(p) for p in args.ports.split(",")]
    rng = random.Random(args.first)
    slow_every = max(1, int(round(1 / args.slow_fraction))) if args.slow_fraction > 0 else 0
    windows = [Window(i, ports[i % len(ports)], "soak-%d" % (i % args.topics),
                      bool(slow_every) and i % slow_every == slow_every - 1)
               for i in range(args.first, args.first + args.count)]
    sample_rate = min(1.0, 20000.0 / max(1, args.expected_deliveries))
    state = {"stopping": False, "connect_gate": asyncio.Semaphore(args.connect_concurrency),
             "finish": asyncio.Event(),
             "sample": lambda: random.random() < sample_rate}
    tasks = [asyncio.ensure_future(run_window(w, state)) for w in windows]
    deadline = time.monotonic() + 300
    while sum(1 for w in windows if w.ws is not None) < len(windows) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    print(json.dumps({"event": "ready", "open": sum(1 for w in windows if w.ws is not None)}),
          flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        if cmd["cmd"] == "drop":
            n = drop_windows(windows, cmd["fraction"], cmd["min"], cmd["max"], rng)
            answer = {"event": "dropped", "windows": n}
        elif cmd["cmd"] == "finish":
            state["finish"].set()
            answer = {"event": "finishing"}
        elif cmd["cmd"] == "status":
            answer = {"event": "status", "open": sum(1 for w in windows if w.ws is not None)}
        elif cmd["cmd"] == "report":
            with open(cmd["fired"]) as f:
                fired = collections.defaultdict(list)
                for rec in map(json.loads, f):
                    if rec["ok"]:
                        fired[rec["topic"]].append((rec["seq"], rec["ts"]))
            counts, lat, samples = window_report(windows, fired, cmd["history_window_s"],
                                                 cmd["lat_cap"])
            answer = {"event": "report", "counts": counts, "lat_ms": lat, "loss_samples": samples}
        elif cmd["cmd"] == "quit":
            state["stopping"] = True
            for w in windows:
                if w.ws is not None:
                    w.ws.transport.abort()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            print(json.dumps({"event": "bye"}), flush=True)
            break
        else:
            answer = {"event": "error", "why": "unknown command"}
        print(json.dumps(answer), flush=True)


# ------------------------------------------------------------------ fire

def fire_role(args):
    """The trigger process: a steady rate until stdin closes or says stop."""
    sys.path.insert(0, PROJ)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soakproj.settings")
    import django

    django.setup()
    import select

    from df_websockets.tasks import trigger
    from df_websockets.window_info import WindowInfo

    info = WindowInfo()
    out = open(args.fired, "a")
    print(json.dumps({"event": "ready"}), flush=True)
    start = time.monotonic()
    seq = 0
    errors = collections.Counter()
    while True:
        due = start + seq / args.rate
        wait = due - time.monotonic()
        if select.select([sys.stdin], [], [], max(0.0, wait))[0]:
            break   # any line (or EOF): stop
        seq += 1
        topic = "soak-%d" % (seq % args.topics)
        ts = time.time()
        ok = True
        try:
            trigger(info, SIGNAL, to=[topic], seq=seq, ts=ts)
        except Exception as exc:   # a shard down: recorded, not expected
            ok = False
            errors[type(exc).__name__] += 1
        out.write(json.dumps({"seq": seq, "topic": topic, "ts": ts, "ok": ok,
                              "took": time.time() - ts}) + "\n")
        out.flush()
    out.close()
    print(json.dumps({"event": "stopped", "fired": seq, "errors": dict(errors)}), flush=True)


# ---------------------------------------------------------------- faults

class RedisReplyError(Exception):
    """An error reply (-ERR ...) of a redis-server or a sentinel."""


def _resp_read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("redis: connection closed")
    kind, rest = line[:1], line[1:-2].decode("utf-8", "replace")
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisReplyError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise OSError("redis: unexpected reply %r" % line[:80])


def redis_command(port, *args, timeout=5.0):
    """One command to the redis-server (or sentinel) on HOST:port, its reply
    decoded (str, int, None, lists of those); an error reply raises
    RedisReplyError. The soak needs no client library for the few commands
    it sends (SENTINEL, INFO)."""
    import socket

    words = [str(a).encode() for a in args]
    payload = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(payload)
        with s.makefile("rb") as f:
            return _resp_read(f)


class RedisShard:
    """A redis-server on a fixed loopback port that can be killed and
    started again on that port with its data folder. With sentinel (the
    "sentinel ..." lines of its configuration), a sentinel
    (redis-server --sentinel) instead. Each has its configuration file in
    its folder, written once: sentinels rewrite theirs (what they learnt),
    and a failover makes the sentinels rewrite a data node's (replicaof)."""

    def __init__(self, name, folder, aof, maxclients=20000, conf="", sentinel=False):
        self.name, self.folder, self.aof = name, folder, aof
        self.port = runner.free_port()
        self.url = "redis://%s:%d" % (HOST, self.port)
        self.maxclients = maxclients
        self.conf, self.sentinel = conf, sentinel
        os.makedirs(folder, exist_ok=True)
        self.proc = None
        self.start()

    def start(self):
        path = os.path.join(self.folder, "redis.conf")
        if not os.path.exists(path):
            lines = ["port %d" % self.port, "bind %s" % HOST, "dir %s" % self.folder,
                     "logfile %s" % os.path.join(self.folder, "redis.log")]
            if not self.sentinel:
                lines += ['save ""', "maxclients %d" % self.maxclients]
                if self.aof == "no":
                    lines += ["appendonly no"]
                else:
                    lines += ["appendonly yes", "appendfsync %s" % self.aof]
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n" + self.conf)
        argv = ["redis-server", path] + (["--sentinel"] if self.sentinel else [])
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        while not self.ping():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server %s did not start on port %d (%s)"
                                   % (self.name, self.port, path))
            time.sleep(0.1)

    def ping(self):
        try:
            return redis_command(self.port, "PING", timeout=2) == "PONG"
        except (OSError, RedisReplyError):
            return False

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def layer_entry(self):
        """This shard in SOAK_SHARDS (soakproj's settings)."""
        return self.url


class SentinelShard:
    """A shard served by a Sentinel-managed master and its replica, with
    three sentinels (redis-server --sentinel, quorum 2) watching them as
    SENTINEL_MASTER: the layers (the hosts' C layer, the trigger process'
    channels_redis) find the master through the sentinels, and the
    "sentinel" fault moves it with SENTINEL FAILOVER."""

    def __init__(self, name, folder, aof):
        self.name = name
        self.nodes, self.sentinels = [], []
        try:
            self._start(folder, aof)
        except BaseException:
            self.stop()   # the processes already started: not in the caller's list yet
            raise

    def _start(self, folder, aof):
        name = self.name
        first = RedisShard(name + "-a", os.path.join(folder, "a"), aof)
        self.nodes.append(first)
        second = RedisShard(name + "-b", os.path.join(folder, "b"), aof,
                            conf="replicaof %s %d\n" % (HOST, first.port))
        self.nodes.append(second)
        # down-after 5 s: a master busy on a loaded machine is not mistaken
        # for a dead one (only the forced failovers of the fault should move
        # it); failover-timeout 10 s bounds a failover that does not finish
        conf = ("sentinel monitor %s %s %d 2\n"
                "sentinel down-after-milliseconds %s 5000\n"
                "sentinel failover-timeout %s 10000\n"
                "sentinel parallel-syncs %s 1\n"
                % (SENTINEL_MASTER, HOST, first.port, SENTINEL_MASTER, SENTINEL_MASTER,
                   SENTINEL_MASTER))
        for i in range(3):
            self.sentinels.append(RedisShard("%s-sentinel%d" % (name, i),
                                             os.path.join(folder, "sentinel%d" % i), "no",
                                             conf=conf, sentinel=True))
        self.url = "sentinel %s: %s (master %s:%d), replica %s" % (
            SENTINEL_MASTER, ",".join(str(s.port) for s in self.sentinels), HOST, first.port,
            second.port)
        if not self.wait_ready(60):
            raise RuntimeError("%s: the sentinels did not see the master, its replica and each "
                               "other within 60 s (logs in %s)" % (name, folder))

    def layer_entry(self):
        return {"master_name": SENTINEL_MASTER,
                "sentinels": [[HOST, s.port] for s in self.sentinels]}

    def master_port(self, via=0):
        """The master's port as sentinel `via` names it, or None."""
        try:
            addr = redis_command(self.sentinels[via].port, "SENTINEL", "get-master-addr-by-name",
                                 SENTINEL_MASTER)
        except (OSError, RedisReplyError):
            return None
        return int(addr[1]) if isinstance(addr, list) and len(addr) == 2 else None

    def ready(self):
        """The master has its replica online, and every sentinel agrees on
        the master, knows the replica up and the two other sentinels (a
        failover needs the replica, the quorum the others)."""
        port = self.master_port()
        master = next((n for n in self.nodes if n.port == port), None)
        try:
            if master is None or "state=online" not in redis_command(master.port, "INFO",
                                                                     "replication"):
                return False
            for s in self.sentinels:
                info = redis_command(s.port, "SENTINEL", "master", SENTINEL_MASTER)
                fields = dict(zip(info[0::2], info[1::2]))
                if (fields.get("num-other-sentinels") != "2" or fields.get("flags") != "master"
                        or fields.get("port") != str(port)):
                    return False
                replicas = [dict(zip(r[0::2], r[1::2])) for r in
                            redis_command(s.port, "SENTINEL", "replicas", SENTINEL_MASTER)]
                if not any(r.get("flags") == "slave" for r in replicas):
                    return False
        except (OSError, RedisReplyError, TypeError, AttributeError):
            return False
        return True

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def failover(self):
        """SENTINEL FAILOVER, once the replica is in sync (a failover just
        before may still be settling); (old master port, new master port or
        None, seconds until every sentinel named the new one, error)."""
        if not self.wait_ready(30):
            return self.master_port(), None, 0.0, "the replica or the sentinels were not ready in 30 s"
        old = self.master_port()
        t0 = time.monotonic()
        try:
            redis_command(self.sentinels[0].port, "SENTINEL", "FAILOVER", SENTINEL_MASTER)
        except (OSError, RedisReplyError) as exc:
            return old, None, 0.0, "SENTINEL FAILOVER: %s" % exc
        while time.monotonic() < t0 + 30:
            ports = {self.master_port(i) for i in range(len(self.sentinels))}
            if len(ports) == 1 and None not in ports and old not in ports:
                return old, ports.pop(), time.monotonic() - t0, None
            time.sleep(0.1)
        return old, None, time.monotonic() - t0, "no new master named by every sentinel in 30 s"

    def stop(self):
        for p in self.sentinels + self.nodes:
            p.stop()


def sentinel_unavailable(args):
    """Why the Sentinel failover fault cannot run here, or None. Debian's
    redis-server package has no redis-sentinel binary: its redis-server
    runs a sentinel with --sentinel, which its --help names."""
    if args.shards < 2:
        return ("needs --shards 2 or more: shard 0 stays a plain redis-server (the redis-kill "
                "fault's), the last one is the Sentinel-managed shard")
    try:
        usage = subprocess.run(["redis-server", "--help"], capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "redis-server --help failed: %s" % exc
    if "--sentinel" not in usage.stdout + usage.stderr:
        return "this redis-server has no Sentinel mode (redis-server --sentinel)"
    return None


# ----------------------------------------------------------------- main

def shards_env(shards):
    """SOAK_SHARDS: the layer's hosts in shard order, a JSON list of redis
    URLs and Sentinel entries (bench/apps/soakproj/soakproj/settings.py)."""
    return json.dumps([s.layer_entry() for s in shards])


def host_switches(hosts, old, new):
    """How many worker processes of the hosts logged the Sentinel switch
    from port old to port new (the C layer's warning)."""
    needle = "switched from %s:%d to %s:%d" % (HOST, old, HOST, new)
    count = 0
    for srv in hosts:
        try:
            with open(srv.log_path, errors="replace") as f:
                count += f.read().count(needle)
        except OSError:
            pass
    return count


def start_host(args, index, shards, cache, tmp):
    port = runner.free_port()
    env = {"PYTHONPATH": PROJ,
           "SOAK_SHARDS": shards_env(shards), "SOAK_CACHE": cache.url,
           "SOAK_HISTORY_SIZE": str(args.history_size),
           "SOAK_HISTORY_TTL": str(args.history_ttl), "DJANGO_SETTINGS_MODULE": "soakproj.settings"}
    argv = [args.dfws, "-b", HOST, "-p", str(port), "-v", "0", "--workers", str(args.workers),
            APP]
    srv = runner.Server("host%d" % index, argv, port, os.path.join(tmp, "host%d.log" % index),
                        cwd=PROJ, env=env)

    def check():
        status, headers, _ = runner.http_get(port, "/page/?topic=check")
        cookies = headers.get_all("Set-Cookie") or []
        if status != 200 or not any(c.startswith("dfwskey=") for c in cookies):
            return "GET /page/ answered %d without a dfwskey cookie" % status
        return None
    if not srv.launch(check, 60):
        raise RuntimeError("host%d did not start: %s\n%s" % (index, srv.error, srv.log_tail(20)))
    return srv


def rss_sample(hosts):
    """{host: KiB} summed over each host's process tree, and per pid."""
    per_host, per_pid = {}, {}
    for srv in hosts:
        if not srv.alive:
            continue
        pids = srv.pids()
        per_host[srv.name] = runner.memory_kib(pids, "VmRSS")
        for pid in pids:
            per_pid["%s:%d" % (srv.name, pid)] = runner.memory_kib([pid], "VmRSS")
    return per_host, per_pid


def growth_pct(series, start, end, span):
    """Median of the summed RSS in [end-span, end] against the median in
    [start, start+span], as a percentage change. Medians: during a rolling
    restart the old workers drain (up to --graceful-timeout) while the new
    ones run, a transient double count that is not growth."""
    first = sorted(v for t, v in series if start <= t <= start + span)
    last = sorted(v for t, v in series if end - span <= t <= end)
    if not first or not last:
        return None
    a, b = first[len(first) // 2], last[len(last) // 2]
    return round((b - a) * 100.0 / a, 2)


def schedule(args, measured_s):
    """[(offset s after warm-up, fault name)]: the cycle drop, redis-kill,
    sighup, sentinel, drop, repeated every --fault-period s (at least once),
    its faults evenly spread."""
    wanted = [f for f in args.faults.split(",") if f] if args.faults != "none" else []
    order = [f for f in ("drop", "redis-kill", "sighup", "sentinel", "drop") if f in wanted]
    if not order:
        return []
    # the last fault (a drop keeps windows away up to 20 s) ends before the
    # triggers stop: every window is back to receive live ones at the end
    usable = max(measured_s * 0.5, measured_s - 30)
    cycles = max(1, int(usable // args.fault_period))
    period = usable / cycles
    slots = len(order) + 1
    return [(c * period + period * (i + 1) / slots, name)
            for c in range(cycles) for i, name in enumerate(order)]


def main_role(args):
    t_start = time.time()
    runner.raise_nofile()
    if not os.access(args.dfws, os.X_OK):
        sys.exit("error: %s is not executable (scripts/build.sh, or --dfws-asgi)" % args.dfws)
    if not shutil.which("redis-server"):
        sys.exit("error: redis-server not found (apt-get install redis-server)")
    python = args.python or runner.dfws_python(args.dfws)
    tmp = tempfile.mkdtemp(prefix="dfws-soak-")
    measured_s = args.minutes * 60.0
    faults_run, faults_skipped = [], {}
    if "slow" in args.faults.split(",") or args.faults == "all":
        faults_run.append("slow")
    else:
        args.slow_fraction = 0.0
    wanted = args.faults.split(",")
    if "sentinel" in wanted:
        why = sentinel_unavailable(args)
        if why:
            faults_skipped["sentinel"] = why
            args.faults = ",".join(f for f in wanted if f != "sentinel")
            log("fault sentinel not run: %s" % why)
    shards, hosts, procs, fire, cache = [], [], [], None, None
    try:
        # the last shard is Sentinel-managed when the sentinel fault runs;
        # shard 0 is always a plain redis-server, the redis-kill fault's
        for i in range(args.shards):
            folder = os.path.join(tmp, "shard%d" % i)
            if i == args.shards - 1 and "sentinel" in args.faults.split(","):
                shards.append(SentinelShard("shard%d" % i, folder, args.redis_aof))
            else:
                shards.append(RedisShard("shard%d" % i, folder, args.redis_aof))
        cache = RedisShard("cache", os.path.join(tmp, "cache"), "no")
        log("redis: %s; cache %s" % (", ".join(s.url for s in shards), cache.url))
        hosts = [start_host(args, i, shards, cache, tmp) for i in range(args.hosts)]
        ports = ",".join(str(h.port) for h in hosts)

        nprocs = args.procs or max(1, math.ceil(args.windows / args.per_process))
        per = math.ceil(args.windows / nprocs)
        per_window = args.rate / args.topics * (args.warmup + measured_s)
        t0 = time.monotonic()
        for i in range(nprocs):
            first, count = i * per, min(per, args.windows - i * per)
            if count <= 0:
                break
            argv = [python, os.path.abspath(__file__), "--role", "windows", "--ports", ports,
                    "--first", str(first), "--count", str(count), "--topics", str(args.topics),
                    "--slow-fraction", str(args.slow_fraction),
                    "--connect-concurrency", str(args.connect_concurrency),
                    "--expected-deliveries", str(int(per_window * count))]
            procs.append(runner.JsonProcess(argv, stderr=open(
                os.path.join(tmp, "windows%d.log" % i), "w")))
        opened = 0
        for p in procs:
            ready = p.read(400)
            if not ready:
                raise RuntimeError("a window process died or did not connect its windows")
            opened += ready["open"]
        log("%d windows open over %d hosts in %.1f s (%d processes)"
            % (opened, len(hosts), time.monotonic() - t0, len(procs)))

        fired_path = os.path.join(tmp, "fired.jsonl")
        fire = runner.JsonProcess([python, os.path.abspath(__file__), "--role", "fire",
                                   "--fired", fired_path, "--rate", str(args.rate),
                                   "--topics", str(args.topics)],
                                  stderr=open(os.path.join(tmp, "fire.log"), "w"),
                                  env=dict(os.environ, PYTHONPATH=PROJ,
                                           SOAK_SHARDS=shards_env(shards),
                                           SOAK_CACHE=cache.url,
                                           SOAK_HISTORY_SIZE=str(args.history_size),
                                           SOAK_HISTORY_TTL=str(args.history_ttl),
                                           DJANGO_SETTINGS_MODULE="soakproj.settings"))
        if not fire.read(60):
            raise RuntimeError("the trigger process did not start")
        t_fire = time.time()
        log("triggering %g signals/s over %d topics; warm-up %g s, then %g min with faults"
            % (args.rate, args.topics, args.warmup, args.minutes))

        rss_hosts, rss_pids, rss_total = collections.defaultdict(list), {}, []
        plan = schedule(args, measured_s)
        t_measure = t_fire + args.warmup
        t_end = t_measure + measured_s
        next_sample = time.time()
        fault_times = []
        switches = []   # (old, new) master ports of the Sentinel failovers
        while time.time() < t_end:
            now = time.time()
            if now >= next_sample:
                per_host, per_pid = rss_sample(hosts)
                t_rel = round(now - t_fire, 1)
                for name, kib in per_host.items():
                    rss_hosts[name].append([t_rel, kib])
                for key, kib in per_pid.items():
                    rss_pids.setdefault(key, []).append([t_rel, kib])
                rss_total.append((now, sum(per_host.values())))
                next_sample = now + args.rss_interval
            if plan and now >= t_measure + plan[0][0]:
                _, name = plan.pop(0)
                fault_times.append([name, round(now - t_fire, 1)])
                if name == "drop":
                    n = 0
                    for p in procs:
                        p.tell({"cmd": "drop", "fraction": 0.10, "min": 5, "max": 20})
                    for p in procs:
                        n += (p.read(60) or {}).get("windows", 0)
                    log("fault drop: %d windows away for 5-20 s" % n)
                    faults_run.append("drop")
                elif name == "redis-kill":
                    victim = shards[0]   # never the Sentinel-managed one
                    victim.kill9()
                    log("fault redis-kill: kill -9 %s (port %d)" % (victim.name, victim.port))
                    time.sleep(3)
                    victim.start()
                    log("  %s restarted (appendonly %s)" % (victim.name, args.redis_aof))
                    faults_run.append("redis-kill")
                elif name == "sighup":
                    os.kill(hosts[0].proc.pid, signal.SIGHUP)
                    log("fault sighup: rolling restart of %s" % hosts[0].name)
                    faults_run.append("sighup")
                elif name == "sentinel":
                    managed = shards[-1]
                    old, new, took, error = managed.failover()
                    if error:
                        log("fault sentinel FAILED on %s (master port %s): %s"
                            % (managed.name, old, error))
                    else:
                        log("fault sentinel: SENTINEL FAILOVER %s: master port %d -> %d, every "
                            "sentinel agreeing after %.1f s" % (SENTINEL_MASTER, old, new, took))
                        faults_run.append("sentinel")
                        switches.append((old, new))
            time.sleep(0.2)

        fire.tell({"cmd": "stop"})
        stopped = fire.read(120) or {}
        for p in procs:
            p.tell({"cmd": "finish"})
        for p in procs:
            p.read(60)
        # windows still away (dropped late, reconnecting) come back first
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for p in procs:
                p.tell({"cmd": "status"})
            if sum((p.read(30) or {}).get("open", 0) for p in procs) >= opened:
                break
            time.sleep(1)
        log("triggers stopped: %s; settling %g s" % (stopped, args.settle))
        for old, new in switches:
            log("sentinel failover %d -> %d: %d of %d dfws-asgi workers logged the switch"
                % (old, new, host_switches(hosts, old, new), args.hosts * args.workers))
        time.sleep(args.settle)
        history_window_s = min(args.history_ttl, args.history_size * args.topics / args.rate)
        counts, lat, samples = collections.Counter(), [], []
        for p in procs:
            p.tell({"cmd": "report", "fired": fired_path, "history_window_s": history_window_s,
                    "lat_cap": 50000})
        for p in procs:
            answer = p.read(600)
            if not answer:
                raise RuntimeError("a window process did not report")
            counts.update(answer["counts"])
            lat.extend(answer["lat_ms"])
            for sample in answer["loss_samples"]:
                sample["lost_at_s"] = [round(t - t_fire, 1) for t in sample.pop("lost_ts")]
                samples.append(sample)
        with open(fired_path) as f:
            records = [json.loads(line) for line in f]
        span = min(600.0, measured_s / 3)
        growth = growth_pct(rss_total, t_measure, t_end, span)
        alive = {h.name: h.alive for h in hosts}
        result = {
            "windows": args.windows, "minutes": args.minutes, "hosts": args.hosts,
            "workers": args.workers, "shards": args.shards, "rate": args.rate,
            "topics": args.topics, "history_size": args.history_size,
            "history_ttl": args.history_ttl, "history_window_s": round(history_window_s, 1),
            "redis_aof": args.redis_aof,
            "faults_run": faults_run, "faults_skipped": faults_skipped,
            "triggered": len(records), "trigger_errors": sum(1 for r in records if not r["ok"]),
            "rate_achieved": round(len(records) / max(1e-9, records[-1]["ts"] - records[0]["ts"]), 1)
            if len(records) > 1 else None,
            "expected": counts["expected"], "delivered": counts["delivered"],
            "recovered": counts["recovered"], "lost": counts["lost"],
            "duplicated": counts["duplicated"],
            "lost_short_outage": counts["lost_short_outage"],
            "duplicated_short_outage": counts["duplicated_short_outage"],
            "duplicate_frames": counts["duplicate_frames"], "unexpected": counts["unexpected"],
            "recovery_failed": counts["recovery_failed"],
            "unknown_window": counts["unknown_window"], "reconnects": counts["reconnects"],
            "recover_requests": counts["recover_requests"],
            "windows_with_outage": counts["windows_with_outage"],
            "windows_with_loss": counts["windows_with_loss"], "slow_lost": counts["slow_lost"],
            "never_connected": counts["never_connected"],
            "p50_ms": round(runner.pct(lat, 50), 1) if lat else None,
            "p99_ms": round(runner.pct(lat, 99), 1) if lat else None,
            "rss_growth_pct": growth, "rss_span_s": span,
            "hosts_alive_at_end": alive, "loss_samples": samples[:10],
            "fault_times_s": fault_times,
            "rss_kib": dict(rss_hosts),
            "load": os.getloadavg()[0], "wall_s": round(time.time() - t_start, 1),
        }
        if result["rate_achieved"] is not None and result["rate_achieved"] < 0.9 * args.rate:
            log("warning: the trigger process reached %s triggers/s of the %g asked (a busy "
                "machine, or a slow trigger path): the load was lighter than intended"
                % (result["rate_achieved"], args.rate))
        with open(os.path.join(tmp, "rss_per_pid.json"), "w") as f:
            json.dump(rss_pids, f)
        log("logs and per-process RSS in %s" % tmp)
        return result
    finally:
        if fire is not None:
            fire.close(10)
        for p in procs:
            p.tell({"cmd": "quit"})
        for p in procs:
            p.close(30)
        for h in hosts:
            h.stop()
        for shard in shards + ([cache] if cache else []):
            shard.stop()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--windows", type=int, default=10000)
    ap.add_argument("--minutes", type=float, default=30, help="measured time, after --warmup")
    ap.add_argument("--warmup", type=float, default=30, help="seconds of triggers before faults")
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--rate", type=float, default=20.0, help="triggers per second")
    ap.add_argument("--topics", type=int, default=20,
                    help="topics soak-0..N-1; window i holds soak-(i mod N)")
    ap.add_argument("--history-size", type=int, default=100)
    ap.add_argument("--history-ttl", type=int, default=120)
    ap.add_argument("--redis-aof", default="always", choices=("always", "everysec", "no"),
                    help="the shards' append-only file (what survives kill -9)")
    ap.add_argument("--fault-period", type=float, default=300,
                    help="seconds of one cycle of faults (repeated over the run)")
    ap.add_argument("--faults", default="all",
                    help="comma-separated among drop,redis-kill,sighup,sentinel,slow; all; none")
    ap.add_argument("--per-process", type=int, default=2500, help="windows per window process")
    ap.add_argument("--procs", type=int, default=0, help="window processes (0: from --per-process)")
    ap.add_argument("--connect-concurrency", type=int, default=100)
    ap.add_argument("--rss-interval", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds after the last trigger before counting")
    ap.add_argument("--dfws-asgi", dest="dfws", default=runner.default_dfws())
    ap.add_argument("--python", default=None,
                    help="python of the window and trigger processes (default: dfws-asgi's)")
    # internal: the child processes
    ap.add_argument("--role", default="main", choices=("main", "windows", "fire"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    ap.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--slow-fraction", type=float, default=0.01, help=argparse.SUPPRESS)
    ap.add_argument("--expected-deliveries", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--fired", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.faults == "all":
        args.faults = "drop,redis-kill,sighup,sentinel,slow"
    return args


def main():
    args = parse_args()
    if args.role == "windows":
        asyncio.run(windows_role(args))
        return 0
    if args.role == "fire":
        fire_role(args)
        return 0
    result = main_role(args)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
