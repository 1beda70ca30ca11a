"""Print, one per line, the files of the Python packages meson installs.

Run by meson at configure time from the source root; skips caches and the
npm sources (the built bundle under df_websockets/static is included).
"""
import os
import sys

PACKAGES = ("dfws", "df_websockets")
SKIP_DIRS = {"__pycache__", "node_modules"}
SKIP_SUFFIXES = (".pyc", ".pyo")

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
out = []
for pkg in PACKAGES:
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(SKIP_SUFFIXES):
                out.append(os.path.join(dirpath, name))
sys.stdout.write("\n".join(out) + "\n")
