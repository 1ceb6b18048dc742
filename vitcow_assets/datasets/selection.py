"""Which crops a dataset uses: filters over the catalog, and each labelled crop resolved to
one training class.

Filters (``CropFilter``): presence ratio at least ``min_presence``; farms, cameras and
segmenters from given lists; a time-of-day window on the crop's start (the source's
``recorded_at`` plus ``source_frame_start / (fps × frame_step)`` seconds, camera-local;
``day_end`` exclusive; a window may cross midnight; a crop without ``recorded_at`` is
dropped when a window is set).

Labels (``resolve_labels``): ``labelling.verdicts``' rule. A gold crop is its reference
label; a crop a reviewer decided is the decision in force; otherwise every current label
of the crop maps through the taxonomy to a class or to an exclusion (``Delete``): one class
is that class, all exclusions excluded, anything else (two classes, or a class and an
exclusion) a conflict, left out and counted until a reviewer decides it. Labels marked
unsure are used unless ``drop_unsure`` (then they are left out and counted; a crop with
only unsure labels is not used). Where the label used marks a segment, the trimmed copy cut
for that segment replaces the crop (its path, frame count and duration); a segment without
a matching trimmed copy leaves the crop out, counted as awaiting its trim.

Pure: pyarrow/numpy in, pyarrow out; imports ``core`` and the pure ``labelling.verdicts``.
"""

import dataclasses
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.clips import parse_time_of_day
from vitcow_assets.core.tables import field
from vitcow_assets.core.taxonomy import Taxonomy
from vitcow_assets.datasets.inputs import (
    CATALOG_COLUMNS,
    LABELS_COLUMNS,
    TRIMMED_COLUMNS,
    DatasetInputError,
    labels_with_roles,
    require,
    require_unique,
)
from vitcow_assets.labelling.verdicts import ANNOTATOR_ROLE, GOLD_ROLE, REVIEWER_ROLE, Verdict, verdict


def _names(values) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return tuple(sorted({str(v) for v in values}))


@dataclasses.dataclass(frozen=True)
class CropFilter:
    """Which catalog crops to keep; ``None`` for a list means no restriction."""

    min_presence: float = 0.5
    farms: tuple[str, ...] | None = None
    cameras: tuple[str, ...] | None = None
    segmenters: tuple[str, ...] | None = None
    #: "HH:MM"; both or neither
    day_start: str | None = None
    day_end: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.min_presence) <= 1.0:
            raise DatasetInputError(f"min_presence must be between 0 and 1, got {self.min_presence!r}")
        for name in ("farms", "cameras", "segmenters"):
            object.__setattr__(self, name, _names(getattr(self, name)))
        if (self.day_start is None) != (self.day_end is None):
            raise DatasetInputError("day_start and day_end must be set together")
        try:
            if self.day_start is not None:
                parse_time_of_day(self.day_start), parse_time_of_day(self.day_end)
        except ValueError as exc:
            raise DatasetInputError(f"time-of-day window: {exc}") from None

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class Filtered:
    table: pa.Table
    #: filter -> crops it removed (each crop counted under the first filter that rejects it)
    dropped: dict[str, int]


def _seconds_of_day(table: pa.Table) -> np.ndarray:
    """Seconds after camera-local midnight at which each crop starts (NaN: no recording time)."""
    stamps = table["recorded_at"].cast(pa.timestamp("s")).cast(pa.int64())
    recorded = pc.fill_null(stamps, 0).to_numpy(zero_copy_only=False).astype(np.float64)
    recorded[pc.is_null(stamps).to_numpy(zero_copy_only=False)] = np.nan
    source_fps = table["fps"].to_numpy(zero_copy_only=False) * table["frame_step"].to_numpy(zero_copy_only=False)
    start = table["source_frame_start"].to_numpy(zero_copy_only=False)
    offset = np.divide(start, source_fps, out=np.zeros(len(start)), where=source_fps > 0)
    return np.mod(recorded + offset, 86400.0)


def _in_window(seconds: np.ndarray, day_start: str, day_end: str) -> np.ndarray:
    lo, hi = (parse_time_of_day(t) for t in (day_start, day_end))
    lo_s, hi_s = lo.hour * 3600 + lo.minute * 60, hi.hour * 3600 + hi.minute * 60
    known = ~np.isnan(seconds)
    s = np.where(known, seconds, -1.0)
    inside = (s >= lo_s) & (s < hi_s) if lo_s <= hi_s else (s >= lo_s) | (s < hi_s)
    return inside & known


