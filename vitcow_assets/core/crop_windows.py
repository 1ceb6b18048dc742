"""Crop windows of one object through one clip: steady where the animal allows it, split
where its box jumps further than the scene's animals move, and the measures of both.

Pure: numpy in, numpy and dataclasses out. No cv2, Dagster, torch or file I/O; of the
package only the speed model (``core.speeds``) is imported. This is the one place where a
crop window is planned (``core.geometry.extract_crop`` cuts it out of a frame).

Conventions: an object's boxes in a clip are a ``(n, 4) float64`` array of ``xyxy`` in
source pixels, one row per clip frame, NaN rows where the object is absent
(``boxes_array`` makes one from a list with ``None``). Windows are ``(n, 4) int64`` squares
``(x1, y1, x2, y2)`` that may leave the frame; rows of absent frames are meaningless (the
``present`` mask says which rows count). Frame gaps are counted in clip frames.

- **Per-frame windows** (``frame_windows``): the box grown by ``margin`` times its longer
  side, squared around its centre, at least ``crop_size`` wide. They follow every wobble
  of the box: a standing animal's crop shakes.
- **Steady windows** (``steady_windows``): one fixed window for the whole clip when a square
  holding every box with its margin is at most ``max_zoom_out`` times the object's typical
  per-frame window; otherwise a centre and size smoothed by a local linear fit over
  ``smooth_frames`` frames either side (no lag behind a walking animal), then moved or
  grown where needed so that every box with its margin stays inside its window. Never
  smaller than the per-frame window: nothing is cut and nothing is upscaled more.
- **Jumps** (``jumps``): a move of the box centre between two observations that the scene's
  animals cannot make. How far they get is the package's one speed model
  (``core.speeds.SpeedModel``, made by ``jump_speed_model``), fed with the centre moves of
  every object of the video (``core.speeds.centre_moves``): its ``line_reach`` is
  ``JUMP_TOLERANCE × (jitter + speed × gap)``, a line through the ``JUMP_QUANTILE`` of the
  moves at gaps of 1 to 4 clip frames (the intercept is the jitter of box centres, which
  does not grow with the gap; the slope the top sustained speed). A move is a jump when it
  exceeds the reach for its gap, and never when it is under ``MIN_MOVE_RATIO`` of the
  animal's longer side (a mask that changes its extent moves the box centre by up to half
  the box).
- **Parts** (``plan_object``): an object's frames are cut at every jump into parts, each
  a crop of its own following one animal; windows are planned per part, never across a
  jump.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np

from vitcow_assets.core.speeds import Reach, SpeedModel

#: quantile of the video's centre moves at a gap that stands for the scene's fast animals
JUMP_QUANTILE = 0.95
#: one-frame moves the speed model needs before anything is a jump (a gap with fewer is
#: measured as the one-frame reach times the gap)
MIN_SPEED_SAMPLES = 20
#: a jump exceeds this many times that quantile for its gap
JUMP_TOLERANCE = 1.5
#: a move under this fraction of the animal's longer side is never a jump
MIN_MOVE_RATIO = 0.5


def boxes_array(boxes: Sequence[Sequence[float] | None]) -> np.ndarray:
    """``(n, 4) float64`` from one ``xyxy`` (or None where absent) per clip frame."""
    out = np.full((len(boxes), 4), np.nan)
    for i, box in enumerate(boxes):
        if box is not None:
            out[i] = np.asarray(box, dtype=np.float64)
    return out


def present_of(boxes: np.ndarray) -> np.ndarray:
    """``(n,) bool``: frames where the object has a box."""
    return ~np.isnan(boxes).any(axis=1)


def _longer(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def _centres(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0], axis=1)


def frame_windows(boxes: np.ndarray, crop_size: int, margin: float) -> np.ndarray:
    """Per-frame windows: each present box grown by ``margin`` times its longer side on every
    side and squared around its centre; a square smaller than ``crop_size`` is widened to
    ``crop_size`` (the object keeps its native resolution instead of being upscaled), a
    larger one is resized down to ``crop_size`` when cut. Windows may extend past the frame.
    A present box without area is a ``ValueError``."""
    out = np.zeros((len(boxes), 4), np.int64)
    for i in np.flatnonzero(present_of(boxes)):
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        if not (x2 > x1 and y2 > y1):
            raise ValueError(f"box {boxes[i].tolist()!r} of clip frame {i} has no area")
        side = max(int(round(max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin))), int(crop_size))
        left = int(round((x1 + x2) / 2.0 - side / 2.0))
        top = int(round((y1 + y2) / 2.0 - side / 2.0))
        out[i] = (left, top, left + side, top + side)
    return out


@dataclasses.dataclass(frozen=True)
class WindowSettings:
    """How crop windows are planned (``stages.cropping.CropSettings`` carries these)."""

    crop_size: int
    margin: float
    #: steady windows (fixed, else smoothed); False: per-frame windows
    steady: bool = True
    #: frames either side that the smoothing of a moving animal's window looks at
    smooth_frames: int = 3
    #: a fixed window may be at most this many times the typical per-frame window's side
    max_zoom_out: float = 1.25

    def __post_init__(self) -> None:
        if self.smooth_frames < 1:
            raise ValueError(f"smooth_frames must be >= 1, got {self.smooth_frames}")
        if self.max_zoom_out < 1:
            raise ValueError(f"max_zoom_out must be >= 1, got {self.max_zoom_out}")


def _needed(boxes: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """What each window must hold: the box grown by the margin, ``lo (n, 2)``, ``hi (n, 2)``."""
    pad = margin * _longer(boxes)[:, None]
    return boxes[:, :2] - pad, boxes[:, 2:] + pad


def _place(centre: np.ndarray, side: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integer windows of ``side`` around ``centre``, moved as little as needed to hold ``[lo, hi]``
    (which ``side`` must allow: ``side >= ceil(hi) - floor(lo)``)."""
    start = np.round(centre - side[:, None] / 2.0)
    start = np.clip(start, np.ceil(hi - side[:, None]), np.floor(lo))
    start = start.astype(np.int64)
    return np.concatenate([start, start + side[:, None].astype(np.int64)], axis=1)


