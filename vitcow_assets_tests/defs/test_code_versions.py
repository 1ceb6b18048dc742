"""Every asset's code version is its computation's (``defs.code_versions``): the same in
any process and folder, unchanged by a change to docs, tests, docstrings or comments,
changed for ``object_crops`` and not ``clips`` by a change to the cropping stage; and each
materialization records the package version and commit as metadata."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from vitcow_assets.defs.code_versions import SOURCE, VERSION_METADATA, computation_version, versioned_asset
from vitcow_assets.definitions import defs
from vitcow_assets.runtime.version import code_version as running_version

REPO = Path(__file__).resolve().parents[2]
FOOTAGE_ASSETS = ("raw_video", "clips", "prompts", "object_masks", "object_crops", "previews")


def _functions() -> dict[str, object]:
    """Asset name -> the undecorated function that computes it (every asset this code
    location materializes; not those it only depends on by key, made elsewhere, nor the
    source assets it only observes, such as ``model_checkpoint``)."""
    out = {}
    for assets_def in defs.assets:
        if not getattr(assets_def, "is_materializable", False):
            continue
        fn = assets_def.op.compute_fn.decorated_fn
        out[assets_def.key.to_user_string()] = getattr(fn, "__wrapped__", fn)
    return out


def _materializable() -> dict[str, str | None]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).code_version for key in graph.materializable_asset_keys}


def _versions(tree=SOURCE) -> dict[str, str]:
    return {name: computation_version(fn, tree) for name, fn in _functions().items()}


@pytest.fixture()
def checkout(tmp_path):
    """A copy of the repository's package, docs, README and a test module, elsewhere."""
    copy = tmp_path / "checkout"
    shutil.copytree(REPO / "vitcow_assets", copy / "vitcow_assets", ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copytree(REPO / "docs", copy / "docs")
    shutil.copy(REPO / "README.md", copy / "README.md")
    (copy / "vitcow_assets_tests").mkdir()
    shutil.copy(Path(__file__), copy / "vitcow_assets_tests" / "test_copy.py")
    return copy, dataclasses.replace(SOURCE, root=copy / "vitcow_assets")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_every_asset_carries_its_computations_version():
    specs = _materializable()
    versions = _versions()
    assert set(specs) == set(versions) and len(versions) >= 16
    assert specs == versions  # an asset made with bare dg.asset (no version, or another one) fails here
    assert len(set(versions.values())) == len(versions)


def test_the_versions_are_the_same_in_another_process_and_folder(checkout, tmp_path):
    script = ("import json; from vitcow_assets.definitions import defs; graph = defs.resolve_asset_graph(); "
              "print(json.dumps({k.to_user_string(): graph.get(k).code_version for k in graph.materializable_asset_keys}))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "VITCOW_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == _versions()
    assert _versions(checkout[1]) == _versions()  # the copy elsewhere: no path enters a version


def test_docs_tests_docstrings_and_comments_leave_every_version_as_it_was(checkout):
    copy, tree = checkout
    before = _versions(tree)
    _edit(copy / "README.md", "vitcow", "vitcow (edited)")
    (copy / "docs" / "architecture.md").write_text("rewritten\n")
    _edit(copy / "vitcow_assets_tests" / "test_copy.py", "REPO =", "REPO_AGAIN = None\nREPO =")
    cropping = copy / "vitcow_assets" / "stages" / "cropping.py"
    _edit(cropping, '"""', '"""Reworded docstring.\n\n')
    _edit(cropping, "\ndef ", "\n# a new comment\n\n\ndef ")
    _edit(copy / "vitcow_assets" / "defs" / "assets.py", '"""One fixed-size crop video', '"""A reworded description: one fixed-size crop video')
    assert _versions(tree) == before


def test_a_change_in_the_cropping_stage_changes_object_crops_and_not_clips(checkout):
    copy, tree = checkout
    before = _versions(tree)
    _edit(copy / "vitcow_assets" / "stages" / "cropping.py", "\ndef ", "\nCHANGED = 1\n\n\ndef ")
    after = _versions(tree)
    changed = {name for name in before if before[name] != after[name]}
    assert "object_crops" in changed and "clips" not in changed
    assert not changed & {"raw_video", "clips", "prompts", "object_masks", "previews", "label_taxonomy"}
    _edit(copy / "vitcow_assets" / "core" / "clips.py", "\ndef ", "\nCHANGED = 1\n\n\ndef ")
    assert _versions(tree)["clips"] != after["clips"]


#: this test package's source, for assets defined here
TESTS = dataclasses.replace(SOURCE, package="vitcow_assets_tests", root=REPO / "vitcow_assets_tests", by_name=("vitcow_assets_tests",))


@versioned_asset(source_tree=TESTS)
def answer() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3}, data_version=dg.DataVersion("three"))


@versioned_asset(source_tree=TESTS, output_required=False)
def maybe(context: dg.AssetExecutionContext):
    yield dg.MaterializeResult(metadata={"rows": 1})


def test_a_materialization_records_the_commit_as_metadata_and_the_code_version_as_dagsters():
    with dg.instance_for_test() as instance:
        assert dg.materialize([answer, maybe], instance=instance).success
        for asset, rows in ((answer, 3), (maybe, 1)):
            event = instance.get_latest_materialization_event(asset.key).asset_materialization
            assert event.metadata["rows"].value == rows
            assert event.metadata[VERSION_METADATA].value == running_version() and running_version().startswith("0.")
            assert event.tags["dagster/code_version"] == computation_version(asset.op.compute_fn.decorated_fn.__wrapped__, TESTS)
        assert instance.get_latest_materialization_event(answer.key).asset_materialization.tags["dagster/data_version"] == "three"
    with pytest.raises(TypeError, match="derives code_version"):
        versioned_asset(code_version="1")
