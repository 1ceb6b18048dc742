"""Links from the Dagster UI to the crop pages: every ``object_crops`` materialization carries
a table preview of its crops (id, track, clip, frames, presence, page address: capped, the
rest counted) and a link to the video's crop list; the crop catalog links the whole list; the
assets a crop page links to are the partitioned assets of the code location."""

import os

import dagster as dg
import pyarrow.parquet as pq
import pytest

from vitcow_assets.core.catalog import catalog_rows
from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.defs.metadata import crops_preview
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.lineage.links import PARTITION_ASSETS, Links
from vitcow_assets_tests.helpers import register
from vitcow_assets_tests.labelling.crops import SMALL_CLIPS
from vitcow_testbed.synthetic import write_video

PAGES = "http://pages.test:9000"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    video = tmp_path_factory.mktemp("in") / "FARM_A" / "D01" / "202502052200_D01.mp4"
    video.parent.mkdir(parents=True)
    write_video(video, frames=60, width=160, height=120)
    resources = build_resources(backend="motion", home=str(home), environ={**os.environ, "VITCOW_PAGES_URL": PAGES})
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        crops = defs.resolve_job_def("process_video").execute_in_process(run_config=SMALL_CLIPS, instance=instance, partition_key=key, resources=resources)
        catalog = defs.resolve_job_def("crop_catalog_job").execute_in_process(instance=instance, resources=resources)
    return {"home": home, "key": key, "crops": crops, "catalog": catalog}


def test_object_crops_previews_every_crop_with_its_page_and_links_the_videos_list(run):
    (event,) = run["crops"].asset_materializations_for_node("object_crops")
    meta = event.metadata
    manifest = pq.read_table(StorageRoot(run["home"]).video(run["key"]).crops_table)
    ids = catalog_rows(manifest)["crop_id"].to_pylist()
    records = [r.data for r in meta["crops_preview"].records]
    assert [r["crop_id"] for r in records] == ids and len(ids) >= 3
    assert all(r["page"] == f"{PAGES}/crops/{r['crop_id']}" for r in records)
    assert [r["clip"] for r in records] == manifest["clip_id"].to_pylist() and [r["track"] for r in records] == manifest["track_id"].to_pylist()
    assert [c.name for c in meta["crops_preview"].schema.columns] == ["crop_id", "track", "clip", "object", "source_frames", "present", "page"]
    assert meta["crops_not_previewed"].value == 0
    assert meta["crop_pages"].value == f"{PAGES}/crops?video={run['key']}"


def test_the_preview_is_capped_and_counts_the_rest(run):
    layout = StorageRoot(run["home"]).video(run["key"])
    crops = pq.ParquetFile(layout.crops_table).metadata.num_rows
    meta = crops_preview(layout, Links(PAGES), limit=2)
    assert len(meta["crops_preview"].records) == 2 and meta["crops_not_previewed"].value == crops - 2


def test_the_catalog_links_the_list_of_every_crop(run):
    (event,) = run["catalog"].asset_materializations_for_node("crop_catalog")
    assert event.metadata["crop_pages"].value == f"{PAGES}/crops"


def test_the_assets_a_crop_page_links_to_are_partitioned_assets_of_the_code_location():
    graph = defs.resolve_asset_graph()
    for name in PARTITION_ASSETS:
        assert graph.get(dg.AssetKey(name)).partitions_def is not None, name
