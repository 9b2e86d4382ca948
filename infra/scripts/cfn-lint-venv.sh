#!/usr/bin/env bash
# cfn-lint (PyPI, pinned), installed by package name into target/cfn-venv. Prints the path of
# its cfn-lint executable for the tests that check the templates in infra/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/cfn-venv"
req="$root/infra/scripts/cfn-requirements.txt"
stamp="$venv/.requirements"
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  echo "installing cfn-lint into $venv" >&2
  "$(bash "$root/infra/scripts/python.sh")" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/cfn-lint"
