"""The CPU side that feeds the model: SAM3's input made off the model's thread (the same
values as SAM3's own loader), SAM3's outputs cut to their boxes at once, box-local masks
through the stage into the same masks table, and the stage's time split by step."""

import importlib.util
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from vitcow_assets.core.clips import ClipSettings, plan_clips
from vitcow_assets.core.geometry import masks_to_xyxy
from vitcow_assets.core.masks import BoxMasks, encode_masks
from vitcow_assets.core.prompts import text_plan
from vitcow_assets.media.video import probe_video
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets.segmenters.sam3 import Sam3Frames, detections_from_outputs, frames_to_input, frames_to_pixels, pixels_to_input, prepare_clip
from vitcow_assets.stages.frames import ClipFrameStream
from vitcow_assets.stages.segmentation import MaskJob, segment_clips
from vitcow_assets.stages.threads import Prefetcher
from vitcow_testbed.fakes import FakeSegmenter
from vitcow_testbed.synthetic import render, write_video

needs_sam3 = pytest.mark.skipif(importlib.util.find_spec("sam3") is None, reason="sam3 is not installed")


@pytest.fixture(scope="module")
def pen(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("feed") / "pen.mp4", frames=80, width=320, height=240)


def _clips(path, frames_per_clip=10, frame_step=2):
    info = probe_video(path)
    return plan_clips(info.frame_count, info.fps, ClipSettings(frames_per_clip=frames_per_clip, frame_step=frame_step))


def _frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Synthetic frames: textured background, coloured animals, noise."""
    rng = np.random.default_rng(0)
    return [np.clip(render(i * 3, width, height).astype(int) + rng.integers(-20, 20, (height, width, 3)), 0, 255).astype(np.uint8) for i in range(count)]


@needs_sam3
def test_prepared_input_is_sam3s_own_at_full_size_with_any_number_of_threads():
    from PIL import Image

    from vitcow_assets.segmenters.sam3_cpu import install

    install()  # the explicit CPU path: sam3 imports only after it
    from sam3.model.io_utils import load_resource_as_video_frames

    frames = _frames(4, 640, 360)
    for mean, std in (((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))):
        theirs, _, _ = load_resource_as_video_frames([Image.fromarray(f) for f in frames], 1008, True, img_mean=mean, img_std=std)
        assert torch.equal(frames_to_input(frames, 1008, mean, std, workers=1), theirs)
        assert torch.equal(frames_to_input(frames, 1008, mean, std, workers=3), theirs)


def test_bilinear_input_is_resized_on_the_device_from_the_frames_pixels():
    frames = _frames(5, 400, 300)
    clip = prepare_clip(frames, 112, resize="bilinear")
    assert clip.tensor.dtype == torch.uint8 and tuple(clip.tensor.shape) == (5, 300, 400, 3)
    assert all(np.array_equal(a, b) for a, b in zip(clip, frames))  # views of the pixels: the frames can go
    assert np.shares_memory(clip[0], clip.tensor.numpy())
    half = clip[1:3]
    assert isinstance(half, Sam3Frames) and len(half) == 2 and np.array_equal(half.tensor[0].numpy(), frames[1])
    ours = pixels_to_input(clip.tensor, 112, (0.5,) * 3, (0.5,) * 3, "cpu")
    assert ours.dtype == torch.float16 and tuple(ours.shape) == (5, 3, 112, 112)
    assert torch.equal(ours, pixels_to_input(frames_to_pixels(frames), 112, (0.5,) * 3, (0.5,) * 3, "cpu", chunk=2))
    pil = frames_to_input(frames, 112).float()  # SAM3's own resize: another filter, the same picture
    same = float((ours.float() - pil).abs().mean())
    assert same < 0.05 and float((ours.float() - torch.flip(pil, [-1])).abs().mean()) > 3 * same


def test_sam3_outputs_become_box_local_detections():
    rng = np.random.default_rng(2)
    masks = np.zeros((4, 90, 160), bool)
    masks[0, 10:30, 40:90] = rng.random((20, 50)) > 0.3
    masks[2, 60:90, 0:20] = True  # on the frame's edge
    masks[3, 5, 150] = True
    outputs = {"out_obj_ids": np.array([4, 9, 2, 7]), "out_probs": np.array([0.9, 0.8, 0.7, 0.6], np.float32), "out_binary_masks": masks}
    det = detections_from_outputs(outputs, 90, 160)
    keep = [0, 2, 3]  # object 9's mask is empty: dropped
    assert det.object_ids.tolist() == [4, 2, 7] and np.allclose(det.scores, [0.9, 0.7, 0.6])
    assert np.array_equal(det.xyxy, masks_to_xyxy(masks[keep]))
    assert np.array_equal(det.masks.full(), masks[keep])
    assert [c.shape for c in det.masks.crops] == [(int(y2 - y1), int(x2 - x1)) for x1, y1, x2, y2 in det.xyxy]
    assert len(detections_from_outputs(None, 90, 160)) == 0


def test_motion_masks_table_is_pycocotools_rle_of_the_frame_sized_masks(pen, tmp_path):
    """The same video's masks table: the stage's rows (RLE from box-local masks) against
    pycocotools' encoding of the frame-sized masks the backend finds on the same clips."""
    clips = _clips(pen)
    stage = MotionSegmenter()
    job = MaskJob(pen, "pen", clips, text_plan("box"), stage.name, FakeSegmenter(inner=stage).open_session, tmp_path / "m.parquet")
    segment_clips(job)
    rows = pq.read_table(tmp_path / "m.parquet").to_pylist()
    direct = MotionSegmenter()
    expected = []
    for clip, frames in ClipFrameStream(pen, clips).by_clip():
        with direct.start_session(frames) as session:
            for result in session.propagate():
                det = result.detections
                for crop, (x1, y1, x2, y2) in zip(det.masks.crops, det.xyxy.astype(int)):
                    assert crop.shape == (y2 - y1, x2 - x1)  # kept in its box, never frame-sized
                full = np.asarray(det.masks)
                expected += [(clip.clip_id, result.clip_frame, int(o), r, int(m.sum())) for o, r, m in zip(det.object_ids, encode_masks(full), full)]
    assert len(rows) == len(expected) > 0
    assert [(r["clip_id"], r["clip_frame"], r["object_id"], r["mask_rle"], r["area"]) for r in rows] == expected


