"""Crop catalogs the real pipeline makes, for the labelling tests: ``pipeline_catalog`` runs
the pipeline (motion backend) on a synthetic video and reads its catalog. (A catalog with
known content, without the pipeline: ``vitcow_testbed.synthetic_catalog``.)
"""

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.catalog import catalog_rows, merge_catalogs
from vitcow_assets.media.parquet import write_table
from vitcow_assets_tests.helpers import materialize_partition, register

#: the pipeline settings of the labelling tests: 5 clips of 10 frames from a 100-frame video
SMALL_CLIPS = {"ops": {"prompts": {"config": {"prompt": "box"}}, "clips": {"config": {"frames_per_clip": 10, "frame_step": 2}}}}


def pipeline_catalog(video: Path, home: Path, instance: dg.DagsterInstance) -> tuple[str, pa.Table]:
    """Register and materialize ``video`` (motion backend, ``SMALL_CLIPS``); its catalog."""
    key = register(video, home, instance)
    result = materialize_partition(key, home, instance, SMALL_CLIPS)
    assert result.success
    clips = pq.read_table(home / "videos" / key / "clips" / "clips.parquet")
    catalog = merge_catalogs([catalog_rows(pq.read_table(home / "videos" / key / "crops" / "crops.parquet"), clips)])
    write_table(home / "catalog" / "crops.parquet", catalog)
    return key, catalog
