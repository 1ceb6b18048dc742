"""Masks: kept cropped to their boxes (``BoxMasks``), and their COCO run-length encoding,
as pycocotools writes it.

An RLE is ``{"size": [height, width], "counts": str}`` (column-major over the whole frame,
compressed counts as text), readable by any COCO tool. ``encode_box_masks`` computes the
runs from each box-local mask and the frame size, so encoding never allocates a full-frame
array per object; its output is byte for byte what ``encode_masks`` (pycocotools' own
encoder on full-frame masks) gives.

Pure: numpy and pycocotools; no file access.
"""

from collections.abc import Iterator, Sequence

import numpy as np
from pycocotools import mask as coco_mask


class BoxMasks:
    """``N`` masks of one ``height × width`` frame, each kept as a ``bool (h, w)`` crop.

    - ``crops[i]``: the pixels of mask ``i`` inside its crop (a ``(0, 0)`` crop for an
      empty mask); every pixel outside the crop is False.
    - ``origins``: ``int64 (N, 2)``, the frame ``(x, y)`` of each crop's top-left pixel.

    Every crop lies inside the frame. Memory is the crops' area, not ``N × height ×
    width``. ``full()`` (and ``np.asarray``) gives the ``(N, H, W)`` array, ``mask(i)`` one
    frame-sized mask, for the consumers that truly need them; ``shape`` is that array's.
    """

    def __init__(self, crops: Sequence[np.ndarray], origins, height: int, width: int) -> None:
        self.crops = [np.asarray(c, dtype=bool) for c in crops]
        self.origins = np.asarray(origins, dtype=np.int64).reshape(-1, 2)
        self.height, self.width = int(height), int(width)
        if len(self.origins) != len(self.crops):
            raise ValueError(f"{len(self.crops)} crops but {len(self.origins)} origins")
        for crop, (x, y) in zip(self.crops, self.origins.tolist()):
            if crop.ndim != 2:
                raise ValueError(f"a mask crop must be (h, w), got shape {crop.shape}")
            if x < 0 or y < 0 or x + crop.shape[1] > self.width or y + crop.shape[0] > self.height:
                raise ValueError(f"mask crop {crop.shape[::-1]} at ({x}, {y}) leaves the {self.width}x{self.height} frame")

    @classmethod
    def empty(cls, height: int, width: int) -> "BoxMasks":
        return cls([], np.zeros((0, 2), np.int64), height, width)

    @classmethod
    def from_full(cls, masks: np.ndarray) -> "BoxMasks":
        """Crops of ``(N, H, W) bool`` masks, each cut to its pixels' tight box (copied, so
        the full array can be freed). One pass over the stack, then over each mask's rows."""
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3:
            raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
        rows_used = masks.any(axis=2)
        crops, origins = [], []
        for mask, rows in zip(masks, rows_used):
            found = np.flatnonzero(rows)
            if found.size == 0:
                crops.append(np.zeros((0, 0), bool))
                origins.append((0, 0))
                continue
            band = mask[found[0] : found[-1] + 1]
            cols = np.flatnonzero(band.any(axis=0))
            crops.append(band[:, cols[0] : cols[-1] + 1].copy())
            origins.append((int(cols[0]), int(found[0])))
        return cls(crops, np.asarray(origins, np.int64).reshape(-1, 2), masks.shape[1], masks.shape[2])

    @classmethod
    def from_parts(cls, objects: Sequence[Sequence[tuple[int, int, np.ndarray]]], height: int, width: int) -> "BoxMasks":
        """One mask per object, the union of its parts ``(x, y, bool crop)``, kept in the
        box around them."""
        crops, origins = [], []
        for parts in objects:
            x1 = min((x for x, _, _ in parts), default=0)
            y1 = min((y for _, y, _ in parts), default=0)
            x2 = max((x + p.shape[1] for x, _, p in parts), default=0)
            y2 = max((y + p.shape[0] for _, y, p in parts), default=0)
            crop = np.zeros((y2 - y1, x2 - x1), bool)
            for x, y, part in parts:
                crop[y - y1 : y - y1 + part.shape[0], x - x1 : x - x1 + part.shape[1]] |= part
            crops.append(crop)
            origins.append((x1, y1))
        return cls(crops, np.asarray(origins, np.int64).reshape(-1, 2), height, width)

    @classmethod
    def concat(cls, parts: Sequence["BoxMasks"], height: int, width: int) -> "BoxMasks":
        """The masks of ``parts`` (of one ``height × width`` frame) one after the other."""
        if any((p.height, p.width) != (height, width) for p in parts):
            raise ValueError(f"every part must belong to a {width}x{height} frame")
        origins = np.concatenate([p.origins for p in parts]) if parts else np.zeros((0, 2), np.int64)
        return cls([c for p in parts for c in p.crops], origins, height, width)

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.crops), self.height, self.width

    def select(self, keep) -> "BoxMasks":
        """The masks picked by ``keep`` (boolean mask or indices), in that order."""
        index = np.arange(len(self))[np.asarray(keep)] if len(self) else np.zeros(0, np.int64)
        return BoxMasks([self.crops[i] for i in index], self.origins[index], self.height, self.width)

    def crop_xyxy(self) -> np.ndarray:
        """Each crop's box, ``float32 (N, 4)`` (``x2, y2`` exclusive): the tight box of the
        mask's pixels for crops made by ``from_full``; zeros for an empty crop."""
        sizes = np.array([c.shape[::-1] for c in self.crops], np.int64).reshape(-1, 2)
        return np.concatenate([self.origins, self.origins + sizes], axis=1).astype(np.float32)

    def areas(self) -> np.ndarray:
        """Pixels of each mask, ``int64 (N,)``."""
        return np.array([np.count_nonzero(c) for c in self.crops], dtype=np.int64)

    def mask(self, i: int) -> np.ndarray:
        """Mask ``i`` at frame size, ``bool (H, W)``."""
        out = np.zeros((self.height, self.width), bool)
        crop = self.crops[i]
        x, y = (int(v) for v in self.origins[i])
        out[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
        return out

    def full(self) -> np.ndarray:
        """Every mask at frame size, ``bool (N, H, W)``."""
        out = np.zeros(self.shape, bool)
        for i, crop in enumerate(self.crops):
            x, y = (int(v) for v in self.origins[i])
            out[i, y : y + crop.shape[0], x : x + crop.shape[1]] = crop
        return out

    def __getitem__(self, i: int) -> np.ndarray:
        return self.mask(i)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.mask(i) for i in range(len(self)))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        full = self.full()
        return full if dtype is None else full.astype(dtype)

    def __repr__(self) -> str:
        return f"BoxMasks({len(self)} masks of a {self.width}x{self.height} frame)"


