"""Content hashes of files, read in chunks (bounded memory whatever the size)."""

import hashlib
import os

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.tables import without_run_ids


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 8 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def table_content_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of what a Parquet table holds, the run that wrote it aside: its schema (field
    metadata included) and rows, read one row group at a time, without the run-id columns and
    keys (``core.tables.RUN_ID_COLUMNS``, ``RUN_ID_KEYS``). Two runs that made the same rows give
    the same digest although their files' bytes differ."""
    digest = hashlib.sha256()
    parquet = pq.ParquetFile(path)
    schema = without_run_ids(parquet.schema_arrow.empty_table()).schema
    digest.update(schema.serialize().to_pybytes())
    names = schema.names
    for group in range(parquet.num_row_groups):
        rows = parquet.read_row_group(group, columns=names).replace_schema_metadata(schema.metadata)
        for batch in rows.to_batches():
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, schema) as writer:
                writer.write_batch(batch)
            digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()
