"""The evaluation's pictures, drawn with OpenCV (as ``datasets.chart`` draws the class
chart): the Hit@k curves with their chance lines, the probe's curve over training-set
sizes with its chance line, and a confusion matrix. PNG for the full size, a small JPEG
thumbnail as a Markdown data URI for the Dagster UI. The same values give the same bytes.

- ``hit_chart``: one panel per setting (cross-farm, within-farm) and average (micro,
  macro); Hit@k against k, one line per metric with its standard-error bars, and the
  exact chance level as a dashed grey line.
- ``curve_chart``: balanced accuracy, accuracy and macro F1 against the training crops
  (log scale where the sizes span 10x or more), standard-error bars, and the balanced
  accuracy of a guess (1 / classes) dashed.
- ``confusion_chart``: rows the true class, columns the predicted class; each cell shaded
  by its share of the row and holding its count (and share); a row without support is light grey.

No file I/O.
"""

import base64
import dataclasses
import math

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
INK, GRID, CHANCE = (40, 40, 40), (225, 225, 225), (150, 150, 150)
#: RGB colour per series (distinguishable for the common colour-vision deficiencies)
COLOURS = ((0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233))
PANEL_W, PANEL_H, MARGIN = 520, 360, 70
THUMB_WIDTH = 480


@dataclasses.dataclass(frozen=True)
class Picture:
    #: (H, W, 3) uint8 RGB
    image: np.ndarray

    def png(self) -> bytes:
        ok, data = cv2.imencode(".png", cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR))
        return data.tobytes()

    def thumbnail_jpeg(self, width: int = THUMB_WIDTH) -> bytes:
        h, w = self.image.shape[:2]
        small = cv2.resize(self.image, (width, max(1, h * width // w)), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        return data.tobytes()

    def thumbnail_markdown(self, alt: str) -> str:
        """Markdown image with the thumbnail as a data URI (what the Dagster UI renders)."""
        return f"![{alt}](data:image/jpeg;base64,{base64.b64encode(self.thumbnail_jpeg()).decode()})"


def text(img, label: str, x: int, y: int, scale: float = 0.5, thickness: int = 1, align: str = "left", colour=INK) -> None:
    (w, _), _ = cv2.getTextSize(label, FONT, scale, thickness)
    x = x - w if align == "right" else x - w // 2 if align == "centre" else x
    cv2.putText(img, label, (int(x), int(y)), FONT, scale, colour, thickness, cv2.LINE_AA)


def dashed(img, p0, p1, colour, dash: int = 8, thickness: int = 2) -> None:
    (x0, y0), (x1, y1) = p0, p1
    length = max(1.0, math.hypot(x1 - x0, y1 - y0))
    for s in np.arange(0, length, 2 * dash):
        a, b = s / length, min(s + dash, length) / length
        cv2.line(img, (round(x0 + a * (x1 - x0)), round(y0 + a * (y1 - y0))), (round(x0 + b * (x1 - x0)), round(y0 + b * (y1 - y0))), colour, thickness, cv2.LINE_AA)


@dataclasses.dataclass(frozen=True)
class Axes:
    """A panel's plotting rectangle and the value range it maps (x linear or log)."""

    left: int
    top: int
    right: int
    bottom: int
    x_range: tuple[float, float]
    log_x: bool = False

    def px(self, x: float) -> int:
        lo, hi = self.x_range
        if hi <= lo:  # one value (say, a curve of the full training set alone): the middle
            return (self.left + self.right) // 2
        f = (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo)) if self.log_x else (x - lo) / (hi - lo)
        return round(self.left + f * (self.right - self.left))

    def py(self, y: float) -> int:
        return round(self.bottom - min(max(y, 0.0), 1.0) * (self.bottom - self.top))


def _frame(img, axes: Axes, title: str, x_label: str, y_label: str, x_ticks) -> None:
    for k in range(6):
        y = axes.py(k / 5)
        cv2.line(img, (axes.left, y), (axes.right, y), GRID, 1)
        text(img, f"{k / 5:.1f}", axes.left - 8, y + 5, 0.45, align="right")
    for value, label in x_ticks:
        x = axes.px(value)
        cv2.line(img, (x, axes.bottom), (x, axes.bottom + 5), INK, 1)
        text(img, label, x, axes.bottom + 20, 0.45, align="centre")
    cv2.rectangle(img, (axes.left, axes.top), (axes.right, axes.bottom), INK, 1)
    text(img, title, axes.left, axes.top - 12, 0.55, 1)
    text(img, x_label, (axes.left + axes.right) // 2, axes.bottom + 42, 0.5, align="centre")
    text(img, y_label, axes.left - 55, axes.top - 12, 0.45)


def _series(img, axes: Axes, xs, ys, ses, colour) -> None:
    points = [(axes.px(x), axes.py(y)) for x, y in zip(xs, ys)]
    for (x, y), value, se in zip(points, ys, ses):
        if se:
            cv2.line(img, (x, axes.py(value - se)), (x, axes.py(value + se)), colour, 1, cv2.LINE_AA)
        cv2.circle(img, (x, y), 4, colour, -1, cv2.LINE_AA)
    cv2.polylines(img, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)


def _row_legend(img, right: int, y: int, entries: list[tuple[str, tuple, bool]]) -> None:
    """A legend on one line, ending at ``right``."""
    widths = [cv2.getTextSize(label, FONT, 0.5, 1)[0][0] + 50 for label, _, _ in entries]
    x = right - sum(widths)
    for (label, colour, is_dashed), width in zip(entries, widths):
        if is_dashed:
            dashed(img, (x, y - 5), (x + 30, y - 5), colour, 6)
        else:
            cv2.line(img, (x, y - 5), (x + 30, y - 5), colour, 3, cv2.LINE_AA)
        text(img, label, x + 36, y, 0.5)
        x += width


def _hit_panel(img, axes: Axes, rows: list[dict], average: str, metrics: list[str]) -> None:
    for m, metric in enumerate(metrics):
        mine = sorted((r for r in rows if r["metric"] == metric), key=lambda r: r["k"])
        if mine:
            _series(img, axes, [r["k"] for r in mine], [r[f"hit_{average}"] for r in mine], [r[f"hit_{average}_se"] for r in mine], COLOURS[m % len(COLOURS)])
    chance = sorted((r for r in rows if r["metric"] == rows[0]["metric"]), key=lambda r: r["k"])
    points = [(axes.px(r["k"]), axes.py(r[f"chance_{average}"])) for r in chance]
    for a, b in zip(points, points[1:]):
        dashed(img, a, b, CHANCE)


def _panel_title(setting: str, average: str, rows: list[dict]) -> str:
    repeats = max((r["repeats"] for r in rows), default=1)
    where = f" (mean of {repeats} track splits)" if setting == "within_farm" else " (test split vs other farms)"
    return f"{setting.replace('_', '-')}{where}, {average}"


def hit_chart(rows: list[dict], title: str = "Retrieval Hit@k (bars: standard error; dashed: exact chance)") -> Picture:
    """The Hit@k panels of the retrieval table's ``rows`` (dicts of ``RETRIEVAL_FIELDS``)."""
    settings = [s for s in ("cross_farm", "within_farm") if any(r["setting"] == s for r in rows)] or ["cross_farm"]
    ks = sorted({r["k"] for r in rows}) or [1]
    metrics = sorted({r["metric"] for r in rows})
    width = len(settings) * PANEL_W + 20
    img = np.full((80 + 2 * (PANEL_H + 20), width, 3), 255, np.uint8)
    text(img, title, 20, 32, 0.7, 2)
    _row_legend(img, width - 30, 64, [(m, COLOURS[i % len(COLOURS)], False) for i, m in enumerate(metrics)] + [("chance", CHANCE, True)])
    for col, setting in enumerate(settings):
        mine = [r for r in rows if r["setting"] == setting]
        for row, average in enumerate(("micro", "macro")):
            left, top = col * PANEL_W + MARGIN + 10, 80 + row * (PANEL_H + 20) + 30
            axes = Axes(left, top, left + PANEL_W - MARGIN - 30, top + PANEL_H - 90, (min(ks), max(ks)))
            _frame(img, axes, _panel_title(setting, average, mine), "k", "Hit@k", [(k, str(k)) for k in ks])
            if mine:
                _hit_panel(img, axes, mine, average, metrics)
    return Picture(img)


def curve_chart(curve: list[dict], title: str = "Linear probe: test scores over training crops") -> Picture:
    """The probe's curve rows (dicts of ``probe.CURVE_FIELDS``) against ``train_crops``."""
    rows = sorted(curve, key=lambda r: r["train_crops"])
    xs = [max(1.0, r["train_crops"]) for r in rows] or [1.0]
    log_x = max(xs) / min(xs) >= 10
    width = 2 * PANEL_W
    img = np.full((PANEL_H + 130, width, 3), 255, np.uint8)
    text(img, title, 20, 32, 0.7, 2)
    metrics = ("balanced_accuracy", "accuracy", "f1_macro")
    _row_legend(img, width - 30, 64, [(m.replace("_", " "), COLOURS[i], False) for i, m in enumerate(metrics)] + [("chance (balanced accuracy)", CHANCE, True)])
    axes = Axes(MARGIN + 20, 110, width - 50, PANEL_H + 50, (min(xs), max(xs)), log_x)
    ticks = [(x, f"{x:g}") for x in sorted(set(xs))]
    _frame(img, axes, "mean over the repeats of each size; bars: standard error", "training crops" + (" (log scale)" if log_x else ""), "score", ticks)
    if rows:
        level = axes.py(rows[0]["chance_balanced_accuracy"])
        dashed(img, (axes.left, level), (axes.right, level), CHANCE)
        for i, metric in enumerate(metrics):
            _series(img, axes, xs, [r[metric] for r in rows], [r[f"{metric}_se"] for r in rows], COLOURS[i])
    return Picture(img)


def _cell_colour(share: float) -> tuple[int, int, int]:
    """White (0) to the first series colour (1)."""
    blue = np.array(COLOURS[0], float)
    return tuple(int(round(255 + (c - 255) * share)) for c in blue)


def confusion_chart(confusion: np.ndarray, classes, title: str = "Confusion matrix (rows: true class; share of the row)") -> Picture:
    """The ``(K, K)`` count matrix drawn as shaded cells with counts and row shares."""
    k = len(classes)
    names = [f"{i} {c}" for i, c in enumerate(classes)]
    label_w = max([cv2.getTextSize(n, FONT, 0.5, 1)[0][0] for n in names] + [60]) + 30
    cell = max(44, min(80, 640 // max(k, 1)))
    left, top = label_w, 110
    img = np.full((top + k * cell + 60, max(left + k * cell + 40, 560), 3), 255, np.uint8)
    text(img, title, 20, 32, 0.6, 2)
    text(img, "predicted class (index)", left + k * cell // 2, top - 40, 0.5, align="centre")
    support = confusion.sum(axis=1)
    for t in range(k):
        text(img, names[t], left - 10, top + t * cell + cell // 2 + 5, 0.5, align="right")
        text(img, str(t), left + t * cell + cell // 2, top - 12, 0.5, align="centre")
        for p in range(k):
            x0, y0 = left + p * cell, top + t * cell
            share = confusion[t, p] / support[t] if support[t] else None
            colour = _cell_colour(share) if share is not None else (235, 235, 235)
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), colour, -1)
            ink = (255, 255, 255) if share is not None and share > 0.55 else INK
            text(img, str(int(confusion[t, p])), x0 + cell // 2, y0 + cell // 2, 0.45, align="centre", colour=ink)
            if share is not None:
                text(img, f"{share:.2f}", x0 + cell // 2, y0 + cell // 2 + 16, 0.38, align="centre", colour=ink)
    cv2.rectangle(img, (left, top), (left + k * cell, top + k * cell), INK, 1)
    text(img, "true class (index name)", 20, top + k * cell + 35, 0.5)
    return Picture(img)
