"""A fine-tuned model's predictions matched to a dataset's test split, row by row, or
refused with one line per bad row (nothing is scored then).

Accepted forms (CSV, header row; columns in any order, extra columns ignored):

- **per crop, by path** (the seed's ``predictions_full.csv``): ``video_path,y_true,y_pred,
  score_class_0..score_class_{K-1}``; ``video_path`` as the test list names the crop
  (absolute, or relative to the export's root) or the crop's absolute path;
- **per crop, by id**: ``crop_id`` instead of ``video_path``;
- **per frame** (image classifiers, ``frames``): ``image_path`` (a frame export's file, named
  ``<crop_id>_f<frame>.jpg``) or ``crop_id,frame_index``; the frames of each crop are
  aggregated first (``aggregate_frames``: majority vote or mean score).

``y_pred`` and ``y_true`` are class indices (lines of ``class_mapping.txt``) or class names;
``y_true`` may be left out (then nothing is checked against it); ``y_pred`` may be left out
where every score column is there (the best score is the prediction). Refused, each with
its line: a row matching no crop of the test split, a crop predicted twice, a ``y_true``
that disagrees with the split's label, an unknown class, a score that is not a finite
number; and, in one line, test crops without a prediction.

Pure: pyarrow tables (every column text) in, arrays out.
"""

import dataclasses
import math
import posixpath
import re

import numpy as np
import pyarrow as pa

SCORE_PREFIX = "score_class_"
KEY_COLUMNS = ("crop_id", "video_path")
FRAME_NAME = re.compile(r"^(?P<crop>[0-9a-f]+)_f(?P<frame>\d+)\.[A-Za-z0-9]+$")
AGGREGATIONS = ("vote", "mean")
#: crops named in the "no prediction" line
SHOWN = 3


class PredictionsError(ValueError):
    """Predictions that cannot be scored: ``lines`` holds one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


@dataclasses.dataclass(frozen=True)
class Matched:
    """The predictions of every test crop, in the test split's ``crop_id`` order."""

    crop_ids: tuple[str, ...]
    y_true: np.ndarray
    y_pred: np.ndarray
    #: (crops, classes) float64, or None where the file gave no scores
    scores: np.ndarray | None


def _class(text, classes: tuple[str, ...]) -> int | None:
    """A class index from an index or a class name; None when neither."""
    if text is None:
        return None
    value = str(text).strip()
    if value in classes:
        return classes.index(value)
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() and 0 <= number < len(classes) else None


def score_columns(table: pa.Table, n_classes: int) -> list[str] | None:
    """The ``score_class_<i>`` columns in class order; None where there are none; a
    ``PredictionsError`` where they are not exactly one per class."""
    found = sorted((c for c in table.column_names if c.startswith(SCORE_PREFIX)), key=lambda c: (len(c), c))
    if not found:
        return None
    wanted = [f"{SCORE_PREFIX}{i}" for i in range(n_classes)]
    if found != wanted:
        raise PredictionsError([f"score columns {', '.join(found)} are not one per class of the {n_classes} in class_mapping.txt ({wanted[0]}..{wanted[-1]})"])
    return wanted


def _scores(row: dict, columns: list[str] | None) -> tuple[list[float] | None, str | None]:
    if columns is None:
        return None, None
    try:
        values = [float(row[c]) for c in columns]
    except (TypeError, ValueError):
        return None, "a score is not a number"
    return (values, None) if all(math.isfinite(v) for v in values) else (None, "a score is not finite")


def _lookup(test: pa.Table, root: str | None) -> tuple[dict[str, int], dict[str, int]]:
    """(crop_id -> test position, path -> test position), paths absolute and as listed."""
    ids = {c: i for i, c in enumerate(test["crop_id"].to_pylist())}
    paths = {}
    for i, path in enumerate(test["crop_path"].to_pylist()):
        paths[posixpath.normpath(path)] = i
        if root:
            paths[posixpath.relpath(path, root)] = i
    return ids, paths


