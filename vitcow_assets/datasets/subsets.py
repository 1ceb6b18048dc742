"""Stratified training subsets for data-efficiency studies: sizes × repeats, seeded, nested.

For each repeat, the training crops are put in one order and the subset of size ``s`` is
its first ``s`` crops, so within a repeat every smaller subset lies inside every larger one
(1000 ⊂ 1500 ⊂ 2000 ...). The order:

- per class, the class's tracks (``(video_id, track_id)``) in a seeded random order, each
  track's crops together (by ``crop_id``), so a subset splits at most one track per class;
- the classes interleaved so that every prefix holds each class in proportion to the whole
  training split (within one crop): stratified at every size.

Repeat ``r`` (from 1) draws from ``numpy.random.default_rng([seed, r])``. Subsets come from
the training split only; validation and the frozen test split are shared by all of them.
A size larger than the training split is refused, or with ``cap`` taken as all of it
(noted in the result).

Pure: pyarrow/numpy in, pyarrow out.
"""

import dataclasses
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.tables import field
from vitcow_assets.datasets.inputs import DatasetInputError, require, require_unique

SUBSET_INPUT_COLUMNS = ("crop_id", "class_name", "video_id", "track_id")
SUBSET_FIELDS = [
    field("repeat", pa.int32(), "repeat number, from 1: an independent seeded draw"),
    field("size", pa.int32(), "subset size asked for"),
    field("rank", pa.int32(), "position of the crop in the repeat's order (the subset of size s is ranks 0..s-1)"),
]


@dataclasses.dataclass(frozen=True)
class Subsets:
    #: one row per (repeat, size, crop): the training crop's columns plus ``SUBSET_FIELDS``
    table: pa.Table
    sizes: tuple[int, ...]
    repeats: int
    seed: int
    notes: tuple[str, ...]

    def subset(self, repeat: int, size: int) -> pa.Table:
        """The rows of one subset (repeat from 1, size as asked)."""
        keep = pc.and_(pc.equal(self.table["repeat"], repeat), pc.equal(self.table["size"], size))
        return self.table.filter(keep)


def _check_sizes(sizes, repeats: int, available: int, cap: bool) -> tuple[tuple[int, ...], list[str]]:
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise DatasetInputError(f"efficiency subsets: repeats must be a positive integer, got {repeats!r}")
    try:
        wanted = sorted({int(s) for s in sizes})
    except (TypeError, ValueError):
        raise DatasetInputError(f"efficiency subsets: sizes must be integers, got {sizes!r}") from None
    if not wanted or wanted[0] < 1:
        raise DatasetInputError(f"efficiency subsets: sizes must be positive integers, got {sizes!r}")
    notes = []
    for s in wanted:
        if s > available:
            if not cap:
                raise DatasetInputError(
                    f"efficiency subsets: size {s} is larger than the training split ({available} crops); set cap to use all of it"
                )
            notes.append(f"size {s} capped to the {available} training crops")
    return tuple(wanted), notes


def _class_streams(rows: list[dict], rng: np.random.Generator) -> dict[str, list[int]]:
    """Per class: row indices, tracks in a seeded order, each track's crops together."""
    by_class: dict[str, dict[tuple, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, r in enumerate(rows):
        by_class[r["class_name"]][(r["video_id"], r["track_id"])].append(i)
    streams = {}
    for cls in sorted(by_class):
        keys = sorted(by_class[cls])
        streams[cls] = [i for k in rng.permutation(len(keys)) for i in by_class[cls][keys[k]]]
    return streams


def stratified_order(rows: list[dict], rng: np.random.Generator) -> list[int]:
    """Row indices in an order whose every prefix holds each class in proportion (±1)."""
    streams = _class_streams(rows, rng)
    names = list(streams)
    sizes = np.array([len(streams[c]) for c in names], float)
    total = sizes.sum()
    taken = np.zeros(len(names))
    order = []
    for step in range(int(total)):
        # the class furthest behind its share of the first step+1 crops (ties: larger, then name)
        behind = np.round((step + 1) * sizes / total - taken, 9)
        behind[taken >= sizes] = -np.inf
        top = np.flatnonzero(behind == behind.max())
        c = int(top[np.argmax(sizes[top])])  # argmax: the first (by name) of the largest
        order.append(streams[names[c]][int(taken[c])])
        taken[c] += 1
    return order


def efficiency_subsets(train: pa.Table, sizes, repeats: int = 3, seed: int = 42, cap: bool = False) -> Subsets:
    """Subsets of the training crops (``SUBSET_INPUT_COLUMNS``) for every size and repeat."""
    require(train, SUBSET_INPUT_COLUMNS, "training split")
    train = train.sort_by("crop_id")
    rows = train.select(list(SUBSET_INPUT_COLUMNS)).to_pylist()
    require_unique([r["crop_id"] for r in rows], "training split", "crop_id")
    wanted, notes = _check_sizes(sizes, repeats, len(rows), cap)
    take, rep_col, size_col, rank_col = [], [], [], []
    for repeat in range(1, repeats + 1):
        order = stratified_order(rows, np.random.default_rng([seed, repeat]))
        for size in wanted:
            chosen = order[: min(size, len(order))]
            take += chosen
            rep_col += [repeat] * len(chosen)
            size_col += [size] * len(chosen)
            rank_col += list(range(len(chosen)))
    table = train.take(pa.array(take, pa.int64()))
    for f, values in zip(SUBSET_FIELDS, (rep_col, size_col, rank_col)):
        table = table.append_column(f, pa.array(values, pa.int32()))
    return Subsets(table, wanted, repeats, seed, tuple(notes))
