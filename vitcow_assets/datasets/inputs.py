"""The columns the dataset modules need from each input table, and the check that names
what is missing.

The integrator matches these: the crop catalog (``core.catalog.CATALOG_SCHEMA``), the labels
snapshot (one row per current label of (crop, annotator)), the trimmed crops table and a
previous splits table. Extra columns are allowed and ignored.

Pure: pyarrow tables in, errors out; no file I/O.
"""

import pyarrow as pa

#: from the crop catalog (``core.catalog.CATALOG_SCHEMA``)
CATALOG_COLUMNS = (
    "crop_id", "crop_path", "video_id", "farm", "camera", "recorded_at", "clip_id", "object_id", "track_id",
    "source_frame_start", "frame_step", "frames", "presence_ratio", "fps", "duration_s", "segmenter",
)
#: from the labels snapshot: the fine label, who gave it and the segment marked (nulls if none)
LABELS_COLUMNS = ("crop_id", "label", "annotator", "start_frame", "end_frame")
#: optional in the labels snapshot (older snapshots lack them): what each row is
#: (``labelling.verdicts.ROLES``; default annotator) and the annotator's unsure flag (default false)
LABELS_OPTIONAL = {"role": ("annotator", pa.string()), "unsure": (False, pa.bool_())}
#: from the trimmed crops table: the segment a trimmed copy was cut for, its path and frames
TRIMMED_COLUMNS = ("crop_id", "start_frame", "end_frame", "trimmed_path", "frames")
#: from a previous ``behaviour_splits`` table (the frozen splits)
PREVIOUS_SPLITS_COLUMNS = ("crop_id", "split", "farm")


class DatasetInputError(ValueError):
    """An input table or setting that cannot be used; the message is one line naming it."""


def require(table: pa.Table, columns: tuple[str, ...], name: str) -> None:
    """Raise ``DatasetInputError`` naming the columns of ``columns`` that ``table`` lacks."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DatasetInputError(f"{name}: missing column(s) {', '.join(missing)} (it needs {', '.join(columns)})")


def require_unique(values: list, name: str, what: str) -> None:
    """Raise ``DatasetInputError`` when ``values`` repeat (e.g. a crop id twice in a table)."""
    seen: set = set()
    for value in values:
        if value in seen:
            raise DatasetInputError(f"{name}: {what} {value!r} appears more than once")
        seen.add(value)


def labels_with_roles(labels: pa.Table) -> pa.Table:
    """The snapshot's ``LABELS_COLUMNS`` plus ``role`` and ``unsure``, filled with their
    defaults where a snapshot (or a hand-made table) lacks them."""
    out = labels.select(list(LABELS_COLUMNS))
    for name, (default, kind) in LABELS_OPTIONAL.items():
        column = labels[name] if name in labels.column_names else pa.array([default] * labels.num_rows, kind)
        out = out.append_column(name, column)
    return out
