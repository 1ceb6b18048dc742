"""The motion segmenter and the cross-clip linker as they were at motion/v2 (before issue 20's
tracking work), frozen here as a benchmark baseline: ``MotionSegmenterV2`` (with the v2
``IoUTracker``, ``stitch_tracklets`` and background statistics) and ``TrackLinkerV2`` (shared
frame by mask IoU, fallback by predicted box within 3 frame steps).

Self-contained: every piece of behaviour it uses is copied here, the parts the package still
had unchanged when this baseline was made (the background memory and statistics, the
linker's records, the motion backend's small helpers) included, as they stood at commit
e4406a5 (section "unchanged since v2" below; ``_centres`` and ``_diagonals`` come from the
frozen ``motion_v1``). From the package it takes only the records it exchanges with the
pipeline (``Detections``, ``FrameResult``, ``ClipWindow``, ``ClipObservations``,
``SegmenterConfigError``) and the definitions of IoU (``box_iou``, ``rle_iou``, ``rle_area``),
so no change in the package moves it (``test_architecture.py`` checks the imports).

Kept only so that the benchmarks measure the old and the new backend in the same run
(``benchmarks.tracking``, ``benchmarks.identity``); nothing in the package imports it. Do not
edit: it is the "before" of issue 20's table.
"""

import dataclasses
import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np
import pyarrow as pa
from scipy.optimize import linear_sum_assignment

from benchmarks.motion_v1 import _centres, _diagonals
from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.detections import Detections
from vitcow_assets.core.geometry import box_iou
from vitcow_assets.core.masks import rle_area, rle_iou
from vitcow_assets.core.identity import ClipObservations
from vitcow_assets.segmenters.base import FrameResult, SegmenterConfigError


# --- unchanged since v2: core/background.py, core/identity.py and segmenters/motion.py as they
# --- stood at commit e4406a5, copied so that the package's later changes never move the baseline

#: pixels per band of ``BackgroundMemory.estimate`` (its sort's working memory is about
#: 6 bytes per pixel and sample)
_BAND_PIXELS = 65536


def masked_median(samples: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of the valid samples (``uint8 (K, H, W)``, ``bool (K, H, W)``) and
    the count of valid samples; 0 where no sample is valid."""
    k, height, width = samples.shape
    if k == 0:
        return np.zeros((height, width), np.uint8), np.zeros((height, width), np.int64)
    values = np.where(valid, samples.astype(np.uint16), np.uint16(256))
    values.sort(axis=0)
    count = valid.sum(axis=0)
    rank = np.maximum(count - 1, 0) // 2
    median = np.take_along_axis(values, rank[None], axis=0)[0]
    return np.where(count > 0, median, 0).astype(np.uint8), count


def robust_sigma(values: np.ndarray) -> float:
    """Noise standard deviation from the median absolute deviation (``1.4826 × MAD``)."""
    values = np.asarray(values, np.float32).ravel()
    if values.size == 0:
        return 0.0
    centre = np.median(values)
    return float(1.4826 * np.median(np.abs(values - centre)))


def typical_area(areas: np.ndarray, floor: float) -> float:
    """The plain median of the blobs at least a quarter of the area-weighted median blob
    (blobs under ``floor`` pixels left out); 0 when there are none."""
    areas = np.sort(np.asarray(areas, np.float64).ravel())
    areas = areas[areas >= floor]
    if areas.size == 0:
        return 0.0
    cumulative = np.cumsum(areas)
    weighted = areas[np.searchsorted(cumulative, cumulative[-1] / 2.0)]
    return float(np.median(areas[areas >= weighted / 4.0]))


def split_count(area: float, typical: float, max_parts: int = 6, min_ratio: float = 1.6) -> int:
    """How many objects a blob of ``area`` most likely holds (1 under ``min_ratio`` typical areas)."""
    if typical <= 0 or area < min_ratio * typical:
        return 1
    return int(min(max_parts, max(2, round(area / typical))))


class BackgroundMemory:
    """Sample frames of earlier clips of one scene, with per-pixel validity (``capacity``
    frames, oldest dropped first)."""

    def __init__(self, capacity: int = 48) -> None:
        if capacity < 1:
            raise ValueError(f"background memory needs at least one frame, got {capacity}")
        self.capacity = capacity
        self._samples: np.ndarray | None = None  # uint8 (capacity, H, W), ring buffer
        self._valid: np.ndarray | None = None  # bool (capacity, H, W)
        self._filled = 0
        self._next = 0

    @property
    def shape(self) -> tuple[int, int] | None:
        return None if self._samples is None else self._samples.shape[1:]

    def __len__(self) -> int:
        return self._filled

    def clear(self) -> None:
        self._samples = self._valid = None
        self._filled = self._next = 0

    def add(self, grey: np.ndarray, valid: np.ndarray) -> None:
        grey = np.asarray(grey, np.uint8)
        if self._samples is None or self._samples.shape[1:] != grey.shape:
            self._samples = np.zeros((self.capacity, *grey.shape), np.uint8)
            self._valid = np.zeros((self.capacity, *grey.shape), bool)
            self._filled = self._next = 0
        self._samples[self._next] = grey
        self._valid[self._next] = valid
        self._next = (self._next + 1) % self.capacity
        self._filled = min(self._filled + 1, self.capacity)

    def median(self, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
        if self._samples is None or self._filled == 0:
            raise ValueError("the background memory is empty")
        k = self._filled
        return masked_median(self._samples[:k, ::step, ::step], self._valid[:k, ::step, ::step])

    def estimate(self, clip_samples: np.ndarray) -> tuple[np.ndarray, float]:
        clip_samples = np.asarray(clip_samples, np.uint8)
        if self._samples is None or self._samples.shape[1:] != clip_samples.shape[1:] or self._filled == 0:
            return np.median(clip_samples, axis=0).astype(np.uint8), 0.0
        height, width = clip_samples.shape[1:]
        median = np.empty((height, width), np.uint8)
        count = np.empty((height, width), np.int64)
        band = max(1, _BAND_PIXELS // width)
        for top in range(0, height, band):
            rows = slice(top, top + band)
            samples = np.concatenate([self._samples[: self._filled, rows], clip_samples[:, rows]])
            valid = np.concatenate([self._valid[: self._filled, rows], np.ones(clip_samples[:, rows].shape, bool)])
            median[rows], count[rows] = masked_median(samples, valid)
        return median, float(np.mean(1.0 - len(clip_samples) / np.maximum(count, 1)))


@dataclasses.dataclass
class _Track:
    """What the linker remembers of an open track: its last observation and velocity."""

    track_id: int
    prompt: str
    last_frame: int
    last_xyxy: np.ndarray
    last_rle: dict
    velocity: np.ndarray  # centre shift per source frame, float64 (2,)


@dataclasses.dataclass
class _Object:
    """One object of the clip being linked: its first and last observations."""

    object_id: int
    prompt: str
    first_frame: int
    first_xyxy: np.ndarray
    first_rle: dict
    last_frame: int
    last_xyxy: np.ndarray
    last_rle: dict
    velocity: np.ndarray


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Hungarian assignment on ``cost``; pairs at the forbidden cost (``_NO``) are dropped."""
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < _NO]


