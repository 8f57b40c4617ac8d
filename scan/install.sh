#!/usr/bin/env bash
# Install the scanners of `make scan` from pyproject.toml's scan extras into their own venvs:
#   .venv-scan         extras `scan` (sslyze, schemathesis, sqlmap) and `scan-httpobs` (--no-deps)
#   .venv-scan-wapiti  extra `scan-wapiti` (wapiti3 pins versions schemathesis cannot share)
# Reinstalls only when pyproject.toml changed. Usage: scan/install.sh PYTHON3.11
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:?usage: scan/install.sh /path/to/python3.11}

extra() {  # the requirement lines of one optional-dependency extra
  "$python" -c 'import sys, tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"][sys.argv[1]]))' "$1"
}

install() {  # install VENV EXTRA [pip options]
  local venv=$1 name=$2 stamp=$1/.scan-$2-stamp
  shift 2
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then return; fi
  test -x "$venv/bin/python" || "$python" -m venv "$venv"
  # Nothing in a scanner venv belongs in git.
  printf '*\n' > "$venv/.gitignore"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  extra "$name" > "$venv/requirements-$name.txt"
  "$venv/bin/python" -m pip install --quiet "$@" -r "$venv/requirements-$name.txt"
  touch "$stamp"
}

install .venv-scan scan
install .venv-scan scan-httpobs --no-deps
install .venv-scan-wapiti scan-wapiti
