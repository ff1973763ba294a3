#!/usr/bin/env bash
# Everything measured on a GPU machine, in one run, from binaries built elsewhere by
# scripts/build-gpu.sh (it builds nothing here): the card and driver; one KD step of each pair
# (MLP, CNN, resnet32x4 -> resnet8x4), with and without the teacher cache, against the same step
# in PyTorch on CUDA; then the quickstart recipe trained on the `cuda` backend (embedded data,
# first run: kernels compiled and cached in ~/.cache/cubecl), against the same command on `flex`
# on this machine's CPUs; then mixed precision: each pair's step at [train] precision = bf16 and
# f16 against PyTorch's student under torch.autocast, and the quickstart recipe in bf16 and f16.
#
#   bash scripts/gpu-check.sh [OUTDIR]        (ONLY_STEPS=1: the f32 step table alone)
# Needs: the NVIDIA driver, a CUDA toolkit (for libdevice.10.bc; found through CUDA_PATH or
# nvcc), python3 with torch built for CUDA, and gpu-dist/distill-cuda.tar.xz. Prints a table and
# writes gpu-check.md (plus the raw JSON lines) to OUTDIR.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR="${1:-${OUT:-$(mktemp -d)}}"
STEPS="${STEPS:-20}"
mkdir -p "$OUTDIR"
BIN=$(mktemp -d)
tar -xJf gpu-dist/distill-cuda.tar.xz -C "$BIN" || { echo "no gpu-dist/distill-cuda.tar.xz: run scripts/build-gpu.sh first"; exit 1; }
if [ -z "${CUDA_PATH:-}" ] && command -v nvcc >/dev/null; then
  CUDA_PATH=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  export CUDA_PATH
fi
REPORT="$OUTDIR/gpu-check.md"
JSON="$OUTDIR/gpu-check.jsonl"
: > "$JSON"
{
  echo "# distill on GPU: $(date -u +%Y-%m-%d)"
  echo
  echo "card, driver, memory: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
  echo
  echo "$(python3 -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda)'); CUDA_PATH=${CUDA_PATH:-unset}; $(nproc) CPU threads"
  echo
  echo "## One KD step (median of $STEPS after 3 warm-up steps; ratio distill / PyTorch, below 1: distill faster)"
  echo
  echo "| pair | teacher | PyTorch CUDA ms | distill cuda ms | ratio |"
  echo "|---|---|---:|---:|---:|"
} | tee "$REPORT"
PAIRS="mlp cnn resnet"
if [ ! -x "$BIN/kd_step" ]; then
  echo "| (kd_step is not in the archive: step table skipped) | | | | |" | tee -a "$REPORT"
  PAIRS=""
fi
# One KD step of pair $1 in distill on cuda and in PyTorch on CUDA, both given the arguments after
# the label (`--cached yes|no`, `--precision bf16|f16`): their JSON lines kept, one table row
# labelled $2.
step_row() {
  local pair="$1" label="$2"
  shift 2
  local d p
  d=$(timeout 300 "$BIN/kd_step" --pair "$pair" --steps "$STEPS" --backend cuda "$@" 2>>"$OUTDIR/stderr.log" | tail -1)
  p=$(timeout 180 python3 bench/pytorch_reference.py --pair "$pair" --steps "$STEPS" --device cuda "$@" 2>>"$OUTDIR/stderr.log" | tail -1)
  echo "$d" >> "$JSON"
  echo "$p" >> "$JSON"
  python3 - "$pair" "$label" "$d" "$p" <<'PY' | tee -a "$REPORT"
import json, sys
pair, label, d, p = sys.argv[1:5]
def ms(s):
    try:
        return json.loads(s)["median_ms"]
    except Exception:
        return None
dm, pm = ms(d), ms(p)
fmt = lambda v: f"{v:.2f}" if v is not None else "failed"
ratio = f"{dm / pm:.2f}x" if dm and pm else "—"
print(f"| {pair} | {label} | {fmt(pm)} | {fmt(dm)} | {ratio} |")
PY
}
for pair in $PAIRS; do
  step_row "$pair" "run each step" --cached no
  step_row "$pair" cached --cached yes
done

if [ -n "${ONLY_STEPS:-}" ]; then
  exit 0
fi

