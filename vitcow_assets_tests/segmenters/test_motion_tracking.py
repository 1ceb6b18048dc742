"""The motion backend against exact ground truth: per-frame recall and ids within each clip,
end to end through the assets, on small animals that cross and one that stands still for two
whole clips; its settings through the resource and the CLI; and real fish footage."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest
from pycocotools import mask as mask_utils

from vitcow_assets.cli import build_parser
from vitcow_assets.cli.options import given
from vitcow_assets.core.clips import ClipSettings, plan_clips
from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.core.settings import SettingError
from vitcow_assets.defs.resources import segmenter_from_environment
from vitcow_assets.media.video import probe_video
from vitcow_assets.segmenters.base import SegmenterConfigError
from vitcow_assets.segmenters.motion import MotionSegmenter, MotionSettings
from vitcow_assets.stages.frames import ClipFrameStream
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets_tests.conftest import SHARED_FOOTAGE
from vitcow_assets_tests.helpers import materialize_partition, register
from vitcow_testbed import synthetic_scenes as ss
from vitcow_testbed import tracking_runs
from vitcow_testbed.synthetic import STILL, TRACKING_OBJECTS, background, render, truth_mask, write_video
from vitcow_testbed.trackscore import jumps_between_animals

WIDTH, HEIGHT = 320, 240
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """The tracking scene (4 clips) through every asset with the motion backend."""
    video = write_video(tmp_path_factory.mktemp("footage") / "pen 4.mp4", frames=320, objects=TRACKING_OBJECTS)
    home = tmp_path_factory.mktemp("home")
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        result = materialize_partition(key, home, instance)
    assert result.success
    return StorageRoot(home).video(key)


def _match(table) -> dict:
    """``(clip_id, truth index) -> [object id or None per clip frame]``: the row whose mask
    overlaps the truth best (IoU >= 0.5) in each frame."""
    rows = table.to_pylist()
    by_frame: dict[tuple[str, int], list] = {}
    for row in rows:
        by_frame.setdefault((row["clip_id"], row["clip_frame"]), []).append(row)
    clips = sorted({r["clip_id"] for r in rows})
    matched = {}
    for clip_id in clips:
        frames = sorted({f for c, f in by_frame if c == clip_id})
        for k, obj in enumerate(TRACKING_OBJECTS):
            ids = []
            for frame in range(20):
                found = by_frame.get((clip_id, frame), [])
                best, best_iou = None, 0.5
                for row in found:
                    rle = {"size": row["mask_rle"]["size"], "counts": row["mask_rle"]["counts"].encode()}
                    iou = mask_iou(mask_utils.decode(rle).astype(bool), truth_mask(obj, row["source_frame"], WIDTH, HEIGHT))
                    if iou >= best_iou:
                        best, best_iou = row["object_id"], iou
                ids.append(best)
            matched[(clip_id, k)] = ids
        assert frames == list(range(20))
    return matched


def test_every_animal_found_in_every_frame_with_one_id_per_clip(tracked):
    table = pq.read_table(tracked.masks_table)
    matched = _match(table)
    assert len({c for c, _ in matched}) == 4
    found = [i is not None for ids in matched.values() for i in ids]
    assert np.mean(found) >= 0.97  # per-frame recall over 4 clips x 20 frames x 6 animals
    for (clip_id, k), ids in matched.items():
        present = [i for i in ids if i is not None]
        dominant, count = Counter(present).most_common(1)[0]
        # one id follows the animal through the clip (a crossing may cost a frame or three)
        assert count >= 16, f"{clip_id} animal {k}: ids {ids}"
    for clip_id in {c for c, _ in matched}:
        dominant = [Counter(i for i in matched[(clip_id, k)] if i is not None).most_common(1)[0][0] for k in range(len(TRACKING_OBJECTS))]
        assert len(set(dominant)) == len(TRACKING_OBJECTS), f"{clip_id}: two animals share an id"
        ids_in_clip = set(table.filter(table["clip_id"].to_numpy() == clip_id)["object_id"].to_pylist())
        assert len(ids_in_clip) <= len(TRACKING_OBJECTS) + 1


def test_animal_still_for_two_whole_clips_is_found_throughout(tracked):
    matched = _match(pq.read_table(tracked.masks_table))
    for clip_id in ("c00001", "c00002"):  # source frames 80-239: it does not move at all
        ids = matched[(clip_id, STILL)]
        assert all(i is not None for i in ids), f"{clip_id}: {ids}"
        assert len(set(ids)) == 1


def test_masks_table_records_the_motion_settings(tracked):
    meta = pq.read_schema(tracked.masks_table).metadata
    settings = json.loads(meta[b"vitcow.motion.settings"])
    assert settings == json.loads(json.dumps(MotionSettings().as_dict()))
    assert meta[b"vitcow.segmenter"] == b"motion/v3"


def test_background_memory_starts_over_for_another_scene():
    # two of these boxes touch flush, edge to edge, on the third clip's first frames: a
    # rectangle with no neck, which only a cut by size alone separates (neck_gain 0)
    segmenter = MotionSegmenter(MotionSettings(neck_gain=0))
    bg_a, bg_b = background(WIDTH, HEIGHT, seed=0), background(WIDTH, HEIGHT, seed=1)
    clip = lambda bg, start: [render(i, WIDTH, HEIGHT, TRACKING_OBJECTS, bg) for i in range(start, start + 80, 4)]
    derived = []
    for frames in (clip(bg_a, 0), clip(bg_a, 80), clip(bg_b, 160)):
        with segmenter.start_session(frames) as session:
            results = list(session.propagate())
        derived.append(session.derived)
        assert min(len(r.detections) for r in results) >= len(TRACKING_OBJECTS) - 1
    assert derived[0]["background_from_memory"] == 0.0
    assert derived[1]["background_from_memory"] > 0.5
    assert derived[2]["background_from_memory"] == 0.0  # another camera: not mixed with the first


def test_new_scene_share_says_when_the_memory_starts_over():
    """The second background differs from the first nearly everywhere: with ``new_scene_share``
    1 (never another scene) the memory goes on holding the first one's samples."""
    segmenter = MotionSegmenter(MotionSettings(new_scene_share=1.0))
    bg_a, bg_b = background(WIDTH, HEIGHT, seed=0), background(WIDTH, HEIGHT, seed=1)
    for bg, start in ((bg_a, 0), (bg_b, 80)):
        with segmenter.start_session([render(i, WIDTH, HEIGHT, TRACKING_OBJECTS, bg) for i in range(start, start + 80, 4)]) as session:
            list(session.propagate())
    assert session.derived["background_from_memory"] > 0.5
    with pytest.raises(SettingError, match="new_scene_share"):
        MotionSettings(new_scene_share=0)


