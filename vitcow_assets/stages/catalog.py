"""The crop catalog: every registered video's crops manifest (with its clips manifest, which
names the clip files), reduced to catalog rows (``core.catalog``) and merged into one table,
written atomically."""

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.catalog import catalog_rows, merge_catalogs
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.registry import Registry
from vitcow_assets.media.parquet import write_table


def write_catalog(root: StorageRoot) -> tuple[pa.Table, list[str]]:
    """Write ``root.catalog_table`` from the crops of every registered video that has them;
    the catalog and the videos it holds (sorted)."""
    parts, videos = [], []
    for registration in Registry(root).all():
        layout = root.video(registration.key)
        if layout.crops_table.is_file():
            clips = pq.read_table(layout.clips_table, columns=["clip_id", "clip_path"]) if layout.clips_table.is_file() else None
            parts.append(catalog_rows(pq.read_table(layout.crops_table), clips))
            videos.append(registration.key)
    table = merge_catalogs(parts)
    write_table(root.catalog_table, table)
    return table, sorted(videos)


def read_catalog(root: StorageRoot, columns: list[str] | None = None) -> pa.Table:
    """The crop catalog (only ``columns``, when given)."""
    try:
        return pq.read_table(root.catalog_table, columns=columns)
    except FileNotFoundError:
        raise FileNotFoundError(f"{root.catalog_table} is missing: materialize crop_catalog first (vitcow label does)") from None
