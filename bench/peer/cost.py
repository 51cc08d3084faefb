"""bench/peer.sh's cost table: the medians over rounds of each set-up's
figures, per sampling rate, and braid's against the OTel profiler's.

Input: one line a round, as bench/peer.sh writes them:
  setup hz round t0_ms t1_ms wall_ms node_cpu_ms python_cpu_ms
  braid_cpu_ms braid_bpf_ms braid_rss_kib braid_maps_kib braid_mapped_kib
  braid_life_cpu_ms braid_life_bpf_ms peer_cpu_ms peer_bpf_ms peer_rss_kib
  peer_maps_kib peer_mapped_kib peer_life_cpu_ms peer_life_bpf_ms life_t0_ms life_t1_ms braid_samples
  peer_samples
("-" where the set-up has no such agent). Prints the table, or JSON with
--json.
"""
import json
import statistics
import sys

COLS = ["setup", "hz", "round", "t0_ms", "t1_ms", "wall_ms", "node_cpu_ms", "python_cpu_ms",
        "braid_cpu_ms", "braid_bpf_ms", "braid_rss_kib", "braid_maps_kib", "braid_mapped_kib",
        "braid_life_cpu_ms", "braid_life_bpf_ms",
        "peer_cpu_ms", "peer_bpf_ms", "peer_rss_kib", "peer_maps_kib", "peer_mapped_kib",
        "peer_life_cpu_ms", "peer_life_bpf_ms", "life_t0_ms", "life_t1_ms",
        "braid_samples", "peer_samples"]
SETUPS = ["none", "braid", "otel", "both"]


def num(v):
    return None if v == "-" else float(v)


def median(rows, key):
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.median(vals) if vals else None


def agent_figures(rows, who, wall_s):
    cpu = median(rows, who + "_cpu_ms")
    if cpu is None:
        return None
    bpf = median(rows, who + "_bpf_ms")
    rss = median(rows, who + "_rss_kib")
    maps = median(rows, who + "_maps_kib")
    # the maps' pages it mapped are in both
    mem = statistics.median(r[who + "_rss_kib"] + r[who + "_maps_kib"] - r[who + "_mapped_kib"]
                            for r in rows)
    samples = median(rows, who + "_samples")
    # per round, so that the ratio's median is a round's
    per_cpu = [r[who + "_samples"] / ((r[who + "_life_cpu_ms"] + r[who + "_life_bpf_ms"]) / 1000.0)
               for r in rows if r[who + "_life_cpu_ms"] + r[who + "_life_bpf_ms"] > 0]
    return {
        "cpu_ms": cpu, "bpf_ms": bpf, "total_cpu_ms": cpu + bpf,
        "cpu_pct_of_core": 100.0 * (cpu + bpf) / 1000.0 / wall_s if wall_s else None,
        "rss_kib": rss, "maps_kib": maps, "mapped_kib": median(rows, who + "_mapped_kib"),
        "memory_kib": mem,
        "samples": samples,
        "samples_per_cpu_s": statistics.median(per_cpu) if per_cpu else None,
    }


def main():
    path = sys.argv[1]
    as_json = "--json" in sys.argv[2:]
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != len(COLS):
                sys.exit(f"bench/peer/cost.py: {path}: a line of {len(parts)} fields, not {len(COLS)}: {line!r}")
            r = {c: (p if c == "setup" else num(p)) for c, p in zip(COLS, parts)}
            rows.append(r)
    out = {}
    for hz in sorted({r["hz"] for r in rows}):
        at = [r for r in rows if r["hz"] == hz]
        base = median([r for r in at if r["setup"] == "none"], "wall_ms")
        res = {}
        for s in SETUPS:
            rs = [r for r in at if r["setup"] == s]
            if not rs:
                continue
            wall = median(rs, "wall_ms")
            wall_s = wall / 1000.0
            res[s] = {
                "rounds": len(rs),
                "wall_ms": wall,
                "slowdown_pct": 100.0 * (wall - base) / base if base else None,
                "node_cpu_ms": median(rs, "node_cpu_ms"),
                "python_cpu_ms": median(rs, "python_cpu_ms"),
                "braid": agent_figures(rs, "braid", wall_s),
                "otel": agent_figures(rs, "peer", wall_s),
            }
        ratios = {}
        b, o = (res.get("braid") or {}).get("braid"), (res.get("otel") or {}).get("otel")
        if b and o:
            ratios["alone"] = {
                "total_cpu": b["total_cpu_ms"] / o["total_cpu_ms"] if o["total_cpu_ms"] else None,
                "memory": b["memory_kib"] / o["memory_kib"] if o["memory_kib"] else None,
            }
        both = res.get("both") or {}
        if both.get("braid") and both.get("otel"):
            b, o = both["braid"], both["otel"]
            ratios["both"] = {
                "total_cpu": b["total_cpu_ms"] / o["total_cpu_ms"] if o["total_cpu_ms"] else None,
                "memory": b["memory_kib"] / o["memory_kib"] if o["memory_kib"] else None,
            }
        out[str(int(hz))] = {"setups": res, "braid_over_otel": ratios}
    if as_json:
        print(json.dumps(out, indent=1))
        return
    fmt = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
    for hz, h in out.items():
        print(f"\n{hz} Hz (medians over rounds; the window: cfi_chain's fixed work)")
        print(f"{'set-up':<7} {'agent':<6} {'wall ms':>8} {'slow %':>7} {'node ms':>8} {'py ms':>8} "
              f"{'cpu ms':>7} {'bpf ms':>7} {'total':>7} {'%core':>6} {'rss KiB':>8} {'maps KiB':>9} {'mem KiB':>8} "
              f"{'samples':>8} {'smp/cpu s':>10}")
        for s, f in h["setups"].items():
            agents = [(a, f[a]) for a in ("braid", "otel") if f[a]] or [("-", None)]
            for a, g in agents:
                print(f"{s:<7} {a:<6} {fmt(f['wall_ms']):>8} {fmt(f['slowdown_pct'], 1):>7} "
                      f"{fmt(f['node_cpu_ms']):>8} {fmt(f['python_cpu_ms']):>8} "
                      + (f"{fmt(g['cpu_ms']):>7} {fmt(g['bpf_ms']):>7} {fmt(g['total_cpu_ms']):>7} "
                         f"{fmt(g['cpu_pct_of_core'], 2):>6} {fmt(g['rss_kib']):>8} {fmt(g['maps_kib']):>9} {fmt(g['memory_kib']):>8} "
                         f"{fmt(g['samples']):>8} {fmt(g['samples_per_cpu_s']):>10}" if g else
                         f"{'-':>7} {'-':>7} {'-':>7} {'-':>6} {'-':>8} {'-':>9} {'-':>8} {'-':>8} {'-':>10}"))
        for k, rt in h["braid_over_otel"].items():
            tc, mem = rt["total_cpu"], rt["memory"]
            print(f"braid / otel ({k}): total CPU {fmt(tc, 2)} (target <= 1: "
                  f"{'ok' if tc is not None and tc <= 1 else 'ABOVE'}), memory (RSS + maps) {fmt(mem, 2)} "
                  f"(target <= 0.5: {'ok' if mem is not None and mem <= 0.5 else 'ABOVE'})")


if __name__ == "__main__":
    main()