def test_a_session_opened_twice_on_one_clip_adds_its_samples_once():
    segmenter = MotionSegmenter(MotionSettings(background_samples=5))
    frames = [render(i, WIDTH, HEIGHT, TRACKING_OBJECTS) for i in range(0, 80, 4)]
    for _ in range(2):
        with segmenter.start_session(frames) as session:
            list(session.propagate())
    assert len(segmenter._scene.memory) == 5


def test_settings_reach_the_segmenter_from_the_resource_and_the_cli():
    resource = segmenter_from_environment({}, {"motion": {"polarity": "dark", "min_area_px": 40}}, backend="motion")
    assert resource.segmenter.settings.polarity == "dark" and resource.segmenter.settings.min_area_px == 40
    with pytest.raises(SettingError, match="polarity"):
        MotionSettings(polarity="sideways")
    with pytest.raises(SegmenterConfigError, match="background_memory"):
        segmenter_from_environment({}, {"motion": {"background_memory": 0}}, backend="motion").segmenter
    args = build_parser().parse_args(
        ["run", "x.mp4", "--motion-threshold-sigmas", "3.5", "--motion-polarity", "bright", "--no-motion-split-touching", "--motion-speed-margin", "2"]
    )
    assert given(args, MotionSettings, "motion") == {"threshold_sigmas": 3.5, "polarity": "bright", "split_touching": False, "speed_margin": 2.0}


def test_real_fish_every_fish_in_every_frame():
    """8 small dark fish swim in every frame of ../shared/footage/fish_topdown_8.avi."""
    path = SHARED_FOOTAGE / "fish_topdown_8.avi"
    if not path.is_file():
        pytest.skip(f"real footage not present at {path}")
    info = probe_video(path)
    clips = plan_clips(info.frame_count, info.fps, ClipSettings(max_clips=3, seed=0))
    segmenter = MotionSegmenter()
    counts, ids_per_clip = [], []
    for _, frames in ClipFrameStream(path, clips).by_clip():
        with segmenter.start_session(frames) as session:
            results = list(session.propagate())
        counts += [len(r.detections) for r in results]
        ids_per_clip.append(len({int(i) for r in results for i in r.detections.object_ids}))
    assert len(counts) == 60
    assert 7.5 <= np.median(counts) <= 9
    assert np.mean(np.minimum(counts, 8)) / 8 >= 0.95
    assert max(ids_per_clip) <= 12


