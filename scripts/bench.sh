#!/usr/bin/env bash
# distill vs PyTorch on this machine, in one run, 2 threads each (not part of CI):
#  1. one offline KD training step (teacher forward + student forward/backward + SGD), median of
#     STEPS steps, for the MLP pair (784-1200-1200-10 -> 784-256-10, batch 128) and the CNN pair
#     (6-conv 64-256 ch -> 3-conv 32-128 ch, 3x32x32, batch 64) and the language-model pair
#     (gpt 4 blocks x 128 -> 2 blocks x 64, 32 windows of 64 bytes, CE + GKD; tokens/s =
#     2048 / step time); `--resnet` adds resnet32x4 -> resnet8x4;
#  2. a full short Fashion-MNIST distillation run (bench/fullrun/kd.toml: 3 epochs of KD into the
#     MLP student, data loading, evaluation and checkpoints included), distill with and without
#     its teacher-output cache vs bench/pytorch_fullrun.py written three ways (DataLoader; index
#     batching; index batching with the teacher's logits computed once): wall time and peak
#     memory, ratios against the fastest PyTorch variant.
# Ratios are distill / PyTorch: below 1 means distill is faster.
#   bash scripts/bench.sh [STEPS] [--resnet]
#   bash scripts/bench.sh --conv [REPS]   # instead: the CNN pair's convolutions in parts
#     (crates/distill/benches/conv_parts.rs vs bench/pytorch_conv.py: forward, + input grad,
#     + weight grad, ReLU + max-pool; Burn's conv2d and distill's, `--variant distill`, whose
#     weight gradient on flex is matrix products); CPU_BENCH_DIR=<target dir of `build-gpu.sh --cpu`>
#     adds Burn's JIT `cpu` backend as a third column (and a `distill-jit` row to each KD step)
#   bash scripts/bench.sh --precision [STEPS]   # instead: the KD step of each pair at
#     [train] precision = f32, bf16 and f16 vs PyTorch's student under torch.autocast in the
#     same dtype (f16 with a GradScaler); time and peak memory, ratios to PyTorch and to f32
#   bash scripts/bench.sh --matmul [REPS]   # instead: the f32 matrix products under the steps
#     (bench/matmul_shapes.json: crates/distill/benches/matmul.rs vs bench/pytorch_matmul.py),
#     milliseconds and GFLOP/s each
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
STEPS=30
PAIRS="mlp cnn lm"
CONV=""
PRECISION=""
MATMUL=""
for a in "$@"; do
  case "$a" in
    --resnet) PAIRS="$PAIRS resnet" ;;
    --conv) CONV=1 ;;
    --precision) PRECISION=1 ;;
    --matmul) MATMUL=1 ;;
    *) STEPS="$a" ;;
  esac
done
python3 -c "import torch, numpy" 2>/dev/null || pip install -q -r tools/requirements.txt
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/distill-target}"
# the CPU and the PyTorch version, first line of every table
machine_line() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); torch $(python3 -c 'import torch; print(torch.__version__)')"
}
# the layer benches' start: REPS (STEPS unless left at its default, then $2), bench $1 built,
# 2 threads each, the machine line
layer_bench() {
  REPS="$STEPS"
  [ "$REPS" = 30 ] && REPS="$2"
  cargo bench -p distill --bench "$1" --no-run -q
  export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2
  machine_line
}
if [ -n "$CONV" ]; then
  layer_bench conv_parts 10
  runs=("$(cargo bench -q -p distill --bench conv_parts -- --reps "$REPS")")
  # distill's convolution (what the models run): on flex, the weight gradient as products
  runs+=("$(cargo bench -q -p distill --bench conv_parts -- --reps "$REPS" --variant distill)")
  runs+=("$(cd bench && python3 pytorch_conv.py --reps "$REPS")")
  if [ -n "${CPU_BENCH_DIR:-}" ]; then
    jit=$(newest_bench "$CPU_BENCH_DIR" conv_parts)
    # the JIT backend starts one worker per core of the affinity mask: two, like the others
    runs+=("$(taskset -c 0,1 "$jit" --reps "$REPS" --backend cpu)")
  fi
  python3 - "${runs[@]}" <<'PY'
