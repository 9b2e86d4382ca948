#!/usr/bin/env bash
# Runs a command with moto's S3 server (PyPI, installed by name into target/moto-venv) listening
# on 127.0.0.1, and stops the server afterwards whatever the command's outcome.
#   infra/scripts/with-moto.sh cargo test --workspace
# The command sees AWS_ENDPOINT_URL_S3, dummy credentials, and LITEHOUSE_TEST_S3 (a bucket URI
# that the S3 variants of the tests use; with LITEHOUSE_REQUIRE_S3=1 they fail instead of skip).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/moto-venv"
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "installing moto into $venv" >&2
  "$(bash "$root/infra/scripts/python.sh")" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/infra/scripts/moto-requirements.txt" >&2
fi
port="${MOTO_PORT:-$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
log="$root/target/moto-server.log"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "moto server failed to start; its log:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.1
done
echo "moto S3 server on 127.0.0.1:$port (pid $moto_pid)" >&2
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export LITEHOUSE_TEST_S3="s3://litehouse-test"
export LITEHOUSE_REQUIRE_S3="${LITEHOUSE_REQUIRE_S3:-1}"
"$@"
