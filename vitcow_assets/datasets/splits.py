"""Train, validation and test splits of labelled crops, and the pre-training split.

Rules (``behaviour_splits``):

- **Test** is every crop of the held-out farm(s).
- **Validation** is a seeded, class-stratified fraction of the rest, chosen **by track**: all
  crops of one ``(video_id, track_id)`` (one animal through consecutive clips) go to the same
  side, so no animal is in both train and validation. A class found on two or more tracks
  outside test gets at least one validation crop (and keeps at least one training crop); a
  class on a single track stays in train (the report says so).
- Tracks are visited in a seeded random order (``numpy.random.default_rng(seed)``), rarest
  classes first, twice: first a track goes to validation when it fits (no class beyond its
  target: ``val_fraction`` × the class's crops, at least 1), then when it brings the
  per-class validation counts closer to their targets (the sum over classes of the squared
  shortfall or excess relative to the target). A last step moves a track where a class with
  two or more tracks still has no validation (or no training) crop.
- **Frozen**: given the previous splits table (and no ``refreeze``), every crop it assigned
  keeps its split; a new crop of a track already placed joins that track's side; new tracks
  are placed as above, counting what is already in validation. New crops of a held-out farm
  do *not* join test (that would change the frozen test set) and never go to train or
  validation: they are reported as ``pending_test`` and join test at the next ``refreeze``.
  Changing the held-out farms needs ``refreeze``. With ``refreeze`` everything is re-split.
- Deterministic: the input is sorted by ``crop_id`` first, so row order never matters.

Pure: pyarrow/numpy in, pyarrow out; imports ``core`` only.
"""

import dataclasses
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.tables import field
from vitcow_assets.datasets.inputs import PREVIOUS_SPLITS_COLUMNS, DatasetInputError, require, require_unique

SPLIT_NAMES = ("train", "val", "test")
SPLIT_FIELD = field("split", pa.string(), "dataset split: train, val or test")
#: what ``behaviour_splits`` needs of its crops (``selection.resolve_labels`` gives these)
SPLIT_INPUT_COLUMNS = ("crop_id", "class_name", "farm", "video_id", "track_id")
PRETRAIN_INPUT_COLUMNS = ("crop_id", "crop_path", "farm", "frames")


def _farm_names(values) -> tuple[str, ...]:
    names = tuple(sorted({str(v) for v in ([values] if isinstance(values, str) else values or [])}))
    if not names:
        raise DatasetInputError("test farms: name at least one farm to hold out")
    return names


@dataclasses.dataclass(frozen=True)
class SplitSettings:
    test_farms: tuple[str, ...]
    val_fraction: float = 0.2
    seed: int = 42
    refreeze: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_farms", _farm_names(self.test_farms))
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise DatasetInputError(f"val_fraction must be at least 0 and below 1, got {self.val_fraction!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise DatasetInputError(f"seed must be a non-negative integer, got {self.seed!r}")

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "test_farms": list(self.test_farms)}


@dataclasses.dataclass(frozen=True)
class ClassSplit:
    """One class's crops per split and how close validation came to its target fraction."""

    class_name: str
    train: int
    val: int
    test: int
    #: tracks of the class outside test
    tracks: int
    target: float
    #: val / (train + val), None without any
    realised: float | None
    note: str = ""

    @property
    def deviation(self) -> float | None:
        return None if self.realised is None else self.realised - self.target


