#!/usr/bin/env bash
# The runtime's LiteRT conformance tests built for aarch64 and run under qemu-user, so the arm64
# Lambda package is proven correct on an x86_64 machine (the portable kernel paths: speed there
# cannot be measured here). Prerequisites come from Debian's packages and rustup, by name.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
triple=aarch64-unknown-linux-gnu
missing=()
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (apt-get)" >&2
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
      { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
  else
    echo "error: the arm64 tests need ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
  echo "adding the Rust standard library for $triple (rustup)" >&2
  rustup target add "$triple" >&2
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_INCREMENTAL=0
cargo test --target "$triple" -p litehouse-models --test conformance --test loading "$@"
