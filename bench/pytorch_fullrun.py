#!/usr/bin/env python3
"""PyTorch reference for the full-run benchmark (bench/fullrun/kd.toml): the same KD training of
the 784-256-10 student from a frozen 784-1200-1200-10 teacher on the full Fashion-MNIST, as a
PyTorch user would write it (TensorDataset + DataLoader, eval mode teacher under no_grad),
including reading the IDX files, normalising, a test evaluation after every epoch and saving
the student. The teacher's weights do not change the work, so it is not loaded from distill's
checkpoint. 2 threads.

Three ways a PyTorch user writes the loop (--variant):
  dataloader   TensorDataset + DataLoader(shuffle=True), the teacher run on every batch;
  index        batches cut from the tensors by a shuffled index (no DataLoader collation);
  precomputed  index batching, and the teacher's logits computed once before training (what
               distill's teacher cache does).

    python3 bench/pytorch_fullrun.py [--epochs 3] [--variant dataloader|index|precomputed]
                                     [--data /usr/share/datasets/fashion-mnist]
"""
import argparse, gzip, json, math, os, resource, tempfile, time

import numpy as np
import torch

from pytorch_reference import kd_objective, mlp


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", default="dataloader", choices=["dataloader", "index", "precomputed"])
    a = ap.parse_args()
    t0 = time.perf_counter()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    xtr = idx(os.path.join(a.data, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    ytr = idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    xte = idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    yte = idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    mean, std = xtr.mean(), xtr.std()
    xtr = torch.from_numpy((xtr - mean) / std).unsqueeze(1)
    xte = torch.from_numpy((xte - mean) / std).unsqueeze(1)
    ytr_t = torch.from_numpy(ytr)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xtr, ytr_t), batch_size=128, shuffle=True)
    test = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xte, torch.from_numpy(yte)), batch_size=512)
    teacher, student = mlp([784, 1200, 1200, 10]), mlp([784, 256, 10])
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    total = a.epochs * len(train)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t / total, 1.0))))
    T = 4.0
    acc = 0.0
    precomputed = None
    if a.variant == "precomputed":
        with torch.no_grad():
            precomputed = torch.cat([teacher(xtr[i:i + 1024]) for i in range(0, len(xtr), 1024)])

    def batches():
        if a.variant == "dataloader":
            for x, y in train:
                yield x, y, None
            return
        order = torch.randperm(len(xtr))
        for i in range(0, len(order), 128):
            idx_b = order[i:i + 128]
            yield xtr[idx_b], ytr_t[idx_b], None if precomputed is None else precomputed[idx_b]

    for _ in range(a.epochs):
        student.train()
        for x, y, t_logits in batches():
            if t_logits is None:
                with torch.no_grad():
                    t_logits = teacher(x)
            s_logits = student(x)
            loss = kd_objective(s_logits, t_logits, y, T)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            float(loss.detach())
        student.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test:
                correct += int((student(x).argmax(1) == y).sum())
        acc = correct / len(yte)
        with tempfile.TemporaryDirectory() as d:
            torch.save(student.state_dict(), os.path.join(d, "student.pt"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch", "variant": a.variant, "torch": torch.__version__, "epochs": a.epochs, "wall_s": round(time.perf_counter() - t0, 2),
                      "peak_mb": round(peak, 1), "test_acc": acc}))


if __name__ == "__main__":
    main()
