"""bench/peer.sh's "what each sees": per-function CPU shares of an app from
braid's merged series and from the OTel profiler's, each against a ground
truth recorded beside them, as folded stacks.

  seen.py APP TRUTH.folded BRAID.folded OTEL.folded [--json]
  seen.py fold-pprof REPLY.json [FILE...]   Pyroscope's merged profile as folded
                                  lines (only stacks through one of FILEs)
  seen.py fold-perf SCRIPT.txt [PERF-PID.map]   `perf script -F ip,sym,dso`'s
                                  samples as folded lines, V8's frames named
                                  from its perf map (the last entry wins)

APP is node or python; it names the functions compared:
  node    of examples/node-app: the route /report (pure JS: renderReport,
          countPrimes, jsonRoundTrip, which V8 inlines into it, so that
          neither the perf map nor V8's own profiler names them apart, while
          the OTel profiler expands the inlining), hashPassword (OpenSSL's
          PBKDF2), writeAuditRecord (the kernel's write) and the rest of
          /login;
  python  of tests/e2e/python/app.py (MODE=mixed): render_report (pure
          Python), hash_password (OpenSSL's PBKDF2), write_audit (os.pwrite).
Folded lines are "root;...;leaf COUNT". A frame counts for a function when
the function's name is a word of it ("JS:*hashPassword /x/app.js:112",
"hash_password (app.py:80)", "hash_password"). Each stack goes to the
function nearest its leaf, else to "rest". The shares shown are over all of
the app's stacks; the TVD (0.5 * sum |p - q|, against the truth) is over the
functions alone, each source's shares scaled to sum to 1 among them: "rest"
is what a source could not place, and differs for reasons of its own (the
truth's stacks that frame pointers broke in libc; py-spy sees only Python
threads, braid the SDK's own threads too; the OTel profiler's samples are
told apart by the files their stacks run in), which the root and named
shares show.

Also per source: the share of samples whose stack reaches a thread's root
(its outermost frame is _start, __libc_start_main, __libc_start_call_main,
start_thread, clone or clone3: where every thread begins), and the share of
frames named (not an address, not "[FILE]", not empty), weighted by
samples. A stack reaches the root when its outermost frame is one of those,
or, unnamed, lies in the program's file or libc's.
"""
import json
import os
import re
import sys

FUNCS = {
    "node": ["/report", "/login", "hashPassword", "writeAuditRecord"],
    "python": ["render_report", "hash_password", "write_audit"],
}
ROOTS = {"_start", "__libc_start_main", "__libc_start_call_main", "start_thread", "clone", "clone3",
         "__libc_start_main_impl", "__clone3", "__clone"}
# where a thread's stack begins when the frame has no name: the program's
# file (_start) or libc's (clone3)
ROOT_FILES = {"[node]", "[python3.11]", "[libc.so.6]"}
UNNAMED = re.compile(r"^(0x[0-9a-fA-F]+|\[.*\]|unknown|)$")


def read(path):
    stacks = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, value = line.rpartition(" ")
            try:
                v = float(value)
            except ValueError:
                sys.exit(f"seen.py: {path}: not a folded line: {line[:200]}")
            if v > 0 and stack:
                stacks.append((stack.split(";"), v))
    return stacks


def base(frame):
    # "hash_password (app.py:80)" -> "hash_password"; "do_syscall_64_[k]" ->
    # "do_syscall_64"; "JS:*f /p" stays whole (the word test finds f);
    # py-spy's "0x7f.. (libc.so.6)", an address in a file, -> "[libc.so.6]"
    m = re.match(r"^0x[0-9a-fA-F]+ \((.*)\)$", frame)
    if m:
        return "[%s]" % m.group(1)
    i = frame.find(" (")
    f = frame[:i] if i > 0 else frame
    return f[:-4] if f.endswith("_[k]") else f


def shares(stacks, funcs):
    total = sum(v for _, v in stacks)
    pats = [(fn, re.compile(r"(?<![A-Za-z0-9_])" + re.escape(fn) + r"(?![A-Za-z0-9_])")) for fn in funcs]
    got = {fn: 0.0 for fn in funcs}
    got["rest"] = 0.0
    for frames, v in stacks:
        hit = None
        for fr in reversed(frames):
            for fn, pat in pats:
                if pat.search(fr):
                    hit = fn
                    break
            if hit:
                break
        got[hit or "rest"] += v
    return {k: (x / total if total else 0.0) for k, x in got.items()}, total


def reach_root(stacks):
    total = sum(v for _, v in stacks)
    ok = 0.0
    for frames, v in stacks:
        # py-spy --threads puts "thread (TID)" outermost, perf the comm
        outer = [base(f) for f in frames[:3]]
        if any(o in ROOTS for o in outer) or outer[0] in ROOT_FILES:
            ok += v
    return ok / total if total else 0.0


def named(stacks):
    n = t = 0.0
    for frames, v in stacks:
        for f in frames:
            t += v
            if not UNNAMED.match(base(f).strip()):
                n += v
    return n / t if t else 0.0


def tvd(p, q, funcs):
    sp = sum(p[k] for k in funcs)
    sq = sum(q[k] for k in funcs)
    if not sp or not sq:
        return None
    return 0.5 * sum(abs(p[k] / sp - q[k] / sq) for k in funcs)


