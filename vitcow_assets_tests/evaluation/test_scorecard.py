"""The scorecard on a case small enough to work out by hand, in the class mapping's
columns whatever the test split holds."""

import math

import numpy as np
import pytest

from vitcow_assets.evaluation.scorecard import score

CLASSES = ("Drinking", "Lying", "Standing", "Walking")  # Walking absent from the test split


def test_a_hand_worked_scorecard():
    y_true = [0, 0, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0]
    scores = np.array([[0.9, 0.1, 0, 0], [0.4, 0.6, 0, 0], [0.2, 0.8, 0, 0], [0.1, 0.7, 0.2, 0], [0.5, 0.2, 0.3, 0]])
    card = score(y_true, y_pred, CLASSES, scores)
    s = card.summary
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    # precision: Drinking 1/2, Lying 2/3, Standing never predicted (0 in the macro)
    assert s["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    f1 = [2 * (1 / 2 * 1 / 2) / (1 / 2 + 1 / 2), 2 * (2 / 3 * 1) / (2 / 3 + 1), 0.0]
    assert s["f1_macro"] == pytest.approx(sum(f1) / 3) and s["f1_micro"] == pytest.approx(3 / 5)
    assert s["classes_present"] == 3 and s["test_crops"] == 5
    # AP per class present: Drinking's crops score 0.9 and 0.4, ranked 1st and 3rd (a Standing
    # crop's 0.5 between): (1 + 2/3) / 2; Lying's score 0.8 and 0.7, the top two: 1;
    # Standing's one crop scores 0.3, the top: 1
    assert s["map_macro"] == pytest.approx(((1 + 2 / 3) / 2 + 1 + 1) / 3)
    per = {r["class_name"]: r for r in card.per_class}
    assert per["Walking"]["support"] == 0 and per["Walking"]["recall"] is None and per["Walking"]["average_precision"] is None
    assert per["Standing"]["precision"] is None and per["Standing"]["recall"] == 0.0
    assert card.confusion.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    normalised = card.normalised
    assert normalised[0].tolist() == [0.5, 0.5, 0, 0] and all(math.isnan(v) for v in normalised[3])
    rows = card.confusion_rows()
    assert len(rows) == 16 and rows[15]["share"] is None and sum(r["count"] for r in rows) == 5


def test_without_scores_there_is_no_map_and_bad_inputs_are_refused():
    card = score([0, 1], [0, 1], CLASSES)
    assert card.summary["map_macro"] is None and card.summary["accuracy"] == 1.0
    with pytest.raises(ValueError, match="outside"):
        score([0, 4], [0, 1], CLASSES)
    with pytest.raises(ValueError, match="scores"):
        score([0, 1], [0, 1], CLASSES, np.zeros((2, 3)))
