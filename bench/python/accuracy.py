#!/usr/bin/env python3
"""bench/python_accuracy.sh's figures for one round: the per-function CPU
shares of a Python process as the truth (py-spy record --native), braid's
merged profile and the SDK's profiles give them, and where the native time
sits.

Inputs, all folded stacks ("root;...;leaf VALUE"):
  --truth   py-spy's raw output (--format raw): frames "name (file:line)",
            "name (module)" or "0xADDR (module)", one count per sample.
  --merged  braid merge's output for the process, through `braid convert
            --to folded --annotate` (kernel frames end in "_[k]").
  --sdk     the SDK's profiles of the same span, through `braid convert
            --to folded --sample-type cpu` (Python frames only).

What counts:
  - the truth's off-CPU samples are dropped: py-spy --native samples a thread
    waiting for the GIL (take_gil's pthread_cond_timedwait), which eBPF CPU
    sampling never sees;
  - py-spy samples threads that are runnable, not only running, and stops
    the whole process for each sample: its split of samples between threads
    is not their split of CPU. With --thread-cpu (lines "TID TICKS": each
    thread's utime + stime over the span, from /proc/PID/task/TID/stat) and
    py-spy's --threads roots ("thread (TID): NAME"), the truth weighs each
    thread's stacks by its CPU time; the plain split is reported beside it
    as "truth_samples";
  - braid's samples of the SDK's own threads (py-spy's sampler and its HTTP
    client, Rust: frames naming py_spy, pyroscope, reqwest, tokio, hyper or
    Rust's v0 mangling) are dropped: py-spy shows Python threads only;
  - a function's inclusive share: the samples whose stack names it at least
    once, over all samples; the buckets are the --func functions (which must
    not call each other) and "rest" (1 - their sum);
  - TVD = 0.5 * sum |p - q| over the buckets: the largest difference in the
    share any set of buckets gets;
  - --under CALLER=REGEX: of the samples with a frame matching REGEX (a native
    or kernel function), the share with CALLER rootward of it. For "naive"
    (every eBPF sample of the process shared among the SDK's stacks by weight,
    threads ignored) that share is CALLER's share of the SDK's weight.
Prints one JSON object.
"""
import argparse
import json
import re
import sys

OFF_CPU = re.compile(r"^(take_gil|drop_gil|pthread_cond_timedwait|pthread_cond_wait|"
                     r"__pthread_cond_wait|__futex_abstimed_wait_common|futex_wait|"
                     r"PyThread_acquire_lock_timed|sem_timedwait|sem_clockwait|epoll_wait|"
                     r"select|poll|nanosleep|clock_nanosleep)$")
# the SDK's own threads (Rust: py-spy's sampler, its HTTP client)
SDK_THREAD = re.compile(r"(py_spy|pyroscope|reqwest|tokio|hyper|^_RN|std6thread)")
KERNEL = re.compile(r"_\[k\]$")


def read(path, strip):
    stacks = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, value = line.rpartition(" ")
            try:
                v = int(value)
            except ValueError:
                sys.exit(f"accuracy.py: {path}: not a folded line: {line[:200]}")
            if v > 0:
                stacks.append(([strip(fr) for fr in stack.split(";")], v))
    return stacks


def truth_name(frame):
    # "hash_password (app.py:54)", "PKCS5_PBKDF2_HMAC (libcrypto.so.3)";
    # --threads' root "thread (TID): NAME" stays whole
    if frame.startswith("thread ("):
        return frame
    i = frame.find(" (")
    return frame[:i] if i > 0 else frame


def braid_name(frame):
    # "PKCS5_PBKDF2_HMAC", "do_syscall_64_[k]"; the SDK's frames are
    # function names too
    return frame


def by_thread(stacks):
    # py-spy --threads: the root frame is "thread (TID): NAME"
    out = {}
    for fr, v in stacks:
        m = re.match(r"^thread \((\d+)\)", fr[0]) if fr else None
        tid = int(m.group(1)) if m else 0
        out.setdefault(tid, []).append((fr[1:] if m else fr, v))
    return out


def weighted_shares(stacks, funcs, cpu):
    threads = by_thread(stacks)
    weights = {t: cpu.get(t, 0) for t in threads}
    total = sum(weights.values())
    if total <= 0:
        return None
    out = {f: 0.0 for f in funcs}
    for t, st in threads.items():
        _, sh = shares(st, funcs)
        for f in funcs:
            out[f] += weights[t] / total * sh[f]
    return out


def shares(stacks, funcs):
    total = sum(v for _, v in stacks)
    out = {}
    for fn in funcs:
        n = sum(v for fr, v in stacks if fn in fr)
        out[fn] = n / total if total else 0.0
    return total, out


def under(stacks, caller, native):
    pat = re.compile(native)
    has = ok = 0
    for fr, v in stacks:
        idx = [i for i, f in enumerate(fr) if pat.search(f)]
        if not idx:
            continue
        has += v
        if caller in fr[:idx[0]]:
            ok += v
    return has, ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--merged", required=True)
    ap.add_argument("--sdk", required=True)
    ap.add_argument("--func", action="append", required=True)
    ap.add_argument("--under", action="append", default=[])
    ap.add_argument("--thread-cpu")
    a = ap.parse_args()
    cpu = {}
    if a.thread_cpu:
        with open(a.thread_cpu, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    cpu[int(parts[0])] = int(parts[1])

    truth_all = read(a.truth, truth_name)
    truth = [(fr, v) for fr, v in truth_all if not any(OFF_CPU.match(f) for f in fr)]
    merged_all = read(a.merged, braid_name)
    merged = [(fr, v) for fr, v in merged_all if not any(SDK_THREAD.search(f) for f in fr)]
    sdk = read(a.sdk, braid_name)

    res = {"buckets": a.func + ["rest"]}
    dists = {}
    for name, st in (("truth", truth), ("merged", merged), ("sdk", sdk)):
        total, sh = shares(st, a.func)
        d = [sh[f] for f in a.func]
        d.append(1 - sum(d))
        dists[name] = d
        res[name] = {"samples": total, "shares": d}
    res["truth_samples"] = {"shares": dists["truth"]}
    res["truth"]["weighted_by_thread_cpu"] = False
    if cpu:
        w = weighted_shares(truth, a.func, cpu)
        if w is not None:
            d = [w[f] for f in a.func]
            d.append(1 - sum(d))
            dists["truth"] = d
            res["truth"]["shares"] = d
            res["truth"]["weighted_by_thread_cpu"] = True
    res["truth"]["off_cpu_dropped"] = sum(v for _, v in truth_all) - res["truth"]["samples"]
    res["merged"]["other_threads_dropped"] = sum(v for _, v in merged_all) - res["merged"]["samples"]

    def tvd(p, q):
        return sum(abs(x - y) for x, y in zip(p, q)) / 2

    res["tvd"] = {"merged": tvd(dists["truth"], dists["merged"]),
                  "sdk": tvd(dists["truth"], dists["sdk"]),
                  "merged_vs_truth_samples": tvd(res["truth_samples"]["shares"], dists["merged"])}
    res["under"] = {}
    for u in a.under:
        caller, _, native = u.partition("=")
        th, to = under(truth, caller, native)
        mh, mo = under(merged, caller, native)
        _, sh = shares(sdk, [caller])
        res["under"][u] = {
            "truth": to / th if th else None, "truth_samples": th,
            "merged": mo / mh if mh else None, "merged_samples": mh,
            "naive": sh[caller],
        }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