@dataclasses.dataclass(frozen=True)
class SplitResult:
    #: the crops with ``split``, sorted by split (train, val, test) then ``crop_id``
    table: pa.Table
    classes: tuple[ClassSplit, ...]
    #: new crops of a held-out farm, waiting for a refreeze to join test
    pending_test: tuple[str, ...]
    #: crops whose split came from the previous table
    kept: int
    #: crops of the previous table that are no longer among the labelled crops
    dropped: int

    def split(self, name: str) -> pa.Table:
        return self.table.filter(pc.equal(self.table["split"], name))

    def counts(self) -> dict[str, int]:
        found = Counter(self.table["split"].to_pylist())
        return {name: found.get(name, 0) for name in SPLIT_NAMES}

    def report(self) -> dict:
        """Rows per split and class, realised against target validation fractions. What
        depends on the previous table alone (``kept``, ``dropped``) is left out, so that
        rebuilding from the same labels gives the same report, frozen or not."""
        devs = [abs(c.deviation) for c in self.classes if c.deviation is not None]
        return {
            "rows": self.counts(),
            "pending_test": len(self.pending_test),
            "max_abs_deviation": max(devs) if devs else None,
            "classes": [{**dataclasses.asdict(c), "deviation": c.deviation} for c in self.classes],
        }


def _frozen(previous: pa.Table | None, settings: SplitSettings) -> dict[str, str] | None:
    """crop_id -> split of the previous table, or None when nothing is frozen."""
    if previous is None or settings.refreeze:
        return None
    require(previous, PREVIOUS_SPLITS_COLUMNS, "previous splits")
    rows = previous.select(list(PREVIOUS_SPLITS_COLUMNS)).to_pylist()
    require_unique([r["crop_id"] for r in rows], "previous splits", "crop_id")
    unknown = sorted({r["split"] for r in rows} - set(SPLIT_NAMES))
    if unknown:
        raise DatasetInputError(f"previous splits: unknown split name(s) {unknown}")
    held = tuple(sorted({r["farm"] for r in rows if r["split"] == "test"}))
    if held != settings.test_farms:
        raise DatasetInputError(
            f"previous splits hold out farm(s) {list(held)}, this build {list(settings.test_farms)}: set refreeze to re-split"
        )
    return {r["crop_id"]: r["split"] for r in rows}


def _check_test_farms(farms: list, test_farms: tuple[str, ...], what: str) -> None:
    present = set(farms)
    for farm in test_farms:
        if farm not in present:
            known = ", ".join(sorted(str(f) for f in present if f is not None)) or "none"
            raise DatasetInputError(f"test farm {farm!r} has no {what} (farms: {known})")


def _initial_sides(ids, farms, settings, frozen) -> tuple[list, list[str]]:
    """Split per crop from the frozen table and the held-out farms (None: to place)."""
    held = set(settings.test_farms)
    sides, pending = [], []
    for crop_id, farm in zip(ids, farms):
        prior = frozen.get(crop_id) if frozen is not None else None
        if prior is None and farm in held:
            if frozen is not None:
                pending.append(crop_id)
                prior = "pending"
            else:
                prior = "test"
        sides.append(prior)
    return sides, pending


def behaviour_splits(crops: pa.Table, settings: SplitSettings, previous: pa.Table | None = None) -> SplitResult:
    """Assign each labelled crop (``SPLIT_INPUT_COLUMNS``) to train, val or test (module rules)."""
    require(crops, SPLIT_INPUT_COLUMNS, "labelled crops")
    crops = crops.sort_by("crop_id")
    cols = crops.select(list(SPLIT_INPUT_COLUMNS)).to_pydict()
    ids = cols["crop_id"]
    require_unique(ids, "labelled crops", "crop_id")
    frozen = _frozen(previous, settings)
    if frozen is None:
        _check_test_farms(cols["farm"], settings.test_farms, "labelled crops")
    sides, pending = _initial_sides(ids, cols["farm"], settings, frozen)
    groups = list(zip(cols["video_id"], cols["track_id"]))
    todo = [i for i, s in enumerate(sides) if s not in ("test", "pending")]
    placed = place_tracks([groups[i] for i in todo], [cols["class_name"][i] for i in todo], [sides[i] for i in todo], settings.val_fraction, settings.seed)
    for i, side in zip(todo, placed):
        sides[i] = side
    keep = [s != "pending" for s in sides]
    rank = {name: k for k, name in enumerate(SPLIT_NAMES)}
    table = crops.append_column(SPLIT_FIELD, pa.array(sides, pa.string())).filter(pa.array(keep))
    table = table.append_column("_rank", pa.array([rank[s] for s, k in zip(sides, keep) if k], pa.int8()))
    table = table.sort_by([("_rank", "ascending"), ("crop_id", "ascending")]).drop_columns(["_rank"])
    kept = sum(1 for i in ids if frozen is not None and i in frozen)
    dropped = len(set(frozen) - set(ids)) if frozen is not None else 0
    return SplitResult(table, _class_report(table, settings.val_fraction), tuple(pending), kept, dropped)


