"""``vitcow provenance CROP`` and ``vitcow tracks VIDEO``: read a partition's tables.

``CROP`` is a crop video, a trimmed copy of one (what a dataset's lists name), or a crop id
(or its first characters); the answer is the crop's manifest row with its ``crop_id`` and
the address of its crop page first. Paths are taken as ``vitcow run`` takes them
(``cli.inputs.normalise``): relative to the working directory, ``..`` resolved.
"""

import argparse
import json
import os
import sys

import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.cli.inputs import normalise
from vitcow_assets.core.catalog import catalog_rows
from vitcow_assets.footage.layout import StorageRoot, check_partition_key, default_home
from vitcow_assets.footage.registry import Registry
from vitcow_assets.lineage.links import links_from
from vitcow_assets.lineage.records import crop_records, find_by_id, find_by_path, looks_like_crop_id, manifest_above


def fail(message: str) -> int:
    print(f"vitcow: {message}", file=sys.stderr)
    return 2


def compact_json(row: dict) -> str:
    """One key per line; lists (per-frame values) stay on their key's line."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value, default=str, separators=(', ', ': '))}" for key, value in row.items()]
    return "{\n" + ",\n".join(lines) + "\n}"


def _by_path(storage: StorageRoot, crop) -> tuple[dict | None, str]:
    """(manifest row with its crop_id, "") of a crop video or a trimmed copy; (None, why) else."""
    manifest = manifest_above(crop)
    if manifest is not None:
        table = pq.read_table(manifest)
        rows = table.filter(pc.equal(table["crop_path"], str(crop)))
        if rows.num_rows:
            return {"crop_id": catalog_rows(rows)["crop_id"][0].as_py(), **rows.to_pylist()[0]}, ""
    row = find_by_path(storage, crop)  # a trimmed copy
    if row is not None:
        manifest_row = crop_records(storage, row).manifest
        return ({"crop_id": row["crop_id"], "trimmed_path": str(crop), **manifest_row}, "") if manifest_row else (None, f"{crop}: its crop's manifest row is gone")
    if manifest is None:
        return None, f"no crops.parquet found above {crop}, and no trimmed_crops.parquet lists it"
    return None, f"{crop} is not listed in {manifest}"


def _by_id(storage: StorageRoot, text: str) -> tuple[dict | None, str]:
    row, count = find_by_id(storage, text.lower())
    if count == 0:
        return None, f"no crop id starts with {text} (catalog {storage.catalog_table}, and every crops manifest under {storage.videos})"
    if row is None:
        return None, f"{count} crops have ids starting with {text}: give more of it"
    manifest_row = crop_records(storage, row).manifest
    if manifest_row is None:
        return None, f"crop {row['crop_id']}: its manifest row is gone (video {row['video_id']} re-run on other bytes?)"
    return {"crop_id": row["crop_id"], **manifest_row}, ""


def cmd_provenance(args: argparse.Namespace) -> int:
    """Print a crop's manifest row, its crop_id and its page's address."""
    storage, crop = StorageRoot(default_home()), normalise(args.crop)
    by_id = looks_like_crop_id(args.crop.lower()) and not crop.exists()
    row, why = _by_id(storage, args.crop) if by_id else _by_path(storage, crop)
    if row is None:
        return fail(why)
    page = links_from(os.environ).crop_page(row["crop_id"])
    print(compact_json({"crop_id": row.pop("crop_id"), "crop_page": page, **row}))
    return 0


def video_key(video: str, storage: StorageRoot) -> str | None:
    """Partition key of a registered video (path or URL, any spelling), or ``video`` itself
    taken as a key: two look-ups in the registry's index, whatever it holds."""
    registry = Registry(storage)
    for spelling in dict.fromkeys((video, str(normalise(video)))):
        found = registry.by_source(spelling)  # the registry's index by path: no record listed
        if found is not None:
            return found.key
    try:
        key = check_partition_key(video)
    except ValueError:
        return None
    return key if registry.get(key) is not None or storage.video(key).root.exists() else None


def _print_tracks(rows: list[dict]) -> None:
    print(f"{'track':>6} {'prompt':<12} {'first':>8} {'last':>8} {'frames':>7} {'clips':>6}")
    for r in rows:
        print(
            f"{r['track_id']:>6} {r['prompt'][:12]:<12} {r['first_source_frame']:>8} {r['last_source_frame']:>8} "
            f"{r['frames_present']:>7} {len(r['clips']):>6}"
        )


def cmd_tracks(args: argparse.Namespace) -> int:
    """List a video's tracks (one animal each), or every crop of one track."""
    storage = StorageRoot(default_home())
    key = video_key(args.video, storage)
    if key is None:
        return fail(f"{args.video} is neither a registered video nor a partition key")
    table = storage.video(key).tracks_table
    if not table.is_file():
        return fail(f"no tracks table for {key} ({table}): process the video first (vitcow run)")
    rows = pq.read_table(table).to_pylist()
    if args.track is not None:
        rows = [r for r in rows if r["track_id"] == args.track]
        if not rows:
            return fail(f"{key} has no track {args.track}")
        print(json.dumps(rows[0], indent=2) if args.json else "\n".join(rows[0]["crop_paths"]))
        return 0
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_tracks(rows)
    return 0
