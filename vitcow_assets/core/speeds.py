"""How fast the animals of one scene move: the one speed model of the package.

``SpeedModel`` keeps, for lags of 1 to ``LAGS`` frames, a bounded sample of how far the
scene's animals were seen to move (box centres, pixels) and derives from it a ``Reach``: how
far an animal of the scene gets in k frames. ``reach()`` takes each lag on its own (the
``quantile`` of the moves at that lag, times a ``margin``, never less far in more time and
never further than the one-frame reach sustained); ``line_reach()`` fits a line through the
quantiles of the first lags (jitter + speed × k, times the margin), for boxes whose centres
jitter whatever the time between two views. Three places ask it, each with its own model
(its own sample, unit of time, quantile and margin):

- the motion backend's tracker (``core.tracks``): moves of animals tracked on blobs nothing
  split, per clip frame, over the scene's clips so far: a detection its track could not
  have reached never continues it (quantile 0.99, margin 1.5: ``MotionSettings``);
- the cross-clip linker (``core.identity``): moves of linked tracks per source frame
  (``LinkSettings``);
- the crop stage's jump rule (``core.crop_windows``): moves of every object of the video,
  per clip frame (``centre_moves``), ``line_reach()``: a box that moves further than that is
  a jump, and the crop is cut there (quantile 0.95, margin 1.5). (Its per-lag ``reach()``
  instead, measured on 8 seeds of the synthetic school and crowd, cut one animal's crop in
  two 31 times where the line does 27 (school) and took out 12 identity switches where the
  line takes out 13 (crowd): the line stays.)

Pure: numpy only.
"""

import dataclasses

import numpy as np

#: frames over which the speed model measures how far animals get (1, 2, ..., LAGS)
LAGS = 8
#: lags a ``line_reach`` is fitted through
LINE_LAGS = 4


@dataclasses.dataclass(frozen=True)
class Reach:
    """How far an animal of the scene has been seen to get (pixels) in 1, 2, ... frames:
    ``limits[k - 1]`` for ``k`` frames (never decreasing); beyond the last, in proportion,
    or, with ``tail_px_per_frame``, the last limit plus that much per frame further."""

    limits: tuple[float, ...]
    tail_px_per_frame: float | None = None

    def __call__(self, frames) -> np.ndarray:
        frames = np.asarray(frames, np.float64)
        limits = np.asarray(self.limits, np.float64)
        index = np.clip(frames, 1, len(limits)).astype(int) - 1
        if self.tail_px_per_frame is None:
            beyond = limits[-1] * frames / len(limits)
        else:
            beyond = limits[-1] + self.tail_px_per_frame * (frames - len(limits))
        return np.where(frames <= len(limits), limits[index], beyond)


class SpeedModel:
    """Moves of one scene's animals over 1 to ``LAGS`` frames (a bounded sample per lag), and
    the ``Reach`` derived from them.

    ``capacity``: moves kept per lag (the oldest are dropped first); ``min_samples``: fewer
    one-frame moves than this and there is no reach yet (a lag with fewer gets the one-frame
    limit times the lag); ``quantile`` and ``margin``: the limit of a lag is ``margin`` ×
    that quantile of its sample (the furthest the scene's animals have been seen to get in
    that time, with room for a burst). Animals rarely keep their top speed for several
    frames, so the limits of longer lags are tighter than the one-frame limit times the lag:
    a track lost for a few frames is not picked up again wherever a sprint could have taken
    it, and a crop's box unseen for a few frames may not come back as far as a sprint goes.
    """

    def __init__(self, capacity: int = 4000, min_samples: int = 30, quantile: float = 0.99, margin: float = 1.5) -> None:
        if not 0 < quantile <= 1 or margin < 1 or min_samples < 1 or capacity < min_samples:
            raise ValueError(f"bad speed model: quantile {quantile}, margin {margin}, samples {min_samples}..{capacity}")
        self.capacity, self.min_samples, self.quantile, self.margin = capacity, min_samples, quantile, margin
        self._steps = {lag: np.zeros(0, np.float64) for lag in range(1, LAGS + 1)}

    def __len__(self) -> int:
        return len(self._steps[1])

    def add(self, displacements: dict[int, np.ndarray]) -> None:
        """Remember ``{lag: moves (pixels) over that many frames}`` (lags past ``LAGS`` are ignored)."""
        for lag, values in displacements.items():
            if lag in self._steps:
                values = np.asarray(values, np.float64).ravel()
                self._steps[lag] = np.concatenate([self._steps[lag], values[np.isfinite(values)]])[-self.capacity :]

    def reach(self, extra: dict[int, np.ndarray] | None = None) -> Reach | None:
        """The reach, from the samples and ``extra`` moves (not kept), or None while there are
        fewer than ``min_samples`` one-frame moves."""
        extra = extra or {}
        limits = []
        for lag in range(1, LAGS + 1):
            values = np.concatenate([self._steps[lag], np.asarray(extra.get(lag, []), np.float64).ravel()])
            if len(values) < self.min_samples:
                if lag == 1:
                    return None
                limits.append(limits[0] * lag)
                continue
            limits.append(self.margin * float(np.quantile(values, self.quantile)))
        # never less far in more time, never further than the one-frame limit sustained
        limits = np.minimum(np.maximum.accumulate(limits), limits[0] * np.arange(1, LAGS + 1))
        return Reach(tuple(float(v) for v in limits))

    def line_reach(self, lags: int = LINE_LAGS) -> Reach | None:
        """The reach as a line through the ``quantile`` moves of lags 1 to ``lags`` (those
        with at least ``min_samples`` moves), ``margin × (jitter + speed × k)`` for ``k``
        frames at any ``k``: the intercept is the jitter of box centres, which does not grow
        with the time between two views, the slope the scene's top sustained speed (a slope
        that does not grow: all jitter). None when no lag has enough moves. This is how far
        a box, rather than an animal, gets: the crop stage's jump rule."""
        lag_list, quantiles = [], []
        for lag in range(1, lags + 1):
            if len(self._steps[lag]) >= self.min_samples:
                lag_list.append(lag)
                quantiles.append(float(np.quantile(self._steps[lag], self.quantile)))
        if not lag_list:
            return None
        if len(lag_list) == 1:
            speed, jitter = quantiles[0] / lag_list[0], 0.0
        else:
            slope, intercept = np.polyfit(np.asarray(lag_list, np.float64), np.asarray(quantiles), 1)
            speed, jitter = (0.0, max(quantiles)) if slope <= 0 else (float(slope), float(max(intercept, 0.0)))
        limits = self.margin * (jitter + speed * np.arange(1, LAGS + 1, dtype=np.float64))
        return Reach(tuple(float(v) for v in limits), tail_px_per_frame=self.margin * speed)


def centre_moves(frames: np.ndarray, boxes: np.ndarray, lags: int = LAGS) -> dict[int, np.ndarray]:
    """``{lag: moves (pixels, float64)}`` of one object's box centre between every two of its
    observations ``lag`` frames apart (1 to ``lags``): ``frames (m,)`` and ``xyxy`` boxes
    ``(m, 4)``, in any order."""
    order = np.argsort(np.asarray(frames), kind="stable")
    frames = np.asarray(frames)[order]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)[order]
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0], axis=1)
    gaps = frames[None, :] - frames[:, None]
    dist = np.hypot(*(centres[None, :, :] - centres[:, None, :]).transpose(2, 0, 1))
    return {lag: dist[gaps == lag] for lag in range(1, lags + 1)}
