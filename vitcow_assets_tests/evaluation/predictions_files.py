"""Predictions files as the seed's scripts and image classifiers write them, made from a
dataset's test split: right for most crops, wrong (and scored accordingly) for a known few."""

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa


def predicted(test: pa.Table, n_classes: int, wrong_every: int = 5, seed: int = 0) -> list[dict]:
    """Per test crop (by crop_id): y_true, y_pred (every ``wrong_every``-th crop wrong) and
    scores peaking at y_pred."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, r in enumerate(sorted(test.to_pylist(), key=lambda r: r["crop_id"])):
        pred = (r["class_index"] + 1) % n_classes if i % wrong_every == 0 else r["class_index"]
        scores = rng.random(n_classes) * 0.2
        scores[pred] += 1.0
        rows.append({"crop_id": r["crop_id"], "crop_path": r["crop_path"], "y_true": r["class_index"], "y_pred": pred, "scores": list(scores / scores.sum())})
    return rows


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def seed_form(path: Path, rows: list[dict], n_classes: int, key: str = "video_path") -> Path:
    """``video_path,y_true,y_pred,score_class_0..N`` (the seed's ``predictions_full.csv``),
    or keyed by ``crop_id``."""
    header = [key, "y_true", "y_pred"] + [f"score_class_{c}" for c in range(n_classes)]
    value = (lambda r: r["crop_path"]) if key == "video_path" else (lambda r: r["crop_id"])
    return write_csv(path, header, [[value(r), r["y_true"], r["y_pred"], *[f"{s:.6f}" for s in r["scores"]]] for r in rows])