@dataclasses.dataclass
class ClipBackground:
    """What the segmenter worked out for one clip."""

    fingerprint: str
    background: np.ndarray  # float32 (H, W)
    from_memory: float  # fraction of pixels whose background came from earlier clips


def _kernel(px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (px, px))


def _odd(px: int) -> int:
    return px if px % 2 else px + 1


def _spread(n: int, k: int) -> list[int]:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(k, n))})


def _digest(grey: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(grey).tobytes()).hexdigest()


def _components(fg: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, tuple[int, int]]:
    """Connected components (8-connected) of the foreground's bounding region:
    ``(count, labels, stats, (x0, y0))``, labels and stats relative to ``(x0, y0)``."""
    x0, y0, w, h = cv2.boundingRect(fg)
    if w == 0 or h == 0:
        return 1, np.zeros((1, 1), np.int32), np.zeros((1, 5), np.int32), (0, 0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg[y0 : y0 + h, x0 : x0 + w], connectivity=8)
    return count, labels, stats, (x0, y0)



# --- core/tracks.py at v2

class IoUTracker:
    """Gives detections ids that persist across the frames of one clip.

    Each live track predicts its box by constant velocity. Detections are matched to tracks
    by Hungarian assignment on ``(1 - IoU) + centre shift`` (shift in units of the larger box
    diagonal); a pair is allowed when IoU >= ``min_iou`` or the shift <= ``max_shift``.
    With ``far_shift`` set, tracks seen in the previous frame and detections left unmatched
    are then paired by centre shift alone, up to ``far_shift`` (same units), where the pair
    is unambiguous (each the other's only candidate within reach, areas within a factor 2):
    an animal that darts further than usual between two sampled frames keeps its id.
    Unmatched detections start new tracks; a track unmatched for more than ``max_missed``
    frames is retired. Ids count from 0 in order of first appearance.

    The velocity is the mean over the last ``velocity_frames`` observations: boxes cut from
    a blob of animals that touch have uncertain edges, and one badly cut frame must not turn
    a track around (two animals that cross would swap ids when they part).
    ``motion_state`` and ``inherit_motion`` carry that motion from one clip's tracker to the
    next one's when the clips share a frame.
    """

    def __init__(
        self, min_iou: float = 0.1, max_shift: float = 0.75, max_missed: int = 2, far_shift: float | None = None, velocity_frames: int = 3
    ) -> None:
        if velocity_frames < 2:
            raise ValueError(f"velocity_frames must be >= 2, got {velocity_frames}")
        self.min_iou = min_iou
        self.max_shift = max_shift
        self.max_missed = max_missed
        self.far_shift = far_shift
        self.velocity_frames = velocity_frames
        self._frame = 0
        #: per track id, its last observations ``(frame, box)``
        self._history: dict[int, list[tuple[int, np.ndarray]]] = {}
        self._boxes = np.zeros((0, 4), np.float32)
        self._velocity = np.zeros((0, 4), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._missed = np.zeros(0, np.int64)
        self._next_id = 0

    def predicted(self) -> np.ndarray:
        """``float32 (M, 4)``: where the live tracks are expected in the next frame."""
        return self._boxes + self._velocity * (1 + self._missed[:, None])

    def motion_state(self) -> list[tuple[np.ndarray, list[tuple[int, np.ndarray]]]]:
        """The tracks seen in the last frame: ``(box, history)``, the history's frames
        counted back from that frame (0 is the last frame, -1 the one before, ...)."""
        last = self._frame - 1
        return [
            (self._boxes[r].copy(), [(f - last, b.copy()) for f, b in self._history.get(int(i), [])])
            for r, i in enumerate(self._ids.tolist())
            if self._missed[r] == 0
        ]

    def inherit_motion(self, previous: list[tuple[np.ndarray, list[tuple[int, np.ndarray]]]], min_iou: float = 0.5) -> int:
        """Give the tracks of the frame just assigned the motion history of ``previous``
        (``motion_state`` of a tracker whose last frame was this very image: consecutive
        clips share a frame), pairing boxes by IoU (at least ``min_iou``, Hungarian). Ids are
        left as they are. Returns the number of tracks that inherited."""
        seen = np.nonzero(self._missed == 0)[0]
        if not len(previous) or not len(seen):
            return 0
        iou = box_iou(np.stack([b for b, _ in previous]), self._boxes[seen])
        rows, cols = linear_sum_assignment(-iou)
        now = self._frame - 1
        inherited = 0
        for r, c in zip(rows, cols):
            if iou[r, c] < min_iou:
                continue
            k = seen[c]
            history = [(now + f, b) for f, b in previous[r][1] if f < 0]
            history = (history + self._history.get(int(self._ids[k]), []))[-self.velocity_frames :]
            self._history[int(self._ids[k])] = history
            if len(history) >= 2:
                (f0, b0), (f1, b1) = history[0], history[-1]
                self._velocity[k] = (b1 - b0) / (f1 - f0)
            inherited += 1
        return inherited

    def assign(self, xyxy: np.ndarray) -> np.ndarray:
        """Ids (``int64 (N,)``) for this frame's ``(N, 4)`` boxes."""
        xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        ids = np.full(len(xyxy), -1, dtype=np.int64)
        matched = np.zeros(len(self._ids), dtype=bool)
        if len(xyxy) and len(self._ids):
            predicted = self.predicted()
            iou = box_iou(predicted, xyxy)
            shift = np.linalg.norm(_centres(predicted)[:, None] - _centres(xyxy)[None], axis=2)
            scale = np.maximum(_diagonals(predicted)[:, None], _diagonals(xyxy)[None, :])
            shift = shift / np.maximum(scale, 1.0)
            allowed = (iou >= self.min_iou) | (shift <= self.max_shift)
            cost = np.where(allowed, (1.0 - iou) + shift, 1e6)
            pairs = [(r, c) for r, c in zip(*linear_sum_assignment(cost)) if allowed[r, c]]
            if self.far_shift is not None:
                free_r = np.setdiff1d(np.arange(len(self._ids)), [r for r, _ in pairs])
                free_c = np.setdiff1d(np.arange(len(xyxy)), [c for _, c in pairs])
                if len(free_r) and len(free_c):
                    # only unambiguous pairs of tracks seen last frame and boxes of a like size:
                    # each the other's only candidate within reach
                    far = shift[np.ix_(free_r, free_c)]
                    area = lambda b: np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1.0)
                    ratio = area(self._boxes[free_r])[:, None] / area(xyxy[free_c])[None, :]
                    reach = (far <= self.far_shift) & (ratio > 0.5) & (ratio < 2.0) & (self._missed[free_r] == 0)[:, None]
                    unique = reach & (reach.sum(axis=0, keepdims=True) == 1) & (reach.sum(axis=1, keepdims=True) == 1)
                    pairs += [(free_r[r], free_c[c]) for r, c in zip(*np.nonzero(unique))]
            for r, c in pairs:
                ids[c] = self._ids[r]
                matched[r] = True
                box = xyxy[c]
                history = self._history.setdefault(int(self._ids[r]), [])
                history.append((self._frame, box.copy()))
                del history[: -self.velocity_frames]
                if len(history) >= 2:
                    (f0, b0), (f1, b1) = history[0], history[-1]
                    self._velocity[r] = (b1 - b0) / (f1 - f0)
                else:
                    self._velocity[r] = (box - self._boxes[r]) / (1 + self._missed[r])
                self._boxes[r] = box
        self._frame += 1
        self._missed = np.where(matched, 0, self._missed + 1)
        alive = self._missed <= self.max_missed
        for gone in self._ids[~alive].tolist():
            self._history.pop(gone, None)
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
            for i, box in zip(ids[new].tolist(), xyxy[new]):
                self._history[i] = [(self._frame - 1, box.copy())]
            self._missed = np.concatenate([self._missed, np.zeros(n_new, np.int64)])
        return ids


