#!/usr/bin/env bash
# Creates the Python venv used only to regenerate reference outputs (LiteRT goldens) and to export
# the conformance models with TensorFlow's converter. Never needed by `make test`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${GOLDEN_VENV:-$here/../../target/golden-venv}"
if [ ! -x "$venv/bin/python" ]; then
  "$(bash "$here/../../infra/scripts/python.sh")" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/golden-requirements.txt"
echo "$venv"
