"""The crop catalog and the crop queries at farm scale: N registered, processed videos.

Run from the repository root (under ``flock /tmp/vitcow-heavy.lock``)::

    python -m benchmarks.catalog_scale --videos 1000,10000

For each N, a fresh storage root holds N registered videos with small manifests and no media
(``vitcow_testbed.synthetic_registry``: 2 clips × 2 crops each, farm-layout source paths),
and this process times:

- ``catalog_first_s``: the ``crop_catalog`` asset (invoked directly: its whole body, the data
  version included) with no catalog there yet;
- ``catalog_new_video_s``: the same after one more video was processed, what every finished
  run sets off on a farm; ``catalog_unchanged_s``: again, nothing changed;
- ``tracks_s``: ``vitcow tracks <source path>`` (the command's function, in process);
- ``provenance_s``: ``vitcow provenance <crop id prefix>`` of a crop in the catalog;
  ``provenance_past_catalog_s``: of a crop of a video processed after the catalog was made;
  each the median of ``REPEATS``;
- ``video_s``: a baseline, measured in the same run: one video's part of the catalog
  (its two manifests read, its catalog rows made), the median over ``BASELINE_VIDEOS``.

The old way, measured in the same run on the same storage root (``OLD``: the code before
the catalog's index, kept here as it was): ``old_catalog_s``, the catalog built whole from
every registry record and every manifest (what each ``crop_catalog`` run did);
``old_video_key_s``, a source path looked up by reading every registry record (``vitcow
tracks``); ``old_find_s`` and ``old_find_past_catalog_s``, a crop id looked up in
the whole catalog read into memory, then in every video's manifests. Beside them the new
``video_key_s`` (the registry's path index); and ``find_s`` and ``find_past_catalog_s``,
``lineage.records.find_by_id`` (what ``vitcow provenance`` looks a crop up with) of the
same two crops. ``old_find_past_catalog_s`` is timed once (it reads every manifest).

Printed per N, then ratios: the old way over the new (``*_speedup``, same N), each time over
``video_s`` (``*_videos``: how many videos' worth of reading it costs; a rebuild that reads
every video costs about N) and the largest N over the smallest (``*_growth``: 1 means flat,
N_max/N_min linear). The last line is ``key=value``.
"""

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 5
BASELINE_VIDEOS = 50


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_time(function, repeats: int = REPEATS) -> float:
    return statistics.median(timed(function) for _ in range(repeats))


def quiet(function):
    def call():
        with contextlib.redirect_stdout(io.StringIO()):
            code = function()
        if code != 0:
            raise SystemExit(f"{function} exited {code}")

    return call


