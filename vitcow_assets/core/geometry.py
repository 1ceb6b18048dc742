"""Box geometry, and cutting a crop window out of a frame (the windows themselves are planned
by ``core.crop_windows``).

Conventions used everywhere in the project:
- An image is ``(H, W, 3) uint8`` RGB; a mask is ``(H, W) bool``.
- Boxes are ``xyxy`` in pixels of the frame they belong to: ``x1, y1`` is the top-left
  corner of the top-left pixel, ``x2, y2`` the bottom-right corner of the bottom-right
  pixel (exclusive edge), so ``width = x2 - x1``. A one-pixel mask at (row 3, col 5) has
  box ``(5, 3, 6, 4)``.
- A crop window is a square ``(x1, y1, x2, y2)`` of integers that may extend past the frame;
  what lies outside the frame is black in the crop.
"""

import cv2
import numpy as np

CropWindow = tuple[int, int, int, int]


def mask_to_xyxy(mask: np.ndarray) -> np.ndarray | None:
    """Tight box of a ``(H, W) bool`` mask as ``float32 (4,)``, or None when the mask is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def masks_to_xyxy(masks: np.ndarray) -> np.ndarray:
    """Tight boxes of ``(N, H, W) bool`` masks as ``float32 (N, 4)``; empty masks give zeros."""
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        box = mask_to_xyxy(mask)
        if box is not None:
            boxes[i] = box
    return boxes


def extract_crop(
    frame: np.ndarray,
    window: CropWindow,
    crop_size: int,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Cut ``window`` out of ``frame`` and return a ``(crop_size, crop_size, 3) uint8`` image.

    Parts of the window outside the frame are black. With ``mask`` (``(H, W) bool`` of the
    frame), pixels outside the mask are black too. Only the visible part of the window is
    resized, so a window far larger than the frame costs no more than the frame itself.
    """
    height, width = frame.shape[:2]
    wx1, wy1, wx2, wy2 = window
    side = wx2 - wx1
    if side <= 0 or wy2 - wy1 != side:
        raise ValueError(f"crop window {window!r} is not a non-empty square")
    out = np.zeros((crop_size, crop_size, 3), dtype=np.uint8)
    ix1, iy1 = max(wx1, 0), max(wy1, 0)
    ix2, iy2 = min(wx2, width), min(wy2, height)
    if ix2 <= ix1 or iy2 <= iy1:
        return out
    visible = frame[iy1:iy2, ix1:ix2]
    if mask is not None:
        visible = visible * mask[iy1:iy2, ix1:ix2, None]
    scale = crop_size / side
    # Destination rectangle of the visible part; edges are rounded so that adjacent
    # windows map to adjacent pixels and a full-frame window fills the crop exactly.
    dx1, dy1 = int(round((ix1 - wx1) * scale)), int(round((iy1 - wy1) * scale))
    dx2, dy2 = int(round((ix2 - wx1) * scale)), int(round((iy2 - wy1) * scale))
    if dx2 <= dx1 or dy2 <= dy1:
        return out
    if (dx2 - dx1, dy2 - dy1) == visible.shape[1::-1]:
        out[dy1:dy2, dx1:dx2] = visible
    else:
        out[dy1:dy2, dx1:dx2] = cv2.resize(visible, (dx2 - dx1, dy2 - dy1), interpolation=cv2.INTER_AREA)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M) float64`` between ``xyxy`` boxes ``a (N, 4)`` and ``b (M, 4)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``(H, W) bool`` masks; 0.0 when both are empty."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def box_centres(xyxy: np.ndarray) -> np.ndarray:
    """Centres ``(..., 2) float64`` of ``xyxy`` boxes ``(..., 4)``."""
    xyxy = np.asarray(xyxy, dtype=np.float64)
    return (xyxy[..., :2] + xyxy[..., 2:]) / 2.0


def box_diagonals(xyxy: np.ndarray) -> np.ndarray:
    """Diagonal lengths ``(...) float64`` of ``xyxy`` boxes ``(..., 4)``."""
    xyxy = np.asarray(xyxy, dtype=np.float64)
    return np.hypot(xyxy[..., 2] - xyxy[..., 0], xyxy[..., 3] - xyxy[..., 1])


def paired_box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise IoU ``(...) float64`` of ``xyxy`` boxes ``a (..., 4)`` and ``b (..., 4)``
    (broadcast against each other; ``box_iou`` gives the full matrix)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def least_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How far ``(...) float64`` an object seen in box ``a`` and then in box ``b`` (``xyxy``,
    ``(..., 4)``, broadcast against each other) has moved at least: per axis, the centre's
    shift less half the change of the box's extent (a box that grows on one side moves its
    centre by half the growth with nothing inside moving), combined as a distance."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    shift = np.abs((b[..., :2] + b[..., 2:]) - (a[..., :2] + a[..., 2:])) / 2.0
    growth = np.abs((b[..., 2:] - b[..., :2]) - (a[..., 2:] - a[..., :2])) / 2.0
    least = np.maximum(shift - growth, 0.0)
    return np.hypot(least[..., 0], least[..., 1])
