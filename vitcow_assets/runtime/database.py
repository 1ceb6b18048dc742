"""The platform's own database connections: an embedded SQLite file or the Postgres instance.

The label store (``labelling.store``) and the intake state (``footage.intake_state``) keep
their tables in one of two places: a SQLite file under the storage root, or, when the
Dagster instance is on Postgres, the instance's own database (``instance_url``), so that
every daemon, worker and web server of a deployment sees the same rows.

``sqlite_engine`` opens SQLite the same way for both: WAL mode, a busy timeout, foreign
keys, and every write transaction begun with ``BEGIN IMMEDIATE`` (the write lock taken
first, so a read-then-write never fails half-way on a lock: concurrent writers, threads or
processes, wait their turn). A connection's ``vitcow_write`` execution option asks for a
write transaction; ``vitcow_synchronous`` (``FULL`` or ``NORMAL``) sets how a commit
reaches the disk: ``FULL`` survives a power cut, ``NORMAL`` (in WAL mode) a killed process.
A SQLite connection whose file was removed or replaced since it was opened is dropped when
next taken from the pool (a new one opens the file now there, made anew when missing).

``shared_engine`` keeps one engine per database URL per process (the landing sensor ticks
every 15 s in the same daemon process: opening an engine, connecting and checking the
tables each tick cost 7 ms on SQLite and more on Postgres); its pooled connections are
checked before use (``pool_pre_ping`` on Postgres: a tick after the server restarted
reconnects), dropped in a forked child (the parent's connections are not the child's) and
closed when the process exits (``dispose_engines``). ``ensure_tables`` makes a set of
tables once per process and database (again for a SQLite file made anew).

May import sqlalchemy and yaml; nothing of the project, no Dagster.
"""

import atexit
import os
import threading
from pathlib import Path

import sqlalchemy as sa

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: what a commit waits for unless a connection asks otherwise
DEFAULT_SYNCHRONOUS = "FULL"
_SYNCHRONOUS = ("FULL", "NORMAL")


def instance_url(dagster_home: str | os.PathLike | None) -> str | None:
    """The Postgres database of the Dagster instance at ``dagster_home`` (its dagster.yaml's
    ``storage: postgres``, the password from the variable that file names), or None when the
    instance is not on Postgres."""
    import yaml
    from sqlalchemy.engine import URL

    try:
        config = yaml.safe_load((Path(dagster_home) / "dagster.yaml").read_text()) or {} if dagster_home else {}
    except (OSError, yaml.YAMLError):
        return None
    db = ((config.get("storage") or {}).get("postgres") or {}).get("postgres_db") if isinstance(config, dict) else None
    if not isinstance(db, dict) or "hostname" not in db:
        return None
    password = db.get("password")
    if isinstance(password, dict):
        password = os.environ.get(password.get("env", ""), "")
    return URL.create(
        "postgresql+psycopg2", db.get("username"), password or None, db.get("hostname"), int(db.get("port", 5432)), db.get("db_name")
    ).render_as_string(hide_password=False)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


def _follow_the_file(engine: sa.Engine, path: Path) -> None:
    """Pooled connections to a SQLite file that was removed or replaced are dropped at
    checkout (the pool opens a new one; its folder is made again when missing)."""

    @sa.event.listens_for(engine, "do_connect")
    def _make_folder(*_):
        path.parent.mkdir(parents=True, exist_ok=True)

    @sa.event.listens_for(engine, "connect")
    def _remember(_dbapi_connection, record):
        record.info["vitcow_file"] = _file_id(path)

    @sa.event.listens_for(engine, "checkout")
    def _check(_dbapi_connection, record, _proxy):
        if record.info.get("vitcow_file") != _file_id(path):
            raise sa.exc.DisconnectionError(f"{path} was removed or replaced")


def sqlite_engine(url: sa.URL) -> sa.Engine:
    """A SQLite engine as described above (the file's folder is made when missing)."""
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    if url.database and url.database != ":memory:":
        _follow_the_file(engine, Path(url.database))

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # transactions are begun below, not by sqlite3
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        dbapi_connection.execute("PRAGMA journal_mode = WAL")
        dbapi_connection.execute(f"PRAGMA synchronous = {DEFAULT_SYNCHRONOUS}")
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        options = conn.get_execution_options()
        synchronous = options.get("vitcow_synchronous", DEFAULT_SYNCHRONOUS)
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"vitcow_synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
        conn.exec_driver_sql(f"PRAGMA synchronous = {synchronous}")  # outside a transaction: allowed here
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("vitcow_write") else "BEGIN")

    return engine


def open_engine(url: str | sa.URL, what: str) -> sa.Engine:
    """An engine for ``url`` (``sqlite:///`` or ``postgresql+psycopg2://``); ``ValueError``
    naming ``what`` for any other kind of URL."""
    url = sa.make_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return sqlite_engine(url)
    if backend == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True)
    raise ValueError(f"{url.render_as_string(hide_password=True)}: the {what} must be sqlite:/// or postgresql+psycopg2://")


_ENGINES: dict[str, sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_key(url: str | sa.URL) -> str:
    return sa.make_url(url).render_as_string(hide_password=False)


def shared_engine(url: str | sa.URL, what: str) -> sa.Engine:
    """This process's engine for ``url`` (made on first use, as ``open_engine`` makes it).
    Never dispose it yourself: ``forget_engine`` or ``dispose_engines`` do."""
    key = _engine_key(url)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = open_engine(url, what)
        return engine


def forget_engine(url: str | sa.URL) -> None:
    """Close and drop this process's engine for ``url`` (one that could not be used)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(_engine_key(url), None)
    if engine is not None:
        engine.dispose()


def dispose_engines() -> None:
    """Close every shared engine's connections (at exit; tests)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


def _after_fork_in_child() -> None:
    """A forked child leaves its parent's pooled connections alone (``close=False``: they
    are the parent's to close) and opens its own."""
    global _ENGINES_LOCK
    _ENGINES_LOCK = threading.Lock()  # it may have been held by another thread at the fork
    for engine in _ENGINES.values():
        engine.dispose(close=False)


atexit.register(dispose_engines)
os.register_at_fork(after_in_child=_after_fork_in_child)


#: (database, file, tables) made or found by this process (``ensure_tables``)
_TABLES_MADE: set[tuple] = set()
#: advisory-lock key that serialises table creation on PostgreSQL (any constant)
_PG_CREATE_LOCK = 0x76696E74


def _tables_marker(url: sa.URL, metadata: sa.MetaData) -> tuple | None:
    """What ``_TABLES_MADE`` remembers; None for a SQLite file that is not there yet."""
    tables = tuple(sorted(metadata.tables))
    name = url.render_as_string(hide_password=False)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return (name, None, tables)
    found = _file_id(Path(url.database))
    return None if found is None else (name, found, tables)


def ensure_tables(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Create ``metadata``'s tables where missing: once per process and database (a SQLite
    file removed and made again gets them again); on PostgreSQL under an advisory lock, so
    that processes starting together do not race. ``sa.exc.OperationalError`` when the
    database cannot be reached."""
    if _tables_marker(engine.url, metadata) in _TABLES_MADE:
        return
    with engine.connect() as conn:
        conn.execution_options(vitcow_write=True)
        with conn.begin():
            if engine.url.get_backend_name() == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CREATE_LOCK})
            metadata.create_all(conn, checkfirst=True)
    marker = _tables_marker(engine.url, metadata)
    if marker is not None:
        _TABLES_MADE.add(marker)
