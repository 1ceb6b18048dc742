"""A fixed camera's background, kept over a longer horizon than one clip, and the robust
statistics the motion segmenter derives its thresholds from. Pure: numpy, and OpenCV for
``fill_hulls``.

``BackgroundMemory`` holds a bounded number of grey sample frames taken from earlier clips,
each with a mask of the pixels that showed background in it (pixels inside detected objects
are left out; ``fill_hulls`` widens a found object to its convex hull, so an animal found
only in part does not teach the memory the rest of its body). A clip's background is, per
pixel, the median of the memory's valid samples together with a few of the clip's own
frames, so an animal that moved at some point and then stands still is not absorbed into the
background as long as the memory holds more samples of its spot without it than the clip
adds. On a scene's first clip (empty memory) it is the
clip's own median. Memory is ``capacity × H × W`` bytes twice, whatever the video's length.
"""

import cv2
import numpy as np


#: pixels per band of ``BackgroundMemory.estimate`` (its sort's working memory is about
#: 6 bytes per pixel and sample)
_BAND_PIXELS = 65536


def masked_median(samples: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of the valid samples.

    ``samples``: ``uint8 (K, H, W)``; ``valid``: ``bool (K, H, W)``. Returns the median
    (``uint8 (H, W)``, 0 where no sample is valid) and the count of valid samples
    (``int (H, W)``). Invalid samples are sorted past every valid one (as 256) and the
    middle valid rank is read off.
    """
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
    """The area of one object from the areas of the foreground blobs of a clip.

    Blobs under ``floor`` pixels are noise. Most foreground pixels belong to objects, so the
    area-weighted median blob is an object (or a few touching ones); the typical object is
    the plain median of the blobs at least a quarter of that size. 0 when there are none.
    """
    areas = np.sort(np.asarray(areas, np.float64).ravel())
    areas = areas[areas >= floor]
    if areas.size == 0:
        return 0.0
    cumulative = np.cumsum(areas)
    weighted = areas[np.searchsorted(cumulative, cumulative[-1] / 2.0)]
    return float(np.median(areas[areas >= weighted / 4.0]))


def split_count(area: float, typical: float, max_parts: int = 6, min_ratio: float = 1.6) -> int:
    """How many objects a blob of ``area`` most likely holds (1 when it is not clearly more
    than one: under ``min_ratio`` typical areas)."""
    if typical <= 0 or area < min_ratio * typical:
        return 1
    return int(min(max_parts, max(2, round(area / typical))))


def fill_hulls(mask: np.ndarray, min_area: float) -> np.ndarray:
    """``mask`` (``uint8`` or ``bool (H, W)``) as ``uint8`` with each connected part of at least
    ``min_area`` pixels filled to its convex hull (an object found in pieces of its outline
    covers its body; specks stay as they are)."""
    out = mask.astype(np.uint8, copy=True)
    contours, _ = cv2.findContours(out, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        if cv2.contourArea(contour) >= min_area:
            cv2.fillConvexPoly(out, cv2.convexHull(contour), 1)
    return out


class BackgroundMemory:
    """Sample frames of earlier clips of one scene, with per-pixel validity.

    ``capacity``: sample frames kept (oldest dropped first).
    """

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
        """Remember one ``uint8 (H, W)`` frame; ``valid`` marks its background pixels."""
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
        """The memory's own masked median and valid counts, on every ``step``-th pixel."""
        if self._samples is None or self._filled == 0:
            raise ValueError("the background memory is empty")
        k = self._filled
        return masked_median(self._samples[:k, ::step, ::step], self._valid[:k, ::step, ::step])

    def estimate(self, clip_samples: np.ndarray) -> tuple[np.ndarray, float]:
        """The background (``uint8 (H, W)``): per pixel, the median of the memory's valid
        samples together with ``clip_samples`` (``uint8 (n, H, W)``, frames of the clip being
        segmented, all counted). Also the share of the memory in the median (0 to 1, mean
        over pixels): 0 on a scene's first clip."""
        clip_samples = np.asarray(clip_samples, np.uint8)
        if self._samples is None or self._samples.shape[1:] != clip_samples.shape[1:] or self._filled == 0:
            return np.median(clip_samples, axis=0).astype(np.uint8), 0.0
        height, width = clip_samples.shape[1:]
        median = np.empty((height, width), np.uint8)
        count = np.empty((height, width), np.int64)
        # band by band: the sort works on a uint16 copy of every sample, several times the
        # memory itself at once (0.3 GB at 2560x1440) where whole frames are taken together
        band = max(1, _BAND_PIXELS // width)
        for top in range(0, height, band):
            rows = slice(top, top + band)
            samples = np.concatenate([self._samples[: self._filled, rows], clip_samples[:, rows]])
            valid = np.concatenate([self._valid[: self._filled, rows], np.ones(clip_samples[:, rows].shape, bool)])
            median[rows], count[rows] = masked_median(samples, valid)
        return median, float(np.mean(1.0 - len(clip_samples) / np.maximum(count, 1)))


def edge_support(grey: np.ndarray, background: np.ndarray, mask: np.ndarray) -> float:
    """How much more the frame than the background shows an edge along the outline of
    ``mask`` (all three the same ``(h, w)`` window; ``grey`` and ``background`` numbers, the
    mask ``bool``): the ratio of their mean gradient magnitudes over the outline's pixels.

    An object in front of the background has its outline in the frame (ratio above 1); a
    *ghost*, a place where the background estimate still holds an animal that has left, has
    it in the background and not in the frame (ratio under 1). 1.0 when neither has an edge
    there (or the mask has no outline inside the window)."""
    mask = np.asarray(mask, bool)
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    outline = mask & ~inner
    outline[[0, -1], :] = False
    outline[:, [0, -1]] = False
    if not outline.any():
        return 1.0

    def magnitude(image: np.ndarray) -> float:
        image = np.asarray(image, np.float32)
        gy = (image[2:, 1:-1] - image[:-2, 1:-1]) / 2.0
        gx = (image[1:-1, 2:] - image[1:-1, :-2]) / 2.0
        return float(np.hypot(gx, gy)[outline[1:-1, 1:-1]].mean())

    frame_edge, background_edge = magnitude(grey), magnitude(background)
    if frame_edge + background_edge <= 1e-6:
        return 1.0
    return frame_edge / max(background_edge, 1e-6)
