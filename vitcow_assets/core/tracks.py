"""Id bookkeeping within one clip: which detection of a frame continues which object.

Object ids are stable within a clip only: the same id in two clips says nothing about the
animal being the same. Pure: numpy and scipy only.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from vitcow_assets.core.geometry import box_iou


def _centres(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2.0


def _diagonals(xyxy: np.ndarray) -> np.ndarray:
    return np.hypot(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])


class IoUTracker:
    """Gives detections ids that persist across the frames of one clip.

    Each live track predicts its box by constant velocity. Detections are matched to tracks
    by Hungarian assignment on ``(1 - IoU) + centre shift`` (shift in units of the larger box
    diagonal); a pair is allowed when IoU >= ``min_iou`` or the shift <= ``max_shift``.
    Unmatched detections start new tracks; a track unmatched for more than ``max_missed``
    frames is retired. Ids count from 0 in order of first appearance.
    """

    def __init__(self, min_iou: float = 0.1, max_shift: float = 0.75, max_missed: int = 2) -> None:
        self.min_iou = min_iou
        self.max_shift = max_shift
        self.max_missed = max_missed
        self._boxes = np.zeros((0, 4), np.float32)
        self._velocity = np.zeros((0, 4), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._missed = np.zeros(0, np.int64)
        self._next_id = 0

    def assign(self, xyxy: np.ndarray) -> np.ndarray:
        """Ids (``int64 (N,)``) for this frame's ``(N, 4)`` boxes."""
        xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        ids = np.full(len(xyxy), -1, dtype=np.int64)
        matched = np.zeros(len(self._ids), dtype=bool)
        if len(xyxy) and len(self._ids):
            predicted = self._boxes + self._velocity * (1 + self._missed[:, None])
            iou = box_iou(predicted, xyxy)
            shift = np.linalg.norm(_centres(predicted)[:, None] - _centres(xyxy)[None], axis=2)
            scale = np.maximum(_diagonals(predicted)[:, None], _diagonals(xyxy)[None, :])
            shift = shift / np.maximum(scale, 1.0)
            allowed = (iou >= self.min_iou) | (shift <= self.max_shift)
            cost = np.where(allowed, (1.0 - iou) + shift, 1e6)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    ids[c] = self._ids[r]
                    steps = 1 + self._missed[r]
                    self._velocity[r] = (xyxy[c] - self._boxes[r]) / steps
                    self._boxes[r] = xyxy[c]
                    matched[r] = True
        self._missed = np.where(matched, 0, self._missed + 1)
        alive = self._missed <= self.max_missed
        self._boxes, self._velocity = self._boxes[alive], self._velocity[alive]
        self._ids, self._missed = self._ids[alive], self._missed[alive]
        new = ids < 0
        n_new = int(new.sum())
        if n_new:
            ids[new] = np.arange(self._next_id, self._next_id + n_new)
            self._next_id += n_new
            self._boxes = np.concatenate([self._boxes, xyxy[new]])
            self._velocity = np.concatenate([self._velocity, np.zeros((n_new, 4), np.float32)])
            self._ids = np.concatenate([self._ids, ids[new]])
            self._missed = np.concatenate([self._missed, np.zeros(n_new, np.int64)])
        return ids
