"""The package's layering (docs/architecture.md), checked on the source: each package imports
only the packages below it, Dagster stays in the Dagster shell, torch in the segmenters and
the encoders (and there only where the model is), and the pure core imports no I/O library. Tests and benchmarks do not import each other (what they
share is ``vitcow_testbed``), the frozen baselines carry their own behaviour, and the wheel
holds the platform only."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vitcow_assets"

#: package -> the project packages it may import (the layers, bottom first)
BELOW = {
    "runtime": set(),
    "core": set(),
    "media": {"runtime", "core"},
    "remote": {"runtime", "core", "media"},
    "footage": {"runtime", "core", "media", "remote"},
    "segmenters": {"runtime", "core", "media"},
    "encoders": {"runtime", "core", "media", "footage", "segmenters"},
    "stages": {"runtime", "core", "media", "remote", "footage", "segmenters", "encoders"},
    "lineage": {"runtime", "core", "media", "footage"},
    "labelling": {"runtime", "core", "media", "footage", "lineage"},
    "datasets": {"runtime", "core", "media", "footage", "lineage", "labelling"},
    "evaluation": {"runtime", "core", "media", "footage", "lineage", "datasets"},
    "defs": {"runtime", "core", "media", "remote", "footage", "segmenters", "encoders", "stages", "lineage", "labelling", "datasets", "evaluation"},
    "cli": {"runtime", "core", "media", "remote", "footage", "segmenters", "encoders", "stages", "lineage", "labelling", "datasets", "evaluation", "defs", "definitions"},
    "definitions": {"defs"},
}
DAGSTER_SHELL = {"defs", "cli", "definitions"}
#: of the segmenters, the encoders use only the fix that makes torch, torchvision (and so
#: transformers) importable beside CPU torch
ENCODERS_FROM_SEGMENTERS = {"vitcow_assets.segmenters.torch_imports"}
#: the only encoder module that imports the model's libraries at import (the package reaches
#: it lazily, through ``encoders.load_encoder``); the others import them inside functions
ENCODER_MODEL_MODULE = "encoders/videomae.py"
MODEL_LIBRARIES = {"torch", "torchvision", "transformers", "safetensors"}
#: what the pure core must never import: the orchestrator, the model, files and streams
NOT_IN_CORE = {"dagster", "torch", "av", "os", "pathlib", "shutil", "io", "fsspec", "subprocess", "socket"}


def _imports():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("").parts
        package = relative[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                yield path.relative_to(PACKAGE), package, name


def test_every_package_is_placed_in_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} | {"definitions"}
    assert packages == set(BELOW)


def test_no_import_runs_back_up_the_layers():
    wrong = []
    for path, package, name in _imports():
        parts = name.split(".")
        if parts[0] == "vitcow_assets" and len(parts) > 1 and parts[1] != package and parts[1] not in BELOW[package]:
            wrong.append(f"{path}: {name}")
    assert wrong == []


def test_dagster_stays_in_the_shell_torch_in_the_segmenters_and_encoders_and_the_core_is_pure():
    wrong = []
    for path, package, name in _imports():
        top = name.split(".")[0]
        if top.startswith("dagster") and package not in DAGSTER_SHELL:
            wrong.append(f"{path}: {name} outside the Dagster shell")
        if top in ("torch", "torchvision", "sam3") and package not in ("segmenters", "encoders"):
            wrong.append(f"{path}: {name} outside the segmenters and encoders")
        in_sam3_transformers = package == "segmenters" and Path(path).name.startswith("sam3_transformers")
        if top == "transformers" and package != "encoders" and not in_sam3_transformers:
            wrong.append(f"{path}: {name} outside the encoders and the segmenters' sam3_transformers modules")
        if top == "safetensors" and package not in ("segmenters", "encoders"):  # checkpoint files of either
            wrong.append(f"{path}: {name} outside the segmenters and encoders")
        if name == "vitcow_assets.encoders.videomae" and package != "encoders":
            wrong.append(f"{path}: {name}: the model is reached through encoders.load_encoder")
        if package == "encoders" and name.startswith("vitcow_assets.segmenters") and name not in ENCODERS_FROM_SEGMENTERS:
            wrong.append(f"{path}: {name}: the encoders take only the torch import fix from the segmenters")
        if package == "core" and top in NOT_IN_CORE:
            wrong.append(f"{path}: {name} in the pure core")
    assert wrong == []


def test_the_encoders_import_the_model_libraries_lazily():
    """Only ``encoders/videomae.py`` imports torch or transformers at module level, and only
    ``encoders.load_encoder`` imports that module: importing the package (the Dagster
    definitions do) never loads torch."""
    wrong = []
    for path in sorted((PACKAGE / "encoders").glob("*.py")):
        relative = str(path.relative_to(PACKAGE))
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.split(".")[0] in MODEL_LIBRARIES and relative != ENCODER_MODEL_MODULE:
                    wrong.append(f"{relative}: {name} at module level")
                if name == "vitcow_assets.encoders.videomae":
                    wrong.append(f"{relative}: imports the model module at module level")
    assert wrong == []


def test_the_web_framework_stays_in_the_labelling_server():
    """The pages' story, lists and links (``lineage``) are plain functions: only the server
    modules of ``labelling`` import the web framework."""
    wrong = [f"{path}: {name}" for path, package, name in _imports() if name.split(".")[0] in ("starlette", "uvicorn") and package != "labelling"]
    assert wrong == []


#: the evaluation modules that read or write files; the others compute only (data in, data out)
EVALUATION_IO = {"inputs", "store", "runs"}


def test_evaluation_computes_in_pure_modules_and_reads_and_writes_in_three():
    """``evaluation``'s metrics, chance levels, probes, matching and charts import no file or
    stream library (and no project package that does I/O); only ``inputs``, ``store`` and
    ``runs`` read and write."""
    wrong = []
    for path, package, name in _imports():
        if package != "evaluation" or path.stem in EVALUATION_IO | {"__init__"}:
            continue
        parts = name.split(".")
        if parts[0] in NOT_IN_CORE or (parts[0] == "vitcow_assets" and parts[1] not in ("core", "evaluation")):
            wrong.append(f"{path}: {name}")
        if parts[:2] == ["vitcow_assets", "evaluation"] and len(parts) > 2 and parts[2] in EVALUATION_IO:
            wrong.append(f"{path}: {name}")
    assert wrong == []


def test_every_module_says_what_it_holds():
    missing = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__main__.py" and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []


# Tests, benchmarks and what they share (vitcow_testbed) stand apart from each other and from
# the platform: docs/architecture.md, "Tests, benchmarks and the testbed".

REPO = PACKAGE.parent
APART = {
    "vitcow_assets": {"vitcow_assets_tests", "vitcow_testbed", "benchmarks"},
    "vitcow_testbed": {"vitcow_assets_tests", "benchmarks", "pytest"},
    "vitcow_assets_tests": {"benchmarks"},
    "benchmarks": {"vitcow_assets_tests"},
}
#: what a frozen baseline (benchmarks/motion_v*.py) may take from the package: the records it
#: exchanges with the pipeline and the definitions of IoU; all behaviour is its own copy
FROZEN_MAY_IMPORT = {
    "vitcow_assets.core.clips": {"ClipWindow"},
    "vitcow_assets.core.detections": {"Detections"},
    "vitcow_assets.core.identity": {"ClipObservations"},
    "vitcow_assets.segmenters.base": {"FrameResult", "SegmenterConfigError"},
    "vitcow_assets.core.geometry": {"box_iou"},
    "vitcow_assets.core.masks": {"rle_iou", "rle_area"},
}


def _imported(paths):
    """``(file, module, names)`` of every absolute import in ``paths`` (names: None for
    ``import module``)."""
    for path in sorted(paths):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path.relative_to(REPO), alias.name, None
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path.relative_to(REPO), node.module, [a.name for a in node.names]


def test_tests_benchmarks_and_the_testbed_import_only_what_they_may():
    wrong = []
    for package, forbidden in APART.items():
        for path, module, names in _imported((REPO / package).rglob("*.py")):
            top = module.split(".")[0]
            if top in forbidden:
                wrong.append(f"{path}: {module}")
            # from the testbed and the benchmarks, only the package's public names
            if package != "vitcow_assets" and top == "vitcow_assets" and any(n.startswith("_") for n in names or ()):
                wrong.append(f"{path}: {module} private {[n for n in names if n.startswith('_')]}")
    assert wrong == []


def test_frozen_baselines_take_only_records_and_iou_from_the_package():
    wrong = []
    baselines = sorted((REPO / "benchmarks").glob("motion_v*.py"))
    assert len(baselines) >= 2
    for path, module, names in _imported(baselines):
        if module.split(".")[0] == "vitcow_assets":
            extra = set(names or ["(the module)"]) - FROZEN_MAY_IMPORT.get(module, set())
            if extra:
                wrong.append(f"{path}: {module} {sorted(extra)}")
    assert wrong == []


def test_the_wheel_ships_the_platform_only():
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = find_packages(str(REPO), include=config["include"], exclude=config.get("exclude", ()))
    assert "vitcow_assets" in shipped
    assert [p for p in shipped if p != "vitcow_assets" and not p.startswith("vitcow_assets.")] == []
    assert {p.split(".")[0] for p in find_packages(str(REPO))} >= {"vitcow_assets_tests", "vitcow_testbed", "benchmarks"}
