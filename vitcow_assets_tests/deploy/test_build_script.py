"""deploy/build-image.sh and deploy/check-image.sh refuse bad input in one line, before any
build starts, and leave nothing behind (no wheel in deploy/wheels/). Needs no container engine."""

import re
import subprocess
import tomllib

from vitcow_assets_tests.deploy.image_spec import ROOT

WHEELS = ROOT / "deploy" / "wheels"


def _run(*args, env=None):
    return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)


def test_a_cpu_build_without_the_cpu_wheel_stops_before_building(tmp_path):
    before = sorted(p.name for p in WHEELS.iterdir())
    run = _run("deploy/build-image.sh", "--torch", "cpu", env={"PATH": "/usr/bin:/bin", "WHEELS_DIR": str(tmp_path)})
    assert run.returncode == 3
    (line,) = run.stderr.strip().splitlines()
    assert "torch-2.13.0+cpu-cp311-cp311-*.whl is not in " + str(tmp_path) in line and "never downloads torch" in line
    assert sorted(p.name for p in WHEELS.iterdir()) == before


def test_an_unknown_torch_variant_is_refused():
    run = _run("deploy/build-image.sh", "--torch", "rocm")
    assert run.returncode == 2
    assert run.stderr.strip() == "build-image: --torch takes cuda or cpu, not 'rocm'"


def test_check_image_needs_a_tag():
    run = _run("deploy/check-image.sh")
    assert run.returncode == 2 and run.stderr.strip() == "usage: deploy/check-image.sh TAG"


def test_the_dockerfile_reads_the_project_dependencies_without_the_code(tmp_path):
    """deploy/pyproject_requirements.py: the base dependencies, then each extra's, in order."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["a>=1", "b"]\n[project.optional-dependencies]\ne1 = ["c", "a>=1"]\ne2 = ["d"]\n')
    run = subprocess.run(["python3", "deploy/pyproject_requirements.py", str(pyproject), "e2", "e1"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.split() == ["a>=1", "b", "d", "c"]
    bad = subprocess.run(["python3", "deploy/pyproject_requirements.py", str(pyproject), "e3"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == f"{pyproject}: unknown extra(s) e3; the project has e1, e2"


def test_the_declared_pythons_are_the_range_requires_python_admits():
    """pyproject's classifiers list exactly the minor versions its requires-python admits: 3.11
    (the venv, the CPU image) to 3.13 (the GPU image; SAM3 on a GPU wants 3.12 or newer)."""
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    supported = SpecifierSet(project["requires-python"])
    listed = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert listed == {f"3.{minor}" for minor in range(20) if f"3.{minor}" in supported} == {"3.11", "3.12", "3.13"}
