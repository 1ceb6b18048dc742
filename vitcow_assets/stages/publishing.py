"""Publishing: a partition's crop videos, manifests and tables to ``<destination>/<farm>/<video_id>/``.

Uploads are atomic (see ``remote.transfer.upload``) and idempotent: ``published.json`` in
the video's destination folder lists every published file's size and sha256 (and for a table
the sha256 of its rows without run ids); a file whose remote size matches the index and whose
bytes (or, for a table, rows) are the local one's is skipped, a changed one is replaced, and a
file published before but no longer produced (a re-run made fewer crops) is removed. A re-run
that made the same rows therefore uploads nothing: the published table keeps the run id of the
run that first made it.
The index is written last, so an interrupted publish is redone, never trusted.
The published ``crops/crops.parquet`` is the crops manifest plus ``published_uri``.

The farm and the partition key become single path components (the farm sanitised, the key
checked), so no name can lead outside the destination.
"""

import dataclasses
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.names import plain_name
from vitcow_assets.core.tables import CROPS_SCHEMA, PUBLISHED_CROPS_SCHEMA, with_added_columns
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.hashing import sha256_file, table_content_sha256
from vitcow_assets.remote.locations import Location
from vitcow_assets.remote.transfer import Connection, upload
from vitcow_assets.footage.layout import VideoLayout, check_partition_key

INDEX_NAME = "published.json"
UNKNOWN_FARM = "unknown_farm"


def safe_component(text: str | None, fallback: str = UNKNOWN_FARM) -> str:
    """One path component from ``text``: accents folded, anything but letters, digits, '.',
    '_', '-' made '_', no leading dots (so never '.' or '..')."""
    return plain_name(text) or fallback


def destination_of(destination: str | Location, farm: str | None, video_id: str) -> Location:
    base = destination if isinstance(destination, Location) else Location.parse(destination)
    return base.child(safe_component(farm), check_partition_key(video_id))


@dataclasses.dataclass(frozen=True)
class PublishSummary:
    destination: str
    uploaded: list[str]
    skipped: list[str]
    removed: list[str]
    crop_uris: list[str]
    manifest_uri: str


def _relative_parts(path: str, root: Path) -> list[str]:
    resolved = Path(path).resolve()
    if root.resolve() not in resolved.parents:
        raise ValueError(f"{path} is not inside {root}")
    return list(resolved.relative_to(root.resolve()).parts)


def _read_index(conn: Connection, fs_path: str) -> dict:
    try:
        return json.loads(conn.fs.cat_file(fs_path))
    except (FileNotFoundError, ValueError):
        return {}


def _remote_sizes(conn: Connection, target: Location) -> dict[str, int]:
    try:
        found = conn.fs.find(target.fs_path, detail=True)
    except FileNotFoundError:
        return {}
    return {p: int(info.get("size") or 0) for p, info in found.items() if info.get("type", "file") == "file"}


def _index_entry(local: Path) -> dict:
    """A published file's index entry: size and sha256 of its bytes, and for a table the sha256
    of its rows without run ids (``content``)."""
    entry = {"size": local.stat().st_size, "sha256": sha256_file(local)}
    if local.suffix == ".parquet":
        entry["content"] = table_content_sha256(local)
    return entry


def _same_content(old: dict | None, new: dict) -> bool:
    """Whether a file published before holds what the new one does: the same bytes, or for a
    table the same rows, schema and provenance, where only the run that wrote it differs."""
    if not old:
        return False
    if old.get("sha256") == new["sha256"]:
        return True
    return "content" in new and old.get("content") == new["content"]


def publish_outputs(layout: VideoLayout, video_id: str, farm: str | None, destination: str, conn: Connection | None = None) -> PublishSummary:
    """Publish one partition's outputs; returns what was uploaded, skipped and removed."""
    target = destination_of(destination, farm, video_id)
    crops = with_added_columns(pq.read_table(layout.crops_table), CROPS_SCHEMA).select(CROPS_SCHEMA.names)
    files: dict[tuple[str, ...], Path] = {}
    crop_uris = []
    for crop_path in crops["crop_path"].to_pylist():
        parts = tuple(_relative_parts(crop_path, layout.root))
        files[parts] = Path(crop_path)
        crop_uris.append(target.child(*parts).uri)
    for table in (layout.clips_table, layout.masks_table, layout.contact_sheet, layout.raw_video_json, layout.prompts_json):
        if table.is_file():
            files[tuple(_relative_parts(str(table), layout.root))] = table
    published_manifest = layout.root / "published" / "crops.parquet"
    with atomic_file(published_manifest) as tmp:
        pq.write_table(
            crops.append_column(PUBLISHED_CROPS_SCHEMA.field("published_uri"), pa.array(crop_uris, pa.string())).cast(PUBLISHED_CROPS_SCHEMA),
            tmp,
            compression="zstd",
        )
    manifest_parts = tuple(_relative_parts(str(layout.crops_table), layout.root))
    files[manifest_parts] = published_manifest

    own = conn is None
    conn = conn or Connection(target)
    try:
        index_path = target.child(INDEX_NAME).fs_path
        old_index = _read_index(conn, index_path)
        sizes = _remote_sizes(conn, target)
        new_index, uploaded, skipped = {}, [], []
        for parts, local in sorted(files.items()):
            rel = "/".join(parts)
            entry = _index_entry(local)
            remote = target.child(*parts)
            old = old_index.get(rel)
            if _same_content(old, entry) and sizes.get(remote.fs_path) == old["size"]:
                new_index[rel] = old  # the published copy stays, naming the run that first made it
                skipped.append(remote.uri)
                continue
            new_index[rel] = entry
            upload(conn, local, remote.fs_path)
            uploaded.append(remote.uri)
        removed = []
        for rel in sorted(set(old_index) - set(new_index)):
            parts = rel.split("/")
            stale = target.child(*parts)
            if stale.fs_path in sizes:
                conn.fs.rm_file(stale.fs_path)
                removed.append(stale.uri)
        if uploaded or removed or old_index != new_index:
            with tempfile.TemporaryDirectory(prefix="vitcow-publish-") as tmpdir:
                index_file = Path(tmpdir) / INDEX_NAME
                index_file.write_text(json.dumps(new_index, indent=2, sort_keys=True))
                upload(conn, index_file, index_path)
    finally:
        if own:
            conn.close()
    return PublishSummary(target.uri, uploaded, skipped, removed, crop_uris, target.child(*manifest_parts).uri)
