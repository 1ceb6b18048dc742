"""Statistics of a dataset: hours, crops and animals per split, farm and class; class
balance; the presence-ratio histogram; annotators, their agreement and accuracy on gold.

Definitions: *hours* add up the crops' ``duration_s`` (trimmed copies count their own
length; consecutive crops of a track share one frame, counted in both); *animals* count
distinct ``(video_id, track_id)`` (the same cow in two videos counts twice); a crop with
no farm counts under ``(unknown)``. Agreement compares the training classes two annotators
gave the crops both labelled (an exclusion such as ``Delete`` is its own category):
raw agreement and Cohen's kappa per pair of annotators, pooled over all pairs, and Fleiss'
kappa over every crop two or more annotators labelled. Per annotator (the snapshot's
``annotator`` rows; ``reviewer`` rows are decisions, ``gold`` rows reference labels):
labels given, of which double-labelled and unsure, gold accuracy (training class of their
label against the gold label's, on the gold crops they labelled), the conflicts they were
part of and how many of those a reviewer decided, and, for reviewers, decisions in force.

Pure: pyarrow/numpy in, pyarrow out.
"""

import dataclasses
import itertools
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa

from vitcow_assets.core.agreement import FleissKappa, cohen_kappa, fleiss_kappa, gold_score
from vitcow_assets.core.taxonomy import Taxonomy
from vitcow_assets.datasets.inputs import LABELS_COLUMNS, DatasetInputError, labels_with_roles, require
from vitcow_assets.datasets.splits import SPLIT_NAMES
from vitcow_assets.labelling.verdicts import ANNOTATOR_ROLE, GOLD_ROLE, REVIEWER_ROLE

STATS_INPUT_COLUMNS = ("split", "class_name", "farm", "video_id", "track_id", "duration_s", "presence_ratio")
UNKNOWN_FARM = "(unknown)"
EXCLUDED = "(excluded)"


@dataclasses.dataclass(frozen=True)
class DatasetStats:
    by_split: pa.Table
    by_farm: pa.Table
    by_class: pa.Table
    presence: pa.Table
    annotators: pa.Table
    agreement: pa.Table
    classes: tuple[str, ...]
    #: Fleiss' kappa over the crops two or more annotators labelled (training classes)
    fleiss: FleissKappa = FleissKappa(0, 0, None, None, None)

    def tables(self) -> dict[str, pa.Table]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), pa.Table)}

    def class_counts(self) -> dict[str, dict[str, int]]:
        """split -> class -> crops (every class of the taxonomy, zeros included)."""
        out: dict[str, dict[str, int]] = {s: {c: 0 for c in self.classes} for s in SPLIT_NAMES}
        for r in self.by_class.to_pylist():
            out[r["split"]][r["class_name"]] = r["crops"]
        return out

    def balance(self) -> dict[str, dict]:
        """Per split: the largest and smallest class present and their ratio."""
        out = {}
        for split, counts in self.class_counts().items():
            present = {c: n for c, n in counts.items() if n}
            if present:
                big, small = max(present, key=present.get), min(present, key=present.get)
                out[split] = {"largest": big, "smallest": small, "largest_over_smallest": present[big] / present[small]}
        return out

    def summary(self) -> dict:
        pooled = [r for r in self.agreement.to_pylist() if r["annotator_a"] == "*"]
        return {
            "splits": {r["split"]: {k: r[k] for k in ("crops", "animals", "hours")} for r in self.by_split.to_pylist()},
            "balance": self.balance(),
            "annotators": self.annotators.num_rows,
            "agreement": pooled[0] if pooled else None,
            "fleiss_kappa": self.fleiss.as_dict(),
            "per_annotator": self.annotators.to_pylist(),
        }


def _group_rows(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, dict]:
    acc: dict[tuple, dict] = defaultdict(lambda: {"crops": 0, "animals": set(), "seconds": 0.0})
    for r in rows:
        entry = acc[tuple(r[k] for k in keys)]
        entry["crops"] += 1
        entry["animals"].add((r["video_id"], r["track_id"]))
        entry["seconds"] += r["duration_s"] or 0.0
    return acc


