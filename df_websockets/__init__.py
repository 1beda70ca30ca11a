"""df_websockets: signals between Django and browser windows over one websocket.

API-compatible with upstream df_websockets 1.2.5 (same modules, names, settings
and message formats); see docs/ for the upstream defects fixed here.
"""

__version__ = "1.2.5"
