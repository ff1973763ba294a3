#!/usr/bin/env python3
"""Runs a command and prints its wall time and peak resident memory (of the process tree's
largest member) as JSON: python3 bench/measure.py LABEL -- CMD ARGS..."""
import json, resource, subprocess, sys, time

label, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
t0 = time.perf_counter()
rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
print(json.dumps({"label": label, "rc": rc, "wall_s": round(wall, 2), "peak_mb": round(peak, 1)}))
sys.exit(rc)
