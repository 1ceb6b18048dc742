"""The crop stage's windows: steady by default (a standing animal gets one fixed window),
every box inside its window, and an object whose id moves to another animal mid-clip is cut
into parts that partition its mask rows, none of which contains a jump."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from vitcow_assets.core import crop_windows as cw
from vitcow_assets.core.speeds import Reach
from vitcow_assets.core.tables import clip_fps_by_id, clips_from_table
from vitcow_assets.media.video import iter_frames, probe_video
from vitcow_assets.stages.cropping import CropProvenance, CropSettings, CropSummary, write_crops
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets_tests.stages.outputs import normalized_table
from vitcow_assets_tests.stages.runs import partition
from vitcow_testbed.synthetic_tracks import ANIMALS, FRAME_STEP, STILL_ANIMAL

#: the clip where the segmenter's ids are made to swap between two animals, and from which clip frame
SWAP_CLIP, SWAP_FROM = "c00001", 5


def _object_near(masks: pa.Table, clip_id: str, point: tuple[float, float]) -> int:
    rows = masks.filter(pc.and_(pc.equal(masks["clip_id"], clip_id), pc.equal(masks["clip_frame"], 0))).to_pylist()
    dist = [np.hypot((r["x1"] + r["x2"]) / 2 - point[0], (r["y1"] + r["y2"]) / 2 - point[1]) for r in rows]
    return rows[int(np.argmin(dist))]["object_id"]


def _animal_at(k: int, source_frame: int) -> tuple[float, float]:
    x1, y1, x2, y2 = ANIMALS[k].xyxy(source_frame)
    return (x1 + x2) / 2, (y1 + y2) / 2


@pytest.fixture(scope="module")
def swapped(first_run, tmp_path_factory) -> dict:
    """The first run's masks with the ids of the still animal and the slow bottom-left one
    swapped from ``SWAP_FROM`` on in ``SWAP_CLIP``: an identity switch, ~250 px apart."""
    home, report = first_run
    folder = partition(home, report)
    masks = pq.read_table(folder / "masks/object_masks.parquet")
    clips = pq.read_table(folder / "clips/clips.parquet")
    start = clips.filter(pc.equal(clips["clip_id"], SWAP_CLIP))["source_frame_start"][0].as_py()
    a, b = (_object_near(masks, SWAP_CLIP, _animal_at(k, start)) for k in (STILL_ANIMAL, 5))
    assert a != b
    rows = masks.to_pylist()
    ids = {r["object_id"]: r["track_id"] for r in rows if r["clip_id"] == SWAP_CLIP}
    for r in rows:
        if r["clip_id"] == SWAP_CLIP and r["clip_frame"] >= SWAP_FROM and r["object_id"] in (a, b):
            r["object_id"] = b if r["object_id"] == a else a
            r["track_id"] = ids[r["object_id"]]
    path = tmp_path_factory.mktemp("swapped") / "object_masks.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=masks.schema), path)
    return {"masks": path, "clips": clips, "source": report["path"], "swapped": (a, b), "tmp": tmp_path_factory}


def _crops(swapped: dict, settings: CropSettings, name: str, workers: int | None = None) -> tuple[pa.Table, CropSummary, Path]:
    layout = StorageRoot(swapped["tmp"].mktemp(name)).video("v")
    clips = swapped["clips"]
    provenance = CropProvenance("v", swapped["source"], "0" * 64, "motion/v2", None, "test", "run-1")
    summary = CropSummary()
    count, incomplete = write_crops(
        swapped["source"], clips_from_table(clips), clip_fps_by_id(clips), swapped["masks"], layout, settings, provenance, summary=summary, encode_workers=workers
    )
    assert not incomplete and count == summary.crops
    return pq.read_table(layout.crops_table), summary, layout.crops_dir


@pytest.fixture(scope="module")
def steady(swapped):
    return _crops(swapped, CropSettings(), "steady")


def _mask_frames(masks: pa.Table) -> dict[tuple[str, int], dict[int, list[float]]]:
    out: dict = {}
    for r in masks.select(["clip_id", "object_id", "clip_frame", "x1", "y1", "x2", "y2"]).to_pylist():
        out.setdefault((r["clip_id"], r["object_id"]), {})[r["clip_frame"]] = [r["x1"], r["y1"], r["x2"], r["y2"]]
    return out


def test_an_identity_switch_becomes_two_crops_that_partition_the_mask_rows(swapped, steady):
    crops, summary, folder = steady
    a, b = swapped["swapped"]
    assert {f"{SWAP_CLIP}/obj{a:04d}", f"{SWAP_CLIP}/obj{b:04d}"} <= set(summary.split_objects)
    assert summary.jumps >= 2 and summary.scene_speed["reach_px"][0] > 0
    parts = crops.filter(pc.and_(pc.equal(crops["clip_id"], SWAP_CLIP), pc.equal(crops["object_id"], a))).to_pylist()
    assert [Path(p["crop_path"]).name for p in parts] == [f"obj{a:04d}.mp4", f"obj{a:04d}_p1.mp4"]
    assert [i for i, p in enumerate(parts[1]["present"]) if p][0] == SWAP_FROM
    assert len({p["track_id"] for p in parts}) == 1  # the masks table's track, as its rows say
    # the part after the switch is black before it and shows the other animal from it on
    frames = dict(iter_frames(parts[1]["crop_path"]))
    assert frames[SWAP_FROM - 1].max() < 20 and frames[SWAP_FROM].max() > 100
    # lineage: the crops of each (clip, object) partition its mask rows, frame for frame
    shown: dict = {}
    for row in crops.to_pylist():
        frames_of = {i for i, p in enumerate(row["present"]) if p}
        key = (row["clip_id"], row["object_id"])
        assert frames_of and not frames_of & shown.get(key, set())
        shown[key] = shown.get(key, set()) | frames_of
    assert shown == {k: set(v) for k, v in _mask_frames(pq.read_table(swapped["masks"])).items()}


def test_no_crop_contains_a_jump_and_every_box_is_inside_its_window(swapped, steady):
    crops, _, _ = steady
    speed_meta = json.loads(pq.read_schema(Path(crops["crop_path"][0].as_py()).parents[1] / "crops.parquet").metadata[b"vitcow.scene_speed"])
    speed = Reach(tuple(speed_meta["reach_px"]), speed_meta["beyond_px_per_frame"])
    boxes_of = _mask_frames(pq.read_table(swapped["masks"]))
    for row in crops.to_pylist():
        boxes = np.full((row["frames"], 4), np.nan)
        for f, p in enumerate(row["present"]):
            if p:
                boxes[f] = boxes_of[(row["clip_id"], row["object_id"])][f]
        present = np.array(row["present"])
        windows = np.array([w if w is not None else [0, 0, 0, 0] for w in row["window_xyxy"]])
        assert not cw.jumps(boxes, speed).any(), row["crop_path"]
        assert cw.boxes_inside(boxes, windows, present).all(), row["crop_path"]
        assert (probe_video(row["crop_path"]).frame_count, row["frames"]) == (len(present), len(present))


#: crops small enough that an animal walking through a clip leaves any fixed window (the
#: animals are 14 to 18 px; at 224 every one of them fits one window for a whole clip)
SMALL = CropSettings(crop_size=32)


@pytest.fixture(scope="module")
def small(swapped):
    return _crops(swapped, SMALL, "small")


def test_a_standing_animal_has_one_fixed_window_and_settings_are_recorded(swapped, small):
    crops, summary, _ = small
    clips = swapped["clips"]
    start = clips.filter(pc.equal(clips["clip_id"], "c00002"))["source_frame_start"][0].as_py()
    still = _object_near(pq.read_table(swapped["masks"]), "c00002", _animal_at(STILL_ANIMAL, start))
    (row,) = crops.filter(pc.and_(pc.equal(crops["clip_id"], "c00002"), pc.equal(crops["object_id"], still))).to_pylist()
    assert len({tuple(w) for w in row["window_xyxy"] if w is not None}) == 1
    assert 0 < summary.fixed_windows < summary.crops  # walkers are followed, not fixed
    metadata = pq.read_schema(Path(row["crop_path"]).parents[1] / "crops.parquet").metadata
    assert json.loads(metadata[b"vitcow.crop_settings"]) == dataclasses.asdict(SMALL)
    encoder = json.loads(metadata[b"vitcow.encoder"])
    assert encoder["threads"] == 1 and encoder["codec"] == "libx264" and encoder["pyav"]
    assert FRAME_STEP == row["frame_step"]


def test_steady_off_gives_a_window_per_frame_box_and_less_steady_crops(swapped, steady, small):
    crops, summary, _ = _crops(swapped, dataclasses.replace(SMALL, steady=False), "per_frame")
    boxes_of = _mask_frames(pq.read_table(swapped["masks"]))
    for row in crops.to_pylist():
        for f, window in enumerate(row["window_xyxy"]):
            if window is not None:
                box = np.asarray([boxes_of[(row["clip_id"], row["object_id"])][f]], np.float64)
                assert window == cw.frame_windows(box, SMALL.crop_size, 0.1)[0].tolist()
    assert summary.fixed_windows == 0
    assert small[1].jitter_px < summary.jitter_px
    assert steady[1].jitter_px == 0  # at 224 px every animal of this footage gets one fixed window
    assert summary.split_objects == steady[1].split_objects  # the cut at jumps does not depend on steadiness


def test_the_same_crops_again_in_one_process_are_the_same_bytes(swapped, small):
    """Nothing carried from one call to the next (a shared buffer, a converter's state)
    changes a byte: the same crops again in this process, on one encode worker this time."""
    crops, summary, folder = small
    again, summary_again, folder_again = _crops(swapped, SMALL, "small_again", workers=1)
    assert summary_again == summary
    videos = sorted(p.relative_to(folder) for p in folder.rglob("*.mp4"))
    assert len(videos) == summary.crops and videos == sorted(p.relative_to(folder_again) for p in folder_again.rglob("*.mp4"))
    assert [v for v in videos if (folder / v).read_bytes() != (folder_again / v).read_bytes()] == []
    tables = [normalized_table(f / "crops.parquet", f.parents[2]) for f in (folder, folder_again)]  # paths under each root
    assert tables[0] == tables[1] and len(tables[0][0]) == summary.crops
