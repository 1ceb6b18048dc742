"""The scorecard of a classifier on a dataset's test split: accuracy, balanced accuracy,
precision, recall and F1 (macro over the classes present in the test split, and F1 micro),
macro mAP over the classes present (when per-class scores are given), per-class precision,
recall, F1, support and average precision, and the raw and normalised confusion matrices.

Classes are the class mapping's (``class_mapping.txt``: index = line), whatever the
predictions or the test split hold: a class absent from the test split has support 0, no
recall and no AP, and is left out of the macro averages; a class never predicted has no
precision of its own (null) and counts 0 in the macro precision. Normalised confusion rows divide by the true class's
support (no row where it is 0). scikit-learn computes every metric.

Pure: numpy arrays in, dicts and pyarrow rows out.
"""

import dataclasses
import math
import warnings

import numpy as np
import pyarrow as pa
from sklearn.metrics import (
    accuracy_score, average_precision_score, balanced_accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
)

from vitcow_assets.core.tables import field

SCORE_FIELDS = [
    field("test_crops", pa.int64(), "crops of the test split scored"),
    field("accuracy", pa.float64(), "share of test crops predicted right"),
    field("balanced_accuracy", pa.float64(), "mean recall over the classes present in the test split"),
    field("precision_macro", pa.float64(), "mean precision over the classes present in the test split"),
    field("recall_macro", pa.float64(), "mean recall over the classes present in the test split"),
    field("f1_macro", pa.float64(), "mean F1 over the classes present in the test split"),
    field("f1_micro", pa.float64(), "F1 over every prediction (equals accuracy for one label per crop)"),
    field("map_macro", pa.float64(), "mean average precision (one class against the rest) over the classes present; null without scores", nullable=True),
    field("classes_present", pa.int32(), "classes present in the test split (the macro averages' classes)"),
]
CLASS_FIELDS = [
    field("class_index", pa.int32(), "class index (line of class_mapping.txt)"),
    field("class_name", pa.string(), "class name"),
    field("support", pa.int64(), "test crops of the class"),
    field("predicted", pa.int64(), "test crops predicted as the class"),
    field("precision", pa.float64(), "precision (null: never predicted)", nullable=True),
    field("recall", pa.float64(), "recall (null: absent from the test split)", nullable=True),
    field("f1", pa.float64(), "F1 (null: absent from the test split and never predicted)", nullable=True),
    field("average_precision", pa.float64(), "average precision of the class's score (null: absent, or no scores)", nullable=True),
]
CONFUSION_FIELDS = [
    field("true_index", pa.int32(), "true class index"),
    field("pred_index", pa.int32(), "predicted class index"),
    field("count", pa.int64(), "test crops of true_index predicted as pred_index"),
    field("share", pa.float64(), "count / the true class's support (null: no support)", nullable=True),
]


def _value(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclasses.dataclass(frozen=True)
class Scorecard:
    classes: tuple[str, ...]
    summary: dict
    per_class: list[dict]
    #: (K, K) int64: rows true class, columns predicted class
    confusion: np.ndarray

    @property
    def normalised(self) -> np.ndarray:
        """The confusion matrix with each row divided by its support (NaN rows: no support)."""
        support = self.confusion.sum(axis=1, keepdims=True).astype(np.float64)
        return np.divide(self.confusion, support, out=np.full(self.confusion.shape, np.nan), where=support > 0)

    def confusion_rows(self) -> list[dict]:
        share = self.normalised
        k = len(self.classes)
        return [{"true_index": t, "pred_index": p, "count": int(self.confusion[t, p]), "share": _value(share[t, p])} for t in range(k) for p in range(k)]


def _checked(y_true, y_pred, scores, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    k = len(classes)
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(f"scorecard: y_true {y_true.shape} and y_pred {y_pred.shape} must be the same non-empty 1-D shape")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= k:
            raise ValueError(f"scorecard: {name} holds a class index outside 0..{k - 1}")
    if scores is not None:
        scores = np.asarray(scores, np.float64)
        if scores.shape != (y_true.size, k):
            raise ValueError(f"scorecard: scores {scores.shape} must be (crops, classes) = ({y_true.size}, {k})")
    return y_true, y_pred, scores, k


def _per_class(y_true, y_pred, scores, classes) -> list[dict]:
    k = len(classes)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=list(range(k)), zero_division=np.nan)
    predicted = np.bincount(y_pred, minlength=k)
    rows = []
    for c in range(k):
        ap = average_precision_score(y_true == c, scores[:, c]) if scores is not None and support[c] else None
        rows.append({
            "class_index": c, "class_name": classes[c], "support": int(support[c]), "predicted": int(predicted[c]),
            "precision": _value(precision[c]), "recall": _value(recall[c]), "f1": _value(f1[c]), "average_precision": _value(ap),
        })
    return rows


def score(y_true, y_pred, classes, scores=None) -> Scorecard:
    """The scorecard of predictions ``y_pred`` (class indices) against ``y_true``, with
    ``scores`` ((crops, classes), higher: more likely) for the average precisions."""
    classes = tuple(classes)
    y_true, y_pred, scores, k = _checked(y_true, y_pred, scores, classes)
    present = sorted(set(y_true.tolist()))
    per_class = _per_class(y_true, y_pred, scores, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": expected, and handled by ``present``
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro", zero_division=0)
        summary = {
            "test_crops": int(y_true.size), "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "precision_macro": float(p), "recall_macro": float(r), "f1_macro": float(f),
            "f1_micro": float(f1_score(y_true, y_pred, labels=list(range(k)), average="micro", zero_division=0)),
            "map_macro": float(np.mean([per_class[c]["average_precision"] for c in present])) if scores is not None else None,
            "classes_present": len(present),
        }
    return Scorecard(classes, summary, per_class, confusion_matrix(y_true, y_pred, labels=list(range(k))).astype(np.int64))
