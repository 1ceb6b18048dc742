"""From crops to scorecards: real crop videos behind a crop catalog, a dataset export the real
pipeline builds from them (three farms, one held out), a random-init VideoMAE checkpoint of
the real architecture (test size) registered, and ``crop_embeddings`` then ``retrieval_eval``
and ``probe_eval`` materialized for its partition in one Dagster run. The scorecards' rows
name the checkpoint's sha256 and the dataset build, and score the very table
``crop_embeddings`` wrote; ``vitcow eval retrieval`` given the checkpoint's path finds the
same partition and prints the same rows."""

import json
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from vitcow_assets.core.taxonomy import parse_taxonomy
from vitcow_assets.datasets.build import DatasetSettings, build_dataset
from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.defs.embeddings import crop_embeddings, encoder_from_environment
from vitcow_assets.defs.evaluation import ProbeResource, RetrievalResource, probe_eval, retrieval_eval
from vitcow_assets.defs.partitions import checkpoint_partitions
from vitcow_assets.encoders.registry import CheckpointRegistry
from vitcow_assets.evaluation.inputs import read_dataset
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.labelling.taxonomy_file import default_taxonomy_text
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.media.parquet import write_table
from vitcow_assets_tests.datasets.synthetic_labels import Scene, synthetic_catalog, synthetic_labels
from vitcow_assets_tests.helpers import run_cli
from vitcow_testbed.videomae_inputs import write_crop

#: three farms, one camera, two videos of four tracks each: ~70 crops, a few seconds to embed
SCENE = Scene(cameras=1, videos=2, tracks=4, max_clips=3)
DATASET = DatasetSettings(test_farms=("FarmC",), subset_sizes=(8, 16), subset_repeats=2, subset_cap=True, hf=False)
ENCODER = {"device": "cpu", "batch_size": 4, "threads": 2}
#: crop videos a little longer than the tiny model's 4 frames
CROP_FRAMES = 8
CHECKPOINT = "original_model"


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_checkpoints):
    """Crop files, their catalog and a dataset export under a storage root; the checkpoint registered."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    root = StorageRoot(home)
    catalog = synthetic_catalog(Scene(**{**SCENE.__dict__, "root": str(home)}))
    for i, path in enumerate(catalog["crop_path"].to_pylist()):
        write_crop(Path(path), CROP_FRAMES, seed=i)
    write_table(root.catalog_table, catalog)
    taxonomy = parse_taxonomy(default_taxonomy_text(), "default taxonomy")
    build_dataset(root.datasets.default_export, catalog, synthetic_labels(catalog, taxonomy), taxonomy, DATASET,
                  catalog_path=str(root.catalog_table), catalog_sha256=sha256_file(root.catalog_table), code_version="0.1.0+gtest")
    entry = CheckpointRegistry(root).register(tiny_checkpoints[CHECKPOINT])
    return root, catalog, entry


def _resources(root: StorageRoot) -> dict:
    return {**build_resources(home=str(root.home), environ={}), "encoder": encoder_from_environment({}, **ENCODER),
            "retrieval": RetrievalResource(repeats=3), "probe": ProbeResource(cs=[0.1, 1.0])}


def test_the_scorecards_of_crops_embedded_by_a_real_architecture_name_the_checkpoint_and_the_build(site, tiny_checkpoints):
    root, catalog, entry = site
    graph = defs.resolve_asset_graph()
    assert crop_embeddings.key in graph.get(retrieval_eval.key).parent_keys and crop_embeddings.key in graph.get(probe_eval.key).parent_keys
    job = dg.define_asset_job("e2e", selection=[crop_embeddings, retrieval_eval, probe_eval])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(checkpoint_partitions.name, [entry.key])
        run = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("e2e")
        result = run.execute_in_process(instance=instance, resources=_resources(root), partition_key=entry.key, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        order = [e.asset_key.path[-1] for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
        assert order[0] == "crop_embeddings" and set(order) == {"crop_embeddings", "retrieval_eval", "probe_eval"}

    embeddings = pq.read_table(root.embeddings_table(entry.key))
    assert embeddings.num_rows == catalog.num_rows and embeddings.schema.field("embedding").type.list_size == 128
    assert pc.unique(embeddings["checkpoint_sha256"]).to_pylist() == [entry.sha256]
    fingerprint = read_dataset(root.datasets.default_export).fingerprint
    (retrieval,) = result.asset_materializations_for_node("retrieval_eval")
    (probe,) = result.asset_materializations_for_node("probe_eval")
    for materialization in (retrieval, probe):
        assert materialization.metadata["checkpoint_sha256"].value == entry.sha256
        assert materialization.metadata["dataset_fingerprint"].value == fingerprint
    folder = Path(retrieval.metadata["results_dir"].value)
    assert folder == Path(probe.metadata["results_dir"].value) and entry.key in folder.parts
    for name in ("retrieval", "probe_runs", "probe_curve"):
        table = pq.read_table(folder / f"{name}.parquet")
        assert table.num_rows > 0
        assert set(table["checkpoint_sha256"].to_pylist()) == {entry.sha256}, name
        assert set(table["dataset_fingerprint"].to_pylist()) == {fingerprint}, name
    rows = pq.read_table(folder / "retrieval.parquet").to_pylist()
    assert {r["setting"] for r in rows} == {"cross_farm", "within_farm"} and {r["k"] for r in rows} == {1, 2, 3, 5, 10}
    assert all(0 <= r["hit_micro"] <= 1 and 0 < r["chance_micro"] <= 1 for r in rows)
    curve = pq.read_table(folder / "probe_curve.parquet").to_pylist()
    assert len(curve) >= 2 and all(0 <= r["balanced_accuracy"] <= 1 for r in curve)

    done = run_cli(["eval", "retrieval", str(tiny_checkpoints[CHECKPOINT]), "--json", "--repeats", "3"], root.home)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout)
    assert printed["checkpoint"] == entry.key and printed["checkpoint_sha256"] == entry.sha256 and printed["dataset_fingerprint"] == fingerprint
    assert [(r["setting"], r["metric"], r["k"], r["hit_micro"]) for r in printed["rows"]] == [(r["setting"], r["metric"], r["k"], r["hit_micro"]) for r in rows]
