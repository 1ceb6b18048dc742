import pyarrow as pa
import pytest

from vitcow_assets.core.catalog import CATALOG_SCHEMA, catalog_rows, crop_id, merge_catalogs
from vitcow_assets.core.tables import CROPS_SCHEMA


def crops_manifest(sha: str = "ab" * 32, objects=(0, 1), video_id: str = "v", segmenter: str = "motion/v2") -> pa.Table:
    rows = []
    for object_id in objects:
        rows.append(
            {
                "crop_path": f"/h/videos/{video_id}/crops/c00001/obj{object_id:04d}.mp4", "video_id": video_id, "source_path": "/in/v.mp4",
                "source_sha256": sha, "clip_id": "c00001", "object_id": object_id, "track_id": 10 + object_id, "part": 0, "prompt": "cow",
                "source_frame_start": 76, "source_frame_end": 152, "frame_step": 4, "frames": 20, "frames_present": 5 + object_id,
                "present": [True] * 20, "window_xyxy": [[0, 0, 224, 224]] * 20, "crop_size": 224, "margin": 0.1,
                "mask_background": False, "fps": 2.5, "segmenter": segmenter, "model_checkpoint": None, "code_version": "0.1.0",
                "run_id": "r", "farm": "F", "camera": "D01", "recorded_at": None, "source_uri": "file:///in/v.mp4",
            }
        )
    return pa.Table.from_pylist(rows, schema=CROPS_SCHEMA)


def test_catalog_rows_carry_provenance_and_a_stable_id():
    table = catalog_rows(crops_manifest())
    assert table.schema.equals(CATALOG_SCHEMA, check_metadata=False)
    rows = table.to_pylist()
    assert [r["presence_ratio"] for r in rows] == [0.25, 0.3]
    assert [r["duration_s"] for r in rows] == [8.0, 8.0]
    assert rows[0]["crop_id"] == crop_id("ab" * 32, 76, 4, 20, "motion/v2", 0)
    assert catalog_rows(crops_manifest())["crop_id"].to_pylist() == table["crop_id"].to_pylist()  # same bytes: same ids


def test_new_bytes_or_another_segmenter_give_new_ids():
    same = set(catalog_rows(crops_manifest())["crop_id"].to_pylist())
    assert same.isdisjoint(catalog_rows(crops_manifest(sha="cd" * 32))["crop_id"].to_pylist())
    assert same.isdisjoint(catalog_rows(crops_manifest(segmenter="sam3/0.1.4"))["crop_id"].to_pylist())


def test_merged_catalog_is_sorted_and_refuses_repeated_ids():
    a, b = catalog_rows(crops_manifest(video_id="b")), catalog_rows(crops_manifest(sha="cd" * 32, video_id="a"))
    merged = merge_catalogs([a, b])
    assert merged["video_id"].to_pylist() == ["a", "a", "b", "b"]
    assert merge_catalogs([b, a]).equals(merged)
    with pytest.raises(ValueError, match="repeat"):
        merge_catalogs([a, a])