import json, sys
rows = [json.loads(l) for a in sys.argv[1:] for l in a.splitlines() if l.startswith("{")]
cols = []
for r in rows:
    c = r["impl"] if r["impl"] == "pytorch" else f"distill {r['backend'].lower()}"
    r["col"] = c
    if c not in cols:
        cols.append(c)
cols.sort(key=lambda c: c != "pytorch")
cell = {(r["model"], r["layer"], r["part"], r["col"]): r["median_ms"] for r in rows}
keys = list(dict.fromkeys((r["model"], r["layer"], r["part"]) for r in rows))
head = " | ".join(f"{c} ms" for c in cols) + " | " + " | ".join(f"{c} / pytorch" for c in cols[1:])
print(f"| model | layer | part | {head} |")
print("|---|---|---|" + "---:|" * (2 * len(cols) - 1))
totals = {}
for k in keys:
    v = [cell.get(k + (c,), float("nan")) for c in cols]
    for c, x in zip(cols, v):
        totals[(k[0], k[2], c)] = totals.get((k[0], k[2], c), 0.0) + x
    ratios = " | ".join(f"{x / v[0]:.2f}x" for x in v[1:])
    print(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(f"{x:.2f}" for x in v) + f" | {ratios} |")
print()
print("| model | part, summed over layers | " + head + " |")
print("|---|---|" + "---:|" * (2 * len(cols) - 1))
for m, part in dict.fromkeys((k[0], k[2]) for k in keys):
    v = [totals[(m, part, c)] for c in cols]
    print(f"| {m} | {part} | " + " | ".join(f"{x:.1f}" for x in v) + " | " + " | ".join(f"{x / v[0]:.2f}x" for x in v[1:]) + " |")
PY
  exit 0
fi
if [ -n "$MATMUL" ]; then
  layer_bench matmul 20
  d=$(cargo bench -q -p distill --bench matmul -- --reps "$REPS")
  t=$(cd bench && python3 pytorch_matmul.py --reps "$REPS")
  python3 - "$d" "$t" <<'PY'
import json, sys
d, t = ([json.loads(l) for l in a.splitlines() if l.startswith("{")] for a in sys.argv[1:3])
print()
print("| product | m x k x n | PyTorch ms | distill ms | ratio | PyTorch GFLOP/s | distill GFLOP/s |")
print("|---|---|---:|---:|---:|---:|---:|")
for a, b in zip(t, d):
    print(f"| {a['shape']} | {a['m']} x {a['k']} x {a['n']} | {a['median_ms']:.3f} | {b['median_ms']:.3f} | {b['median_ms'] / a['median_ms']:.2f}x | {a['gflops']:.0f} | {b['gflops']:.0f} |")
PY
  exit 0
fi
if [ -n "$PRECISION" ]; then
  cargo bench -p distill --bench kd_step --no-run -q
  export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2
  machine_line
  echo
  echo "| pair | precision | PyTorch ms | distill ms | distill / PyTorch | distill / its f32 | distill peak MB |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for pair in $PAIRS; do
    base=""
    for p in f32 bf16 f16; do
      d=$(cargo bench -q -p distill --bench kd_step -- --pair "$pair" --steps "$STEPS" --precision "$p")
      t=$(python3 bench/pytorch_reference.py --pair "$pair" --steps "$STEPS" --precision "$p")
      [ -z "$base" ] && base="$d"
      python3 - "$d" "$t" "$base" <<'PY'
import json, sys
d, t, b = (json.loads(a) for a in sys.argv[1:4])
print(f"| {d['pair']} | {d['precision']} | {t['median_ms']:.2f} | {d['median_ms']:.2f} | {d['median_ms'] / t['median_ms']:.2f}x | {d['median_ms'] / b['median_ms']:.2f}x | {d['peak_mb']:.1f} |")
PY
    done
  done
  exit 0