def filter_crops(catalog: pa.Table, crop_filter: CropFilter = CropFilter()) -> Filtered:
    """The catalog rows that pass ``crop_filter``, in their order, and what each filter dropped."""
    require(catalog, CATALOG_COLUMNS, "catalog")
    steps = [("presence_ratio", lambda t: pc.fill_null(pc.greater_equal(t["presence_ratio"], crop_filter.min_presence), False))]
    for name, column in (("farms", "farm"), ("cameras", "camera"), ("segmenters", "segmenter")):
        wanted = getattr(crop_filter, name)
        if wanted is not None:
            steps.append((name, lambda t, c=column, w=wanted: pc.fill_null(pc.is_in(t[c], value_set=pa.array(w, pa.string())), False)))
    if crop_filter.day_start is not None:
        steps.append(("time_of_day", lambda t: pa.array(_in_window(_seconds_of_day(t), crop_filter.day_start, crop_filter.day_end))))
    dropped = {}
    table = catalog
    for name, keep in steps:
        before = table.num_rows
        table = table.filter(keep(table)) if before else table
        dropped[name] = before - table.num_rows
    return Filtered(table, dropped)


RESOLVED_EXTRA = [
    field("source_crop_path", pa.string(), "the catalog's crop video (crop_path is the trimmed copy where one is used)"),
    field("trimmed", pa.bool_(), "crop_path, frames and duration_s are those of the trimmed copy of a marked segment"),
    field("trim_start_frame", pa.int64(), "first crop frame of the trimmed segment", nullable=True),
    field("trim_end_frame", pa.int64(), "last crop frame of the trimmed segment (as the trimmed table gives it)", nullable=True),
    field("class_name", pa.string(), "training class the crop's labels map to"),
    field("class_index", pa.int32(), "index of class_name in the taxonomy's alphabetical class list"),
    field("fine_labels", pa.string(), "the fine label(s) the class comes from (the gold label, the decision, or the annotators' labels, distinct, sorted, comma-separated)"),
    field("annotators", pa.int32(), "annotators who labelled the crop (gold and decisions not counted)"),
    field("label_basis", pa.string(), "what the class comes from: gold (reference label), decided (a reviewer's decision) or agreed (the annotators)"),
]


@dataclasses.dataclass(frozen=True)
class Resolution:
    """Labelled crops resolved to one class each, and what was left out."""

    crops: pa.Table
    #: crops every annotator excluded (e.g. Delete)
    excluded: int
    #: crops whose annotators disagree (two classes, or a class and an exclusion)
    conflicts: tuple[str, ...]
    #: crops with a marked segment and no trimmed copy cut for it yet
    awaiting_trim: tuple[str, ...]
    #: labelled crops the catalog does not hold (filtered out, or gone)
    not_in_catalog: int
    #: crops used on a reviewer's decision (conflicts decided, and any other decided crop)
    decided: tuple[str, ...] = ()
    #: crops used on their gold label
    gold: tuple[str, ...] = ()
    #: labels left out because they were marked unsure (``drop_unsure``)
    unsure_dropped: int = 0

    def summary(self) -> dict:
        return {
            "crops": self.crops.num_rows,
            "trimmed": int(pc.sum(self.crops["trimmed"]).as_py() or 0),
            "excluded": self.excluded,
            "conflicts": len(self.conflicts),
            "decided": len(self.decided),
            "gold": len(self.gold),
            "unsure_dropped": self.unsure_dropped,
            "awaiting_trim": len(self.awaiting_trim),
            "not_in_catalog": self.not_in_catalog,
        }


def _labels_by_crop(labels: pa.Table, taxonomy: Taxonomy) -> dict[str, dict[str, list[dict]]]:
    """crop_id -> role -> rows (each with its ``class``), checking labels and uniqueness."""
    require(labels, LABELS_COLUMNS, "labels snapshot")
    rows = labels_with_roles(labels).to_pylist()
    require_unique([(r["crop_id"], r["role"], r["annotator"]) for r in rows], "labels snapshot", "(crop_id, role, annotator)")
    by_crop: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        try:
            row["class"] = taxonomy.class_of(row["label"])
        except KeyError:
            raise DatasetInputError(
                f"labels snapshot: label {row['label']!r} (crop {row['crop_id']}) is not in taxonomy {taxonomy.name} v{taxonomy.version}"
            ) from None
        by_crop[row["crop_id"]][row["role"]].append(row)
    return by_crop