def test_stage_counts_decode_prepare_encode_and_write_apart(pen, tmp_path):
    clips = _clips(pen)
    pause = 0.05

    def prepare(frames):
        time.sleep(pause)
        return frames

    def detect(frames, i):
        masks = np.zeros((1, *frames[0].shape[:2]), bool)
        masks[0, 5:20, 10:40] = True
        from vitcow_assets.core.detections import Detections

        return Detections([[10, 5, 40, 20]], BoxMasks.from_full(masks), [0.9], [0])

    fake = FakeSegmenter(detect=detect)
    for prefetch in (0, 1):
        job = MaskJob(pen, "pen", clips, text_plan("cow"), fake.name, fake.open_session, tmp_path / f"m{prefetch}.parquet", prepare=prepare, prefetch=prefetch)
        timings = segment_clips(job).timings
        assert {"decode", "prepare", "encode", "write", "model", "wait_frames", "wait_writer"} <= set(timings)
        assert timings["prepare"] >= pause * len(clips) and timings["decode"] > 0 and timings["encode"] > 0 and timings["write"] > 0
        assert timings["wait_frames"] >= -1e-6 and timings["wait_writer"] >= -1e-6  # inline: own work not counted as waiting
    assert pq.read_table(tmp_path / "m0.parquet").equals(pq.read_table(tmp_path / "m1.parquet"))


def test_the_decode_thread_starts_a_clip_only_when_fewer_than_depth_wait():
    """Frames in memory: the caller's clip plus at most ``depth`` clips waiting or being
    decoded (a clip being decoded holds frames as much as a waiting one)."""
    started, taken = [], []

    def make():
        for i in range(12):
            started.append(i)
            yield i

    for depth in (1, 2):
        started.clear(), taken.clear()
        with Prefetcher(make, depth=depth, name="vitcow-test") as items:
            for item in items:
                taken.append(item)
                time.sleep(0.02)  # the model works on it
                assert len(started) - len(taken) <= depth
        assert taken == list(range(12))


def test_the_scan_of_big_masks_shared_out_over_threads_gives_the_same_crops():
    from vitcow_assets.segmenters import sam3

    rng = np.random.default_rng(4)
    masks = np.zeros((8, 1100, 1000), bool)  # over the size split across threads
    for i in range(8):
        y, x = rng.integers(0, 900), rng.integers(0, 800)
        masks[i, y : y + 150, x : x + 120] = rng.random((150, 120)) > 0.4
    masks[5] = False
    assert masks.nbytes >= sam3._CUT_SPLIT_BYTES
    shared, alone = sam3.cut_to_boxes(masks), BoxMasks.from_full(masks)
    assert np.array_equal(shared.origins, alone.origins)
    assert all(np.array_equal(a, b) for a, b in zip(shared.crops, alone.crops)) and len(shared) == 8
    assert np.array_equal(shared.full(), masks)
