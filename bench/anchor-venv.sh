#!/usr/bin/env bash
# The anchor's own venv (target/anchor-venv), installed by package name; prints its python.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/target/anchor-venv"
if [ ! -x "$venv/bin/uvicorn" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/bench/anchor/requirements.txt" >&2
fi
echo "$venv/bin/python"
