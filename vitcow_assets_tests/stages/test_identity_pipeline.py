"""End to end: track ids through the whole asset graph against synthetic ground truth.

The footage (``synthetic_tracks.py``) has six animals over six clips, with a crossing on a clip
boundary and an animal that stands still for two clips. ``ColourKeySegmenter`` (a segmenter
double with SAM3's session protocol) finds them exactly but shuffles object ids in every clip,
so continuity can only come from the cross-clip linking.
"""

import dataclasses
import json

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from vitcow_testbed.idscore import idf1
from vitcow_assets.cli import build_parser
from vitcow_assets.cli import main as cli_main
from vitcow_assets.cli.options import given
from vitcow_assets.core.clips import ClipSettings, plan_clips
from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.core.identity import LinkSettings
from vitcow_assets.core.masks import decode_mask
from vitcow_assets.defs.resources import segmenter_from_environment
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.segmenters.base import SegmenterConfigError
from vitcow_testbed import synthetic_tracks as st
from vitcow_assets_tests.helpers import materialize_partition, register
from vitcow_testbed.synthetic import MovingBox, write_video

CLIP_CONFIG = {"frames_per_clip": st.FRAMES_PER_CLIP, "frame_step": st.FRAME_STEP, "write_clip_files": False}


def _run(video, home, segmenter, monkeypatch, clip_config=CLIP_CONFIG):
    if segmenter is not None:
        monkeypatch.setattr("vitcow_assets.defs.resources.cached_segmenter", lambda *args: segmenter)
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        result = materialize_partition(key, home, instance, {"ops": {"clips": {"config": clip_config}}})
        return StorageRoot(home).video(key), result


@pytest.fixture(scope="module")
def tracks_video(tmp_path_factory):
    return st.write_tracks_video(tmp_path_factory.mktemp("tracks") / "pen 4.mp4")


@pytest.fixture(scope="module")
def linked(tracks_video, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        layout, result = _run(tracks_video, tmp_path_factory.mktemp("home"), st.ColourKeySegmenter(), monkeypatch)
    assert result.success
    masks = pq.read_table(layout.masks_table).to_pylist()
    return {"layout": layout, "result": result, "masks": masks}


def _truth_of(rows: list[dict]) -> dict[int, set[int]]:
    """Track ids given to each true animal: the row whose mask is its visible mask."""
    ids: dict[int, set[int]] = {k: set() for k in range(len(st.ANIMALS))}
    by_frame: dict[int, list[dict]] = {}
    for row in rows:
        by_frame.setdefault(row["source_frame"], []).append(row)
    for frame, frame_rows in by_frame.items():
        for k, truth in enumerate(st.visible_masks(frame)):
            if truth.sum() < 4:
                assert all(mask_iou(decode_mask(r["mask_rle"]), truth) < 0.5 for r in frame_rows)
                continue
            best = max(frame_rows, key=lambda r: mask_iou(decode_mask(r["mask_rle"]), truth))
            assert mask_iou(decode_mask(best["mask_rle"]), truth) > 0.9, (frame, k)
            ids[k].add(best["track_id"])
    return ids


def test_every_animal_keeps_one_track_id_through_every_clip(linked):
    masks = linked["masks"]
    assert len({r["clip_id"] for r in masks}) == st.CLIPS
    ids = _truth_of(masks)
    assert all(len(v) == 1 for v in ids.values()), ids  # the crossing and the still animal included
    assert len({next(iter(v)) for v in ids.values()}) == len(st.ANIMALS)
    assert {r["track_id"] for r in masks} == {next(iter(v)) for v in ids.values()}
    # object ids alone say nothing across clips (the double shuffles them) ...
    per_clip = {(r["clip_id"], r["object_id"]) for r in masks}
    assert len({o for _, o in per_clip}) > len(st.ANIMALS)
    # ... and the identity score over the whole video is perfect
    gt = st.ground_truth_rows(sorted({r["source_frame"] for r in masks}))
    assert idf1(gt, masks) == 1.0


def test_crops_carry_the_track_id_and_the_tracks_table_lists_every_crop(linked):
    layout = linked["layout"]
    masks = linked["masks"]
    crops = pq.read_table(layout.crops_table).to_pylist()
    tracks = pq.read_table(layout.tracks_table).to_pylist()
    track_of = {(r["clip_id"], r["object_id"]): r["track_id"] for r in masks}
    assert crops and all(c["track_id"] == track_of[(c["clip_id"], c["object_id"])] for c in crops)
    assert [t["track_id"] for t in tracks] == sorted({r["track_id"] for r in masks})
    for track in tracks:
        own = [c for c in crops if c["track_id"] == track["track_id"]]
        own.sort(key=lambda c: c["source_frame_start"])
        frames = sorted({r["source_frame"] for r in masks if r["track_id"] == track["track_id"]})
        assert track["crop_paths"] == [c["crop_path"] for c in own]
        assert track["clips"] == [c["clip_id"] for c in own]
        assert track["object_ids"] == [c["object_id"] for c in own]
        assert (track["first_source_frame"], track["last_source_frame"], track["frames_present"]) == (frames[0], frames[-1], len(frames))
        assert track["video_id"] == crops[0]["video_id"] and track["prompt"] == "cow"
    # the animal that stands still for two clips is one track spanning the whole video
    still = _truth_of(masks)[st.STILL_ANIMAL].pop()
    row = next(t for t in tracks if t["track_id"] == still)
    assert len(row["clips"]) == st.CLIPS and (row["first_source_frame"], row["last_source_frame"]) == (0, st.CLIPS * st.CLIP_STRIDE)
    assert pq.read_schema(layout.crops_table).metadata[b"vitcow.tracks_table"] == str(layout.tracks_table).encode()
    recorded = json.loads(pq.read_schema(layout.masks_table).metadata[b"vitcow.link_settings"])
    assert recorded == dataclasses.asdict(LinkSettings())


def test_materialization_points_to_the_tracks_table_and_the_check_passes(linked):
    result = linked["result"]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["tracks_consistent"] is True
    crops = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "object_crops")
    metadata = crops.materialization.metadata
    assert metadata["tracks_table"].value == str(linked["layout"].tracks_table)
    assert metadata["tracks"].value == len(st.ANIMALS)
    assert "track_id" in {c.name for c in metadata["tracks_schema"].schema.columns}
    masks_event = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "object_masks")
    assert masks_event.materialization.metadata["tracks"].value == len(st.ANIMALS)


