import numpy as np
import pytest

from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.segmenters import load_segmenter, resolve_backend
from vitcow_assets.segmenters.base import SegmenterConfigError, SegmenterSession
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_testbed.synthetic import (
    DEFAULT_OBJECTS,
    background,
    render,
    truth_mask,
)


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
        assert set(det.prompts) == {""}  # the backend does not label: the segmentation stage does
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
    from vitcow_assets.segmenters.sam3 import Sam3Settings

    assert resolve_backend("auto", None) == "motion"
    assert resolve_backend("auto", "/x.pt") == "sam3"
    with pytest.raises(SegmenterConfigError, match="yolo"):
        resolve_backend("yolo", None)
    with pytest.raises(SegmenterConfigError, match="needs a checkpoint") as info:
        load_segmenter("sam3", Sam3Settings())
    assert info.value.setting == "checkpoint"
    with pytest.raises(SegmenterConfigError, match="does not exist"):
        load_segmenter("sam3", Sam3Settings(checkpoint=str(tmp_path / "missing.pt")))
    assert load_segmenter("motion").name == "motion/v3"


def test_resource_names_the_setting_and_its_variable_and_flag(tmp_path):
    """The segmenter says which setting is wrong; the resource (the edge that reads the
    environment) says where that setting is set."""
    from vitcow_assets.defs.resources import segmenter_from_environment

    missing = str(tmp_path / "missing.pt")
    resource = segmenter_from_environment({"VITCOW_SAM3_CHECKPOINT": missing}, backend="sam3")
    assert resource.sam3.checkpoint == missing
    with pytest.raises(SegmenterConfigError, match="does not exist") as info:
        resource.segmenter
    assert "set VITCOW_SAM3_CHECKPOINT or --sam3-checkpoint" in str(info.value)
    bad = segmenter_from_environment({}, {"motion": {"polarity": "sideways"}}, backend="motion")
    with pytest.raises(SegmenterConfigError, match="polarity") as info:
        bad.segmenter
    assert "VITCOW_MOTION_POLARITY" in str(info.value)


def test_environment_values_reach_the_resources_and_bad_ones_name_the_variable():
    from vitcow_assets.core.settings import SettingError
    from vitcow_assets.defs.resources import segmenter_from_environment, storage_from_environment

    environ = {
        "VITCOW_SAM3_SCORE_THRESHOLD": "0.25", "VITCOW_SAM3_HOTSTART_DELAY": "3", "VITCOW_SAM3_GPUS": "0,1",
        "VITCOW_PROMPT": "calf", "VITCOW_MOTION_SPEED_MARGIN": "2.5",
    }
    resource = segmenter_from_environment(environ)
    sam3 = resource.sam3
    assert (sam3.score_threshold, sam3.hotstart_delay, list(sam3.gpus), resource.default_prompt) == (0.25, 3, [0, 1], "calf")
    assert resource.motion.speed_margin == 2.5
    assert segmenter_from_environment({}).default_prompt == "cow"
    with pytest.raises(SettingError, match="VITCOW_SETTLE_SECONDS"):
        storage_from_environment({"VITCOW_SETTLE_SECONDS": "soon"})
    with pytest.raises(SettingError, match="VITCOW_MOTION_SPEED_MARGIN"):
        segmenter_from_environment({"VITCOW_MOTION_SPEED_MARGIN": "fast"})


@pytest.mark.parametrize("min_track_frames, expected", [(2, 0), (1, 1)])
def test_an_object_seen_on_one_frame_of_the_clip_is_not_a_track(min_track_frames, expected):
    from vitcow_assets.segmenters.motion import MotionSettings

    frames_idx = list(range(0, 80, 4))
    bg = background(320, 240)
    frames = [render(i, 320, 240, bg=bg) for i in frames_idx]
    # a third, bright square on frame 7 only (a flash, a splash, a bird passing)
    frames[7] = frames[7].copy()
    frames[7][190:214, 250:274] = 255
    with MotionSegmenter(MotionSettings(min_track_frames=min_track_frames)).start_session(frames) as session:
        results = list(session.propagate())
    assert [len(r.detections) for r in results].count(3) == expected
    assert all(len(r.detections) == 2 for k, r in enumerate(results) if k != 7)
