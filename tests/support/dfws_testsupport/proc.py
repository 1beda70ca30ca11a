"""What /proc says about a process tree: children, RSS; stopping it."""
import os
import signal
import subprocess
import threading


def children_of(pid):
    """Pids whose parent is ``pid`` (forked from any of its threads)."""
    kids = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids += [int(x) for x in f.read().split()]
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        pass
    return kids


def process_tree(pid):
    """pid and all its descendants, pid first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children_of(p)
    return out


def rss_bytes(pid):
    """Resident set size of one process, in bytes (0 if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def tree_rss_bytes(pid):
    """Summed RSS of a process and all its descendants, in bytes."""
    return sum(rss_bytes(p) for p in process_tree(pid))


class RssSampler:
    """Samples a process tree's RSS in a background thread; ``peak`` in bytes."""

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_bytes(self.pid))


def kill_tree(pid):
    """SIGKILL a process and every descendant, the descendants first."""
    for child in process_tree(pid)[1:]:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_process(proc, timeout=15):
    """SIGTERM the process group of ``proc`` (started with
    start_new_session=True), SIGKILL it after ``timeout`` s; its exit
    status, None when it had to be killed."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
