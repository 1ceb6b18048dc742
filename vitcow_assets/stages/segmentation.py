"""Object masks: run a segmenter session per clip and write one Parquet row per
(clip, frame, object), one row group per clip, as the clips come."""

import contextlib
import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.tables import MASKS_SCHEMA, mask_rows
from vitcow_assets.media.files import ParquetSink
from vitcow_assets.segmenters.base import SegmenterSession
from vitcow_assets.stages.frames import ClipFrameStream

OpenSession = Callable[[Sequence[np.ndarray]], contextlib.AbstractContextManager[SegmenterSession]]
Progress = Callable[[int, int], None]


@dataclasses.dataclass
class SegmentationSummary:
    clips: int = 0
    rows: int = 0
    objects: int = 0
    frames_with_objects: int = 0
    incomplete_clips: list[str] = dataclasses.field(default_factory=list)


def segment_clips(
    source: str | os.PathLike,
    video_id: str,
    clips: list[ClipWindow],
    open_session: OpenSession,
    prompt: str,
    segmenter_name: str,
    out_path: str | os.PathLike,
    progress: Progress | None = None,
    table_metadata: dict[str, str] | None = None,
) -> SegmentationSummary:
    """Segment every clip of ``clips`` from one decode pass of ``source`` into ``out_path``.

    ``table_metadata`` (provenance: model, checkpoint, prompt, run) goes into the Parquet
    schema's key-value metadata.
    """
    summary = SegmentationSummary()
    stream = ClipFrameStream(source, clips)
    schema = MASKS_SCHEMA.with_metadata(table_metadata) if table_metadata else MASKS_SCHEMA
    with ParquetSink(out_path, schema) as sink:
        for clip, frames in stream.by_clip():
            batches = []
            with open_session(frames) as session:
                session.add_text_prompt(prompt, 0)
                for result in session.propagate():
                    batches.append(mask_rows(video_id, clip, result.clip_frame, result.detections, segmenter_name))
            del frames
            table = pa.Table.from_batches(batches, schema=MASKS_SCHEMA)
            sink.write(table)
            summary.clips += 1
            summary.rows += table.num_rows
            summary.objects += len(set(table["object_id"].to_pylist()))
            summary.frames_with_objects += sum(1 for b in batches if b.num_rows)
            if progress is not None:
                progress(summary.clips, len(clips))
    summary.incomplete_clips = [c.clip_id for c in stream.incomplete]
    return summary
