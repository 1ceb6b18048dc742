import numpy as np
import pytest

from vitcow_assets.core.detections import Detections
from vitcow_assets.core.tracks import IoUTracker


def _dets(n, h=8, w=8, ids=None):
    return Detections(
        xyxy=np.tile([0, 0, 2, 2], (n, 1)),
        masks=np.ones((n, h, w), bool),
        scores=np.ones(n),
        object_ids=np.arange(n) if ids is None else ids,
        prompts=["cow"] * n,
    )


def test_detections_validate_parallel_arrays():
    with pytest.raises(ValueError, match="scores"):
        Detections(np.zeros((2, 4)), np.zeros((2, 4, 4), bool), np.ones(3), np.arange(2), ["a", "b"])
    with pytest.raises(ValueError, match="masks"):
        Detections(np.zeros((2, 4)), np.zeros((4, 4), bool), np.ones(2), np.arange(2), ["a", "b"])
    with pytest.raises(ValueError, match="repeat"):
        _dets(2, ids=[3, 3])


def test_empty_select_and_default_prompts():
    empty = Detections.empty(8, 8)
    assert len(empty) == 0 and empty.frame_size == (8, 8) and empty.prompts.tolist() == []
    dets = _dets(3, ids=[0, 1, 9])
    assert dets.select(dets.object_ids > 0).object_ids.tolist() == [1, 9]
    unlabelled = Detections(dets.xyxy, dets.masks, dets.scores, dets.object_ids)
    assert unlabelled.prompts.tolist() == ["", "", ""]


def test_tracker_keeps_ids_of_moving_boxes_and_gives_new_ids_to_new_objects():
    tracker = IoUTracker()
    a = np.array([0, 0, 20, 20], np.float32)
    b = np.array([100, 100, 130, 140], np.float32)
    ids0 = tracker.assign(np.stack([a, b]))
    assert ids0.tolist() == [0, 1]
    # b listed first now; a moved by 12 px (IoU low, but the centre shift is small)
    ids1 = tracker.assign(np.stack([b + [2, 0, 2, 0], a + [12, 0, 12, 0]]))
    assert ids1.tolist() == [1, 0]
    ids2 = tracker.assign(np.stack([a + [24, 0, 24, 0], b + [4, 0, 4, 0], [300, 300, 320, 320]]))
    assert ids2.tolist() == [0, 1, 2]


def test_tracker_retires_tracks_after_max_missed_frames():
    tracker = IoUTracker(max_missed=1)
    box = np.array([[0, 0, 10, 10]], np.float32)
    assert tracker.assign(box).tolist() == [0]
    tracker.assign(np.zeros((0, 4)))
    assert tracker.assign(box).tolist() == [0]  # missed once: still alive
    tracker.assign(np.zeros((0, 4)))
    tracker.assign(np.zeros((0, 4)))
    assert tracker.assign(box).tolist() == [1]  # missed twice: retired


def test_a_clip_starting_on_the_previous_clips_last_frame_inherits_its_motion():
    before = IoUTracker(max_shift=1.0, max_missed=8)
    for f in range(4):
        before.assign(np.array([[6 * f, 0, 6 * f + 10, 10]], np.float32))
    after = IoUTracker(max_shift=1.0, max_missed=8)
    after.assign(np.array([[18, 0, 28, 10]], np.float32))  # the same image: frame 3
    assert after.predicted()[0].tolist() == [18, 0, 28, 10]  # no motion known yet
    assert after.inherit_motion(before.motion_state()) == 1
    assert after.predicted()[0].tolist() == [24, 0, 34, 10]
    # a box elsewhere inherits nothing
    other = IoUTracker()
    other.assign(np.array([[200, 200, 210, 210]], np.float32))
    assert other.inherit_motion(before.motion_state()) == 0


def test_one_badly_cut_box_does_not_turn_a_track_around():
    """A box cut short (its animal touched another) moves the prediction by the motion of
    the last few frames, not by that one cut."""
    tracker = IoUTracker(max_shift=1.0, max_missed=8)
    for f in range(3):
        tracker.assign(np.array([[6 * f, 0, 6 * f + 10, 10]], np.float32))
    tracker.assign(np.array([[18, 0, 20, 10]], np.float32))  # should be [18, 0, 28, 10]
    (x1, _, x2, _), = tracker.predicted()
    assert (x1 + x2) / 2 - 19 >= 3.5  # the centre keeps moving at about 4-6 px a frame (2 from the cut pair alone)
    with pytest.raises(ValueError, match="velocity_frames"):
        IoUTracker(velocity_frames=1)
