"""The package's layering (docs/architecture.md), checked on the source: each package imports
only the packages below it, Dagster stays in the Dagster shell, torch in the segmenters and
the encoders (and there only where the model is), and the pure core imports no I/O library."""

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
    "defs": {"runtime", "core", "media", "remote", "footage", "segmenters", "encoders", "stages", "lineage", "labelling", "datasets"},
    "cli": {"runtime", "core", "media", "remote", "footage", "segmenters", "encoders", "stages", "lineage", "labelling", "datasets", "defs", "definitions"},
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
        if top in ("transformers", "safetensors") and package != "encoders":
            wrong.append(f"{path}: {name} outside the encoders")
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


def test_every_module_says_what_it_holds():
    missing = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__main__.py" and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []
