"""Clips: the manifest of frame windows, and optionally the clips as H.264 files."""

import os
from pathlib import Path

import av
import pyarrow as pa

from vitcow_assets.core.clips import (
    ClipSettings,
    ClipWindow,
    parse_start_time,
    plan_clips,
)
from vitcow_assets.core.tables import clip_rows
from vitcow_assets.media.files import atomic_dir
from vitcow_assets.media.parquet import write_table
from vitcow_assets.media.video import DecodeDamage, EncoderSettings, VideoWriter
from vitcow_assets.stages.frames import ClipFrameStream
from vitcow_assets.footage.ingest import RawVideo, read_frame_times
from vitcow_assets.footage.layout import VideoLayout
from vitcow_assets.stages.events import StageEvents


class NoClipFits(ValueError):
    """The video gives no clip with these settings; the message names the file and settings."""


def plan_video_clips(
    source_name: str, frame_count: int, fps: float, settings: ClipSettings, times=None
) -> list[ClipWindow]:
    """The clips of a video: its start time of day parsed from ``source_name`` when a
    time-of-day window is asked for, then ``plan_clips``."""
    start = parse_start_time(source_name, settings) if settings.uses_time_window else None
    planned = plan_clips(frame_count, fps, settings, start, times)
    if not planned:
        raise NoClipFits(f"{source_name}: no clip fits (frames: {frame_count}, settings: {settings})")
    return planned


def cut_clips(raw: RawVideo, layout: VideoLayout, settings: ClipSettings, write_files: bool, events: StageEvents) -> tuple[pa.Table, list[ClipWindow]]:
    """Plan the video's clips and write the clips folder: the manifest, and the clip files
    when ``write_files``. Returns the manifest and the clips the file could not deliver."""
    times = read_frame_times(layout)
    planned = plan_video_clips(raw.source_name, raw.frame_count, raw.fps, settings, times)
    return write_clips(raw.stored_path, raw.video_id, planned, raw.fps, layout, write_files, times=times, damage=events.damage)


def write_clips(
    source: str | os.PathLike,
    video_id: str,
    clips: list[ClipWindow],
    fps: float,
    layout: VideoLayout,
    write_files: bool,
    encoder: EncoderSettings = EncoderSettings(),
    times=None,
    damage: DecodeDamage | None = None,
) -> tuple[pa.Table, list[ClipWindow]]:
    """Write the clips folder (manifest, and clip files if asked); return the manifest and the
    clips the file could not deliver (dropped from the manifest). ``damage`` hears what a
    damaged file cost (frames lost to damaged packets)."""
    with atomic_dir(layout.clips_dir) as folder:
        incomplete: list[ClipWindow] = []
        paths: dict[int, str] = {}
        if write_files:
            incomplete = _encode_clip_files(source, clips, fps, folder, layout.clips_dir, encoder, paths, damage)
        kept = [c for c in clips if c not in incomplete]
        table = clip_rows(video_id, kept, fps, [paths.get(c.clip_index) for c in kept], times)
        write_table(folder / layout.clips_table.name, table)
    return table, incomplete


def _encode_clip_files(source, clips, fps, folder: Path, final_folder: Path, encoder, paths, damage=None) -> list[ClipWindow]:
    stream = ClipFrameStream(source, clips, native=True, damage=damage)  # re-encode decoded frames as they are
    writers: dict[int, VideoWriter] = {}
    try:
        for _, rgb, uses in stream:
            for position in stream.take_abandoned():  # a frame of it never decoded: discard
                if position in writers:
                    writers.pop(position).__exit__(RuntimeError, RuntimeError("damaged clip"), None)
            for position, clip_frame in uses:
                clip = clips[position]
                if clip_frame == 0:
                    height, width = (rgb.height, rgb.width) if isinstance(rgb, av.VideoFrame) else rgb.shape[:2]
                    writer = VideoWriter(folder / f"{clip.clip_id}.mp4", width, height, fps / clip.frame_step, encoder)
                    writers[position] = writer.__enter__()
                writer = writers[position]
                writer.write(rgb)
                if clip_frame == clip.frames - 1:
                    writers.pop(position).__exit__(None, None, None)
                    paths[clip.clip_index] = str(final_folder / f"{clip.clip_id}.mp4")
    except BaseException as exc:
        for writer in writers.values():
            writer.__exit__(type(exc), exc, exc.__traceback__)
        raise
    for writer in writers.values():  # clips the file ended inside of: discard
        writer.__exit__(RuntimeError, RuntimeError("incomplete clip"), None)
    return stream.incomplete

