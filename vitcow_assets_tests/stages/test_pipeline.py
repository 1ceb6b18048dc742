"""End to end: the whole asset graph on synthetic footage with known ground truth."""

import json

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from vitcow_assets.core.crop_windows import frame_windows
from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.core.masks import decode_mask
from vitcow_assets.core.tables import NO_PROMPT
from vitcow_assets.core.detections import Detections
from vitcow_assets.defs.metadata import SOURCE_SHA256
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.media.video import iter_frames, probe_video
from vitcow_assets.footage.ingest import read_raw_video
from vitcow_assets.footage.registry import Registry
from vitcow_assets.segmenters.base import FrameResult
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets.footage.layout import StorageRoot
from vitcow_testbed.fakes import FakeSegmenter, one_box
from vitcow_assets_tests.helpers import (
    materialize_partition,
    register,
    run_with_segmenter,
)
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, truth_mask

W, H = 320, 240


@pytest.fixture(scope="module")
def processed(synthetic_video, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with dg.instance_for_test() as instance:
        key = register(synthetic_video, home, instance)
        result = materialize_partition(key, home, instance, {"ops": {"prompts": {"config": {"prompt": "box"}}}})
        yield {"home": home, "key": key, "result": result, "instance": instance, "layout": StorageRoot(home).video(key)}


def test_every_asset_and_check_succeeds(processed):
    result = processed["result"]
    assert result.success
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_video", "clips", "prompts", "object_masks", "object_crops", "previews"}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "boxes_inside_frame": True, "masks_nonempty": True, "crop_frames_match_clips": True, "crops_trace_to_masks": True, "tracks_consistent": True,
    }
    assert processed["key"] in processed["instance"].get_materialized_partitions(dg.AssetKey("object_crops"))


def test_raw_video_record_and_data_version(processed, synthetic_video):
    raw = json.loads(processed["layout"].raw_video_json.read_text())
    assert raw["sha256"] == sha256_file(synthetic_video)
    video = raw["video"]  # the probe, as media.video.VideoInfo has it
    assert (video["width"], video["height"], video["frame_count"], video["fps"], raw["frame_count"]) == (W, H, 100, 10.0, 100)
    assert read_raw_video(processed["layout"]).video == probe_video(raw["stored_path"])
    event = processed["instance"].get_latest_materialization_event(dg.AssetKey("raw_video"))
    assert event.asset_materialization.tags["dagster/data_version"] == raw["sha256"]
    # the crops say which bytes they were made from, under the key the nightly catch-up reads
    crops_event = processed["instance"].get_latest_materialization_event(dg.AssetKey("object_crops"))
    assert crops_event.asset_materialization.metadata[SOURCE_SHA256].value == raw["sha256"]
    assert Registry(StorageRoot(processed["home"])).get(processed["key"]).sha256 == raw["sha256"]


def test_clips_manifest_and_clip_file(processed):
    clips = pq.read_table(processed["layout"].clips_table).to_pylist()
    assert len(clips) == 1
    clip = clips[0]
    assert (clip["source_frame_start"], clip["source_frame_end"], clip["frames"], clip["fps"]) == (0, 76, 20, 2.5)
    info = probe_video(clip["clip_path"])
    assert (info.codec, info.frame_count, info.width, info.height) == ("h264", 20, W, H)


def test_masks_match_ground_truth_with_stable_ids(processed):
    rows = pq.read_table(processed["layout"].masks_table).to_pylist()
    assert {r["prompt"] for r in rows} == {NO_PROMPT}  # motion ignores prompts, and says so
    assert pq.read_schema(processed["layout"].masks_table).metadata[b"vitcow.prompt"] == b"box"  # what was asked
    assert {r["segmenter"] for r in rows} == {MotionSegmenter.name}
    assert sorted({r["clip_frame"] for r in rows}) == list(range(20))
    ids = {k: set() for k in range(len(DEFAULT_OBJECTS))}
    for source_frame in range(0, 80, 4):
        frame_rows = [r for r in rows if r["source_frame"] == source_frame]
        assert len(frame_rows) == 2
        for k, obj in enumerate(DEFAULT_OBJECTS):
            truth = truth_mask(obj, source_frame, W, H)
            best = max(frame_rows, key=lambda r: mask_iou(decode_mask(r["mask_rle"]), truth))
            assert mask_iou(decode_mask(best["mask_rle"]), truth) > 0.8
            assert np.allclose([best["x1"], best["y1"], best["x2"], best["y2"]], obj.xyxy(source_frame), atol=2)
            ids[k].add(best["object_id"])
    assert all(len(v) == 1 for v in ids.values()) and ids[0] != ids[1]


