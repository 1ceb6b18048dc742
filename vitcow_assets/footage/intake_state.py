"""Per-file intake state: one row per landing file, in the platform's own database.

The landing sensor used to keep every file it had seen in its cursor, which Dagster copies
into every tick it records (11 MB a tick for a year of footage). Here each file is one row,
updated in place (SQLAlchemy Core; SQLite ``<home>/intake/intake.db`` by default, the
Dagster instance's Postgres database when the instance is on Postgres, or
``VITCOW_INTAKE_DB``):

- ``intake_files``: URI, source, folder, the signature of its last look (``seen_*``) and
  the one it was taken with (``taken_*``), its state (``core.settle``: waiting, arrived,
  claimed, taken), when it was recorded (from its path, else its mtime: the backlog is
  taken oldest first), its partition, and who took it (``owner``), in which tick (``gen``)
  and whether that tick's run request reached Dagster (``delivered``);
- ``intake_folders``: per source folder, what its last listing saw (``core.folder_watch``);
- ``intake_counters``: the tick generations (unique across every sensor sharing the state).

Every take is its own transactions: claimed (only one sensor can claim a file: the claim
is a conditional update), then marked taken once registered, each committed at once. A
killed tick therefore leaves each file either claimed (the claim lapses after
``CLAIM_LEASE_S`` and the file is taken again, its run requested even if the registry
already holds its bytes) or taken and not yet delivered (requested again by the next
tick). Observations are committed per folder. SQLite commits with ``synchronous=NORMAL``
in WAL mode: a killed process loses nothing committed; a power cut may lose the last
commits (as it may the registry's last files, which are not synced either), and the next
looks make them again.

May import sqlalchemy, ``runtime.database``, ``core`` and ``remote.locations``; no Dagster.
"""

import contextlib
import dataclasses
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from vitcow_assets.core.folder_watch import FolderMark
from vitcow_assets.core.settle import ARRIVED, CLAIMED, TAKEN, WAITING, FileMark, SettleCursor, judge
from vitcow_assets.remote.locations import Location, is_url
from vitcow_assets.runtime.database import instance_url, open_engine

PATH_CHARS = 2048
SOURCE_CHARS = 160
#: a claim older than this belongs to a tick that died (a sensor evaluation ends within 60 s)
CLAIM_LEASE_S = 180.0
#: advisory-lock key that serialises table creation on PostgreSQL (any constant)
_PG_CREATE_LOCK = 0x76696E74
#: rows per statement when deleting by URI
_CHUNK = 500
VIDEO, PROMPTS = "video", "prompts"

metadata = sa.MetaData()

