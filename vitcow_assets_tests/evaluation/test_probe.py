"""The linear probe: separable embeddings are learnt (balanced accuracy >= 0.95 from the
smallest subset), shuffled labels stay near chance, a subset lacking a class keeps every
other class's own weight and scores in the mapping's columns (the seed's weight vector over
the classes present shifted them), a size the pool could not fill says so (the seed
skipped it silently), validation chooses C, and the same inputs give the same tables."""

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import balanced_accuracy_score

from vitcow_assets.evaluation.inputs import read_dataset
from vitcow_assets.evaluation.probe import (
    ProbeData, Subset, aligned_scores, class_weights, evaluate_probe, fit_probe, probe_data, probe_subset, training_sets,
)
from vitcow_assets.evaluation.settings import ProbeSettings
from vitcow_assets.evaluation.provenance import Provenance
from vitcow_assets_tests.evaluation.synthetic_site import vectors

PROVENANCE = Provenance("f" * 16, "0.1.0+gtest", "a" * 64)
FAST = ProbeSettings(cs=(0.1, 1.0))


def _data(site, kind, seed=0) -> tuple:
    export = read_dataset(site["export"])
    catalog = site["catalog"]
    position = {c: i for i, c in enumerate(catalog["crop_id"].to_pylist())}
    matrix = vectors(catalog, site["built"].splits.table, kind, seed)[[position[c] for c in export.splits["crop_id"].to_pylist()]]
    return export, probe_data(export.splits, matrix, export.classes)


def test_separable_embeddings_reach_095_balanced_accuracy_at_every_size(site):
    export, data = _data(site, "separable")
    result = evaluate_probe(data, training_sets(data.train_ids, export.subsets), FAST, PROVENANCE)
    runs = result.runs.to_pylist()
    assert {r["subset"] for r in runs} == {"train_30_r1", "train_30_r2", "train_90_r1", "train_90_r2", "train_100000_r1", "train_100000_r2", "train"}
    for row in runs:
        assert row["balanced_accuracy"] >= 0.95, row
        assert row["c"] in FAST.cs and row["val_balanced_accuracy"] is not None
        assert row["dataset_fingerprint"] == "f" * 16 and row["checkpoint_sha256"] == "a" * 64
        assert row["test_crops"] == export.split("test").num_rows
    curve = {r["subset_size"]: r for r in result.curve.to_pylist()}
    assert curve["30"]["repeats"] == 2 and curve["30"]["train_crops"] == 30.0
    assert curve["train"]["chance_balanced_accuracy"] == pytest.approx(1 / runs[0]["classes_present"])
    assert result.confusion.num_rows == len(runs) * len(export.classes) ** 2


def test_shuffled_labels_stay_near_chance(site):
    _, data = _data(site, "separable")
    shuffled = np.random.default_rng(5).permutation(data.train_y)
    data = ProbeData(data.classes, data.train_ids, data.train_x, shuffled, data.val_x, data.val_y, data.test_x, data.test_y)
    run = probe_subset(data, Subset("train", None, 1, data.train_ids), FAST)
    chance = 1 / run.scorecard.summary["classes_present"]
    assert run.scorecard.summary["balanced_accuracy"] < chance + 0.15


def test_a_size_the_training_split_could_not_fill_is_probed_capped_and_says_so(site):
    export, data = _data(site, "separable")
    result = evaluate_probe(data, training_sets(data.train_ids, export.subsets, full=False), FAST, PROVENANCE)
    capped = [r for r in result.runs.to_pylist() if r["size"] == 100000]
    assert len(capped) == 2 and all(r["capped"] and r["train_crops"] == len(data.train_ids) for r in capped)
    assert not any(r["capped"] for r in result.runs.to_pylist() if r["size"] != 100000)


def _three_classes(missing: int | None = None):
    """Three separable classes; the training set without class ``missing``."""
    rng = np.random.default_rng(2)
    make = lambda n: (np.repeat(np.eye(3), n, axis=0) * 5 + rng.normal(0, 0.3, (3 * n, 3)), np.repeat(np.arange(3), n))  # noqa: E731
    (x, y), (vx, vy), (tx, ty) = make(20), make(5), make(10)
    keep = y != missing
    x, y = x[keep], y[keep]
    return ProbeData(("a", "b", "c"), tuple(f"id{i:03d}" for i in range(len(y))), x.astype(np.float32), y, vx, vy, tx, ty)


