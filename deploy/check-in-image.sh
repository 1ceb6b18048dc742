#!/usr/bin/env bash
# Runs INSIDE the image; deploy/check-image.sh copies it in with the Helm values, the sample
# clip and the repository's tests, test bed and benchmarks (under REPO).
# Usage: check-in-image.sh VALUES_YAML CLIP REPO
#
# Exports the environment the Helm values give a run or step pod (the user deployment's `env`,
# which includeConfigInLaunchedRuns hands to run and step pods, and the run launcher's
# `envVars`), then proves that under it the Python is one the project supports, the code location
# loads, the chart's gRPC command serves and answers the chart's readiness probe, the `vitcow`
# command runs, SAM3's modules import, and the motion backend turns a short clip into crop videos
# under VITCOW_HOME. In an image whose torch carries CUDA (the GPU image) it also proves what
# SAM3 needs on a GPU that can be proven without one: Python 3.12 or newer, Triton's own build
# step compiling a C extension (as it builds its launcher at a kernel's first run), SAM3's Triton
# kernels importing and being the ones it would take on CUDA, SAM3's tests at test size passing
# (pytest, installed into this throwaway container only, from REPO), and the full-size smoke
# (python -m benchmarks.sam3_smoke, on the CPU: about 8 GB of memory and a few minutes).
# Every check prints one `check NAME: ok ...` line; the first failure prints
# `check NAME: FAILED ...` and exits 1.
set -euo pipefail
values=$1
clip=$2
repo=$3
passed=0

ok() { passed=$((passed + 1)); echo "check $1: ok $2"; }
fail() { echo "check $1: FAILED $2"; exit 1; }

gpu_checks() {  # what SAM3 needs on CUDA, proven on the CPU
  local out
  # Triton compiles its launcher (a C extension against Python.h) with the host's compiler at a
  # kernel's first run: its own build function on a small C extension, which is then imported
  out=$(python - <<'EOF' 2>&1
import importlib.util, inspect, os, shutil, subprocess, tempfile
import triton
from triton.runtime.build import _build

source = r"""
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "vitcow_triton_check", NULL, -1, methods};
PyMODINIT_FUNC PyInit_vitcow_triton_check(void) { return PyModule_Create(&module); }
"""
parameters = list(inspect.signature(_build).parameters)
with tempfile.TemporaryDirectory() as folder:
    src = os.path.join(folder, "main.c")
    with open(src, "w") as handle:
        handle.write(source)
    arguments = {"name": "vitcow_triton_check", "src": src, "srcdir": folder, "library_dirs": [], "include_dirs": [], "libraries": []}
    if "ccflags" in parameters:
        arguments["ccflags"] = []
    so = _build(**arguments)
    spec = importlib.util.spec_from_file_location("vitcow_triton_check", so)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.answer() == 42, module.answer()
cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang")
compiler = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
print(f"triton {triton.__version__}: triton.runtime.build._build({', '.join(parameters)}) compiled a C extension against Python.h with {compiler}; it imports and runs")
EOF
) || fail triton-build "$(tail -n 2 <<< "$out")"
  ok triton-build "$(tail -n 1 <<< "$out")"

  # the C source of Triton's NVIDIA driver module (cuda_utils, which its launchers use), compiled
  # and linked by that same build function with the driver's own include dirs and libraries; a
  # GPU node's libcuda.so.1 (mounted by the NVIDIA container toolkit, found with ldconfig) is
  # stood in for by an empty library, so the module is built, not imported
  out=$(python - <<'EOF' 2>&1
import os, shutil, subprocess, tempfile
from pathlib import Path
from triton.backends.nvidia import driver
from triton.runtime.build import _build

if shutil.which("ldconfig") is None and not os.path.exists("/sbin/ldconfig"):
    raise SystemExit("no ldconfig: Triton finds libcuda.so.1 with /sbin/ldconfig -p")
with tempfile.TemporaryDirectory() as folder:
    stub = Path(folder) / "stub"
    stub.mkdir()
    (stub / "empty.c").write_text("void vitcow_stand_in(void) {}\n")
    (name,) = driver.libraries
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(stub / name), str(stub / "empty.c")], check=True)
    src = Path(folder) / "cuda_utils.c"
    src.write_text((Path(driver.__file__).parent / "driver.c").read_text())
    so = _build("cuda_utils", str(src), folder, [driver.libdevice_dir, str(stub)], driver.include_dirs, driver.libraries, [])
    size = os.path.getsize(so)
