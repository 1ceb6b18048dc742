"""The CPU path on real footage (../shared/footage/vtest.avi); skipped where it is absent."""

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.core.tables import NO_PROMPT

from vitcow_assets.media.video import probe_video
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets_tests.helpers import materialize_partition, register


def test_people_on_a_campus_path_become_crops(vtest_avi, tmp_path):
    with dg.instance_for_test() as instance:
        key = register(vtest_avi, tmp_path, instance)
        result = materialize_partition(
            key, tmp_path, instance, {"ops": {"clips": {"config": {"max_clips": 2, "seed": 3}}, "prompts": {"config": {"prompt": "person"}}}}
        )
        assert result.success
    layout = StorageRoot(tmp_path).video(key)
    clips = pq.read_table(layout.clips_table)
    assert clips.num_rows == 2
    masks = pq.read_table(layout.masks_table, columns=["clip_id", "object_id", "clip_frame"])
    crops = pq.read_table(layout.crops_table).to_pylist()
    # About eight people walk through: each sampled clip has several moving objects.
    assert masks.num_rows >= 2 * 20 * 2
    assert len(crops) >= 4
    for crop in crops:
        info = probe_video(crop["crop_path"])
        assert (info.codec, info.width, info.height, info.frame_count) == ("h264", 224, 224, 20)
        assert crop["prompt"] == NO_PROMPT  # the motion backend ignores "person" (kept in the masks metadata)
