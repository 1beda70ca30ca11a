#!/usr/bin/env python3
"""Shrinks a driver's corpus to the few inputs that cover every edge it
covers: each input's edges are read alone (libFuzzer's merge control file
of a one-input merge), then a greedy set cover keeps the input that adds the
most edges not yet covered (the smaller one on a tie) until nothing is left.
libFuzzer's own -merge=1 keeps every input that adds a feature (hit counts
too), hundreds of files where a few dozen cover the same code; clang 15's
-set_cover_merge=1 does what this does.

    python3 tests/fuzz/reduce_corpus.py build-fuzz/tests/fuzz/fuzz_http1 \
        tests/fuzz/corpus/fuzz_http1 [more input folders...]

Rewrites the first folder with the chosen inputs (named by their SHA-1, as
libFuzzer names them); the hand-made seed-* inputs and the regress-* inputs
(past findings) are kept whatever they cover."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

KEEP = ("seed-", "regress-")  # hand-made inputs and past findings stay


def edges(driver, path, tmp):
    """The edges one input covers (its features, counted without hit counts)."""
    ind, outd, ctl = (os.path.join(tmp, n) for n in ("in", "out", "ctl"))
    for d in (ind, outd):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    shutil.copy(path, ind)
    if os.path.exists(ctl):  # libFuzzer would resume the merge it describes
        os.remove(ctl)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    # no hit counts, comparisons or value profiles: a feature is an edge
    subprocess.run([driver, "-merge=1", "-merge_control_file=" + ctl, "-use_counters=0",
                    "-use_cmp=0", "-use_value_profile=0", outd, ind],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=60)
    with open(ctl) as f:
        for line in f:
            if line.startswith("FT "):
                return set(line.split()[2:])
    return set()


def main():
    driver, corpus, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    inputs = {}
    for folder in [corpus] + extra:
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            key = name if name.startswith(KEEP) else hashlib.sha1(data).hexdigest()
            inputs.setdefault(key, data)
    with tempfile.TemporaryDirectory() as tmp:
        cover = {}
        for key, data in inputs.items():
            path = os.path.join(tmp, "input")
            with open(path, "wb") as f:
                f.write(data)
            cover[key] = edges(driver, path, tmp)
    kept = [k for k in inputs if k.startswith(KEEP)]
    covered = set().union(*(cover[k] for k in kept)) if kept else set()
    left = set().union(*cover.values()) - covered
    while left:
        best = max((k for k in cover if k not in kept),
                   key=lambda k: (len(cover[k] & left), -len(inputs[k])))
        if not cover[best] & left:
            break
        kept.append(best)
        left -= cover[best]
    for name in os.listdir(corpus):
        os.remove(os.path.join(corpus, name))
    for key in kept:
        with open(os.path.join(corpus, key), "wb") as f:
            f.write(inputs[key])
    total = set().union(*cover.values()) if cover else set()
    print("%s: %d of %d inputs cover all %d edges" % (os.path.basename(corpus), len(kept),
                                                       len(inputs), len(total)))


if __name__ == "__main__":
    main()
