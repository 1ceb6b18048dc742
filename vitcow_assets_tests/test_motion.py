import numpy as np

from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.segmenters import load_segmenter, resolve_backend
from vitcow_assets.segmenters.base import SegmenterConfigError, SegmenterSession
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets_tests.synthetic import DEFAULT_OBJECTS, background, render, truth_mask

import pytest


def test_motion_finds_moving_boxes_with_stable_ids_and_accurate_masks():
    frames_idx = list(range(0, 80, 4))
    bg = background(320, 240)
    frames = [render(i, 320, 240, bg=bg) for i in frames_idx]
    segmenter = MotionSegmenter()
    with segmenter.start_session(frames) as session:
        assert isinstance(session, SegmenterSession)
        session.add_text_prompt("cow")
        results = list(session.propagate())
    assert [r.clip_frame for r in results] == list(range(20))
    ids_per_object = {k: set() for k in range(len(DEFAULT_OBJECTS))}
    for result, source_frame in zip(results, frames_idx):
        det = result.detections
        assert len(det) == 2
        assert set(det.prompts) == {"cow"}
        for k, obj in enumerate(DEFAULT_OBJECTS):
            truth = truth_mask(obj, source_frame, 320, 240)
            ious = [mask_iou(m, truth) for m in det.masks]
            best = int(np.argmax(ious))
            assert ious[best] > 0.8
            ids_per_object[k].add(int(det.object_ids[best]))
            assert np.allclose(det.xyxy[best], obj.xyxy(source_frame), atol=2)
    assert all(len(ids) == 1 for ids in ids_per_object.values())
    assert ids_per_object[0] != ids_per_object[1]


def test_motion_session_with_nothing_moving_yields_empty_frames():
    frame = background(64, 48)
    with MotionSegmenter().start_session([frame] * 5) as session:
        results = list(session.propagate())
    assert len(results) == 5 and all(len(r.detections) == 0 for r in results)


def test_closed_session_refuses_to_propagate():
    session = MotionSegmenter().start_session([background(32, 32)])
    session.close()
    with pytest.raises(RuntimeError):
        list(session.propagate())


def test_backend_choice(tmp_path):
    assert resolve_backend("auto", None) == "motion"
    assert resolve_backend("auto", "/x.pt") == "sam3"
    with pytest.raises(SegmenterConfigError):
        resolve_backend("yolo", None)
    with pytest.raises(SegmenterConfigError, match="VITCOW_SAM3_CHECKPOINT"):
        load_segmenter("sam3", None)
    with pytest.raises(SegmenterConfigError, match="does not exist"):
        load_segmenter("sam3", str(tmp_path / "missing.pt"))
    assert load_segmenter("motion").name == "motion/v2"
