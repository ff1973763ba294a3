#!/usr/bin/env bash
# The KD-step benchmark on an NVIDIA GPU: distill's `cuda` backend vs PyTorch on CUDA, same work
# as scripts/bench.sh's step table (MLP and CNN pairs; --resnet adds resnet32x4 -> resnet8x4),
# then the data-parallel path on every visible GPU (one device exercises it too). Needs the CUDA
# toolkit, a PyTorch build with CUDA, and network access for the cuda feature's build (Tracel's
# LLVM bundle). Prints the card and the ratio distill / PyTorch per pair.
#   bash scripts/bench-gpu.sh [STEPS] [--resnet]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=30
PAIRS="mlp cnn"
for a in "$@"; do
  case "$a" in
    --resnet) PAIRS="$PAIRS resnet" ;;
    *) STEPS="$a" ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/distill-target}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
cargo bench -p distill --features cuda --bench kd_step --no-run -q
printf "%-8s %-10s %12s %12s %10s\n" pair impl median_ms mean_ms ratio
for pair in $PAIRS; do
  d=$(cargo bench -q -p distill --features cuda --bench kd_step -- --pair "$pair" --steps "$STEPS" --backend cuda)
  p=$(python3 bench/pytorch_reference.py --pair "$pair" --steps "$STEPS" --device cuda)
  python3 - "$d" "$p" <<'PY'
import json, sys
d, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for r in (p, d):
    ratio = "" if r is p else f"{d['median_ms'] / p['median_ms']:.2f}x"
    print(f"{r['pair']:<8} {r['impl']:<10} {r['median_ms']:>12.2f} {r['mean_ms']:>12.2f} {ratio:>10}")
PY
done
# Data-parallel path: the quickstart recipe on every visible GPU through [distributed].
n=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
devices=$(seq -s, 0 $((n - 1)))
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
sed -e 's/^name = "quickstart"/name = "ddp"\nbackend = "cuda"/' configs/quickstart.toml > "$WORK/ddp.toml"
printf '\n[distributed]\ndevices = [%s]\n' "$devices" >> "$WORK/ddp.toml"
sed -i 's/^seeds = \[1, 2, 3\]/seeds = [1]/; s/^epochs = 12/epochs = 2/' "$WORK/ddp.toml"
cargo run --release -q -p distill-cli --features cuda -- train "$WORK/ddp.toml" --out "$WORK/run" --no-progress
