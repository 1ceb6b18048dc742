"""The testbed's scoring (``vitcow_testbed.idscore``), which the identity tests and the
tracking benchmarks rely on: IDF1 is 1 for perfect tracks, drops with an identity switch,
and a frame that two clips share is scored once."""

import pytest

from vitcow_testbed.idscore import identity_scores


def test_idf1_is_one_for_perfect_tracks_and_drops_with_an_identity_switch():
    gt = [{"source_frame": f, "track_id": k, "x1": 10 * k, "y1": 0, "x2": 10 * k + 8, "y2": 8} for f in range(10) for k in range(2)]
    assert identity_scores(gt, gt)["IDF1"] == 1.0
    switched = [{**r, "track_id": r["track_id"] if r["source_frame"] < 5 else 1 - r["track_id"]} for r in gt]
    assert identity_scores(gt, switched)["IDF1"] == pytest.approx(0.5)
    # a shared frame that appears twice (two clips) is scored once, from the earlier clip
    doubled = [{**r, "clip_id": "c00000"} for r in gt] + [{**r, "clip_id": "c00001", "track_id": 9} for r in gt if r["source_frame"] == 9]
    assert identity_scores(gt, doubled)["IDF1"] == 1.0
