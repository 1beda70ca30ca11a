"""A project's own browser tests through dfws-asgi: Channels'
ChannelsLiveServerTestCase with ``ProtocolServerProcess = DfwsProcess``
(the one line a project changes), Chromium driven over the DevTools
protocol: a Channels consumer relaying between two browsers through the
channel layer, a df_websockets signal over the native socket, the test
database seen by the server, static files."""
import json
import os
import tempfile
import urllib.request

from channels.testing import ChannelsLiveServerTestCase

from cdp import chromium, close_page, open_page, q, run
from dfws.testing import DfwsProcess
from liveproj.models import Note

DF_OPEN = "window.DFSignals && DFSignals.connection && DFSignals.connection.readyState === 1"
ROOM_OPEN = "window.roomOpen && document.readyState === 'complete'"


class Chromium:
    """A headless chromium for the test class (``self.devtools``)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._profile = tempfile.TemporaryDirectory(prefix="dfws-live-chromium-",
                                                   ignore_cleanup_errors=True)
        cls._browser = chromium(cls._profile.name)
        cls.devtools = cls._browser.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls._browser.__exit__(None, None, None)
        cls._profile.cleanup()
        super().tearDownClass()


class DfwsLiveTests(Chromium, ChannelsLiveServerTestCase):
    ProtocolServerProcess = DfwsProcess  # the one line: daphne's DaphneProcess otherwise


    def server_pid(self):
        with urllib.request.urlopen(self.live_server_url + "/pid/", timeout=10) as response:
            return json.loads(response.read())["pid"]

    def test_served_by_dfws_asgi_in_its_own_process(self):
        pid = self.server_pid()
        assert pid != os.getpid()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            assert b"dfws-asgi" not in f.read()  # forked from the test, not exec'd
        assert self._server_process.is_alive()
        # the static files of df_websockets, through the static wrapper
        url = self.live_server_url + "/static/js/df_websockets.min.js"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"DFSignals" in response.read()

    def test_native_socket_signal_sees_the_test_database(self):
        Note.objects.create(text="written by the test")

        async def scenario():
            page = await open_page(self.devtools)
            try:
                await page.goto(self.live_server_url + "/", ready=DF_OPEN)
                assert await page.js(q("#notes") + ".textContent") == "written by the test"
                await page.js("document.getElementById('hello').click()")
                await page.wait_js(q("#answer") + ".textContent !== ''")
                return await page.js(q("#answer") + ".textContent")
            finally:
                await close_page(self.devtools, page)

        answer = run(scenario())
        assert answer == "hello browser from %d (native, 1 notes)" % self.server_pid()

    def test_channels_consumer_relays_between_two_browsers(self):
        async def scenario():
            first = await open_page(self.devtools)
            second = await open_page(self.devtools)
            try:
                for page in (first, second):
                    await page.goto(self.live_server_url + "/", ready=ROOM_OPEN)
                    await page.js("window.roomOpen.then(() => true)")
                await first.js("""(() => { const form = document.getElementById('room');
                    form.text.value = 'from the first browser'; form.requestSubmit(); })()""")
                for page in (first, second):
                    await page.wait_js(q("#messages") + ".textContent === 'from the first browser'")
                await second.js("""(() => { const form = document.getElementById('room');
                    form.text.value = 'and back'; form.requestSubmit(); })()""")
                await first.wait_js("document.querySelectorAll('#messages li').length === 2")
                return await first.js("Array.from(document.querySelectorAll('#messages li'))"
                                      ".map((li) => li.textContent)")
            finally:
                for page in (first, second):
                    await close_page(self.devtools, page)

        assert run(scenario()) == ["from the first browser", "and back"]


class DfwsProcessOptionsTests(Chromium, ChannelsLiveServerTestCase):
    """kwargs and args of DfwsProcess: here the Python consumer serves the
    df_websockets socket (--no-native-websockets)."""

    class ProtocolServerProcess(DfwsProcess):
        def __init__(self, host, get_application, **kwargs):
            super().__init__(host, get_application,
                             kwargs={"no_native_websockets": True, "websocket_timeout": 30},
                             **kwargs)


    def test_signal_through_the_python_consumer(self):
        async def scenario():
            page = await open_page(self.devtools)
            try:
                await page.goto(self.live_server_url + "/", ready=DF_OPEN)
                await page.js("document.getElementById('hello').click()")
                await page.wait_js(q("#answer") + ".textContent !== ''")
                return await page.js(q("#answer") + ".textContent")
            finally:
                await close_page(self.devtools, page)

        assert run(scenario()).endswith("(python, 0 notes)")

    def test_command_line(self):
        process = DfwsProcess("localhost", None, kwargs={"no_native_websockets": True,
                                                         "websocket_timeout": 30,
                                                         "proxy_headers": False})
        assert process.command_line(7) == [
            "dfws-asgi", "--fd", "7", "-v", "0", "--no-native-websockets",
            "--websocket-timeout", "30", "dfws.testing:application"]
