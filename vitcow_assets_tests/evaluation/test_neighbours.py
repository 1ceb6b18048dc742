"""Exact nearest neighbours: the same as a full stable sort of every distance, ties broken by
index position, whatever the block size."""

import numpy as np
import pytest

from vitcow_assets.evaluation import neighbours
from vitcow_assets.evaluation.neighbours import nearest


def _brute(q, x, metric):
    q, x = q.astype(np.float64), x.astype(np.float64)
    if metric == "cosine":
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1 - qn @ xn.T
    else:
        d = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable")


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_nearest_matches_a_full_sort(metric):
    rng = np.random.default_rng(3)
    q, x = rng.normal(size=(40, 8)).astype(np.float32), rng.normal(size=(300, 8)).astype(np.float32)
    assert np.array_equal(nearest(q, x, 10, metric), _brute(q, x, metric)[:, :10])


def test_ties_go_by_index_position_whatever_the_block(monkeypatch):
    rng = np.random.default_rng(4)
    base = rng.normal(size=(5, 4)).astype(np.float32)
    x = np.repeat(base, 6, axis=0)[rng.permutation(30)]  # every point six times
    q = base + 0.01
    whole = nearest(q, x, 10)
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 8 * 30)  # one query per block
    assert np.array_equal(nearest(q, x, 10), whole)
    for row, qi in zip(whole, q):
        d = ((x - qi) ** 2).sum(1)
        assert np.array_equal(row, np.lexsort((np.arange(30), d))[:10])


def test_an_index_smaller_than_k_returns_all_of_it():
    x = np.eye(3, dtype=np.float32)
    assert nearest(np.eye(3, dtype=np.float32), x, 10).tolist() == [[0, 1, 2], [1, 0, 2], [2, 0, 1]]
