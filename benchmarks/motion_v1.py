"""The motion segmenter as it was before issue 8 (``motion/v1``), frozen here as the
benchmark's "before": per-clip median background, a constant grey-level threshold, a fixed
minimum area (a fraction of the frame) and hand-written IoU association.

Kept only so that ``benchmarks.tracking`` measures the old and the new backend in the same
run; nothing in the package imports it.
"""

import dataclasses
from collections.abc import Iterator, Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from vitcow_assets.core.geometry import box_iou
from vitcow_assets.core.detections import Detections
from vitcow_assets.segmenters.base import FrameResult
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
@dataclasses.dataclass(frozen=True)
class MotionSettingsV1:
    diff_threshold: int = 25
    min_area_frac: float = 0.0005
    blur_px: int = 5
    open_px: int = 3
    close_px: int = 9
    min_iou: float = 0.1
    max_shift: float = 0.75
    max_missed: int = 2


class MotionSessionV1:
    def __init__(self, frames: Sequence[np.ndarray], settings: MotionSettingsV1) -> None:
        if len(frames) == 0:
            raise ValueError("a session needs at least one frame")
        self._frames = frames
        self._settings = settings
        self._prompt = ""
        self._removed: set[int] = set()
        self._closed = False

    def add_text_prompt(self, text: str, clip_frame: int = 0) -> None:
        self._prompt = text

    def add_box_prompt(self, xyxy, clip_frame: int, text: str | None = None) -> None:
        """Ignored: motion finds whatever moves. Only the text is recorded."""
        self._prompt = text or "visual"

    def add_point_prompt(self, points, labels, clip_frame: int, object_id: int) -> None:
        """Ignored: motion has no notion of clicks."""

    def remove_object(self, object_id: int) -> None:
        self._removed.add(int(object_id))

    def reset(self) -> None:
        self._prompt = ""
        self._removed.clear()

    def _foreground(self, grey: np.ndarray, background: np.ndarray) -> np.ndarray:
        s = self._settings
        fg = (cv2.absdiff(grey, background) > s.diff_threshold).astype(np.uint8)
        if s.open_px > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (s.open_px,) * 2))
        if s.close_px > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (s.close_px,) * 2))
        return fg

    def propagate(self) -> Iterator[FrameResult]:
        if self._closed:
            raise RuntimeError("session is closed")
        s = self._settings
        greys = np.stack([self._grey(f) for f in self._frames])
        background = np.median(greys, axis=0).astype(np.uint8)
        height, width = greys.shape[1:]
        min_area = max(1, int(s.min_area_frac * height * width))
        tracker = IoUTracker(min_iou=s.min_iou, max_shift=s.max_shift, max_missed=s.max_missed)
        for clip_frame, grey in enumerate(greys):
            fg = self._foreground(grey, background)
            count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
            keep = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] >= min_area]
            if not keep:
                tracker.assign(np.zeros((0, 4), np.float32))
                yield FrameResult(clip_frame, Detections.empty(height, width))
                continue
            labels_kept = np.asarray(keep, dtype=labels.dtype)
            masks = labels[None, :, :] == labels_kept[:, None, None]
            x, y, w, h = (stats[keep, c] for c in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
            xyxy = np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)
            diff = cv2.absdiff(grey, background).astype(np.float32)
            scores = np.array([min(1.0, float(diff[m].mean()) / (4.0 * s.diff_threshold)) for m in masks], np.float32)
            ids = tracker.assign(xyxy)
            detections = Detections(xyxy, masks, scores, ids, np.full(len(keep), self._prompt, dtype=object))
            if self._removed:
                detections = detections.select(~np.isin(ids, list(self._removed)))
            yield FrameResult(clip_frame, detections)

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        k = self._settings.blur_px
        return cv2.GaussianBlur(grey, (k, k), 0) if k > 1 else grey

    def close(self) -> None:
        self._closed = True
        self._frames = ()

    def __enter__(self) -> "MotionSessionV1":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MotionSegmenterV1:
    name = "motion/v1"
    checkpoint = None
    uses_text_prompts = False

    def __init__(self, settings: MotionSettingsV1 = MotionSettingsV1()) -> None:
        self.settings = settings

    def start_session(self, frames: Sequence[np.ndarray]) -> MotionSessionV1:
        return MotionSessionV1(frames, self.settings)

    def release(self) -> None:
        pass
