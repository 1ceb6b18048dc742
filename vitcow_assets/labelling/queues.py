"""Work queues and agreement: who labels which crop, and how often two annotators agree.

``assign`` gives each annotator a balanced, seeded share of every farm's crops (``per_farm``
crops each), without moving a file: an assignment is a row (annotator, crop_id, farm,
position). Each farm's crops are shuffled by a generator seeded with ``(seed, farm)``, so
adding a farm or an annotator never reshuffles another farm. Single labelling gives every
chosen crop to one annotator (shares differ by at most one crop when a farm runs short);
``double`` gives every chosen crop to two different annotators, pairs rotating so that each
annotator shares crops with every other. Positions interleave the farms.

``agreement`` compares two annotators' current labels on the crops both labelled: raw
agreement and Cohen's kappa, on fine labels or through a mapping (e.g. to training classes).

Pure: pyarrow and numpy in, pyarrow and dataclasses out; no database, no files.
"""

import dataclasses
import hashlib
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa

from vitcow_assets.core.tables import field

ASSIGNMENT_SCHEMA = pa.schema(
    [
        field("annotator", pa.string(), "who is to label the crop"),
        field("crop_id", pa.string(), "the catalog's crop_id"),
        field("farm", pa.string(), "farm of the crop (the share is balanced per farm)", nullable=True),
        field("position", pa.int32(), "place in the annotator's queue, from 0"),
    ]
)

#: the category an excluded crop (mapping gives None) counts as in agreement
EXCLUDED = "(excluded)"


