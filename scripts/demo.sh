#!/usr/bin/env bash
# Install, land the sample footage, and start Dagster (UI + daemon) on http://127.0.0.1:3000.
# The landing sensor picks the sample up once it has settled and processes it with the
# motion backend (SAM3 when VITCOW_SAM3_CHECKPOINT points to a checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export VITCOW_HOME=${VITCOW_HOME:-$PWD/vitcow_home}
export VITCOW_SETTLE_SECONDS=${VITCOW_SETTLE_SECONDS:-5}
export VITCOW_PROMPT=${VITCOW_PROMPT:-person}
eval "$(.venv/bin/vitcow init)"
landing=${VITCOW_LANDING:-$VITCOW_HOME/landing}
case "$landing" in
  *://*|*=*) ;;  # remote or several sources (see README): nothing to land locally
  *)
    mkdir -p "$landing"
    [ -e "$landing/vtest_sample.mp4" ] || cp samples/vtest_sample.mp4 "$landing/vtest_sample.mp4" ;;
esac
echo "Landing: $landing   Outputs: $VITCOW_HOME/videos   UI: http://127.0.0.1:${PORT:-3000}"
exec .venv/bin/dagster dev -w workspace.yaml -h "${HOST:-127.0.0.1}" -p "${PORT:-3000}"