def test_class_weights_follow_the_mapping_whatever_the_subset_holds():
    y = np.array([0, 0, 0, 0, 2, 2])  # class 1 absent
    weights = class_weights(y, 3)
    assert weights.tolist() == [6 / (2 * 4), 0.0, 6 / (2 * 2)]
    # the seed's way: one weight per class present, used as if indexed by class
    present = np.unique(y)
    seed_vector = len(y) / (len(present) * np.bincount(y)[present])
    assert seed_vector[1] != weights[1]  # class 2's weight landed on class 1


def test_a_subset_lacking_a_class_still_scores_in_the_mappings_columns():
    data = _three_classes(missing=1)
    run = probe_subset(data, Subset("train_x_r1", 40, 1, data.train_ids), FAST)
    per_class = {r["class_index"]: r for r in run.scorecard.per_class}
    assert per_class[0]["recall"] == 1.0 and per_class[2]["recall"] == 1.0  # not shifted onto class 1
    assert per_class[1]["recall"] == 0.0 and per_class[1]["predicted"] == 0
    assert run.train_classes == 2 and run.scorecard.confusion[2, 2] == 10
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(data.train_x, data.train_y)
    scores = aligned_scores(model, data.test_x, 3)
    assert scores.shape == (30, 3) and np.all(scores[:, 1] == 0) and np.allclose(scores.sum(1), 1)


def test_one_class_subset_predicts_it_and_says_so():
    data = _three_classes()
    only = tuple(i for i, c in zip(data.train_ids, data.train_y) if c == 2)
    run = probe_subset(data, Subset("train_20_r1", 20, 1, only), FAST)
    assert run.c is None and "one class" in run.notes[0]
    assert run.scorecard.summary["balanced_accuracy"] == pytest.approx(1 / 3)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_validation_chooses_c_and_without_it_c_is_not_chosen(site):
    """The C kept has the best validation balanced accuracy of those tried (ties: the
    smaller); without validation crops C is 1, said so."""
    _, data = _data(site, "random")
    settings = ProbeSettings(cs=(0.001, 0.1, 10.0))
    run = probe_subset(data, Subset("train", None, 1, data.train_ids), settings)
    weights = class_weights(data.train_y, len(data.classes))
    val = {c: balanced_accuracy_score(data.val_y, fit_probe(data.train_x, data.train_y, c, weights, settings).predict(data.val_x)) for c in settings.cs}
    assert len(set(val.values())) > 1  # the choice matters here
    assert run.c == min(c for c in settings.cs if val[c] == max(val.values())) and run.val_balanced_accuracy == max(val.values())
    blind = ProbeData(data.classes, data.train_ids, data.train_x, data.train_y, data.val_x[:0], data.val_y[:0], data.test_x, data.test_y)
    run = probe_subset(blind, Subset("train", None, 1, data.train_ids), settings)
    assert run.c == 1.0 and run.val_balanced_accuracy is None and "not chosen" in run.notes[0]


def test_the_same_inputs_give_the_same_tables(site):
    export, data = _data(site, "random")
    sets = training_sets(data.train_ids, export.subsets)[:3]
    first, second = (evaluate_probe(data, sets, FAST, PROVENANCE) for _ in range(2))
    for name in ("runs", "classes", "confusion", "curve"):
        assert getattr(first, name).equals(getattr(second, name))


def test_subsets_come_from_the_dataset_table_nested_by_size():
    table = pa.table({"size": [2, 2, 3, 3, 3], "repeat": [1, 1, 1, 1, 1], "crop_id": ["b", "a", "a", "b", "c"]})
    sets = training_sets(("a", "b", "c", "d"), table)
    assert [(s.name, s.crop_ids) for s in sets] == [("train_2_r1", ("a", "b")), ("train_3_r1", ("a", "b", "c")), ("train", ("a", "b", "c", "d"))]
