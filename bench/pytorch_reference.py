#!/usr/bin/env python3
"""PyTorch reference for distill's KD-step benchmark (crates/distill/benches/kd_step.rs).

The same work: frozen teacher forward (eval mode, no grad) + student forward/backward + SGD
(momentum 0.9, dampening 0, weight decay 5e-4) update, CE(0.1) + KD(0.9, T=4), random inputs,
2 threads. Architectures match distill's zoo (RepDistiller's CIFAR ResNets; MLPs with ReLU).

    python3 bench/pytorch_reference.py --pair mlp|cnn|resnet|lm [--steps 30] [--warmup 3]
The lm pair: distill's gpt (4 blocks, width 128 -> 2 blocks, width 64) on 32 windows of 64 bytes, CE 0.1 + GKD 0.9.
"""
import argparse, json, math, resource, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    def __init__(self, depth, filters, classes, cin=3):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(cin, filters[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters[0])
        layers, c = [], filters[0]
        for s in range(3):
            for b in range(n):
                layers.append(Block(c, filters[s + 1], 2 if (s > 0 and b == 0) else 1))
                c = filters[s + 1]
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(filters[3], classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def mlp(widths):
    layers = [nn.Flatten()]
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def kd_objective(s_logits, t_logits, y, T=4.0):
    """CE 0.1 + KD 0.9 (batchmean KL, T² inside), the benchmarks' objective."""
    kd = F.kl_div(F.log_softmax(s_logits / T, 1), F.softmax(t_logits / T, 1), reduction="batchmean") * T * T
    return 0.1 * F.cross_entropy(s_logits, y) + 0.9 * kd


def cnn(widths, classes, cin=3):
    """distill's `cnn`: 3x3 conv + ReLU per width, max-pool 2 where the width changes and at the end."""
    layers, c = [], cin
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, 1, 1), nn.ReLU()]
        if i + 1 == len(widths) or widths[i + 1] != w:
            layers.append(nn.MaxPool2d(2))
        c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))


class GptBlock(nn.Module):
    """distill's `gpt` block: pre-norm, h + attn(ln1(h)), then h + mlp(ln2(h)), 4x GELU MLP."""
    def __init__(self, dim, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
    def forward(self, h, mask):
        x = self.ln1(h)
        h = h + self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))
class Gpt(nn.Module):
    """distill's `gpt`: token + learned position embeddings, blocks, final norm, linear head."""
    def __init__(self, vocab, context, dim, layers, heads):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(GptBlock(dim, heads) for _ in range(layers))
        self.ln_f, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)
    def forward(self, ids):
        b, l = ids.shape
        mask = torch.triu(torch.ones(l, l, dtype=torch.bool, device=ids.device), 1)
        h = self.tok(ids) + self.pos.weight[:l]
        for blk in self.blocks:
            h = blk(h, mask)
        return self.head(self.ln_f(h)).reshape(b * l, -1)
def gkd_objective(s_logits, t_logits, y, beta=0.5):
    """CE 0.1 + GKD 0.9 (TRL's generalized JSD, beta 0.5, T 1, mean over tokens), the lm pair's objective."""
    s, t = F.log_softmax(s_logits, -1), F.log_softmax(t_logits, -1)
    mix = torch.logsumexp(torch.stack([s + math.log(1 - beta), t + math.log(beta)]), dim=0)
    jsd = beta * F.kl_div(mix, t, reduction="none", log_target=True) + (1 - beta) * F.kl_div(mix, s, reduction="none", log_target=True)
    return 0.1 * F.cross_entropy(s_logits, y) + 0.9 * jsd.sum(-1).mean()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pair", default="mlp")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--cached", default="no", help="yes: teacher logits computed once and reused (student work alone)")
    ap.add_argument("--precision", default="f32", choices=["f32", "bf16", "f16"],
                    help="the student under torch.autocast in this dtype (f16: with a GradScaler); teacher and loss in f32, as distill's [train] precision")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.pair == "mlp":
        teacher, student, shape, classes = mlp([784, 1200, 1200, 10]), mlp([784, 256, 10]), (128, 1, 28, 28), 10
    elif a.pair == "cnn":
        teacher, student = cnn([64, 64, 128, 128, 256, 256], 10), cnn([32, 64, 128], 10)
        shape, classes = (64, 3, 32, 32), 10
    elif a.pair == "lm":
        teacher, student = Gpt(256, 64, 128, 4, 4), Gpt(256, 64, 64, 2, 2)
        shape, classes = (32, 64), 256
    else:
        teacher = ResNet(32, [32, 64, 128, 256], 100)
        student = ResNet(8, [32, 64, 128, 256], 100)
        shape, classes = (64, 3, 32, 32), 100
    teacher, student = teacher.to(a.device), student.to(a.device)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student.train()
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    if a.pair == "lm":
        x = torch.randint(0, classes, shape, device=a.device)
        y = torch.randint(0, classes, (shape[0] * shape[1],), device=a.device)
        objective = gkd_objective
    else:
        x = torch.randn(*shape, device=a.device)
        y = torch.arange(shape[0], device=a.device) % classes
        objective = kd_objective
    T = 4.0
    amp = {"f32": None, "bf16": torch.bfloat16, "f16": torch.float16}[a.precision]
    scaler = torch.amp.GradScaler(a.device) if a.precision == "f16" else None
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        if a.cached != "yes" or i == 0:
            with torch.no_grad():
                t_logits = teacher(x)
        with torch.autocast(device_type=a.device, dtype=amp or torch.float32, enabled=amp is not None):
            s_logits = student(x)
        s_logits = s_logits.float()
        loss = objective(s_logits, t_logits, y) if a.pair == "lm" else objective(s_logits, t_logits, y, T)
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        float(loss.detach())
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch", "cached": a.cached == "yes", "torch": torch.__version__, "device": a.device, "pair": a.pair, "batch": shape[0], "steps": a.steps,
                      "median_ms": round(times[len(times) // 2], 3), "mean_ms": round(sum(times) / len(times), 3), "peak_mb": round(peak, 1), "precision": a.precision}))


if __name__ == "__main__":
    main()