def _group_matrix(groups, classes) -> tuple[list, list[str], np.ndarray, list[list[int]]]:
    keys = sorted(set(groups))
    names = sorted(set(classes))
    g_index = {k: n for n, k in enumerate(keys)}
    c_index = {c: n for n, c in enumerate(names)}
    counts = np.zeros((len(keys), len(names)), np.int64)
    members: list[list[int]] = [[] for _ in keys]
    for i, (key, cls) in enumerate(zip(groups, classes)):
        counts[g_index[key], c_index[cls]] += 1
        members[g_index[key]].append(i)
    return keys, names, counts, members


def _fixed_side(prior: list) -> str | None:
    """A track's side from its crops' previous splits: the majority (ties: train)."""
    votes = Counter(s for s in prior if s is not None)
    if not votes:
        return None
    return "val" if votes["val"] > votes["train"] else "train"


def _cost_delta(val: np.ndarray, add: np.ndarray, target: np.ndarray, scale: np.ndarray) -> float:
    """Change of the sum of squared relative errors when ``add`` joins validation."""
    return float((((val + add - target) / scale) ** 2 - ((val - target) / scale) ** 2).sum())


def place_tracks(groups: list, classes: list[str], prior: list, fraction: float, seed: int) -> list[str]:
    """'train' or 'val' per crop, whole groups (``groups[i]``, e.g. (video_id, track_id))
    on one side, stratified by ``classes[i]``; ``prior[i]`` ('train', 'val' or None) fixes
    the side of its group. Deterministic for the same (sorted) inputs and seed."""
    if not groups:
        return []
    keys, names, counts, members = _group_matrix(groups, classes)
    fixed = [_fixed_side([prior[i] for i in m]) for m in members]
    n = counts.sum(axis=0).astype(float)
    n_groups = (counts > 0).sum(axis=0)
    spread = (n_groups >= 2) & (fraction > 0)
    target = np.where(spread, np.minimum(np.maximum(fraction * n, 1.0), n - 1.0), 0.0)
    scale = np.maximum(target, 1.0)
    in_val = np.array([side == "val" for side in fixed])
    free = [k for k, side in enumerate(fixed) if side is None]
    order = [free[k] for k in np.random.default_rng(seed).permutation(len(free))]
    order.sort(key=lambda k: n[counts[k] > 0].min())  # rarest classes first (stable: keeps the shuffle)
    if fraction > 0:
        _fill(order, in_val, counts, target, scale)
    _repair(order, in_val, counts, spread, target, scale)
    side_of_group = ["val" if v else "train" for v in in_val]
    crop_group = {i: k for k, m in enumerate(members) for i in m}
    return [side_of_group[crop_group[i]] for i in range(len(groups))]


def _fill(order: list[int], in_val: np.ndarray, counts: np.ndarray, target: np.ndarray, scale: np.ndarray) -> None:
    """Two passes over the free groups in ``order``: first every group that fits (no class
    beyond its target), then every group that brings validation closer to the targets.
    (One pass of the second kind alone lets the last, largest class's deficit drag the
    middle classes 20-30% over their targets on tracks that mix classes.)"""
    val = counts[in_val].sum(axis=0).astype(float)
    for k in order:
        if np.all(val + counts[k] <= target + 1e-9):
            in_val[k] = True
            val += counts[k]
    for k in order:
        if not in_val[k] and _cost_delta(val, counts[k], target, scale) < 0:
            in_val[k] = True
            val += counts[k]


