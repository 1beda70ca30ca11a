"""Loads the C server (``dfws._dfws``) onto the libuv that uvloop runs.

The server puts its sockets, timers and Redis connections on uvloop's own
``uv_loop_t``. Exactly one libuv may touch that loop, and it must be
uvloop's: PyPI's uvloop wheels carry a libuv of their own (statically
linked into ``uvloop/loop*.so``, whatever version that release bundles),
and a uvloop built from source may use the system's ``libuv.so.1``.

So ``_dfws`` is never linked to a libuv. Its ``uv_*`` calls are left
undefined, and before it is imported, uvloop's extension module is promoted
to the process's global symbol scope (``dlopen(RTLD_NOLOAD | RTLD_GLOBAL)``
on the already loaded file, which also covers the libraries it depends on):
the dynamic linker then binds every ``uv_*`` call of ``_dfws`` to uvloop's
libuv, at import, through the same PLT calls any shared library makes. No
wrapper, no table, no cost per call, one libuv in the process.

libuv keeps its ABI within 1.x; the functions ``_dfws`` calls exist from
libuv 1.43 (uvloop 0.17, the oldest release tested). A uvloop that cannot
serve gets ``UnusableUvloop`` naming what was found.
"""
import ctypes
import os
import sys

# libuv 1.43 is what uvloop 0.17 bundles, the oldest uvloop the tests run.
MIN_LIBUV = (1, 43)


class UnusableUvloop(RuntimeError):
    """The installed uvloop cannot carry the C server."""


def _describe(uvloop, version):
    return "uvloop %s (%s) with libuv %s" % (
        getattr(uvloop, "__version__", "?"), os.path.dirname(uvloop.__file__), version)


def _libuv_version(lib):
    uv_version = getattr(lib, "uv_version", None)
    if uv_version is None:
        return None
    uv_version.restype = ctypes.c_uint
    v = uv_version()
    return (v >> 16, (v >> 8) & 0xFF, v & 0xFF)


def load_extension():
    """Returns the ``dfws._dfws`` module, bound to uvloop's libuv.

    Idempotent and cheap once done. Raises UnusableUvloop when uvloop is
    missing, exports no libuv symbols, carries a libuv older than
    MIN_LIBUV or of another major version, or lacks a function the server
    calls.
    """
    module = sys.modules.get("dfws._dfws")
    if module is not None:
        return module
    try:
        import uvloop
        from uvloop import loop as uvloop_loop
    except ImportError as exc:
        raise UnusableUvloop("uvloop is not installed (pip install uvloop): %s" % exc) from None
    if not hasattr(uvloop_loop, "libuv_get_loop_t_ptr"):
        raise UnusableUvloop("%s has no libuv_get_loop_t_ptr(): uvloop >= 0.17 is needed"
                             % _describe(uvloop, "?"))
    try:
        lib = ctypes.CDLL(uvloop_loop.__file__,
                          mode=os.RTLD_NOW | os.RTLD_GLOBAL | os.RTLD_NOLOAD)
    except OSError as exc:
        raise UnusableUvloop("cannot open %s again to share its libuv: %s"
                             % (uvloop_loop.__file__, exc)) from None
    version = _libuv_version(lib)
    if version is None:
        raise UnusableUvloop(
            "%s exports no libuv functions, so dfws-asgi cannot run its loop; install "
            "a uvloop wheel from PyPI or build uvloop against the system libuv"
            % _describe(uvloop, "unknown"))
    text = "%d.%d.%d" % version
    if version[0] != 1 or version[:2] < MIN_LIBUV:
        raise UnusableUvloop("%s: dfws-asgi needs libuv 1.x >= %d.%d"
                             % (_describe(uvloop, text), *MIN_LIBUV))
    try:
        from dfws import _dfws
    except ImportError as exc:
        if "undefined symbol" in str(exc):
            raise UnusableUvloop("%s lacks a libuv function dfws-asgi calls (%s)"
                                 % (_describe(uvloop, text), exc)) from None
        package = os.path.dirname(os.path.abspath(__file__))
        raise ImportError(
            "%s: the dfws package at %s has no built C server; this happens when a "
            "source checkout shadows the installed dfws (run from another directory), "
            "or dfws was not installed with pip" % (exc, package)) from None
    return _dfws
