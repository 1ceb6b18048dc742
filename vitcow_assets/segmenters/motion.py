"""``motion``: a weight-free CPU segmenter for fixed cameras.

Per clip: the per-pixel median of the clip's (blurred, grey) frames is the background; a
pixel whose grey level differs from it by more than ``diff_threshold`` is foreground; opening
and closing clean the foreground; each connected component of at least ``min_area_frac`` of
the frame is an object; ids are kept across the clip's frames by box IoU (Hungarian).

It finds whatever moves during the clip and nothing that stands still through it. It
ignores text, box and point prompts (the query text is only recorded); removals apply.
"""

import dataclasses
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from vitcow_assets.core.detections import Detections
from vitcow_assets.core.tracks import IoUTracker
from vitcow_assets.segmenters.base import FrameResult


@dataclasses.dataclass(frozen=True)
class MotionSettings:
    diff_threshold: int = 25
    min_area_frac: float = 0.0005
    blur_px: int = 5
    open_px: int = 3
    close_px: int = 9
    min_iou: float = 0.1
    max_shift: float = 0.75
    max_missed: int = 2


class MotionSession:
    def __init__(self, frames: Sequence[np.ndarray], settings: MotionSettings) -> None:
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

    def __enter__(self) -> "MotionSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MotionSegmenter:
    name = "motion/v1"
    checkpoint = None
    uses_text_prompts = False

    def __init__(self, settings: MotionSettings = MotionSettings()) -> None:
        self.settings = settings

    def start_session(self, frames: Sequence[np.ndarray]) -> MotionSession:
        return MotionSession(frames, self.settings)