files = sa.Table(
    "intake_files",
    metadata,
    sa.Column("uri", sa.String(PATH_CHARS), primary_key=True),
    sa.Column("source", sa.String(SOURCE_CHARS), nullable=False),
    sa.Column("folder", sa.String(PATH_CHARS), nullable=False),
    sa.Column("fs_path", sa.String(PATH_CHARS), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("seen_size", sa.BigInteger, nullable=True),
    sa.Column("seen_mtime_ns", sa.BigInteger, nullable=True),
    sa.Column("taken_size", sa.BigInteger, nullable=True),
    sa.Column("taken_mtime_ns", sa.BigInteger, nullable=True),
    sa.Column("recorded_s", sa.BigInteger, nullable=False),
    sa.Column("partition_key", sa.String(SOURCE_CHARS), nullable=True),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("gen", sa.BigInteger, nullable=True),
    sa.Column("delivered", sa.Boolean, nullable=False),
    sa.Column("resumed", sa.Boolean, nullable=False),
    sa.Column("claimed_s", sa.Float, nullable=True),
    sa.Column("changed_s", sa.Float, nullable=False),
    sa.Index("intake_files_folder", "source", "folder"),
    sa.Index("intake_files_queue", "state", "recorded_s"),
    sa.Index("intake_files_requests", "owner", "delivered"),
)

folders = sa.Table(
    "intake_folders",
    metadata,
    sa.Column("source", sa.String(SOURCE_CHARS), primary_key=True),
    sa.Column("path", sa.String(PATH_CHARS), primary_key=True),
    sa.Column("parent", sa.String(PATH_CHARS), nullable=True),
    sa.Column("mtime_ns", sa.BigInteger, nullable=True),
    sa.Column("since_s", sa.Float, nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False),
    sa.Column("active_ns", sa.BigInteger, nullable=False),
    sa.Column("swept", sa.BigInteger, nullable=False),
    sa.Column("listed_s", sa.Float, nullable=False),
)

counters = sa.Table(
    "intake_counters",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)


#: the files of one folder
_FOLDER_FILES = sa.select(files).where(files.c.source == sa.bindparam("source"), files.c.folder == sa.bindparam("folder"))
#: an observation's update: only if the row is still as it was read
_CONDITIONAL_UPDATE = (
    files.update()
    .where(
        files.c.uri == sa.bindparam("key"),
        files.c.state == sa.bindparam("was"),
        sa.or_(files.c.seen_size == sa.bindparam("was_size"), sa.and_(files.c.seen_size.is_(None), sa.bindparam("was_size").is_(None))),
        sa.or_(files.c.seen_mtime_ns == sa.bindparam("was_mtime"), sa.and_(files.c.seen_mtime_ns.is_(None), sa.bindparam("was_mtime").is_(None))),
    )
    .values({k: sa.bindparam(k) for k in ("state", "seen_size", "seen_mtime_ns", "taken_size", "taken_mtime_ns", "changed_s")})
)


class IntakeStateError(RuntimeError):
    """The intake database cannot be opened (one line, no password)."""


def default_url(home: str | os.PathLike) -> str:
    return f"sqlite:///{Path(home).absolute() / 'intake' / 'intake.db'}"


def resolve_url(url: str | None, home: str | os.PathLike, dagster_home: str | os.PathLike | None = None) -> str:
    """``url``, else the instance's Postgres (when it is on Postgres), else the SQLite file
    under ``home``."""
    dagster_home = dagster_home if dagster_home is not None else os.environ.get("DAGSTER_HOME")
    return url or instance_url(dagster_home) or default_url(home)


def fs_path_of(uri: str) -> str:
    """The path a source's file system names the file at ``uri`` by."""
    return Location.parse(uri).fs_path if is_url(uri) else uri


def folder_of(fs_path: str) -> str:
    return posixpath.dirname(fs_path)


@dataclasses.dataclass(frozen=True)
class FileRow:
    uri: str
    source: str
    folder: str
    fs_path: str
    kind: str
    mark: FileMark
    recorded_s: int
    partition_key: str | None
    owner: str | None
    gen: int | None
    delivered: bool
    resumed: bool


@dataclasses.dataclass(frozen=True)
class FolderRow:
    path: str
    parent: str | None
    mark: FolderMark


def _signature(size, mtime_ns) -> list[int] | None:
    return None if size is None else [int(size), int(mtime_ns)]


def _mark_of(row) -> FileMark:
    return FileMark(row.state, _signature(row.seen_size, row.seen_mtime_ns), _signature(row.taken_size, row.taken_mtime_ns))


def _file_row(row) -> FileRow:
    mark = _mark_of(row)
    return FileRow(
        row.uri, row.source, row.folder, row.fs_path, row.kind, mark, row.recorded_s,
        row.partition_key, row.owner, row.gen, bool(row.delivered), bool(row.resumed),
    )


def _mark_values(mark: FileMark) -> dict:
    seen, taken = mark.seen or [None, None], mark.taken or [None, None]
    return {"state": mark.state, "seen_size": seen[0], "seen_mtime_ns": seen[1], "taken_size": taken[0], "taken_mtime_ns": taken[1]}


class IntakeState:
    """The intake tables in the database at ``url`` (made on first use)."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        try:
            self.engine = open_engine(self.url, "intake database")
        except ValueError as exc:
            raise IntakeStateError(str(exc)) from None
        self._insert_files = self._insert()(files).on_conflict_do_nothing(index_elements=["uri"])
        upsert = self._insert()(folders)
        kept = ("parent", "mtime_ns", "since_s", "confirmed", "active_ns", "swept", "listed_s")
        self._upsert_folders = upsert.on_conflict_do_update(index_elements=["source", "path"], set_={c: upsert.excluded[c] for c in kept})
        try:
            self._create_tables()
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            reason = " ".join(str(exc.orig).split())[:200]
            raise IntakeStateError(f"{self.safe_url}: cannot open the intake database ({reason})") from None

    @classmethod
    def open(cls, url: str | None, home: str | os.PathLike, dagster_home: str | os.PathLike | None = None) -> "IntakeState":
        return cls(resolve_url(url, home, dagster_home))

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "IntakeState":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: the write lock first, committed with ``NORMAL``)."""
        with self.engine.connect() as conn:
            conn.execution_options(vitcow_write=True, vitcow_synchronous="NORMAL")
            with conn.begin():
                yield conn

    def _read(self):
        return self.engine.connect()

    def _create_tables(self) -> None:
        with self._write() as conn:
            if self.backend == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CREATE_LOCK})
            metadata.create_all(conn, checkfirst=True)

    def _insert(self):
        return (postgresql.insert if self.backend == "postgresql" else sqlite.insert)

    # -- generations ----------------------------------------------------------------------

    def next_generation(self) -> int:
        """A number no tick of any sensor sharing this state has had."""
        insert = self._insert()(counters).values(name="tick", value=1)
        upsert = insert.on_conflict_do_update(index_elements=["name"], set_={"value": counters.c.value + 1})
        with self._write() as conn:
            return int(conn.execute(upsert.returning(counters.c.value)).scalar_one())

    # -- folders and what a look saw ------------------------------------------------------

    def folder_rows(self, source: str) -> dict[str, FolderRow]:
        with self._read() as conn:
            rows = conn.execute(sa.select(folders).where(folders.c.source == source)).all()
        return {
            r.path: FolderRow(r.path, r.parent, FolderMark(r.mtime_ns, float(r.since_s), bool(r.confirmed), int(r.active_ns), int(r.swept)))
            for r in rows
        }

    def unsettled_folders(self, source: str) -> set[str]:
        """Folders holding a file still arriving: listed at every look."""
        query = sa.select(files.c.folder).where(files.c.source == source, files.c.state == WAITING).distinct()
        with self._read() as conn:
            return set(conn.execute(query).scalars())

    def record_folder(
        self,
        source: str,
        folder: str,
        listed: Iterable[tuple[str, object]],
        now_s: float,
        settle_seconds: float,
        recorded_s: Callable[[object], int],
    ) -> dict[str, int]:
        """What one listing of ``folder`` saw: ``listed`` is ``(kind, SourceFile)`` for every
        file in it (not below it). Files no longer there are forgotten. Written in one
        transaction, and only where something changed; each update is conditional on the
        row being as it was read (a claim made meanwhile by another sensor stands). Returns
        how many files are in each state."""
        counts = {WAITING: 0, ARRIVED: 0, CLAIMED: 0, TAKEN: 0}
        with self._read() as conn:
            existing = {r.uri: r for r in conn.execute(_FOLDER_FILES, {"source": source, "folder": folder})}
        inserts, updates = [], []
        for kind, file in listed:
            row = existing.pop(file.uri, None)
            before = _mark_of(row) if row is not None else None
            after = judge(before, file.signature, file.mtime_ns, now_s, settle_seconds)
            counts[after.state] += 1
            if row is None:
                inserts.append(self._new_row(source, folder, kind, file, after, recorded_s(file), now_s))
            elif after != before:
                updates.append({"key": file.uri, "was": row.state, "was_size": row.seen_size, "was_mtime": row.seen_mtime_ns, **_mark_values(after), "changed_s": now_s})
        if inserts or updates or existing:
            with self._write() as conn:
                for chunk in _chunks(list(existing), _CHUNK):
                    conn.execute(files.delete().where(files.c.uri.in_(chunk)))
                if inserts:
                    conn.execute(self._insert_files, inserts)
                if updates:
                    conn.execute(_CONDITIONAL_UPDATE, updates)
        return counts

    def save_folders(self, source: str, rows: Iterable[FolderRow], now_s: float) -> None:
        """What listings left of these folders (after their files were recorded: a folder
        is never trusted before its files are)."""
        values = [
            {"source": source, "path": r.path, "parent": r.parent, "mtime_ns": r.mark.mtime_ns, "since_s": r.mark.since_s,
             "confirmed": r.mark.confirmed, "active_ns": r.mark.active_ns, "swept": r.mark.swept, "listed_s": now_s}
            for r in rows
        ]
        if values:
            with self._write() as conn:
                conn.execute(self._upsert_folders, values)

    @staticmethod
    def _new_row(source, folder, kind, file, mark: FileMark, recorded: int, now_s: float) -> dict:
        return {
            "uri": file.uri, "source": source, "folder": folder, "fs_path": file.fs_path, "kind": kind, **_mark_values(mark),
            "recorded_s": int(recorded), "partition_key": None, "owner": None, "gen": None, "delivered": True,
            "resumed": False, "claimed_s": None, "changed_s": now_s,
        }

    def save_activity(self, source: str, active: dict[str, int]) -> None:
        """Raise the activity of folders (``core.folder_watch.raised_activity``)."""
        if not active:
            return
        with self._write() as conn:
            statement = folders.update().where(folders.c.source == source, folders.c.path == sa.bindparam("key")).values(active_ns=sa.bindparam("active"))
            conn.execute(statement, [{"key": path, "active": value} for path, value in active.items()])

    def forget_folders(self, source: str, paths: Iterable[str]) -> None:
        """Folders that are gone, with everything below them."""
        with self._write() as conn:
            for path in paths:
                below = path.rstrip("/") + "/"
                conn.execute(folders.delete().where(folders.c.source == source, sa.or_(folders.c.path == path, folders.c.path.startswith(below, autoescape=True))))
                conn.execute(files.delete().where(files.c.source == source, sa.or_(files.c.folder == path, files.c.folder.startswith(below, autoescape=True))))

    def forget_source(self, source: str) -> None:
        """A source whose root is gone: nothing of it is remembered."""
        with self._write() as conn:
            conn.execute(folders.delete().where(folders.c.source == source))
            conn.execute(files.delete().where(files.c.source == source))

    # -- taking -----------------------------------------------------------------------------

    def release_stale_claims(self, now_s: float, lease_s: float | None = None) -> int:
        """Claims older than ``lease_s`` (default ``CLAIM_LEASE_S``) belong to ticks that
        died: back to the backlog, marked ``resumed``."""
        lease_s = CLAIM_LEASE_S if lease_s is None else lease_s
        with self._write() as conn:
            statement = files.update().where(files.c.state == CLAIMED, files.c.claimed_s <= now_s - lease_s)
            return conn.execute(statement.values(state=ARRIVED, resumed=True, claimed_s=None)).rowcount

    def backlog(self, sources: list[str], limit: int, kind: str | None = None) -> list[FileRow]:
        """Arrived files not taken yet, the oldest recordings first."""
        query = sa.select(files).where(files.c.state == ARRIVED, files.c.source.in_(sources))
        if kind is not None:
            query = query.where(files.c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(query.order_by(files.c.recorded_s, files.c.uri).limit(limit)).all()
        return [_file_row(r) for r in rows]

    def claim(self, row: FileRow, owner: str, gen: int, now_s: float) -> bool:
        """Take ``row`` for this tick; False when another sensor (or a look that found it
        changed) got there first."""
        seen = row.mark.seen or [None, None]
        statement = files.update().where(
            files.c.uri == row.uri, files.c.state == ARRIVED, files.c.seen_size == seen[0], files.c.seen_mtime_ns == seen[1]
        )
        with self._write() as conn:
            result = conn.execute(statement.values(state=CLAIMED, owner=owner, gen=gen, claimed_s=now_s, changed_s=now_s))
            return result.rowcount == 1

    def _mine(self, uri: str, owner: str, gen: int):
        return files.update().where(files.c.uri == uri, files.c.state == CLAIMED, files.c.owner == owner, files.c.gen == gen)

    def release(self, uri: str, owner: str, gen: int) -> None:
        """A claimed file that could not be taken now (unreadable, out of time): back to the backlog."""
        with self._write() as conn:
            conn.execute(self._mine(uri, owner, gen).values(state=ARRIVED, claimed_s=None))

    def unsettle(self, uri: str, owner: str, gen: int, signature: list[int] | None) -> None:
        """A claimed file found changed (``signature``) or gone (None) when about to be taken."""
        with self._write() as conn:
            if signature is None:
                conn.execute(files.delete().where(files.c.uri == uri, files.c.owner == owner, files.c.gen == gen))
            else:
                conn.execute(self._mine(uri, owner, gen).values(state=WAITING, seen_size=signature[0], seen_mtime_ns=signature[1], claimed_s=None))

    def mark_taken(self, uri: str, signature: list[int], partition_key: str | None, owner: str, gen: int, requested: bool, now_s: float) -> None:
        """``uri`` was taken with ``signature``: registered as ``partition_key``, and a run
        requested for it in tick ``gen`` when ``requested`` (not delivered until the cursor of
        that tick comes back)."""
        with self._write() as conn:
            row = conn.execute(sa.select(files.c.seen_size, files.c.seen_mtime_ns).where(files.c.uri == uri).with_for_update()).first()
            if row is None:
                return  # gone from the source while it was taken; the registry holds it
            state = TAKEN if _signature(row.seen_size, row.seen_mtime_ns) == list(signature) else WAITING
            conn.execute(
                files.update().where(files.c.uri == uri).values(
                    state=state, taken_size=signature[0], taken_mtime_ns=signature[1], partition_key=partition_key,
                    owner=owner, gen=gen, delivered=not requested, resumed=False, claimed_s=None, changed_s=now_s,
                )
            )

    def partition_in_folder(self, source: str, folder: str, stem: str) -> str | None:
        """The partition of the taken video named ``stem`` (any extension) in ``folder``."""
        query = sa.select(files.c.fs_path, files.c.partition_key).where(
            files.c.source == source, files.c.folder == folder, files.c.kind == VIDEO, files.c.partition_key.is_not(None)
        )
        with self._read() as conn:
            found = [r.partition_key for r in conn.execute(query) if posixpath.splitext(posixpath.basename(r.fs_path))[0] == stem]
        return found[0] if found else None

    # -- run requests and what the UI is told -----------------------------------------------

    def confirm_delivered(self, owner: str, gen: int) -> None:
        """Tick ``gen``'s result reached Dagster (its cursor came back): its requests too."""
        with self._write() as conn:
            conn.execute(files.update().where(files.c.owner == owner, files.c.gen == gen, files.c.delivered.is_(False)).values(delivered=True))

    def undelivered(self, owner: str, gen: int) -> list[FileRow]:
        """Rows ``owner`` requested runs for in ticks that never returned (other than ``gen``)."""
        query = sa.select(files).where(files.c.owner == owner, files.c.delivered.is_(False), files.c.gen != gen)
        with self._read() as conn:
            return [_file_row(r) for r in conn.execute(query.order_by(files.c.recorded_s, files.c.uri))]

    def requested_again(self, uris: list[str], owner: str, gen: int) -> None:
        with self._write() as conn:
            for chunk in _chunks(uris, _CHUNK):
                conn.execute(files.update().where(files.c.uri.in_(chunk), files.c.owner == owner).values(gen=gen))

    def counts(self, sources: list[str]) -> dict[str, int]:
        """Files still arriving, waiting to be taken, being taken (the taken are not counted)."""
        query = (
            sa.select(files.c.state, sa.func.count())
            .where(files.c.state.in_([WAITING, ARRIVED, CLAIMED]), files.c.source.in_(sources))
            .group_by(files.c.state)
        )
        with self._read() as conn:
            found = dict(conn.execute(query).all())
        return {state: int(found.get(state, 0)) for state in (WAITING, ARRIVED, CLAIMED)}

    def rows(self, sources: list[str] | None = None) -> list[FileRow]:
        """Every row (of ``sources``), by URI: for tests and tools, not for a tick."""
        query = sa.select(files)
        if sources is not None:
            query = query.where(files.c.source.in_(sources))
        with self._read() as conn:
            return [_file_row(r) for r in conn.execute(query.order_by(files.c.uri))]

    # -- the old cursor ---------------------------------------------------------------------

    def import_cursor(self, source: str, cursor: dict, kind: str, now_s: float, recorded_s: Callable[[str], int]) -> int:
        """Move an old-format settle cursor (``SettleCursor.as_dict``) of ``source`` in: its
        taken files stay taken, its waiting ones wait. Returns the rows written."""
        old = SettleCursor.from_dict(cursor)
        rows = []
        for uri in sorted(set(old.seen) | set(old.done)):
            taken, seen = old.done.get(uri), old.seen.get(uri, old.done.get(uri))
            mark = FileMark(TAKEN if taken is not None and uri not in old.seen else WAITING, list(seen), list(taken) if taken else None)
            fs_path = fs_path_of(uri)
            file = _Legacy(uri, fs_path)
            rows.append(self._new_row(source, folder_of(fs_path), kind, file, mark, recorded_s(uri), now_s))
        with self._write() as conn:
            for chunk in _chunks(rows, _CHUNK):
                conn.execute(self._insert_files, chunk)
        return len(rows)


@dataclasses.dataclass(frozen=True)
class _Legacy:
    uri: str
    fs_path: str


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
