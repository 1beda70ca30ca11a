"""Loopback ports and waiting."""
import socket
import time


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=5.0, interval=0.05, what="condition"):
    """predicate()'s first true value; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def poll(predicate, timeout=10.0, interval=0.05):
    """predicate()'s first true value, or its last value after ``timeout`` s
    (no exception: the caller asserts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def port_open(port, host="127.0.0.1", timeout=0.5):
    """Whether something accepts connections on host:port."""
    try:
        socket.create_connection((host, port), timeout).close()
        return True
    except OSError:
        return False
