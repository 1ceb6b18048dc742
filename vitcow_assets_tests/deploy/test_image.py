"""The deployment image, built and started here: deploy/build-image.sh builds the CPU image on a
Debian base that mmdebstrap makes from Debian's packages (no image registry is needed), and
deploy/check-image.sh proves inside it that its Python is one the project supports, the code
location loads and serves, SAM3's modules import and the motion backend turns the sample into
crops, under the environment the Helm values give a step pod. What the check verified (image,
command, environment) is compared with the values, which name the GPU image: the same
Dockerfile built with CUDA torch (too large for CI: built and checked by hand, see
docs/deployment.md).

Skips, saying why, where podman, buildah or mmdebstrap are not installed (.ci/run installs
them), without root, or where the CPU torch wheel is missing. A first build takes about 9
minutes on the 2-core machine; with podman's layer cache a rebuild after a code change takes
seconds.
"""

import os
import re
import shutil
import subprocess
import time
import tomllib

import pytest

from vitcow_assets_tests.deploy.image_spec import ROOT, VALUES, load_yaml, step_pod_env, user_deployment

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
TAG = f"localhost/vitcow-assets:{VERSION}-cpu"  # build-image.sh's default tag with --torch cpu
CHECKS = {"step-env", "python", "executor", "definitions", "grpc", "vitcow-help", "sam3-imports", "motion-clip"}


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "building with podman (chroot isolation) and mmdebstrap needs root"
    for tool in ("podman", "buildah", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman buildah mmdebstrap; .ci/run does)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


@pytest.fixture(scope="module")
def built() -> tuple[str, float]:
    """The build's last line (``image TAG: SIZE bytes, built in N s``) and the seconds the
    build command took, timed here."""
    started = time.monotonic()
    run = subprocess.run(
        ["bash", "deploy/build-image.sh", "--torch", "cpu", "--make-base", TAG],
        cwd=ROOT, capture_output=True, text=True, timeout=2400,
    )
    elapsed = time.monotonic() - started
    if run.returncode == 3:  # the CPU torch wheel is not on this machine
        pytest.skip(run.stderr.strip().splitlines()[-1])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (last,) = [line for line in run.stdout.splitlines() if line.startswith(f"image {TAG}: ")]
    return last, elapsed


@pytest.fixture(scope="module")
def checked(built) -> str:
    run = subprocess.run(["bash", "deploy/check-image.sh", TAG], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run.stdout


def _verified(output: str, what: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(f"verified {what}: ")]


def test_build_reports_size_and_time(built):
    """The size is the built image's, as podman reports it; the time is this build's (no more
    than the command took, measured here)."""
    line, elapsed = built
    size, seconds = re.fullmatch(rf"image {re.escape(TAG)}: (\d+) bytes, built in (\d+) s", line).groups()
    inspected = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", TAG], capture_output=True, text=True, timeout=60)
    assert inspected.returncode == 0 and int(size) == int(inspected.stdout.strip())
    assert int(size) > 100_000_000
    assert int(seconds) <= elapsed + 1  # whole seconds, rounded down by the script's clock


def test_every_check_passes_inside_the_image(checked):
    passed = {m.group(1) for m in re.finditer(r"^check ([\w-]+): ok ", checked, re.M)}
    assert passed == CHECKS
    assert f"image check passed: {len(CHECKS)} checks" in checked
    assert "FAILED" not in checked


def test_the_motion_backend_wrote_crops_under_vitcow_home(checked):
    (line,) = [l for l in checked.splitlines() if l.startswith("check motion-clip: ok ")]
    clips, crops, rows = map(int, re.search(r"(\d+) clips, (\d+) crop videos \((\d+) manifest rows\)", line).groups())
    assert clips == 2 and crops >= 1 and rows == crops
    assert line.endswith(f"under {step_pod_env(load_yaml(VALUES))['VITCOW_HOME']}")


def test_the_cpu_image_has_cpu_torch_on_python_3_11(checked):
    (line,) = [l for l in checked.splitlines() if l.startswith("check sam3-imports: ok ")]
    assert "+cpu" in line and "(cuda None)" in line
    (python,) = [l for l in checked.splitlines() if l.startswith("check python: ok ")]
    assert python.startswith("check python: ok Python 3.11.")  # the CPU torch wheel's Python


def test_the_helm_values_run_what_the_check_verified(checked):
    values = load_yaml(VALUES)
    deployment = user_deployment(values)
    (image,) = _verified(checked, "image")
    name_and_tag = image.split(" ", 1)[0].rsplit("/", 1)[-1]
    # the values run the GPU image (build-image.sh's default tag); this is its CPU build
    assert name_and_tag == f"{deployment['image']['repository'].rsplit('/', 1)[-1]}:{deployment['image']['tag']}-cpu"
    (cmd,) = _verified(checked, "cmd")
    assert cmd.split() == ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", str(deployment["port"]), *deployment["dagsterApiGrpcArgs"]]
    env = dict(item.split("=", 1) for item in _verified(checked, "env"))
    pod = step_pod_env(values)
    assert env["VITCOW_HOME"] == pod["VITCOW_HOME"] and env["VITCOW_EXECUTOR"] == pod["VITCOW_EXECUTOR"] == "k8s"
    # the check ran under every variable the values give a step pod
    step_env = {line.split(" ", 1)[1] for line in checked.splitlines() if line.startswith("step-env ")}
    assert step_env == {f"{name}={value}" for name, value in pod.items()}
