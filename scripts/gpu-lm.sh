#!/usr/bin/env bash
# Trains the language-model results (results/lm-moby-dick/experiment.toml, backend = "cuda") on a
# GPU machine from the binary scripts/build-gpu.sh packed (it builds nothing here), then samples
# a continuation from every student (seed 1) and the teacher; in the time left (TOTAL s in all,
# default 560) it runs results/lm-moby-dick-sparse and results/lm-moby-dick-generated from the
# teacher it trained. The text travels beside the
# binary as gpu-dist/moby-dick.txt (scripts/build-gpu.sh copies it there when installed).
#
#   bash scripts/gpu-lm.sh [OUTDIR]
# Writes OUTDIR/{results.md,results.csv,results.json,curves.svg,samples.md,train.log} and every
# run's metrics.jsonl.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR="${1:-${OUT:-$(mktemp -d)}}"
mkdir -p "$OUTDIR"
BIN=$(mktemp -d)
tar -xJf gpu-dist/distill-cuda.tar.xz -C "$BIN" || { echo "no gpu-dist/distill-cuda.tar.xz: run scripts/build-gpu.sh first"; exit 1; }
[ -f gpu-dist/moby-dick.txt ] || { echo "no gpu-dist/moby-dick.txt: run scripts/fetch-data.sh moby-dick, then scripts/build-gpu.sh"; exit 1; }
if [ -z "${CUDA_PATH:-}" ] && command -v nvcc >/dev/null; then
  CUDA_PATH=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  export CUDA_PATH
fi
echo "card: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)" | tee "$OUTDIR/train.log"
WORK=$(mktemp -d)
sed "s|/usr/share/datasets/moby-dick/moby-dick.txt|$PWD/gpu-dist/moby-dick.txt|" results/lm-moby-dick/experiment.toml > "$WORK/lm.toml"
start=$(date +%s)
timeout "${LIMIT:-500}" "$BIN/distill" train "$WORK/lm.toml" --out "$WORK/run" --no-progress >> "$OUTDIR/train.log" 2>&1
echo "exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUTDIR/train.log"
for f in results.md results.csv results.json curves.svg; do
  cp "$WORK/run/$f" "$OUTDIR/" 2>/dev/null
done
(cd "$WORK/run" && find . -name metrics.jsonl | while read -r m; do mkdir -p "$OUTDIR/$(dirname "$m")"; cp "$m" "$OUTDIR/$m"; done)
# Parts 2 and 3, in the time left (TOTAL s in all), from part 1's teacher checkpoint: the
# sparse teacher store against the live teacher, then distillation on generated windows
# (on-policy GKD, sequence-level KD).
TEACHER="$WORK/run/teachers/teacher/best"
for part in sparse generated; do
  left=$(( ${TOTAL:-560} - ($(date +%s) - start) ))
  if [ ! -d "$TEACHER" ] || [ "$left" -lt 60 ]; then
    echo "$part: skipped ($left s left)" | tee -a "$OUTDIR/train.log"
    continue
  fi
  mkdir -p "$OUTDIR/$part"
  sed -e "s|/usr/share/datasets/moby-dick/moby-dick.txt|$PWD/gpu-dist/moby-dick.txt|" -e "s|@TEACHER@|$TEACHER|" \
    "results/lm-moby-dick-$part/experiment.toml" > "$WORK/$part.toml"
  timeout "$left" "$BIN/distill" train "$WORK/$part.toml" --out "$WORK/$part" --no-progress > "$OUTDIR/$part/train.log" 2>&1
  echo "$part: exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUTDIR/train.log"
  for f in results.md results.csv results.json curves.svg; do
    cp "$WORK/$part/$f" "$OUTDIR/$part/" 2>/dev/null
  done
  cat "$OUTDIR/$part/results.md" 2>/dev/null
done
PROMPT="Call me Ishmael. Some years ago"
{
  echo "# Samples: \"$PROMPT\" continued by 96 bytes (temperature 0.8, top-k 40, seed 1; seed-1 models)"
  for dir in "$WORK/run/teachers/"*/best "$WORK"/{run,generated}/students/*/seed1/last; do
    [ -d "$dir" ] || continue
    name=${dir#"$WORK/run/"}
    echo
    echo "## ${name%/*}"
    echo
    echo '```'
    "$BIN/distill" generate "$dir" --prompt "$PROMPT" --max-tokens 96 --temperature 0.8 --top-k 40 --seed 1 2>&1
    echo '```'
  done
} > "$OUTDIR/samples.md"
cat "$OUTDIR/results.md" 2>/dev/null
