#!/usr/bin/env python3
"""Channel layer benchmark: dfws' C Redis layer against Python channels_redis.

Both talk to the same redis-server, which this script starts on a free
loopback port (flushed before every run), in the same run:

- send+receive: --messages messages sent to one process-specific channel
  (``specific.<prefix>!<id>``, what every consumer and every window listens
  on) and received by the same process;
- group_send: --members channels of one process join a group, then
  --group-sends group_send calls; every member must receive every message.

C side: ``build/tests/c/layer_tool serve`` — the C layer (server/layer*.c)
in a process of its own, driven by JSON commands on stdin, one per line. All
commands are written at once, so sends are pipelined the way the C layer
issues them from dfws-asgi's loop (one hiredis connection, no waiting per
call). The tool parses a JSON line per command and prints a JSON line per
received message: that overhead is counted against the C layer.

Python side: channels_redis.core.RedisChannelLayer from PyPI (the peers
environment, bench/.venv-peers) in a separate process (this script with
--python-worker), asyncio: a receiving task per channel
and the sends awaited one after another ("sequential", how application code
calls it) and with --inflight sends in flight ("concurrent"); the better of
the two is the reference for the ratio.

Messages are {"type": "ws_message", "message": <--size characters>} with the
capacity raised above the message count on both sides (channels_redis' default
of 100 per channel would refuse a burst). Throughput = messages received per
second from the first send to the last receipt; "per CPU-s" divides by the
layer process's CPU time (robust on a busy machine).

"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import runner

DEFAULT_TOOL = os.path.join(runner.REPO, "build", "tests", "c", "layer_tool")


# --------------------------------------------------------------------------
# C layer through layer_tool serve

class Tool:
    def __init__(self, path, config):
        self.proc = subprocess.Popen([path, "--config", json.dumps(config), "serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.buf = b""

    def lines(self, timeout):
        """Complete output lines available within `timeout` s (blocks for the first)."""
        import select
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return []
        chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
        if not chunk:
            raise EOFError("layer_tool exited (code %s): %s"
                           % (self.proc.poll(), self.proc.stderr.read()[-500:].decode(
                               errors="replace")))
        data = self.buf + chunk
        cut = data.rfind(b"\n") + 1
        self.buf = data[cut:]
        return data[:cut]

    def request(self, cmd, timeout=10):
        """Send one command and return its reply (JSON), skipping nothing else."""
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        deadline = time.monotonic() + timeout
        pending = b""
        while time.monotonic() < deadline:
            pending += self.lines(deadline - time.monotonic())
            for line in pending.split(b"\n"):
                if b'"event":"reply"' in line:
                    reply = json.loads(line)
                    if cmd[0] in ("listen-new", "group-add") and "synced" not in reply:
                        continue
                    return reply
        raise TimeoutError("no reply to %s" % cmd[0])

    def stream(self, commands, want_messages, timeout):
        """Write `commands` at once, wait for `want_messages` message lines.

        Returns (seconds from the first write to the last message, messages,
        error replies, one sample message line)."""
        payload = "".join(json.dumps(c) + "\n" for c in commands).encode()
        got = errors = 0
        sample = None
        t0 = time.monotonic()
        writer = _Writer(self.proc.stdin, payload)
        writer.start()
        deadline = t0 + timeout
        t_last = t0
        while got < want_messages and time.monotonic() < deadline:
            data = self.lines(deadline - time.monotonic())
            if not data:
                continue
            n = data.count(b'"event":"message"')
            if n:
                got += n
                t_last = time.monotonic()
                if sample is None:
                    at = data.find(b'"event":"message"')
                    sample = data[data.rfind(b"\n", 0, at) + 1:data.find(b"\n", at)]
            errors += data.count(b'"ok":false')
        writer.join()
        # replies to the last sends may still be on their way: read them
        end = time.monotonic() + 2
        while time.monotonic() < end:
            data = self.lines(0.2)
            if not data:
                break
            errors += data.count(b'"ok":false')
        return t_last - t0, got, errors, sample

    def close(self):
        try:
            self.proc.stdin.write(b'["quit"]\n')
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class _Writer:
    """Writes a large payload to the tool's stdin from a thread (the tool's
    stdout must be drained meanwhile or both block)."""

    def __init__(self, pipe, payload):
        import threading
        self.thread = threading.Thread(target=self.run, args=(pipe, payload), daemon=True)

    def start(self):
        self.thread.start()

    def join(self):
        self.thread.join()

    @staticmethod
    def run(pipe, payload):
        try:
            pipe.write(payload)
            pipe.flush()
        except OSError:
            pass


def c_case(args, redis, case):
    config = {"backend": "channels_redis.core.RedisChannelLayer", "kind": "redis",
              "hosts": [redis.url + "/0"], "capacity": args.messages + 1000}
    redis.command(b"FLUSHALL")
    tool = Tool(args.layer_tool, config)
    msg = {"type": "ws_message", "message": "m" * args.size}
    try:
        if case == "send":
            reply = tool.request(["listen-new", []])
            if not reply.get("ok"):
                return {"error": "listen-new failed: %s" % reply}
            cmds = [["send", reply["channel"], msg]] * args.messages
            want = args.messages
        else:
            group = "benchgroup"
            for _ in range(args.members):
                reply = tool.request(["listen-new", [group]])
                if not reply.get("ok"):
                    return {"error": "listen-new failed: %s" % reply}
            cmds = [["group-send", group, msg]] * args.group_sends
            want = args.members * args.group_sends
        cpu0, rcpu0 = runner.cpu_seconds([tool.proc.pid]), redis.cpu()
        seconds, got, errors, sample = tool.stream(cmds, want, args.timeout)
        cpu = runner.cpu_seconds([tool.proc.pid]) - cpu0
        rcpu = redis.cpu() - rcpu0
        out = {"rate": got / seconds if seconds > 0 else None, "received": got, "want": want,
               "seconds": seconds, "cpu": cpu, "redis_cpu": rcpu,
               "per_cpu": got / cpu if cpu > 0 else None}
        if sample is not None and ('"message":"%s"' % msg["message"]).encode() not in sample:
            out["error"] = "wrong message content: %r" % sample[:200]
        elif got < want or errors:
            out["error"] = "%d of %d messages received, %d error replies" % (got, want, errors)
        return out
    except (EOFError, TimeoutError, OSError) as exc:
        return {"error": "%s: %s" % (type(exc).__name__, exc)}
    finally:
        tool.close()


# --------------------------------------------------------------------------
# Python channels_redis (runs in its own process: --python-worker)

async def py_worker(cfg):
    from channels_redis.core import RedisChannelLayer
    import resource

    def cpu():
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    layer = RedisChannelLayer(hosts=[cfg["url"] + "/0"], capacity=cfg["messages"] + 1000)
    msg = {"type": "ws_message", "message": "m" * cfg["size"]}
    inflight = cfg["inflight"]
    bad = [0]

    async def receiver(channel, n):
        for _ in range(n):
            got = await layer.receive(channel)
            if got != msg:
                bad[0] += 1

    async def sender(coro_factory, n):
        if inflight <= 1:
            for _ in range(n):
                await coro_factory()
        else:
            left = [n]

            async def lane():
                while left[0] > 0:
                    left[0] -= 1
                    await coro_factory()
            await asyncio.gather(*(lane() for _ in range(inflight)))

    if cfg["case"] == "send":
        channel = await layer.new_channel()
        n = cfg["messages"]
        want = n
        recv = [receiver(channel, n)]
        send = sender(lambda: layer.send(channel, msg), n)
    else:
        channels = [await layer.new_channel() for _ in range(cfg["members"])]
        for ch in channels:
            await layer.group_add("benchgroup", ch)
        n = cfg["group_sends"]
        want = n * len(channels)
        recv = [receiver(ch, n) for ch in channels]
        send = sender(lambda: layer.group_send("benchgroup", msg), n)
    tasks = [asyncio.ensure_future(r) for r in recv]
    await asyncio.sleep(0.2)   # receivers are waiting (BZPOPMIN issued)
    cpu0, t0 = cpu(), time.monotonic()
    await send
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), cfg["timeout"])
        done = want
    except asyncio.TimeoutError:
        done = None
    seconds = time.monotonic() - t0
    used = cpu() - cpu0
    await layer.flush()
    print(json.dumps({"seconds": seconds, "cpu": used, "complete": done is not None,
                      "bad": bad[0], "want": want}), flush=True)


def py_case(args, redis, case, inflight):
    redis.command(b"FLUSHALL")
    cfg = {"url": redis.url, "case": case, "messages": args.messages, "members": args.members,
           "group_sends": args.group_sends, "size": args.size, "inflight": inflight,
           "timeout": args.timeout}
    rcpu0 = redis.cpu()
    try:
        out = subprocess.run([runner.PEERS_PYTHON, os.path.abspath(__file__), "--python-worker",
                              json.dumps(cfg)], capture_output=True, text=True,
                             timeout=args.timeout + 120)
    except subprocess.TimeoutExpired:
        return {"error": "the channels_redis process hung"}
    rcpu = redis.cpu() - rcpu0
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "channels_redis process failed: %s" % out.stderr.strip()[-400:]}
    res = {"rate": r["want"] / r["seconds"] if r["complete"] else None, "seconds": r["seconds"],
           "cpu": r["cpu"], "redis_cpu": rcpu, "received": r["want"] if r["complete"] else 0,
           "want": r["want"], "per_cpu": r["want"] / r["cpu"] if r["complete"] and r["cpu"]
           else None}
    if not r["complete"]:
        res["error"] = "not every message received within %gs" % args.timeout
    elif r["bad"]:
        res["error"] = "%d messages differ from what was sent" % r["bad"]
    return res


# --------------------------------------------------------------------------

CASES = {"send": "send+receive, one channel", "group": "group_send"}
IMPLS = [("c", "C layer (layer_tool)"), ("py_seq", "channels_redis sequential"),
         ("py_conc", "channels_redis concurrent")]


def median_of(runs, key):
    vals = [r[key] for r in runs if not r.get("error") and r.get(key)]
    return statistics.median(vals) if vals else None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--messages", type=int, default=20000, help="send+receive: messages")
    p.add_argument("--members", type=int, default=100, help="group_send: group members")
    p.add_argument("--group-sends", type=int, default=200, help="group_send: calls")
    p.add_argument("--size", type=int, default=100, help="characters in each message")
    p.add_argument("--inflight", type=int, default=64,
                   help="channels_redis concurrent mode: sends in flight")
    p.add_argument("--repeat", type=int, default=1, help="runs per case (median reported)")
    p.add_argument("--cases", default="send,group")
    p.add_argument("--timeout", type=float, default=120, help="seconds per run at most")
    p.add_argument("--layer-tool", default=os.environ.get("DFWS_LAYER_TOOL", DEFAULT_TOOL))
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--python-worker", metavar="JSON", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in args.cases:
        if c not in CASES:
            p.error("unknown case %r" % c)
    if min(args.messages, args.members, args.group_sends, args.repeat, args.inflight) < 1:
        p.error("counts must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.python_worker:
        asyncio.run(py_worker(json.loads(args.python_worker)))
        return 0
    if not os.access(args.layer_tool, os.X_OK):
        print("error: %s not found; build it: meson setup build; ninja -C build "
              "tests/c/layer_tool" % args.layer_tool, file=sys.stderr)
        return 2
    if shutil.which("redis-server") is None:
        print("error: redis-server not found", file=sys.stderr)
        return 2
    runner.require([runner.PEERS_PYTHON])
    load_before = runner.loadavg()
    redis = runner.Redis()
    results = {c: {i: [] for i, _ in IMPLS} for c in args.cases}
    try:
        for case in args.cases:
            print("== %s" % CASES[case], file=sys.stderr)
            for rep in range(args.repeat):
                for impl, label in IMPLS:   # round-robin: noise hits all alike
                    if impl == "c":
                        r = c_case(args, redis, case)
                    else:
                        r = py_case(args, redis, case, 1 if impl == "py_seq" else args.inflight)
                    results[case][impl].append(r)
                    print("  %-28s run %d: %s" % (label, rep + 1, r["error"] if r.get("error")
                                                   and not r.get("rate") else
                                                   "%.0f msg/s, %.0f msg per CPU-s, layer CPU "
                                                   "%.2fs, redis CPU %.2fs%s"
                                                   % (r["rate"], r["per_cpu"] or 0, r["cpu"],
                                                      r["redis_cpu"], "  (%s)" % r["error"]
                                                      if r.get("error") else "")),
                          file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    finally:
        redis.stop()
    load = (load_before, runner.loadavg())

    head = ["case"] + [label for _, label in IMPLS] + ["C / best channels_redis"]
    tables = []
    for key, title in (("rate", "Throughput (messages received per second, median)"),
                       ("per_cpu", "Efficiency (messages per CPU-second of the layer process)")):
        rows = []
        for case in args.cases:
            vals = {i: median_of(results[case][i], key) for i, _ in IMPLS}
            row = [CASES[case]] + ["%.0f" % vals[i] if vals[i] else "failed" for i, _ in IMPLS]
            best = max([v for i, v in vals.items() if i != "c" and v] or [0])
            row.append("%.2fx" % (vals["c"] / best) if vals["c"] and best else "-")
            rows.append(row)
        tables.append((title, head, rows))
    rows = []
    for case in args.cases:
        rows.append([CASES[case]] + ["%.2f s / %.2f s" % (median_of(results[case][i], "cpu") or 0,
                                                          median_of(results[case][i], "redis_cpu")
                                                          or 0) for i, _ in IMPLS] + [""])
    tables.append(("CPU time per run: layer process / redis-server", head, rows))
    problems = ["%s / %s: %s" % (CASES[c], label, r["error"]) for c in args.cases
                for i, label in IMPLS for r in results[c][i] if r.get("error")]
    runner.print_tables(tables)
    if problems:
        print("\n" + "\n".join("PROBLEM " + p for p in problems))
    print("\n" + runner.busy_label(load[0]))
    if args.markdown:
        vers = runner.python_versions(runner.PEERS_PYTHON, ["channels-redis", "redis", "msgpack"])
        vers["redis-server"] = runner.redis_version()
        extra = (" send+receive: %d messages on one channel; group_send: %d members x %d calls; "
                 "%d-character messages; channels_redis concurrent mode: %d in flight; "
                 "median of %d run(s)." % (args.messages, args.members, args.group_sends,
                                           args.size, args.inflight, args.repeat))
        lines = runner.run_header("layer_bench.py", load, vers, extra) + runner.md_tables(tables)
        if problems:
            lines += [""] + ["- PROBLEM " + p for p in problems]
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("markdown written to %s" % args.markdown, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
