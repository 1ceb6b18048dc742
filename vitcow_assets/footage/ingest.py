"""Raw video: bring the registered source into the storage root, hash it and probe it.

The result is a ``RawVideo`` record, written to ``raw_video.json`` and read back typed by
every later stage.
"""

import dataclasses
import datetime as dt
import json
import os
import shutil
from pathlib import Path

import numpy as np

from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.media.video import VideoError, frame_times, probe_video
from vitcow_assets.footage.layout import VideoLayout


@dataclasses.dataclass(frozen=True)
class RawVideo:
    """The registered source video as stored: where it came from, its bytes and its stream.

    ``frame_count`` is the number of frames the container delivers (by demuxing), which is
    what clips and prompt frames are checked against; ``header_frame_count`` is what the
    header claims (0 when it says nothing). ``fps`` is the stream's average rate. ``farm``,
    ``camera``, ``recorded_at`` (ISO time) and ``source_uri`` come from the source's path
    (see ``core.source_paths``) when known.
    """

    video_id: str
    source_path: str
    stored_path: str
    stored_how: str
    sha256: str
    size_bytes: int
    registered_at: str
    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    header_frame_count: int
    duration_s: float
    pix_fmt: str
    rotation: int = 0
    farm: str | None = None
    camera: str | None = None
    recorded_at: str | None = None
    source_uri: str | None = None

    @property
    def source_name(self) -> str:
        return Path(self.source_path).name

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RawVideo":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def ingest_source(source_path: str | os.PathLike, video_id: str, layout: VideoLayout, provenance: dict | None = None) -> RawVideo:
    """Link (or copy) the source into ``layout``, then probe, demux and hash the stored bytes
    (``write_record``); ``provenance``: farm, camera, recorded_at, source_uri."""
    source = Path(os.path.normpath(Path(source_path).absolute()))
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
    return write_record(layout, video_id, str(source), stored, how, sha256_file(stored), provenance)


def write_record(
    layout: VideoLayout, video_id: str, source: str, stored: Path, how: str, sha256: str, provenance: dict | None = None
) -> RawVideo:
    """Probe and demux the stored copy; write ``raw_video.json`` and the frames'
    presentation times (``frame_times.npy``, none when the container has no timestamps).
    Other ``source.*`` copies go."""
    for other in layout.root.glob("source.*"):
        if other != stored:
            other.unlink()
    info = probe_video(stored)
    times = frame_times(stored)
    if times is None:
        layout.frame_times.unlink(missing_ok=True)
    else:
        with atomic_file(layout.frame_times) as tmp, open(tmp, "wb") as out:
            np.save(out, times)
    probed = {k: v for k, v in info.as_dict().items() if k not in ("path", "frame_count")}
    record = RawVideo(
        video_id=video_id,
        source_path=source,
        stored_path=str(stored),
        stored_how=how,
        sha256=sha256,
        size_bytes=stored.stat().st_size,
        registered_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        frame_count=len(times) if times is not None else info.frame_count,
        header_frame_count=info.frame_count,
        **probed,
        **(provenance or {}),
    )
    with atomic_file(layout.raw_video_json) as tmp:
        tmp.write_text(json.dumps(record.as_dict(), indent=2))
    return record


def read_raw_video(layout: VideoLayout) -> RawVideo:
    try:
        return RawVideo.from_dict(json.loads(layout.raw_video_json.read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(f"{layout.raw_video_json} is missing: materialize raw_video first") from None


def read_frame_times(layout: VideoLayout) -> np.ndarray | None:
    """The presentation times ``ingest_source`` saved, or None when the container has none."""
    return np.load(layout.frame_times) if layout.frame_times.exists() else None