# Mixed precision: the same steps with the students in bf16 and f16 (teacher cache off), vs
# PyTorch's student under torch.autocast in the same dtype (f16: with a GradScaler).
{
  echo
  echo "## Mixed precision: one KD step (median of $STEPS; teacher run each step)"
  echo
  echo "| pair | precision | PyTorch CUDA ms | distill cuda ms | ratio |"
  echo "|---|---|---:|---:|---:|"
} | tee -a "$REPORT"
for pair in $PAIRS; do
  for prec in bf16 f16; do
    step_row "$pair" "$prec" --precision "$prec"
  done
done

# The quickstart recipe end to end on the GPU (first run compiles kernels), then again (cached
# kernels), vs the same recipe on flex here.
WORK=$(mktemp -d)
sed -e 's/^name = "quickstart"/name = "quickstart-cuda"\nbackend = "cuda"/' configs/quickstart.toml > "$WORK/cuda.toml"
{
  echo
  echo "## The quickstart recipe (teacher + 2 students × 3 seeds, embedded data), wall time"
  echo
  echo "| run | wall s | peak host MB | teacher acc % | student + KD acc % |"
  echo "|---|---:|---:|---:|---:|"
} | tee -a "$REPORT"
for prec in bf16 f16; do
  sed -e "s/^schedule = \"cosine\"/schedule = \"cosine\"\nprecision = \"$prec\"/" "$WORK/cuda.toml" > "$WORK/cuda-$prec.toml"
done
for run in "cuda, first run (kernels compiled)|$WORK/cuda.toml|$WORK/q1" "cuda, kernels cached|$WORK/cuda.toml|$WORK/q2" "flex, $(nproc) CPU threads|configs/quickstart.toml|$WORK/q3" "cuda, precision = bf16|$WORK/cuda-bf16.toml|$WORK/q4" "cuda, precision = f16|$WORK/cuda-f16.toml|$WORK/q5"; do
  IFS='|' read -r label cfg dir <<< "$run"
  m=$(timeout 400 python3 bench/measure.py "$label" -- "$BIN/distill" train "$cfg" --out "$dir" --no-progress 2>>"$OUTDIR/stderr.log")
  echo "$m" >> "$JSON"
  python3 - "$label" "$m" "$dir" <<'PY' | tee -a "$REPORT"
import json, sys
label, m, d = sys.argv[1:4]
try:
    m = json.loads(m)
except Exception:
    m = {"wall_s": float("nan"), "peak_mb": float("nan"), "rc": "timeout"}
acc = ["—", "—"]
try:
    rows = json.load(open(f"{d}/results.json"))["rows"]
    acc = [f"{100 * rows[0]['best'][0]:.2f}", f"{100 * rows[-1]['best'][0]:.2f}"]
except Exception:
    pass
rc = "" if m.get("rc") == 0 else f" (exit {m.get('rc')})"
print(f"| {label}{rc} | {m['wall_s']} | {m['peak_mb']} | {acc[0]} | {acc[1]} |")
PY
done
cp "$WORK/q1/results.md" "$OUTDIR/quickstart-cuda-results.md" 2>/dev/null || true

# The data-parallel path on every visible GPU (one device exercises it too): the quickstart
# recipe, one seed, 2 epochs, through [distributed].
n=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
sed -e 's/^seeds = \[1, 2, 3\]/seeds = [1]/' -e 's/^epochs = 12/epochs = 2/' -e 's/^train = { epochs = 30 }/train = { epochs = 2 }/' "$WORK/cuda.toml" > "$WORK/ddp.toml"
printf '\n[distributed]\ndevices = [%s]\n' "$(seq -s, 0 $((n - 1)))" >> "$WORK/ddp.toml"
{
  echo
  echo "## [distributed] on $n GPU(s): quickstart recipe, 1 seed, 2 epochs"
  echo
  if timeout 300 "$BIN/distill" train "$WORK/ddp.toml" --out "$WORK/ddp" --no-progress > "$WORK/ddp.out" 2>>"$OUTDIR/stderr.log"; then
    grep '^|' "$WORK/ddp.out"
  else
    echo "failed (exit $?); see stderr.log"
  fi
} | tee -a "$REPORT"
tail -5 "$OUTDIR/stderr.log" 2>/dev/null
