"""Agreement measures against published examples and hand-worked cases: Cohen's kappa,
Fleiss' kappa (fixed and varying raters per item) and accuracy against gold answers."""

import pytest

from vitcow_assets.core.agreement import cohen_kappa, fleiss_kappa, gold_score

#: Fleiss (1971)'s worked table as Wikipedia gives it: 10 subjects, 14 raters each, counts
#: per category (5 categories); P-bar = 0.378, P-bar-e = 0.213, kappa = 0.210
FLEISS_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def _items(table):
    return [[category for category, n in enumerate(row) for _ in range(n)] for row in table]


def test_fleiss_kappa_on_the_published_table():
    result = fleiss_kappa(_items(FLEISS_TABLE))
    assert (result.items, result.ratings) == (10, 140)
    assert result.observed == pytest.approx(0.378, abs=5e-4)
    assert result.chance == pytest.approx(0.213, abs=5e-4)
    assert result.kappa == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_with_two_raters_is_scotts_pi():
    a = ["x", "x", "y", "y", "z", "x", "y", "z"]
    b = ["x", "y", "y", "y", "z", "x", "z", "z"]
    observed = sum(p == q for p, q in zip(a, b)) / len(a)
    pooled = a + b
    chance = sum((pooled.count(c) / len(pooled)) ** 2 for c in set(pooled))
    assert fleiss_kappa(list(zip(a, b))).kappa == pytest.approx((observed - chance) / (1 - chance))
    assert fleiss_kappa(list(zip(a, b))).kappa != pytest.approx(cohen_kappa(a, b))  # not Cohen's


def test_fleiss_kappa_with_varying_raters_per_item_and_edge_cases():
    # item 1: 3 raters, 1 agreeing pair of 3; item 2: 2 raters agreeing; a single rating is left out
    result = fleiss_kappa([["a", "a", "b"], ["b", "b"], ["a"]])
    assert result.items == 2 and result.ratings == 5
    assert result.observed == pytest.approx((1 / 3 + 1) / 2)
    assert result.chance == pytest.approx((2 / 5) ** 2 + (3 / 5) ** 2)
    assert result.kappa == pytest.approx((result.observed - result.chance) / (1 - result.chance))
    assert fleiss_kappa([]).kappa is None and fleiss_kappa([["a"]]).items == 0
    assert fleiss_kappa([["a", "a"], ["a", "a"]]).kappa is None  # everyone always says the same: undefined
    assert fleiss_kappa([["a", "b"], ["b", "a"]]).kappa == pytest.approx(-1.0)


def test_cohen_kappa_textbook_example_and_undefined_cases():
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["x"] * 3, ["x"] * 3) is None and cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa(["x"], [])


def test_gold_score_counts_accuracy_and_confusion():
    score = gold_score(["Lying", "Lying", "Standing", "Feeding"], ["Lying", "Standing", "Standing", "Lying"])
    assert (score.items, score.correct, score.accuracy) == (4, 2, 0.5)
    assert score.confusion == {("Lying", "Lying"): 1, ("Lying", "Standing"): 1, ("Standing", "Standing"): 1, ("Feeding", "Lying"): 1}
    assert {"gold": "Feeding", "given": "Lying", "items": 1} in score.as_dict()["confusion"]
    assert gold_score([], []).accuracy is None
