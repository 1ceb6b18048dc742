"""Atomic file and folder writes, and content hashing.

Every output is written under a temporary name in its final folder and renamed into place
only once complete, so a crash never leaves a file that looks finished but is not.
Temporary names start with ``.tmp-``; the next write of the same output removes those an
interrupted write left behind.
"""

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TEMP_PREFIX = ".tmp-"


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")


def _sweep_stale(path: Path) -> None:
    """Remove temporaries of earlier, interrupted writes of ``path`` (a crash, ``kill -9``)."""
    for stale in path.parent.glob(f"{TEMP_PREFIX}????????-{path.name}"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(path)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``path`` (old contents removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(path)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if path.exists():
            old = _temp_sibling(path)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 8 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()
