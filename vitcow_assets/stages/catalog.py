"""The crop catalog: every registered video's crops manifest (with its clips manifest, which
names the clip files), reduced to catalog rows (``core.catalog``) and merged into one table,
written atomically.

Rebuilt video by video, in the catalog's order, one row group at a time: a video whose
manifests are unchanged since the catalog was written (``footage.catalog_index``) has its
rows taken back from that catalog, read front to back; only new or changed videos have
their manifests read. Rows, order and row groups are those of the catalog built whole
(``core.catalog.merge_catalogs`` then ``media.parquet.write_table``), so the bytes are the
same. Memory holds a row group (``ROW_GROUP_ROWS``) and the crop ids (20 bytes a crop, to
find any that repeat), not the catalog. Should a video's manifest name another video
(``video_id``), the catalog is built whole in memory, as before, and no index is kept.
"""

import dataclasses

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.core.catalog import (
    CATALOG_SCHEMA,
    catalog_fingerprint,
    catalog_rows,
    crop_id_bytes,
    merge_catalogs,
    part_fingerprint,
    repeated_ids,
    sort_part,
)
from vitcow_assets.footage.catalog_index import IndexEntry, Manifests, catalog_identity, index_path, manifests_of, read_index, write_index
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.registry import Registry
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.parquet import WRITER_OPTIONS, write_table

#: rows per row group: pyarrow's default, which ``media.parquet.write_table`` writes
ROW_GROUP_ROWS = 1024 * 1024
#: rows read at a time from the catalog being replaced
READ_BATCH_ROWS = 64 * 1024


@dataclasses.dataclass(frozen=True)
class CatalogSummary:
    rows: int
    #: partition keys of the videos it holds (sorted)
    videos: list[str]
    farms: list[str]
    #: ``core.catalog.catalog_fingerprint``: what the asset's data version is
    fingerprint: str
    #: videos whose manifests were read (the others' rows came from the catalog before)
    videos_read: int


class _Mismatch(Exception):
    """The catalog being replaced is not what its index says, or a manifest names another
    video: build the catalog whole."""


def _rows(root: StorageRoot, key: str) -> pa.Table:
    """A video's catalog rows, in its manifest's order."""
    layout = root.video(key)
    clips = pq.read_table(layout.clips_table, columns=["clip_id", "clip_path"]) if layout.clips_table.is_file() else None
    return catalog_rows(pq.read_table(layout.crops_table), clips)


def _part(root: StorageRoot, key: str) -> pa.Table:
    """A video's catalog rows in catalog order (``_Mismatch`` when they name another video)."""
    part = sort_part(_rows(root, key))
    layout = root.video(key)
    if part.num_rows and pc.any(pc.not_equal(part["video_id"], key)).as_py():
        raise _Mismatch(f"{layout.crops_table} names another video")
    return part


class _OldRows:
    """The catalog being replaced, read front to back: each video's rows in index order."""

    def __init__(self, root: StorageRoot, entries: list[IndexEntry]) -> None:
        self.entries, self.at = entries, 0
        self._file = pq.ParquetFile(root.catalog_table)
        # (the schema is the index's business; Parquet gives timestamp[s] back as [ms]: cast)
        if self._file.metadata.num_rows != sum(e.rows for e in entries) or self._file.schema_arrow.names != CATALOG_SCHEMA.names:
            raise _Mismatch("the catalog does not hold what its index says")
        self._batches, self._pending = self._file.iter_batches(batch_size=READ_BATCH_ROWS, use_threads=False), []

    def _read(self, rows: int) -> pa.Table:
        got, have = [], 0
        while have < rows:
            if not self._pending:
                try:
                    self._pending = [pa.Table.from_batches([next(self._batches)]).cast(CATALOG_SCHEMA)]
                except (pa.ArrowInvalid, StopIteration) as exc:
                    raise _Mismatch(f"the catalog cannot be read back ({exc})") from None
            head = self._pending.pop(0)
            take = min(rows - have, head.num_rows)
            got.append(head.slice(0, take))
            if take < head.num_rows:
                self._pending.insert(0, head.slice(take))
            have += take
        return pa.concat_tables(got) if got else CATALOG_SCHEMA.empty_table()

    def take(self, key: str) -> pa.Table:
        """``key``'s rows (the videos before it in the index, not taken, are passed over)."""
        while self.at < len(self.entries) and self.entries[self.at].video_id != key:
            self._read(self.entries[self.at].rows)
            self.at += 1
        if self.at == len(self.entries):
            raise _Mismatch(f"the catalog's index does not list {key} in order")
        rows = self._read(self.entries[self.at].rows)
        self.at += 1
        if rows.num_rows and pc.any(pc.not_equal(rows["video_id"], key)).as_py():
            raise _Mismatch(f"the catalog's rows of {key} are not where its index says")
        return rows

    def close(self) -> None:
        self._file.close()


