#!/usr/bin/env python3
"""Reference values and gradients for distill's loss tests, computed in float64 with PyTorch.

    pip install -r tools/requirements.txt
    python3 tools/gen_loss_fixtures.py      # writes crates/distill/fixtures/losses.json

Each loss below is the reference implementation it cites (the RepDistiller / mdistiller code,
reproduced line for line where the package is not installable from PyPI). Inputs are seeded.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20231127)
DT = torch.float64
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "distill", "fixtures", "losses.json")


def arr(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def case(name, fn, inputs, grad_wrt, params=None):
    leaves = {k: v.clone().to(DT).requires_grad_(k in grad_wrt) for k, v in inputs.items()}
    loss = fn(**leaves, **(params or {}))
    loss.backward()
    return {
        "name": name,
        "params": params or {},
        "inputs": {k: arr(v) for k, v in leaves.items()},
        "value": float(loss.detach()),
        "grads": {k: arr(leaves[k].grad) for k in grad_wrt},
    }


# RepDistiller distiller_zoo/KD.py (DistillKL)
def kd(student, teacher, temperature):
    p_s = F.log_softmax(student / temperature, dim=1)
    p_t = F.softmax(teacher / temperature, dim=1)
    return F.kl_div(p_s, p_t, reduction="sum") * temperature**2 / student.shape[0]


# RepDistiller distiller_zoo/FitNet.py (HintLoss) applied after the connector
def fitnet(student, teacher):
    return F.mse_loss(student, teacher)


def main():
    r = torch.randn
    fixtures = {
        "kd": [
            case("kd_b4_k10_T4", kd, {"student": r(4, 10) * 3, "teacher": r(4, 10) * 3}, ["student"], {"temperature": 4.0}),
            case("kd_b1_k5_T1", kd, {"student": r(1, 5), "teacher": r(1, 5) * 5}, ["student"], {"temperature": 1.0}),
            case("kd_b3_k7_T2_peaked", kd, {"student": r(3, 7), "teacher": r(3, 7) * 40}, ["student"], {"temperature": 2.0}),
        ],
        "fitnet": [
            case("fitnet_b2_c3_4x4", fitnet, {"student": r(2, 3, 4, 4), "teacher": r(2, 3, 4, 4)}, ["student"]),
            case("fitnet_b1_c2_3x3", fitnet, {"student": r(1, 2, 3, 3), "teacher": r(1, 2, 3, 3)}, ["student"]),
        ],
    }
    with open(OUT, "w") as f:
        json.dump(fixtures, f, indent=1)
        f.write("\n")
    print("wrote", OUT, "with torch", torch.__version__)


if __name__ == "__main__":
    main()
