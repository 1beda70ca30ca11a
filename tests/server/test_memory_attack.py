"""The memory attack of bench/memory_attack.py, CI-sized: 500 WebSocket
clients that send bursts of pings and never read, and 500 HTTP clients that
trickle a body one byte every 2 s, against one worker. The server's RSS
stays bounded (and stops growing once they are connected), and a normal
HTTP request and a normal WebSocket echo keep being served, quickly,
throughout. A trickler the server times out is fine; growth is not."""
import importlib.util
import os

from conftest import REPO

spec = importlib.util.spec_from_file_location("memory_attack", os.path.join(REPO, "bench", "memory_attack.py"))
memory_attack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory_attack)

MiB = 1024 * 1024
N_WS = N_TRICKLE = 500
DURATION = float(os.environ.get("DFWS_TEST_ATTACK_SECONDS", "12"))
# Measured (docs/performance.md, "Memory under a slow-client attack"): about
# 5 KiB per attacker on the release build, more under ASan; 32 KiB leaves
# room for both without hiding a per-message leak (each WebSocket attacker
# sends some 200 KiB of pings over the run, each trickler 6+ bytes).
PER_ATTACKER = 32 * 1024
# Latency of a normal request during the attack; ASan runs may raise it.
PROBE_MAX_S = float(os.environ.get("DFWS_TEST_ATTACK_PROBE_MAX", "2.0"))


def test_slow_clients_bounded_memory_and_normal_clients_served(start_server):
    memory_attack.raise_nofile()  # the server started next inherits it
    s = start_server("attack_app:app", "--backlog", "4096")
    res = memory_attack.run_attack("127.0.0.1", s.port, s.pid, N_WS, N_TRICKLE, DURATION,
                                   probe_timeout=10.0, log=lambda line: None)
    print(res)  # shown with -s or on failure
    assert res["connect_errors"] == 0, res
    assert res["ws_clients"] == N_WS and res["trickle_clients"] == N_TRICKLE
    # normal clients served throughout, with bounded latency
    assert res["n_probe_failures"] == 0, res["probe_failures"]
    assert res["ramp"]["n_probe_failures"] == 0, res["ramp"]
    assert res["probes_http"] >= DURATION / 2 - 2 and res["probes_ws"] >= DURATION / 2 - 2, res
    assert res["http_max_ms"] < PROBE_MAX_S * 1000 and res["ws_max_ms"] < PROBE_MAX_S * 1000, res
    # bounded memory, and no growth while the attack goes on
    growth = (res["rss_peak_mib"] - res["rss_before_mib"]) * MiB
    assert growth < (N_WS + N_TRICKLE) * PER_ATTACKER, res
    assert res["rss_end_mib"] - res["rss_middle_mib"] < 4, res
