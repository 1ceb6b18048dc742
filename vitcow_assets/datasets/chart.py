"""A bar chart of crops per class and split (PNG), and a small JPEG thumbnail for the UI.

Horizontal grouped bars: one row per class (names on the left, in class index order), one
bar per split (train, val, test; colours in the legend), each bar's count written at its
end, a labelled count axis with gridlines at whole counts (``count_ticks``). Drawn with
OpenCV; the same counts give the same bytes. ``Chart.bars`` gives each bar's rectangle and
``Chart.ticks`` the axis values (for tests and image maps).

No file I/O: ``exports`` writes the PNG.
"""

import base64
import dataclasses
import math

import cv2
import numpy as np

from vitcow_assets.datasets.splits import SPLIT_NAMES

#: RGB colour per split (distinguishable for the common colour-vision deficiencies)
SPLIT_COLOURS = {"train": (0, 114, 178), "val": (230, 159, 0), "test": (0, 158, 115)}
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (40, 40, 40)
GRID = (225, 225, 225)
WIDTH = 1000
BAR_H, ROW_GAP = 16, 16
TOP, BOTTOM, RIGHT = 80, 70, 70
#: gridlines on the count axis, at most (fewer where the top count is smaller)
MAX_TICK_STEPS = 5


@dataclasses.dataclass(frozen=True)
class Bar:
    class_name: str
    split: str
    count: int
    #: pixel rectangle, x1/y1 exclusive
    x0: int
    y0: int
    x1: int
    y1: int


@dataclasses.dataclass(frozen=True)
class Chart:
    #: (H, W, 3) uint8 RGB
    image: np.ndarray
    bars: tuple[Bar, ...]
    #: the count axis's labelled values, left to right
    ticks: tuple[int, ...]

    def png(self) -> bytes:
        ok, data = cv2.imencode(".png", cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR))
        return data.tobytes()

    def thumbnail_jpeg(self, width: int = 480) -> bytes:
        h, w = self.image.shape[:2]
        small = cv2.resize(self.image, (width, max(1, h * width // w)), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        return data.tobytes()

    def thumbnail_markdown(self, alt: str = "crops per class and split") -> str:
        """Markdown image with the thumbnail as a data URI (what the Dagster UI renders)."""
        return f"![{alt}](data:image/jpeg;base64,{base64.b64encode(self.thumbnail_jpeg()).decode()})"


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 × 10^k at least ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(int(m * power) for m in (1, 2, 5, 10) if m * power >= value)


def _text(img, text: str, x: int, y: int, scale: float = 0.55, thickness: int = 1, align: str = "left") -> None:
    (w, h), _ = cv2.getTextSize(text, FONT, scale, thickness)
    x = x - w if align == "right" else x - w // 2 if align == "centre" else x
    cv2.putText(img, text, (int(x), int(y)), FONT, scale, INK, thickness, cv2.LINE_AA)


def count_ticks(top_value: int) -> tuple[int, ...]:
    """Whole counts from 0 to ``top_value`` (a ``nice_ceiling``) in equal steps: one per count
    up to ``MAX_TICK_STEPS``, else ``MAX_TICK_STEPS`` steps (1, 2, 5 × 10^k divide by 5)."""
    steps = top_value if top_value <= MAX_TICK_STEPS else MAX_TICK_STEPS
    return tuple(top_value * k // steps for k in range(steps + 1))


def _axis(img, left: int, right: int, top: int, bottom: int, top_value: int) -> tuple[int, ...]:
    ticks = count_ticks(top_value)
    for value in ticks:
        x = left + round((right - left) * value / top_value)
        cv2.line(img, (x, top), (x, bottom), GRID, 1)
        _text(img, str(value), x, bottom + 20, 0.5, align="centre")
    cv2.line(img, (left, top), (left, bottom), INK, 1)
    cv2.line(img, (left, bottom), (right, bottom), INK, 1)
    _text(img, "crops", (left + right) // 2, bottom + 48, 0.6, align="centre")
    return ticks


def _legend(img, right: int, y: int, totals: dict[str, int]) -> None:
    x = right
    for split in reversed(SPLIT_NAMES):
        label = f"{split} ({totals[split]})"
        (w, _), _ = cv2.getTextSize(label, FONT, 0.55, 1)
        x -= w
        _text(img, label, x, y + 12)
        x -= 22
        cv2.rectangle(img, (x, y), (x + 14, y + 14), SPLIT_COLOURS[split], -1)
        x -= 18


def class_chart(counts: dict[str, dict[str, int]], classes, title: str = "Crops per class and split") -> Chart:
    """Chart of ``counts[split][class]`` for ``classes`` (rows, in order) and every split."""
    classes = list(classes)
    label_w = max([cv2.getTextSize(c, FONT, 0.6, 1)[0][0] for c in classes] + [40])
    left, right = 30 + label_w, WIDTH - RIGHT
    row_h = len(SPLIT_NAMES) * BAR_H + ROW_GAP
    bottom = TOP + max(1, len(classes)) * row_h
    img = np.full((bottom + BOTTOM, WIDTH, 3), 255, np.uint8)
    top_value = nice_ceiling(max([counts.get(s, {}).get(c, 0) for s in SPLIT_NAMES for c in classes] + [1]))
    ticks = _axis(img, left, right, TOP - 6, bottom, top_value)
    _text(img, title, 20, 32, 0.8, 2)
    _legend(img, right, 46, {s: sum(int(counts.get(s, {}).get(c, 0)) for c in classes) for s in SPLIT_NAMES})
    bars = []
    for row, cls in enumerate(classes):
        y = TOP + row * row_h + ROW_GAP // 2
        _text(img, cls, left - 10, y + (len(SPLIT_NAMES) * BAR_H) // 2 + 6, 0.6, align="right")
        for k, split in enumerate(SPLIT_NAMES):
            n = int(counts.get(split, {}).get(cls, 0))
            y0, y1 = y + k * BAR_H, y + (k + 1) * BAR_H - 2
            x1 = left + 1 + round((right - left - 1) * n / top_value)
            if n:
                cv2.rectangle(img, (left + 1, y0), (x1 - 1, y1 - 1), SPLIT_COLOURS[split], -1)
            _text(img, str(n), x1 + 6, y1 - 2, 0.45)
            bars.append(Bar(cls, split, n, left + 1, y0, x1, y1))
    return Chart(img, tuple(bars), ticks)
