"""Reading what the storage root holds about one crop: its catalog row, its crops-manifest
row, the raw video record, its clip, the masks table's provenance, the prompt plan, its
trimmed copies; and finding a crop by id (or a unique prefix of one) or by a path (its
crop video, or a trimmed copy of it, as a dataset's list files name them).

Every record but the catalog row may be missing (a partition re-run while the catalog is
older, a file removed): it is then None and ``CropRecords.missing`` says which files were
not found. Reads Parquet, JSON; never writes.

Reads the catalog a column at a time (the rest only of row groups that hold a match), and
past it only the manifests its index says it does not reflect (``footage.catalog_index``).

May import pyarrow and ``footage``; no Dagster, no web framework.
"""

import dataclasses
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.core.catalog import CROP_ID_CHARS, catalog_rows
from vitcow_assets.core.tables import masks_provenance
from vitcow_assets.footage.catalog_index import manifests_past_the_catalog
from vitcow_assets.footage.layout import StorageRoot

#: shortest crop-id prefix looked up (fewer characters name too many crops to be useful)
MIN_PREFIX = 6
TRIMMED_TABLE = "trimmed_crops.parquet"
_HEX = frozenset("0123456789abcdef")


@dataclasses.dataclass(frozen=True)
class CropRecords:
    """Everything stored about one crop (None where its file is missing)."""

    catalog: dict
    manifest: dict | None = None
    raw_video: dict | None = None
    clip: dict | None = None
    #: the masks table's ``vitcow.*`` key-value metadata, prefix removed
    masks: dict | None = None
    prompt_plan: dict | None = None
    #: trimmed copies of the crop (labels' segments): rows of ``trimmed_crops.parquet``
    trimmed: list[dict] = dataclasses.field(default_factory=list)
    #: files that were looked for and not found
    missing: list[str] = dataclasses.field(default_factory=list)


def looks_like_crop_id(text: str) -> bool:
    """Hex of ``MIN_PREFIX`` to ``CROP_ID_CHARS`` characters: a crop id or a prefix of one."""
    return MIN_PREFIX <= len(text) <= CROP_ID_CHARS and set(text) <= _HEX


def _one_row(path: Path, missing: list[str], filters=None) -> dict | None:
    try:
        rows = pq.read_table(path, filters=filters).to_pylist()
    except FileNotFoundError:
        missing.append(str(path))
        return None
    return rows[0] if rows else None


def _json(path: Path, missing: list[str]) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        missing.append(str(path))
        return None


def _masks(path: Path, missing: list[str]) -> dict | None:
    try:
        return masks_provenance(pq.read_schema(path))
    except FileNotFoundError:
        missing.append(str(path))
        return None


def trimmed_copies(root: StorageRoot, crop_id: str) -> list[dict]:
    """The trimmed copies made of ``crop_id`` (``trimmed_crops.parquet``; none when absent)."""
    path = root.labels_dir / TRIMMED_TABLE
    if not path.is_file():
        return []
    return pq.read_table(path, filters=[("crop_id", "=", crop_id)]).to_pylist()


def crop_records(root: StorageRoot, catalog_row: dict) -> CropRecords:
    """What the storage root holds about the crop of ``catalog_row``."""
    layout, missing = root.video(catalog_row["video_id"]), []
    key = [("clip_id", "=", catalog_row["clip_id"]), ("object_id", "=", catalog_row["object_id"]), ("part", "=", catalog_row["part"])]
    manifest = _one_row(layout.crops_table, missing, key)
    if manifest is not None and manifest["source_sha256"] != catalog_row["source_sha256"]:
        missing.append(f"{layout.crops_table} (re-run on other bytes since the catalog was made)")
        manifest = None
    return CropRecords(
        catalog=catalog_row,
        manifest=manifest,
        raw_video=_json(layout.raw_video_json, missing),
        clip=_one_row(layout.clips_table, missing, [("clip_id", "=", catalog_row["clip_id"])]),
        masks=_masks(layout.masks_table, missing),
        prompt_plan=_json(layout.prompts_json, missing),
        trimmed=trimmed_copies(root, catalog_row["crop_id"]),
        missing=missing,
    )


