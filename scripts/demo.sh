#!/usr/bin/env bash
# Install, land the sample footage (as two farms' cameras), and start Dagster (UI + daemon)
# on http://127.0.0.1:3000. The landing sensor picks the files up once they have settled and
# processes them with the motion backend (SAM3 when VITCOW_SAM3_CHECKPOINT points to a checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export VITCOW_HOME=${VITCOW_HOME:-$PWD/vitcow_home}
export VITCOW_SETTLE_SECONDS=${VITCOW_SETTLE_SECONDS:-5}
export VITCOW_PROMPT=${VITCOW_PROMPT:-person}
eval "$(.venv/bin/vitcow init)"
landing=${VITCOW_LANDING:-$VITCOW_HOME/landing}
case "$landing" in
  *://*|*=*) ;;  # remote or several sources (docs/remote-sources.md): nothing to land locally
  *)
    mkdir -p "$landing"
    .venv/bin/python scripts/sample_farms.py samples/vtest_sample.mp4 "$landing" ;;
esac
host=${HOST:-127.0.0.1}
port=${PORT:-3000}
# The storage root served read-only on this machine, so the UI can link and show contact sheets
files_port=${FILES_PORT:-$((port + 1))}
export VITCOW_PUBLIC_URL=${VITCOW_PUBLIC_URL:-http://127.0.0.1:$files_port}
.venv/bin/python -m http.server --bind 127.0.0.1 --directory "$VITCOW_HOME" "$files_port" >/dev/null 2>&1 &
files_pid=$!
trap 'kill "$files_pid" 2>/dev/null || true' EXIT
echo "Landing: $landing   Outputs: $VITCOW_HOME/videos (served at $VITCOW_PUBLIC_URL)"
# Say where the UI is once it answers, after Dagster's own start-up lines.
( for _ in $(seq 1 180); do
    if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://$host:$port/server_info', timeout=2)" 2>/dev/null; then
      echo "Dagster UI ready: http://$host:$port  (Ctrl-C stops)"; exit 0
    fi
    sleep 1
  done ) &
# dg dev (Dagster's successor to `dagster dev`): the project's code location from pyproject.toml
# ([tool.dg]), run with this project's .venv (named as the active one, so dg does not warn)
export VIRTUAL_ENV=$PWD/.venv
.venv/bin/dg dev -h "$host" -p "$port" --log-level info
