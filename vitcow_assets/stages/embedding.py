"""``crop_embeddings``' work: every catalog crop embedded by one checkpoint's encoder, the
rows streamed to Parquet one row group at a time (``core.embeddings`` holds the table's
contract and rules).

Incremental: an earlier table made with the same recipe (checkpoint, encoder, sampling,
runtime and code version, all in its metadata) gives its rows back unchanged for every crop
still embedded from the same file; only the other crops are decoded and embedded. Rows go
out in ``crop_id`` order in row groups of ``ROW_GROUP_ROWS``, so the file is the same bytes
whether its rows were computed now or kept.

Bounded memory whatever the catalog's size: the crop ids and paths, one row group of output,
the window of the earlier table it is read through, and the decoded batches the prefetch
thread keeps ahead (``PREFETCH_BATCHES``).
"""

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.core.embeddings import (
    EMBEDDING_COLUMNS, ROW_GROUP_ROWS, embedding_targets, embeddings_schema, kept_mask, recipe_metadata, same_recipe, sampling_record,
)
from vitcow_assets.encoders.frames import sampled_clip
from vitcow_assets.encoders.registry import RegisteredCheckpoint
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.media.parquet import ParquetSink
from vitcow_assets.runtime import progress
from vitcow_assets.stages.catalog import read_catalog
from vitcow_assets.stages.threads import Prefetcher

#: decoded batches kept ahead of the encoder by the prefetch thread
PREFETCH_BATCHES = 2
STAGE = "crop_embeddings"


@dataclasses.dataclass(frozen=True)
class EmbeddingResult:
    path: Path
    rows: int
    embedded: int
    kept: int
    #: rows of the earlier table not carried over (crop gone, another file, another recipe)
    dropped: int
    seconds: float
    metadata: dict

    def summary(self) -> dict:
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        return {"rows": self.rows, "embedded": self.embedded, "kept": self.kept, "dropped": self.dropped, "seconds": round(self.seconds, 3),
                "crops_per_second": round(rate, 2)}


def read_targets(root: StorageRoot) -> pa.Table:
    """``crop_id`` and the file to embed of every catalog crop (trimmed copies where made)."""
    trimmed = pq.read_table(root.trimmed_table, columns=["crop_id", "trimmed_path"]) if root.trimmed_table.is_file() else None
    return embedding_targets(read_catalog(root, columns=["crop_id", "crop_path"]), trimmed)


def _previous(path: Path, metadata: dict[str, str]) -> pq.ParquetFile | None:
    """The earlier table at ``path`` when its rows can be kept (same recipe, same columns)."""
    if not path.is_file():
        return None
    try:
        previous = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid):
        return None
    schema = previous.schema_arrow
    return previous if tuple(schema.names) == EMBEDDING_COLUMNS and same_recipe(schema.metadata, metadata) else None


def _decoded(todo: pa.Table, frames: int, size: int, batch: int) -> Iterator[tuple[list, np.ndarray]]:
    """Batches of ``((crop_id, crop_path, indices), ...)`` and their clips, decoded in order."""
    for start in range(0, todo.num_rows, batch):
        rows, clips = [], []
        for crop in todo.slice(start, batch).to_pylist():
            indices, clip = sampled_clip(crop["crop_path"], frames, size)
            rows.append((crop["crop_id"], crop["crop_path"], indices))
            clips.append(clip)
        yield rows, np.stack(clips)


class _Window:
    """The earlier table's rows read forward in ``crop_id`` order, one row group at a time."""

    def __init__(self, previous: pq.ParquetFile | None) -> None:
        self._previous = previous
        self._next_group = 0
        self._held: pa.Table | None = None  # rows read but not yet past

    def _read(self) -> pa.Table | None:
        if self._previous is None or self._next_group >= self._previous.num_row_groups:
            return None
        self._next_group += 1
        return self._previous.read_row_group(self._next_group - 1, use_threads=False)

    def take(self, ids: list[str]) -> pa.Table:
        """The earlier rows of ``ids`` (not empty, sorted, each after those asked for before)."""
        parts = [] if self._held is None else [self._held]
        while not parts or (parts[-1].num_rows == 0 or parts[-1]["crop_id"][-1].as_py() <= ids[-1]):
            group = self._read()
            if group is None:
                break
            parts.append(group)
        window = pa.concat_tables(parts) if parts else None
        if window is None:
            raise RuntimeError("the earlier embeddings table lost rows while it was read")
        self._held = window.filter(pc.greater(window["crop_id"], ids[-1]))
        found = window.filter(pc.is_in(window["crop_id"], value_set=pa.array(ids, pa.string())))
        if found.num_rows != len(ids):
            raise RuntimeError("the earlier embeddings table lost rows while it was read")
        return found


