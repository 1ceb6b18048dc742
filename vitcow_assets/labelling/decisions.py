"""Reviewers' decisions (adjudication): the label a reviewer settles a crop on.

A decision is an event (``schema.adjudications``): a reviewer gave ``crop_id`` the fine label
``label`` (optionally for a segment) at ``decided_at``; an undo names the decision it takes
back. The decision *in force* for a crop is its latest decision not undone, whoever made
it: a reviewer may supersede another's decision, and undoing it brings back the one before
it, or none (the crop's annotators' labels, and their conflict, count again). Datasets
use a crop's decision in force instead of its annotators' labels. Only a name holding a
reviewer token in force may decide or undo a decision (``NotAllowedError`` otherwise).
``DecisionStore`` is the part of ``store.LabelStore`` that keeps them.

May import sqlalchemy, pyarrow and the labelling ``events``/``schema``/``tokens`` modules.
"""

import dataclasses
import datetime as dt

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from vitcow_assets.core.tables import field
from vitcow_assets.labelling.events import SOURCES, LabelError, NotAllowedError, check_name, check_segment, iso_utc, utcnow
from vitcow_assets.labelling.schema import DECISION, UNDO_DECISION, adjudications
from vitcow_assets.labelling.tokens import REVIEWER

DECISION_SCHEMA = pa.schema(
    [
        field("event_id", pa.int64(), "id of the adjudication event (increasing in the order written)"),
        field("crop_id", pa.string(), "crop decided (the catalog's crop_id)"),
        field("reviewer", pa.string(), "who decided (a reviewer)"),
        field("kind", pa.string(), "decision, or undo (takes back the decision named by undoes)"),
        field("label", pa.string(), "fine label decided (null for an undo)", nullable=True),
        field("start_frame", pa.int32(), "first crop frame of the decided segment (inclusive), if any", nullable=True),
        field("end_frame", pa.int32(), "last crop frame of the decided segment (inclusive), if any", nullable=True),
        field("undoes", pa.int64(), "for an undo: the decision it takes back", nullable=True),
        field("decided_at", pa.timestamp("us", tz="UTC"), "when the event was written, UTC"),
        field("source", pa.string(), "page, api or import (the command line)"),
    ]
)
#: a decision undone by a concurrent undo is retried this many times before giving up
_UNDO_TRIES = 5


@dataclasses.dataclass(frozen=True)
class Decision:
    event_id: int
    crop_id: str
    reviewer: str
    kind: str
    label: str | None
    start_frame: int | None
    end_frame: int | None
    undoes: int | None
    decided_at: dt.datetime
    source: str

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["decided_at"] = iso_utc(self.decided_at)
        return data


def _row_decision(row) -> Decision:
    return Decision(row.id, row.crop_id, row.reviewer, row.kind, row.label, row.start_frame, row.end_frame, row.undoes,
                    row.decided_at.replace(tzinfo=dt.timezone.utc), row.source)


def decisions_table(decisions: list[Decision]) -> pa.Table:
    columns = {name: [getattr(d, name) for d in decisions] for name in DECISION_SCHEMA.names}
    return pa.table(columns, schema=DECISION_SCHEMA)


def _live() -> sa.Select:
    undo = adjudications.alias("undo")
    return sa.select(adjudications).where(adjudications.c.kind == DECISION, ~sa.exists().where(undo.c.undoes == adjudications.c.id))


class DecisionStore:
    """Decisions in the label database (mixed into ``store.LabelStore``: uses its
    ``engine``, ``_write`` and ``role_of``)."""

    def _check_reviewer(self, reviewer: str) -> None:
        check_name("reviewer", reviewer)
        if self.role_of(reviewer) != REVIEWER:
            raise NotAllowedError(f"{reviewer} is not a reviewer (vitcow labels token {reviewer} --role reviewer makes one)")

    def decide(self, crop_id: str, reviewer: str, label: str, start_frame: int | None = None, end_frame: int | None = None,
               source: str = "api") -> Decision:
        """Record ``reviewer``'s decision that ``crop_id`` is ``label``; returns it."""
        check_name("crop_id", crop_id)
        check_name("label", label)
        check_segment(start_frame, end_frame)
        if source not in SOURCES:
            raise LabelError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        self._check_reviewer(reviewer)
        values = {"crop_id": crop_id, "reviewer": reviewer, "kind": DECISION, "label": label, "start_frame": start_frame,
                  "end_frame": end_frame, "undoes": None, "decided_at": utcnow(), "source": source}
        with self._write() as conn:
            return _row_decision(conn.execute(adjudications.insert().values(values).returning(*adjudications.c)).one())

    def undo_decision(self, reviewer: str, crop_id: str, source: str = "api") -> tuple[Decision, Decision] | None:
        """Take back the decision in force for ``crop_id``: (the undo, the decision undone),
        or None when the crop has none."""
        check_name("crop_id", crop_id)
        self._check_reviewer(reviewer)
        for _ in range(_UNDO_TRIES):
            try:
                with self._write() as conn:
                    target = conn.execute(_live().where(adjudications.c.crop_id == crop_id).order_by(adjudications.c.id.desc()).limit(1)).first()
                    if target is None:
                        return None
                    undo = {"crop_id": crop_id, "reviewer": reviewer, "kind": UNDO_DECISION, "label": None, "start_frame": None,
                            "end_frame": None, "undoes": target.id, "decided_at": utcnow(), "source": source}
                    row = conn.execute(adjudications.insert().values(undo).returning(*adjudications.c)).one()
                    return _row_decision(row), _row_decision(target)
            except IntegrityError:
                continue
        raise LabelError(f"undo of the decision on {crop_id}: other undos kept taking it; try again")

    def current_decisions(self, crop_id: str | None = None) -> pa.Table:
        """The decision in force of every decided crop (of ``crop_id`` only, if given)
        (``DECISION_SCHEMA``), by crop_id."""
        live = _live() if crop_id is None else _live().where(adjudications.c.crop_id == crop_id)
        rank = sa.func.row_number().over(partition_by=adjudications.c.crop_id, order_by=adjudications.c.id.desc())
        ranked = live.add_columns(rank.label("rank")).subquery()
        query = sa.select(*[ranked.c[c.name] for c in adjudications.c]).where(ranked.c.rank == 1).order_by(ranked.c.crop_id)
        with self.engine.connect() as conn:
            return decisions_table([_row_decision(r) for r in conn.execute(query).all()])

    def decision_history(self, crop_id: str | None = None) -> pa.Table:
        """Every adjudication event (decisions and undos), in the order written."""
        query = sa.select(adjudications)
        if crop_id is not None:
            query = query.where(adjudications.c.crop_id == crop_id)
        with self.engine.connect() as conn:
            return decisions_table([_row_decision(r) for r in conn.execute(query.order_by(adjudications.c.id)).all()])
