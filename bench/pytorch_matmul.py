#!/usr/bin/env python3
"""PyTorch reference for distill's matrix-product benchmark (crates/distill/benches/matmul.rs):
the f32 matrix products of bench/matmul_shapes.json (the MLP pair's layers, the CNN pair's
largest convolution as one im2col product, a 1024 square), median of --reps after a warm-up,
2 threads; the lhs is a transposed view where the shape says so (as autodiff passes it).

    python3 bench/pytorch_matmul.py [--reps 20]
Prints one JSON line per shape: median milliseconds and GFLOP/s. Versions: tools/requirements.txt.
"""
import json
import pathlib

import torch
from timing import bench_args, median_ms

a = bench_args()
shapes = json.loads((pathlib.Path(__file__).parent / "matmul_shapes.json").read_text())
for s in shapes:
    m, k, n = s["m"], s["k"], s["n"]
    lhs = torch.rand(k, m).t() if s["lhs_transposed"] else torch.rand(m, k)
    rhs = torch.rand(k, n)

    def run():
        with torch.no_grad():
            torch.matmul(lhs, rhs)

    ms = median_ms(run, a.reps)
    print(json.dumps({"impl": "pytorch", "shape": s["name"], "m": m, "k": k, "n": n,
                      "median_ms": round(ms, 4), "gflops": round(2 * m * k * n / ms / 1e6, 1)}))
