#!/usr/bin/env bash
# Installs the full Fashion-MNIST (60,000 train / 10,000 test, MIT licence, Zalando Research)
# from Debian's `dataset-fashion-mnist` package into /usr/share/datasets/fashion-mnist/, where
# `data.source = "fashion-mnist"` reads it. Elsewhere, download the four *-ubyte.gz files from
# https://github.com/zalandoresearch/fashion-mnist and set `data.dir` to their folder.
set -euo pipefail
DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DIR/train-images-idx3-ubyte.gz" ]; then
  echo "Fashion-MNIST already installed in $DIR"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq dataset-fashion-mnist
  ls -l "$DIR"
else
  echo "apt-get not found: download the files from https://github.com/zalandoresearch/fashion-mnist" >&2
  echo "and set data.dir to their folder (with data.source = \"fashion-mnist\")" >&2
  exit 1
fi