def _volume_table(acc: dict[tuple, dict], keys: tuple[str, ...]) -> pa.Table:
    rows = [
        {**dict(zip(keys, key)), "crops": v["crops"], "animals": len(v["animals"]), "hours": v["seconds"] / 3600.0}
        for key, v in sorted(acc.items(), key=lambda kv: tuple(str(x) for x in kv[0]))
    ]
    schema = pa.schema([(k, pa.string()) for k in keys] + [("crops", pa.int64()), ("animals", pa.int64()), ("hours", pa.float64())])
    return pa.Table.from_pylist(rows, schema=schema)


def _class_table(rows: list[dict], classes: tuple[str, ...]) -> pa.Table:
    acc = _group_rows(rows, ("split", "class_name"))
    totals = Counter(r["split"] for r in rows)
    out = []
    for split in SPLIT_NAMES:
        for cls in classes:
            v = acc.get((split, cls), {"crops": 0, "animals": set(), "seconds": 0.0})
            share = v["crops"] / totals[split] if totals[split] else 0.0
            out.append({"split": split, "class_name": cls, "crops": v["crops"], "animals": len(v["animals"]), "hours": v["seconds"] / 3600.0, "fraction": share})
    schema = pa.schema([("split", pa.string()), ("class_name", pa.string()), ("crops", pa.int64()), ("animals", pa.int64()), ("hours", pa.float64()), ("fraction", pa.float64())])
    return pa.Table.from_pylist(out, schema=schema)


def _presence_table(rows: list[dict], bins: int) -> pa.Table:
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for split in SPLIT_NAMES:
        values = np.array([r["presence_ratio"] for r in rows if r["split"] == split], float)
        counts, _ = np.histogram(values, bins=edges)  # the last bin includes 1.0
        out += [{"split": split, "bin_start": float(lo), "bin_end": float(hi), "crops": int(n)} for lo, hi, n in zip(edges[:-1], edges[1:], counts)]
    schema = pa.schema([("split", pa.string()), ("bin_start", pa.float64()), ("bin_end", pa.float64()), ("crops", pa.int64())])
    return pa.Table.from_pylist(out, schema=schema)


ANNOTATOR_SCHEMA = pa.schema([
    ("annotator", pa.string()), ("labels", pa.int64()), ("double_labelled", pa.int64()), ("unsure", pa.int64()),
    ("unsure_share", pa.float64()), ("gold_labelled", pa.int64()), ("gold_correct", pa.int64()), ("gold_accuracy", pa.float64()),
    ("conflicts", pa.int64()), ("conflicts_decided", pa.int64()), ("decisions", pa.int64()),
])
AGREEMENT_SCHEMA = pa.schema([("annotator_a", pa.string()), ("annotator_b", pa.string()), ("crops", pa.int64()), ("raw_agreement", pa.float64()), ("cohen_kappa", pa.float64())])


@dataclasses.dataclass(frozen=True)
class _Roles:
    """The snapshot by role: crop -> annotator -> (class or EXCLUDED, unsure); crop -> the
    decision's (reviewer, class) and the gold class."""

    annotated: dict[str, dict[str, tuple[str, bool]]]
    decided: dict[str, tuple[str, str]]
    gold: dict[str, str]


def _by_role(labels: pa.Table, taxonomy: Taxonomy) -> _Roles:
    roles = _Roles(defaultdict(dict), {}, {})
    for r in labels_with_roles(labels).to_pylist():
        try:
            cls = taxonomy.class_of(r["label"])
        except KeyError:
            raise DatasetInputError(f"labels snapshot: label {r['label']!r} (crop {r['crop_id']}) is not in taxonomy {taxonomy.name}") from None
        cls = EXCLUDED if cls is None else cls
        if r["role"] == REVIEWER_ROLE:
            roles.decided[r["crop_id"]] = (r["annotator"], cls)
        elif r["role"] == GOLD_ROLE:
            roles.gold[r["crop_id"]] = cls
        elif r["role"] == ANNOTATOR_ROLE:
            roles.annotated[r["crop_id"]][r["annotator"]] = (cls, bool(r["unsure"]))
    return roles


