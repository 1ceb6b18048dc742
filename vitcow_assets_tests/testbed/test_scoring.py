"""The testbed's scoring (``vitcow_testbed.idscore``, ``trackscore``), which the identity tests
and the tracking benchmarks rely on: IDF1 is 1 for perfect tracks, drops with an identity
switch, and a frame that two clips share is scored once; a crop jump counts only between two
animals and inside one crop (part)."""

import pytest

from vitcow_testbed.idscore import identity_scores
from vitcow_testbed.trackscore import crop_jumps, jumps_between_animals, part_figures


def test_idf1_is_one_for_perfect_tracks_and_drops_with_an_identity_switch():
    gt = [{"source_frame": f, "track_id": k, "x1": 10 * k, "y1": 0, "x2": 10 * k + 8, "y2": 8} for f in range(10) for k in range(2)]
    assert identity_scores(gt, gt)["IDF1"] == 1.0
    switched = [{**r, "track_id": r["track_id"] if r["source_frame"] < 5 else 1 - r["track_id"]} for r in gt]
    assert identity_scores(gt, switched)["IDF1"] == pytest.approx(0.5)
    # a shared frame that appears twice (two clips) is scored once, from the earlier clip
    doubled = [{**r, "clip_id": "c00000"} for r in gt] + [{**r, "clip_id": "c00001", "track_id": 9} for r in gt if r["source_frame"] == 9]
    assert identity_scores(gt, doubled)["IDF1"] == 1.0


def _row(frame: int, x: float, object_id: int = 0, part: int = 0) -> dict:
    return {"clip_id": "c00000", "clip_frame": frame, "source_frame": frame, "object_id": object_id, "part": part,
            "track_id": object_id, "x1": x, "y1": 0.0, "x2": x + 10, "y2": 10.0}


def test_a_jump_counts_only_between_two_animals_and_within_one_crop():
    # two animals 200 px apart, seen on frames 0-9; animal 1 is fast and moves 150 px between frames 4 and 5
    truth = [{"source_frame": f, "track_id": 0, "x1": 0.0, "y1": 0.0, "x2": 10.0, "y2": 10.0} for f in range(10)]
    truth += [{"source_frame": f, "track_id": 1, "x1": 200.0 + 150 * (f >= 5), "y1": 0.0, "x2": 210.0 + 150 * (f >= 5), "y2": 10.0} for f in range(10)]
    fast = [_row(f, 200.0 + 150 * (f >= 5), object_id=1) for f in range(10)]
    assert crop_jumps(fast) == 1 and jumps_between_animals(fast, truth) == 0  # its own move
    switch = [_row(f, 0.0 if f < 5 else 200.0 + 150) for f in range(10)]  # from animal 0 to animal 1
    assert crop_jumps(switch) == 1 and jumps_between_animals(switch, truth) == 1
    cut = [{**r, "part": int(r["clip_frame"] >= 5)} for r in switch]  # the crop stage cut it at the jump
    assert crop_jumps(cut) == 0 and jumps_between_animals(cut, truth) == 0


def test_part_figures_tell_a_cut_that_takes_out_a_switch_from_one_that_cuts_an_animal_in_two():
    truth = [{"source_frame": f, "track_id": k, "x1": 100.0 * k, "y1": 0.0, "x2": 100.0 * k + 10, "y2": 10.0} for f in range(6) for k in (0, 1)]
    clip = lambda rows, clip_id: [{**r, "clip_id": clip_id} for r in rows]  # one object per clip: no two rows compete for an animal
    switch = clip([_row(f, 0.0 if f < 3 else 100.0, part=int(f >= 3)) for f in range(6)], "c1")  # cut where it switched
    nothing = clip([_row(f, 300.0, part=int(f >= 4)) for f in range(6)], "c2")  # no animal there: unmatched on both sides
    one = clip([_row(f, 100.0, part=int(f >= 2)) for f in range(6)], "c3")  # animal 1 cut in two
    kept = clip([_row(f, 0.0 if f < 3 else 100.0) for f in range(6)], "c4")  # a switch left in one crop
    assert part_figures(switch + nothing + one + kept, truth) == {
        "crop_parts": 7, "part_switches": 1, "cuts_between_animals": 1, "cuts_within_animal": 1,
    }
