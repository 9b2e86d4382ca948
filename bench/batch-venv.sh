#!/usr/bin/env bash
# The LiteRT batch script's own venv (target/batch-venv), installed by package name; prints its python.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/target/batch-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ai_edge_litert" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/bench/batch/requirements.txt" >&2
fi
echo "$venv/bin/python"
