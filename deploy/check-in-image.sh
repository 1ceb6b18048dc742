#!/usr/bin/env bash
# Runs INSIDE the image; deploy/check-image.sh copies it in with the Helm values and the sample
# clip. Usage: check-in-image.sh VALUES_YAML CLIP
#
# Exports the environment the Helm values give a run or step pod (the user deployment's `env`,
# which includeConfigInLaunchedRuns hands to run and step pods, and the run launcher's
# `envVars`), then proves that under it the code location loads, the chart's gRPC command serves
# and answers the chart's readiness probe, the `vitcow` command runs, SAM3's modules import, and
# the motion backend turns a short clip into crop videos under VITCOW_HOME. Every check prints one
# `check NAME: ok ...` line; the first failure prints `check NAME: FAILED ...` and exits 1.
set -euo pipefail
values=$1
clip=$2
passed=0

ok() { passed=$((passed + 1)); echo "check $1: ok $2"; }
fail() { echo "check $1: FAILED $2"; exit 1; }

# the image's own settings, before the pod's environment is applied
image_home=${VITCOW_HOME:-}
image_executor=${VITCOW_EXECUTOR:-}

step_env=$(python - "$values" <<'EOF'
import sys, yaml
values = yaml.safe_load(open(sys.argv[1]))
(deployment,) = values["dagster-user-deployments"]["deployments"]
env = {item["name"]: str(item["value"]) for item in deployment.get("env", [])}
for item in values["runLauncher"]["config"]["k8sRunLauncher"].get("envVars", []):
    name, _, value = item.partition("=")
    env[name] = value
print("\n".join(f"{name}={value}" for name, value in sorted(env.items())))
EOF
)
while IFS= read -r line; do
  export "${line?}"
  echo "step-env $line"
done <<< "$step_env"
[ "$VITCOW_HOME" = "$image_home" ] || fail step-env "the values set VITCOW_HOME=$VITCOW_HOME, the image $image_home"
[ "$VITCOW_EXECUTOR" = "$image_executor" ] || fail step-env "the values set VITCOW_EXECUTOR=$VITCOW_EXECUTOR, the image $image_executor"
ok step-env "VITCOW_HOME=$VITCOW_HOME VITCOW_EXECUTOR=$VITCOW_EXECUTOR DAGSTER_HOME=$DAGSTER_HOME (image and Helm values agree)"

executor=$(python -c "from vitcow_assets.definitions import defs; print(defs.resolve_job_def('process_video').executor_def.name)" 2>/dev/null | tail -n 1) \
  || fail executor "vitcow_assets.definitions did not load"
[ "$executor" = k8s ] || fail executor "process_video runs its steps with '$executor', not k8s"
ok executor "process_video runs each step as a Kubernetes Job (executor $executor)"

out=$(dagster definitions validate -m vitcow_assets.definitions 2>&1) || fail definitions "$(tail -n 3 <<< "$out")"
passed_line=$(grep -o 'All code locations passed validation.*' <<< "$out") || fail definitions "no 'passed validation' line: $(tail -n 2 <<< "$out")"
ok definitions "dagster definitions validate -m vitcow_assets.definitions: $passed_line"

# the user deployment's container: `dagster api grpc -h 0.0.0.0 -p PORT <dagsterApiGrpcArgs>`, and
# the chart's readiness probe `dagster api grpc-health-check -p PORT`
grpc_args=$(python - "$values" <<'EOF'
import sys, yaml
(deployment,) = yaml.safe_load(open(sys.argv[1]))["dagster-user-deployments"]["deployments"]
print(" ".join(deployment["dagsterApiGrpcArgs"]))
EOF
)
port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
read -r -a grpc_argv <<< "$grpc_args"
dagster api grpc -h 127.0.0.1 -p "$port" "${grpc_argv[@]}" > /tmp/grpc.log 2>&1 &
server=$!
healthy=""
for _ in $(seq 1 120); do
  if timeout 30 dagster api grpc-health-check -p "$port" > /dev/null 2>&1; then healthy=yes; break; fi
  kill -0 "$server" 2> /dev/null || break
  sleep 1
done
# the code server shuts down gracefully on SIGTERM; give it 10 s, then kill it
kill "$server" 2> /dev/null || true
for _ in $(seq 1 10); do kill -0 "$server" 2> /dev/null || break; sleep 1; done
kill -9 "$server" 2> /dev/null || true
wait "$server" 2> /dev/null || true
[ -n "$healthy" ] || fail grpc "dagster api grpc $grpc_args never answered the health check: $(tail -n 3 /tmp/grpc.log)"
ok grpc "dagster api grpc -h 0.0.0.0 -p PORT $grpc_args answers dagster api grpc-health-check"

first=$(vitcow --help 2>&1 | head -n 1) || fail vitcow-help "vitcow --help failed: $first"
ok vitcow-help "$first"

# the backend's own first step: make torch, torchvision and sam3 importable together (on a CPU
# image PyPI's torchvision cannot register its C++ ops beside CPU torch; triton is absent)
sam3=$(python - <<'EOF' 2>&1
import importlib.metadata
import torch
from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable
make_torch_stack_importable()
import open_clip
import sam3.model.sam3_video_inference
import sam3.model.sam3_video_predictor
import sam3.model_builder
import sam3.perflib.connected_components
print(f"sam3 {importlib.metadata.version('sam3')}, torch {torch.__version__} (cuda {torch.version.cuda})")
EOF
) || fail sam3-imports "$(tail -n 2 <<< "$sam3")"
ok sam3-imports "$(tail -n 1 <<< "$sam3")"

report=/tmp/vitcow-run.json
if ! vitcow run "$clip" --backend motion --max-clips 2 --no-progress --json > "$report" 2> /tmp/vitcow-run.err; then
  fail motion-clip "vitcow run exited non-zero: $(tail -n 3 /tmp/vitcow-run.err) $(head -c 600 "$report")"
fi
summary=$(python - "$report" "$VITCOW_HOME" <<'EOF'
import json, sys
from pathlib import Path
import pyarrow.parquet as pq
(video,) = json.load(open(sys.argv[1]))["videos"]
home = Path(sys.argv[2])
crops = [Path(p) for p in video["crop_videos"]]
problems = [f"status {video['status']}: {video.get('error')}"] if video["status"] != "success" else []
problems += [f"{p} missing or empty" for p in crops if not (p.is_file() and p.stat().st_size > 0)]
problems += [f"{p} is outside VITCOW_HOME" for p in crops if home not in p.parents]
if not crops:
    problems.append("no crop videos")
clips = pq.read_metadata(video["clips_manifest"]).num_rows
rows = pq.read_metadata(video["crops_manifest"]).num_rows
if problems:
    print("; ".join(problems))
    sys.exit(1)
print(f"partition {video['partition_key']}: {clips} clips, {len(crops)} crop videos ({rows} manifest rows) under {home}")
EOF
) || fail motion-clip "$summary"
ok motion-clip "$summary"

echo "image check passed: $passed checks"
