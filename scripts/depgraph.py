#!/usr/bin/env python3
"""The module dependency graph of server/ and asgi/, from #include lines.

A module is a header and the .c files that implement it: a .c file belongs
to the module of its first quoted include (the project's convention: a .c
file includes its own header first, e.g. transport_tcp.c -> transport.h,
asgi/http.c -> asgi.h). An edge A -> B means a file of A includes B's
header. The layers must run one way, so the graph must have no cycle,
except inside a backend table: the channel layer's backends (layer_*.c
behind layer_int.h) are one node.

  scripts/depgraph.py            check; print the cycles and exit 1 if any
  scripts/depgraph.py --print    also print every module's dependencies
  scripts/depgraph.py --dot      Graphviz source of the graph
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DIRS = ["server", "asgi"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# one node per backend table: the table's owner and its implementations
GROUPS = {"layer_int": "layer", "layer_memory": "layer", "layer_redis": "layer",
          "layer_pubsub": "layer"}


# Cycles known and left to their owners, printed but not failing the check:
# the channel layer's helpers (fernet.h and redis_conn.h include layer.h for
# its types, layer.c includes them back). Remove once mended.
ALLOWED = [{"fernet", "layer", "redis_conn"}]


def node(name):
    return GROUPS.get(name, name)


def scan():
    headers, files = {}, []
    for d in DIRS:
        for f in sorted(os.listdir(os.path.join(ROOT, d))):
            if f.endswith((".c", ".h")):
                path = os.path.join(ROOT, d, f)
                with open(path, encoding="utf-8") as fh:
                    incs = INCLUDE.findall(fh.read())
                files.append((d, f, incs))
                if f.endswith(".h"):
                    headers[f] = d
    deps, where = {}, {}
    for d, f, incs in files:
        local = [i for i in incs if i in headers]
        if f.endswith(".h"):
            mod = f[:-2]
        else:
            mod = local[0][:-2] if local else f[:-2]
        mod = node(mod)
        where.setdefault(mod, headers.get(mod + ".h", d))
        for i in local:
            dep = node(i[:-2])
            if dep != mod:
                deps.setdefault(mod, set()).add(dep)
                where.setdefault(dep, headers[i])
        deps.setdefault(mod, set())
    return deps, where


def cycles(deps):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


def main():
    deps, where = scan()
    if "--dot" in sys.argv:
        print("digraph dfws {\n  rankdir=TB; node [shape=box];")
        for m in sorted(deps):
            for d in sorted(deps[m]):
                print(f'  "{where[m]}/{m}" -> "{where[d]}/{d}";')
        print("}")
        return 0
    if "--print" in sys.argv:
        for m in sorted(deps, key=lambda m: (where[m], m)):
            print(f"{where[m]}/{m}: {' '.join(sorted(deps[m])) or '-'}")
    found = cycles(deps)
    bad = [c for c in found if set(c) not in ALLOWED]
    for comp in found:
        what = "cycle" if comp in bad else "known cycle (allowed, see ALLOWED)"
        print(f"{what}: " + " <-> ".join(f"{where[m]}/{m}" for m in comp))
    print(f"{len(deps)} modules, {sum(len(v) for v in deps.values())} dependencies, "
          f"{len(bad)} cycle(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
