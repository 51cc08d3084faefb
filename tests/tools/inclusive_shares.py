#!/usr/bin/env python3
"""Compares the per-function inclusive shares of one process's user stacks as
`perf script` prints them (perf record --call-graph dwarf) and as `braid
record -f folded` writes them (tests/cli/unwind.sh).

A function's inclusive share is the fraction of samples whose stack holds it
at least once. Only user frames count: kernel frames are dropped on both
sides (perf's [kernel.kallsyms] frames, braid's *_[k] ones). Names are
normalised so that the two tools' spellings meet:
  - a frame neither tool can name is "MODULE+?" (MODULE the file's base name):
    perf prints "[unknown] (/path/MODULE)", braid "MODULE+0xOFFSET" with one
    offset per address, not per function, so only the module is comparable;
  - perf's symbol version suffix ("__libc_start_main@@GLIBC_2.34") is cut;
  - a function with several names at one address (glibc's free is also
    __libc_free, cfree and __free; __memcpy_avx_unaligned_erms is
    __memmove_avx_unaligned_erms) may be named differently by each tool:
    every name of such a group that either profile uses becomes "a/b"
    (sorted, joined with "/"), the groups read with nm from each file perf
    names and its debug file (/usr/lib/debug/.build-id);
  - perf runs with --no-inline and braid names symbols, not inlined
    functions, so neither side adds inline frames.
Functions whose share is at least --min percent in either profile are
printed with both shares; exits 1 if any two differ by more than --max-diff
percentage points (or a side has fewer than --min-samples samples).

  inclusive_shares.py --perf PERF.script --folded BRAID.folded
                      [--min 5] [--max-diff 5] [--min-samples 200] [--label L]
PERF.script is `perf script -F comm,tid,ip,sym,dso --no-inline`.
"""
import argparse
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict

PERF_FRAME = re.compile(r"^\s+[0-9a-f]+ (.*) \((.*)\)$")
BRAID_UNNAMED = re.compile(r"^(.+)\+0x[0-9a-f]+$")


def perf_dsos(path):
    """The user-space files the samples of a perf script file name."""
    dsos = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = PERF_FRAME.match(line.rstrip("\n"))
            if m and m.group(2).startswith("/"):
                dsos.add(m.group(2))
    return dsos


def nm_groups(path):
    """Lists the sets of function names that share an address in ELF file
    PATH (its .dynsym, its .symtab, and its debug file's by build id)."""
    files = [path]
    note = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]{2})([0-9a-f]+)", note)
    if m:
        debug = f"/usr/lib/debug/.build-id/{m.group(1)}/{m.group(2)}.debug"
        if os.path.exists(debug):
            files.append(debug)
    at = defaultdict(set)
    for f in files:
        for opt in (["-D"], []):
            out = subprocess.run(["nm", "--defined-only", *opt, f], capture_output=True,
                                 text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in "TtWwi":
                    at[int(parts[0], 16)].add(parts[2].split("@", 1)[0])
    return [g for g in at.values() if len(g) > 1]


def alias_map(dsos, used):
    """Maps each used name that has aliases to "a/b": its group's used names."""
    amap = {}
    for dso in sorted(dsos):
        if not os.path.isfile(dso):
            continue
        for g in nm_groups(dso):
            names = sorted(g & used)
            if len(names) > 1:
                for n in names:
                    amap[n] = "/".join(names)
    return amap


def perf_stacks(path):
    """Yields each sample's set of normalised user function names."""
    frames = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                if frames is not None:
                    yield frames
                frames = None
                continue
            m = PERF_FRAME.match(line.rstrip("\n"))
            if m is None:  # a sample's header line: "comm tid"
                if frames is not None:
                    yield frames
                frames = set()
                continue
            sym, dso = m.group(1), m.group(2)
            if frames is None or dso.startswith("[kernel"):
                continue
            if sym == "[unknown]":
                sym = os.path.basename(dso) + "+?"
            frames.add(sym.split("@", 1)[0])
    if frames is not None:
        yield frames


def braid_stacks(path):
    """Yields (set of normalised user function names, count) per folded line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = set()
            for name in stack.split(";")[1:]:  # the first is the comm
                if name.endswith("_[k]"):
                    continue
                m = BRAID_UNNAMED.match(name)
                frames.add(m.group(1) + "+?" if m else name)
            yield frames, int(count)


def shares(stacks):
    total, seen = 0, Counter()
    for frames, count in stacks:
        total += count
        for name in frames:
            seen[name] += count
    return total, {k: 100.0 * v / total for k, v in seen.items()} if total else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--perf", required=True)
    ap.add_argument("--folded", required=True)
    ap.add_argument("--min", type=float, default=5.0)
    ap.add_argument("--max-diff", type=float, default=5.0)
    ap.add_argument("--min-samples", type=int, default=200)
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    n_perf, perf = shares((s, 1) for s in perf_stacks(a.perf))
    n_braid, braid = shares(braid_stacks(a.folded))
    amap = alias_map(perf_dsos(a.perf), set(perf) | set(braid))
    for d in (perf, braid):
        merged = Counter()
        for k, v in d.items():
            # names of one function are never in one stack twice: add them
            merged[amap.get(k, k)] += v
        d.clear()
        d.update(merged)
    label = a.label + ": " if a.label else ""
    print(f"# {label}{n_perf} perf samples, {n_braid} braid samples; inclusive shares (%)")
    print(f"#   {'perf':>6} {'braid':>6} {'diff':>6}  function")
    names = sorted({k for d in (perf, braid) for k, v in d.items() if v >= a.min},
                   key=lambda k: (-max(perf.get(k, 0), braid.get(k, 0)), k))
    worst, worst_name = 0.0, ""
    for k in names:
        p, b = perf.get(k, 0.0), braid.get(k, 0.0)
        d = b - p
        print(f"#   {p:6.1f} {b:6.1f} {d:+6.1f}  {k}")
        if abs(d) > worst:
            worst, worst_name = abs(d), k
    print(f"# {label}{len(names)} functions compared, max |braid - perf| = {worst:.1f} points"
          + (f" ({worst_name})" if worst_name else ""))
    ok = True
    for side, n in (("perf", n_perf), ("braid", n_braid)):
        if n < a.min_samples:
            print(f"FAIL: {label}{side} has {n} samples, fewer than {a.min_samples}", file=sys.stderr)
            ok = False
    if worst > a.max_diff:
        print(f"FAIL: {label}{worst_name}'s inclusive share differs by {worst:.1f} points "
              f"(at most {a.max_diff:g})", file=sys.stderr)
        ok = False
    if not names:
        print(f"FAIL: {label}no function at {a.min:g} % or more", file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
