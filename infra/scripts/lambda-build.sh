#!/usr/bin/env bash
# Lambda packages: bootstrap.zip for each function and architecture, built with cargo-lambda
# (and zig as the cross linker, both from PyPI through tools-venv.sh) on the size profile.
# Output: target/lambda/{x86_64,arm64}/{predict,batch,trigger}/bootstrap.zip, the paths that
# infra/template.yaml packages. Usage: lambda-build.sh [FUNCTION...] (default: all three);
# ARCHS="arm64" limits the architectures.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bin="$(bash infra/scripts/tools-venv.sh)"
export PATH="$bin:$PATH"
functions=("$@")
[ ${#functions[@]} -eq 0 ] && functions=(predict batch trigger)
archs=(${ARCHS:-x86_64 arm64})
for arch in "${archs[@]}"; do
  case "$arch" in
    x86_64) flag=--x86-64; triple=x86_64-unknown-linux-gnu ;;
    arm64) flag=--arm64; triple=aarch64-unknown-linux-gnu ;;
    *) echo "unknown architecture '$arch' (expected x86_64 or arm64)" >&2; exit 2 ;;
  esac
  if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
    echo "adding the Rust standard library for $triple (rustup)" >&2
    rustup target add "$triple" >&2
  fi
  for fn in "${functions[@]}"; do
    include=()
    # The trigger reads its schedules and their pipelines from the package.
    [ "$fn" = trigger ] && include=(--include scheduler/examples)
    echo "building $fn for $arch" >&2
    cargo lambda build --profile lambda $flag -p "litehouse-$fn" --bin "$fn" \
      --output-format zip --lambda-dir "target/lambda/$arch" "${include[@]}"
  done
done
# Sizes, for docs/BENCHMARKS.md.
for arch in "${archs[@]}"; do
  for fn in "${functions[@]}"; do
    python3 - "target/lambda/$arch/$fn/bootstrap.zip" "$arch" "$fn" <<'PY'
import os, sys, zipfile
path, arch, fn = sys.argv[1:]
unpacked = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
print(f"{arch:<8} {fn:<8} zip {os.path.getsize(path) / 1e6:7.2f} MB  unpacked {unpacked / 1e6:7.2f} MB")
PY
  done
done
