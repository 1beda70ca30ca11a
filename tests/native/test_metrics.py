"""--metrics-bind with the native socket: windows, deliveries, browser calls
and channel-layer messages counted by the worker, served by the supervisor,
read with prometheus_client's parser."""
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import (
    Project, Server, drain_all, free_port, open_window, run, signal_values, stop_clean,
    wait_until,
)


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0) + s.value  # summed over the worker label
    return out


def test_native_windows_and_deliveries_are_counted(tmp_path, native_db):
    project = Project(tmp_path, native_db, workers="thread")
    mport = free_port()
    server = Server(project, "--metrics-bind", "127.0.0.1:%d" % mport).start()
    try:
        async def scenario():
            windows = [await open_window(server, "/page/") for _ in range(3)]
            wait_until(lambda: scrape(mport)["dfws_native_windows"] == 3, what="3 windows")
            before = scrape(mport)
            for i in range(4):
                server.fire([{"to": "broadcast", "value": "b%d" % i}])
            frames = await drain_all(windows, 4)
            assert [signal_values(f) for f in frames] == [["b0", "b1", "b2", "b3"]] * 3
            wait_until(lambda: scrape(mport)["dfws_native_deliveries_total"]
                       >= before["dfws_native_deliveries_total"] + 12, what="12 deliveries")
            after = scrape(mport)
            assert after["dfws_websockets"] == 3
            assert after["dfws_websockets_opened_total"] >= 3
            assert after["dfws_layer_messages_sent_total"] > before["dfws_layer_messages_sent_total"]
            assert after["dfws_native_deliveries_dropped_total"] == 0
            for w in windows:
                await w.close()
            wait_until(lambda: scrape(mport)["dfws_native_windows"] == 0, what="windows closed")

        run(scenario())
    finally:
        stop_clean(server)
