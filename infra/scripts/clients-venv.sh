#!/usr/bin/env bash
# The official Python clients (tritonclient, google-cloud-aiplatform, requests), installed by
# package name into target/clients-venv. Prints the venv's python for tests/official_clients.rs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/clients-venv"
req="$root/tests/clients/requirements.txt"
stamp="$venv/.requirements"
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  echo "installing the official clients into $venv" >&2
  "$(bash "$root/infra/scripts/python.sh")" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/python"
