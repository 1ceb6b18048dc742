"""Splitting one foreground blob into the animals it holds. Pure: numpy and OpenCV on
in-memory arrays.

A blob is a ``bool (h, w)`` mask placed at ``(x, y)`` in the frame. Two ways to cut it:

- ``split_by_masks``: along where each of several tracks is expected (their last masks moved
  by their predicted motion): each pixel goes to the nearest expected mask. Two thin
  animals crossing in an X so keep their own bodies, where cutting by position alone would
  halve the X.
- ``kmeans_split``: into ``parts`` compact pieces (k-means on the pixel coordinates, seeded
  from given centres or by k-means++ with a fixed seed), for blobs that no tracks explain
  (animals that already touch when first seen).

``claims`` says which expected masks lie on a blob; ``seeds_inside`` which predicted centres.
"""

import cv2
import numpy as np

#: an expected mask claims a blob when at least this share of it lies on the blob
CLAIM_SHARE = 0.2
#: expected masks are compared with a blob inside its box grown by this many pixels
_PAD = 8


def _paste(canvas_shape: tuple[int, int], origin: tuple[int, int], mask_origin: tuple[int, int], mask: np.ndarray) -> np.ndarray:
    """``mask`` (at ``mask_origin`` in the frame) cut to a canvas at ``origin`` of ``canvas_shape``."""
    out = np.zeros(canvas_shape, bool)
    dx, dy = mask_origin[0] - origin[0], mask_origin[1] - origin[1]
    h, w = mask.shape
    x1, y1 = max(dx, 0), max(dy, 0)
    x2, y2 = min(dx + w, canvas_shape[1]), min(dy + h, canvas_shape[0])
    if x2 > x1 and y2 > y1:
        out[y1:y2, x1:x2] = mask[y1 - dy : y2 - dy, x1 - dx : x2 - dx]
    return out


def claims(local: np.ndarray, x: int, y: int, expected: list[tuple[int, int, np.ndarray]], share: float = CLAIM_SHARE) -> list[int]:
    """Indices of the ``expected`` masks ``(x, y, mask)`` of which at least ``share`` of the
    pixels lie on the blob ``local`` at ``(x, y)``, the most overlapping first."""
    found = []
    for k, (ex, ey, mask) in enumerate(expected):
        size = int(mask.sum())
        if size == 0:
            continue
        on = int((_paste(local.shape, (x, y), (ex, ey), mask) & local).sum())
        if on >= share * size:
            found.append((-on / size, k))
    return [k for _, k in sorted(found)]


def split_by_masks(local: np.ndarray, x: int, y: int, expected: list[tuple[int, int, np.ndarray]]) -> list[np.ndarray]:
    """The blob ``local`` at ``(x, y)`` cut into one part per ``expected`` mask ``(x, y,
    mask)``: each pixel goes to the nearest expected mask (ties: the nearest centroid). Parts
    are ``bool`` masks of ``local``'s shape, in the order of ``expected`` (some may be empty)."""
    h, w = local.shape
    origin = (x - _PAD, y - _PAD)
    shape = (h + 2 * _PAD, w + 2 * _PAD)
    rows, cols = np.mgrid[0:h, 0:w]
    distances = np.empty((len(expected), h, w), np.float32)
    for k, (ex, ey, mask) in enumerate(expected):
        pasted = _paste(shape, origin, (ex, ey), mask)
        if not pasted.any():
            distances[k] = np.inf
            continue
        dist = cv2.distanceTransform((~pasted).astype(np.uint8), cv2.DIST_L2, 3)[_PAD : _PAD + h, _PAD : _PAD + w]
        ys, xs = np.nonzero(pasted)
        centroid = (xs.mean() - _PAD, ys.mean() - _PAD)
        distances[k] = dist + 1e-3 * np.hypot(cols - centroid[0], rows - centroid[1])
    nearest = np.argmin(distances, axis=0)
    return [local & (nearest == k) for k in range(len(expected))]


def seeds_inside(centres: np.ndarray, local: np.ndarray, x: int, y: int) -> np.ndarray:
    """The centres ``(K, 2)`` (frame pixels) that fall on the blob ``local`` at ``(x, y)``,
    or within a few pixels of it."""
    if len(centres) == 0:
        return centres
    h, w = local.shape
    near = cv2.dilate(local.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    col = np.round(centres[:, 0] - x).astype(int)
    row = np.round(centres[:, 1] - y).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    inside[inside] = near[row[inside], col[inside]] > 0
    return centres[inside]


def kmeans_split(local: np.ndarray, parts: int, seeds: np.ndarray) -> list[np.ndarray]:
    """``local`` (one blob's bool mask) as ``parts`` masks: k-means on its pixel coordinates,
    started from ``seeds`` (blob coordinates, one per part) when given, else k-means++ with
    OpenCV's generator seeded (the same blob always gives the same parts)."""
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


def _hull_area(mask: np.ndarray) -> float:
    """The area in pixels of the convex hull of ``mask``'s pixels (each pixel a unit square:
    the hull of the pixel centres plus half its perimeter and one)."""
    points = cv2.findNonZero(mask.astype(np.uint8))
    if points is None:
        return 0.0
    hull = cv2.convexHull(points)
    return float(cv2.contourArea(hull)) + 0.5 * float(cv2.arcLength(hull, True)) + 1.0


def hull_gain(local: np.ndarray, parts: list[np.ndarray]) -> float:
    """How much larger the blob's convex hull is than its parts' hulls together, minus one.

    About 0 when the parts are slices of one convex body (any straight cut through an
    ellipse leaves two convex halves whose hulls fill the ellipse); clearly above 0 when the
    blob has a neck or a notch where the parts meet (two touching ellipses: 0.14 whatever their
    size, shape or how they touch, since the figure does not change under an affine map; 0.10
    to 0.12 on pixel masks). Slightly below 0 for slices of one body (their cut edges)."""
    total = sum(_hull_area(p) for p in parts)
    return _hull_area(local) / total - 1.0 if total > 0 else 0.0
