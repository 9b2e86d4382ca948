#!/usr/bin/env bash
# Prints the Python interpreter the project's scripts use: $PYTHON, else python3. Fails with a
# one-line message when it is missing, not 3.10-3.13, or cannot make a venv with pip.
set -euo pipefail
py="${PYTHON:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "error: $py not found: install Python 3.10-3.13 (e.g. apt-get install python3 python3-venv) or set PYTHON=/path/to/python3" >&2
  exit 1
fi
version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$version" in
  3.10|3.11|3.12|3.13) ;;
  *) echo "error: $py is Python $version; litehouse's scripts need 3.10-3.13 (set PYTHON=...)" >&2; exit 1 ;;
esac
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "error: $py cannot create virtual environments: install python3-venv (apt-get install python3-venv)" >&2
  exit 1
fi
command -v "$py"
