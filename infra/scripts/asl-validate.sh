#!/usr/bin/env bash
# Checks the Step Functions state machines in infra/ with the asl-validator package (npm, by name,
# installed into target/asl-node). Exits non-zero and prints the problems when one is invalid.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/target/asl-node"
if [ ! -x "$dir/node_modules/.bin/asl-validator" ]; then
  command -v npm > /dev/null || { echo "asl-validate: npm is needed (apt-get install npm)" >&2; exit 1; }
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund asl-validator@4.0.0 > /dev/null)
fi
status=0
for f in "$root"/infra/*/*.asl.json; do
  "$dir/node_modules/.bin/asl-validator" --json-path "$f" || status=1
done
exit $status
