"""Identity across clips (``core.identity``): the linker on hand-made observations, the tracks
and the tracks table builder."""

import numpy as np
import pyarrow as pa
import pytest

from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.core.identity import ClipObservations, LinkSettings, TrackLinker, link_clips
from vitcow_assets.core.masks import encode_masks, rle_iou
from vitcow_assets.core.tables import CROPS_SCHEMA, TRACKS_SCHEMA, TracksBuilder, set_track_ids

H, W = 60, 120


def _rect(x1, y1, x2, y2) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def _obs(rows) -> ClipObservations:
    """``rows``: ``(object_id, source_frame, (x1, y1, x2, y2), prompt)``."""
    if not rows:
        return ClipObservations([], [], np.zeros((0, 4)), [], [])
    masks = np.stack([_rect(*box) for _, _, box, _ in rows])
    return ClipObservations(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], encode_masks(masks), [r[3] for r in rows]
    )


def _walk(object_id, frames, x0, speed, y=20, size=10, prompt="cow", start=0):
    """An animal moving right at ``speed`` px per source frame, from ``x0`` at frame ``start``."""
    return [(object_id, f, (int(x0 + speed * (f - start)), y, int(x0 + speed * (f - start)) + size, y + size), prompt) for f in frames]


A = ClipWindow(0, 0, 2, 3)  # frames 0, 2, 4
B = ClipWindow(1, 4, 2, 3)  # frames 4, 6, 8: shares frame 4 with A
C = ClipWindow(2, 8, 2, 3)  # frames 8, 10, 12


def test_consecutive_clips_share_a_frame_and_objects_are_linked_by_their_masks_whatever_their_ids():
    linker = TrackLinker()
    first = linker.link(A, _obs(_walk(0, [0, 2, 4], 10, 2) + _walk(1, [0, 2, 4], 60, -2)))
    # the same animals with other ids (and the left one now has id 1)
    second = linker.link(B, _obs(_walk(1, [4, 6, 8], 10, 2) + _walk(5, [4, 6, 8], 60, -2)))
    assert first == {0: 0, 1: 1}
    assert second == {1: 0, 5: 1}
    assert linker.tracks == 2


def test_touching_animals_on_the_shared_frame_are_told_apart_by_mask_not_box():
    # Two L-shaped animals whose boxes are identical on the shared frame: only the masks differ.
    top_left = _rect(10, 10, 40, 20) | _rect(10, 10, 20, 40)
    bottom_right = _rect(20, 30, 40, 40) | _rect(30, 20, 40, 40)
    box = (10, 10, 40, 40)

    def obs(ids, masks):
        return ClipObservations(ids, [1, 1], [box, box], encode_masks(np.stack(masks)), ["cow", "cow"])

    linker = TrackLinker()
    assert linker.link(ClipWindow(0, 0, 1, 2), obs([0, 1], [top_left, bottom_right])) == {0: 0, 1: 1}
    assert linker.link(ClipWindow(1, 1, 1, 2), obs([4, 9], [bottom_right, top_left])) == {4: 1, 9: 0}


def test_an_animal_hidden_on_the_shared_frame_is_linked_by_its_motion():
    linker = TrackLinker()
    # 0 walks right and is hidden on frame 4 (by 1, standing at the place it reaches)
    linker.link(A, _obs(_walk(0, [0, 2], 10, 4) + _walk(1, [0, 2, 4], 26, 0)))
    second = linker.link(B, _obs(_walk(3, [4, 6, 8], 26, 0) + _walk(8, [6, 8], 10, 4)))
    assert second == {3: 1, 8: 0}


def test_clips_one_frame_step_apart_are_linked_by_the_predicted_box():
    linker = TrackLinker()
    # 12 px per frame step for a 10 px animal: the boxes of consecutive samples never overlap
    linker.link(ClipWindow(0, 0, 2, 3), _obs(_walk(0, [0, 2, 4], 0, 6) + _walk(1, [0, 2, 4], 100, 0, y=40)))
    second = linker.link(ClipWindow(1, 6, 2, 3), _obs(_walk(2, [6, 8, 10], 0, 6) + _walk(0, [6, 8, 10], 100, 0, y=40)))
    assert second == {2: 0, 0: 1}


def test_a_gap_between_clips_ends_every_track():
    linker = TrackLinker()
    linker.link(A, _obs(_walk(0, [0, 2, 4], 10, 0)))
    later = ClipWindow(5, 20, 2, 3)  # not consecutive: max_clips or a time-of-day window left clips out
    assert not linker.consecutive(A, later)
    assert linker.link(later, _obs(_walk(0, [20, 22, 24], 10, 0))) == {0: 1}


def test_objects_found_by_another_prompt_are_never_linked():
    linker = TrackLinker()
    linker.link(A, _obs(_walk(0, [0, 2, 4], 10, 0, prompt="cow")))
    assert linker.link(B, _obs(_walk(0, [4, 6, 8], 10, 0, prompt="calf"))) == {0: 1}


def test_appearing_and_disappearing_animals():
    linker = TrackLinker()
    linker.link(A, _obs(_walk(0, [0, 2, 4], 10, 0) + _walk(1, [0, 2], 60, 0)))  # 1 leaves before frame 4
    # 2 is new, far from where 1 was; 0 goes on
    second = linker.link(B, _obs(_walk(7, [4, 6, 8], 10, 0) + _walk(2, [6, 8], 100, 0, y=40)))
    assert second == {7: 0, 2: 2}


