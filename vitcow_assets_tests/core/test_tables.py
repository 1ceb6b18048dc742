import numpy as np
import pyarrow as pa

from vitcow_assets.core import validation
from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.masks import decode_mask
from vitcow_assets.core.tables import CLIPS_SCHEMA, CROPS_SCHEMA, MASKS_SCHEMA, TRACKS_SCHEMA, clip_rows, clips_from_table, mask_rows, schema_descriptions
from vitcow_assets.core.detections import Detections

CLIP = ClipWindow(clip_index=3, source_start=240, frame_step=4, frames=20)


def _detections():
    masks = np.zeros((2, 6, 8), bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4:6, 0:8] = True
    return Detections(
        xyxy=[[2, 1, 5, 3], [0, 4, 8, 6]], masks=masks, scores=[0.9, 0.5], object_ids=[4, 7], prompts=["cow", "calf"]
    )


def test_mask_rows_follow_schema_and_map_clip_frame_to_source_frame():
    batch = mask_rows("vid", CLIP, 2, _detections(), "motion/v1")
    assert batch.schema.equals(MASKS_SCHEMA)
    rows = batch.to_pylist()
    assert [r["source_frame"] for r in rows] == [248, 248]
    assert [r["object_id"] for r in rows] == [4, 7]
    assert [r["track_id"] for r in rows] == [-1, -1]  # set when the clip is linked
    assert mask_rows("vid", CLIP, 2, _detections(), "m", track_ids=[8, 3])["track_id"].to_pylist() == [8, 3]
    assert [r["prompt"] for r in rows] == ["cow", "calf"]
    assert [r["area"] for r in rows] == [6, 16]
    assert rows[0]["frame_width"] == 8 and rows[0]["frame_height"] == 6
    assert np.array_equal(decode_mask(rows[1]["mask_rle"]), _detections().masks[1])


def test_mask_rows_for_a_frame_without_objects_is_empty():
    assert mask_rows("vid", CLIP, 0, Detections.empty(6, 8), "m").num_rows == 0


def test_clip_rows_round_trip():
    clips = [ClipWindow(0, 0, 4, 20), CLIP]
    table = clip_rows("vid", clips, 10.0, [None, "/x/c00003.mp4"])
    assert table.schema.equals(CLIPS_SCHEMA)
    assert table["source_frame_end"].to_pylist() == [76, 316]
    assert table["fps"].to_pylist() == [2.5, 2.5]
    assert table["start_time_s"].to_pylist() == [0.0, 24.0]
    assert clips_from_table(table) == clips


def test_every_column_is_documented():
    for schema in (CLIPS_SCHEMA, MASKS_SCHEMA, CROPS_SCHEMA, TRACKS_SCHEMA):
        assert all(desc for _, _, desc in schema_descriptions(schema))
    required = {"video_id", "clip_id", "clip_frame", "source_frame", "object_id", "prompt", "score", "x1", "y1", "x2", "y2", "area", "mask_rle"}
    assert required <= set(MASKS_SCHEMA.names)
    provenance = {"crop_path", "video_id", "source_path", "source_sha256", "clip_id", "object_id", "source_frame_start", "source_frame_end", "frames", "prompt", "segmenter", "code_version", "run_id"}
    assert provenance <= set(CROPS_SCHEMA.names)


def test_box_and_mask_validation_find_the_bad_rows():
    good = pa.Table.from_batches([mask_rows("vid", CLIP, 0, _detections(), "m")])
    assert validation.boxes_outside_frame(good).num_rows == 0
    assert validation.empty_masks(good).num_rows == 0
    bad = good.set_column(good.schema.get_field_index("x2"), "x2", pa.array([5.0, 9.0], pa.float32()))
    assert validation.boxes_outside_frame(bad)["object_id"].to_pylist() == [7]
    empty = good.set_column(good.schema.get_field_index("area"), "area", pa.array([0, 16], pa.int64()))
    assert validation.empty_masks(empty)["object_id"].to_pylist() == [4]


def _crops(*presents, frames=3):
    return pa.Table.from_pylist(
        [
            {"crop_path": f"/c{part}.mp4", "clip_id": "c00003", "object_id": 4, "frames": frames, "present": present}
            for part, present in enumerate(presents)
        ]
    )


def test_crop_validation_against_clips_and_masks():
    clips = pa.Table.from_pylist([{"clip_id": "c00003", "frames": 3}])
    masks = pa.Table.from_pylist([{"clip_id": "c00003", "object_id": 4, "clip_frame": 1}])
    ok = _crops([False, True, False])
    assert validation.crop_frame_mismatches(ok, clips) == []
    assert validation.crop_frame_mismatches(ok, clips, measured={"/c0.mp4": 2})[0]["crop_path"] == "/c0.mp4"
    assert len(validation.crop_frame_mismatches(_crops([True, True], frames=2), clips)) == 1
    assert validation.untraceable_crops(ok, masks) == []
    assert len(validation.untraceable_crops(_crops([True, True, False]), masks)) == 1
    two = pa.Table.from_pylist([{"clip_id": "c00003", "object_id": 4, "clip_frame": f} for f in (0, 2)])
    assert validation.untraceable_crops(_crops([True, False, False], [False, False, True]), two) == []  # parts of one object
    overlap = validation.untraceable_crops(_crops([True, False, False], [True, False, True]), two)
    assert [b["crop_path"] for b in overlap] == ["/c1.mp4"]  # a frame shown twice
    missing = validation.untraceable_crops(_crops([True, False, False]), two)
    assert missing == [{"crop_path": None, "clip_id": "c00003", "object_id": 4}]  # a mask frame no crop shows
