import numpy as np
import pytest

from vitcow_assets.core.detections import Detections
from vitcow_assets.core.geometry import least_shift
from vitcow_assets.core.speeds import LAGS, Reach, SpeedModel
from vitcow_assets.core.tracks import IoUTracker, TrackedFrame, absorb_fragments, cut_jumps


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


def _steady_reach(step: float = 4.0, samples: int = 200) -> Reach:
    """The gate of a scene whose animals were measured to move about ``step`` px per frame."""
    model = SpeedModel(quantile=0.99, margin=1.5)
    rng = np.random.default_rng(0)
    model.add({lag: rng.uniform(0.5, 1.0, samples) * step * lag for lag in range(1, LAGS + 1)})
    return model.reach()


def test_speed_model_gates_from_measured_displacements_only():
    model = SpeedModel(min_samples=30)
    assert model.reach() is None  # nothing measured yet: no gate
    reach = _steady_reach(4.0)
    assert 4.0 < reach(1) <= 1.5 * 4.0 + 1e-9  # margin x the 99th percentile of what was seen
    limits = [float(reach(k)) for k in range(1, LAGS + 1)]
    assert limits == sorted(limits) and limits[-1] <= LAGS * limits[0]
    assert float(reach(2 * LAGS)) == pytest.approx(2 * limits[-1])


def test_least_shift_is_net_of_growth():
    a = np.array([0, 0, 10, 10], np.float64)
    assert float(least_shift(a, a + 30)) == pytest.approx(np.hypot(30, 30))
    grown = np.array([0, 0, 30, 10], np.float64)  # grew to the right: its centre moved 10 px, nothing inside did
    assert float(least_shift(a, grown)) == 0.0


def test_a_crop_that_would_jump_between_two_animals_becomes_two_objects():
    """Track 0 follows an animal on the left, loses it, and picks up another one 300 px away
    four frames later: no animal of the scene was seen to get that far, so from there it is
    a new object. Track 1 moves at the scene's speed and keeps its id."""
    reach = _steady_reach(4.0)
    frames = []
    for f in range(10):
        x0 = 20 + 3 * f if f < 4 else 320 + 3 * f
        ids, boxes = ([0], [[x0, 50, x0 + 20, 60]]) if f not in (4, 5, 6) else ([], [])
        ids, boxes = ids + [1], boxes + [[100 + 3 * f, 150, 120 + 3 * f, 160]]
        frames.append(TrackedFrame(ids, boxes))
    out = cut_jumps(frames, reach)
    first = {int(i) for ids in out[:4] for i in ids[:1]}
    later = {int(out[f][0]) for f in range(7, 10)}
    assert first == {0} and len(later) == 1 and later != first
    assert all(int(ids[-1]) == 1 for ids in out)
    assert [ids.tolist() for ids in cut_jumps(frames, None)] == [frame.ids.tolist() for frame in frames]  # no gate: as they are


def test_jumps_are_measured_between_whole_views_not_pieces_of_a_blob():
    """While two animals touch, the piece cut for a track moves with the cut (here 40 px in a
    frame); measured between whole views the animal moved at the scene's speed."""
    reach = _steady_reach(4.0)
    boxes = [[0, 0, 20, 10], [4, 0, 24, 10], [48, 0, 58, 10], [12, 0, 32, 10]]
    frames = [TrackedFrame([0], [b]) for b in boxes]
    whole = [np.array([True]), np.array([True]), np.array([False]), np.array([True])]
    assert {int(i[0]) for i in cut_jumps(frames, reach, whole)} == {0}
    assert len({int(i[0]) for i in cut_jumps(frames, reach)}) > 1


def test_tracker_gate_refuses_what_no_animal_reaches_but_a_hinted_piece_is_measured_by_its_blob():
    reach = _steady_reach(4.0)
    tracker = IoUTracker(max_shift=1.0, far_shift=3.0, reach=reach)
    tracker.assign(np.array([[0, 0, 20, 20], [200, 0, 220, 20]], np.float32))
    # a box 14 px further than the gate allows (reach(1) <= 6 px) does not continue track 0 ...
    far = np.array([[26, 0, 46, 20], [200, 0, 220, 20]], np.float32)
    assert tracker.assign(far).tolist()[0] not in (0, 1)
    tracker = IoUTracker(max_shift=1.0, reach=reach)
    tracker.assign(np.array([[0, 0, 20, 20], [200, 0, 220, 20]], np.float32))
    # ... but a piece cut for track 0 out of a blob that reaches it does
    piece = np.array([[26, 0, 36, 20], [200, 0, 220, 20]], np.float32)
    blob = np.array([[2, 0, 36, 20], [200, 0, 220, 20]], np.float32)
    assert tracker.assign(piece, hints=np.array([0, -1]), regions=blob).tolist() == [0, 1]


def test_a_fragment_inside_one_other_tracks_blob_goes_back_to_it():
    ids = [np.array([0, 1]), np.array([0, 1, 5]), np.array([0, 1, 5]), np.array([0, 1]), np.array([0, 1, 6]), np.array([0, 1, 6])]
    groups = [np.array([0, 1]), np.array([0, 1, 1]), np.array([0, 1, 1]), np.array([0, 1]), np.array([0, 1, 2]), np.array([0, 1, 2])]
    out = absorb_fragments(ids, groups, max_frames=3)
    assert [o.tolist() for o in out[1:3]] == [[0, 1, 1], [0, 1, 1]]  # 5 was a cut through animal 1
    assert out[4].tolist() == [0, 1, 6]  # 6 has a blob of its own: an object
    long = absorb_fragments(ids, groups, max_frames=1)
    assert long[1].tolist() == [0, 1, 5]  # lasts longer than a fragment may


def test_a_tracked_frame_holds_ids_and_boxes_row_for_row():
    frame = TrackedFrame([3, 3], [[0, 0, 4, 4], [5, 0, 9, 4]])
    assert frame.ids.dtype == np.int64 and frame.xyxy.dtype == np.float32 and frame.xyxy.shape == (2, 4)
    assert TrackedFrame([], []).xyxy.shape == (0, 4)
    assert frame.relabelled([7, 8]).ids.tolist() == [7, 8] and np.array_equal(frame.relabelled([7, 8]).xyxy, frame.xyxy)
    with pytest.raises(ValueError, match="2 ids for 1 boxes"):
        TrackedFrame([1, 2], [[0, 0, 1, 1]])


def test_a_line_reach_keeps_the_jitter_that_does_not_grow_with_the_lag():
    """Boxes that move 5 px per frame with 6 px of jitter at every lag: the per-lag reach
    follows each lag's quantile; the line through them has the jitter as its intercept and
    goes on as a line past the last lag."""
    model = SpeedModel(min_samples=10, quantile=1.0, margin=1.0)
    model.add({lag: np.array([6.0 + 5.0 * lag] * 20) for lag in range(1, LAGS + 1)})
    line = model.line_reach()
    assert [round(float(line(k)), 6) for k in (1, 4, 8, 10)] == [11.0, 26.0, 46.0, 56.0]
    assert line.tail_px_per_frame == pytest.approx(5.0)
    assert float(model.reach()(1)) == 11.0 and float(model.reach()(10)) == pytest.approx(46.0 * 10 / 8)  # in proportion
    assert SpeedModel(min_samples=10).line_reach() is None
