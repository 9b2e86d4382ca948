#!/usr/bin/env bash
# A function binary from the release build (`make build`, which `make run` already made) under
# cargo-lambda's local Runtime API emulator, so the first invoke needs no compile.
# Usage: lambda-watch.sh FUNCTION PORT (FUNCTION: predict | batch | trigger). Each function gets
# the settings its committed events need unless the caller sets them: predict serves
# models/catalog (with no LITEHOUSE_STORE, which would replace the directory by the registry's
# endpoints), the trigger reads functions/trigger/events/schedules.yaml and keeps its leases in
# .litehouse. LITEHOUSE_LAMBDA_BINARY runs another build of the function (the tests' own).
# cargo-lambda runs only the emulator (--only-lambda-apis); this script runs the binary against
# it and restarts it if it exits, and stops both on Ctrl-C. After a code change: `make build`
# and start again.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root" # the emulator reads the workspace (cargo metadata)
fn="${1:?usage: lambda-watch.sh predict|batch|trigger PORT}"
port="${2:-9000}"
case "$fn" in
  predict | batch | trigger) ;;
  *) echo "unknown function '$fn' (expected predict, batch or trigger)" >&2; exit 2 ;;
esac
binary="${LITEHOUSE_LAMBDA_BINARY:-$root/target/release/$fn}"
if [ ! -x "$binary" ]; then
  echo "no $binary: run 'make build' first" >&2
  exit 2
fi
case "$fn" in
  predict) export LITEHOUSE_MODELS="${LITEHOUSE_MODELS:-$root/models/catalog}" ;;
  trigger)
    export LITEHOUSE_SCHEDULES="${LITEHOUSE_SCHEDULES:-$root/functions/trigger/events/schedules.yaml}"
    export LITEHOUSE_STORE="${LITEHOUSE_STORE:-$root/.litehouse}"
    ;;
esac
bin="$(bash "$root/infra/scripts/tools-venv.sh")"
"$bin/cargo-lambda" lambda watch --only-lambda-apis \
  --invoke-address 127.0.0.1 --invoke-port "$port" &
emulator=$!
trap 'kill "$emulator" 2> /dev/null; wait "$emulator" 2> /dev/null || true' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 100); do
  (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  kill -0 "$emulator" 2> /dev/null || { echo "the emulator exited (is port $port taken?)" >&2; exit 1; }
  sleep 0.1
done
# The environment a Lambda sandbox gives its function, as the emulator asks for it; the function
# is registered as `_`, the one `cargo lambda invoke` reaches when given no function name.
export AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt"
export AWS_LAMBDA_FUNCTION_NAME=_
export AWS_LAMBDA_FUNCTION_VERSION=1
export AWS_LAMBDA_FUNCTION_MEMORY_SIZE="${AWS_LAMBDA_FUNCTION_MEMORY_SIZE:-1769}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
echo "$fn: $binary on http://127.0.0.1:$port (make lambda-invoke FN=$fn); Ctrl-C stops" >&2
while true; do
  "$binary" || echo "$fn exited with status $?; restarting" >&2
  sleep 1
done
