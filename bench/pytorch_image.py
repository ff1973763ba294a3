#!/usr/bin/env python3
"""PyTorch reference for distill's image-throughput benchmark
(crates/distill/benches/image_throughput.rs): the same work in PyTorch — torchvision's
MobileNetV2 (the replica in tools/gen_import_fixtures.py, same modules; torchvision itself is
not needed) at 112×112 and 224×224, and the student CNN (3×3 convolutions 32-64-128 with ReLU,
2×2 max-pooling after each, global average pooling, a 1000-way linear head) on 28×28 grey
images — classifying batches (eval mode, no grad), 2 threads, freshly initialised weights.

    python3 bench/pytorch_image.py [--batch 64] [--reps 10]
Prints one JSON line per model, as the Rust bench does. Versions: tools/requirements.txt.
"""
import json, os, sys

import torch
import torch.nn as nn
from timing import bench_args, median_ms

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from gen_import_fixtures import MobileNetV2  # noqa: E402

a = bench_args()


def cnn(widths=(32, 64, 128), cin=1, classes=1000):
    layers = []
    for c in widths:
        layers += [nn.Conv2d(cin, c, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2)]
        cin = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


for name, model, (c, h, w) in [("mobilenetv2 (teacher)", MobileNetV2(), (3, 112, 112)),
                               ("mobilenetv2 (teacher)", MobileNetV2(), (3, 224, 224)),
                               ("cnn 32-64-128 (student)", cnn(), (1, 28, 28))]:
    model = model.eval()
    k = torch.arange(a.batch * c * h * w, dtype=torch.float64)
    x = (((k * 7919) % 255) / 255.0 - 0.5).float().reshape(a.batch, c, h, w)

    def run():
        with torch.inference_mode():
            pred = model(x).argmax(1)
        assert pred.shape[0] == a.batch

    ms = median_ms(run, a.reps)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps({"impl": "pytorch", "model": name, "input": f"{c}x{h}x{w}", "params": params,
                      "batch": a.batch, "median_ms": round(ms, 1),
                      "images_per_s": round(a.batch / (ms / 1e3), 1)}))
