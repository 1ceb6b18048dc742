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

May import sqlalchemy and yaml; nothing of the project, no Dagster.
"""

import os
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


def sqlite_engine(url: sa.URL) -> sa.Engine:
    """A SQLite engine as described above (the file's folder is made when missing)."""
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

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