def encode_masks(masks: np.ndarray) -> list[dict]:
    """Encode ``(N, H, W) bool`` masks as a list of COCO RLE dicts with text ``counts``
    (pycocotools' own encoder: the reference for ``encode_box_masks``)."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    fortran = np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))
    return [
        {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
        for r in coco_mask.encode(fortran)
    ]


def crop_run_lengths(crop: np.ndarray, x: int, y: int, height: int, width: int) -> np.ndarray:
    """Uncompressed COCO run lengths (``uint32``: zeros first, then ones, alternating) of the
    ``height × width`` frame whose only pixels are ``crop`` placed at ``(x, y)``.

    COCO runs are column-major over the frame, so a pixel ``(row, col)`` is number ``col ×
    height + row``. Each crop column, padded with a False above and below, holds whole runs:
    their starts and ends (the first pixel after each change) are found in the crop and
    moved to frame numbers. A run that ends on a frame column's last row and goes on at the
    next column's first (a crop as tall as the frame) is joined back into one.
    """
    h, w = crop.shape
    total = height * width
    padded = np.zeros((w, h + 2), bool)
    padded[:, 1:-1] = crop.T
    changes = np.flatnonzero(padded[:, 1:] != padded[:, :-1])  # (w, h + 1): change before crop row r
    if changes.size == 0:
        return np.array([total], np.uint32)
    col, row = np.divmod(changes, h + 1)
    bounds = (col + x) * height + (row + y)  # start, end (exclusive), start, end, ...
    if h == height:  # runs may go on from one column's last row to the next one's first
        joined = np.flatnonzero(bounds[1:-1:2] == bounds[2::2])
        bounds = np.delete(bounds, np.concatenate([2 * joined + 1, 2 * joined + 2]))
    counts = np.empty(bounds.size + 1, np.int64)
    counts[0] = bounds[0]
    counts[1:-1] = bounds[1:] - bounds[:-1]
    counts[-1] = total - bounds[-1]
    if counts[-1] == 0:  # the mask runs to the frame's last pixel: no zeros after it
        counts = counts[:-1]
    return counts.astype(np.uint32)


def encode_box_masks(masks: BoxMasks) -> list[dict]:
    """COCO RLE dicts with text ``counts`` of box-local masks: the same bytes as
    ``encode_masks(masks.full())``, computed from the crops (pycocotools compresses the
    runs, ``frPyObjects``)."""
    height, width = masks.height, masks.width
    out = []
    for crop, (x, y) in zip(masks.crops, masks.origins.tolist()):
        counts = crop_run_lengths(crop, x, y, height, width)
        rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        out.append({"size": [height, width], "counts": rle["counts"].decode("ascii")})
    return out


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
