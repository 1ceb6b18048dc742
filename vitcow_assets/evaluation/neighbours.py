"""Nearest neighbours of query embeddings in an index of embeddings, exactly, by Euclidean
or cosine distance, in blocks of queries (bounded memory whatever the index size).

Order: by distance, and among equal distances by index position, so the neighbours of a
query never depend on the block it was computed in or on the machine's sort. Distances are
computed in float64 from the float32 embeddings: ``|q|^2 - 2 q.x + |x|^2`` (Euclidean,
squared; the order is the same) and ``1 - q.x / (|q| |x|)`` (cosine; a zero vector is at
distance 1 from everything).

Pure: numpy arrays in, numpy arrays out.
"""

import numpy as np

METRICS = ("euclidean", "cosine")
#: float64 distances held at once per block of queries (bytes): 64 MiB
BLOCK_BYTES = 64 << 20


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _prepare(queries: np.ndarray, index: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    q, x = np.asarray(queries, np.float64), np.asarray(index, np.float64)
    if q.ndim != 2 or x.ndim != 2 or q.shape[1] != x.shape[1]:
        raise ValueError(f"neighbours: queries {q.shape} and index {x.shape} must be 2-D with the same width")
    if metric == "cosine":
        return _unit(q), _unit(x), None
    if metric == "euclidean":
        return q, x, np.einsum("ij,ij->i", x, x)
    raise ValueError(f"neighbours: metric must be one of {', '.join(METRICS)}, got {metric!r}")


def _distances(q: np.ndarray, x: np.ndarray, x_sq: np.ndarray | None) -> np.ndarray:
    dot = q @ x.T
    if x_sq is None:
        return 1.0 - dot
    return np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * dot + x_sq[None, :]


def _top(d: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest of each row of ``d`` by (distance, position)."""
    if k >= d.shape[1]:
        return np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)
    part = np.argpartition(d, k - 1, axis=1)[:, :k]
    near = np.take_along_axis(d, part, axis=1)
    order = np.lexsort((part, near), axis=1)
    out = np.take_along_axis(part, order, axis=1)
    bound = near.max(axis=1)
    # where more than k items lie within the bound (ties at it), argpartition chose among
    # them arbitrarily: take those rows again, every tied item, by position
    for row in np.flatnonzero((d <= bound[:, None]).sum(axis=1) > k):
        within = np.flatnonzero(d[row] <= bound[row])
        out[row] = within[np.lexsort((within, d[row, within]))][:k]
    return out


def nearest(queries: np.ndarray, index: np.ndarray, k: int, metric: str = "euclidean") -> np.ndarray:
    """``(len(queries), min(k, len(index)))`` int64 positions in ``index`` of each query's
    nearest items, nearest first."""
    q, x, x_sq = _prepare(queries, index, metric)
    k = min(int(k), x.shape[0])
    if k < 1 or q.shape[0] == 0:
        return np.zeros((q.shape[0], max(k, 0)), dtype=np.int64)
    rows = max(1, BLOCK_BYTES // (8 * x.shape[0]))
    blocks = [_top(_distances(q[s : s + rows], x, x_sq), k) for s in range(0, q.shape[0], rows)]
    return np.concatenate(blocks, axis=0)