def _farm_order(crop_ids: list[str], farm: str | None, seed: int) -> list[str]:
    """The farm's crops in a seeded order that depends only on (seed, farm, the crops)."""
    farm_key = int(hashlib.sha256((farm or "").encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng([seed, farm_key])
    ordered = sorted(crop_ids)
    return [ordered[i] for i in rng.permutation(len(ordered))]


def _owners(j: int, k: int, double: bool) -> tuple[int, ...]:
    """Annotator indices of the j-th chosen crop of a farm."""
    first = j % k
    if not double:
        return (first,)
    return first, (j + 1 + (j // k) % (k - 1)) % k


def _check(annotators: list[str], per_farm: int, double: bool) -> None:
    if not annotators or any(not a or not isinstance(a, str) for a in annotators):
        raise ValueError("annotators: give at least one non-empty name")
    if len(set(annotators)) != len(annotators):
        raise ValueError(f"annotators: names repeat ({', '.join(annotators)})")
    if isinstance(per_farm, bool) or not isinstance(per_farm, int) or per_farm < 1:
        raise ValueError(f"per_farm: must be a positive integer, not {per_farm!r}")
    if double and len(annotators) < 2:
        raise ValueError("double labelling needs at least two annotators")


def assign(
    catalog: pa.Table, annotators: list[str], per_farm: int, seed: int = 0, double: bool = False, exclude: Iterable[str] = ()
) -> pa.Table:
    """Assignments (``ASSIGNMENT_SCHEMA``, sorted by annotator and position) of the catalog's
    crops, leaving out ``exclude`` (e.g. crops already assigned or labelled)."""
    _check(annotators, per_farm, double)
    skip = set(exclude)
    by_farm: dict[str | None, list[str]] = {}
    for crop, farm in zip(catalog["crop_id"].to_pylist(), catalog["farm"].to_pylist()):
        if crop not in skip:
            by_farm.setdefault(farm, []).append(crop)
    k = len(annotators)
    wanted = math.ceil(per_farm * k / 2) if double else per_farm * k
    rows = []  # (annotator index, rank in its share of the farm, farm sort key, crop, farm)
    for farm in sorted(by_farm, key=lambda f: f or ""):
        rank = [0] * k
        for j, crop in enumerate(_farm_order(by_farm[farm], farm, seed)[:wanted]):
            for owner in _owners(j, k, double):
                rows.append((owner, rank[owner], farm or "", crop, farm))
                rank[owner] += 1
    rows.sort(key=lambda r: r[:3])
    out = {"annotator": [], "crop_id": [], "farm": [], "position": []}
    for owner, group in itertools.groupby(rows, key=lambda r: r[0]):
        for position, (_, _, _, crop, farm) in enumerate(group):
            out["annotator"].append(annotators[owner])
            out["crop_id"].append(crop)
            out["farm"].append(farm)
            out["position"].append(position)
    table = pa.table(out, schema=ASSIGNMENT_SCHEMA)
    return table.sort_by([("annotator", "ascending"), ("position", "ascending")])


@dataclasses.dataclass(frozen=True)
class Agreement:
    """Two annotators' agreement on the crops both of them labelled."""

    annotator_a: str
    annotator_b: str
    crops: int
    agreed: int
    #: agreed / crops; None without common crops
    raw: float | None
    #: Cohen's kappa; None without common crops or when chance agreement is 1 (both gave one
    #: and the same category to every crop: kappa is undefined)
    kappa: float | None
    #: (category of a, category of b) -> crops
    confusion: dict[tuple[str, str], int]

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["confusion"] = [{"a": a, "b": b, "crops": n} for (a, b), n in sorted(self.confusion.items())]
        return data


def _labels_of(current: pa.Table, annotator: str, mapping: Callable[[str], str | None] | None) -> dict[str, str]:
    cols = current.select(["crop_id", "annotator", "label"]).to_pydict()
    out = {}
    for crop, who, label in zip(cols["crop_id"], cols["annotator"], cols["label"]):
        if who == annotator and label is not None:
            category = mapping(label) if mapping is not None else label
            out[crop] = EXCLUDED if category is None else category
    return out


def agreement(current: pa.Table, a: str, b: str, mapping: Callable[[str], str | None] | None = None) -> Agreement:
    """Raw agreement and Cohen's kappa of ``a`` and ``b`` over their current labels
    (columns crop_id, annotator, label: one row per (crop, annotator)); ``mapping`` turns a
    fine label into the category compared (None: excluded)."""
    la, lb = _labels_of(current, a, mapping), _labels_of(current, b, mapping)
    common = sorted(set(la) & set(lb))
    n = len(common)
    confusion = Counter((la[c], lb[c]) for c in common)
    agreed = sum(count for (x, y), count in confusion.items() if x == y)
    if not n:
        return Agreement(a, b, 0, 0, None, None, {})
    observed = agreed / n
    count_a, count_b = Counter(la[c] for c in common), Counter(lb[c] for c in common)
    chance = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    kappa = None if math.isclose(chance, 1.0) else (observed - chance) / (1.0 - chance)
    return Agreement(a, b, n, agreed, observed, kappa, dict(confusion))


def agreement_report(current: pa.Table, mapping: Callable[[str], str | None] | None = None) -> list[Agreement]:
    """``agreement`` of every pair of annotators who labelled at least one crop in common."""
    annotators = sorted(set(current["annotator"].to_pylist()))
    pairs = (agreement(current, a, b, mapping) for a, b in itertools.combinations(annotators, 2))
    return [p for p in pairs if p.crops]


@dataclasses.dataclass(frozen=True)
class Queue:
    """One annotator's queue: the crops in the order they are shown, and those done."""

    crops: tuple[str, ...]
    done: frozenset[str]
    #: the queue comes from assignments (else: every crop nobody else labelled)
    assigned: bool

    @property
    def remaining(self) -> int:
        return len(self.crops) - len(self.done)

    def next_crop(self, after: str | None = None) -> str | None:
        """The first crop not done, starting after ``after`` (wrapping round), else None."""
        start = self.crops.index(after) + 1 if after in self.crops else 0
        for crop in itertools.chain(self.crops[start:], self.crops[:start]):
            if crop not in self.done:
                return crop
        return None

    def progress(self) -> dict:
        return {"done": len(self.done), "remaining": self.remaining, "total": len(self.crops), "assigned": self.assigned}


def queue_of(annotator: str, assigned: list[str], catalog_order: list[str], labelled: dict[str, set[str]]) -> Queue:
    """``annotator``'s queue. ``assigned``: their assigned crop ids by position (crops no
    longer in the catalog are left out); none: every catalog crop (in catalog order) that
    nobody else labelled. ``labelled``: crop id -> annotators with a current label."""
    in_catalog = set(catalog_order)
    if assigned:
        crops = tuple(c for c in assigned if c in in_catalog)
    else:
        crops = tuple(c for c in catalog_order if not (labelled.get(c, set()) - {annotator}))
    done = frozenset(c for c in crops if annotator in labelled.get(c, ()))
    return Queue(crops, done, bool(assigned))
