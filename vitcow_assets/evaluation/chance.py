"""The chance level of Hit@k, computed exactly from the class mix of the queries and the
index they search.

A query of class ``c`` searching an index of ``N`` items, ``n_c`` of them of class ``c``,
under a ranking that knows nothing of the classes (every order of the index equally
likely), finds no item of its class among the first ``k`` with probability
``C(N - n_c, k) / C(N, k)``, so its Hit@k chance is ``1 - C(N - n_c, k) / C(N, k)`` (with
``k`` taken as at most ``N``: the whole index is then seen). The micro chance is the mean
over the queries; the macro chance the mean over the queries' classes of each class's
mean, the same averages the measured Hit@k takes. The ratio is evaluated as the product
``prod_{i<k} (N - n_c - i) / (N - i)``, which is exact in rational arithmetic and within a
few ulps in floating point (``hit_chance_exact`` gives the fraction, for the tests).

Pure: integers and numpy arrays in, floats out.
"""

from fractions import Fraction
from math import comb

import numpy as np


def hit_chance_exact(index_size: int, class_count: int, k: int) -> Fraction:
    """Hit@k chance of one query as a fraction: ``1 - C(N - n_c, k) / C(N, k)``."""
    _check(index_size, class_count, k)
    seen = min(k, index_size)
    if seen == 0:
        return Fraction(0)
    return 1 - Fraction(comb(index_size - class_count, seen), comb(index_size, seen))


def hit_chance(index_size, class_count, k: int) -> np.ndarray:
    """Hit@k chance per query (float64), from arrays (or scalars) of the index size ``N``
    each query searches and the number ``n_c`` of its class in that index."""
    n = np.asarray(index_size, dtype=np.int64)
    c = np.asarray(class_count, dtype=np.int64)
    if np.any(c < 0) or np.any(c > n) or k < 1:
        raise ValueError(f"chance: need 0 <= class count <= index size and k >= 1 (k={k})")
    miss = np.ones(np.broadcast(n, c).shape, dtype=np.float64)
    for i in range(k):
        # beyond N the factor is 1: the whole index has been seen, the product is final
        live = n > i
        factor = np.where(live, (n - c - i) / np.where(live, n - i, 1), 1.0)
        miss = miss * np.clip(factor, 0.0, 1.0)
    return np.where(n > 0, 1.0 - miss, 0.0)


def class_means(values: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """(micro, macro) of per-query ``values``: the mean over the queries, and the mean over
    the classes present in ``classes`` of each class's mean."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    present = np.unique(classes)
    return float(values.mean()), float(np.mean([values[classes == c].mean() for c in present]))


def _check(index_size: int, class_count: int, k: int) -> None:
    if not 0 <= class_count <= index_size or k < 1:
        raise ValueError(f"chance: need 0 <= class count ({class_count}) <= index size ({index_size}) and k >= 1 (k={k})")
