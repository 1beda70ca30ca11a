"""WSGI twin of hello.py and payload.py for granian's WSGI interface
(bench/peers.py's server granian-wsgi on the raw cases): "/" answers
"Hello, world!", POST /echo the request body, any other GET 10 KiB."""

from payload import BIG

HELLO = b"Hello, world!"


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if environ["REQUEST_METHOD"] == "POST" and path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
    elif path == "/":
        body = HELLO
    else:
        body = BIG
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
