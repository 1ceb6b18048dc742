"""Gold crops: crops with a reference label, mixed into annotators' queues unannounced to
measure each annotator against truth.

Gold labels live in their own table (``schema.gold_labels``), never among the annotators'
label events: a gold crop's reference label is not anyone's label, and a dataset takes it
once, as the crop's label (``verdicts``). Rows are only inserted; a crop's latest row is in
force (importing a corrected gold file supersedes the earlier reference). ``GoldStore`` is
the part of ``store.LabelStore`` that keeps them; ``vitcow labels gold import`` reads the
CSV forms of ``csv_labels``.

May import sqlalchemy, pyarrow and the labelling ``events``/``schema`` modules.
"""

import datetime as dt

import pyarrow as pa
import sqlalchemy as sa

from vitcow_assets.core.tables import field
from vitcow_assets.labelling.events import check_name, check_segment, utcnow
from vitcow_assets.labelling.schema import SOURCE_CHARS, gold_labels

GOLD_SCHEMA = pa.schema(
    [
        field("event_id", pa.int64(), "id of the gold row (increasing in the order written)"),
        field("crop_id", pa.string(), "gold crop (the catalog's crop_id)"),
        field("label", pa.string(), "its reference fine label"),
        field("start_frame", pa.int32(), "first crop frame of the reference segment (inclusive), if any", nullable=True),
        field("end_frame", pa.int32(), "last crop frame of the reference segment (inclusive), if any", nullable=True),
        field("marked_at", pa.timestamp("us", tz="UTC"), "when the reference label was imported, UTC"),
        field("source", pa.string(), "the file it was imported from"),
    ]
)


class GoldStore:
    """Gold labels in the label database (mixed into ``store.LabelStore``)."""

    def add_gold(self, rows: list[dict], source: str) -> int:
        """Mark crops as gold (dicts of crop_id, label, optional start_frame and end_frame),
        all in one transaction or none; returns the rows stored."""
        when, source = utcnow(), str(source)[-SOURCE_CHARS:]
        values = []
        for r in rows:
            check_name("crop_id", r["crop_id"])
            check_name("label", r["label"])
            check_segment(r.get("start_frame"), r.get("end_frame"))
            values.append({"crop_id": r["crop_id"], "label": r["label"], "start_frame": r.get("start_frame"),
                           "end_frame": r.get("end_frame"), "marked_at": when, "source": source})
        if values:
            with self._write() as conn:
                conn.execute(gold_labels.insert(), values)
        return len(values)

    def gold_labels(self) -> pa.Table:
        """The reference label in force of every gold crop (``GOLD_SCHEMA``), by crop_id."""
        rank = sa.func.row_number().over(partition_by=gold_labels.c.crop_id, order_by=gold_labels.c.id.desc())
        ranked = sa.select(gold_labels, rank.label("rank")).subquery()
        query = sa.select(*[ranked.c[c.name] for c in gold_labels.c]).where(ranked.c.rank == 1).order_by(ranked.c.crop_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        columns = {
            "event_id": [r.id for r in rows], "crop_id": [r.crop_id for r in rows], "label": [r.label for r in rows],
            "start_frame": [r.start_frame for r in rows], "end_frame": [r.end_frame for r in rows],
            "marked_at": [r.marked_at.replace(tzinfo=dt.timezone.utc) for r in rows], "source": [r.source for r in rows],
        }
        return pa.table(columns, schema=GOLD_SCHEMA)
