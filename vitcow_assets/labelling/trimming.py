"""Trimmed crops: a copy of a crop video holding only a labelled segment's frames.

``trim_crop`` decodes the crop once (``media.video.iter_frames``, frames counted in
presentation order from 0) and re-encodes frames ``start_frame..end_frame`` inclusive, so
the copy is frame-exact whatever the crop's keyframes. It is H.264 (``media.video``'s
settings at one encoder thread, so the same crop and segment give the same bytes on any
machine) and written atomically: it appears only once complete.

May import ``media`` and the labelling schemas; no database, no web framework, no dagster.
"""

import dataclasses
import os
from pathlib import Path

import pyarrow as pa

from vitcow_assets.labelling.events import LabelError, check_segment
from vitcow_assets.labelling.snapshot import TRIM_SCHEMA
from vitcow_assets.media.video import EncoderSettings, VideoError, VideoWriter, iter_frames, probe_video

#: one thread: x264's output depends on its thread count, and trimmed copies must not
TRIM_ENCODER = EncoderSettings(threads=1)


class TrimError(ValueError):
    """A segment that cannot be cut from its crop; one line naming the crop."""


@dataclasses.dataclass(frozen=True)
class Trimmed:
    path: Path
    frames: int
    fps: float


def trim_crop(crop_path: str | os.PathLike, out_path: str | os.PathLike, start_frame: int, end_frame: int) -> Trimmed:
    """Write frames ``start_frame..end_frame`` (inclusive) of ``crop_path`` to ``out_path``."""
    name = Path(crop_path).name
    try:
        info = probe_video(crop_path)
        check_segment(start_frame, end_frame, info.frame_count)
    except (LabelError, VideoError) as exc:
        raise TrimError(f"{crop_path}: cannot trim ({exc})") from None
    wanted = end_frame - start_frame + 1
    with VideoWriter(out_path, info.width, info.height, info.fps, TRIM_ENCODER) as writer:
        for _, frame in iter_frames(crop_path, wanted=range(start_frame, end_frame + 1), native=True):
            writer.write(frame)
        if writer.frames != wanted:  # raised inside the block: nothing is renamed into place
            raise TrimError(f"{name}: decoded {writer.frames} of the {wanted} frames {start_frame}..{end_frame}")
    return Trimmed(Path(out_path), wanted, info.fps)


def render_trims(plan: pa.Table, skip_existing: bool = False) -> pa.Table:
    """Render every row of a trim plan (``TRIM_SCHEMA``); returns the plan with each copy's
    frame count (``frames``). With ``skip_existing`` a copy already on disk is kept (the same
    crop and segment always give the same bytes) and its frames are counted from the file."""
    frames = []
    for row in plan.select(TRIM_SCHEMA.names).to_pylist():
        if skip_existing and Path(row["trimmed_path"]).is_file():
            frames.append(probe_video(row["trimmed_path"]).frame_count)
            continue
        frames.append(trim_crop(row["crop_path"], row["trimmed_path"], row["start_frame"], row["end_frame"]).frames)
    return plan.append_column("frames", pa.array(frames, pa.int32()))