def _position(row: dict, key: str, ids: dict, paths: dict) -> int | None:
    value = (row.get(key) or "").strip()
    if key == "crop_id":
        return ids.get(value)
    return paths.get(posixpath.normpath(value)) if value else None


def _check_row(row: dict, true_class: int, classes, columns) -> tuple[int | None, list[float] | None, str | None]:
    """(y_pred, scores, None) of a matched row, or (None, None, why it is refused)."""
    scores, bad = _scores(row, columns)
    if bad:
        return None, None, bad
    if "y_true" in row:
        given = _class(row["y_true"], classes)
        if given is None:
            return None, None, f"y_true {row['y_true']!r} is not a class of class_mapping.txt"
        if given != true_class:
            return None, None, f"y_true {given} ({classes[given]}) disagrees with the split's label {true_class} ({classes[true_class]})"
    if "y_pred" in row:
        pred = _class(row["y_pred"], classes)
        return (pred, scores, None) if pred is not None else (None, None, f"y_pred {row['y_pred']!r} is not a class of class_mapping.txt")
    return int(np.argmax(scores)), scores, None


def _key(table: pa.Table) -> str:
    found = [k for k in KEY_COLUMNS if k in table.column_names]
    if not found:
        raise PredictionsError([f"no crop_id or video_path column (columns: {', '.join(table.column_names)})"])
    if "y_pred" not in table.column_names and SCORE_PREFIX + "0" not in table.column_names:
        raise PredictionsError(["no y_pred column and no score_class_<i> columns: nothing predicted"])
    return found[0]


def match_predictions(table: pa.Table, test: pa.Table, classes, root: str | None = None, lines=None) -> Matched:
    """Each row of ``table`` matched to a crop of ``test`` (``crop_id``, ``crop_path``,
    ``class_index``), or a ``PredictionsError`` with one line per refusal. ``lines``: the
    file line of each row (default: row + 2, under a header)."""
    classes, test = tuple(classes), test.sort_by("crop_id")
    key, columns = _key(table), score_columns(table, len(classes))
    ids, paths = _lookup(test, root)
    truth = test["class_index"].to_pylist()
    lines = list(lines) if lines is not None else [i + 2 for i in range(table.num_rows)]
    preds: dict[int, tuple[int, list | None, int]] = {}
    refused, seen = [], set()
    for row, line in zip(table.to_pylist(), lines):
        where = f"line {line} ({key} {row.get(key)!r})"
        at = _position(row, key, ids, paths)
        if at is None:
            refused.append(f"{where}: matches no crop of the test split")
            continue
        if at in seen:
            refused.append(f"{where}: the crop is predicted twice")
            continue
        seen.add(at)
        pred, scores, why = _check_row(row, truth[at], classes, columns)
        if why:
            refused.append(f"{where}: {why}")
        else:
            preds[at] = (pred, scores, line)
    missing = [test["crop_path"][i].as_py() for i in range(test.num_rows) if i not in seen]
    if missing:
        refused.append(f"{len(missing)} of the {test.num_rows} test crops have no prediction ({', '.join(missing[:SHOWN])}{' ...' if len(missing) > SHOWN else ''})")
    if refused:
        raise PredictionsError(refused)
    order = range(test.num_rows)
    scores = np.array([preds[i][1] for i in order], np.float64) if columns else None
    return Matched(tuple(test["crop_id"].to_pylist()), np.array(truth, np.int64), np.array([preds[i][0] for i in order], np.int64), scores)


def _frame_keys(table: pa.Table) -> tuple[list[tuple[str | None, int | None]], str]:
    """(crop_id, frame) of each row, from ``image_path`` or ``crop_id`` + ``frame_index``."""
    if "image_path" in table.column_names:
        keys = []
        for path in table["image_path"].to_pylist():
            found = FRAME_NAME.match(posixpath.basename((path or "").replace("\\", "/")))
            keys.append((found["crop"], int(found["frame"])) if found else (None, None))
        return keys, "image_path"
    if "crop_id" in table.column_names and "frame_index" in table.column_names:
        frames = [int(f) if f is not None and str(f).strip().isdigit() else None for f in table["frame_index"].to_pylist()]
        return list(zip(table["crop_id"].to_pylist(), frames)), "crop_id"
    raise PredictionsError([f"frame predictions need image_path, or crop_id and frame_index (columns: {', '.join(table.column_names)})"])