def test_crops_windows_pixels_and_provenance(processed, synthetic_video):
    layout, result = processed["layout"], processed["result"]
    crops = pq.read_table(layout.crops_table).to_pylist()
    masks = pq.read_table(layout.masks_table).to_pylist()
    assert len(crops) == 2
    for crop in crops:
        assert crop["source_sha256"] == sha256_file(synthetic_video)
        assert crop["source_path"] == str(synthetic_video.absolute())
        assert (crop["source_frame_start"], crop["source_frame_end"], crop["frames"]) == (0, 76, 20)
        assert crop["segmenter"] == MotionSegmenter.name and crop["run_id"] == result.run_id and crop["code_version"]
        assert crop["frames_present"] == 20 and all(crop["present"])
        info = probe_video(crop["crop_path"])
        assert (info.codec, info.width, info.height, info.frame_count) == ("h264", 224, 224, 20)
        object_rows = {r["clip_frame"]: r for r in masks if r["object_id"] == crop["object_id"]}
        # Steady windows: every frame's box with its margin inside the window, never smaller than
        # the per-frame window (small objects keep native resolution), and the object's true
        # colour where its box centre falls in the crop.
        k = int(np.argmax([mask_iou(decode_mask(object_rows[0]["mask_rle"]), truth_mask(o, 0, W, H)) for o in DEFAULT_OBJECTS]))
        for clip_frame, rgb in iter_frames(crop["crop_path"]):
            row = object_rows[clip_frame]
            window = crop["window_xyxy"][clip_frame]
            own = frame_windows(np.array([[row["x1"], row["y1"], row["x2"], row["y2"]]], np.float64), 224, 0.1)[0]
            side = window[2] - window[0]
            assert window[3] - window[1] == side >= own[2] - own[0] == 224
            margin = 0.1 * max(row["x2"] - row["x1"], row["y2"] - row["y1"])
            assert window[0] <= row["x1"] - margin + 1 and window[1] <= row["y1"] - margin + 1
            assert window[2] >= row["x2"] + margin - 1 and window[3] >= row["y2"] + margin - 1
            cx, cy = ((row["x1"] + row["x2"]) / 2 - window[0]) * 224 / side, ((row["y1"] + row["y2"]) / 2 - window[1]) * 224 / side
            assert np.abs(rgb[int(cy), int(cx)].astype(int) - DEFAULT_OBJECTS[k].colour).max() < 30


def test_preview_is_attached(processed):
    assert processed["layout"].contact_sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    event = processed["instance"].get_latest_materialization_event(dg.AssetKey("previews"))
    metadata = event.asset_materialization.metadata
    assert metadata["preview"].value.startswith("![contact sheet](data:image/jpeg;base64,")
    assert metadata["preview_path"].value == str(processed["layout"].contact_sheet)
    # a short summary first, rendered inline by the UI (Markdown under 1,000 characters)
    assert list(metadata)[0] == "summary" and len(metadata["summary"].value) < 1000
    objects, in_clips = metadata["objects"].value, metadata["objects_in_clips_shown"].value
    assert objects > 0 and f"**{objects} objects** drawn on the middle frame" in metadata["summary"].value
    # the count object_crops works from (objects of the clips, any frame) is there too, and why the two differ
    masks = pq.read_table(processed["layout"].masks_table, columns=["clip_id", "object_id"])
    assert in_clips == len(set(zip(masks["clip_id"].to_pylist(), masks["object_id"].to_pylist()))) >= objects
    assert f"those clips hold **{in_clips} objects** in all" in metadata["summary"].value and "in view on that frame" in metadata["summary"].value


def test_rerun_replaces_outputs(processed):
    layout = processed["layout"]
    before = pq.read_table(layout.masks_table).drop(["mask_rle"]).to_pylist()
    crops_before = sorted(p.name for p in layout.crops_dir.rglob("*.mp4"))
    result = materialize_partition(processed["key"], processed["home"], processed["instance"], {"ops": {"prompts": {"config": {"prompt": "box"}}}})
    assert result.success
    assert pq.read_table(layout.masks_table).drop(["mask_rle"]).to_pylist() == before
    assert sorted(p.name for p in layout.crops_dir.rglob("*.mp4")) == crops_before
    assert not [p for p in layout.root.rglob(".tmp-*")]


def test_failing_mask_check_blocks_crops(synthetic_video, tmp_path, monkeypatch):
    bad = FakeSegmenter(detect=one_box([-10, 0, 5, 5]), name="bad/v0")  # a box that leaves the frame
    key, result = run_with_segmenter(bad, synthetic_video, tmp_path, monkeypatch)
    assert not result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["boxes_inside_frame"] is False
    assert "object_crops" not in {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert not StorageRoot(tmp_path).video(key).crops_table.exists()
    assert bad.closed == 1  # the session was closed


def test_session_is_closed_and_nothing_written_when_segmenter_fails(synthetic_video, tmp_path, monkeypatch):
    bad = FakeSegmenter(fail_on=1, error=MemoryError("simulated device failure"))
    key, result = run_with_segmenter(bad, synthetic_video, tmp_path, monkeypatch)
    assert not result.success
    layout = StorageRoot(tmp_path).video(key)
    assert bad.closed == 1
    assert not layout.masks_table.exists()
    assert not list(layout.root.rglob(".tmp-*"))


def test_bad_run_config_fails_the_step_in_one_line_naming_the_field(synthetic_video, tmp_path):
    """The launchpad's values get the CLI's checks (ClipSettings / CropSettings)."""
    with dg.instance_for_test() as instance:
        key = register(synthetic_video, tmp_path, instance)
        result = materialize_partition(key, tmp_path, instance, {"ops": {"clips": {"config": {"frame_step": 0}}}}, raise_on_error=False)
        failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert not result.success and [e.step_key for e in failures] == ["clips"]
    assert failures[0].step_failure_data.user_failure_data.description == "run config: frame_step must be >= 1, got 0"
