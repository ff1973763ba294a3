#!/usr/bin/env bash
# The sparse teacher store study on a CPU (results/lm-moby-dick-bpe-sparse): part 1 trains the
# BPE teacher and distils the forward-KL student from its full rows (teacher.toml); part 2 loads
# that teacher's checkpoint and distils the same student from its top-k stores, k = 8 … 64
# (sparse.toml); part 3 distils students on generated windows from the same teacher
# (results/lm-moby-dick-bpe-generated: on-policy GKD and sequence-level KD) and samples every
# seed-1 student. About an hour on this project's 2-core machine; a part whose results.md
# exists under $RUNS is not run again.
#
#   scripts/fetch-data.sh moby-dick
#   bash scripts/lm-sparse-cpu.sh [OUTDIR [GENOUT]]   # defaults results/lm-moby-dick-bpe-{sparse,generated}
#   SEEDS=1 bash scripts/lm-sparse-cpu.sh /tmp/s /tmp/g  # seed 1 only (a third of the time): the
#                                                      # same seed-1 models, e.g. for samples.md
# Writes OUTDIR/{dense,topk}/{results.md,results.csv,results.json,curves.svg,train.log} and
# every run's metrics.jsonl (part 3: the same under results/lm-moby-dick-bpe-generated, with
# samples.md); the run folders (checkpoints) stay under $RUNS (runs/…).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=results/lm-moby-dick-bpe-sparse
OUTDIR="${1:-$SRC}"
RUNS="${RUNS:-runs/lm-moby-dick-bpe-sparse}"
mkdir -p "$OUTDIR/dense" "$OUTDIR/topk" "$RUNS"
cargo build --release -q -p distill-cli
BIN=target/release/distill
[ -n "${CARGO_TARGET_DIR:-}" ] && BIN="$CARGO_TARGET_DIR/release/distill"
collect() { # run folder, destination
  for f in results.md results.csv results.json curves.svg; do cp "$1/$f" "$2/"; done
  (cd "$1" && find . -name metrics.jsonl) | while read -r m; do
    mkdir -p "$2/$(dirname "$m")"
    cp "$1/$m" "$2/$m"
  done
}
# the configs as run: @TEACHER@ filled in, and `seeds` replaced when SEEDS is set
config() { # source config, destination
  sed -e "s|@TEACHER@|${TEACHER:-}|" -e "${SEEDS:+s|^seeds = .*|seeds = [$SEEDS]|}" "$1" > "$2"
}
start=$(date +%s)
config "$SRC/teacher.toml" "$RUNS/teacher.toml"
if [ ! -f "$RUNS/dense/results.md" ]; then
  "$BIN" train "$RUNS/teacher.toml" --out "$RUNS/dense" --no-progress 2>&1 | tee "$OUTDIR/dense/train.log"
fi
collect "$RUNS/dense" "$OUTDIR/dense"
echo "part 1: $(( $(date +%s) - start )) s"
TEACHER="$(cd "$RUNS/dense/teachers/teacher/best" && pwd)"
config "$SRC/sparse.toml" "$RUNS/sparse.toml"
if [ ! -f "$RUNS/topk/results.md" ]; then
  "$BIN" train "$RUNS/sparse.toml" --out "$RUNS/topk" --no-progress 2>&1 | tee "$OUTDIR/topk/train.log"
fi
collect "$RUNS/topk" "$OUTDIR/topk"
echo "parts 1 and 2: $(( $(date +%s) - start )) s"
grep -h "cache:" "$OUTDIR"/dense/train.log "$OUTDIR"/topk/train.log
GEN=results/lm-moby-dick-bpe-generated
GENOUT="${2:-$GEN}"
mkdir -p "$GENOUT"
config "$GEN/experiment.toml" "$RUNS/generated.toml"
if [ ! -f "$RUNS/generated/results.md" ]; then
  "$BIN" train "$RUNS/generated.toml" --out "$RUNS/generated" --no-progress 2>&1 | tee "$GENOUT/train.log"
fi
collect "$RUNS/generated" "$GENOUT"
PROMPT="Call me Ishmael. Some years ago"
{
  echo "# Samples"
  echo
  echo "Every model's continuation of \"$PROMPT\" (\`distill generate DIR --prompt … --max-tokens 40"
  echo "--temperature 0.8 --top-k 40 --seed 1\`), seed-1 students, written by scripts/lm-sparse-cpu.sh."
  for dir in "$RUNS/dense/teachers/"*/best "$RUNS"/{dense,topk,generated}/students/*/seed1/last; do
    echo
    echo "## ${dir#"$RUNS"/}"
    echo
    echo '```text'
    "$BIN" generate "$dir" --prompt "$PROMPT" --max-tokens 40 --temperature 0.8 --top-k 40 --seed 1 2>&1
    echo '```'
  done
} > "$GENOUT/samples.md"
echo "parts 1, 2 and 3: $(( $(date +%s) - start )) s"