def stitch_tracklets(
    frames: list[tuple[np.ndarray, np.ndarray]], max_gap: int = 3, max_overlap: int = 2, max_shift: float = 1.0, gap_shift: float | None = None
) -> dict[int, int]:
    """Join the pieces of one animal's track that online association left apart.

    ``frames``: per frame of a clip, ``(ids int64 (N,), xyxy float32 (N, 4))``. A tracklet B
    continues tracklet A when B starts after A starts and ends after A ends, and either
    starts at most ``max_gap`` frames after A's end, where A's box carried on at its last
    velocity lies within ``gap_shift`` (default ``max_shift``) box diagonals of B's first
    box, or overlaps A by at
    most ``max_overlap`` frames with boxes within ``max_shift`` diagonals in each of them (one
    animal cut in two for a moment). Pairs are taken cheapest first; each tracklet gets at
    most one successor and one predecessor. Returns ``id -> id of the chain's first
    tracklet`` for every id seen (ids in overlapping frames then repeat: merge them).
    """
    spans: dict[int, dict[int, np.ndarray]] = {}
    for frame, (ids, xyxy) in enumerate(frames):
        for i, box in zip(np.asarray(ids).tolist(), np.asarray(xyxy, np.float32).reshape(-1, 4)):
            spans.setdefault(int(i), {})[frame] = box
    first = {i: min(f) for i, f in spans.items()}
    last = {i: max(f) for i, f in spans.items()}

    def shift(a: np.ndarray, b: np.ndarray) -> float:
        scale = max(np.hypot(*(a[2:] - a[:2])), np.hypot(*(b[2:] - b[:2])), 1.0)
        return float(np.hypot(*((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2)) / scale)

    candidates = []
    for a in spans:
        for b in spans:
            if first[b] <= first[a] or last[b] <= last[a]:
                continue
            gap = first[b] - last[a] - 1
            if gap > max_gap or -gap - 1 > max_overlap:
                continue
            if gap >= 0:
                end = spans[a][last[a]]
                before = spans[a].get(last[a] - 1)
                velocity = (end - before) if before is not None else np.zeros(4, np.float32)
                cost = shift(end + velocity * (gap + 1), spans[b][first[b]])
            else:
                common = [f for f in range(first[b], last[a] + 1) if f in spans[a] and f in spans[b]]
                pairs = [(spans[a][f], spans[b][f]) for f in common] or [(spans[a][last[a]], spans[b][first[b]])]
                cost = max(shift(x, y) for x, y in pairs)
            if cost <= (max_shift if gap < 0 or gap_shift is None else gap_shift):
                candidates.append((cost, a, b))
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _, a, b in sorted(candidates):
        if a not in successor and b not in predecessor:
            successor[a], predecessor[b] = b, a
    mapping = {}
    for i in spans:
        root = i
        while root in predecessor:
            root = predecessor[root]
        mapping[i] = root
    return mapping


# --- core/identity.py at v2 (ClipObservations is the package's)

_NO = 1e6  # cost of a forbidden pair


@dataclasses.dataclass(frozen=True)
class LinkSettingsV2:
    """Thresholds of the linker (see the module docstring)."""

    min_mask_iou: float = 0.3
    min_mask_cover: float = 0.8
    min_box_iou: float = 0.1
    #: centre distance allowed, in larger-box diagonals (generous: the assignment is global,
    #: and an animal moving at 3 px/frame jumps 12 px between sampled frames)
    max_shift: float = 1.5
    max_gap_steps: int = 3
    #: observations (frames) of a track used to estimate its velocity
    velocity_frames: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.min_mask_iou <= 1:
            raise ValueError(f"min_mask_iou must be in (0, 1], got {self.min_mask_iou}")
        if not 0 < self.min_mask_cover <= 1:
            raise ValueError(f"min_mask_cover must be in (0, 1], got {self.min_mask_cover}")
        if not 0 <= self.min_box_iou <= 1:
            raise ValueError(f"min_box_iou must be in [0, 1], got {self.min_box_iou}")
        if self.max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {self.max_shift}")
        if self.max_gap_steps < 1:
            raise ValueError(f"max_gap_steps must be >= 1, got {self.max_gap_steps}")
        if self.velocity_frames < 2:
            raise ValueError(f"velocity_frames must be >= 2, got {self.velocity_frames}")


def _centre(xyxy: np.ndarray) -> np.ndarray:
    xyxy = np.asarray(xyxy, np.float64)
    return (xyxy[..., :2] + xyxy[..., 2:]) / 2.0


def _diagonal(xyxy: np.ndarray) -> np.ndarray:
    xyxy = np.asarray(xyxy, np.float64)
    return np.hypot(xyxy[..., 2] - xyxy[..., 0], xyxy[..., 3] - xyxy[..., 1])


def _objects(obs: ClipObservations, velocity_frames: int) -> list[_Object]:
    """First/last observation and end velocity of each object, by object id."""
    out = []
    for object_id in np.unique(obs.object_ids):
        rows = np.flatnonzero(obs.object_ids == object_id)
        rows = rows[np.argsort(obs.source_frames[rows], kind="stable")]
        first, last = rows[0], rows[-1]
        tail = rows[-velocity_frames:]
        velocity = np.zeros(2)
        span = obs.source_frames[tail[-1]] - obs.source_frames[tail[0]]
        if span > 0:
            velocity = (_centre(obs.xyxy[tail[-1]]) - _centre(obs.xyxy[tail[0]])) / span
        out.append(
            _Object(
                int(object_id), str(obs.prompts[first]),
                int(obs.source_frames[first]), obs.xyxy[first], obs.rles[first],
                int(obs.source_frames[last]), obs.xyxy[last], obs.rles[last],
                velocity,
            )
        )
    return out


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise IoU of boxes ``a (..., 4)`` and ``b (..., 4)``."""
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _fallback_cost(tracks: list[_Track], objects: list[_Object], shared: int, frame_step: int, s: LinkSettingsV2) -> np.ndarray:
    """``(tracks, objects)`` cost of the fallback: each track's last box moved by its velocity to
    the object's first frame, against the object's first box; forbidden pairs cost ``_NO``."""
    last = np.array([t.last_xyxy for t in tracks], np.float64)[:, None, :]  # (T, 1, 4)
    velocity = np.array([t.velocity for t in tracks], np.float64)  # (T, 2)
    last_frame = np.array([t.last_frame for t in tracks])[:, None]
    first = np.array([o.first_xyxy for o in objects], np.float64)[None, :, :]  # (1, O, 4)
    first_frame = np.array([o.first_frame for o in objects])[None, :]
    dt = first_frame - last_frame  # (T, O) source frames
    moved = last + np.tile(velocity, 2)[:, None, :] * dt[..., None]
    iou = _pair_iou(moved, first)
    shift = np.linalg.norm(_centre(moved) - _centre(first), axis=-1)
    shift /= np.maximum(np.maximum(_diagonal(moved), _diagonal(first)), 1.0)
    same_prompt = np.array([[t.prompt == o.prompt for o in objects] for t in tracks], bool).reshape(dt.shape)
    # pairs both seen on the shared frame were judged by mask IoU already
    both_on_shared = (dt == 0) & (last_frame == shared)
    allowed = same_prompt & (dt >= 0) & (dt <= s.max_gap_steps * frame_step) & ~both_on_shared
    allowed &= (iou >= s.min_box_iou) | (shift <= s.max_shift)
    return np.where(allowed, (1.0 - iou) + shift, _NO)


class TrackLinkerV2:
    """Gives each clip's objects video-wide track ids, one clip at a time in source order.

    ``link(clip, observations)`` returns ``{object_id: track_id}`` for every object of the
    clip. It keeps only the open tracks' last observations between calls.
    """

    def __init__(self, settings: LinkSettingsV2 = LinkSettingsV2()) -> None:
        self.settings = settings
        self._open: list[_Track] = []
        self._previous: ClipWindow | None = None
        self._next_id = 0

    @property
    def tracks(self) -> int:
        """Number of track ids given so far."""
        return self._next_id

    def consecutive(self, previous: ClipWindow | None, clip: ClipWindow) -> bool:
        """True when ``clip`` continues ``previous`` (shared frame, or one ``frame_step`` apart)."""
        if previous is None:
            return False
        gap = clip.source_start - previous.source_end
        return 0 <= gap <= clip.frame_step and previous.frame_step == clip.frame_step

    def link(self, clip: ClipWindow, observations: ClipObservations) -> dict[int, int]:
        s = self.settings
        if self._previous is not None and clip.source_start <= self._previous.source_start:
            raise ValueError(f"clips must come in source order: {clip.clip_id} after {self._previous.clip_id}")
        if not self.consecutive(self._previous, clip):
            self._open = []
        objects = _objects(observations, s.velocity_frames)
        tracks = self._open
        claimed: dict[int, int] = {}  # object position -> track position
        # 1. The shared frame: masks of the same image, matched by mask IoU.
        shared = clip.source_start
        t_on = [i for i, t in enumerate(tracks) if t.last_frame == shared]
        o_on = [j for j, o in enumerate(objects) if o.first_frame == shared]
        if t_on and o_on:
            before = [tracks[i].last_rle for i in t_on]
            after = [objects[j].first_rle for j in o_on]
            iou = rle_iou(before, after)
            area_before = np.array([rle_area(r) for r in before], np.float64)[:, None]
            area_after = np.array([rle_area(r) for r in after], np.float64)[None, :]
            inter = iou * (area_before + area_after) / (1.0 + iou)
            cover = inter / np.maximum(np.minimum(area_before, area_after), 1.0)
            same_prompt = np.array([[tracks[i].prompt == objects[j].prompt for j in o_on] for i in t_on])
            allowed = same_prompt & ((iou >= s.min_mask_iou) | (cover >= s.min_mask_cover))
            cost = np.where(allowed, 1.0 - iou, _NO)
            for r, c in _assign(cost):
                claimed[o_on[c]] = t_on[r]
        # 2. Fallback: the track's last box moved by its velocity against the object's first box.
        t_left = [i for i in range(len(tracks)) if i not in claimed.values()]
        o_left = [j for j in range(len(objects)) if j not in claimed]
        if t_left and o_left:
            cost = _fallback_cost([tracks[i] for i in t_left], [objects[j] for j in o_left], shared, clip.frame_step, s)
            for r, c in _assign(cost):
                claimed[o_left[c]] = t_left[r]
        # 3. Ids; the open tracks become this clip's objects plus the recent unclaimed tracks.
        mapping: dict[int, int] = {}
        carried = set(claimed.values())
        next_open = []
        for j, o in enumerate(objects):
            if j in claimed:
                track_id = tracks[claimed[j]].track_id
            else:
                track_id = self._next_id
                self._next_id += 1
            mapping[o.object_id] = track_id
            next_open.append(_Track(track_id, o.prompt, o.last_frame, o.last_xyxy, o.last_rle, o.velocity))
        horizon = clip.source_end - s.max_gap_steps * clip.frame_step
        next_open += [t for i, t in enumerate(tracks) if i not in carried and t.last_frame >= horizon]
        self._open = next_open
        self._previous = clip
        return mapping


def link_clips(
    clips: Iterable[tuple[ClipWindow, ClipObservations]], settings: LinkSettingsV2 = LinkSettingsV2()
) -> dict[tuple[str, int], int]:
    """``{(clip_id, object_id): track_id}`` for clips given in source order."""
    linker = TrackLinkerV2(settings)
    out: dict[tuple[str, int], int] = {}
    for clip, observations in clips:
        for object_id, track_id in linker.link(clip, observations).items():
            out[(clip.clip_id, object_id)] = track_id
    return out


# --- segmenters/motion.py at v2

POLARITIES = ("auto", "both", "dark", "bright")
_ONE_SIDED = 0.95  # auto polarity: share of contrast pixels on one side that makes it one-sided
_HALF_RES_PIXELS = 600_000
_GROW_STEPS = 4  # hysteresis reaches 4 × 2 px beyond the strong pixels
_CLIP_SAMPLES_ALONE = 10  # clip frames in the background of a scene's first clip
_CLIP_SAMPLES_WITH_MEMORY = 3  # ... and of later clips, beside the memory
_OPEN_FRACTION = 0.12  # opening kernel: this fraction of the typical animal's side (sqrt of its area)
_GRID = 7  # brightness and noise statistics read every 7th pixel in each direction


@dataclasses.dataclass(frozen=True)
class MotionSettingsV2:
    """What a user may tune; the defaults work on people (768×576) and small fish (1160×938).

    - ``threshold_sigmas``: foreground threshold in robust noise standard deviations.
    - ``min_contrast``: the threshold never goes below this many grey levels.
    - ``polarity``: ``auto``, ``both``, ``dark`` (animals darker than the background) or ``bright``.
    - ``min_area_ratio``: smallest object, as a fraction of the clip's typical object area.
    - ``min_track_contrast``: a track whose median contrast is under this many thresholds is
      dropped (faint reflections in glass and the like).
    - ``min_area_px``: smallest object in pixels, replacing the derived one (0: derive it).
    - ``split_touching``: split blobs that hold several typical objects.
    - ``background_memory``: sample frames kept from earlier clips (the background's horizon).
    - ``background_samples``: sample frames each clip adds to that memory.
    - ``blur_px``, ``open_px``, ``close_px``: smoothing and clean-up kernel sizes (pixels).
    - ``min_iou``, ``max_shift``, ``max_missed``, ``far_shift``: association within the clip
      (``core.tracks.IoUTracker``; ``far_shift`` 0 turns its second, far-reaching pass off).
    """

    threshold_sigmas: float = 5.0
    min_contrast: float = 10.0
    polarity: str = "auto"
    min_area_ratio: float = 0.3
    min_track_contrast: float = 2.0
    min_area_px: int = 0
    split_touching: bool = True
    background_memory: int = 48
    background_samples: int = 6
    blur_px: int = 3
    open_px: int = 3
    close_px: int = 5
    min_iou: float = 0.1
    max_shift: float = 1.0
    max_missed: int = 8
    far_shift: float = 2.0

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise SegmenterConfigError(f"motion polarity must be one of {', '.join(POLARITIES)}, got {self.polarity!r}")
        for name in ("threshold_sigmas", "min_contrast", "min_area_ratio", "min_track_contrast", "min_iou", "max_shift", "far_shift"):
            if getattr(self, name) < 0:
                raise SegmenterConfigError(f"motion {name} must be >= 0, got {getattr(self, name)}")
        for name in ("background_memory", "background_samples"):
            if getattr(self, name) < 1:
                raise SegmenterConfigError(f"motion {name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_area_px", "blur_px", "open_px", "close_px", "max_missed"):
            if getattr(self, name) < 0:
                raise SegmenterConfigError(f"motion {name} must be >= 0, got {getattr(self, name)}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class _SceneState:
    """The segmenter's memory of the scene: background samples, typical object area."""

    def __init__(self, settings: MotionSettingsV2) -> None:
        self.settings = settings
        self.memory = BackgroundMemory(settings.background_memory)
        self.typical_area = 0.0
        self.dark_bright = np.zeros(2)  # above-threshold grid pixels darker / brighter, so far
        self.last: ClipBackground | None = None
        #: the tracker's motion at the end of the latest clips, by their last frame's digest
        self.motion_carry: dict[str, list] = {}
        self.lock = threading.Lock()

    @staticmethod
    def fingerprint(greys: np.ndarray) -> str:
        digest = hashlib.sha1()
        digest.update(np.asarray(greys.shape, np.int64).tobytes())
        for grey in (greys[0], greys[len(greys) // 2], greys[-1]):
            digest.update(np.ascontiguousarray(grey[::16, ::16]).tobytes())
        return digest.hexdigest()

    def background_for(self, greys: np.ndarray) -> tuple[ClipBackground, bool]:
        """The clip's background; True when the clip is new (its samples are still to add)."""
        fingerprint = self.fingerprint(greys)
        if self.last is not None and self.last.fingerprint == fingerprint:
            return self.last, False
        height, width = greys.shape[1:]
        scale = 2 if height * width > _HALF_RES_PIXELS else 1
        small = greys[:, ::scale, ::scale]
        if self.memory.shape is not None and self.memory.shape != small.shape[1:]:
            self._forget()
        if len(self.memory):
            # A few of the clip's frames beside the memory: an animal still through the clip
            # is outvoted by the memory's views of its spot without it.
            own = small[_spread(len(small), _CLIP_SAMPLES_WITH_MEMORY)]
            memory_only, count = self.memory.median(step=4)
            clip_median = np.median(own[:, ::4, ::4], axis=0)
            seen = count > 0
            diff = memory_only.astype(np.float32)[seen] - clip_median[seen]
            disagree = np.abs(diff - np.median(diff)) > self.settings.min_contrast if diff.size else np.zeros(0, bool)
            if disagree.size and disagree.mean() > 0.4:
                self._forget()  # another scene (camera moved, another video): start over
        if not len(self.memory):
            own = small[_spread(len(small), _CLIP_SAMPLES_ALONE)]
        background, from_memory = self.memory.estimate(own)
        if scale > 1:
            background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
        self.last = ClipBackground(fingerprint, background.astype(np.float32), from_memory)
        return self.last, True

    def _forget(self) -> None:
        self.memory.clear()
        self.motion_carry.clear()
        self.typical_area = 0.0
        self.dark_bright = np.zeros(2)

    def polarity(self) -> str:
        if self.settings.polarity != "auto":
            return self.settings.polarity
        total = self.dark_bright.sum()
        if total > 0 and self.dark_bright[0] >= _ONE_SIDED * total:
            return "dark"
        if total > 0 and self.dark_bright[1] >= _ONE_SIDED * total:
            return "bright"
        return "both"

    def remember(self, greys: np.ndarray, foreground: list[np.ndarray], typical: float, objects: int) -> None:
        """Add the clip's sample frames (object pixels, dilated, left out) and its typical area."""
        s = self.settings
        height, width = greys.shape[1:]
        scale = 2 if height * width > _HALF_RES_PIXELS else 1
        picks = _spread(len(greys), s.background_samples)
        grow = _kernel(max(3, _odd(s.close_px * 2 + 1)))
        for i in picks:
            valid = cv2.dilate(foreground[i], grow) == 0
            self.memory.add(greys[i, ::scale, ::scale], valid[::scale, ::scale])
        if typical > 0 and objects:
            # a running estimate, so that one clip with few animals does not reset it
            self.typical_area = typical if self.typical_area <= 0 else 0.7 * self.typical_area + 0.3 * typical


class MotionSession:
    def __init__(self, frames: Sequence[np.ndarray], settings: MotionSettingsV2, scene: _SceneState) -> None:
        if len(frames) == 0:
            raise ValueError("a session needs at least one frame")
        self._frames = frames
        self._settings = settings
        self._scene = scene
        self._removed: set[int] = set()
        self._closed = False
        #: what the last ``propagate`` derived: threshold, minimum area, typical area, ...
        self.derived: dict[str, float | str] = {}

    def add_text_prompt(self, text: str, clip_frame: int = 0) -> None:
        """Ignored: motion finds whatever moves (the stage records the query text)."""

    def add_box_prompt(self, xyxy, clip_frame: int, text: str | None = None) -> None:
        """Ignored: motion finds whatever moves."""

    def add_point_prompt(self, points, labels, clip_frame: int, object_id: int) -> None:
        """Ignored: motion has no notion of clicks."""

    def remove_object(self, object_id: int) -> None:
        self._removed.add(int(object_id))

    def reset(self) -> None:
        self._removed.clear()

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        k = _odd(self._settings.blur_px)
        return cv2.GaussianBlur(grey, (k, k), 0) if k > 1 else grey

    @staticmethod
    def _score(grey: np.ndarray, background: np.ndarray, offset: float, polarity: str) -> np.ndarray:
        """Frame minus background less the frame's brightness offset, with the polarity
        applied (larger = more object-like)."""
        diff = grey.astype(np.float32) - background
        diff -= offset
        if polarity == "dark":
            return -diff
        if polarity == "bright":
            return diff
        return np.abs(diff, out=diff)

    def _foreground(self, score: np.ndarray, threshold: float, open_px: int) -> np.ndarray:
        """Pixels above ``threshold`` (specks removed by opening), grown by a few steps over
        the pixels above half of it (hysteresis), then closed; ``uint8 (H, W)`` of 0/1."""
        s = self._settings
        fg = (score > threshold).astype(np.uint8)
        if open_px > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _kernel(open_px))
        weak = (score > threshold / 2).astype(np.uint8)
        grow = _kernel(5)
        for _ in range(_GROW_STEPS):
            fg = cv2.dilate(fg, grow) & weak
        if s.close_px > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, _kernel(s.close_px))
        return fg

    def propagate(self) -> Iterator[FrameResult]:
        if self._closed:
            raise RuntimeError("session is closed")
        s = self._settings
        greys = np.stack([self._grey(f) for f in self._frames])
        height, width = greys.shape[1:]
        with self._scene.lock:
            clip_bg, new_clip = self._scene.background_for(greys)
            prior_typical = self._scene.typical_area
        background = clip_bg.background
        # Each frame's brightness offset and the noise: medians over a grid of pixels.
        grid_bg = background[::_GRID, ::_GRID]
        grid = [g[::_GRID, ::_GRID].astype(np.float32) - grid_bg for g in greys]
        offsets = [float(np.median(d)) for d in grid]
        sigma = robust_sigma(np.concatenate([(d - o).ravel() for d, o in zip(grid, offsets)]))
        threshold = max(s.min_contrast, s.threshold_sigmas * sigma)
        if new_clip:
            contrast = np.concatenate([(d - o).ravel() for d, o in zip(grid, offsets)])
            with self._scene.lock:
                self._scene.dark_bright += ((contrast < -threshold).sum(), (contrast > threshold).sum())
        with self._scene.lock:
            polarity = self._scene.polarity()
        # Specks and thin moving things (tape, wires, grass) go: the opening grows with the
        # animals' size seen so far in the scene.
        open_px = max(s.open_px, _odd(int(_OPEN_FRACTION * np.sqrt(prior_typical)))) if s.open_px > 1 else s.open_px
        foreground = [self._foreground(self._score(g, background, o, polarity), threshold, open_px) for g, o in zip(greys, offsets)]
        components = [_components(fg) for fg in foreground]
        floor = max(9.0, 1e-5 * height * width)
        areas = np.concatenate([stats[1:, cv2.CC_STAT_AREA] for _, _, stats, _ in components]) if components else np.zeros(0)
        typical = typical_area(areas, floor)
        reference = prior_typical if prior_typical > 0 else typical
        if prior_typical > 0 and typical > 0:
            reference = float(np.sqrt(prior_typical * typical))
        min_area = float(s.min_area_px) if s.min_area_px > 0 else max(floor, s.min_area_ratio * reference)
        self.derived = {
            "noise_sigma": sigma,
            "threshold": threshold,
            "typical_area_px": reference,
            "min_area_px": min_area,
            "background_from_memory": clip_bg.from_memory,
            "polarity": polarity,
            "open_px": open_px, "dark_share": float(self._scene.dark_bright[0] / max(1, self._scene.dark_bright.sum())),
        }
        tracker = IoUTracker(min_iou=s.min_iou, max_shift=s.max_shift, max_missed=s.max_missed, far_shift=s.far_shift or None)
        with self._scene.lock:
            carried = self._scene.motion_carry.get(_digest(greys[0]))
        per_frame: list[list[tuple[int, int, np.ndarray, float]]] = []  # (x, y, local mask, confidence)
        tracked: list[tuple[np.ndarray, np.ndarray]] = []  # (ids, xyxy) per frame
        for clip_frame, (count, labels, stats, (x0, y0)) in enumerate(components):
            masks = []
            centres = _centres_f32(tracker.predicted())
            for k in range(1, count):
                if stats[k, cv2.CC_STAT_AREA] < min_area:
                    continue
                x, y, w, h = (int(stats[k, c]) for c in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
                local = labels[y : y + h, x : x + w] == k
                x, y = x + x0, y + y0
                seeds = np.zeros((0, 2), np.float32)
                parts = 1
                if s.split_touching:
                    # as many parts as tracks expected on the blob, or as its area says
                    seeds = _seeds_inside(centres, local, x, y)
                    area = stats[k, cv2.CC_STAT_AREA]
                    parts = split_count(area, reference)
                    if len(seeds) >= max(2, parts) and area >= 1.3 * reference:
                        # (never more parts than the area allows: spurious tracks must not
                        # keep cutting one animal in pieces)
                        parts = min(len(seeds), int(area // (0.6 * reference)))
                    seeds = seeds if parts == len(seeds) else seeds[:0]
                for part in _split(local, parts, seeds - (x, y)):
                    if part.sum() >= min_area or parts == 1:
                        masks.append(_tight(x, y, part))
            xyxy = np.array([(x, y, x + m.shape[1], y + m.shape[0]) for x, y, m in masks], np.float32).reshape(-1, 4)
            frame_items = []
            for x, y, part in masks:
                window = (slice(y, y + part.shape[0]), slice(x, x + part.shape[1]))
                region = self._score(greys[clip_frame][window], background[window], offsets[clip_frame], polarity)[part]
                frame_items.append((x, y, part, min(1.0, float(region.mean()) / (4.0 * threshold))))
            per_frame.append(frame_items)
            tracked.append((tracker.assign(xyxy), xyxy))
            if clip_frame == 0 and carried:
                # the previous clip ended on this very frame: its tracks' motion carries on
                tracker.inherit_motion(carried)
        with self._scene.lock:
            carry = self._scene.motion_carry
            carry[_digest(greys[-1])] = tracker.motion_state()
            while len(carry) > 2:
                carry.pop(next(iter(carry)))
        found = sum(len(items) for items in per_frame)
        # Offline within the clip: join the pieces of a track that online association cut.
        roots = stitch_tracklets(tracked, max_gap=s.max_missed, max_overlap=2, max_shift=s.max_shift, gap_shift=max(s.max_shift, s.far_shift))
        # Faint tracks (reflections in glass, thin shadows): median contrast under
        # ``min_track_contrast`` thresholds (score 4 thresholds = 1).
        contrast: dict[int, list[float]] = {}
        for (ids, _), items in zip(tracked, per_frame):
            for i, item in zip(ids.tolist(), items):
                contrast.setdefault(roots[i], []).append(item[3])
        faint = {r for r, c in contrast.items() if 4.0 * float(np.median(c)) < s.min_track_contrast}
        renumber: dict[int, int] = {}
        for ids, _ in tracked:
            for i in ids.tolist():
                if roots[i] not in faint:
                    renumber.setdefault(roots[i], len(renumber))
        for clip_frame, ((ids, _), items) in enumerate(zip(tracked, per_frame)):
            grouped: dict[int, list] = {}
            for i, item in zip(ids.tolist(), items):
                if roots[i] not in faint:
                    grouped.setdefault(renumber[roots[i]], []).append(item)
            keep = sorted(k for k in grouped if k not in self._removed)
            if not keep:
                yield FrameResult(clip_frame, Detections.empty(height, width))
                continue
            full = np.zeros((len(keep), height, width), bool)
            confidence = np.zeros(len(keep), np.float32)
            for n, k in enumerate(keep):
                for x, y, part, score in grouped[k]:
                    full[n, y : y + part.shape[0], x : x + part.shape[1]] |= part
                confidence[n] = max(score for *_, score in grouped[k])
            xyxy = np.array([_box(grouped[k]) for k in keep], np.float32)
            yield FrameResult(clip_frame, Detections(xyxy, full, confidence, np.array(keep)))
        if new_clip:
            with self._scene.lock:
                self._scene.remember(greys, foreground, typical, found)

    def close(self) -> None:
        self._closed = True
        self._frames = ()

    def __enter__(self) -> "MotionSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _tight(x: int, y: int, part: np.ndarray) -> tuple[int, int, np.ndarray]:
    """A local mask cut to its pixels' bounding box, with its frame offset."""
    ys, xs = np.nonzero(part)
    return x + int(xs.min()), y + int(ys.min()), part[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _box(items: list) -> tuple[int, int, int, int]:
    """The box (x1, y1, x2 exclusive, y2 exclusive) around local masks ``(x, y, mask, ...)``."""
    return (
        min(x for x, _, _, _ in items),
        min(y for _, y, _, _ in items),
        max(x + m.shape[1] for x, _, m, _ in items),
        max(y + m.shape[0] for _, y, m, _ in items),
    )


def _centres_f32(xyxy: np.ndarray) -> np.ndarray:
    return ((xyxy[:, :2] + xyxy[:, 2:]) / 2.0).astype(np.float32)


def _seeds_inside(centres: np.ndarray, local: np.ndarray, x: int, y: int) -> np.ndarray:
    """The predicted track centres (frame pixels) that fall on the blob ``local`` at ``(x, y)``,
    or within a few pixels of it."""
    if len(centres) == 0:
        return centres
    h, w = local.shape
    near = cv2.dilate(local.astype(np.uint8), _kernel(7))
    col = np.round(centres[:, 0] - x).astype(int)
    row = np.round(centres[:, 1] - y).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    inside[inside] = near[row[inside], col[inside]] > 0
    return centres[inside]


def _split(local: np.ndarray, parts: int, seeds: np.ndarray) -> list[np.ndarray]:
    """``local`` (one blob's bool mask) as ``parts`` masks: k-means on its pixel coordinates,
    started from ``seeds`` (blob coordinates, one per part) when given."""
    if parts <= 1:
        return [local]
    ys, xs = np.nonzero(local)
    if len(xs) < parts * 4:
        return [local]
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    if len(seeds) == parts:
        # one Lloyd start from the predicted centres: each part stays with its track
        labels = np.argmin(((points[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2), axis=1).astype(np.int32)[:, None]
        _, assignment, _ = cv2.kmeans(points, parts, labels, criteria, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    else:
        cv2.setRNGSeed(0)
        _, assignment, _ = cv2.kmeans(points, parts, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    assignment = assignment.ravel()
    out = []
    for p in range(parts):
        mask = np.zeros_like(local)
        mask[ys[assignment == p], xs[assignment == p]] = True
        if mask.any():
            out.append(mask)
    return out


class MotionSegmenterV2:
    name = "motion/v2"
    checkpoint = None
    uses_text_prompts = False

    def __init__(self, settings: MotionSettingsV2 = MotionSettingsV2()) -> None:
        self.settings = settings
        self._scene = _SceneState(settings)

    def start_session(self, frames: Sequence[np.ndarray]) -> MotionSession:
        return MotionSession(frames, self.settings, self._scene)

    @property
    def settings_record(self) -> dict[str, str]:
        """The settings in effect, for the masks table's metadata (`motion_settings`, JSON)."""
        return {"motion_settings": json.dumps(self.settings.as_dict(), sort_keys=True)}

    def reset_scene(self) -> None:
        """Forget the background memory (e.g. before another camera's video)."""
        with self._scene.lock:
            self._scene = _SceneState(self.settings)
