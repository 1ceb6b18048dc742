"""A crop catalog with known content, for the labelling tests and benchmarks.

``synthetic_catalog`` writes small real H.264 crop videos whose frame ``i`` is a known grey
level (``frame_level(i)``) with a white bar at a known column, their clip files (frame ``i``
grey ``clip_level(i)``, ``CLIP_W`` × ``CLIP_H``; object ``o``'s window at frame ``i`` is
``window(o, i)``), each video's crops manifest, and the catalog of them (through
``core.catalog.catalog_rows``, as the catalog asset builds it).
"""

from pathlib import Path

import numpy as np
import pyarrow as pa

from vitcow_assets.core.catalog import catalog_rows, merge_catalogs
from vitcow_assets.core.tables import CROPS_SCHEMA
from vitcow_assets.media.parquet import write_table
from vitcow_assets.media.video import VideoWriter

CROP = 64
CLIP_W, CLIP_H = 160, 120


def frame_level(i: int) -> int:
    return 20 + 18 * i


def clip_level(i: int) -> int:
    return 30 + 15 * i


def window(object_id: int, i: int) -> list[int]:
    """Object ``object_id``'s crop window at clip frame ``i`` (clip pixels, x1 y1 x2 y2)."""
    x1 = 8 + 40 * object_id + 2 * i
    return [x1, 20, x1 + 32, 52]


def write_clip(path: Path, frames: int, fps: float = 2.5) -> Path:
    with VideoWriter(path, CLIP_W, CLIP_H, fps) as writer:
        for i in range(frames):
            writer.write(np.full((CLIP_H, CLIP_W, 3), clip_level(i), np.uint8))
    return path


def write_crop(path: Path, frames: int, fps: float = 2.5) -> Path:
    with VideoWriter(path, CROP, CROP, fps) as writer:
        for i in range(frames):
            image = np.full((CROP, CROP, 3), frame_level(i), np.uint8)
            image[:, (4 * i) % (CROP - 4) : (4 * i) % (CROP - 4) + 4] = 255
            writer.write(image)
    return path


def _manifest_rows(home: Path, video_id: str, sha: str, farm: str | None, clips: int, objects: int, frames: int) -> list[dict]:
    rows = []
    for c in range(clips):
        for o in range(objects):
            path = write_crop(home / "videos" / video_id / "crops" / f"c{c:05d}" / f"obj{o:04d}.mp4", frames)
            rows.append({
                "crop_path": str(path), "video_id": video_id, "source_path": f"/in/{video_id}.mp4", "source_sha256": sha,
                "clip_id": f"c{c:05d}", "object_id": o, "track_id": o, "part": 0, "prompt": "cow", "source_frame_start": c * (frames - 1) * 4,
                "source_frame_end": (c + 1) * (frames - 1) * 4, "frame_step": 4, "frames": frames, "frames_present": frames,
                "present": [True] * frames, "window_xyxy": [window(o, i) for i in range(frames)], "crop_size": CROP, "margin": 0.1,
                "mask_background": False, "fps": 2.5, "segmenter": "motion/v2", "model_checkpoint": None, "code_version": "0.1.0",
                "run_id": "r", "farm": farm, "camera": "D01", "recorded_at": None, "source_uri": f"file:///in/{video_id}.mp4",
            })
    return rows


def synthetic_catalog(home: Path, videos=(("va", "FARM_A"), ("vb", "FARM_B")), clips: int = 3, objects: int = 2, frames: int = 12) -> pa.Table:
    """Real crop videos under ``home/videos/`` and their catalog (also written to
    ``home/catalog/crops.parquet``): per video ``clips`` x ``objects`` crops of ``frames`` frames."""
    parts = []
    for n, (video_id, farm) in enumerate(videos):
        manifest = pa.Table.from_pylist(_manifest_rows(home, video_id, f"{n:02x}" * 32, farm, clips, objects, frames), schema=CROPS_SCHEMA)
        write_table(home / "videos" / video_id / "crops" / "crops.parquet", manifest)
        clip_files = [str(write_clip(home / "videos" / video_id / "clips" / f"c{c:05d}.mp4", frames)) for c in range(clips)]
        clip_table = pa.table({"clip_id": [f"c{c:05d}" for c in range(clips)], "clip_path": clip_files})
        parts.append(catalog_rows(manifest, clip_table))
    catalog = merge_catalogs(parts)
    write_table(home / "catalog" / "crops.parquet", catalog)
    return catalog
