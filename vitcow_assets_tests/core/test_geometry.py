import numpy as np
import pytest

from vitcow_assets.core.geometry import (
    box_iou,
    extract_crop,
    mask_iou,
    mask_to_xyxy,
    masks_to_xyxy,
)


def test_mask_to_xyxy_single_pixel_has_exclusive_far_edges():
    mask = np.zeros((10, 12), bool)
    mask[3, 5] = True
    assert mask_to_xyxy(mask).tolist() == [5, 3, 6, 4]


def test_mask_to_xyxy_empty_and_full():
    assert mask_to_xyxy(np.zeros((4, 4), bool)) is None
    assert mask_to_xyxy(np.ones((4, 6), bool)).tolist() == [0, 0, 6, 4]


def test_masks_to_xyxy_zero_box_for_empty_mask():
    masks = np.zeros((2, 5, 5), bool)
    masks[1, 1:3, 2:5] = True
    assert masks_to_xyxy(masks).tolist() == [[0, 0, 0, 0], [2, 1, 5, 3]]


def test_extract_crop_inside_frame_is_an_exact_copy_at_native_size():
    frame = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    crop = extract_crop(frame, (50, 40, 274, 264), 224)
    assert crop.shape == (224, 224, 3)
    assert np.array_equal(crop, frame[40:264, 50:274])


def test_extract_crop_outside_frame_is_black():
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = extract_crop(frame, (-50, -50, 50, 50), 100)
    assert (crop[:50, :, :] == 0).all() and (crop[:, :50] == 0).all()
    assert (crop[50:, 50:] == 200).all()
    assert not extract_crop(frame, (500, 500, 600, 600), 100).any()


def test_extract_crop_downscales_a_window_larger_than_crop_size():
    frame = np.zeros((400, 400, 3), np.uint8)
    frame[:, 200:] = 255
    crop = extract_crop(frame, (0, 0, 400, 400), 200)
    assert crop.shape == (200, 200, 3)
    assert (crop[:, :99] == 0).all() and (crop[:, 101:] == 255).all()


def test_extract_crop_blacks_out_background_with_mask():
    frame = np.full((50, 50, 3), 90, np.uint8)
    mask = np.zeros((50, 50), bool)
    mask[10:20, 10:20] = True
    crop = extract_crop(frame, (0, 0, 50, 50), 50, mask=mask)
    assert (crop[10:20, 10:20] == 90).all()
    assert crop.sum() == 90 * 3 * 100


def test_extract_crop_rejects_non_square_window():
    with pytest.raises(ValueError):
        extract_crop(np.zeros((10, 10, 3), np.uint8), (0, 0, 5, 6), 4)


def test_box_iou_and_mask_iou():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    assert iou.tolist() == [[1.0, pytest.approx(1 / 3), 0.0]]
    a = np.zeros((4, 4), bool)
    a[:2] = True
    assert mask_iou(a, a) == 1.0 and mask_iou(a, ~a) == 0.0 and mask_iou(~np.ones_like(a), ~np.ones_like(a)) == 0.0
