#!/usr/bin/env bash
# Create .venv (if needed) and install the project with its test tools; torch pinned.
# Idempotent: does nothing when pyproject.toml and constraints.txt are unchanged since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.vitcow-installed"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test,sam3,eval,postgres,celery,k8s]"
# IDF1 scoring of the identity benchmark and tests (trackeval's Identity metric needs only
# numpy and scipy). --no-deps: trackeval declares the GUI opencv-python (which would shadow
# opencv-python-headless and needs libGL) and matplotlib, used only by parts we never import.
"$VENV/bin/python" -m pip install -q -c constraints.txt --no-deps trackeval
echo "$want" > "$stamp"