class _Writer:
    """Catalog rows, a row group at a time (each row group one contiguous table, as
    ``write_table`` writes them)."""

    def __init__(self, path, row_group_rows: int) -> None:
        self.writer, self.size = pq.ParquetWriter(path, CATALOG_SCHEMA, **WRITER_OPTIONS), row_group_rows
        self.pending: list[pa.Table] = []
        self.buffered = self.rows = 0
        self.ids, self.farms = [], set()

    def add(self, part: pa.Table) -> None:
        if not part.num_rows:
            return
        self.pending.append(part)
        self.buffered += part.num_rows
        self.ids.append(crop_id_bytes(part["crop_id"]))
        self.farms.update(f or "" for f in pc.unique(part["farm"]).to_pylist())
        while self.buffered >= self.size:
            self._flush(self.size)

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self.pending)
        group, rest = table.slice(0, rows).combine_chunks(), table.slice(rows)
        self.writer.write_table(group, row_group_size=rows)
        self.pending, self.buffered, self.rows = ([rest] if rest.num_rows else []), rest.num_rows, self.rows + rows

    def close(self) -> None:
        if self.buffered:
            self._flush(self.buffered)
        self.writer.close()


def _write_parts(root: StorageRoot, tmp, current: dict[str, Manifests], old: list[IndexEntry] | None, row_group_rows: int) -> tuple[_Writer, list[IndexEntry], int]:
    """Every video's rows in key order into ``tmp``: taken back from the catalog where its
    manifests are those the index recorded, else read from them. Also: the new index, and
    how many videos had their manifests read."""
    before = {e.video_id: e for e in old or []}
    reader = _OldRows(root, old) if old else None
    writer, entries, read = _Writer(tmp, row_group_rows), [], 0
    try:
        for key, manifests in current.items():
            kept = before.get(key)
            if kept is not None and kept.manifests == manifests:
                writer.add(reader.take(key))
                entries.append(kept)
                continue
            part = _part(root, key)
            writer.add(part)
            entries.append(IndexEntry(key, manifests, part.num_rows, part_fingerprint(part)))
            read += 1
    finally:
        writer.close()
        if reader is not None:
            reader.close()
    return writer, entries, read


def _registered_manifests(root: StorageRoot) -> dict[str, Manifests]:
    """The registered videos with a crops manifest, in key order (a stat each)."""
    found = {}
    for key in Registry(root).keys():
        manifests = manifests_of(root.video(key))
        if manifests is not None:
            found[key] = manifests
    return found


def _whole(root: StorageRoot, current: dict[str, Manifests]) -> CatalogSummary:
    """The catalog built in memory from every video's manifests (no index is kept)."""
    parts = [_rows(root, key) for key in current]
    table = merge_catalogs(parts)
    index_path(root).unlink(missing_ok=True)
    write_table(root.catalog_table, table)
    fingerprints = [(key, part_fingerprint(part)) for key, part in zip(current, parts)]
    farms = sorted({f or "" for f in table["farm"].to_pylist()})
    return CatalogSummary(table.num_rows, sorted(current), farms, catalog_fingerprint(fingerprints), len(current))


def write_catalog(root: StorageRoot, row_group_rows: int = ROW_GROUP_ROWS) -> CatalogSummary:
    """Write ``root.catalog_table`` from the crops of every registered video that has them,
    taking back from the catalog there the rows of videos whose manifests did not change,
    and its index beside it."""
    current = _registered_manifests(root)
    if not current:
        return _whole(root, current)
    old = read_index(root)
    try:
        with atomic_file(root.catalog_table) as tmp:
            written, entries, read = _write_parts(root, tmp, current, old, row_group_rows)
            repeated = repeated_ids(written.ids)
            if repeated:
                raise ValueError(f"crop ids repeat across the catalog: {repeated}")
            identity = catalog_identity(tmp)
    except _Mismatch:
        return _whole(root, current)
    write_index(root, entries, identity)
    fingerprint = catalog_fingerprint((e.video_id, e.fingerprint) for e in entries)
    return CatalogSummary(written.rows, sorted(current), sorted(written.farms), fingerprint, read)


def read_catalog(root: StorageRoot, columns: list[str] | None = None) -> pa.Table:
    """The crop catalog (only ``columns``, when given)."""
    try:
        return pq.read_table(root.catalog_table, columns=columns)
    except FileNotFoundError:
        raise FileNotFoundError(f"{root.catalog_table} is missing: materialize crop_catalog first (vitcow label does)") from None
