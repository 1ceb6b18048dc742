"""``vitcow provenance CROP`` and ``vitcow tracks VIDEO``: read a partition's tables.

Paths are taken as ``vitcow run`` takes them (``cli.inputs.normalise``): relative to the
working directory, ``..`` resolved.
"""

import argparse
import json
import sys

import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.cli.inputs import normalise
from vitcow_assets.footage.layout import StorageRoot, check_partition_key, default_home
from vitcow_assets.footage.registry import Registry


def fail(message: str) -> int:
    print(f"vitcow: {message}", file=sys.stderr)
    return 2


def compact_json(row: dict) -> str:
    """One key per line; lists (per-frame values) stay on their key's line."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value, default=str, separators=(', ', ': '))}" for key, value in row.items()]
    return "{\n" + ",\n".join(lines) + "\n}"


def cmd_provenance(args: argparse.Namespace) -> int:
    crop = normalise(args.crop_path)
    manifest = next((p / "crops.parquet" for p in crop.parents if (p / "crops.parquet").is_file()), None)
    if manifest is None:
        return fail(f"no crops.parquet found above {crop}")
    table = pq.read_table(manifest)
    rows = table.filter(pc.equal(table["crop_path"], str(crop))).to_pylist()
    if not rows:
        return fail(f"{crop} is not listed in {manifest}")
    print(compact_json(rows[0]))
    return 0


def video_key(video: str, storage: StorageRoot) -> str | None:
    """Partition key of a registered video (path or URL, any spelling), or ``video`` itself
    taken as a key."""
    registry = Registry(storage)
    path = normalise(video)
    by_source = next((r.key for r in registry.all() if r.source_path in (video, str(path))), None)
    if by_source is not None:
        return by_source
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
