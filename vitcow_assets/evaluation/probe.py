"""A linear probe on frozen embeddings, for every efficiency subset of a dataset: the
label-efficiency curve.

For each training subset (the dataset's nested subsets, sizes x repeats, and the whole
training split), a multinomial logistic regression (scikit-learn, L2, lbfgs) is fitted on
the subset's embeddings (standardised on the subset), once per regularisation strength
``cs``; the one with the best balanced accuracy on the dataset's validation split is kept
(ties: the smaller C, the stronger regularisation), and scored on the frozen test split
(``scorecard``). Without validation crops C is 1 (noted, not chosen).

Class weights follow the class mapping whatever the subset holds: class ``c`` of the
mapping weighs ``n / (P * n_c)`` (``n`` crops and ``P`` classes in the subset, ``n_c`` of
class ``c``), keyed by class index, so a subset that lacks a class gives the others their
own weights (never a neighbour's, as a weight vector over the classes present would), and
the model's scores are put back into the mapping's columns (a class the subset lacks scores
0). A subset of one class predicts that class (noted). A size the training split could not
fill (the dataset's ``subset_cap``) is probed at the size it has, and says so (``capped``).
Deterministic: rows in ``crop_id`` order, lbfgs, a fixed ``random_state``, and BLAS on one
thread (``threadpoolctl``), so the weights do not depend on the machine's core count (and a
small fit is not slowed by threads waiting on a busy machine: 4x measured here).

Pure: numpy arrays in, pyarrow tables out.
"""

import dataclasses
import warnings

import numpy as np
import pyarrow as pa
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from vitcow_assets.core.tables import field
from vitcow_assets.evaluation.provenance import Provenance, with_lineage
from vitcow_assets.evaluation.settings import UNCHOSEN_C, ProbeSettings
from vitcow_assets.evaluation.scorecard import CLASS_FIELDS, CONFUSION_FIELDS, SCORE_FIELDS, Scorecard, score

#: the probe's own seed: lbfgs draws nothing, but the estimator is given a fixed one
RANDOM_STATE = 0
FULL = "train"


SUBSET_FIELDS = [
    field("subset", pa.string(), "train_<size>_r<repeat> (an efficiency subset) or train (the whole training split)"),
    field("size", pa.int32(), "subset size asked for (null: the whole training split)", nullable=True),
    field("repeat", pa.int32(), "repeat of the subset draw (1: the whole training split)"),
]
RUN_FIELDS = SUBSET_FIELDS + [
    field("train_crops", pa.int64(), "crops the probe was fitted on"),
    field("capped", pa.bool_(), "the training split held fewer crops than the size asked (probed at train_crops)"),
    field("train_classes", pa.int32(), "classes among the training crops"),
    field("c", pa.float64(), "inverse regularisation strength kept", nullable=True),
    field("val_balanced_accuracy", pa.float64(), "balanced accuracy on the validation split at c (null: no validation crops)", nullable=True),
] + SCORE_FIELDS + [field("notes", pa.string(), "what the fit noticed (one class, no validation, not converged)")]
CURVE_FIELDS = [
    field("subset_size", pa.string(), "subset size asked for, or train (the whole training split)"),
    field("train_crops", pa.float64(), "mean crops fitted on"),
    field("repeats", pa.int32(), "subsets of this size"),
    *(field(f"{m}{s}", pa.float64(), f"{m} {w} over the repeats", nullable=(s == "_se"))
      for m in ("balanced_accuracy", "accuracy", "f1_macro") for s, w in (("", "mean"), ("_se", "standard error"))),
    field("chance_balanced_accuracy", pa.float64(), "balanced accuracy of a guess: 1 / classes present in the test split"),
]