fi
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || bash scripts/fetch-data.sh
cargo build --release -q -p distill-cli
cargo bench -p distill --bench kd_step --no-run -q
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2
BIN="$CARGO_TARGET_DIR/release/distill"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
machine_line
echo
echo "## KD step (median of $STEPS steps); cached=yes: teacher outputs reused, the student's work alone"
printf "%-8s %-7s %-10s %12s %12s %10s %10s\n" pair cached impl median_ms mean_ms peak_MB ratio
for pair in $PAIRS; do
  for cached in no yes; do
    d=$(cargo bench -q -p distill --bench kd_step -- --pair "$pair" --steps "$STEPS" --cached "$cached")
    p=$(python3 bench/pytorch_reference.py --pair "$pair" --steps "$STEPS" --cached "$cached")
    j="{}"
    if [ -n "${CPU_BENCH_DIR:-}" ]; then
      jit=$(newest_bench "$CPU_BENCH_DIR" kd_step)
      j=$(taskset -c 0,1 "$jit" --pair "$pair" --steps "$STEPS" --cached "$cached" --backend cpu)
    fi
    python3 - "$d" "$p" "$cached" "$j" <<'PY'
import json, sys
d, p, j = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[4])
if j:
    j["impl"] = "distill-jit"
for r in [p, d] + ([j] if j else []):
    ratio = "" if r is p else f"{r['median_ms'] / p['median_ms']:.2f}x"
    print(f"{r['pair']:<8} {sys.argv[3]:<7} {r['impl']:<10} {r['median_ms']:>12.2f} {r['mean_ms']:>12.2f} {r['peak_mb']:>10.1f} {ratio:>10}")
PY
  done
done
echo
echo "## Full run: 3 epochs of KD on the full Fashion-MNIST (bench/fullrun/kd.toml)"
"$BIN" train bench/fullrun/teacher.toml --out "$WORK/teacher" --no-progress > "$WORK/teacher.log" 2>&1
TEACHER="$WORK/teacher/students/teacher/seed1/best"
for mb in 1024 0; do
  sed -e "s|@TEACHER@|$TEACHER|" -e "s|@CACHE_MB@|$mb|" bench/fullrun/kd.toml > "$WORK/kd$mb.toml"
done
cached=$(python3 bench/measure.py "distill (teacher cache on)" -- "$BIN" train "$WORK/kd1024.toml" --out "$WORK/kd-cached" --no-progress 2> "$WORK/cached.log")
uncached=$(python3 bench/measure.py "distill (teacher cache off)" -- "$BIN" train "$WORK/kd0.toml" --out "$WORK/kd-uncached" --no-progress 2> "$WORK/uncached.log")
grep -h "teacher cache:" "$WORK/cached.log" || true
torch_dl=$(python3 bench/measure.py "pytorch (DataLoader)" -- python3 bench/pytorch_fullrun.py --epochs 3 --variant dataloader)
torch_ix=$(python3 bench/measure.py "pytorch (index batches)" -- python3 bench/pytorch_fullrun.py --epochs 3 --variant index)
torch_pre=$(python3 bench/measure.py "pytorch (index, teacher once)" -- python3 bench/pytorch_fullrun.py --epochs 3 --variant precomputed)
python3 - "$cached" "$uncached" "$torch_dl" "$torch_ix" "$torch_pre" "$WORK" <<'PY'
import json, sys
rows = [json.loads(a) for a in sys.argv[1:6]]
# the ratio is against the fastest PyTorch variant
ref = min(rows[2:], key=lambda r: r["wall_s"])
print(f"ratios against the fastest PyTorch variant: {ref['label']}")
acc = {}
for name, d in (("distill (teacher cache on)", "kd-cached"), ("distill (teacher cache off)", "kd-uncached")):
    try:
        res = json.load(open(f"{sys.argv[6]}/{d}/results.json"))
        acc[name] = res["rows"][-1]["best"][0]
    except Exception:
        acc[name] = float("nan")
print(f"{'impl':<28} {'wall_s':>8} {'peak_MB':>9} {'ratio':>7} {'student best acc':>17}")
for r in rows:
    ratio = "" if r is ref else f"{r['wall_s'] / ref['wall_s']:.2f}x"
    a = acc.get(r["label"])
    a = "" if a is None else f"{100 * a:.2f}%"
    print(f"{r['label']:<28} {r['wall_s']:>8.2f} {r['peak_mb']:>9.1f} {ratio:>7} {a:>17}")
PY