def test_tracks_end_where_sampled_clips_leave_a_gap(tracks_video, tmp_path, monkeypatch):
    config = {**CLIP_CONFIG, "max_clips": 4}
    # a seed whose 4 sampled clips of 6 hold both a consecutive pair and a gap
    seed = next(
        s for s in range(50)
        if _has_gap_and_pair(plan_clips(st.FRAMES, st.FPS, ClipSettings(st.FRAMES_PER_CLIP, st.FRAME_STEP, max_clips=4, seed=s)))
    )
    layout, result = _run(tracks_video, tmp_path, st.ColourKeySegmenter(), monkeypatch, {**config, "seed": seed})
    assert result.success
    masks = pq.read_table(layout.masks_table).to_pylist()
    clips = pq.read_table(layout.clips_table).to_pylist()
    assert len(clips) == 4
    tracks_in = {c["clip_id"]: {r["track_id"] for r in masks if r["clip_id"] == c["clip_id"]} for c in clips}
    for a, b in zip(clips, clips[1:]):
        if b["clip_index"] == a["clip_index"] + 1:
            assert a["source_frame_end"] == b["source_frame_start"]
            assert tracks_in[a["clip_id"]] & tracks_in[b["clip_id"]]  # the same animals go on
        else:
            later = set().union(*(tracks_in[c["clip_id"]] for c in clips if c["clip_index"] >= b["clip_index"]))
            earlier = set().union(*(tracks_in[c["clip_id"]] for c in clips if c["clip_index"] <= a["clip_index"]))
            assert not later & earlier  # every track ended at the gap
    tracks = pq.read_table(layout.tracks_table).to_pylist()
    assert sum(len(t["crop_paths"]) for t in tracks) == pq.read_metadata(layout.crops_table).num_rows


def _has_gap_and_pair(clips) -> bool:
    steps = [b.clip_index - a.clip_index for a, b in zip(clips, clips[1:])]
    return 1 in steps and any(s > 1 for s in steps)


