import numpy as np
import pytest

from vitcow_assets.core.background import BackgroundMemory, masked_median, robust_sigma, split_count, typical_area
from vitcow_assets.core.tracks import IoUTracker, TrackedFrame, stitch_tracklets


def test_masked_median_ignores_invalid_samples():
    samples = np.array([[[10]], [[200]], [[20]], [[30]], [[250]]], np.uint8)
    valid = np.array([[[True]], [[False]], [[True]], [[True]], [[False]]])
    median, count = masked_median(samples, valid)
    assert median[0, 0] == 20 and count[0, 0] == 3
    median, count = masked_median(samples, np.zeros_like(valid))
    assert median[0, 0] == 0 and count[0, 0] == 0


def test_memory_estimate_band_by_band_equals_the_whole_frame_median(monkeypatch):
    import vitcow_assets.core.background as background

    rng = np.random.default_rng(3)
    height, width = 37, 53  # bands that do not divide the frame
    memory = BackgroundMemory(capacity=9)
    for _ in range(9):
        memory.add(rng.integers(0, 256, (height, width), dtype=np.uint8), rng.random((height, width)) > 0.3)
    clip = rng.integers(0, 256, (4, height, width), dtype=np.uint8)
    samples = np.concatenate([memory._samples, clip])
    valid = np.concatenate([memory._valid, np.ones(clip.shape, bool)])
    whole, count = masked_median(samples, valid)
    monkeypatch.setattr(background, "_BAND_PIXELS", 5 * width)
    banded, share = memory.estimate(clip)
    assert np.array_equal(banded, whole)
    assert share == pytest.approx(float(np.mean(1.0 - 4 / count)))


def test_robust_sigma_reads_noise_not_objects():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 3.0, 100_000)
    values[:10_000] = 120.0  # an object covering a tenth of the frame
    assert robust_sigma(values) == pytest.approx(3.0, rel=0.2)


def test_typical_area_and_split_count():
    noise = [2, 3, 4, 5] * 20
    animals = [300, 320, 310, 290, 305, 600]  # five animals and two touching
    assert typical_area(np.array(noise + animals), floor=9) == pytest.approx(307, abs=10)
    assert typical_area(np.array(noise), floor=9) == 0.0
    assert split_count(310, 307) == 1 and split_count(600, 307) == 2 and split_count(950, 307) == 3


def test_memory_keeps_a_still_animal_out_of_the_background():
    bg = np.full((20, 20), 100, np.uint8)
    with_animal = bg.copy()
    with_animal[5:10, 5:10] = 30
    memory = BackgroundMemory(capacity=6)
    for _ in range(6):  # earlier clips saw the spot empty
        memory.add(bg, np.ones(bg.shape, bool))
    # this clip: the animal stands still on the spot in every frame
    background, share = memory.estimate(np.stack([with_animal] * 3))
    assert background[7, 7] == 100 and share > 0.5
    # frames in which the animal was found are remembered without its pixels
    valid = np.ones(bg.shape, bool)
    valid[5:10, 5:10] = False
    for _ in range(6):
        memory.add(with_animal, valid)
    background, _ = memory.estimate(np.stack([with_animal] * 3))
    assert background[7, 7] == 30  # the memory no longer reaches back to the empty spot
    assert len(memory) == 6  # bounded


def test_stitch_joins_pieces_across_a_gap_and_an_overlap():
    box = lambda x: [[x, 0, x + 10, 10]]
    frames = [TrackedFrame([0], box(0)), TrackedFrame([0], box(5)), TrackedFrame([], []), TrackedFrame([1], box(15)), TrackedFrame([1], box(20))]
    assert stitch_tracklets(frames) == {0: 0, 1: 0}
    far = frames[:3] + [TrackedFrame([1], box(200)), TrackedFrame([1], box(205))]
    assert stitch_tracklets(far) == {0: 0, 1: 1}
    # one animal cut in two for a frame: piece 1 overlaps piece 0 there and carries on
    overlap = [TrackedFrame([0], box(0)), TrackedFrame([0], box(5)), TrackedFrame([0, 1], box(10) + box(12)), TrackedFrame([1], box(15))]
    assert stitch_tracklets(overlap) == {0: 0, 1: 0}


def test_far_pass_follows_a_dart_only_when_unambiguous():
    tracker = IoUTracker(far_shift=3.0)
    first = tracker.assign(np.array([[0, 0, 10, 10]], np.float32))
    dart = tracker.assign(np.array([[25, 0, 35, 10]], np.float32))  # 2.5 diagonals away
    assert dart.tolist() == first.tolist()
    tracker = IoUTracker(far_shift=3.0)
    tracker.assign(np.array([[0, 0, 10, 10]], np.float32))
    two = tracker.assign(np.array([[25, 0, 35, 10], [0, 25, 10, 35]], np.float32))
    assert first[0] not in two.tolist()
    assert IoUTracker().assign(np.array([[0, 0, 10, 10]], np.float32)).tolist() == [0]


def test_fill_hulls_covers_an_object_found_in_part_and_leaves_specks():
    from vitcow_assets.core.background import fill_hulls

    mask = np.zeros((60, 80), np.uint8)
    mask[10:40, 10:14] = 1  # the two flanks of one animal, its middle not found
    mask[10:14, 10:40] = 1
    mask[36:40, 10:40] = 1
    mask[50, 70] = 1  # a speck
    filled = fill_hulls(mask, min_area=20)
    assert filled[20:30, 20:35].all()  # the body between the flanks
    assert filled[50, 70] == 1 and filled[45:49, 60:75].sum() == 0
    assert (filled >= mask).all() and filled.dtype == np.uint8
    assert (fill_hulls(mask, min_area=10_000) == mask).all()  # nothing that large: as it was