def _local_linear(t: np.ndarray, values: np.ndarray, half: int) -> np.ndarray:
    """Each value replaced by a least-squares line through the values within ``half`` frames
    of it, read at its own frame (a moving average that does not lag behind a trend)."""
    out = np.empty_like(values)
    for i, ti in enumerate(t):
        near = np.abs(t - ti) <= half
        dt, v = t[near] - ti, values[near]
        spread = dt - dt.mean()
        denom = float(np.sum(spread * spread))
        if denom > 0:
            slope = np.sum(spread[:, None] * (v - v.mean(axis=0)), axis=0) / denom
            out[i] = v.mean(axis=0) - slope * dt.mean()
        else:
            out[i] = v.mean(axis=0)
    return out


def steady_windows(boxes: np.ndarray, settings: WindowSettings) -> tuple[np.ndarray, bool]:
    """Steady windows of one object's part (no jump inside) and whether they are one fixed window.

    Every present box with its margin lies inside its window, and no window is smaller than
    that frame's per-frame window."""
    present = present_of(boxes)
    out = np.zeros((len(boxes), 4), np.int64)
    if not present.any():
        return out, False
    b = boxes[present]
    natural = frame_windows(b, settings.crop_size, settings.margin)
    natural_side = natural[:, 2] - natural[:, 0]
    lo, hi = _needed(b, settings.margin)
    need = np.maximum(natural_side, (np.ceil(hi) - np.floor(lo)).max(axis=1).astype(np.int64))
    union_lo, union_hi = lo.min(axis=0), hi.max(axis=0)
    fixed_side = int(max(need.max(), (np.ceil(union_hi) - np.floor(union_lo)).max()))
    if fixed_side <= settings.max_zoom_out * float(np.median(natural_side)):
        one = _place(((union_lo + union_hi) / 2.0)[None], np.array([fixed_side]), union_lo[None], union_hi[None])
        out[present] = one[0]
        return out, True
    t = np.flatnonzero(present).astype(np.float64)
    centre = _local_linear(t, _centres(b), settings.smooth_frames)
    side = _local_linear(t, need[:, None].astype(np.float64), settings.smooth_frames)[:, 0]
    side = np.maximum(np.ceil(side).astype(np.int64), need)
    out[present] = _place(centre, side, lo, hi)
    return out, False


def jump_speed_model() -> SpeedModel:
    """The crop stage's speed model, empty: feed it ``core.speeds.centre_moves`` of every
    object of a video (clip frames), then ask its ``line_reach()``."""
    return SpeedModel(min_samples=MIN_SPEED_SAMPLES, quantile=JUMP_QUANTILE, margin=JUMP_TOLERANCE)


