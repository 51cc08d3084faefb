#!/usr/bin/env python3
"""Per-method CPU shares of a Java app in three views of the same span, and
how far each is from the truth (bench/java_accuracy.sh).

  accuracy.py --truth TRUTH.folded --merged MERGED.folded --sdk SDK.folded [--top N]

Each input is folded stacks ("root;...;leaf VALUE"). A sample counts for the
Java method it is in: its leaf-most Java frame.
  - truth: braid's eBPF recording of a JVM run with -XX:+PreserveFramePointer
    and a perf map (jcmd PID Compiler.perfmap), whose frames name compiled
    Java methods as "RET pkg.Cls.method(ARGS)"; the name is made
    "pkg/Cls.method", as JFR names it. "Interpreter" frames name no method:
    their samples count as "(interpreted)".
  - sdk: the Java agent's JFR (braid convert --jfr-profile process_cpu): a
    frame is Java when it is not async-profiler's native frame (those name a
    library, "libc.so.6.memset", or start with ".").
  - merged: braid merge's output: a frame is Java when the SDK has it as one.
Samples with no Java frame (GC and compiler threads, the JVM's start) are
left out of every view. Prints one JSON object: the TVD of the merged and of
the SDK's distribution from the truth, the CPU (ns: the folded values)
counted and left out of each, the truth's "(interpreted)" share, and the top methods of the truth with their
shares in each view.
"""
import argparse
import json
import re
from collections import defaultdict


def read_folded(path):
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, value = line.rpartition(" ")
        try:
            v = int(value)
        except ValueError:
            continue
        yield stack.split(";"), v


PERFMAP = re.compile(r"^(?:\S+ )?([\w$./<>]+)\(")


def truth_method(frame):
    if frame == "Interpreter":
        return "(interpreted)"
    m = PERFMAP.match(frame)
    if not m:
        return None
    qual = m.group(1)
    cls, _, meth = qual.rpartition(".")
    return cls.replace(".", "/") + "." + meth if cls else None


def sdk_java(frame):
    return "." in frame and ".so" not in frame and not frame.startswith(".") and \
        not frame.startswith("/")


def distribution(path, method_of):
    d = defaultdict(int)
    left_out = 0
    for frames, v in read_folded(path):
        m = None
        for f in reversed(frames):
            m = method_of(f)
            if m:
                break
        if m:
            d[m] += v
        else:
            left_out += v
    return d, left_out


def shares(d):
    t = sum(d.values())
    return {k: v / t for k, v in d.items()} if t else {}


def tvd(p, q):
    return 0.5 * sum(abs(p.get(k, 0) - q.get(k, 0)) for k in set(p) | set(q))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--merged", required=True)
    ap.add_argument("--sdk", required=True)
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args()

    truth, t_out = distribution(a.truth, truth_method)
    sdk, s_out = distribution(a.sdk, lambda f: f if sdk_java(f) else None)
    java = set(sdk)
    for frames, _ in read_folded(a.sdk):
        java.update(f for f in frames if sdk_java(f))
    merged, m_out = distribution(a.merged, lambda f: f if f in java else None)
    pt, pm, ps = shares(truth), shares(merged), shares(sdk)
    top = sorted(pt, key=lambda k: -pt[k])[: a.top]
    print(json.dumps({
        "tvd_merged": round(tvd(pm, pt), 4),
        "tvd_sdk": round(tvd(ps, pt), 4),
        "truth_ns": sum(truth.values()), "truth_left_out_ns": t_out,
        "merged_ns": sum(merged.values()), "merged_left_out_ns": m_out,
        "sdk_ns": sum(sdk.values()), "sdk_left_out_ns": s_out,
        "truth_interpreted": round(pt.get("(interpreted)", 0), 4),
        "methods": [{"method": k, "truth": round(pt[k], 4), "merged": round(pm.get(k, 0), 4),
                     "sdk": round(ps.get(k, 0), 4)} for k in top],
    }))


if __name__ == "__main__":
    main()
