#!/usr/bin/env python3
"""PyTorch reference for distill's encoding-throughput benchmark
(crates/distill/benches/encode_throughput.rs): the same work with Hugging Face's BertModel —
all-MiniLM-L6-v2's size (6 layers, width 384, 12 heads, intermediate 1536) and the 2-layer,
128-wide student (4 heads, intermediate 512) — encoding batches of full texts to mean-pooled,
L2-normalised embeddings (eval mode, no grad), 2 threads, freshly initialised weights.

    python3 bench/pytorch_encode.py [--batch 64] [--len 64] [--reps 10]
Prints one JSON line per model, as the Rust bench does. Versions: tools/requirements.txt.
"""
import json, os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from timing import bench_args, median_ms
from transformers import BertConfig, BertModel

a = bench_args(("--len", 64))

k = torch.arange(a.batch * a.len).reshape(a.batch, a.len)
pos = k % a.len
ids = 1000 + ((k * 7919 + pos * 104729) % 28000)
ids[:, 0] = 101
ids[:, -1] = 102
mask = torch.ones_like(ids)

for name, dim, layers, heads in [("minilm-l6 (teacher)", 384, 6, 12), ("bert 2×128 (student)", 128, 2, 4)]:
    cfg = BertConfig(vocab_size=30522, hidden_size=dim, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=4 * dim, max_position_embeddings=512, hidden_act="gelu")
    model = BertModel(cfg, add_pooling_layer=False).eval()

    def run():
        with torch.inference_mode():
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=1)
            assert torch.isfinite(e).all()

    ms = median_ms(run, a.reps)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"impl": "pytorch", "model": name, "params": params, "batch": a.batch, "len": a.len,
                      "median_ms": round(ms, 1), "texts_per_s": round(a.batch / (ms / 1e3), 1)}))