def test_real_fish_keep_their_tracks_through_the_whole_video(tmp_path):
    """Every clip of the fish video, segmented and linked as the object_masks asset does: the
    8 fish give at most 1.25 N ids per clip and 2 N tracks through the video (a fish lost in
    the school and found again later continues its track)."""
    path = SHARED_FOOTAGE / "fish_topdown_8.avi"
    if not path.is_file():
        pytest.skip(f"real footage not present at {path}")
    info = probe_video(path)
    clips = plan_clips(info.frame_count, info.fps, ClipSettings(seed=0))
    now = tracking_runs.figures(MotionSegmenter, None, path, clips, info.frame_count / info.fps, 8, tmp_path / "masks.parquet")
    assert now["ids_per_clip"] <= 1.25 * 8 and now["tracks_per_video"] <= 2 * 8, now
    assert now["recall"] >= 0.95, now


def _scene_figures(case: ss.SceneCase, make_segmenter, out: Path) -> dict:
    """The figures of ``case`` (``vitcow_testbed.synthetic_scenes``) segmented and linked by
    ``make_segmenter()`` and the package's linker (masks table at ``out``), scored against the
    scene's truth."""
    return tracking_runs.figures(make_segmenter, None, case.video, case.clips, case.duration_s, case.spec.animals, out, case.truth)


def _benchmark_figures(scene_name: str, backend: str) -> dict[str, float]:
    """``benchmarks.tracking`` on the first seed of a scene with one of its backends (a frozen
    baseline: ``v2`` is motion/v2 with its own linker), as the figures of its last line."""
    command = [sys.executable, "-m", "benchmarks.tracking", "--scenes", scene_name, "--seeds", "1", "--backends", backend]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    prefix = f"{scene_name}_{backend}_"
    pairs = (pair.split("=") for pair in done.stdout.strip().splitlines()[-1].split())
    return {key[len(prefix) :]: float(value) for key, value in pairs if key.startswith(prefix)}


@pytest.mark.parametrize("scene_name, long_moves_at_most", [("school", 0), ("herd", 0), ("crowd", 3)])
def test_synthetic_scene_with_n_always_in_view_keeps_ids_within_the_targets(scene_name, long_moves_at_most, tmp_path):
    """Issue 20's targets on a scene nothing was tuned on (first seed): N animals always in
    view give at most 1.25 N ids per clip and 2 N tracks per video, with every animal found;
    against motion/v2 on the same video (per seed the scores move both ways, by up to 0.04
    IDF1 and 2 tracks: see the report of ``benchmarks.tracking --scenes``), no more than that
    worse. No crop jumps from one animal to another: in the school and the herd no object's
    box moves over 100 px between two of its frames at all; in the crowd, where ten animals
    of three sizes touch, a fast animal lost among the others for several sampled frames is
    found again that far away (2 objects of 60 on this seed, both following one animal
    throughout; 3 allowed), and every such move, in the crops the crop stage cuts, is the
    animal's own (ground truth)."""
    case = ss.scene_case(scene_name, 0, tmp_path)
    now = _scene_figures(case, MotionSegmenter, tmp_path / "now.parquet")
    before = _benchmark_figures(scene_name, "v2")
    spec = case.spec
    assert now["ids_per_clip"] <= 1.25 * spec.animals, now
    assert now["tracks_per_video"] <= 2 * spec.animals, now
    assert now["recall"] >= 0.9, now
    assert now["jumps_over_100px"] <= long_moves_at_most, now
    crops = tracking_runs.crop_rows(tmp_path / "now.parquet", case.clips)
    assert len(crops) == pq.read_metadata(tmp_path / "now.parquet").num_rows
    assert jumps_between_animals(crops, case.truth) == 0, now
    assert now["tracks_per_video"] <= before["tracks_per_video"] + 2, (now, before)
    assert now["idf1"] >= before["idf1"] - 0.05, (now, before)


def test_large_animals_are_not_cut_in_two_by_their_size_alone(tmp_path):
    """Crowd, seed 6: ten animals whose areas differ up to nine-fold. Cut whenever a blob is
    clearly larger than the clip's typical animal (``neck_gain=0``, as before), the large ones
    are cut into parts that become extra ids: 14 ids per clip for 10 animals. A large animal's
    blob is convex (no neck), so with the default it stays whole, while touching animals
    (a neck) are still cut."""
    case = ss.scene_case("crowd", 6, tmp_path)
    now = _scene_figures(case, MotionSegmenter, tmp_path / "now.parquet")
    size_alone = _scene_figures(case, lambda: MotionSegmenter(MotionSettings(neck_gain=0)), tmp_path / "size-alone.parquet")
    animals = case.spec.animals
    assert size_alone["ids_per_clip"] > 1.25 * animals, size_alone
    assert now["ids_per_clip"] <= 1.25 * animals and now["tracks_per_video"] <= 2 * animals, now
    assert now["idf1"] > size_alone["idf1"] and now["matched_recall"] >= size_alone["matched_recall"], (now, size_alone)
