"""Worker recycling: --limit-max-requests (+ jitter), --workers-lifetime,
--workers-max-rss. Each retires a worker the way a SIGHUP does: a new one is
ready before the old one drains, so no request fails meanwhile."""
import re
import time

import pytest

from conftest import children_of, rss_bytes
from loadgen import KeepAliveLoad
from test_supervisor import new_generation, wait_for, workers


def check_clean(load):
    assert load.refused == 0 and load.resets == 0 and not load.errors, load.summary()
    assert set(load.statuses) == {200}, load.summary()


def test_limit_max_requests_with_one_worker(start_server):
    s = start_server("restart_app:app", "--limit-max-requests", "10")
    # a supervisor of one: the replacement is ready before the old one stops
    first = workers(s, 1)
    pids = []
    deadline = time.monotonic() + 60
    while len(set(pids)) < 3 and time.monotonic() < deadline:
        r = s.request("GET", "/pid")
        assert r.status == 200
        pids.append(int(r.body))
    assert len(set(pids)) >= 3, (s.describe(), pids)
    assert pids[0] in first
    # each worker served its share in one run, then never again
    runs = [p for i, p in enumerate(pids) if i == 0 or pids[i - 1] != p]
    assert len(runs) == len(set(runs)), runs
    for p in runs[:-1]:
        assert pids.count(p) >= 10, (p, pids)
    assert s.stderr().count("reached its request limit: replacing it") >= 2


def test_limit_max_requests_jitter_bounds(start_server):
    s = start_server("restart_app:app", "--workers", "2", "--limit-max-requests", "5",
                     "--limit-max-requests-jitter", "20")
    with KeepAliveLoad(s.port, "/pid", clients=2) as load:
        wait_for(lambda: len(re.findall(r"asks for a replacement after", s.stderr())) >= 6,
                 60, "six workers", s)
    check_clean(load)
    limits = [int(n) for n in re.findall(r"asks for a replacement after (\d+) requests",
                                         s.stderr())]
    assert all(5 <= n <= 25 for n in limits), limits
    # a worker that was replaced served at least its own limit
    served = {int(b): n for b, n in load.bodies.items()}
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\) reached its request limit",
                                       s.stderr())]
    assert pids
    for line in s.stderr().splitlines():
        m = re.search(r"asks for a replacement after (\d+) requests.*\(pid (\d+)\)", line)
        if m and int(m.group(2)) in pids:
            assert served.get(int(m.group(2)), 0) >= int(m.group(1))


def test_workers_lifetime_under_load(start_server):
    s = start_server("restart_app:app", "--workers", "2", "--workers-lifetime", "2")
    first = workers(s, 2)
    with KeepAliveLoad(s.port, "/pid", clients=4) as load:
        second = new_generation(s, first, 2)
        new_generation(s, second, 2)
    check_clean(load)
    assert s.stderr().count("reached its lifetime: replacing it") >= 4


LIMIT_MIB = 600  # well above a worker at rest, sanitizer builds included


def test_workers_max_rss(start_server):
    s = start_server("restart_app:app", "--workers", "2", "--workers-max-rss", str(LIMIT_MIB))
    first = workers(s, 2)
    with KeepAliveLoad(s.port, "/pid", clients=2) as load:
        pid = int(s.request("GET", "/pid").body)
        rest = rss_bytes(pid) >> 20
        assert rest < LIMIT_MIB - 100, rest
        grow = LIMIT_MIB - rest + 100
        grown = int(s.request("GET", "/grow?mb=%d" % grow).body)
        wait_for(lambda: grown not in children_of(s.pid), 30, "the big worker to go", s)
        assert len(workers(s, 2)) == 2
        time.sleep(0.5)
    check_clean(load)
    err = s.stderr()
    assert re.search(r"\(pid %d\) uses \d+ MiB, above --workers-max-rss %d: replacing it"
                     % (grown, LIMIT_MIB), err), err
    assert "worker" in err and "(pid %d) retired" % grown in err
    # only the big one was replaced
    assert set(children_of(s.pid)) & first == first - {grown}


@pytest.mark.parametrize("flag", ["--limit-max-requests", "--limit-max-requests-jitter",
                                  "--workers-max-rss", "--workers-lifetime",
                                  "--graceful-timeout"])
def test_recycling_flags_take_numbers(flag):
    from conftest import run_cli
    r = run_cli([flag, "x1"], "hello_app:app")
    assert r.returncode == 2 and ": x1\n" in r.stderr, r.stderr