def _vote(preds: list[int], scores: list[list[float]] | None, n_classes: int) -> tuple[int, list[float]]:
    counts = np.bincount(preds, minlength=n_classes)
    tied = np.flatnonzero(counts == counts.max())
    mean = np.mean(scores, axis=0) if scores else None
    winner = int(tied[np.argmax(mean[tied])]) if mean is not None else int(tied[0])
    return winner, list(mean) if mean is not None else list(counts / counts.sum())


def _frame_rows(table: pa.Table, classes, columns) -> tuple[dict[str, dict], list[str]]:
    """Per crop: its frames' predictions, scores, y_true values and first line; refusals."""
    keys, key = _frame_keys(table)
    crops: dict[str, dict] = {}
    refused, seen = [], set()
    for i, (row, (crop, frame)) in enumerate(zip(table.to_pylist(), keys)):
        where = f"line {i + 2} ({key} {row.get(key)!r})"
        if crop is None or frame is None:
            refused.append(f"{where}: names no crop frame (<crop_id>_f<frame>.jpg, or crop_id and frame_index)")
            continue
        if (crop, frame) in seen:
            refused.append(f"{where}: frame {frame} of crop {crop} is predicted twice")
            continue
        seen.add((crop, frame))
        scores, bad = _scores(row, columns)
        pred = _class(row["y_pred"], classes) if "y_pred" in row else (int(np.argmax(scores)) if scores else None)
        if bad or pred is None:
            why = bad or f"y_pred {row.get('y_pred')!r} is not a class of class_mapping.txt"
            refused.append(f"{where}: {why}")
            continue
        entry = crops.setdefault(crop, {"preds": [], "scores": [], "y_true": set(), "line": i + 2})
        entry["preds"].append(pred)
        if scores is not None:
            entry["scores"].append(scores)
        if "y_true" in row:
            entry["y_true"].add(row["y_true"])
    return crops, refused


def aggregate_frames(table: pa.Table, classes, how: str = "vote") -> tuple[pa.Table, list[int]]:
    """Per-frame predictions as per-crop rows (``crop_id``, ``y_pred``, ``y_true`` where
    given, ``score_class_<i>``: the frames' mean score, or their vote shares without scores)
    and each crop's first line; ``vote``: the most predicted class (ties: the best mean
    score, else the lowest index); ``mean``: the best mean score (needs scores)."""
    classes = tuple(classes)
    if how not in AGGREGATIONS:
        raise PredictionsError([f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {how!r}"])
    columns = score_columns(table, len(classes))
    if how == "mean" and columns is None:
        raise PredictionsError(["mean aggregation needs the score_class_<i> columns"])
    crops, refused = _frame_rows(table, classes, columns)
    rows, lines = [], []
    for crop in sorted(crops):
        entry = crops[crop]
        if len(entry["y_true"]) > 1:
            refused.append(f"line {entry['line']} (crop {crop}): its frames disagree on y_true ({', '.join(sorted(map(str, entry['y_true'])))})")
            continue
        scores = entry["scores"] or None
        pred, agg = _vote(entry["preds"], scores, len(classes)) if how == "vote" else (int(np.argmax(np.mean(scores, axis=0))), list(np.mean(scores, axis=0)))
        row = {"crop_id": crop, "y_pred": str(pred), **{f"{SCORE_PREFIX}{c}": repr(float(v)) for c, v in enumerate(agg)}}
        if entry["y_true"]:
            row["y_true"] = str(next(iter(entry["y_true"])))
        rows.append(row)
        lines.append(entry["line"])
    if refused:
        raise PredictionsError(refused)
    names = ["crop_id", "y_pred"] + (["y_true"] if any("y_true" in r for r in rows) else []) + [f"{SCORE_PREFIX}{c}" for c in range(len(classes))]
    return pa.Table.from_pylist(rows, schema=pa.schema([(n, pa.string()) for n in names])), lines