def test_an_animal_missed_for_a_few_frames_is_linked_within_max_gap_steps_only():
    settings = LinkSettings(max_gap_steps=3)
    near = TrackLinker(settings)
    near.link(A, _obs(_walk(0, [0, 2], 10, 0)))  # last seen at frame 2
    near.link(B, _obs([]))
    assert near.link(C, _obs(_walk(4, [8, 10, 12], 10, 0))) == {4: 0}  # 3 steps later: same animal
    far = TrackLinker(settings)
    far.link(A, _obs(_walk(0, [0], 10, 0)))  # last seen at frame 0
    far.link(B, _obs([]))
    assert far.link(C, _obs(_walk(4, [8, 10, 12], 10, 0))) == {4: 1}  # 4 steps later: a new track


def test_clips_must_come_in_source_order_and_link_clips_maps_every_object():
    linker = TrackLinker()
    linker.link(B, _obs([]))
    with pytest.raises(ValueError, match="source order"):
        linker.link(A, _obs([]))
    mapping = link_clips([(A, _obs(_walk(0, [0, 2, 4], 10, 0))), (B, _obs(_walk(3, [4, 6, 8], 10, 0) + _walk(4, [4], 80, 0)))])
    assert mapping == {("c00000", 0): 0, ("c00001", 3): 0, ("c00001", 4): 1}


def test_rle_iou_matches_mask_iou():
    masks = np.stack([_rect(0, 0, 10, 10), _rect(5, 5, 15, 15), _rect(50, 50, 60, 60)])
    rles = encode_masks(masks)
    iou = rle_iou(rles[:2], rles)
    for i in range(2):
        for j in range(3):
            assert iou[i, j] == pytest.approx(mask_iou(masks[i], masks[j]))
    assert rle_iou([], rles).shape == (0, 3)


def test_set_track_ids_fills_the_column_and_refuses_unlinked_objects():
    table = pa.table({"object_id": pa.array([3, 5, 3], pa.int64()), "track_id": pa.array([-1, -1, -1], pa.int64())})
    assert set_track_ids(table, {3: 10, 5: 11})["track_id"].to_pylist() == [10, 11, 10]
    with pytest.raises(ValueError, match=r"\[5\]"):
        set_track_ids(table, {3: 10})


def _crop_row(clip: ClipWindow, object_id, track_id, present, path):
    row = {name: None for name in CROPS_SCHEMA.names}
    row.update(
        crop_path=path, clip_id=clip.clip_id, object_id=object_id, track_id=track_id, prompt="cow",
        source_frame_start=clip.source_start, frame_step=clip.frame_step, present=present,
    )
    return row


def test_tracks_table_counts_a_shared_frame_once_and_lists_crops_in_order():
    builder = TracksBuilder("vid")
    builder.add(pa.Table.from_pylist([_crop_row(A, 0, 0, [False, True, True], "/a0.mp4"), _crop_row(A, 1, 1, [True, False, False], "/a1.mp4")]))
    builder.add(pa.Table.from_pylist([_crop_row(B, 2, 0, [True, True, False], "/b2.mp4")]))
    table = builder.table()
    assert table.schema.equals(TRACKS_SCHEMA)
    first, second = table.to_pylist()
    assert first == {
        "video_id": "vid", "track_id": 0, "prompt": "cow", "first_source_frame": 2, "last_source_frame": 6,
        "clips": ["c00000", "c00001"], "object_ids": [0, 2], "frames_present": 3,  # frames 2, 4 (shared), 6
        "crop_paths": ["/a0.mp4", "/b2.mp4"],
    }
    assert (second["track_id"], second["first_source_frame"], second["last_source_frame"], second["frames_present"]) == (1, 0, 0, 1)


# Lost tracks: clips of 20 frames, one source frame apart (step 1), sharing their ends.
L1, L2, L3 = ClipWindow(0, 0, 1, 20), ClipWindow(1, 19, 1, 20), ClipWindow(2, 38, 1, 20)


def _lost_scene(settings: LinkSettings = LinkSettings(), x=80, size=10, frames=range(45, 58)) -> dict:
    """Two animals walk through three clips (enough moves to measure the speed gate); a third
    stands at x=80 until frame 15 and is seen again from frame 45 (30 frame steps later) at
    ``x`` with side ``size``. Returns the third clip's mapping."""
    walkers = lambda ids, span: _walk(ids[0], span, 10, 1, y=5) + _walk(ids[1], span, 10, 1, y=35)
    linker = TrackLinker(settings)
    assert linker.link(L1, _obs(walkers((0, 1), range(0, 20)) + _walk(2, range(0, 16), 80, 0, y=20))) == {0: 0, 1: 1, 2: 2}
    assert linker.link(L2, _obs(walkers((4, 3), range(19, 39)))) == {4: 0, 3: 1}
    return linker.link(L3, _obs(walkers((1, 0), range(38, 58)) + _walk(9, frames, x, 0, y=20, size=size)))


def test_an_animal_that_vanished_in_the_view_continues_its_track_where_it_is_seen_again():
    assert _lost_scene() == {1: 0, 0: 1, 9: 2}
    assert _lost_scene(x=84) == {1: 0, 0: 1, 9: 2}  # it moved a little while unseen


def test_a_lost_track_is_not_claimed_at_the_edge_too_late_by_another_size_or_without_a_speed_gate():
    assert _lost_scene(x=0)[9] == 3  # enters at the frame's edge: another animal
    assert _lost_scene(LinkSettings(max_lost_steps=20))[9] == 3  # 30 steps later, 20 allowed
    assert _lost_scene(size=20)[9] == 3  # four times the area
    assert _lost_scene(LinkSettings(speed_margin=0))[9] == 3  # no measured speeds: no guess
    assert _lost_scene(x=30)[9] == 3  # 50 px in 30 steps: out of the measured reach
