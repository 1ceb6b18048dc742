"""The labelling assets: the catalog follows every partition's crops by itself (its eager
automation condition), and the label snapshot carries each crop's lineage."""

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.labelling.store import LabelStore
from vitcow_assets_tests.helpers import landed_video, materialize_partition, register


def test_the_catalog_is_requested_again_whenever_a_partition_gets_new_crops(tmp_path):
    home = tmp_path / "home"
    catalog_only = dg.AssetSelection.assets("crop_catalog")
    with dg.instance_for_test() as instance:
        start = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=catalog_only)
        assert start.total_requested == 0
        failed = register(landed_video(tmp_path / "broken.mp4", frames=84), home, instance)  # a partition with no crops
        first = register(landed_video(tmp_path / "a.mp4", frames=88), home, instance)
        assert failed != first and materialize_partition(first, home, instance).success
        evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=catalog_only, cursor=start.cursor)
        assert evaluation.total_requested == 1
        resources = build_resources(backend="motion", home=str(home))
        assert defs.resolve_job_def("crop_catalog_job").execute_in_process(instance=instance, resources=resources).success
        cursor = evaluation.cursor
        quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=dg.AssetSelection.assets("crop_catalog"), cursor=cursor)
        assert quiet.total_requested == 0  # nothing new since the catalog was made
        second = register(landed_video(tmp_path / "b.mp4", frames=92), home, instance)
        assert materialize_partition(second, home, instance).success
        again = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=dg.AssetSelection.assets("crop_catalog"), cursor=quiet.cursor)
        assert again.total_requested == 1


def test_the_label_snapshot_joins_each_label_to_its_crops_lineage_and_keeps_orphans_apart(tmp_path):
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        key = register(landed_video(tmp_path / "pen.mp4", frames=84), home, instance)
        assert materialize_partition(key, home, instance).success
        resources = build_resources(backend="motion", home=str(home), environ={"VITCOW_LABELS_DB": f"sqlite:///{home}/labels/labels.db"})
        assert defs.resolve_job_def("crop_catalog_job").execute_in_process(instance=instance, resources=resources).success
        catalog = pq.read_table(home / "catalog" / "crops.parquet")
        with LabelStore.open(None, home) as store:
            store.add_label(catalog["crop_id"][0].as_py(), "alice", "Lying")
            store.add_label("0" * 20, "alice", "Standing")  # a crop the catalog does not have
        assert defs.resolve_job_def("labels_snapshot").execute_in_process(instance=instance, resources=resources).success
    labels = pq.read_table(home / "labels" / "behaviour_labels.parquet").to_pylist()
    (row,) = labels
    crop = catalog.to_pylist()[0]
    assert row["label"] == "Lying" and all(row[k] == crop[k] for k in ("crop_path", "video_id", "source_sha256", "track_id", "segmenter"))
    orphans = pq.read_table(home / "labels" / "orphaned_labels.parquet").to_pylist()
    assert [o["crop_id"] for o in orphans] == ["0" * 20]
    meta = pq.read_schema(home / "labels" / "behaviour_labels.parquet").metadata
    assert meta[b"vitcow.taxonomy_fingerprint"]