def _repair(order: list[int], in_val: np.ndarray, counts: np.ndarray, spread: np.ndarray, target, scale) -> None:
    """Give every spread class at least one crop on each side, moving free groups only and
    never taking the last crop of a class from a side."""
    for c in np.flatnonzero(spread):
        val = counts[in_val].sum(axis=0)
        train = counts[~in_val].sum(axis=0)
        to_val = val[c] == 0
        if not to_val and train[c] > 0:
            continue
        source = train if to_val else val
        # train keeps every class it has; validation keeps every spread class it has
        guarded = np.ones_like(spread) if to_val else spread
        candidates = [
            k for k in order
            if in_val[k] != to_val and counts[k, c] > 0 and np.all((source - counts[k] >= 1) | (counts[k] == 0) | ~guarded)
        ]
        if not candidates:
            continue
        sign = 1.0 if to_val else -1.0
        best = min(candidates, key=lambda k: _cost_delta(val.astype(float), sign * counts[k], target, scale))
        in_val[best] = to_val


def _class_report(table: pa.Table, fraction: float) -> tuple[ClassSplit, ...]:
    rows = table.select(["class_name", "split", "video_id", "track_id"]).to_pylist()
    per = defaultdict(Counter)
    tracks = defaultdict(set)
    for r in rows:
        per[r["class_name"]][r["split"]] += 1
        if r["split"] != "test":
            tracks[r["class_name"]].add((r["video_id"], r["track_id"]))
    out = []
    for cls in sorted(per):
        train, val, test = (per[cls][s] for s in SPLIT_NAMES)
        n_tracks = len(tracks[cls])
        realised = val / (train + val) if train + val else None
        note = ""
        if n_tracks == 0:
            note = "test only"
        elif n_tracks == 1:
            note = f"all {train + val} crops on one track: none in validation"
        elif fraction > 0 and (val == 0 or train == 0):
            note = "could not put a track on each side without emptying another class's side"
        out.append(ClassSplit(cls, train, val, test, n_tracks, fraction, realised, note))
    return tuple(out)


def empty_splits(report: dict) -> dict[str, str]:
    """Why each empty split of a ``SplitResult.report()`` is empty, in a sentence (what the
    class notes say, e.g. every crop of a class on one track); {} when none is."""
    rows, classes = report["rows"], report["classes"]
    outside_test = rows["train"] + rows["val"]
    why = {}  # test is never empty: a held-out farm without labelled crops is an error
    if outside_test == 0:
        return {"train": "every labelled crop is of a held-out farm", "val": "every labelled crop is of a held-out farm"}
    if rows["val"] == 0:
        if all(c["target"] == 0 for c in classes):
            why["val"] = "the validation fraction is 0"
        else:
            notes = "; ".join(f"{c['class_name']}: {c['note']}" for c in classes if c["train"] + c["val"] and c["note"])
            why["val"] = ("a track (an animal through consecutive clips) goes to train or val whole, and no class could spare "
                          f"one ({notes}): label crops of more animals")
    if rows["train"] == 0:
        why["train"] = "every labelled crop outside the held-out farms went to validation"
    return why


def pretraining_split(crops: pa.Table, test_farms) -> pa.Table:
    """Every crop with ``split`` 'train', or 'test' for the held-out farm(s); sorted by split
    then ``crop_path``. Frame counts are the table's (the catalog's), never re-probed."""
    require(crops, PRETRAIN_INPUT_COLUMNS, "pre-training crops")
    held = _farm_names(test_farms)
    _check_test_farms(crops["farm"].to_pylist(), held, "crops")
    is_test = pc.fill_null(pc.is_in(crops["farm"], value_set=pa.array(held, pa.string())), False)
    table = crops.append_column(SPLIT_FIELD, pc.if_else(is_test, "test", "train"))
    table = table.append_column("_rank", pc.cast(is_test, pa.int8()))
    return table.sort_by([("_rank", "ascending"), ("crop_path", "ascending"), ("crop_id", "ascending")]).drop_columns(["_rank"])
