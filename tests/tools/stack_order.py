#!/usr/bin/env python3
"""Counts the samples of folded stacks ("root;...;leaf VALUE", as `braid
convert --to folded` and scripts/pyroscope-top.sh --folded write them) whose
frames follow an order: of the stacks that hold a frame matching --has,
how many hold frames matching each --order pattern, root first, in that
order (each pattern matched by a frame rootward of the next one's frame).
Patterns are Python regular expressions searched in each frame's name.
Prints one JSON object:

  {"samples": S, "has": H, "ordered": O, "example": "root;...;leaf",
   "unordered": "root;...;leaf"}

S the samples of all stacks, H those of the stacks with a --has frame, O
those of them in order, and the heaviest ordered and not ordered stacks of
the --has ones ("" if none).

  stack_order.py FOLDED --has REGEX --order REGEX [--order REGEX ...]
"""
import argparse
import json
import re
import sys


def in_order(frames, patterns):
    i = 0
    for p in patterns:
        while i < len(frames) and not p.search(frames[i]):
            i += 1
        if i == len(frames):
            return False
        i += 1
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folded")
    ap.add_argument("--has", required=True)
    ap.add_argument("--order", action="append", required=True)
    a = ap.parse_args()
    has = re.compile(a.has)
    order = [re.compile(p) for p in a.order]
    total = with_has = ordered = 0
    best, best_v = "", -1
    worst, worst_v = "", -1
    with open(a.folded, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, value = line.rpartition(" ")
            try:
                v = int(value)
            except ValueError:
                sys.exit(f"stack_order.py: {a.folded}: not a folded line: {line[:200]}")
            total += v
            frames = stack.split(";")
            if not any(has.search(fr) for fr in frames):
                continue
            with_has += v
            if in_order(frames, order):
                ordered += v
                if v > best_v:
                    best, best_v = stack, v
            elif v > worst_v:
                worst, worst_v = stack, v
    print(json.dumps({"samples": total, "has": with_has, "ordered": ordered, "example": best,
                      "unordered": worst}))


if __name__ == "__main__":
    main()
