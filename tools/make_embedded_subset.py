#!/usr/bin/env python3
"""Writes the stratified Fashion-MNIST subset embedded in distill (crates/distill/data/).

Source: Debian package `dataset-fashion-mnist` (Zalando Research, MIT licence), read from
/usr/share/datasets/fashion-mnist/. Pure standard library; deterministic (seeded).

    apt-get install -y dataset-fashion-mnist
    python3 tools/make_embedded_subset.py --train-per-class 500 --test-per-class 200
"""
import argparse, gzip, os, random, struct

SRC = "/usr/share/datasets/fashion-mnist"
DST = os.path.join(os.path.dirname(__file__), "..", "crates", "distill", "data")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def write_idx(path, magic_type, dims, payload):
    header = struct.pack(">I", (magic_type << 8) | len(dims)) + struct.pack(">" + "I" * len(dims), *dims)
    # mtime=0 keeps the file byte-identical across runs.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(header + payload)


def subset(split, per_class, seed):
    idims, images = read_idx(f"{SRC}/{split}-images-idx3-ubyte.gz")
    _, labels = read_idx(f"{SRC}/{split}-labels-idx1-ubyte.gz")
    n, h, w = idims
    by_class = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    rng = random.Random(seed)
    chosen = []
    for y in sorted(by_class):
        chosen += rng.sample(by_class[y], per_class)
    rng.shuffle(chosen)
    img = b"".join(images[i * h * w : (i + 1) * h * w] for i in chosen)
    lab = bytes(labels[i] for i in chosen)
    write_idx(f"{DST}/{split}-images-idx3-ubyte.gz", 0x08, (len(chosen), h, w), img)
    write_idx(f"{DST}/{split}-labels-idx1-ubyte.gz", 0x08, (len(chosen),), lab)
    print(split, len(chosen), "images")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--test-per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2023)
    a = ap.parse_args()
    os.makedirs(DST, exist_ok=True)
    subset("train", a.train_per_class, a.seed)
    subset("t10k", a.test_per_class, a.seed + 1)