@dataclasses.dataclass(frozen=True)
class Subset:
    """One training set of the curve: a dataset subset, or the whole training split."""

    name: str
    size: int | None
    repeat: int
    crop_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ProbeData:
    """The splits' embeddings and class indices, each split in ``crop_id`` order."""

    classes: tuple[str, ...]
    train_ids: tuple[str, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


@dataclasses.dataclass(frozen=True)
class ProbeRun:
    subset: Subset
    train_classes: int
    c: float | None
    val_balanced_accuracy: float | None
    scorecard: Scorecard
    notes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    runs: pa.Table
    classes: pa.Table
    confusion: pa.Table
    curve: pa.Table
    #: the run on the largest training set (the confusion matrix the UI draws)
    largest: ProbeRun


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Weight of each class of the mapping (index = class index): ``n / (P * n_c)`` for the
    ``P`` classes present, 0 for a class the labels ``y`` lack."""
    counts = np.bincount(np.asarray(y, np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def fit_probe(x: np.ndarray, y: np.ndarray, c: float, weights: np.ndarray, settings: ProbeSettings):
    """The standardiser and logistic regression fitted on ``(x, y)`` with ``weights``
    (``class_weights``) and inverse regularisation ``c``, BLAS on one thread."""
    model = LogisticRegression(
        C=c, class_weight={int(k): float(w) for k, w in enumerate(weights) if w > 0}, max_iter=settings.max_iter, random_state=RANDOM_STATE
    )
    pipeline = make_pipeline(StandardScaler(), model) if settings.standardise else make_pipeline(model)
    with threadpool_limits(limits=1):
        return pipeline.fit(x, y)


def aligned_scores(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """The model's class probabilities in the mapping's columns (0 where it never saw a class)."""
    out = np.zeros((x.shape[0], n_classes))
    out[:, model.classes_.astype(np.int64)] = model.predict_proba(x)
    return out


def _choose(data: ProbeData, x: np.ndarray, y: np.ndarray, settings: ProbeSettings) -> tuple[object, float, float | None, list[str]]:
    """(model, C, its validation balanced accuracy, notes): the best C on validation."""
    weights, notes, best = class_weights(y, len(data.classes)), [], None
    candidates = settings.cs if data.val_y.size else (UNCHOSEN_C,)
    if not data.val_y.size:
        notes.append(f"no validation crops: C={UNCHOSEN_C:g}, not chosen")
    for c in candidates:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = fit_probe(x, y, c, weights, settings)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            notes.append(f"C={c:g} did not converge in {settings.max_iter} iterations")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class predicted that validation lacks: expected
            val = float(balanced_accuracy_score(data.val_y, model.predict(data.val_x))) if data.val_y.size else None
        if best is None or (val is not None and val > best[2]):
            best = (model, c, val)
    return best[0], best[1], best[2], notes


def probe_subset(data: ProbeData, subset: Subset, settings: ProbeSettings) -> ProbeRun:
    """Fit on ``subset``, choose C on validation, score on test."""
    position = {c: i for i, c in enumerate(data.train_ids)}
    rows = np.array(sorted(position[c] for c in subset.crop_ids), dtype=np.int64)
    x, y, k = data.train_x[rows], data.train_y[rows], len(data.classes)
    present = np.unique(y)
    if present.size == 1:
        scores = np.zeros((data.test_y.size, k))
        scores[:, present[0]] = 1.0
        card = score(data.test_y, np.full(data.test_y.size, present[0]), data.classes, scores)
        return ProbeRun(subset, 1, None, None, card, (f"one class in the subset ({data.classes[present[0]]}): predicts it",))
    model, c, val, notes = _choose(data, x, y, settings)
    scores = aligned_scores(model, data.test_x, k)
    card = score(data.test_y, scores.argmax(axis=1), data.classes, scores)
    return ProbeRun(subset, int(present.size), c, val, card, tuple(notes))


def training_sets(train_ids, subsets: pa.Table | None, full: bool = True) -> list[Subset]:
    """The curve's training sets: each (size, repeat) of the dataset's subsets table
    (``repeat``, ``size``, ``crop_id``), by size then repeat, and with ``full`` the whole
    training split (``train_ids``) last."""
    out = []
    if subsets is not None and subsets.num_rows:
        groups: dict[tuple[int, int], list[str]] = {}
        for size, repeat, crop in zip(subsets["size"].to_pylist(), subsets["repeat"].to_pylist(), subsets["crop_id"].to_pylist()):
            groups.setdefault((int(size), int(repeat)), []).append(crop)
        out = [Subset(f"train_{s}_r{r}", s, r, tuple(sorted(ids))) for (s, r), ids in sorted(groups.items())]
    if full:
        out.append(Subset(FULL, None, 1, tuple(sorted(train_ids))))
    return out


def _run_row(run: ProbeRun) -> dict:
    s = run.subset
    return {
        "subset": s.name, "size": s.size, "repeat": s.repeat, "train_crops": len(s.crop_ids),
        "capped": s.size is not None and len(s.crop_ids) < s.size, "train_classes": run.train_classes, "c": run.c,
        "val_balanced_accuracy": run.val_balanced_accuracy, **run.scorecard.summary, "notes": "; ".join(run.notes),
    }


def _curve(runs: list[ProbeRun]) -> list[dict]:
    groups: dict[str, list[ProbeRun]] = {}
    for run in runs:
        groups.setdefault(FULL if run.subset.size is None else str(run.subset.size), []).append(run)
    rows = []
    for key, members in groups.items():
        row = {"subset_size": key, "train_crops": float(np.mean([len(r.subset.crop_ids) for r in members])), "repeats": len(members)}
        for metric in ("balanced_accuracy", "accuracy", "f1_macro"):
            values = np.array([r.scorecard.summary[metric] for r in members])
            row[metric] = float(values.mean())
            row[f"{metric}_se"] = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else None
        row["chance_balanced_accuracy"] = 1.0 / members[0].scorecard.summary["classes_present"]
        rows.append(row)
    return rows


def evaluate_probe(data: ProbeData, sets: list[Subset], settings: ProbeSettings, provenance: Provenance) -> ProbeResult:
    """Probe every training set of ``sets`` (``training_sets``); the runs, per-class scores,
    confusion matrices and the curve over sizes, each row with the lineage columns."""
    if not sets:
        raise ValueError("probe: no training set (no subsets in the dataset, and the whole training split left out)")
    if data.test_y.size == 0:
        raise ValueError("probe: the dataset's test split is empty: nothing to score on")
    with threadpool_limits(limits=1):
        runs = [probe_subset(data, s, settings) for s in sets]
    context = lambda run: {"subset": run.subset.name, "size": run.subset.size, "repeat": run.subset.repeat}  # noqa: E731
    classes = [{**context(r), **row} for r in runs for row in r.scorecard.per_class]
    confusion = [{**context(r), **row} for r in runs for row in r.scorecard.confusion_rows()]
    largest = max(runs, key=lambda r: (len(r.subset.crop_ids), r.subset.size is None, -r.subset.repeat))
    return ProbeResult(
        with_lineage([_run_row(r) for r in runs], RUN_FIELDS, provenance),
        with_lineage(classes, SUBSET_FIELDS + CLASS_FIELDS, provenance),
        with_lineage(confusion, SUBSET_FIELDS + CONFUSION_FIELDS, provenance),
        with_lineage(_curve(runs), CURVE_FIELDS, provenance),
        largest,
    )


def probe_data(splits: pa.Table, vectors: np.ndarray, classes) -> ProbeData:
    """The probe's inputs from a dataset's splits table (``crop_id``, ``class_index``,
    ``split``) and its embeddings (row-aligned), each split in ``crop_id`` order."""
    cols = splits.select(["crop_id", "class_index", "split"]).to_pydict()
    order = sorted(range(splits.num_rows), key=lambda i: cols["crop_id"][i])
    parts = {}
    for name in ("train", "val", "test"):
        rows = np.array([i for i in order if cols["split"][i] == name], dtype=np.int64)
        parts[name] = (rows, np.asarray(vectors, np.float32)[rows], np.array([cols["class_index"][i] for i in rows], np.int64))
    return ProbeData(
        tuple(classes), tuple(cols["crop_id"][i] for i in parts["train"][0]), parts["train"][1], parts["train"][2],
        parts["val"][1], parts["val"][2], parts["test"][1], parts["test"][2],
    )
