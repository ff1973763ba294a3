#!/usr/bin/env python3
"""A results table from a run's log when the run was stopped before it wrote results.md (a time
limit on a lent GPU): the last-epoch line of every seed that finished, per recipe, as mean ±
sample std of test perplexity, next-token accuracy and agreement with the teacher.

    python3 scripts/log-table.py TRAIN.LOG EPOCHS > results-partial.md
"""
import re
import statistics
import sys

path, epochs = sys.argv[1], int(sys.argv[2])
line = re.compile(
    r"^(?P<name>.+) seed (?P<seed>\d+): epoch %d/%d .* test ppl (?P<ppl>[\d.]+) token acc (?P<acc>[\d.]+)%% agree (?P<agree>[\d.]+)%%"
    % (epochs, epochs)
)
rows = {}
for text in open(path, encoding="utf-8"):
    m = line.match(text.strip())
    if m:
        rows.setdefault(m["name"], []).append((int(m["seed"]), float(m["ppl"]), float(m["acc"]), float(m["agree"])))


def fmt(values, digits):
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


print(f"Partial table from `{path.split('/')[-1]}`: last epoch ({epochs}) of every seed that finished before the time limit.\n")
print("| recipe | seeds | last test ppl | last test token acc % | agreement w/ teacher % |")
print("|---|---|---:|---:|---:|")
for name, runs in rows.items():
    seeds = ",".join(str(s) for s, *_ in runs)
    print(f"| {name} | {seeds} | {fmt([r[1] for r in runs], 3)} | {fmt([r[2] for r in runs], 2)} | {fmt([r[3] for r in runs], 2)} |")