def _crop_verdict(by_role: dict[str, list[dict]], taxonomy: Taxonomy, drop_unsure: bool) -> tuple[Verdict | None, int, int]:
    """(verdict, annotators' labels used, unsure labels dropped) of one crop."""
    labels = by_role.get(ANNOTATOR_ROLE, [])
    dropped = sum(bool(r["unsure"]) for r in labels) if drop_unsure else 0
    if drop_unsure:
        labels = [r for r in labels if not r["unsure"]]
    decision = (by_role.get(REVIEWER_ROLE) or [None])[0]
    gold = (by_role.get(GOLD_ROLE) or [None])[0]
    return verdict(labels, taxonomy.class_of, decision, gold), len(labels), dropped


def _trims(trimmed: pa.Table | None) -> dict[str, dict]:
    if trimmed is None:
        return {}
    require(trimmed, TRIMMED_COLUMNS, "trimmed crops")
    rows = trimmed.select(list(TRIMMED_COLUMNS)).to_pylist()
    require_unique([r["crop_id"] for r in rows], "trimmed crops", "crop_id")
    return {r["crop_id"]: r for r in rows}


def _resolved_row(crop: dict, found: Verdict, annotators: int, trim: dict | None, taxonomy: Taxonomy) -> dict:
    cls = found.class_name
    row = {
        **crop,
        "source_crop_path": crop["crop_path"],
        "trimmed": trim is not None,
        "trim_start_frame": None,
        "trim_end_frame": None,
        "class_name": cls,
        "class_index": taxonomy.class_index(cls),
        "fine_labels": ",".join(sorted({r["label"] for r in found.rows})),
        "annotators": annotators,
        "label_basis": found.status,
    }
    if trim is not None:
        row.update(crop_path=trim["trimmed_path"], frames=trim["frames"], trim_start_frame=trim["start_frame"], trim_end_frame=trim["end_frame"])
        row["duration_s"] = trim["frames"] / crop["fps"] if crop["fps"] else 0.0
    return row


def _matching_trim(found: Verdict, trim: dict | None) -> tuple[bool, dict | None]:
    """(a segment is marked, the trimmed copy cut for it or None) for the rows used."""
    segments = {(r["start_frame"], r["end_frame"]) for r in found.rows if r["start_frame"] is not None and r["end_frame"] is not None}
    if trim is not None and (trim["start_frame"], trim["end_frame"]) not in segments:
        trim = None  # cut for a segment the rows used do not mark: stale
    return bool(segments), trim


def resolve_labels(labels: pa.Table, catalog: pa.Table, taxonomy: Taxonomy, trimmed: pa.Table | None = None,
                   drop_unsure: bool = False) -> Resolution:
    """One row per usable labelled crop: the catalog's row (``catalog``'s columns, filtered
    or not) with its class (``RESOLVED_EXTRA``), sorted by ``crop_id``."""
    require(catalog, CATALOG_COLUMNS, "catalog")
    by_crop = _labels_by_crop(labels, taxonomy)
    trims = _trims(trimmed)
    ids = sorted(by_crop)
    found = catalog.filter(pc.is_in(catalog["crop_id"], value_set=pa.array(ids, pa.string())))
    crops = {r["crop_id"]: r for r in found.to_pylist()}
    rows, excluded, awaiting, unsure_dropped = [], 0, [], 0
    basis: dict[str, list[str]] = defaultdict(list)
    for crop_id in ids:
        if crop_id not in crops:
            continue
        outcome, annotators, dropped = _crop_verdict(by_crop[crop_id], taxonomy, drop_unsure)
        unsure_dropped += dropped
        if outcome is None:
            continue
        basis[outcome.status].append(crop_id)
        if not outcome.usable:
            excluded += outcome.status != "conflict"
            continue
        segmented, trim = _matching_trim(outcome, trims.get(crop_id))
        if segmented and trim is None:
            awaiting.append(crop_id)
            continue
        rows.append(_resolved_row(crops[crop_id], outcome, annotators, trim, taxonomy))
    schema = pa.schema(list(found.schema) + RESOLVED_EXTRA)
    return Resolution(
        pa.Table.from_pylist(rows, schema=schema), excluded, tuple(basis["conflict"]), tuple(awaiting), len(ids) - len(crops),
        decided=tuple(basis["decided"]), gold=tuple(basis["gold"]), unsure_dropped=unsure_dropped,
    )
