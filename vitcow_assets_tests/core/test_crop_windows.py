"""Crop windows (core/crop_windows.py): steady windows never cut the animal and stop the
shake, the scene's speed is measured from moves (with the package's one speed model,
``core.speeds``), and a jump cuts an object into parts."""

import numpy as np
import pytest

from vitcow_assets.core import crop_windows as cw
from vitcow_assets.core.speeds import LAGS, Reach, centre_moves

SETTINGS = cw.WindowSettings(crop_size=224, margin=0.1)
FRAMES = 20


def _track(centres: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    w, h = size
    return np.stack([centres[:, 0] - w / 2, centres[:, 1] - h / 2, centres[:, 0] + w / 2, centres[:, 1] + h / 2], axis=1)


def _inside_with_margin(boxes: np.ndarray, windows: np.ndarray, margin: float) -> bool:
    present = cw.present_of(boxes)
    b, w = boxes[present], windows[present]
    pad = margin * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    return bool(np.all(b[:, 0] - pad >= w[:, 0]) and np.all(b[:, 1] - pad >= w[:, 1]) and np.all(b[:, 2] + pad <= w[:, 2]) and np.all(b[:, 3] + pad <= w[:, 3]))


def _window(box, crop_size: int, margin: float = 0.1) -> list[int]:
    return cw.frame_windows(np.array([box], np.float64), crop_size, margin)[0].tolist()


def test_small_box_is_widened_to_crop_size_not_upscaled():
    x1, y1, x2, y2 = _window([100, 100, 140, 120], crop_size=224)
    assert x2 - x1 == y2 - y1 == 224
    assert (x1 + x2) / 2 == pytest.approx(120, abs=1) and (y1 + y2) / 2 == pytest.approx(110, abs=1)


def test_large_box_gets_margin_of_ten_percent_of_longer_side_and_is_square():
    x1, y1, x2, y2 = _window([0, 0, 500, 300], crop_size=224)
    assert x2 - x1 == y2 - y1 == 600  # 500 + 2 * 50
    assert (x1 + x2) / 2 == 250 and (y1 + y2) / 2 == 150


def test_frame_windows_reject_an_empty_box_and_skip_absent_frames():
    with pytest.raises(ValueError, match="no area"):
        _window([5, 5, 5, 9], 224)
    boxes = cw.boxes_array([None, [0, 0, 10, 10]])
    assert cw.frame_windows(boxes, 64, 0.0)[1].tolist() == [-27, -27, 37, 37]


def test_boxes_array_marks_absent_frames():
    boxes = cw.boxes_array([[0, 0, 10, 10], None, [5, 5, 20, 30]])
    assert cw.present_of(boxes).tolist() == [True, False, True]
    assert boxes[2].tolist() == [5, 5, 20, 30]


def test_a_standing_animal_gets_one_fixed_window_that_holds_every_box():
    rng = np.random.default_rng(1)
    centres = np.array([400.0, 300.0]) + rng.normal(0, 3, size=(FRAMES, 2))  # the box wobbles
    boxes = _track(centres, (150, 90)) + rng.normal(0, 2, size=(FRAMES, 4))
    boxes[[4, 9]] = np.nan  # missed on two frames
    per_frame = cw.frame_windows(boxes, 224, 0.1)
    present = cw.present_of(boxes)
    assert cw.centre_steps(per_frame, present).mean() > 2  # the shake steady windows remove

    windows, fixed = cw.steady_windows(boxes, SETTINGS)
    assert fixed
    assert len({tuple(w) for w in windows[present]}) == 1
    assert cw.centre_steps(windows, present).max() == 0
    assert _inside_with_margin(boxes, windows, 0.1)
    sides = windows[:, 2] - windows[:, 0]
    assert np.all(sides[present] >= (per_frame[:, 2] - per_frame[:, 0])[present])  # never more zoomed in


def test_a_walking_animal_is_followed_smoothly_and_never_cut():
    rng = np.random.default_rng(2)
    t = np.arange(FRAMES, dtype=float)
    centres = np.stack([100 + 25 * t, 200 + 8 * t], axis=1)  # 25 px/frame across the frame
    boxes = _track(centres, (160, 120)) + rng.normal(0, 4, size=(FRAMES, 4))
    present = cw.present_of(boxes)
    windows, fixed = cw.steady_windows(boxes, SETTINGS)
    per_frame = cw.frame_windows(boxes, 224, 0.1)
    assert not fixed
    assert _inside_with_margin(boxes, windows, 0.1)
    shake = lambda w: np.abs(np.diff((w[:, :2] + w[:, 2:]) / 2.0, n=2, axis=0)).mean()  # noqa: E731
    assert shake(windows) < 0.5 * shake(per_frame)
    # it follows the walk: the window centre stays near the true path
    assert np.abs((windows[:, :2] + windows[:, 2:]) / 2.0 - centres).max() < 15


@pytest.mark.parametrize("seed", range(12))
def test_random_paths_keep_every_box_with_its_margin_inside(seed):
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, rng.uniform(1, 40), size=(FRAMES, 2))
    centres = 500 + np.cumsum(steps, axis=0)
    sizes = rng.uniform(20, 400, size=2) * rng.uniform(0.6, 1.4, size=(FRAMES, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    boxes[rng.random(FRAMES) < 0.2] = np.nan
    settings = cw.WindowSettings(224, float(rng.choice([0.0, 0.1, 0.3])), smooth_frames=int(rng.integers(1, 6)))
    windows, _ = cw.steady_windows(boxes, settings)
    present = cw.present_of(boxes)
    assert _inside_with_margin(boxes, windows, settings.margin)
    assert np.all(cw.boxes_inside(boxes, windows, present))
    natural = cw.frame_windows(boxes, 224, settings.margin)
    assert np.all((windows[:, 2] - windows[:, 0])[present] >= (natural[:, 2] - natural[:, 0])[present])
    assert np.all(windows[:, 2] - windows[:, 0] == windows[:, 3] - windows[:, 1])  # squares


def _walkers(rng, top_speed: float, noise: float, count: int = 60) -> list[tuple[np.ndarray, np.ndarray]]:
    """Animals walking straight at speeds up to ``top_speed`` px/frame, box centres jittered by ``noise``."""
    out = []
    for _ in range(count):
        speed = rng.uniform(0, top_speed)
        heading = rng.uniform(0, 2 * np.pi)
        t = np.arange(FRAMES, dtype=float)
        centres = 300 + np.outer(t, [speed * np.cos(heading), speed * np.sin(heading)]) + rng.normal(0, noise, (FRAMES, 2))
        kept = np.flatnonzero(rng.random(FRAMES) > 0.1)
        out.append((kept, _track(centres[kept], (60, 40))))
    return out


def _measured(walkers) -> Reach | None:
    model = cw.jump_speed_model()
    for frames, boxes in walkers:
        model.add(centre_moves(frames, boxes))
    return model.line_reach()


def test_scene_speed_is_measured_from_the_moves():
    rng = np.random.default_rng(3)
    reach = _measured(_walkers(rng, top_speed=20, noise=2))
    # the 95th percentile of speeds uniform in [0, 20] is 19 px per frame, times the tolerance
    # 1.5; the jitter of the centres (2 px) adds a little that does not grow with the gap
    assert 1.5 * 17 < float(reach(1)) < 1.5 * 23
    assert 3 * float(reach(1)) < float(reach(4)) <= 4 * float(reach(1))  # further with more frames between
    assert float(reach(12)) - float(reach(8)) == pytest.approx(float(reach(8)) - float(reach(4)))  # a line, beyond the lags too
    faster = _measured(_walkers(rng, top_speed=60, noise=2))
    assert float(faster(1)) > 2.5 * float(reach(1))  # measured, not a constant
    record = cw.speed_record(_model_of(_walkers(rng, top_speed=20, noise=2)))
    assert record["quantile"] == cw.JUMP_QUANTILE and len(record["reach_px"]) == LAGS and record["samples"] > 500


def _model_of(walkers):
    model = cw.jump_speed_model()
    for frames, boxes in walkers:
        model.add(centre_moves(frames, boxes))
    return model


def test_too_few_moves_measure_no_speed_and_find_no_jump():
    assert _measured([(np.array([0, 1, 2]), _track(np.array([[0, 0], [300, 0], [0, 0]], float), (20, 20)))]) is None
    assert cw.speed_record(cw.jump_speed_model()) is None
    boxes = _track(np.array([[100.0 + 400 * (i > 9), 100.0] for i in range(FRAMES)]), (40, 40))
    assert not cw.jumps(boxes, None).any()
    assert len(cw.plan_object(boxes, SETTINGS, None)) == 1


#: a scene whose animals get 1.5 x (5 + 10 k) px in k frames
SPEED = Reach(tuple(1.5 * (5.0 + 10.0 * k) for k in range(1, LAGS + 1)))


def test_a_jump_cuts_the_object_into_parts_that_follow_one_animal_each():
    t = np.arange(FRAMES, dtype=float)
    first = np.stack([100 + 5 * t, 100 + 0 * t], axis=1)
    second = np.stack([700 - 5 * t, 400 + 0 * t], axis=1)
    centres = np.where((t < 8)[:, None], first, second)  # the id moves to another animal at frame 8
    boxes = _track(centres, (50, 80))
    boxes[[5, 6, 7]] = np.nan  # unseen for three frames, then found 500 px away
    jumped = cw.jumps(boxes, SPEED)
    assert np.flatnonzero(jumped).tolist() == [8]
    plans = cw.plan_object(boxes, SETTINGS, SPEED)
    assert [p.part for p in plans] == [0, 1]
    assert np.flatnonzero(plans[0].present).tolist() == [0, 1, 2, 3, 4]
    assert np.flatnonzero(plans[1].present).tolist() == list(range(8, FRAMES))
    together = plans[0].present | plans[1].present
    assert np.array_equal(together, cw.present_of(boxes)) and not np.any(plans[0].present & plans[1].present)
    for plan in plans:
        part = np.where(plan.present[:, None], boxes, np.nan)
        assert not cw.jumps(part, SPEED).any()
        assert np.all(cw.boxes_inside(boxes, plan.windows, plan.present))
        assert cw.window_jumps(boxes, plan.windows, plan.present, SPEED) == 0
    # per-frame windows of the whole object held the jump
    whole = cw.frame_windows(boxes, 224, 0.1)
    assert cw.window_jumps(boxes, whole, cw.present_of(boxes), SPEED) == 1


def test_a_walker_at_the_scene_speed_and_a_box_that_changes_its_extent_are_no_jumps():
    t = np.arange(FRAMES, dtype=float)
    walker = _track(np.stack([100 + 12.0 * t, 200 + 0 * t], axis=1), (50, 80))  # 12 px per frame
    walker[[3, 4, 5]] = np.nan  # a gap: the allowed move grows with the frames between
    assert not cw.jumps(walker, SPEED).any()
    still = Reach((0.0,) * LAGS)  # a scene where nothing moved
    growing = np.array([[100, 100, 140, 200], [100, 100, 220, 200]] * 10, float)  # the mask takes in a shadow
    assert not cw.jumps(growing, still).any()
    assert len(cw.plan_object(growing, SETTINGS, still)) == 1


def test_per_frame_windows_when_steady_is_off():
    rng = np.random.default_rng(4)
    boxes = _track(300 + rng.normal(0, 3, size=(FRAMES, 2)), (100, 100))
    plans = cw.plan_object(boxes, cw.WindowSettings(224, 0.1, steady=False), SPEED)
    assert len(plans) == 1 and not plans[0].fixed
    assert np.array_equal(plans[0].windows, cw.frame_windows(boxes, 224, 0.1))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="smooth_frames"):
        cw.WindowSettings(224, 0.1, smooth_frames=0)
    with pytest.raises(ValueError, match="max_zoom_out"):
        cw.WindowSettings(224, 0.1, max_zoom_out=0.5)
    with pytest.raises(ValueError, match="clip frame 2"):
        cw.frame_windows(np.array([[0, 0, 5, 5], [0, 0, 5, 5], [3, 3, 3, 9]], float), 224, 0.1)