def baseline(home: Path, count: int) -> float:
    """One video's share of the catalog: its manifests read, its rows made."""
    import pyarrow.parquet as pq

    from vitcow_assets.core.catalog import catalog_rows
    from vitcow_assets.footage.layout import StorageRoot
    from vitcow_testbed.synthetic_registry import key_of

    root = StorageRoot(home)

    def one(n: int) -> None:
        layout = root.video(key_of(n))
        clips = pq.read_table(layout.clips_table, columns=["clip_id", "clip_path"])
        catalog_rows(pq.read_table(layout.crops_table), clips)

    step = max(1, count // BASELINE_VIDEOS)
    return statistics.median(timed(lambda: one(n)) for n in range(0, count, step))


class OLD:
    """The old way (the code before the catalog's index), for the baseline."""

    @staticmethod
    def catalog(home: Path, out: Path) -> int:
        import pyarrow.parquet as pq

        from vitcow_assets.core.catalog import catalog_rows, merge_catalogs
        from vitcow_assets.footage.layout import StorageRoot
        from vitcow_assets.footage.registry import Registry
        from vitcow_assets.media.parquet import write_table

        root, parts = StorageRoot(home), []
        for registration in Registry(root).all():
            layout = root.video(registration.key)
            if layout.crops_table.is_file():
                clips = pq.read_table(layout.clips_table, columns=["clip_id", "clip_path"]) if layout.clips_table.is_file() else None
                parts.append(catalog_rows(pq.read_table(layout.crops_table), clips))
        table = merge_catalogs(parts)
        write_table(out, table)
        return table.num_rows

    @staticmethod
    def video_key(home: Path, path: str) -> str | None:
        from vitcow_assets.footage.layout import StorageRoot
        from vitcow_assets.footage.registry import Registry

        return next((r.key for r in Registry(StorageRoot(home)).all() if r.source_path == path), None)

    @staticmethod
    def find_by_id(home: Path, text: str) -> int:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from vitcow_assets.core.catalog import catalog_rows

        catalog = pq.read_table(home / "catalog" / "crops.parquet")
        found = catalog.filter(pc.starts_with(catalog["crop_id"], text))
        if found.num_rows:
            return found.num_rows
        parts = [catalog_rows(pq.read_table(p)) for p in sorted((home / "videos").glob("*/crops/crops.parquet"))]
        table = pa.concat_tables(parts)
        return table.filter(pc.starts_with(table["crop_id"], text)).num_rows


def measure(count: int, work: Path) -> dict:
    import dagster as dg
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from vitcow_assets.cli.queries import cmd_provenance, cmd_tracks, video_key
    from vitcow_assets.footage.layout import StorageRoot
    from vitcow_assets.lineage.records import find_by_id
    from vitcow_assets.core.catalog import catalog_rows
    from vitcow_assets.defs.labels import crop_catalog
    from vitcow_assets.defs.resources import VitcowStorage
    from vitcow_testbed.synthetic_registry import key_of, register_videos, source_path

    home = work / f"home_{count}"
    started = time.perf_counter()
    register_videos(home, range(count))
    print(f"{count} videos registered and their manifests written in {time.perf_counter() - started:.1f} s", flush=True)
    storage = VitcowStorage(home=str(home))
    os.environ["VITCOW_HOME"] = str(home)  # what the commands read
    catalog = lambda: crop_catalog(dg.build_asset_context(), storage=storage)  # noqa: E731
    out = {"videos": count, "video_s": round(baseline(home, count), 6)}
    out["catalog_first_s"] = round(timed(catalog), 3)
    out["old_catalog_s"] = round(timed(lambda: OLD.catalog(home, work / "old_catalog.parquet")), 3)
    register_videos(home, [count])
    out["catalog_new_video_s"] = round(timed(catalog), 3)
    out["catalog_unchanged_s"] = round(timed(catalog), 3)
    out["tracks_s"] = round(median_time(quiet(lambda: cmd_tracks(argparse.Namespace(video=source_path(count // 2), track=None, json=False)))), 4)
    middle = source_path(count // 2)
    out["video_key_s"] = round(median_time(lambda: video_key(middle, StorageRoot(home))), 6)
    out["old_video_key_s"] = round(median_time(lambda: OLD.video_key(home, middle)), 4)
    in_catalog = pq.read_table(home / "catalog" / "crops.parquet", columns=["crop_id", "video_id"])
    crop = in_catalog.filter(pc.equal(in_catalog["video_id"], key_of(count // 2)))["crop_id"][0].as_py()
    out["provenance_s"] = round(median_time(quiet(lambda: cmd_provenance(argparse.Namespace(crop=crop[:12])))), 4)
    out["find_s"] = round(median_time(lambda: find_by_id(StorageRoot(home), crop[:12])), 4)
    out["old_find_s"] = round(median_time(lambda: OLD.find_by_id(home, crop[:12])), 4)
    register_videos(home, [count + 1])  # processed after the catalog was made
    past = catalog_rows(pq.read_table(home / "videos" / key_of(count + 1) / "crops" / "crops.parquet"))["crop_id"][0].as_py()
    out["provenance_past_catalog_s"] = round(median_time(quiet(lambda: cmd_provenance(argparse.Namespace(crop=past[:12])))), 4)
    out["find_past_catalog_s"] = round(median_time(lambda: find_by_id(StorageRoot(home), past[:12])), 4)
    out["old_find_past_catalog_s"] = round(timed(lambda: OLD.find_by_id(home, past[:12])), 4)  # once: every manifest read
    print(json.dumps(out), flush=True)
    return out


TIMES = ["catalog_first_s", "catalog_new_video_s", "catalog_unchanged_s", "tracks_s", "video_key_s", "find_s", "find_past_catalog_s", "provenance_s", "provenance_past_catalog_s"]


#: (old way, new way): the old over the new is the speed-up
PAIRS = [
    ("old_catalog_s", "catalog_new_video_s"),
    ("old_video_key_s", "video_key_s"),
    ("old_find_s", "find_s"),
    ("old_find_past_catalog_s", "find_past_catalog_s"),
]


def ratios(results: list[dict]) -> dict:
    out = {}
    for result in results:
        for old, new in PAIRS:
            out[f"{new[:-2]}_speedup_{result['videos']}"] = round(result[old] / result[new], 1)
    for result in results:
        for name in TIMES:
            out[f"{name[:-2]}_videos_{result['videos']}"] = round(result[name] / result["video_s"], 1)
    small, large = results[0], results[-1]
    if large["videos"] != small["videos"]:
        for name in TIMES:
            out[f"{name[:-2]}_growth"] = round(large[name] / small[name], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", default="1000,10000", help="comma-separated numbers of videos (default 1000,10000)")
    parser.add_argument("--work", default=None, help="scratch folder (default: a new temporary one, removed afterwards)")
    args = parser.parse_args(argv)
    counts = sorted(int(c) for c in args.videos.split(","))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vitcow-catalog-"))
    try:
        results = [measure(count, work) for count in counts]
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    import vitcow_assets

    line = {**{f"{k}_{r['videos']}": v for r in results for k, v in r.items() if k != "videos"}, **ratios(results)}
    line["code"] = str(Path(vitcow_assets.__file__).parent)
    print(json.dumps(line))
    print(" ".join(f"{k}={v}" for k, v in line.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
