#!/usr/bin/env bash
# Trains the conformance models of `litehouse train` (seeded, so reruns give the same files) and
# copies them into models/runtime/testdata/trained/, where make_goldens.py runs LiteRT on them.
# Usage: export_trained.sh LITEHOUSE_BINARY
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: export_trained.sh path/to/litehouse}"
data="$here/../../target/training-data"
dest="$here/../runtime/testdata/trained"
work="$here/../../target/trained-export"
bash "$here/fetch-training-data.sh" "$data"
mkdir -p "$dest" "$work"

train() {
  local name="$1"; shift
  "$bin" train --quiet --out "$work/$name" "$@"
  cp "$work/$name/model.tflite" "$dest/$name.tflite"
}
train mnist_mlp_int8 --data "$data/mnist" --arch mlp --epochs 2
train mnist_mlp_uint8_io --data "$data/mnist" --arch mlp --hidden 32 --epochs 1 --io uint8
train mnist_cnn_int8_io --data "$data/mnist" --arch cnn --filters 8,16 --hidden 32 --epochs 1 --io int8
train mnist_mlp_float32 --data "$data/mnist" --arch mlp --hidden 32 --epochs 1 --quantize none
train tabular_linnerud_int8 --data "$data/linnerud.csv" --task regress --label Weight,Waist,Pulse \
  --hidden 8 --dropout 0 --epochs 50 --learning-rate 0.01 --validation 0.2 --test 0.2 --patience 10
echo "trained models in $dest"
