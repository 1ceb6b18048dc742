"""The chance level of Hit@k is exact: the closed form against brute-force enumeration of
every order of a tiny index, and the float form against the fraction."""

import itertools
from fractions import Fraction

import numpy as np
import pytest

from vitcow_assets.evaluation.chance import class_means, hit_chance, hit_chance_exact


@pytest.mark.parametrize("index", [(0, 0, 1, 2, 2, 2), (1, 0, 0, 0, 0), (0, 1, 1)])
def test_chance_equals_brute_force_enumeration_of_every_ranking(index):
    """Every order of the index equally likely: the share of orders with the query's class
    among the first k is 1 - C(N - n_c, k) / C(N, k)."""
    orders = list(itertools.permutations(range(len(index))))
    for cls in sorted(set(index)) + [9]:  # 9: a class the index lacks
        for k in range(1, len(index) + 2):
            hits = sum(any(index[i] == cls for i in order[:k]) for order in orders)
            enumerated = Fraction(hits, len(orders))
            n_c = index.count(cls)
            assert hit_chance_exact(len(index), n_c, k) == enumerated
            assert float(hit_chance(len(index), n_c, k)) == pytest.approx(float(enumerated), abs=1e-12)


def test_chance_vectorised_over_queries_matches_the_fraction_and_handles_edges():
    sizes = np.array([10, 10, 200, 5, 0, 7])
    counts = np.array([3, 0, 41, 5, 0, 7])
    for k in (1, 2, 3, 5, 10):
        expected = [float(hit_chance_exact(int(n), int(c), k)) for n, c in zip(sizes, counts)]
        assert hit_chance(sizes, counts, k) == pytest.approx(expected, abs=1e-12)
    assert hit_chance(5, 5, 1) == 1.0 and hit_chance(10, 0, 10) == 0.0 and hit_chance(0, 0, 3) == 0.0
    with pytest.raises(ValueError):
        hit_chance(3, 4, 1)


def test_micro_and_macro_average_the_queries_and_the_classes():
    values = np.array([1.0, 1.0, 1.0, 0.0])
    classes = np.array([0, 0, 0, 1])
    assert class_means(values, classes) == (0.75, 0.5)
