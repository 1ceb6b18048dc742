"""COCO run-length encoding of masks, as pycocotools writes it.

An RLE is ``{"size": [height, width], "counts": str}`` (column-major, compressed counts
as text), readable by any COCO tool. Pure: no file access.
"""

import numpy as np
from pycocotools import mask as coco_mask


def encode_masks(masks: np.ndarray) -> list[dict]:
    """Encode ``(N, H, W) bool`` masks as a list of COCO RLE dicts with text ``counts``."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    fortran = np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))
    return [
        {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
        for r in coco_mask.encode(fortran)
    ]


def _as_pycocotools(rle: dict) -> dict:
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


def decode_mask(rle: dict) -> np.ndarray:
    """Decode one COCO RLE (text or bytes ``counts``) to an ``(H, W) bool`` mask."""
    return coco_mask.decode(_as_pycocotools(rle)).astype(bool)


def rle_area(rle: dict) -> int:
    """Pixel count of one COCO RLE without decoding it."""
    return int(coco_mask.area(_as_pycocotools(rle)))


def rle_iou(a: list[dict], b: list[dict]) -> np.ndarray:
    """IoU matrix ``(len(a), len(b)) float64`` of COCO RLE masks of one frame size, without decoding."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    iou = coco_mask.iou([_as_pycocotools(r) for r in a], [_as_pycocotools(r) for r in b], [0] * len(b))
    return np.asarray(iou, dtype=np.float64).reshape(len(a), len(b))
