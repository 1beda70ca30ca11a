"""What every test suite (tests/<suite>/, each its own pytest root) and the
benchmarks (bench/) share, standard library only:

    binary   where dfws-asgi is (dfws.binary's lookup), the repository's paths
    net      free loopback ports, waiting for a condition or a port
    proc     /proc: a process tree, its RSS, killing and stopping it
    redis    a redis-server of our own on a free loopback port
    server   a server process with its output in files, stopped and checked
    http     raw HTTP/1 requests and a strict response reader over a socket
    peers    dfws-asgi's options translated for uvicorn and daphne (reference runs)

A suite's conftest.py puts tests/support on sys.path (one line) and imports
from here; its test modules keep importing from conftest.
"""
