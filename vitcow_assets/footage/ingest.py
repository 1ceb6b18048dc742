"""Raw video: bring a registered source into the storage root, hash it and probe it.

One ingest for every source: a local file is hard-linked (or copied) into the partition's
folder; a remote one is linked from its staged download (``footage.intake``), else streamed
again (hashed while copying, resumed after drops) and checked against the sha256 it was
registered with. Nothing partial is ever renamed into place. The result is a ``RawVideo``
record, written to ``raw_video.json`` and read back typed by every later stage.
"""

import dataclasses
import datetime as dt
import json
import os
import posixpath
import shutil
from pathlib import Path

import numpy as np

from vitcow_assets.footage.intake import staged_path
from vitcow_assets.footage.layout import StorageRoot, VideoLayout
from vitcow_assets.footage.provenance import source_provenance
from vitcow_assets.footage.registry import Registration
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.media.video import VideoError, VideoInfo, frame_times, probe_video
from vitcow_assets.remote.filesystems import RemoteError
from vitcow_assets.remote.locations import Location, is_url
from vitcow_assets.remote.transfer import Connection, download


@dataclasses.dataclass(frozen=True)
class RawVideo:
    """The registered source video as stored: where it came from, its bytes and its stream.

    ``video`` is the probe of the stored copy (its ``frame_count`` is what the header claims,
    or the demuxed count when it says nothing); ``frame_count`` here is the number of frames
    the container delivers (by demuxing), which is what clips and prompt frames are checked
    against. ``farm``, ``camera``, ``recorded_at`` (ISO time) and ``source_uri`` come from
    the source's path (``footage.provenance``) when known.
    """

    video_id: str
    source_path: str
    stored_path: str
    stored_how: str
    sha256: str
    size_bytes: int
    registered_at: str
    video: VideoInfo
    frame_count: int
    farm: str | None = None
    camera: str | None = None
    recorded_at: str | None = None
    source_uri: str | None = None

    @property
    def source_name(self) -> str:
        return Path(self.source_path).name

    @property
    def width(self) -> int:
        return self.video.width

    @property
    def height(self) -> int:
        return self.video.height

    @property
    def fps(self) -> float:
        return self.video.fps

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RawVideo":
        data = dict(data)
        if "video" not in data:  # the flat record written before the probe was nested
            data["video"] = {**data, "path": data.get("stored_path", ""), "frame_count": data.get("header_frame_count") or data["frame_count"]}
        video_fields = {f.name for f in dataclasses.fields(VideoInfo)}
        data["video"] = VideoInfo(**{k: v for k, v in data["video"].items() if k in video_fields})
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def ingest(registration: Registration, root: StorageRoot, patterns, on_retry=None) -> RawVideo:
    """The registered video of ``registration`` brought into its partition's folder."""
    layout = root.video(registration.key)
    provenance = source_provenance(registration.source_path, registration.source_name, patterns)
    if is_url(registration.source_path):
        stored, how = _bring_remote(registration, root, layout, on_retry)
        sha256 = registration.sha256
    else:
        stored, how = _bring_local(registration.source_path, layout)
        sha256 = sha256_file(stored)
    return write_record(layout, registration.key, registration.source_path, stored, how, sha256, provenance)


def _bring_local(source_path: str, layout: VideoLayout) -> tuple[Path, str]:
    source = Path(os.path.normpath(Path(source_path).absolute()))
    if not source.is_file():
        raise VideoError(f"{source}: source video is missing")
    probe_video(source)  # fail on a non-video before copying anything
    stored = layout.source_copy(source.suffix)
    with atomic_file(stored) as tmp:
        try:
            os.link(source, tmp)
            how = "hardlink"
        except OSError:
            shutil.copyfile(source, tmp)
            how = "copy"
    return stored, how


def _bring_remote(registration: Registration, root: StorageRoot, layout: VideoLayout, on_retry) -> tuple[Path, str]:
    location = Location.parse(registration.source_path)
    suffix = posixpath.splitext(location.path)[1].lower()
    staged = staged_path(root, registration.sha256, suffix)
    stored = layout.source_copy(suffix)
    how = "staged"
    try:
        with atomic_file(stored) as tmp:
            os.link(staged, tmp)
            if sha256_file(tmp) != registration.sha256:
                raise RemoteError(f"{staged}: staged copy does not match its registration")
            probe_video(tmp)  # a non-video fails here, before anything is renamed into place
    except OSError:  # no staged copy (or not linkable, or damaged): fetch again
        how = "download"
        with Connection(location) as conn:
            download(conn, location.fs_path, stored, expect_sha256=registration.sha256, check=probe_video, on_retry=on_retry)
    staged.unlink(missing_ok=True)
    return stored, how


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
    record = RawVideo(
        video_id=video_id,
        source_path=source,
        stored_path=str(stored),
        stored_how=how,
        sha256=sha256,
        size_bytes=stored.stat().st_size,
        registered_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        video=info,
        frame_count=len(times) if times is not None else info.frame_count,
        **(provenance or {}),
    )
    record = _keep_first_registration(layout, record)
    with atomic_file(layout.raw_video_json) as tmp:
        tmp.write_text(json.dumps(record.as_dict(), indent=2))
    return record


def _keep_first_registration(layout: VideoLayout, record: RawVideo) -> RawVideo:
    """``record`` with the registration time of the record already stored where that one says
    the same in every other field (the same file registered again), so that registering again
    writes the same bytes; a changed record keeps its new time."""
    try:
        before = json.loads(layout.raw_video_json.read_text())
    except (FileNotFoundError, ValueError):
        return record
    now = json.loads(json.dumps(record.as_dict()))  # as it would read back
    if isinstance(before, dict) and {**before, "registered_at": now["registered_at"]} == now:
        return dataclasses.replace(record, registered_at=before["registered_at"])
    return record


def read_raw_video(layout: VideoLayout) -> RawVideo:
    try:
        return RawVideo.from_dict(json.loads(layout.raw_video_json.read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(f"{layout.raw_video_json} is missing: materialize raw_video first") from None


def read_frame_times(layout: VideoLayout) -> np.ndarray | None:
    """The presentation times ``ingest`` saved, or None when the container has none."""
    return np.load(layout.frame_times) if layout.frame_times.exists() else None
