"""Masks kept cropped to their boxes (``BoxMasks``) and their RLE: the same bytes as
pycocotools' own encoder on the frame-sized masks, the same masks-table rows."""

import numpy as np
import pyarrow as pa
import pytest
from pycocotools import mask as coco_mask

from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.detections import Detections
from vitcow_assets.core.geometry import masks_to_xyxy
from vitcow_assets.core.masks import BoxMasks, crop_run_lengths, decode_mask, encode_box_masks, encode_masks
from vitcow_assets.core.tables import mask_rows


def _random_masks(rng, n: int, height: int, width: int) -> np.ndarray:
    """Masks of every kind: noise of any density, filled rectangles (some touching the frame's
    edges or as tall as the frame), single pixels, empty ones."""
    masks = np.zeros((n, height, width), bool)
    for i in range(n):
        kind = rng.integers(5)
        if kind == 0:
            masks[i] = rng.random((height, width)) < rng.random()
        elif kind == 1:
            y0, y1 = sorted(rng.integers(0, height + 1, 2))
            x0, x1 = sorted(rng.integers(0, width + 1, 2))
            masks[i, y0:y1, x0:x1] = True
        elif kind == 2:
            x0, x1 = sorted(rng.integers(0, width + 1, 2))
            masks[i, :, x0:x1] = rng.random((height, x1 - x0)) < 0.8  # as tall as the frame
        elif kind == 3:
            masks[i, rng.integers(height), rng.integers(width)] = True
    return masks


def test_box_local_rle_is_pycocotools_rle_on_random_masks():
    rng = np.random.default_rng(7)
    for _ in range(400):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        masks = _random_masks(rng, int(rng.integers(0, 6)), height, width)
        assert encode_box_masks(BoxMasks.from_full(masks)) == encode_masks(masks)


def test_masks_running_to_the_last_pixel_or_wrapping_columns():
    full = np.ones((1, 5, 4), bool)
    corner = np.zeros((1, 5, 4), bool)
    corner[0, 4, 3] = True  # the frame's last pixel in column-major order
    wrap = np.zeros((1, 5, 4), bool)
    wrap[0, 3:, 1] = wrap[0, :2, 2] = True  # one run across the column boundary
    for masks in (full, corner, wrap):
        assert encode_box_masks(BoxMasks.from_full(masks)) == encode_masks(masks)
    assert crop_run_lengths(np.ones((5, 4), bool), 0, 0, 5, 4).tolist() == [0, 20]
    assert crop_run_lengths(np.zeros((0, 0), bool), 0, 0, 5, 4).tolist() == [20]


def test_from_full_cuts_each_mask_to_its_pixels_and_gives_it_back():
    rng = np.random.default_rng(3)
    masks = _random_masks(rng, 12, 31, 47)
    boxed = BoxMasks.from_full(masks)
    assert boxed.shape == masks.shape and len(boxed) == 12
    assert np.array_equal(boxed.full(), masks) and np.array_equal(np.asarray(boxed), masks)
    assert all(np.array_equal(boxed.mask(i), masks[i]) for i in range(12))
    assert np.array_equal(boxed.crop_xyxy(), masks_to_xyxy(masks))  # tight boxes, zeros when empty
    assert boxed.areas().tolist() == masks.reshape(12, -1).sum(axis=1).tolist()
    assert sum(c.size for c in boxed.crops) <= masks.size  # never more than the frames' area
    picked = boxed.select([5, 1])
    assert np.array_equal(picked.full(), masks[[5, 1]])
    assert np.array_equal(boxed.select(masks.any(axis=(1, 2))).full(), masks[masks.any(axis=(1, 2))])


def test_from_parts_is_the_union_of_the_parts():
    frame = (20, 30)
    parts = [[(2, 3, np.ones((4, 5), bool)), (5, 5, np.eye(6, dtype=bool))], [(29, 19, np.ones((1, 1), bool))]]
    boxed = BoxMasks.from_parts(parts, *frame)
    expected = np.zeros((2, *frame), bool)
    expected[0, 3:7, 2:7] = True
    expected[0, 5:11, 5:11] |= np.eye(6, dtype=bool)
    expected[1, 19, 29] = True
    assert np.array_equal(boxed.full(), expected)
    assert boxed.crop_xyxy().tolist() == [[2, 3, 11, 11], [29, 19, 30, 20]]


def test_a_crop_outside_its_frame_is_refused():
    with pytest.raises(ValueError, match="leaves the 8x6 frame"):
        BoxMasks([np.ones((3, 3), bool)], [[6, 0]], 6, 8)
    with pytest.raises(ValueError, match="crops but"):
        BoxMasks([np.ones((3, 3), bool)], np.zeros((0, 2)), 6, 8)


def test_detections_take_frame_sized_or_box_local_masks_alike():
    rng = np.random.default_rng(11)
    masks = _random_masks(rng, 4, 24, 36)
    masks[:, 0, 0] = True  # none empty
    args = dict(xyxy=masks_to_xyxy(masks), scores=[0.9, 0.8, 0.7, 0.6], object_ids=[3, 1, 7, 5], prompts=["cow"] * 4)
    from_full = Detections(masks=masks, **args)
    from_boxes = Detections(masks=BoxMasks.from_full(masks), **args)
    assert isinstance(from_full.masks, BoxMasks) and from_full.frame_size == (24, 36)
    assert np.array_equal(np.asarray(from_full.masks), np.asarray(from_boxes.masks))
    assert np.array_equal(from_full.select(np.array([2, 0])).masks.full(), masks[[2, 0]])
    assert Detections.empty(24, 36).masks.shape == (0, 24, 36)
    with pytest.raises(ValueError, match="masks has 3 entries"):
        Detections(masks=BoxMasks.from_full(masks[:3]), **args)


def test_mask_rows_from_box_local_masks_match_pycocotools_on_frame_sized_ones():
    rng = np.random.default_rng(5)
    masks = _random_masks(rng, 9, 40, 60)
    masks[:, 39, 59] = True  # none empty
    det = Detections(masks_to_xyxy(masks), BoxMasks.from_full(masks), np.linspace(0.1, 0.9, 9), np.arange(9), ["cow"] * 9)
    rows = mask_rows("vid", ClipWindow(0, 0, 4, 20), 3, det, "m").to_pylist()
    reference = encode_masks(masks)
    assert [r["mask_rle"] for r in rows] == reference
    assert [r["area"] for r in rows] == [int(coco_mask.area({"size": r["size"], "counts": r["counts"].encode()})) for r in reference]
    assert all(np.array_equal(decode_mask(r["mask_rle"]), m) for r, m in zip(rows, masks))
    assert pa.Table.from_pylist(rows).num_rows == 9
