#!/usr/bin/env python3
"""Fixtures for distill's PyTorch/safetensors import and export tests.

    pip install -r tools/requirements.txt
    python3 tools/gen_import_fixtures.py          # writes crates/distill/fixtures/import/
    python3 tools/gen_import_fixtures.py --check-export DIR/model.safetensors
                                                  # loads a `distill export` of the resnet8
                                                  # fixture into the PyTorch model (strict) and
                                                  # checks its logits against the fixture's

The models are RepDistiller's WRN (models/wrn.py) and VGG with batch norm (models/vgg.py),
written out here from their description, torchvision's MobileNetV2 (checked against the names and shapes of its ImageNet
weights when scripts/fetch-data.sh mobilenet-v2 installed them) and RepDistiller's CIFAR ResNet (models/resnet.py of HobbitLong/RepDistiller: 3x3
stem conv + BN + ReLU, three stages of basic blocks, a 1x1 conv + BN shortcut where the shape
changes, global average pooling, a linear head), written out here from its description.
Weights and batch-norm statistics are random (seeded); the model runs in eval mode.
Writes:
  resnet8.pth           state dict saved by torch.save
  resnet8.safetensors   the same tensors
  resnet8-training.pth  the same state dict nested as RepDistiller's train_teacher.py saves
                        it: {"epoch", "model": state_dict, "best_acc", "optimizer": SGD state
                        with momentum buffers}
  resnet8.json          two inputs [2, 3, 32, 32] and the logits PyTorch computes for them
  mobilenetv2_x0_25.pth torchvision's MobileNetV2 at width 0.25, 10 classes (random weights),
                        saved in the legacy non-zip format of torchvision's own weights file
  mobilenetv2_x0_25.json  the same two inputs and its logits
  wrn_16_2.pth, vgg8.pth.gz  RepDistiller's WRN-16-2 and VGG-8 (batch norm), random weights
                        (VGG-8's rounded to multiples of 1/64 and the file gzipped, to keep it
                        small)
  wrn_16_2.json, vgg8.json  the same two inputs and their logits
  mobile_half.pth, .json  RepDistiller's CIFAR MobileNetV2 (mobile_half), random weights, and
                        its logits
  shufflev2.pth.gz, .json  RepDistiller's CIFAR ShuffleNet V2 (ShuffleV2), random weights
                        (rounded, gzipped), and its logits
  keys.json             state-dict names and shapes of resnet8 … resnet110, resnet8x4,
                        resnet32x4, wrn_{16,40}_{1,2}, vgg{8,11,13,16,19}, mobilenetv2 and
                        mobilenetv2_x0_25 (10 classes), what an export must write
"""
import argparse
import gzip
import io
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "distill", "fixtures", "import")


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(out + res)


class ResNet(nn.Module):
    def __init__(self, depth, filters, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, filters[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters[0])
        cin = filters[0]
        for s in range(3):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(cin, filters[s + 1], 2 if s > 0 and b == 0 else 1))
                cin = filters[s + 1]
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(filters[3], classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean(dim=(2, 3)))


def divisible(v, d=8):
    r = max(d, int(v + d / 2) // d * d)
    return r + d if r < 0.9 * v else r


def conv_bn(cin, cout, k, stride, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU6()] if relu else []))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [conv_bn(cin, hidden, 1, 1)] if t != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (torchvision/models/mobilenetv2.py), same module names."""

    def __init__(self, width=1.0, classes=1000):
        super().__init__()
        cin = divisible(32 * width)
        last = divisible(1280 * max(1.0, width))
        features = [conv_bn(3, cin, 3, 2)]
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                features.append(InvertedResidual(cin, divisible(c * width), s if i == 0 else 1, t))
                cin = divisible(c * width)
        features.append(conv_bn(cin, last, 1, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class WrnBlock(nn.Module):
    """RepDistiller's models/wrn.py BasicBlock (dropout 0): pre-activation; where the width
    changes, the shortcut is a 1x1 convolution of the activated input."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.convShortcut = None if self.equal else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        act = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(act))))
        return (x if self.equal else self.convShortcut(act)) + out


