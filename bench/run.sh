#!/usr/bin/env bash
# Runs distill's KD-step benchmark and the PyTorch reference in one go, 2 threads each, and
# prints the ratio distill / PyTorch (below 1 means distill is faster). Not part of CI.
#   bash bench/run.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-30}"
python3 -c "import torch" 2>/dev/null || pip install -q -r tools/requirements.txt
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/distill-target}"
cargo bench -p distill --bench kd_step --no-run -q
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2
printf "%-8s %-10s %12s %12s %10s %10s\n" pair impl median_ms mean_ms peak_MB ratio
for pair in mlp resnet; do
  d=$(cargo bench -q -p distill --bench kd_step -- --pair "$pair" --steps "$STEPS")
  p=$(python3 bench/pytorch_reference.py --pair "$pair" --steps "$STEPS")
  python3 - "$d" "$p" <<'PY'
import json, sys
d, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for r in (p, d):
    ratio = "" if r is p else f"{d['median_ms'] / p['median_ms']:.2f}x"
    print(f"{r['pair']:<8} {r['impl']:<10} {r['median_ms']:>12.2f} {r['mean_ms']:>12.2f} {r['peak_mb']:>10.1f} {ratio:>10}")
PY
done
