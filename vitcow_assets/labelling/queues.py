"""Work queues and agreement: who labels which crop, and how often two annotators agree.

``assign`` gives each annotator a balanced, seeded share of every farm's crops (``per_farm``
crops each), without moving a file: an assignment is a row (annotator, crop_id, farm,
position). Each farm's crops are shuffled by a generator seeded with ``(seed, farm)``, so
adding a farm or an annotator never reshuffles another farm. Single labelling gives every
chosen crop to one annotator (shares differ by at most one crop when a farm runs short);
``double`` gives every chosen crop to two different annotators, pairs rotating so that each
annotator shares crops with every other. Positions interleave the farms.

Gold crops (``gold``) never join the regular draw; with ``gold_rate`` r each annotator's
queue of n crops gets ``round(n * r / (1 - r))`` of them (so that about r of the queue is
gold; at most every gold crop once), drawn and placed at random positions by a generator
seeded with (seed, annotator): nothing tells the annotator which they are.

``agreement`` compares two annotators' current labels on the crops both labelled: raw
agreement and Cohen's kappa, on fine labels or through a mapping (e.g. to training classes);
``fleiss`` gives Fleiss' kappa over every crop two or more annotators labelled, and
``gold_accuracy`` each annotator's accuracy and confusion on the gold crops they labelled.

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

from vitcow_assets.core.agreement import FleissKappa, cohen_kappa, fleiss_kappa, gold_score
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
#: keeps the gold draw's random stream apart from the farms' shuffles
_GOLD_STREAM = 0x601D


def _farm_order(crop_ids: list[str], farm: str | None, seed: int) -> list[str]:
    """The farm's crops in a seeded order that depends only on (seed, farm, the crops)."""
    rng = np.random.default_rng([seed, _name_key(farm or "")])
    ordered = sorted(crop_ids)
    return [ordered[i] for i in rng.permutation(len(ordered))]


def _owners(j: int, k: int, double: bool) -> tuple[int, ...]:
    """Annotator indices of the j-th chosen crop of a farm."""
    first = j % k
    if not double:
        return (first,)
    return first, (j + 1 + (j // k) % (k - 1)) % k


def _name_key(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def _mix_gold(queue: list[tuple[str, str | None]], annotator: str, gold: list[tuple[str, str | None]], rate: float, seed: int) -> list:
    """``queue`` ((crop, farm) in order) with gold crops mixed in at seeded positions."""
    extra = min(len(gold), round(len(queue) * rate / (1.0 - rate))) if gold and rate > 0 else 0
    if not extra:
        return queue
    rng = np.random.default_rng([seed, _name_key(annotator), _GOLD_STREAM])
    chosen = [gold[i] for i in rng.choice(len(gold), size=extra, replace=False)]
    slots = set(rng.choice(len(queue) + extra, size=extra, replace=False).tolist())
    regular, golden = iter(queue), iter(chosen)
    return [next(golden) if i in slots else next(regular) for i in range(len(queue) + extra)]


def _check(annotators: list[str], per_farm: int, double: bool, gold_rate: float = 0.0) -> None:
    if not 0.0 <= gold_rate < 1.0:
        raise ValueError(f"gold_rate: the share of gold crops in a queue must be at least 0 and below 1, not {gold_rate!r}")
    if not annotators or any(not a or not isinstance(a, str) for a in annotators):
        raise ValueError("annotators: give at least one non-empty name")
    if len(set(annotators)) != len(annotators):
        raise ValueError(f"annotators: names repeat ({', '.join(annotators)})")
    if isinstance(per_farm, bool) or not isinstance(per_farm, int) or per_farm < 1:
        raise ValueError(f"per_farm: must be a positive integer, not {per_farm!r}")
    if double and len(annotators) < 2:
        raise ValueError("double labelling needs at least two annotators")


def assign(
    catalog: pa.Table, annotators: list[str], per_farm: int, seed: int = 0, double: bool = False, exclude: Iterable[str] = (),
    gold: Iterable[str] = (), gold_rate: float = 0.0,
) -> pa.Table:
    """Assignments (``ASSIGNMENT_SCHEMA``, sorted by annotator and position) of the catalog's
    crops, leaving out ``exclude`` (e.g. crops already assigned or labelled), with ``gold``
    crops mixed in at ``gold_rate``."""
    _check(annotators, per_farm, double, gold_rate)
    gold_ids = set(gold)
    skip = set(exclude) | gold_ids
    by_farm: dict[str | None, list[str]] = {}
    golden: list[tuple[str, str | None]] = []
    for crop, farm in zip(catalog["crop_id"].to_pylist(), catalog["farm"].to_pylist()):
        if crop in gold_ids:
            golden.append((crop, farm))
        elif crop not in skip:
            by_farm.setdefault(farm, []).append(crop)
    golden.sort()
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
        queue = _mix_gold([(crop, farm) for _, _, _, crop, farm in group], annotators[owner], golden, gold_rate, seed)
        for position, (crop, farm) in enumerate(queue):
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
            out[crop] = _category(label, mapping)
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
    kappa = cohen_kappa([la[c] for c in common], [lb[c] for c in common])
    return Agreement(a, b, n, agreed, agreed / n, kappa, dict(confusion))


def agreement_report(current: pa.Table, mapping: Callable[[str], str | None] | None = None) -> list[Agreement]:
    """``agreement`` of every pair of annotators who labelled at least one crop in common."""
    annotators = sorted(set(current["annotator"].to_pylist()))
    pairs = (agreement(current, a, b, mapping) for a, b in itertools.combinations(annotators, 2))
    return [p for p in pairs if p.crops]


def _category(label: str, mapping: Callable[[str], str | None] | None) -> str:
    category = mapping(label) if mapping is not None else label
    return EXCLUDED if category is None else category


def fleiss(current: pa.Table, mapping: Callable[[str], str | None] | None = None) -> FleissKappa:
    """Fleiss' kappa over the crops two or more annotators labelled (``current``: one row
    per (crop, annotator), columns crop_id and label)."""
    by_crop: dict[str, list[str]] = {}
    for crop, label in zip(current["crop_id"].to_pylist(), current["label"].to_pylist()):
        if label is not None:
            by_crop.setdefault(crop, []).append(_category(label, mapping))
    return fleiss_kappa([by_crop[c] for c in sorted(by_crop)])


def gold_accuracy(current: pa.Table, gold: pa.Table, mapping: Callable[[str], str | None] | None = None) -> list[dict]:
    """Per annotator who labelled a gold crop: ``annotator``, ``items`` (gold crops
    labelled), ``correct``, ``accuracy`` and ``confusion`` (gold, given, items)."""
    reference = {c: _category(label, mapping) for c, label in zip(gold["crop_id"].to_pylist(), gold["label"].to_pylist())}
    given: dict[str, list[tuple[str, str]]] = {}
    for r in current.select(["crop_id", "annotator", "label"]).to_pylist():
        if r["crop_id"] in reference and r["label"] is not None:
            given.setdefault(r["annotator"], []).append((reference[r["crop_id"]], _category(r["label"], mapping)))
    out = []
    for annotator in sorted(given):
        pairs = given[annotator]
        out.append({"annotator": annotator, **gold_score([g for g, _ in pairs], [x for _, x in pairs]).as_dict()})
    return out


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
