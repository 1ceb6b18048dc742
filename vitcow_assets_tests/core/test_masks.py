import numpy as np
import pytest
from pycocotools import mask as coco_mask

from vitcow_assets.core.masks import decode_mask, encode_masks, rle_area


def test_rle_round_trip_and_area():
    rng = np.random.default_rng(1)
    masks = rng.random((3, 37, 53)) > 0.6
    masks[2] = False
    rles = encode_masks(masks)
    assert [r["size"] for r in rles] == [[37, 53]] * 3
    assert all(isinstance(r["counts"], str) for r in rles)
    for mask, rle in zip(masks, rles):
        assert np.array_equal(decode_mask(rle), mask)
        assert rle_area(rle) == mask.sum()


def test_rle_is_readable_by_pycocotools_directly():
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:25] = True
    (rle,) = encode_masks(mask[None])
    decoded = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert decoded.sum() == 60 and coco_mask.toBbox({"size": rle["size"], "counts": rle["counts"].encode()}).tolist() == [10, 5, 15, 4]


def test_encode_empty_batch_and_bad_shape():
    assert encode_masks(np.zeros((0, 4, 4), bool)) == []
    with pytest.raises(ValueError):
        encode_masks(np.zeros((4, 4), bool))