def _fresh_rows(batches, encoder) -> Iterator[tuple]:
    """``(crop_id, crop_path, indices, embedding)`` of each crop to embed, in order."""
    for rows, clips in batches:
        vectors = encoder.embed(clips)
        for (crop_id, path, indices), vector in zip(rows, vectors):
            yield crop_id, path, indices, vector


def _fresh_table(rows: list[tuple], schema: pa.Schema, sha256: str, code_version: str) -> pa.Table:
    dim = schema.field("embedding").type.list_size
    flat = np.concatenate([r[3] for r in rows]).astype(np.float32, copy=False) if rows else np.zeros(0, np.float32)
    columns = [
        pa.array([r[0] for r in rows], pa.string()), pa.array([r[1] for r in rows], pa.string()), pa.array([sha256] * len(rows), pa.string()),
        pa.array([r[2] for r in rows], pa.list_(pa.int32())), pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim),
        pa.array([code_version] * len(rows), pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _chunk(targets: pa.Table, kept: pa.Array, window: _Window, fresh: Iterator[tuple], schema: pa.Schema, sha256: str, code_version: str) -> tuple[pa.Table, int]:
    """One row group: of ``targets`` (a slice, ``kept`` its mask), the kept rows from the
    earlier table and the others embedded now, in ``crop_id`` order; and how many were embedded."""
    old_ids = targets.filter(kept)["crop_id"].to_pylist()
    new_rows = [next(fresh) for _ in range(targets.num_rows - len(old_ids))]
    parts = [_fresh_table(new_rows, schema, sha256, code_version)]
    if old_ids:
        parts.append(window.take(old_ids).select(list(EMBEDDING_COLUMNS)).cast(schema))
    table = pa.concat_tables(parts).sort_by([("crop_id", "ascending")])
    if not table["crop_id"].equals(targets["crop_id"]):
        raise RuntimeError("embedded rows came back out of order")
    return table, len(new_rows)


def embed_crops(root: StorageRoot, checkpoint: RegisteredCheckpoint, encoder, embedding_version: str, code_version: str) -> EmbeddingResult:
    """Write ``root.embeddings_table(checkpoint.key)``: every catalog crop embedded by
    ``encoder`` (a loaded ``encoders.videomae.VideoEncoder`` of ``checkpoint``), keeping the
    rows of an earlier table of the same recipe. ``embedding_version``: the code version of
    this computation (a change re-embeds everything); ``code_version``: what new rows record."""
    started, spec = time.monotonic(), encoder.spec
    targets = read_targets(root)
    sampling = sampling_record(spec.frames, spec.image_size, spec.mean, spec.std)
    metadata = recipe_metadata(spec.record(), sampling, encoder.runtime_record(), checkpoint.record(), embedding_version)
    path = root.embeddings_table(checkpoint.key)
    previous = _previous(path, metadata)
    no_rows = pa.table({"crop_id": pa.array([], pa.string()), "crop_path": pa.array([], pa.string())})
    kept = kept_mask(previous.read(columns=["crop_id", "crop_path"]) if previous is not None else no_rows, targets).combine_chunks()
    before, kept_count = (pq.ParquetFile(path).metadata.num_rows if path.is_file() else 0), pc.sum(kept).as_py() or 0
    todo = targets.filter(pc.invert(kept))
    schema, embedded = embeddings_schema(spec.dim, metadata), 0
    make = lambda: _decoded(todo, spec.frames, spec.image_size, encoder.settings.batch_size)  # noqa: E731 - runs on the thread
    with Prefetcher(make, depth=PREFETCH_BATCHES, name="vitcow-embed-decode") as batches, ParquetSink(path, schema) as sink:
        fresh, window = _fresh_rows(batches, encoder), _Window(previous)
        for start in range(0, targets.num_rows, ROW_GROUP_ROWS):
            part = targets.slice(start, ROW_GROUP_ROWS)
            table, made = _chunk(part, kept.slice(start, ROW_GROUP_ROWS), window, fresh, schema, checkpoint.sha256, code_version)
            sink.write(table)
            embedded += made
            progress.report(STAGE, start + table.num_rows, targets.num_rows)
    return EmbeddingResult(path, targets.num_rows, embedded, kept_count, before - kept_count, time.monotonic() - started, metadata)
