"""Parquet tables written atomically: whole, or incrementally one row group at a time.

Reproducible: the bytes are a function of the rows, the schema (with its key-value
metadata) and pyarrow's version (which it writes as ``created_by``): the writer options
that decide them are pinned here instead of left to pyarrow's defaults, rows keep the order
they are given in, and nothing time- or machine-dependent is written. Two processes writing
the same rows give byte-identical files (tested in ``vitcow_assets_tests/stages``).
"""

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.media.files import atomic_file

#: every option of pyarrow's Parquet writer that decides the bytes (pyarrow 26's defaults,
#: with zstd at its level 1, as before), for whole tables and row-group streams alike
WRITER_OPTIONS = {
    "compression": "zstd",
    "compression_level": 1,
    "version": "2.6",
    "data_page_version": "1.0",
    "use_dictionary": True,
    "write_statistics": True,
    "store_schema": True,
}


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
        self._writer = pq.ParquetWriter(tmp, self.schema, **WRITER_OPTIONS)
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
        pq.write_table(table, tmp, **WRITER_OPTIONS)
