"""crop_embeddings through Dagster: one partition per registered checkpoint, materialized on a
small site of real crops, its metadata (rows, columns, what was embedded and kept, the
encoder), a second materialization keeping every row, and a checkpoint whose bytes changed
failing the step in one line."""

import shutil

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.defs.embeddings import encoder_from_environment
from vitcow_assets.defs.partitions import checkpoint_partitions
from vitcow_assets.encoders.registry import CheckpointRegistry
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets_tests.encoders.crop_site import crop_site

ENCODER = {"device": "cpu", "batch_size": 4, "threads": 2}


def _resources(home):
    return {**build_resources(home=str(home), environ={}), "encoder": encoder_from_environment({}, **ENCODER)}


def _materialize(instance, home, key):
    job = defs.resolve_job_def("crop_embeddings_job")
    return job.execute_in_process(instance=instance, resources=_resources(home), partition_key=key, raise_on_error=False)


def _metadata(result) -> dict:
    (materialization,) = result.asset_materializations_for_node("crop_embeddings")
    return {k: v.value for k, v in materialization.metadata.items()}


def test_a_registered_checkpoint_s_partition_embeds_every_crop_and_keeps_them_the_second_time(tmp_path, tiny_checkpoints):
    home = tmp_path / "home"
    catalog = crop_site(home, tracks=3)
    entry = CheckpointRegistry(StorageRoot(home)).register(tiny_checkpoints["transformers_pretraining"])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(checkpoint_partitions.name, [entry.key])
        first = _materialize(instance, home, entry.key)
        assert first.success
        meta = _metadata(first)
        assert meta["dagster/row_count"] == catalog.num_rows and meta["path"] == str(StorageRoot(home).embeddings_table(entry.key))
        assert [c.name for c in meta["dagster/column_schema"].columns] == ["crop_id", "crop_path", "checkpoint_sha256", "frame_indices", "embedding", "code_version"]
        assert meta["counts"]["embedded"] == catalog.num_rows and meta["encoder"]["layout"] == "transformers" and meta["encoder"]["depth"] == 3
        assert meta["checkpoint"]["sha256"] == entry.sha256 and meta["runtime"]["batch_size"] == 4
        table_bytes = (home / "embeddings" / entry.key / "crop_embeddings.parquet").read_bytes()
        second = _materialize(instance, home, entry.key)
        assert second.success and _metadata(second)["counts"]["kept"] == catalog.num_rows
        assert (home / "embeddings" / entry.key / "crop_embeddings.parquet").read_bytes() == table_bytes
        records = instance.fetch_materializations(dg.AssetKey("crop_embeddings"), limit=5).records
        assert {r.partition_key for r in records} == {entry.key}
        assert pq.read_table(meta["path"]).num_rows == catalog.num_rows


def test_a_checkpoint_changed_since_registration_fails_the_step_in_one_line(tmp_path, tiny_checkpoints):
    home = tmp_path / "home"
    crop_site(home, tracks=2)
    path = tmp_path / "ckpt.pth"
    shutil.copy(tiny_checkpoints["original_model"], path)
    entry = CheckpointRegistry(StorageRoot(home)).register(path)
    path.write_bytes(path.read_bytes()[:-10])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(checkpoint_partitions.name, [entry.key])
        result = _materialize(instance, home, entry.key)
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        message = failure.step_failure_data.error.message.strip()
        assert f"checkpoint {path} changed since it was registered as {entry.key}" in message and "\n" not in message
    assert not (home / "embeddings" / entry.key).exists()
