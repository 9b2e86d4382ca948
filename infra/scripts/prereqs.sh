#!/usr/bin/env bash
# Checks what `make run` and `make test` need before any long step starts, with one line per
# missing piece saying what to install: cargo, a C linker, make's helpers, Python 3.10-3.13
# with venv and pip. Everything else is installed by the project's scripts by package name.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
missing=0
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "error: $1 not found: $2" >&2
    missing=1
  fi
}
need cargo "install a Rust toolchain (rustup, or apt-get install cargo)"
need cc "install a C compiler and linker (apt-get install gcc, or build-essential)"
need sha256sum "install coreutils"
need tar "install tar"
need gzip "install gzip"
py=$(bash "$here/python.sh") || missing=1
if [ "$missing" = 0 ] && ! "$py" -m pip --version >/dev/null 2>&1; then
  echo "error: $py has no pip: install python3-pip (apt-get install python3-pip)" >&2
  missing=1
fi
exit "$missing"
