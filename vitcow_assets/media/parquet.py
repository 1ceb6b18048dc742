"""Parquet tables written atomically: whole, or incrementally one row group at a time."""

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.media.files import atomic_file


class ParquetSink:
    """Write a Parquet table incrementally (one row group per ``write``), atomically.

    Use as a context manager; the table appears at ``path`` only when the block exits cleanly.
    """

    def __init__(self, path: str | os.PathLike, schema: pa.Schema) -> None:
        self.path = Path(path)
        self.schema = schema
        self.rows = 0
        self._atomic = atomic_file(self.path)
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> "ParquetSink":
        tmp = self._atomic.__enter__()
        self._writer = pq.ParquetWriter(tmp, self.schema, compression="zstd")
        return self

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        self._writer.write_table(table.cast(self.schema))
        self.rows += batch.num_rows

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._writer.close()
        return bool(self._atomic.__exit__(exc_type, exc, tb))


def write_table(path: str | os.PathLike, table: pa.Table) -> None:
    """Write a whole (small) table atomically."""
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