print(f"Triton's NVIDIA driver.c (cuda_utils) compiles and links with {', '.join(driver.libraries)} in the image: {size} bytes")
EOF
) || fail triton-driver "$(tail -n 3 <<< "$out")"
  ok triton-driver "$(tail -n 1 <<< "$out")"

  # on CUDA, sam3 0.1.4 runs mask NMS and hole filling as Triton kernels unless torch_generic_nms
  # or cc_torch is installed (neither is on PyPI); sam3.model.edt imports triton itself
  out=$(python - <<'EOF' 2>&1
import importlib.metadata
from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable
make_torch_stack_importable()
import triton
import sam3.model.edt as edt
import sam3.perflib.connected_components as components
import sam3.perflib.nms as nms
from sam3.perflib.triton.connected_components import connected_components_triton
from sam3.perflib.triton.nms import nms_triton
if nms.GENERIC_NMS_AVAILABLE or components.HAS_CC_TORCH:
    raise SystemExit("torch_generic_nms or cc_torch is installed: SAM3 would not take its Triton kernels")
if not hasattr(edt, "triton"):
    raise SystemExit("sam3.model.edt is the CPU stand-in, not the real module: triton did not import")
print(f"sam3 {importlib.metadata.version('sam3')}: nms_triton and connected_components_triton import with triton {triton.__version__}; "
      "without torch_generic_nms and cc_torch they are what SAM3 runs on CUDA")
EOF
) || fail sam3-triton "$(tail -n 2 <<< "$out")"
  ok sam3-triton "$(tail -n 1 <<< "$out")"

  # SAM3's tests at test size, with this image's Python and packages; pytest goes into this
  # container only (the image ships without it)
  out=$(cd "$repo" && python -m pip install -q -c /opt/venv/torch-constraint.txt "pytest>=8" 2>&1 \
        && python -m pytest -q -p no:cacheprovider vitcow_assets_tests/segmenters/test_sam3.py vitcow_assets_tests/benchmarks/test_sam3_smoke.py 2>&1) \
    || fail sam3-tests "$(tail -n 5 <<< "$out")"
  ok sam3-tests "$(tail -n 1 <<< "$out" | tr -d '=' | sed 's/^ *//; s/ *$//') (pytest vitcow_assets_tests/segmenters/test_sam3.py vitcow_assets_tests/benchmarks/test_sam3_smoke.py)"

  # SAM3 at full size, random weights, in the release layout, through vitcow run on the CPU
  out=$(cd "$repo" && python -m benchmarks.sam3_smoke "$clip" 2>&1) || fail sam3-smoke "$(tail -n 5 <<< "$out")"
  grep -q 'layouts_ok=true' <<< "$(tail -n 1 <<< "$out")" || fail sam3-smoke "$(tail -n 1 <<< "$out")"
  ok sam3-smoke "$(tail -n 1 <<< "$out")"
}

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

# the GPU image is the one whose torch carries CUDA
cuda=$(python -c "import torch; print(torch.version.cuda or '')" 2>/dev/null) || fail python "torch does not import"

# the project's requires-python, as installed; SAM3 on a GPU wants 3.12 or newer (sam3 issue 238)
version=$(python - "$cuda" <<'EOF' 2>&1
import importlib.metadata, platform, sys
from packaging.specifiers import SpecifierSet
supported = SpecifierSet(importlib.metadata.metadata("vitcow_assets")["Requires-Python"])
found = platform.python_version()
if found not in supported:
    sys.exit(f"Python {found} is not in the project's requires-python {supported}")
if sys.argv[1] and sys.version_info < (3, 12):
    sys.exit(f"Python {found}: SAM3 on a GPU needs 3.12 or newer (its video add_prompt crashed on 3.11)")
print(f"Python {found} ({sys.executable}; requires-python {supported})")
EOF
) || fail python "$version"
ok python "$version"

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

if [ -n "$cuda" ]; then
  gpu_checks
fi

echo "image check passed: $passed checks"