def context_source(records: CropRecords, crop_frame: int) -> tuple[str, int] | None:
    """The video and frame index showing crop frame ``crop_frame`` in context: the clip file
    (frame ``crop_frame``) when it was written, else the stored source (frame
    ``source_frame_start + crop_frame × frame_step``); None when neither is there."""
    clip = records.clip or {}
    if clip.get("clip_path") and Path(clip["clip_path"]).is_file():
        return clip["clip_path"], crop_frame
    stored = (records.raw_video or {}).get("stored_path")
    if stored and Path(stored).is_file():
        row = records.catalog
        return stored, row["source_frame_start"] + crop_frame * row["frame_step"]
    return None


# -- finding a crop ---------------------------------------------------------------------


def _catalog_where(root: StorageRoot, column: str, match) -> pa.Table | None:
    """The catalog's rows whose ``column`` matches (``match``: array -> boolean mask): that
    column read whole, the other columns only of the row groups holding a match. None when
    there is no catalog."""
    try:
        file = pq.ParquetFile(root.catalog_table)
    except FileNotFoundError:
        return None
    with file:
        found = []
        for group in range(file.num_row_groups):
            mask = match(file.read_row_group(group, columns=[column])[column])
            if pc.any(mask).as_py():
                found.append(file.read_row_group(group).filter(mask))
        return pa.concat_tables(found) if found else file.schema_arrow.empty_table()


def _ids_in_catalog(root: StorageRoot, text: str) -> pa.Table | None:
    return _catalog_where(root, "crop_id", lambda ids: pc.starts_with(ids, text))


def _ids_past_the_catalog(root: StorageRoot, text: str) -> pa.Table | None:
    """Catalog rows of the crops manifests the catalog does not reflect (all of them when
    it is missing: ``footage.catalog_index``) whose crop id starts with ``text``."""
    parts = [catalog_rows(pq.read_table(p)) for p in manifests_past_the_catalog(root)]
    return pa.concat_tables([p.filter(pc.starts_with(p["crop_id"], text)) for p in parts]) if parts else None


def find_by_id(root: StorageRoot, text: str) -> tuple[dict | None, int]:
    """The catalog row of the crop whose id is ``text`` or starts with it, and how many
    crops matched (0: none; more than 1: the prefix is ambiguous and no row is given). The
    catalog is asked first, then the crops manifests it does not reflect (videos processed
    or re-run since it was written)."""
    for source in (_ids_in_catalog, _ids_past_the_catalog):
        found = source(root, text)
        if found is not None and found.num_rows:
            return (found.to_pylist()[0] if found.num_rows == 1 else None), found.num_rows
    return None, 0


def manifest_above(path: Path) -> Path | None:
    """The ``crops.parquet`` in a folder above ``path`` (where a crop video's manifest is)."""
    return next((p / "crops.parquet" for p in path.parents if (p / "crops.parquet").is_file()), None)


def trimmed_crop_id(table_path: Path, path: str | os.PathLike) -> str | None:
    """The crop whose trimmed copy is ``path``, as the ``trimmed_crops.parquet`` at
    ``table_path`` lists it (None: not listed, or no such table)."""
    if not Path(table_path).is_file():
        return None
    trimmed = pq.read_table(table_path, columns=["crop_id", "trimmed_path"])
    hits = trimmed.filter(pc.equal(trimmed["trimmed_path"], str(path)))["crop_id"].to_pylist()
    return hits[0] if hits else None


def find_by_path(root: StorageRoot, path: str | os.PathLike, search_above: bool = True) -> dict | None:
    """The catalog row of the crop whose video is ``path`` (absolute; as its crops manifest
    lists it), or whose trimmed copy it is; None when nothing lists it. With
    ``search_above`` the manifest and ``trimmed_crops.parquet`` may be in any folder above
    ``path`` (a storage root other than ``root``); without, only the catalog and the trimmed
    table of ``root`` are asked (what a server does with a path it is given)."""
    path = Path(path)
    if search_above:
        manifest = manifest_above(path)
        if manifest is not None:
            table = pq.read_table(manifest)
            rows = catalog_rows(table.filter(pc.equal(table["crop_path"], str(path))))
            if rows.num_rows:
                return rows.to_pylist()[0]
    else:
        rows = _catalog_where(root, "crop_path", lambda paths: pc.equal(paths, str(path)))
        if rows is not None and rows.num_rows:
            return rows.to_pylist()[0]
    tables = [root.labels_dir / TRIMMED_TABLE] + ([p / TRIMMED_TABLE for p in path.parents] if search_above else [])
    for candidate in dict.fromkeys(tables):
        crop_id = trimmed_crop_id(candidate, path)
        if crop_id is not None:
            return find_by_id(root, crop_id)[0]
    return None
