#!/usr/bin/env python3
"""PyTorch reference for distill's convolution-parts benchmark
(crates/distill/benches/conv_parts.rs): every 3×3 convolution of the KD-step CNN pair (teacher
64-64-128-128-256-256, student 32-64-128, 3×32×32 inputs, batch 64), timed as its forward alone,
forward + input gradient, and forward + weight (and bias) gradient through autograd, plus each
ReLU + 2×2 max-pool forward + backward; 2 threads.

    python3 bench/pytorch_conv.py [--batch 64] [--reps 10]
Prints one JSON line per layer and part, as the Rust bench does. Versions: tools/requirements.txt.
"""
import json

import torch
import torch.nn.functional as F
from timing import bench_args, median_ms

a = bench_args()

# (model, in channels, out channels, side, max-pooled after): the Rust bench's LAYERS
LAYERS = [
    ("teacher", 3, 64, 32, False),
    ("teacher", 64, 64, 32, True),
    ("teacher", 64, 128, 16, False),
    ("teacher", 128, 128, 16, True),
    ("teacher", 128, 256, 8, False),
    ("teacher", 256, 256, 8, True),
    ("student", 3, 32, 32, True),
    ("student", 32, 64, 16, True),
    ("student", 64, 128, 8, True),
]


def line(model, cin, cout, side, part, ms):
    print(json.dumps({"impl": "pytorch", "backend": "cpu", "model": model,
                      "layer": f"{cin}->{cout} @{side}x{side}", "part": part,
                      "batch": a.batch, "median_ms": round(ms, 3)}))


for model, cin, cout, side, pooled in LAYERS:
    x = torch.rand(a.batch, cin, side, side) * 2 - 1
    w = (torch.rand(cout, cin, 3, 3) * 2 - 1) * 0.1
    b = torch.rand(cout) * 2 - 1

    def forward():
        with torch.no_grad():
            F.conv2d(x, w, b, padding=1)

    line(model, cin, cout, side, "forward", median_ms(forward, a.reps))
    for part, leaves in (("forward + input grad", "x"), ("forward + weight grad", "wb")):
        xa = x.clone().requires_grad_("x" in leaves)
        wa = w.clone().requires_grad_("w" in leaves)
        ba = b.clone().requires_grad_("b" in leaves)

        def backward():
            F.conv2d(xa, wa, ba, padding=1).sum().backward()
            for t in (xa, wa, ba):
                t.grad = None

        line(model, cin, cout, side, part, median_ms(backward, a.reps))
    if pooled:
        h = (torch.rand(a.batch, cout, side, side) * 2 - 1).requires_grad_()

        def pool():
            F.max_pool2d(F.relu(h), 2).sum().backward()
            h.grad = None

        line(model, cin, cout, side, "relu + max-pool, forward + backward", median_ms(pool, a.reps))
