"""dfws: the Python side of the dfws-asgi server (start-up, lifespan, logging)."""

__version__ = "0.1.0"
