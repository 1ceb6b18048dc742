"""The evaluation assets through Dagster on a small synthetic site (a dataset export built by
the real pipeline, embeddings tables of the crop_embeddings contract): each materializes,
stores its results under the storage root naming the dataset build, the checkpoint and the
code version, and shows its tables and charts (thumbnails as data URIs, full-size PNGs by
path); a refused predictions file fails the step one line per row and stores nothing."""

import base64
import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.defs.evaluation import ProbeResource, RetrievalResource
from vitcow_assets.evaluation.inputs import read_dataset
from vitcow_assets_tests.evaluation.predictions_files import predicted, seed_form
from vitcow_assets_tests.evaluation.synthetic_site import make_site

#: the UI shows Markdown below this size inline (ARCHITECTURE.md: images in the UI)
THUMBNAIL_LIMIT = 60_000


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("evaldefs"))


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _run(job: str, key: str, partitions: str, site, instance, run_config=None):
    instance.add_dynamic_partitions(partitions, [key])
    resources = build_resources(home=str(site["root"].home), environ={})
    resources["retrieval"] = RetrievalResource(repeats=3)
    resources["probe"] = ProbeResource(cs=[0.1, 1.0])
    return defs.resolve_job_def(job).execute_in_process(instance=instance, resources=resources, partition_key=key, run_config=run_config, raise_on_error=False)


def _image(metadata, name: str) -> bytes:
    """The thumbnail's JPEG bytes, checking the full-size PNG exists beside it."""
    markdown = metadata[name].value
    assert len(markdown) < THUMBNAIL_LIMIT and markdown.startswith("![") and "(data:image/jpeg;base64," in markdown
    assert Path(metadata[f"{name}_path"].value).read_bytes()[:4] == b"\x89PNG"
    return base64.b64decode(markdown.split("base64,", 1)[1].rstrip(")"))


def test_retrieval_eval_materializes_a_checkpoint_partition_with_its_curve_and_table(site, instance):
    result = _run("retrieval_eval_job", "separable", "checkpoints", site, instance)
    assert result.success
    metadata = result.asset_materializations_for_node("retrieval_eval")[0].metadata
    assert _image(metadata, "hit_at_k")[:2] == b"\xff\xd8"
    records = metadata["retrieval"].records
    assert len(records) == 20 and all(r.data["hit_micro"] == 1.0 and 0 < r.data["chance_micro"] < 1 for r in records)
    assert metadata["checkpoint_sha256"].value == site["checkpoints"]["separable"]
    assert metadata["dataset_fingerprint"].value == read_dataset(site["export"]).fingerprint
    assert "chance" in metadata["summary"].value
    stored = pq.read_table(metadata["path"].value)
    assert set(stored["checkpoint_sha256"].to_pylist()) == {site["checkpoints"]["separable"]}
    assert Path(metadata["results_dir"].value).parent.name == "separable"


def test_probe_eval_shows_the_curve_over_subset_sizes_and_the_confusion_matrix(site, instance):
    result = _run("probe_eval_job", "separable", "checkpoints", site, instance)
    assert result.success
    metadata = result.asset_materializations_for_node("probe_eval")[0].metadata
    _image(metadata, "probe_curve")
    _image(metadata, "confusion")
    curve = {r.data["subset_size"]: r.data for r in metadata["curve"].records}
    assert set(curve) == {"30", "90", "100000", "train"} and all(r["balanced_accuracy"] >= 0.95 for r in curve.values())
    assert any(r.data["capped"] for r in metadata["runs"].records)
    assert any("capped" in note for note in metadata["notes"].value)


def test_predictions_eval_scores_a_file_and_a_bad_one_stores_nothing(site, instance, tmp_path):
    export = read_dataset(site["export"])
    rows = predicted(export.split("test"), len(export.classes))
    good = seed_form(tmp_path / "predictions_full.csv", rows, len(export.classes))
    result = _run("predictions_eval_job", "finetuned", "predictions", site, instance, {"ops": {"predictions_eval": {"config": {"path": str(good)}}}})
    assert result.success
    metadata = result.asset_materializations_for_node("predictions_eval")[0].metadata
    _image(metadata, "confusion")
    assert metadata["scorecard"].records[0].data["accuracy"] == pytest.approx(0.8, abs=0.01)
    assert len(metadata["predictions_sha256"].value) == 64
    bad = tmp_path / "bad.csv"
    lines = good.read_text().splitlines()
    bad.write_text("\n".join([lines[0], "/nowhere.mp4" + lines[1][lines[1].index(","):]] + lines[2:]) + "\n")
    failed = _run("predictions_eval_job", "broken", "predictions", site, instance, {"ops": {"predictions_eval": {"config": {"path": str(bad)}}}})
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "line 2 (video_path '/nowhere.mp4'): matches no crop of the test split" in json.dumps(failure.event_specific_data.error.message)
    assert not (site["root"].evaluation_dir / "predictions" / "broken").exists()


def test_a_checkpoint_without_embeddings_fails_in_one_line(site, instance):
    result = _run("retrieval_eval_job", "nothing-embedded", "checkpoints", site, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "crop_embeddings.parquet is missing: embed the crops first" in failure.event_specific_data.error.message