class WrnStage(nn.Module):
    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WrnBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                     for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    """RepDistiller's models/wrn.py WideResNet: depth 6n + 4, filters 16 * [1, k, 2k, 4k]."""

    def __init__(self, depth, k, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        w = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False)
        self.block1 = WrnStage(n, w[0], w[1], 1)
        self.block2 = WrnStage(n, w[1], w[2], 2)
        self.block3 = WrnStage(n, w[2], w[3], 2)
        self.bn1 = nn.BatchNorm2d(w[3])
        self.relu = nn.ReLU()
        self.fc = nn.Linear(w[3], classes)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        return self.fc(F.avg_pool2d(out, 8).flatten(1))


class CifarInvertedResidual(nn.Module):
    """RepDistiller's models/mobilenetv2.py InvertedResidual: 1x1 expansion (also for t = 1),
    3x3 depthwise, 1x1 projection, BN after each, ReLU after the first two."""

    def __init__(self, cin, cout, stride, t):
        super().__init__()
        h = cin * t
        self.use_res_connect = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, h, 1, 1, 0, bias=False), nn.BatchNorm2d(h), nn.ReLU(),
            nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU(),
            nn.Conv2d(h, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class CifarMobileNetV2(nn.Module):
    """RepDistiller's models/mobilenetv2.py MobileNetV2 (mobile_half: T = 6, width 0.5)."""

    def __init__(self, T=6, width=0.5, classes=10):
        super().__init__()
        cin = int(32 * width)
        self.conv1 = nn.Sequential(nn.Conv2d(3, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU())
        self.blocks = nn.ModuleList([])
        for t, c, n, s in [[1, 16, 1, 1], [T, 24, 2, 1], [T, 32, 3, 2], [T, 64, 4, 2],
                           [T, 96, 3, 1], [T, 160, 3, 2], [T, 320, 1, 1]]:
            layers = []
            for stride in [s] + [1] * (n - 1):
                layers.append(CifarInvertedResidual(cin, int(c * width), stride, t))
                cin = int(c * width)
            self.blocks.append(nn.Sequential(*layers))
        last = int(1280 * width) if width > 1.0 else 1280
        self.conv2 = nn.Sequential(nn.Conv2d(cin, last, 1, 1, 0, bias=False), nn.BatchNorm2d(last), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(last, classes))

    def forward(self, x):
        out = self.conv1(x)
        for b in self.blocks:
            out = b(out)
        out = F.avg_pool2d(self.conv2(out), x.shape[2] // 16, ceil_mode=True)
        return self.classifier(out.flatten(1))


def channel_shuffle(x):
    n, c, h, w = x.shape
    return x.view(n, 2, c // 2, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class ShuffleBasic(nn.Module):
    """RepDistiller's models/ShuffleNetv2.py BasicBlock (split ratio 0.5)."""

    def __init__(self, c):
        super().__init__()
        c //= 2
        self.conv1, self.bn1 = nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False), nn.BatchNorm2d(c)
        self.conv3, self.bn3 = nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        c = x.shape[1] // 2
        x1, x2 = x[:, :c], x[:, c:]
        out = F.relu(self.bn1(self.conv1(x2)))
        out = F.relu(self.bn3(self.conv3(self.bn2(self.conv2(out)))))
        return channel_shuffle(torch.cat([x1, out], 1))


class ShuffleDown(nn.Module):
    """RepDistiller's models/ShuffleNetv2.py DownBlock."""

    def __init__(self, cin, cout):
        super().__init__()
        mid = cout // 2
        self.conv1, self.bn1 = nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False), nn.BatchNorm2d(cin)
        self.conv2, self.bn2 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv4, self.bn4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False), nn.BatchNorm2d(mid)
        self.conv5, self.bn5 = nn.Conv2d(mid, mid, 1, bias=False), nn.BatchNorm2d(mid)

    def forward(self, x):
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = self.bn4(self.conv4(F.relu(self.bn3(self.conv3(x)))))
        right = F.relu(self.bn5(self.conv5(right)))
        return channel_shuffle(torch.cat([left, right], 1))


class ShuffleV2(nn.Module):
    """RepDistiller's models/ShuffleNetv2.py ShuffleNetV2 at net size 1 (ShuffleV2)."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 24, 1, bias=False), nn.BatchNorm2d(24)
        cin = 24
        for i, (c, n) in enumerate(zip((116, 232, 464), (3, 7, 3))):
            setattr(self, f"layer{i + 1}", nn.Sequential(ShuffleDown(cin, c), *[ShuffleBasic(c) for _ in range(n)]))
            cin = c
        self.conv2, self.bn2 = nn.Conv2d(464, 1024, 1, bias=False), nn.BatchNorm2d(1024)
        self.linear = nn.Linear(1024, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


VGG_CONVS = {8: [1, 1, 1, 1, 1], 11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3],
             19: [2, 2, 4, 4, 4]}


class Vgg(nn.Module):
    """RepDistiller's models/vgg.py VGG with batch_norm=True: blocks of conv(bias)-BN-ReLU with
    the block's last ReLU applied outside it; max-pooling after blocks 0-2 (and 3 for 64x64
    inputs); adaptive average pooling; a linear classifier."""

    def __init__(self, depth, classes=10):
        super().__init__()
        cin = 3
        for b, (n, c) in enumerate(zip(VGG_CONVS[depth], [64, 128, 256, 512, 512])):
            layers = []
            for _ in range(n):
                layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
                cin = c
            setattr(self, f"block{b}", nn.Sequential(*layers[:-1]))
        self.pool = nn.MaxPool2d(2, 2)
        self.classifier = nn.Linear(512, classes)

    def forward(self, x):
        h = x.shape[2]
        for b in range(5):
            x = F.relu(getattr(self, f"block{b}")(x))
            if b < 3 or (b == 3 and h == 64):
                x = self.pool(x)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


ZOO = {
    **{f"resnet{d}": (d, [16, 16, 32, 64]) for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": (8, [32, 64, 128, 256]),
    "resnet32x4": (32, [32, 64, 128, 256]),
}


def randomise_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                # non-trivial statistics and affine terms, so that a swapped or skipped tensor shows
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def resnet8():
    torch.manual_seed(20261128)
    return randomise_bn(ResNet(*ZOO["resnet8"]))


def mobilenet():
    torch.manual_seed(20261129)
    return randomise_bn(MobileNetV2(0.25, 10))


def wrn_16_2():
    torch.manual_seed(20261130)
    return randomise_bn(WideResNet(16, 2))


def mobile_half():
    torch.manual_seed(20261132)
    return randomise_bn(CifarMobileNetV2())


def rounded(net):
    """The net with its weight matrices and kernels rounded to multiples of 1/64, so that its
    state dict gzips to about a tenth (most weights become 0 or +-1/64; the biases and batch
    norm stay random)."""
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                p.copy_(torch.round(p * 64) / 64)
    return net


def shufflev2():
    torch.manual_seed(20261133)
    return rounded(randomise_bn(ShuffleV2()))


def vgg8():
    """VGG-8, rounded: its 15.7 MB state dict gzips to 1.6 MB."""
    torch.manual_seed(20261131)
    return rounded(randomise_bn(Vgg(8)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-export")
    args = ap.parse_args()
    model = resnet8()
    if args.check_export:
        with open(os.path.join(OUT, "resnet8.json")) as f:
            fx = json.load(f)
        exported = ResNet(*ZOO["resnet8"]).eval()
        exported.load_state_dict(load_file(args.check_export), strict=True)
        x = torch.tensor(fx["inputs"]["data"]).reshape(fx["inputs"]["shape"])
        got = exported(x)
        want = torch.tensor(fx["logits"]["data"]).reshape(fx["logits"]["shape"])
        err = (got - want).abs().max().item()
        print(f"export loads with strict=True; max |logit difference| = {err:.2e}")
        raise SystemExit(0 if err <= 1e-4 else 1)
    os.makedirs(OUT, exist_ok=True)
    state = model.state_dict()
    torch.save(state, os.path.join(OUT, "resnet8.pth"))
    # RepDistiller's train_teacher.py layout, with the SGD momentum buffers of one step at
    # lr = 0 (weights unchanged; the model is in eval mode, so the statistics are too)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    model(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))).sum().backward()
    opt.step()
    opt.zero_grad()
    torch.save(
        {"epoch": 240, "model": state, "best_acc": 0.0, "optimizer": opt.state_dict()},
        os.path.join(OUT, "resnet8-training.pth"),
    )
    save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(OUT, "resnet8.safetensors"))
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        logits = model(x)
    arr = lambda t: {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}
    with open(os.path.join(OUT, "resnet8.json"), "w") as f:
        json.dump({"model": "resnet8", "inputs": arr(x), "logits": arr(logits)}, f)
    # MobileNetV2 at width 0.25, saved in the legacy (pre-1.6, non-zip) format that
    # torchvision's own mobilenet_v2-b0353104.pth uses (its bytes differ between runs, as the
    # format names storages by their memory address; the tensors and the logits do not)
    mnv2 = mobilenet()
    torch.save(mnv2.state_dict(), os.path.join(OUT, "mobilenetv2_x0_25.pth"),
               _use_new_zipfile_serialization=False)
    with torch.no_grad():
        mlogits = mnv2(x)
    with open(os.path.join(OUT, "mobilenetv2_x0_25.json"), "w") as f:
        json.dump({"model": "mobilenetv2_x0_25", "inputs": arr(x), "logits": arr(mlogits)}, f)
    # RepDistiller's WRN and VGG: wrn_16_2 and vgg8 with random weights, as .pth (vgg8's
    # gzipped, with a fixed header time; the test unpacks it)
    for name, make in [("wrn_16_2", wrn_16_2), ("vgg8", vgg8), ("mobile_half", mobile_half),
                       ("shufflev2", shufflev2)]:
        net = make()
        if name in ("vgg8", "shufflev2"):
            buf = io.BytesIO()
            torch.save(net.state_dict(), buf)
            with open(os.path.join(OUT, f"{name}.pth.gz"), "wb") as f:
                f.write(gzip.compress(buf.getvalue(), compresslevel=9, mtime=0))
        else:
            torch.save(net.state_dict(), os.path.join(OUT, f"{name}.pth"))
        with torch.no_grad():
            out = net(x)
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump({"model": name, "inputs": arr(x), "logits": arr(out)}, f)
    keys = {
        name: {k: list(v.shape) for k, v in ResNet(*spec).state_dict().items()}
        for name, spec in ZOO.items()
    }
    for d, k in [(16, 1), (16, 2), (40, 1), (40, 2)]:
        keys[f"wrn_{d}_{k}"] = {n: list(v.shape) for n, v in WideResNet(d, k).state_dict().items()}
    keys["shufflev2"] = {n: list(v.shape) for n, v in ShuffleV2().state_dict().items()}
    keys["mobile_half"] = {n: list(v.shape) for n, v in CifarMobileNetV2().state_dict().items()}
    for d in VGG_CONVS:
        keys[f"vgg{d}"] = {n: list(v.shape) for n, v in Vgg(d).state_dict().items()}
    for name, width in [("mobilenetv2", 1.0), ("mobilenetv2_x0_25", 0.25)]:
        keys[name] = {k: list(v.shape) for k, v in MobileNetV2(width, 10).state_dict().items()}
    # the replica has torchvision's names and shapes (when scripts/fetch-data.sh mobilenet-v2
    # installed the real weights)
    real = "/usr/share/datasets/mobilenet-v2/mobilenet_v2-b0353104.pth"
    if os.path.exists(real):
        want = {k: list(v.shape) for k, v in torch.load(real, weights_only=True).items()}
        got = {k: list(v.shape) for k, v in MobileNetV2(1.0, 1000).state_dict().items()}
        assert got == want, "the MobileNetV2 replica differs from torchvision's state dict"
        print("MobileNetV2 replica: the names and shapes of torchvision's ImageNet weights")
    with open(os.path.join(OUT, "keys.json"), "w") as f:
        json.dump(keys, f, indent=0, sort_keys=True)


if __name__ == "__main__":
    main()
