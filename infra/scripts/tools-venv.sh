#!/usr/bin/env bash
# Local AWS stand-ins, installed by package name into target/tools-venv: cargo-lambda (PyPI ships
# it as a static binary) and ziglang for `cargo lambda build`. Prints the venv's bin directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/tools-venv"
if [ ! -x "$venv/bin/cargo-lambda" ]; then
  "$(bash "$root/infra/scripts/python.sh")" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/infra/scripts/tools-requirements.txt" >&2
fi
echo "$venv/bin"
