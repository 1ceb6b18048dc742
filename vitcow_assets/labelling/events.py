"""Label events as data: the ``LabelEvent`` record and the Arrow schema of event tables.

A label event says that ``annotator`` gave ``crop_id`` the fine label ``label`` at
``labelled_at`` (UTC), optionally for the segment ``start_frame..end_frame`` (crop frames,
both inclusive) of a transitional behaviour. Events are never changed: a later label of the
same crop by the same annotator supersedes an earlier one, and an undo is an event of its
own (``kind == "undo"``, ``undoes`` = the id of the label event it takes back). The
*current* label of a (crop, annotator) pair is its latest label event that was not undone.
An annotator who is not sure marks the label ``unsure`` (stored with the event; datasets
may leave such labels out).

Pure: dataclasses and pyarrow; no database, no files.
"""

import dataclasses
import datetime as dt

import pyarrow as pa

from vitcow_assets.core.tables import field

LABEL, UNDO = "label", "undo"
#: longest annotator, label or crop name stored
NAME_CHARS = 128
#: where an event came from
SOURCES = ("page", "api", "import")

EVENT_SCHEMA = pa.schema(
    [
        field("event_id", pa.int64(), "id of the label event (increasing in the order events were written)"),
        field("crop_id", pa.string(), "crop the label is for (the catalog's crop_id)"),
        field("annotator", pa.string(), "who labelled it"),
        field("kind", pa.string(), "label, or undo (takes back the label event named by undoes)"),
        field("label", pa.string(), "fine label of the taxonomy (null for an undo)", nullable=True),
        field("start_frame", pa.int32(), "first crop frame of the labelled segment (inclusive), if a segment was marked", nullable=True),
        field("end_frame", pa.int32(), "last crop frame of the labelled segment (inclusive), if a segment was marked", nullable=True),
        field("undoes", pa.int64(), "for an undo: the label event it takes back", nullable=True),
        field("labelled_at", pa.timestamp("us", tz="UTC"), "when the event was written, UTC"),
        field("source", pa.string(), "page, api or import"),
        field("unsure", pa.bool_(), "the annotator marked the label unsure (false for an undo)"),
    ]
)


class LabelError(ValueError):
    """A label event that cannot be stored; the message is one line naming what is wrong."""


class NotAllowedError(LabelError):
    """A write the writer may not make (e.g. a decision by someone who is not a reviewer)."""


@dataclasses.dataclass(frozen=True)
class LabelEvent:
    event_id: int
    crop_id: str
    annotator: str
    kind: str
    label: str | None
    start_frame: int | None
    end_frame: int | None
    undoes: int | None
    labelled_at: dt.datetime
    source: str
    unsure: bool = False

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["labelled_at"] = iso_utc(self.labelled_at)
        return data


def utcnow() -> dt.datetime:
    """Now, naive UTC (what the database columns hold)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def check_name(what: str, value, limit: int = NAME_CHARS) -> None:
    """``LabelError`` unless ``value`` is a non-empty name of at most ``limit`` characters
    without surrounding spaces."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit or value != value.strip():
        raise LabelError(f"{what} must be a non-empty name of at most {limit} characters without surrounding spaces, not {value!r}")


def iso_utc(when: dt.datetime) -> str:
    """``2025-02-05T22:00:01.123456Z`` for an aware or naive-UTC datetime."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when.isoformat(timespec="microseconds") + "Z"


def check_segment(start_frame: int | None, end_frame: int | None, frames: int | None = None) -> None:
    """``LabelError`` unless both bounds are None, or ``0 <= start <= end`` (``< frames`` when known)."""
    if start_frame is None and end_frame is None:
        return
    if start_frame is None or end_frame is None:
        raise LabelError("a segment needs both start_frame and end_frame")
    if isinstance(start_frame, bool) or isinstance(end_frame, bool) or not isinstance(start_frame, int) or not isinstance(end_frame, int):
        raise LabelError("start_frame and end_frame must be integers")
    if not 0 <= start_frame <= end_frame:
        raise LabelError(f"segment {start_frame}..{end_frame}: need 0 <= start_frame <= end_frame")
    if frames is not None and end_frame >= frames:
        raise LabelError(f"segment {start_frame}..{end_frame}: the crop has frames 0..{frames - 1}")


def events_table(events: list[LabelEvent]) -> pa.Table:
    """An ``EVENT_SCHEMA`` table of events, in the order given."""
    columns = {name: [getattr(e, name) for e in events] for name in EVENT_SCHEMA.names}
    columns["labelled_at"] = [_aware(e.labelled_at) for e in events]
    return pa.table(columns, schema=EVENT_SCHEMA)


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)
