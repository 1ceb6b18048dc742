"""The label database: append-only label events, work-queue assignments, reviewers'
decisions, gold labels, sign-in tokens and browser sessions (SQLAlchemy Core).

One code path for an embedded SQLite file (default ``$VITCOW_HOME/labels/labels.db``) and
PostgreSQL (any ``postgresql+psycopg2://`` URL). The tables are ``labelling.schema``'s:

- ``label_events``: one row per event (``labelling.events``): a label, or an undo naming
  the label it takes back (``undoes`` is unique: a label is undone at most once). Rows are
  only ever inserted, so history is complete and a label can be undone.
- ``assignments``: (annotator, crop_id) -> farm, queue position.
- ``adjudications``, ``gold_labels``, ``tokens``, ``sessions``: through
  ``labelling.decisions``, ``labelling.gold``, ``labelling.tokens`` and
  ``labelling.sessions`` (the parts of ``LabelStore`` they hold).

Writes are single transactions. SQLite runs in WAL mode with ``synchronous=FULL`` and a
busy timeout, and every write transaction starts with ``BEGIN IMMEDIATE`` (it takes the
write lock first, so a read-then-write such as an undo never fails half-way on a lock):
concurrent writers, threads or processes, wait their turn instead of losing a write, and a
process killed mid-write leaves the last committed state. PostgreSQL gives the same through
its transactions. Tables are created (or an older database upgraded: ``schema.upgrade``) on
first use inside a transaction holding the write lock (SQLite) or an advisory lock
(PostgreSQL), so two processes starting at once do not collide.

May import sqlalchemy, pyarrow, ``runtime.database`` (the SQLite engine and the instance's
URL) and the labelling modules named above (and ``queues`` for its schema); no dagster, no
web framework, no taxonomy (callers validate labels against theirs).
"""

import contextlib
import datetime as dt
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from vitcow_assets.runtime.database import instance_url, sqlite_engine
from vitcow_assets.labelling.decisions import DecisionStore
from vitcow_assets.labelling.events import (
    LABEL,
    NAME_CHARS,
    SOURCES,
    UNDO,
    LabelError,
    LabelEvent,
    check_name,
    check_segment,
    events_table,
    utcnow,
)
from vitcow_assets.labelling.gold import GoldStore
from vitcow_assets.labelling.queues import ASSIGNMENT_SCHEMA
from vitcow_assets.labelling.schema import assignments, label_events, tokens, upgrade
from vitcow_assets.labelling.sessions import SessionStore
from vitcow_assets.labelling.tokens import TokenStore

__all__ = ["NAME_CHARS", "DB_ENV", "LabelStore", "default_url", "resolve_url", "instance_url"]

DB_ENV = "VITCOW_LABELS_DB"
#: advisory-lock key that serialises table creation on PostgreSQL (any constant)
_PG_CREATE_LOCK = 0x76697463

def default_url(home: str | os.PathLike) -> str:
    return f"sqlite:///{Path(home).absolute() / 'labels' / 'labels.db'}"


def resolve_url(url: str | None, home: str | os.PathLike, dagster_home: str | os.PathLike | None = None) -> str:
    """``url``, else ``$VITCOW_LABELS_DB``, else the instance's Postgres (when it is on
    Postgres), else the SQLite file under ``home``."""
    dagster_home = dagster_home if dagster_home is not None else os.environ.get("DAGSTER_HOME")
    return url or os.environ.get(DB_ENV) or instance_url(dagster_home) or default_url(home)


def _row_event(row) -> LabelEvent:
    return LabelEvent(
        event_id=row.id, crop_id=row.crop_id, annotator=row.annotator, kind=row.kind, label=row.label,
        start_frame=row.start_frame, end_frame=row.end_frame, undoes=row.undoes,
        labelled_at=row.labelled_at.replace(tzinfo=dt.timezone.utc), source=row.source, unsure=bool(row.unsure),
    )