def _annotator_row(name: str, roles: _Roles) -> dict:
    mine = {crop: by[name] for crop, by in roles.annotated.items() if name in by}
    unsure = sum(flag for _, flag in mine.values())
    on_gold = [c for c in sorted(mine) if c in roles.gold]
    score = gold_score([roles.gold[c] for c in on_gold], [mine[c][0] for c in on_gold])
    conflicts = [c for c in mine if len({cls for cls, _ in roles.annotated[c].values()}) > 1 and c not in roles.gold]
    return {
        "annotator": name, "labels": len(mine), "double_labelled": sum(len(roles.annotated[c]) > 1 for c in mine),
        "unsure": unsure, "unsure_share": unsure / len(mine) if mine else None,
        "gold_labelled": score.items, "gold_correct": score.correct, "gold_accuracy": score.accuracy,
        "conflicts": len(conflicts), "conflicts_decided": sum(c in roles.decided for c in conflicts),
        "decisions": sum(who == name for who, _ in roles.decided.values()),
    }


def _pair_rows(annotated: dict[str, dict[str, tuple[str, bool]]]) -> list[dict]:
    pairs: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for crop in sorted(annotated):
        for a, b in itertools.combinations(sorted(annotated[crop]), 2):
            pairs[(a, b)][0].append(annotated[crop][a][0])
            pairs[(a, b)][1].append(annotated[crop][b][0])
    rows = []
    pooled: tuple[list, list] = ([], [])
    for (a, b), (xs, ys) in sorted(pairs.items()):
        rows.append({"annotator_a": a, "annotator_b": b, "crops": len(xs), "raw_agreement": sum(x == y for x, y in zip(xs, ys)) / len(xs), "cohen_kappa": cohen_kappa(xs, ys)})
        pooled[0].extend(xs), pooled[1].extend(ys)
    if rows:
        xs, ys = pooled
        rows.append({"annotator_a": "*", "annotator_b": "*", "crops": len(xs), "raw_agreement": sum(x == y for x, y in zip(xs, ys)) / len(xs), "cohen_kappa": cohen_kappa(xs, ys)})
    return rows


def _agreement_tables(labels: pa.Table | None, taxonomy: Taxonomy | None) -> tuple[pa.Table, pa.Table, FleissKappa]:
    if labels is None or taxonomy is None:
        return ANNOTATOR_SCHEMA.empty_table(), AGREEMENT_SCHEMA.empty_table(), fleiss_kappa([])
    require(labels, LABELS_COLUMNS, "labels snapshot")
    roles = _by_role(labels, taxonomy)
    names = sorted({a for by in roles.annotated.values() for a in by} | {who for who, _ in roles.decided.values()})
    annotators = pa.Table.from_pylist([_annotator_row(name, roles) for name in names], schema=ANNOTATOR_SCHEMA)
    fleiss = fleiss_kappa([[cls for cls, _ in by.values()] for _, by in sorted(roles.annotated.items())])
    return annotators, pa.Table.from_pylist(_pair_rows(roles.annotated), schema=AGREEMENT_SCHEMA), fleiss


def dataset_stats(splits: pa.Table, classes, labels: pa.Table | None = None, taxonomy: Taxonomy | None = None, bins: int = 10) -> DatasetStats:
    """Statistics of a splits table (``STATS_INPUT_COLUMNS``); ``classes`` in index order;
    annotator tables from ``labels`` (crop_id, label, annotator) when given with ``taxonomy``."""
    require(splits, STATS_INPUT_COLUMNS, "splits")
    rows = splits.select(list(STATS_INPUT_COLUMNS)).to_pylist()
    for r in rows:
        r["farm"] = r["farm"] if r["farm"] is not None else UNKNOWN_FARM
    by_split = _group_rows(rows, ("split",))
    by_split[("all",)] = _group_rows(rows, ())[()] if rows else {"crops": 0, "animals": set(), "seconds": 0.0}
    order = {name: k for k, name in enumerate((*SPLIT_NAMES, "all"))}
    split_table = _volume_table(by_split, ("split",))
    split_table = split_table.take(sorted(range(split_table.num_rows), key=lambda i: order.get(split_table["split"][i].as_py(), 99)))
    annotators, agreement, fleiss = _agreement_tables(labels, taxonomy)
    return DatasetStats(
        by_split=split_table,
        by_farm=_volume_table(_group_rows(rows, ("split", "farm")), ("split", "farm")),
        by_class=_class_table(rows, tuple(classes)),
        presence=_presence_table(rows, bins),
        annotators=annotators,
        agreement=agreement,
        classes=tuple(classes),
        fleiss=fleiss,
    )
