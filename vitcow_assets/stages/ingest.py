"""Raw video: bring the registered source into the storage root, hash it and probe it."""

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from vitcow_assets.media.files import atomic_file, sha256_file
from vitcow_assets.media.video import VideoError, probe_video
from vitcow_assets.storage import VideoLayout


def ingest_source(source_path: str | os.PathLike, video_id: str, layout: VideoLayout, provenance: dict | None = None) -> dict:
    """Link (or copy) the source into ``layout``, then probe and hash the stored bytes.

    Returns the raw-video record (plus ``provenance``: farm, camera, recorded_at,
    source_uri), also written to ``raw_video.json``.
    """
    source = Path(source_path)
    if not source.is_file():
        raise VideoError(f"{source}: source video is missing")
    probe_video(source)  # fail on a non-video before copying anything
    layout.root.mkdir(parents=True, exist_ok=True)
    stored = layout.source_copy(source.suffix)
    with atomic_file(stored) as tmp:
        try:
            os.link(source, tmp)
            how = "hardlink"
        except OSError:
            shutil.copyfile(source, tmp)
            how = "copy"
    return write_record(layout, video_id, str(source.absolute()), stored, how, sha256_file(stored), provenance)


def write_record(layout: VideoLayout, video_id: str, source: str, stored: Path, how: str, sha256: str, provenance: dict | None = None) -> dict:
    """Probe the stored copy and write ``raw_video.json``; other ``source.*`` copies go."""
    for other in layout.root.glob("source.*"):
        if other != stored:
            other.unlink()
    info = probe_video(stored)
    record = {
        "video_id": video_id,
        "source_path": source,
        "stored_path": str(stored),
        "stored_how": how,
        "sha256": sha256,
        "size_bytes": stored.stat().st_size,
        "registered_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **{k: v for k, v in info.as_dict().items() if k != "path"},
        **(provenance or {}),
    }
    with atomic_file(layout.raw_video_json) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return record


def read_raw_video(layout: VideoLayout) -> dict:
    try:
        return json.loads(layout.raw_video_json.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{layout.raw_video_json} is missing: materialize raw_video first") from None
