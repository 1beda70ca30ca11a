"""The supervisor: rolling restarts on SIGHUP, a lone worker's restart in
place, a deploy that does not start, fork failures, crashes at start, and
workers whose supervisor died."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import build_request, children_of
from loadgen import KeepAliveLoad


def wait_for(cond, timeout, what, s=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    pytest.fail("timed out waiting for %s\n%s" % (what, s.describe() if s else ""))


def new_generation(s, old, n):
    """Waits until the supervisor's children are n workers, none of `old`."""
    def check():
        kids = set(children_of(s.pid))
        return kids if len(kids) == n and not kids & old else None
    return wait_for(check, 40, "workers other than %s" % sorted(old), s)


def workers(s, n, timeout=20):
    """Waits until the supervisor has exactly n children and has seen n
    workers ready (they were all started together); returns their pids."""
    def check():
        kids = set(children_of(s.pid))
        return kids if len(kids) == n and s.stderr().count(") ready") >= n else None
    return wait_for(check, timeout, "%d workers" % n, s)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def served_more(load, n, s):
    target = load.total() + n
    wait_for(lambda: load.total() >= target, 30, "%d more responses (%s)" % (n, load.summary()), s)


def test_sighup_rolling_restart_under_load_refuses_nothing(start_server):
    s = start_server("restart_app:app", "--workers", "2")
    gens = [workers(s, 2, 10)]
    with KeepAliveLoad(s.port, "/pid", clients=4) as load:
        served_more(load, 50, s)
        for _ in range(3):
            s.signal(signal.SIGHUP)
            gens.append(new_generation(s, gens[-1], 2))
            served_more(load, 50, s)
    assert load.refused == 0 and load.resets == 0 and not load.errors, load.summary()
    assert set(load.statuses) == {200}, load.summary()
    served = {int(b) for b in load.bodies}
    assert served <= set().union(*gens), (served, gens)
    for g in gens[1:]:
        assert g & served, (g, served)  # each new generation took the load
    assert s.stderr().count("SIGHUP: replacing 2 workers, one at a time") == 3
    assert s.proc.poll() is None  # SIGHUP no longer kills the supervisor
    s.stop()
    for g in gens:
        for pid in g:
            assert not alive(pid)


def test_sighup_lone_worker_restarts_in_place(start_server):
    s = start_server("restart_app:app")
    assert s.request("GET", "/version").body == b"1 %d" % s.pid
    with KeepAliveLoad(s.port, "/version", clients=3) as load:
        served_more(load, 30, s)
        with open(s.out_file("version"), "w") as f:
            f.write("2")
        s.signal(signal.SIGHUP)
        wait_for(lambda: load.bodies[b"2 %d" % s.pid], 30, "the new code", s)
        served_more(load, 30, s)
    assert load.refused == 0 and load.resets == 0 and not load.errors, load.summary()
    assert set(load.statuses) == {200}, load.summary()
    # the same process (systemd's MainPID) runs the new code
    assert set(load.bodies) == {b"1 %d" % s.pid, b"2 %d" % s.pid}, load.bodies
    assert s.stderr().count("received SIGHUP, restarting in place") == 1
    assert children_of(s.pid) == []


def test_sighup_with_a_deploy_that_does_not_start_keeps_the_workers(start_server):
    s = start_server("restart_app:app", "--workers", "2")
    old = workers(s, 2, 10)
    open(s.out_file("broken"), "w").close()
    s.signal(signal.SIGHUP)
    wait_for(lambda: "restart abandoned" in s.stderr(), 30, "the abandoned restart", s)
    assert "RuntimeError: this deploy is broken" in s.stderr()
    assert set(children_of(s.pid)) == old, s.describe()
    for _ in range(4):
        r = s.request("GET", "/version")
        assert r.status == 200 and int(r.body.split()[1]) in old
    # fixed: the next SIGHUP replaces them
    os.unlink(s.out_file("broken"))
    with open(s.out_file("version"), "w") as f:
        f.write("2")
    s.signal(signal.SIGHUP)
    new = new_generation(s, old, 2)
    r = s.request("GET", "/version")
    assert r.body.startswith(b"2 ") and int(r.body.split()[1]) in new


