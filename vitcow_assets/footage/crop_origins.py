"""What bytes each partition's latest crops were made from, remembered in the platform's
database so that the nightly catch-up reads each crops materialization once.

Whether a partition's crops are current depends on the sha256 its latest ``object_crops``
materialization recorded (``core.catchup``). Reading that back from Dagster's event log
costs a fetch per partition (3 ms each on SQLite: five minutes at 100,000 videos); here
each partition keeps one row: the storage id of the materialization that was read and the
sha256 it recorded (null when it recorded none). The catch-up asks Dagster only for the
latest storage id of every partition (one query) and reads the materializations whose id
it has not seen. The table ``crop_origins`` sits beside the intake tables (the same
database: ``footage.intake_state.resolve_url``); it is a memo: emptied, it is made again
from the event log.

May import sqlalchemy and ``runtime.database``; no Dagster.
"""

import os
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from vitcow_assets.footage.intake_state import SOURCE_CHARS, IntakeStateError, resolve_url
from vitcow_assets.runtime.database import ensure_tables, forget_engine, shared_engine

SHA256_CHARS = 64
#: rows per statement
_CHUNK = 500

metadata = sa.MetaData()

origins = sa.Table(
    "crop_origins",
    metadata,
    sa.Column("partition_key", sa.String(SOURCE_CHARS), primary_key=True),
    sa.Column("storage_id", sa.BigInteger, nullable=False),
    sa.Column("source_sha256", sa.String(SHA256_CHARS), nullable=True),
)


class CropOrigins:
    """The ``crop_origins`` table in the database at ``url`` (made on first use)."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        try:
            self.engine = shared_engine(self.url, "intake database")
            ensure_tables(self.engine, metadata)
        except ValueError as exc:
            raise IntakeStateError(str(exc)) from None
        except sa.exc.OperationalError as exc:
            forget_engine(self.url)
            reason = " ".join(str(exc.orig).split())[:200]
            raise IntakeStateError(f"{self.url.render_as_string(hide_password=True)}: cannot open the intake database ({reason})") from None

    @classmethod
    def open(cls, url: str | None, home: str | os.PathLike, dagster_home: str | os.PathLike | None = None) -> "CropOrigins":
        return cls(resolve_url(url, home, dagster_home))

    def known(self) -> dict[str, tuple[int, str | None]]:
        """Every partition's remembered ``(storage id, sha256)``."""
        with self.engine.connect() as conn:
            return {r.partition_key: (int(r.storage_id), r.source_sha256) for r in conn.execute(sa.select(origins))}

    def remember(self, rows: Iterable[tuple[str, int, str | None]]) -> None:
        """``(partition, storage id, sha256)`` of materializations just read (a later
        storage id replaces an earlier one)."""
        values = [{"partition_key": k, "storage_id": s, "source_sha256": sha} for k, s, sha in rows]
        insert = (postgresql.insert if self.url.get_backend_name() == "postgresql" else sqlite.insert)(origins)
        upsert = insert.on_conflict_do_update(
            index_elements=["partition_key"],
            set_={"storage_id": insert.excluded.storage_id, "source_sha256": insert.excluded.source_sha256},
        )
        with self.engine.connect() as conn:
            conn.execution_options(vitcow_write=True)
            with conn.begin():
                for start in range(0, len(values), _CHUNK):
                    conn.execute(upsert, values[start : start + _CHUNK])
