#!/usr/bin/env python3
"""Compares the method ordering of a distill sweep with the anchors' CIFAR-100 table.

    python3 scripts/anchor_order.py results/fashion-mnist-resnet/results.json

The reference column is RepDistiller's / mdistiller's published CIFAR-100 top-1 for
resnet56 -> resnet20 (../shared/docs/anchors.md), the anchors' closest pair to resnet20 ->
resnet8. Prints a Markdown table (each method's gain over the student trained alone, here and
there, and its rank in both) and Spearman's rank correlation over the shared methods.
Standard library only.
"""
import json
import sys

# RepDistiller README (student alone, KD ... CRD) and mdistiller README (DKD), res56 -> res20.
ANCHOR = {
    "student (scratch)": 69.06, "KD": 70.66, "FitNet": 69.21, "AT": 70.55, "SP": 69.67,
    "CC": 69.63, "VID": 70.38, "RKD": 69.61, "PKT": 70.34, "AB": 69.47, "FT": 69.84,
    "FSP": 69.95, "NST": 69.60, "CRD": 71.16, "DKD": 71.97,
}


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: -values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):  # average ranks for ties
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb)


def main(path):
    rows = json.load(open(path))["rows"]
    ours = {}
    for r in rows:
        name = r["name"].split(" · ", 1)[-1]
        if "[" in name or name == "teacher":
            continue  # diverged/collapsed seeds or the teacher
        ours[name] = 100 * r["best"][0]
    shared = [m for m in ANCHOR if m in ours]
    base_ours, base_ref = ours["student (scratch)"], ANCHOR["student (scratch)"]
    a = [ours[m] for m in shared]
    b = [ANCHOR[m] for m in shared]
    ra, rb = ranks(a), ranks(b)
    print("| method | here: best % | gain over scratch | rank | CIFAR-100 res56→res20 | gain | rank |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, x, y, p, q in sorted(zip(shared, a, b, ra, rb), key=lambda t: t[3]):
        print(f"| {m} | {x:.2f} | {x - base_ours:+.2f} | {p:g} | {y:.2f} | {y - base_ref:+.2f} | {q:g} |")
    print(f"\nSpearman rank correlation over {len(shared)} methods: {spearman(a, b):.2f}")
    missing = [m for m in ANCHOR if m not in ours]
    if missing:
        print("not in this table (diverged, collapsed or absent): " + ", ".join(missing))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/fashion-mnist-resnet/results.json")