def test_sighup_lets_requests_in_progress_finish(start_server):
    s = start_server("restart_app:app", "--workers", "2")
    old = workers(s, 2)
    c = s.connect(20)
    c.send(build_request("GET", "/sleep?s=2"))
    time.sleep(0.3)
    s.signal(signal.SIGHUP)
    r = c.read_response()
    c.close()
    assert r.status == 200 and int(r.body) in old
    assert r.header("connection") == "close"
    new_generation(s, old, 2)


def test_graceful_timeout_bounds_the_drain(start_server):
    s = start_server("restart_app:app", "--workers", "2", "--graceful-timeout", "1")
    old = workers(s, 2)
    c = s.connect(30)
    c.send(build_request("GET", "/sleep?s=30"))
    time.sleep(0.3)
    t0 = time.monotonic()
    s.signal(signal.SIGHUP)
    new_generation(s, old, 2)
    assert time.monotonic() - t0 < 10
    assert c.read_until_close(10) == b""  # cut, with no response
    c.close()
    assert "graceful timeout: closing 1 unfinished requests and WebSockets" in s.stderr()


def _fork_shim(tmp_path):
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler for the fork() shim")
    src = tmp_path / "failfork.c"
    src.write_text(r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* fork() called by the dfws extension fails with EAGAIN the first
 * $DFWS_TEST_FAIL_FORKS times (a shell or Python's own forks never do) */
pid_t fork(void)
{
    static pid_t (*real)(void);
    static int left = -1;
    Dl_info info;
    if (!real)
        real = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
    if (!dladdr(__builtin_return_address(0), &info) || !info.dli_fname ||
        !strstr(info.dli_fname, "_dfws"))
        return real();
    if (left < 0) {
        const char *e = getenv("DFWS_TEST_FAIL_FORKS");
        left = e ? atoi(e) : 0;
    }
    if (left > 0) {
        left--;
        errno = EAGAIN;
        return -1;
    }
    return real();
}
""")
    lib = tmp_path / "failfork.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src), "-ldl"], check=True)
    return str(lib)


def test_fork_failure_is_retried_and_never_counted(start_server, tmp_path):
    shim = _fork_shim(tmp_path)
    preload = " ".join(p for p in (os.environ.get("LD_PRELOAD"), shim) if p)
    s = start_server("restart_app:app", "--workers", "2",
                     extra_env={"LD_PRELOAD": preload, "DFWS_TEST_FAIL_FORKS": "3"})
    kids = workers(s, 2, 20)
    err = s.stderr()
    assert err.count("cannot start a worker: fork failed: Resource temporarily unavailable;"
                     " trying again in") == 3, err
    assert err.count(") ready") == 2, err  # two workers, never a phantom third
    pids = {int(s.request("GET", "/pid").body) for _ in range(20)}
    assert pids <= kids


def test_crash_at_start_repeatedly_stops_the_supervisor(start_server):
    s = start_server("crash_app:app", "--workers", "2", wait=False)
    code = s.proc.wait(60)
    s.stopped = True
    err = s.stderr()
    assert code == 128 + signal.SIGKILL, err
    assert "was killed by signal 9 (Killed) before it was ready, 5 times in a row; stopping" \
        in err, err
    assert err.count("was killed by signal 9") == 5, err
    # the last one started may still be starting when the supervisor stops
    assert 5 <= err.count(" started (pid") <= 6, err
    assert children_of(s.pid) == []


def test_app_that_cannot_start_stops_the_supervisor_at_once(start_server):
    s = start_server("lifespan_fail_app:app", "--workers", "2", wait=False)
    code = s.proc.wait(30)
    s.stopped = True
    err = s.stderr()
    assert code == 1, err
    assert "database-is-down-42" in err
    assert "exited with status 1 before it was ready: the application cannot start" in err
    assert err.count(" started (pid") == 2, err  # never started again
    assert children_of(s.pid) == []


def test_workers_exit_when_their_supervisor_is_killed(start_server):
    s = start_server("restart_app:app", "--workers", "2")
    kids = workers(s, 2, 10)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(5)
    s.stopped = True
    wait_for(lambda: not any(alive(p) for p in kids), 15, "the orphaned workers to exit", s)
    assert s.stderr().count("the supervisor is gone: shutting down") == 2
