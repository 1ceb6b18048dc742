"""The crop catalog's index: which videos the catalog holds, made from which manifests, how
many rows each, in the catalog's order (``<home>/catalog/crops_index.parquet``).

A video's catalog rows depend only on its crops and clips manifests, which are written
whole and renamed into place (``media.files``): a rewrite gives a new file, so a new inode
number, whatever its size and modification time (which a rewrite within the file system's
clock tick may keep). So a video whose manifests still have the size, time and inode the
index recorded has the rows the catalog holds for it, and rebuilding the catalog takes those rows
back instead of reading the manifests again (``stages.catalog``); readers that look past
the catalog (``lineage.records``) read only the manifests the catalog does not reflect.

The index counts only for the catalog it was written with: it records the catalog file's
size, modification time and inode, the catalog schema and ``core.catalog.CATALOG_ROWS_VERSION``;
any difference (a catalog written by other code, restored from a backup, a crash between
the two writes, another run's catalog renamed into place between them: the identity is
taken of the file before its rename) and the catalog is rebuilt whole.

Reads and writes these two tables and stats manifests; no Dagster.
"""

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.catalog import CATALOG_ROWS_VERSION, CATALOG_SCHEMA
from vitcow_assets.footage.layout import StorageRoot, VideoLayout, check_partition_key
from vitcow_assets.media.parquet import write_table

INDEX_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("crops_size", pa.int64(), nullable=False),
        pa.field("crops_mtime_ns", pa.int64(), nullable=False),
        pa.field("crops_inode", pa.int64(), nullable=False),
        pa.field("clips_size", pa.int64()),
        pa.field("clips_mtime_ns", pa.int64()),
        pa.field("clips_inode", pa.int64()),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("fingerprint", pa.string(), nullable=False),
    ]
)
#: key-value metadata of the index: what it counts for
_FOR = b"vitcow.catalog"


def index_path(root: StorageRoot) -> Path:
    return root.catalog_table.with_name("crops_index.parquet")


@dataclasses.dataclass(frozen=True)
class Manifests:
    """The size, modification time (ns) and inode of a video's crops manifest and clips
    manifest (None when it has none)."""

    crops: tuple[int, int, int]
    clips: tuple[int, int, int] | None


@dataclasses.dataclass(frozen=True)
class IndexEntry:
    video_id: str
    manifests: Manifests
    #: the video's rows in the catalog (in order, after those of the entries before it)
    rows: int
    #: ``core.catalog.part_fingerprint`` of those rows
    fingerprint: str


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (info.st_size, info.st_mtime_ns, info.st_ino)


def manifests_of(layout: VideoLayout) -> Manifests | None:
    """What a video's manifests are now; None when it has no crops manifest."""
    crops = _stat(layout.crops_table)
    return None if crops is None else Manifests(crops, _stat(layout.clips_table))


def catalog_identity(path: Path) -> bytes | None:
    """What the catalog file at ``path`` is (size, time, inode: a rename keeps them), with
    the schema and row rules it was built by; None when there is none."""
    found = _stat(path)
    if found is None:
        return None
    schema = hashlib.sha256(CATALOG_SCHEMA.serialize().to_pybytes()).hexdigest()[:16]
    return f"{found[0]}:{found[1]}:{found[2]}:{schema}:{CATALOG_ROWS_VERSION}".encode()


def read_index(root: StorageRoot) -> list[IndexEntry] | None:
    """The index of the catalog there now, in catalog order; None when there is none, or
    it was not written with this catalog."""
    try:
        table = pq.read_table(index_path(root))
    except (FileNotFoundError, pa.ArrowInvalid):
        return None
    expected = catalog_identity(root.catalog_table)
    if expected is None or (table.schema.metadata or {}).get(_FOR) != expected or not table.schema.remove_metadata().equals(INDEX_SCHEMA):
        return None
    columns = table.to_pydict()
    crops = zip(columns["crops_size"], columns["crops_mtime_ns"], columns["crops_inode"])
    clips = zip(columns["clips_size"], columns["clips_mtime_ns"], columns["clips_inode"])
    return [
        IndexEntry(video, Manifests(crop, None if clip[0] is None else clip), rows, fingerprint)
        for video, crop, clip, rows, fingerprint in zip(columns["video_id"], crops, clips, columns["rows"], columns["fingerprint"])
    ]


def write_index(root: StorageRoot, entries: list[IndexEntry], catalog: bytes) -> None:
    """The index of the catalog just written, whose ``catalog_identity`` was ``catalog``
    (taken of the file before it was renamed into place: should another run's catalog have
    replaced it since, this index counts for nothing)."""
    table = pa.table(
        {
            "video_id": [e.video_id for e in entries],
            "crops_size": [e.manifests.crops[0] for e in entries],
            "crops_mtime_ns": [e.manifests.crops[1] for e in entries],
            "crops_inode": [e.manifests.crops[2] for e in entries],
            "clips_size": [e.manifests.clips[0] if e.manifests.clips else None for e in entries],
            "clips_mtime_ns": [e.manifests.clips[1] if e.manifests.clips else None for e in entries],
            "clips_inode": [e.manifests.clips[2] if e.manifests.clips else None for e in entries],
            "rows": [e.rows for e in entries],
            "fingerprint": [e.fingerprint for e in entries],
        },
        schema=INDEX_SCHEMA.with_metadata({_FOR: catalog}),
    )
    write_table(index_path(root), table)


def video_folders(root: StorageRoot) -> Iterator[str]:
    """The partition keys of the folders under ``<home>/videos`` (sorted)."""
    try:
        names = sorted(e.name for e in os.scandir(root.videos) if e.is_dir())
    except FileNotFoundError:
        return
    for name in names:
        try:
            yield check_partition_key(name)
        except ValueError:
            continue


def manifests_past_the_catalog(root: StorageRoot) -> list[Path]:
    """The crops manifests under ``<home>/videos`` whose rows the catalog may not hold: all
    of them without a valid index, else those of videos it does not list or whose
    manifests changed since (a stat of each, no manifest read)."""
    indexed = {e.video_id: e.manifests for e in read_index(root) or []}
    found = []
    for key in video_folders(root):
        layout = root.video(key)
        manifests = manifests_of(layout)
        if manifests is not None and indexed.get(key) != manifests:
            found.append(layout.crops_table)
    return found
