"""Statistics of a dataset: hours, crops and animals per split, farm and class; class
balance; the presence-ratio histogram; annotators and their agreement.

Definitions: *hours* add up the crops' ``duration_s`` (trimmed copies count their own
length; consecutive crops of a track share one frame, counted in both); *animals* count
distinct ``(video_id, track_id)`` (the same cow in two videos counts twice); a crop with
no farm counts under ``(unknown)``. Agreement compares the training classes two annotators
gave the crops both labelled (an exclusion such as ``Delete`` is its own category):
raw agreement and Cohen's kappa per pair of annotators, and pooled over all pairs.

Pure: pyarrow/numpy in, pyarrow out.
"""

import dataclasses
import itertools
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa

from vitcow_assets.core.taxonomy import Taxonomy
from vitcow_assets.datasets.inputs import DatasetInputError, require
from vitcow_assets.datasets.splits import SPLIT_NAMES

STATS_INPUT_COLUMNS = ("split", "class_name", "farm", "video_id", "track_id", "duration_s", "presence_ratio")
UNKNOWN_FARM = "(unknown)"
EXCLUDED = "(excluded)"


def cohen_kappa(a: list, b: list) -> float | None:
    """Cohen's kappa of two raters' categories for the same items; None when chance
    agreement is total (both gave one and the same category throughout) or no items."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa: both raters need the same items")
    if not a:
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


@dataclasses.dataclass(frozen=True)
class DatasetStats:
    by_split: pa.Table
    by_farm: pa.Table
    by_class: pa.Table
    presence: pa.Table
    annotators: pa.Table
    agreement: pa.Table
    classes: tuple[str, ...]

    def tables(self) -> dict[str, pa.Table]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "classes"}

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


def _categories(labels: pa.Table, taxonomy: Taxonomy) -> dict[str, dict[str, str]]:
    """crop_id -> annotator -> training class (or EXCLUDED)."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for r in labels.select(["crop_id", "label", "annotator"]).to_pylist():
        try:
            cls = taxonomy.class_of(r["label"])
        except KeyError:
            raise DatasetInputError(f"labels snapshot: label {r['label']!r} (crop {r['crop_id']}) is not in taxonomy {taxonomy.name}") from None
        out[r["crop_id"]][r["annotator"]] = EXCLUDED if cls is None else cls
    return out


def _agreement_tables(labels: pa.Table | None, taxonomy: Taxonomy | None) -> tuple[pa.Table, pa.Table]:
    ann_schema = pa.schema([("annotator", pa.string()), ("labels", pa.int64()), ("double_labelled", pa.int64())])
    agr_schema = pa.schema([("annotator_a", pa.string()), ("annotator_b", pa.string()), ("crops", pa.int64()), ("raw_agreement", pa.float64()), ("cohen_kappa", pa.float64())])
    if labels is None or taxonomy is None:
        return ann_schema.empty_table(), agr_schema.empty_table()
    require(labels, ("crop_id", "label", "annotator"), "labels snapshot")
    cats = _categories(labels, taxonomy)
    per_annotator = Counter(a for by in cats.values() for a in by)
    double = Counter(a for by in cats.values() if len(by) > 1 for a in by)
    annotators = [{"annotator": a, "labels": per_annotator[a], "double_labelled": double[a]} for a in sorted(per_annotator)]
    pairs: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for crop in sorted(cats):
        for a, b in itertools.combinations(sorted(cats[crop]), 2):
            pairs[(a, b)][0].append(cats[crop][a])
            pairs[(a, b)][1].append(cats[crop][b])
    rows = []
    pooled: tuple[list, list] = ([], [])
    for (a, b), (xs, ys) in sorted(pairs.items()):
        rows.append({"annotator_a": a, "annotator_b": b, "crops": len(xs), "raw_agreement": sum(x == y for x, y in zip(xs, ys)) / len(xs), "cohen_kappa": cohen_kappa(xs, ys)})
        pooled[0].extend(xs), pooled[1].extend(ys)
    if rows:
        xs, ys = pooled
        rows.append({"annotator_a": "*", "annotator_b": "*", "crops": len(xs), "raw_agreement": sum(x == y for x, y in zip(xs, ys)) / len(xs), "cohen_kappa": cohen_kappa(xs, ys)})
    return pa.Table.from_pylist(annotators, schema=ann_schema), pa.Table.from_pylist(rows, schema=agr_schema)


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
    annotators, agreement = _agreement_tables(labels, taxonomy)
    return DatasetStats(
        by_split=split_table,
        by_farm=_volume_table(_group_rows(rows, ("split", "farm")), ("split", "farm")),
        by_class=_class_table(rows, tuple(classes)),
        presence=_presence_table(rows, bins),
        annotators=annotators,
        agreement=agreement,
        classes=tuple(classes),
    )