def _label_row(crop_id, annotator, label, start_frame, end_frame, source, when, unsure=False) -> dict:
    check_name("crop_id", crop_id)
    check_name("annotator", annotator)
    check_name("label", label)
    check_segment(start_frame, end_frame)
    if source not in SOURCES:
        raise LabelError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    if not isinstance(unsure, bool):
        raise LabelError(f"unsure must be true or false, not {unsure!r}")
    return {
        "crop_id": crop_id, "annotator": annotator, "kind": LABEL, "label": label, "start_frame": start_frame,
        "end_frame": end_frame, "undoes": None, "labelled_at": when, "source": source, "unsure": unsure,
    }


class LabelStore(DecisionStore, GoldStore, TokenStore, SessionStore):
    """Label events, assignments, reviewers' decisions, gold labels, sign-in tokens and
    browser sessions in the database at ``url`` (tables made, or an older database
    upgraded, on first use)."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        backend = self.url.get_backend_name()
        if backend == "sqlite":
            self.engine = sqlite_engine(self.url)
        elif backend == "postgresql":
            self.engine = sa.create_engine(self.url, pool_pre_ping=True)
        else:
            raise LabelError(f"{self.safe_url}: the labels database must be sqlite:/// or postgresql+psycopg2://")
        try:
            self._create_tables()
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            reason = " ".join(str(exc.orig).split())[:200]
            raise LabelError(f"{self.safe_url}: cannot open the labels database ({reason})") from None

    @classmethod
    def open(cls, url: str | None = None, home: str | os.PathLike | None = None) -> "LabelStore":
        """The store at ``url``, else ``$VITCOW_LABELS_DB``, else ``home``'s SQLite file."""
        return cls(resolve_url(url, home if home is not None else os.environ.get("VITCOW_HOME", "vitcow_home")))

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "LabelStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, the write lock taken first)."""
        with self.engine.connect() as conn:
            conn.execution_options(vitcow_write=True)
            with conn.begin():
                yield conn

    def _create_tables(self) -> None:
        with self._write() as conn:
            if self.backend == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CREATE_LOCK})
            self.upgraded_from = upgrade(conn, self.backend)

    # -- label events -------------------------------------------------------------------

    def add_label(self, crop_id: str, annotator: str, label: str, start_frame: int | None = None,
                  end_frame: int | None = None, source: str = "api", unsure: bool = False) -> LabelEvent:
        """Store one label event (it supersedes the pair's earlier labels); returns it."""
        return self.add_labels([{"crop_id": crop_id, "annotator": annotator, "label": label,
                                 "start_frame": start_frame, "end_frame": end_frame, "unsure": unsure}], source)[0]

    def add_labels(self, rows: Iterable[dict], source: str = "import") -> list[LabelEvent]:
        """Store label events (dicts of crop_id, annotator, label, optional start_frame,
        end_frame and unsure) in one transaction: all of them, in order, or none."""
        when = utcnow()
        values = [
            _label_row(r["crop_id"], r["annotator"], r["label"], r.get("start_frame"), r.get("end_frame"), source, when, r.get("unsure", False))
            for r in rows
        ]
        if not values:
            return []
        with self._write() as conn:
            result = conn.execute(label_events.insert().returning(*label_events.c, sort_by_parameter_order=True), values)
            return [_row_event(row) for row in result]

    def undo_last(self, annotator: str, crop_id: str | None = None, source: str = "api") -> tuple[LabelEvent, LabelEvent] | None:
        """Take back ``annotator``'s latest current label (of ``crop_id`` if given): returns
        (the undo event, the label event undone), or None when there is nothing to undo. The
        crop's previous label by the annotator, if any, is current again."""
        check_name("annotator", annotator)
        for _ in range(5):  # PostgreSQL: a concurrent undo of the same label wins; take the next
            try:
                with self._write() as conn:
                    query = self._live().where(label_events.c.annotator == annotator)
                    if crop_id is not None:
                        query = query.where(label_events.c.crop_id == crop_id)
                    target = conn.execute(query.order_by(label_events.c.id.desc()).limit(1)).first()
                    if target is None:
                        return None
                    undo = {"crop_id": target.crop_id, "annotator": annotator, "kind": UNDO, "label": None, "start_frame": None,
                            "end_frame": None, "undoes": target.id, "labelled_at": utcnow(), "source": source, "unsure": False}
                    row = conn.execute(label_events.insert().values(undo).returning(*label_events.c)).one()
                    return _row_event(row), _row_event(target)
            except IntegrityError:
                continue
        raise LabelError(f"undo for {annotator}: other undos kept taking the same label; try again")

    @staticmethod
    def _live() -> sa.Select:
        """Label events not undone."""
        undo = label_events.alias("undo")
        return sa.select(label_events).where(
            label_events.c.kind == LABEL, ~sa.exists().where(undo.c.undoes == label_events.c.id)
        )

    def current_labels(self, annotator: str | None = None) -> pa.Table:
        """The current label of every (crop, annotator) pair (``EVENT_SCHEMA``), sorted by
        crop_id and annotator: the latest label event not undone."""
        live = self._live()
        if annotator is not None:
            live = live.where(label_events.c.annotator == annotator)
        rank = sa.func.row_number().over(partition_by=[label_events.c.crop_id, label_events.c.annotator], order_by=label_events.c.id.desc())
        ranked = live.add_columns(rank.label("rank")).subquery()
        query = sa.select(*[ranked.c[c.name] for c in label_events.c]).where(ranked.c.rank == 1)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(ranked.c.crop_id, ranked.c.annotator)).all()
        return events_table([_row_event(r) for r in rows])

    def history(self, crop_id: str | None = None, annotator: str | None = None) -> pa.Table:
        """Every event (labels and undos), in the order written."""
        query = sa.select(label_events)
        if crop_id is not None:
            query = query.where(label_events.c.crop_id == crop_id)
        if annotator is not None:
            query = query.where(label_events.c.annotator == annotator)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(label_events.c.id)).all()
        return events_table([_row_event(r) for r in rows])

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(label_events)).scalar_one()

    # -- assignments --------------------------------------------------------------------

    def set_assignments(self, table: pa.Table) -> int:
        """Replace the queues of the annotators in ``table`` (``ASSIGNMENT_SCHEMA``) with its
        rows, in one transaction; other annotators' queues are kept. Returns the rows stored."""
        rows = table.select(ASSIGNMENT_SCHEMA.names).to_pylist()
        for r in rows:
            check_name("annotator", r["annotator"])
            check_name("crop_id", r["crop_id"])
        when = utcnow()
        with self._write() as conn:
            who = sorted({r["annotator"] for r in rows})
            if who:
                conn.execute(assignments.delete().where(assignments.c.annotator.in_(who)))
                conn.execute(assignments.insert(), [{**r, "assigned_at": when} for r in rows])
        return len(rows)

    def assignments(self, annotator: str | None = None) -> pa.Table:
        """Assignments (``ASSIGNMENT_SCHEMA``) sorted by annotator and position."""
        query = sa.select(*[assignments.c[n] for n in ASSIGNMENT_SCHEMA.names])
        if annotator is not None:
            query = query.where(assignments.c.annotator == annotator)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(assignments.c.annotator, assignments.c.position)).mappings().all()
        return pa.Table.from_pylist([dict(r) for r in rows], schema=ASSIGNMENT_SCHEMA)

    def annotators(self) -> list[str]:
        """Everyone with a queue, a label event or a token in force, sorted."""
        with self.engine.connect() as conn:
            names = set(conn.execute(sa.select(assignments.c.annotator).distinct()).scalars())
            names |= set(conn.execute(sa.select(label_events.c.annotator).distinct()).scalars())
            names |= set(conn.execute(sa.select(tokens.c.annotator).where(tokens.c.revoked_at.is_(None)).distinct()).scalars())
        return sorted(names)

    def check_integrity(self) -> str:
        """"ok", or what SQLite's integrity check found (PostgreSQL: always "ok")."""
        if self.backend != "sqlite":
            return "ok"
        with self.engine.connect() as conn:
            return "; ".join(r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").all())