def fold_pprof(path, exes):
    """Pyroscope's SelectMergeProfile reply (a pprof Profile in Connect
    JSON: 64-bit integers as strings) as folded lines on stdout. A frame
    without a function name is "[FILE]", its mapping's file name. With
    exes, only the samples with a frame in a mapping of one of those file
    names (the OTel profiler's series name no process: its samples are told
    apart by the files their stacks run in)."""
    with open(path) as f:
        p = json.load(f)
    strings = p.get("stringTable", [])
    funcs = {fn["id"]: strings[int(fn.get("name", "0"))] for fn in p.get("function", [])}
    maps = {m["id"]: os.path.basename(strings[int(m.get("filename", "0"))]) for m in p.get("mapping", [])}
    locs = {}
    for loc in p.get("location", []):
        lines = loc.get("line", [])
        # a location's lines are innermost first; root-first, the outer ones come first
        names = [funcs.get(ln.get("functionId", "0"), "") for ln in reversed(lines)]
        names = [n for n in names if n]
        locs[loc["id"]] = (names or ["[%s]" % (maps.get(loc.get("mappingId", "0")) or "unknown")],
                           maps.get(loc.get("mappingId", "0"), ""))
    acc = {}
    for smp in p.get("sample", []):
        v = int(smp.get("value", ["0"])[0])
        if v <= 0:
            continue
        frames = []
        files = set()
        for lid in reversed(smp.get("locationId", [])):
            names, file = locs.get(lid, (["[unknown]"], ""))
            frames.extend(names)
            files.add(file)
        if exes and not files & exes:
            continue
        key = ";".join(f.replace(";", ":") for f in frames)
        acc[key] = acc.get(key, 0) + v
    for k, v in acc.items():
        print(f"{k} {v}")


class PerfMap:
    """V8's /tmp/perf-PID.map (--perf-basic-prof): "START SIZE NAME" lines,
    appended as code is made. V8 reuses the addresses of code it freed, so
    an address can have several entries; perf names it from the first, by
    then often stale. Here the last entry covering it wins, the code that
    held the address most recently."""

    def __init__(self, path):
        self.entries = []
        self.pages = {}
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) != 3:
                    continue
                try:
                    start, size = int(parts[0], 16), int(parts[1], 16)
                except ValueError:
                    continue
                i = len(self.entries)
                self.entries.append((start, start + size, parts[2]))
                for page in range(start >> 12, ((start + max(size, 1) - 1) >> 12) + 1):
                    self.pages.setdefault(page, []).append(i)

    def name(self, addr):
        best = None
        for i in self.pages.get(addr >> 12, ()):
            start, end, name = self.entries[i]
            if start <= addr < end:
                best = name
        return best


def fold_perf(path, perf_map=None):
    """`perf script -F ip,sym,dso` as folded lines on stdout; frames in V8's
    perf map named again from perf_map (a PerfMap), the last entry winning."""
    acc = {}
    frames = []

    def flush():
        if frames:
            key = ";".join(reversed(frames))
            acc[key] = acc.get(key, 0) + 1
        frames.clear()

    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                flush()
                continue
            if not line[0].isspace():
                flush()
                continue
            m = re.match(r"\s*([0-9a-f]+)\s+(.*?)(?:\s+\((.*)\))?$", line.rstrip("\n"))
            if m:
                name = m.group(2)
                if perf_map and (m.group(3) or "").endswith(".map"):
                    name = perf_map.name(int(m.group(1), 16)) or name
                frames.append(name.replace(";", ":") or "[unknown]")
    flush()
    for k, v in acc.items():
        print(f"{k} {v}")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "fold-pprof":
        fold_pprof(sys.argv[2], set(sys.argv[3:]))
        return
    if len(sys.argv) in (3, 4) and sys.argv[1] == "fold-perf":
        fold_perf(sys.argv[2], PerfMap(sys.argv[3]) if len(sys.argv) == 4 else None)
        return
    args = [a for a in sys.argv[1:] if a != "--json"]
    if len(args) != 4 or args[0] not in FUNCS:
        sys.exit("usage: seen.py node|python TRUTH.folded BRAID.folded OTEL.folded [--json]")
    app, paths = args[0], dict(zip(["truth", "braid", "otel"], args[1:]))
    funcs = FUNCS[app]
    out = {"app": app, "functions": funcs, "sources": {}}
    truth = None
    for name, path in paths.items():
        st = read(path)
        sh, total = shares(st, funcs)
        if name == "truth":
            truth = sh
        out["sources"][name] = {
            "samples": total,
            "shares": sh,
            "tvd": tvd(truth, sh, funcs) if truth is not None and name != "truth" else None,
            "reach_root": reach_root(st),
            "named": named(st),
        }
    if "--json" in sys.argv:
        print(json.dumps(out))
        return
    cols = funcs + ["rest"]
    print(f"\n{app}: inclusive CPU shares (%), TVD against the truth, stacks reaching the thread root, frames named")
    print(f"{'source':<7} {'samples':>8} " + " ".join(f"{c[:14]:>14}" for c in cols) +
          f" {'TVD':>6} {'root %':>7} {'named %':>8}")
    for name, s in out["sources"].items():
        print(f"{name:<7} {s['samples']:>8.0f} " + " ".join(f"{100 * s['shares'][c]:>14.1f}" for c in cols) +
              f" {'-' if s['tvd'] is None else format(s['tvd'], '.3f'):>6} {100 * s['reach_root']:>7.1f}"
              f" {100 * s['named']:>8.1f}")


if __name__ == "__main__":
    main()