def test_motion_backend_keeps_moving_animals_on_one_track_across_clips(tmp_path, monkeypatch):
    """The motion segmenter's detections are linked the same way (two small boxes that keep
    moving, so that a per-clip background finds them whole)."""
    boxes = (
        MovingBox(start=(10, 20), velocity=(2.5, 0.3), size=(14, 12), colour=(255, 230, 60)),
        MovingBox(start=(290, 200), velocity=(-2.4, -0.5), size=(12, 14), colour=(200, 235, 255)),
    )
    video = write_video(tmp_path / "two.mp4", frames=st.FRAMES, objects=boxes)
    layout, result = _run(video, tmp_path / "home", None, monkeypatch)
    assert result.success
    masks = pq.read_table(layout.masks_table).to_pylist()
    assert len({r["clip_id"] for r in masks}) == st.CLIPS
    ids = {k: set() for k in range(len(boxes))}
    found = {k: set() for k in range(len(boxes))}
    for row in masks:
        box = np.array([row["x1"], row["y1"], row["x2"], row["y2"]])
        for k, obj in enumerate(boxes):
            if np.abs(box - obj.xyxy(row["source_frame"])).max() <= 3:
                ids[k].add(row["track_id"])
                found[k].add(row["source_frame"])
    sampled = {r["source_frame"] for r in masks}
    assert all(len(f) >= 0.9 * len(sampled) for f in found.values()), {k: len(f) for k, f in found.items()}
    assert all(len(v) == 1 for v in ids.values()) and ids[0] != ids[1], ids


def test_cli_lists_tracks_and_every_crop_of_one_animal(linked, tracks_video, monkeypatch, capsys):
    from vitcow_assets import cli

    layout = linked["layout"]
    monkeypatch.setenv("VITCOW_HOME", str(layout.root.parent.parent))
    tracks = pq.read_table(layout.tracks_table).to_pylist()
    assert cli.main(["tracks", layout.root.name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(tracks) and lines[0].split()[:2] == ["track", "prompt"]
    still = _truth_of(linked["masks"])[st.STILL_ANIMAL].pop()
    assert cli.main(["tracks", str(tracks_video), "--track", str(still)]) == 0  # by the video's path too
    paths = capsys.readouterr().out.split()
    crops = pq.read_table(layout.crops_table).to_pylist()
    assert paths == [c["crop_path"] for c in sorted(crops, key=lambda c: c["source_frame_start"]) if c["track_id"] == still]
    assert len(paths) == st.CLIPS
    assert cli.main(["tracks", layout.root.name, "--track", "999"]) == 2
    assert "no track 999" in capsys.readouterr().err


def test_link_settings_come_from_the_environment_and_the_cli_and_reach_the_masks_table(tracks_video, tmp_path, monkeypatch, capsys):
    resource = segmenter_from_environment({"VITCOW_LINK_MAX_LOST_STEPS": "7"}, {"link": {"edge_px": 5}}, backend="motion")
    assert resource.link_settings() == LinkSettings(max_lost_steps=7, edge_px=5)
    with pytest.raises(SegmenterConfigError, match=r"link.max_gap_steps must be >= 1, got 0 \(set VITCOW_LINK_MAX_GAP_STEPS or --link-max-gap-steps\)"):
        segmenter_from_environment({"VITCOW_LINK_MAX_GAP_STEPS": "0"}, backend="motion").link_settings()
    args = build_parser().parse_args(["run", "x.mp4", "--link-max-gap-steps", "2", "--link-min-mask-iou", "0.5"])
    assert given(args, LinkSettings, "link") == {"max_gap_steps": 2, "min_mask_iou": 0.5}
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["run", str(tracks_video), "--link-max-gap-steps", "0"])
    assert exit_info.value.code == 2 and "--link-max-gap-steps must be >= 1, got 0" in capsys.readouterr().err
    monkeypatch.setenv("VITCOW_LINK_MAX_LOST_STEPS", "7")
    layout, result = _run(tracks_video, tmp_path, st.ColourKeySegmenter(), monkeypatch)
    assert result.success
    recorded = json.loads(pq.read_schema(layout.masks_table).metadata[b"vitcow.link_settings"])
    assert recorded == dataclasses.asdict(LinkSettings(max_lost_steps=7))
