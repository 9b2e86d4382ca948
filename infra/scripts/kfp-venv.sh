#!/usr/bin/env bash
# The official Kubeflow Pipelines packages (kfp, kfp-pipeline-spec, kfp-server-api), installed by
# package name into target/kfp-venv. Prints the venv's python for the pipeline tests. A venv of
# its own: kfp pins a requests range the serving clients' venv cannot share.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/kfp-venv"
req="$root/tests/pipelines/kfp-requirements.txt"
stamp="$venv/.requirements"
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  echo "installing the kfp packages into $venv" >&2
  "$(bash "$root/infra/scripts/python.sh")" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/python"
