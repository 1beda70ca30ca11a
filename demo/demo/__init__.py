"""dfws demo project: one page per built-in df_websockets browser signal.

When the demo runs from a source checkout (``cd demo && dfws-asgi
demo.asgi:application``) and df_websockets is not installed, the checkout's
root (the folder that holds ``df_websockets/``) is added to ``sys.path`` so
that ``import df_websockets`` finds the in-tree package.
"""
import importlib.util
import os
import sys

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if importlib.util.find_spec("df_websockets") is None and os.path.isdir(
    os.path.join(_REPO_ROOT, "df_websockets")
):
    sys.path.append(_REPO_ROOT)
