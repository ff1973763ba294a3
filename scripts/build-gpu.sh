#!/usr/bin/env bash
# Builds distill's GPU binaries offline: the CLI and the KD-step bench with `--features cuda`,
# then packs them for a GPU machine. Idempotent: a second run only rebuilds what changed.
#
#   bash scripts/build-gpu.sh            # build into $GPU_TARGET_DIR, pack into gpu-dist/
#   bash scripts/build-gpu.sh --cpu      # Burn's JIT CPU backend instead (`--features cpu`):
#                                        # the CLI and the benches into $CPU_TARGET_DIR, run here
#
# Why this is needed: `cubecl-cuda` always pulls `cubecl-llvm`, whose build dependency
# `tracel-llvm-bundler` 23.1.0-4 downloads Tracel's LLVM bundle unless the marker file
# `$XDG_DATA_HOME/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed` exists; with the marker
# it only asks that folder's `bin/llvm-config` how to link LLVM statically. This script makes
# that folder by hand: the marker, plus an `llvm-config` wrapper around Debian's LLVM 22
# (bookworm-security: llvm-22-dev, libpolly-22-dev, libzstd-dev). The wrapper turns full `.so`
# paths into `-l<name>`, because the bundler would turn `/usr/lib/…/libz3.so` into `-llibz3`.
# LLVM 22 under bindings written for 23.1 is not a combination upstream tests; the kernels it
# generates run on the H200 with driver 580 (scripts/gpu-check.sh prints the card and driver).
#
# The default `flex` build never sees any of this: the marker, the wrapper and the packages are
# used only by builds with `--features cuda` or `--features cpu` (`wgpu` needs none of it). The
# JIT `cpu` backend (cubecl-cpu) goes through the same cubecl-llvm crate, so the same setup
# builds it; it needs LLVM only (no MLIR), and at run time nothing (LLVM is linked statically).
#
# At run time the binaries need only the NVIDIA driver (`libcuda`, loaded on first use) and
# `libdevice.10.bc` from a CUDA toolkit; compiled kernels are cached in `~/.cache/cubecl`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ROOT=$(pwd)
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# CUDA 13.0 drivers (580.x); cudarc otherwise guesses from a toolkit this machine need not have.
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
export GPU_TARGET_DIR="${GPU_TARGET_DIR:-$HOME/.cache/distill-target-gpu}"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
LLVM_DIR="$DATA_HOME/tracel/tracel-llvm-23.1.0-4"
DEBIAN_LLVM=/usr/lib/llvm-22

if [ ! -x "$DEBIAN_LLVM/bin/llvm-config" ]; then
  echo "installing Debian's LLVM 22 (llvm-22-dev libpolly-22-dev libzstd-dev)"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq llvm-22-dev libpolly-22-dev libzstd-dev >/dev/null
fi

mkdir -p "$LLVM_DIR/bin"
# Written only when it changes: a new mtime makes cubecl-llvm's build script rerun and the
# crates above it recompile.
cat > "$LLVM_DIR/bin/llvm-config.new" <<EOF
#!/usr/bin/env bash
# Written by distill's scripts/build-gpu.sh: Debian's LLVM 22 in place of Tracel's bundle.
# Full library paths become -l<name> (the bundler expects names, not paths).
out=\$("$DEBIAN_LLVM/bin/llvm-config" "\$@") || exit \$?
words=()
for w in \$out; do
  case "\$w" in
    /*/lib*.so|/*/lib*.so.*|/*/lib*.a)
      b=\${w##*/lib}; b=\${b%%.so*}; b=\${b%.a}; words+=("-l\$b") ;;
    *) words+=("\$w") ;;
  esac
done
echo "\${words[*]}"
EOF
if cmp -s "$LLVM_DIR/bin/llvm-config.new" "$LLVM_DIR/bin/llvm-config"; then
  rm "$LLVM_DIR/bin/llvm-config.new"
else
  mv "$LLVM_DIR/bin/llvm-config.new" "$LLVM_DIR/bin/llvm-config"
fi
chmod +x "$LLVM_DIR/bin/llvm-config"
[ -f "$LLVM_DIR/.tracel-llvm-installed" ] || touch "$LLVM_DIR/.tracel-llvm-installed"

export XDG_DATA_HOME="$DATA_HOME"
if [ "${1:-}" = "--cpu" ]; then
  CPU_TARGET_DIR="${CPU_TARGET_DIR:-$HOME/.cache/distill-target-cpu}"
  echo "building the CLI and the kd_step and conv_parts benches with --features cpu into $CPU_TARGET_DIR"
  CARGO_TARGET_DIR="$CPU_TARGET_DIR" cargo bench -p distill --features cpu --bench kd_step --bench conv_parts --no-run
  CARGO_TARGET_DIR="$CPU_TARGET_DIR" cargo build --release -p distill-cli --features cpu
  echo "built $CPU_TARGET_DIR/release/distill; the bench: $(newest_bench "$CPU_TARGET_DIR" kd_step)"
  exit 0
fi
echo "building the CLI and the kd_step bench with --features cuda into $GPU_TARGET_DIR"
CARGO_TARGET_DIR="$GPU_TARGET_DIR" cargo build --release -p distill-cli --features cuda
# SKIP_BENCH=1 packs the CLI alone (the bench build compiles Burn once more, in the bench
# profile: most of a cold build's hour on two cores).
BINS="distill"
if [ -z "${SKIP_BENCH:-}" ]; then
  CARGO_TARGET_DIR="$GPU_TARGET_DIR" cargo bench -p distill --features cuda --bench kd_step --no-run 2>&1 \
    | tee "$GPU_TARGET_DIR/bench-build.log"
  BENCH=$(newest_bench "$GPU_TARGET_DIR" kd_step)
  BINS="distill kd_step"
fi

# Pack: both binaries stripped, then one xz stream over both (they share most of their bytes,
# so a large dictionary compresses the pair to about the size of one).
DIST="$ROOT/gpu-dist"
mkdir -p "$DIST"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp "$GPU_TARGET_DIR/release/distill" "$STAGE/distill"
[ -z "${SKIP_BENCH:-}" ] && cp "$BENCH" "$STAGE/kd_step"
(cd "$STAGE" && strip $BINS)
tar -C "$STAGE" -cf - $BINS | xz -T2 -9e --lzma2=dict=256MiB > "$DIST/distill-cuda.tar.xz.part"
mv "$DIST/distill-cuda.tar.xz.part" "$DIST/distill-cuda.tar.xz"
# The language-model results' text travels beside the binary (scripts/gpu-lm.sh).
MOBY=/usr/share/datasets/moby-dick/moby-dick.txt
[ -f "$MOBY" ] && cp "$MOBY" "$DIST/moby-dick.txt"
ls -l "$DIST"
echo "unpack on the GPU machine with: tar -xJf gpu-dist/distill-cuda.tar.xz -C <dir>"
