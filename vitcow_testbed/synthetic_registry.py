"""Registered, processed videos without media: the registry records and the small manifests
(crops, clips, tracks) a storage root holds for each, for the catalog and query tests and
the benchmarks at farm scale (``benchmarks.catalog_scale``: 10,000 of them in a minute).

Video ``n`` was recorded ``n`` minutes after 2024-01-01 08:00 on farm ``n % 5``, camera
``n % 8 + 1``, and registered from ``/farm/FARM_<f>/D<cc>/<YYYYMMDDHHMM>_D<cc>.mp4`` with
a sha256 of its number (``revision`` changes it): its partition key is the file's stem.
"""

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa

from vitcow_assets.core.tables import CROPS_SCHEMA, TRACKS_SCHEMA
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.registry import Registry
from vitcow_assets.media.parquet import write_table

FARMS, CAMERAS = 5, 8
FIRST = dt.datetime(2024, 1, 1, 8, 0)
FRAMES, STEP = 20, 4


def source_path(n: int) -> str:
    at, camera = FIRST + dt.timedelta(minutes=n), n % CAMERAS + 1
    return f"/farm/FARM_{n % FARMS}/D{camera:02d}/{at:%Y%m%d%H%M}_D{camera:02d}.mp4"


def key_of(n: int) -> str:
    return Path(source_path(n)).stem


def sha_of(n: int, revision: int = 1) -> str:
    return hashlib.sha256(f"video {n} revision {revision}".encode()).hexdigest()


def crops_manifest(home: Path, n: int, clips: int, objects: int, revision: int = 1) -> pa.Table:
    """The crops manifest of video ``n``: ``objects`` crops in each of ``clips`` clips."""
    key, sha, rows = key_of(n), sha_of(n, revision), []
    for c in range(clips):
        for o in range(objects):
            rows.append({
                "crop_path": str(home / "videos" / key / "crops" / f"c{c:05d}" / f"obj{o:04d}.mp4"), "video_id": key,
                "source_path": source_path(n), "source_sha256": sha, "clip_id": f"c{c:05d}", "object_id": o, "track_id": o, "part": 0,
                "prompt": "cow", "source_frame_start": c * FRAMES * STEP, "source_frame_end": (c + 1) * FRAMES * STEP - 1,
                "frame_step": STEP, "frames": FRAMES, "frames_present": FRAMES - o, "present": [True] * FRAMES,
                "window_xyxy": [[0, 0, 224, 224]] * FRAMES, "crop_size": 224, "margin": 0.1, "mask_background": False, "fps": 2.5,
                "segmenter": "motion/v3", "model_checkpoint": None, "code_version": "0.1.0", "run_id": "r", "farm": f"FARM_{n % FARMS}",
                "camera": f"D{n % CAMERAS + 1:02d}", "recorded_at": None, "source_uri": f"file://{source_path(n)}",
            })
    return pa.Table.from_pylist(rows, schema=CROPS_SCHEMA)


def write_video_tables(home: Path, n: int, clips: int = 2, objects: int = 2, revision: int = 1) -> str:
    """Video ``n``'s crops, clips and tracks manifests under ``home/videos/<key>``."""
    key = key_of(n)
    layout = StorageRoot(home).video(key)
    crops = crops_manifest(home, n, clips, objects, revision)
    write_table(layout.crops_table, crops)
    clip_ids = [f"c{c:05d}" for c in range(clips)]
    write_table(layout.clips_table, pa.table({"clip_id": clip_ids, "clip_path": [str(layout.clips_dir / f"{c}.mp4") for c in clip_ids]}))
    tracks = [
        {"video_id": key, "track_id": o, "prompt": "cow", "first_source_frame": 0, "last_source_frame": clips * FRAMES * STEP - 1,
         "clips": clip_ids, "object_ids": [o] * clips, "frames_present": clips * (FRAMES - o),
         "crop_paths": [r["crop_path"] for r in crops.to_pylist() if r["object_id"] == o]}
        for o in range(objects)
    ]
    write_table(layout.tracks_table, pa.Table.from_pylist(tracks, schema=TRACKS_SCHEMA))
    return key


def register_videos(home: Path, numbers, clips: int = 2, objects: int = 2, revision: int = 1) -> list[str]:
    """Register videos ``numbers`` (with ``revision``'s bytes) and write their manifests; their keys."""
    registry, keys = Registry(StorageRoot(home)), []
    for n in numbers:
        registry.register(source_path(n), sha_of(n, revision), size=1)
        keys.append(write_video_tables(home, n, clips, objects, revision))
    return keys