def speed_record(model: SpeedModel) -> dict | None:
    """What the jump rule measured, for the crops table's metadata: the reach per gap of 1 to
    ``LAGS`` clip frames (px) and beyond (px per frame), the quantile, margin and minimum move
    ratio, and the one-frame moves sampled; None when there were too few moves to measure
    (nothing is a jump)."""
    reach = model.line_reach()
    if reach is None:
        return None
    return {
        "reach_px": list(reach.limits), "beyond_px_per_frame": reach.tail_px_per_frame, "quantile": model.quantile,
        "margin": model.margin, "min_move_ratio": MIN_MOVE_RATIO, "samples": len(model),
    }


def allowed_move(reach: Reach, gap, longer_side) -> np.ndarray:
    """Largest centre move that is not a jump, px, for ``gap`` frames and an animal whose
    longer side is ``longer_side`` px (broadcasts)."""
    return np.maximum(reach(gap), MIN_MOVE_RATIO * np.asarray(longer_side, np.float64))


def jumps(boxes: np.ndarray, reach: Reach | None) -> np.ndarray:
    """``(n,) bool``: True at a present frame whose box centre jumped from the previous
    present frame's (a move ``allowed_move`` does not allow). All False without a reach."""
    out = np.zeros(len(boxes), bool)
    frames = np.flatnonzero(present_of(boxes))
    if reach is None or len(frames) < 2:
        return out
    b = boxes[frames]
    moved = np.hypot(*np.diff(_centres(b), axis=0).T)
    longer = np.maximum(_longer(b)[:-1], _longer(b)[1:])
    out[frames[1:]] = moved > allowed_move(reach, np.diff(frames), longer)
    return out


@dataclasses.dataclass(frozen=True)
class CropPlan:
    """One crop of an object in a clip: the frames it shows and its window on each."""

    #: index of the part among the object's parts in this clip (0: the first, or only, one)
    part: int
    #: ``(n,) bool`` per clip frame: the object is shown (False: a black frame)
    present: np.ndarray
    #: ``(n, 4) int64`` per clip frame; rows where ``present`` is False are meaningless
    windows: np.ndarray
    #: one window for the whole part
    fixed: bool


def plan_object(boxes: np.ndarray, settings: WindowSettings, reach: Reach | None) -> list[CropPlan]:
    """The crops of one object in one clip: its frames cut at every jump, each part with
    its windows (steady or per-frame, per ``settings``). Parts partition the present frames."""
    present = present_of(boxes)
    starts = np.flatnonzero(jumps(boxes, reach))
    frames = np.flatnonzero(present)
    cuts = [0, *(int(np.searchsorted(frames, s)) for s in starts), len(frames)]
    plans = []
    for part, (a, b) in enumerate(zip(cuts, cuts[1:])):
        mask = np.zeros(len(boxes), bool)
        mask[frames[a:b]] = True
        part_boxes = np.where(mask[:, None], boxes, np.nan)
        if settings.steady:
            windows, fixed = steady_windows(part_boxes, settings)
        else:
            windows, fixed = frame_windows(part_boxes, settings.crop_size, settings.margin), False
        plans.append(CropPlan(part, mask, windows, fixed))
    return plans


def centre_steps(windows: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Moves of the window centre (px) between consecutive clip frames that both show the object."""
    both = present[1:] & present[:-1]
    centre = (windows[:, :2] + windows[:, 2:]) / 2.0
    return np.hypot(*np.diff(centre, axis=0)[both].T)


def boxes_inside(boxes: np.ndarray, windows: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``(k,) bool`` for each present frame: its box lies inside its window."""
    b, w = boxes[present], windows[present]
    return (b[:, 0] >= w[:, 0]) & (b[:, 1] >= w[:, 1]) & (b[:, 2] <= w[:, 2]) & (b[:, 3] <= w[:, 3])


def window_jumps(boxes: np.ndarray, windows: np.ndarray, present: np.ndarray, reach: Reach | None) -> int:
    """Moves of the window centre between consecutive present frames larger than
    ``allowed_move`` for the animal (0 without a reach)."""
    frames = np.flatnonzero(present)
    if reach is None or len(frames) < 2:
        return 0
    centre = (windows[frames, :2] + windows[frames, 2:]) / 2.0
    moved = np.hypot(*np.diff(centre, axis=0).T)
    longer = _longer(boxes[frames])
    return int(np.sum(moved > allowed_move(reach, np.diff(frames), np.maximum(longer[:-1], longer[1:]))))
