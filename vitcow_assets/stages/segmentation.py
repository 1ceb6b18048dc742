"""Object masks: run the prompt plan's predictor passes on every clip and write one Parquet
row per (clip, frame, object), one row group per clip, as the clips come. Each clip's objects
are linked to the previous clip's (``core.identity``) before its rows are written, so the
rows carry their video-wide ``track_id``.

Three threads keep the accelerator busy: a decode thread prepares the next clips, the
caller's thread runs only predictor sessions, a writer thread encodes, links and writes
results (in clip order)."""

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import pyarrow as pa

from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.identity import ClipObservations, LinkSettings, TrackLinker
from vitcow_assets.core.prompts import ClipPass, PointStep, PromptPlan, TextQuery, clip_passes
from vitcow_assets.core.tables import MASKS_SCHEMA, NO_PROMPT, mask_rows, set_prompt, set_track_ids
from vitcow_assets.core.detections import Detections
from vitcow_assets.media.parquet import ParquetSink
from vitcow_assets.media.video import DecodeDamage, FrameScale
from vitcow_assets.segmenters.base import FrameResult, SegmenterSession
from vitcow_assets.stages.threads import BackgroundWorker, InlineIterator, InlineWorker, Prefetcher
from vitcow_assets.stages.events import StageEvents
from vitcow_assets.stages.frames import ClipFrameStream

LINK_SETTINGS_KEY = "vitcow.link_settings"
OpenSession = Callable[[Sequence[np.ndarray]], contextlib.AbstractContextManager[SegmenterSession]]
T = TypeVar("T")


class ClipOutOfMemory(RuntimeError):
    """A clip did not fit in accelerator memory even split in halves."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's CUDA out-of-memory error (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def _ask(session: SegmenterSession, plan: PromptPlan, clip_pass: ClipPass) -> None:
    """The session's query (or its several texts), then its steps."""
    query = clip_pass.query
    if clip_pass.texts:
        session.add_text_prompts([text for _, text in clip_pass.texts], clip_pass.query_clip_frame)
    elif isinstance(query, TextQuery):
        session.add_text_prompt(query.text, clip_pass.query_clip_frame)
    else:
        session.add_box_prompt(query.xyxy, clip_pass.query_clip_frame, query.text)
    for step, clip_frame in clip_pass.steps:
        _, own_id = plan.pass_of(step.object_id)
        if isinstance(step, PointStep):
            session.add_point_prompt(step.points, step.labels, clip_frame, own_id)
        else:
            session.remove_object(own_id)


def _queries_of(det: Detections, plan: PromptPlan, clip_pass: ClipPass) -> np.ndarray:
    """The query (pass index) that found each object: the session's one query, or, in a session
    of several texts, the query of the text the backend names (the first query of that text)."""
    if not clip_pass.texts:
        return np.full(len(det), clip_pass.pass_index, dtype=np.int64)
    by_text: dict[str, int] = {}
    for p, text in clip_pass.texts:
        by_text.setdefault(text, p)
    unknown = sorted({str(t) for t in det.prompts} - set(by_text))
    if unknown:
        raise RuntimeError(f"the segmenter names text(s) it was not asked for: {', '.join(map(repr, unknown))}")
    return np.array([by_text[str(t)] for t in det.prompts], dtype=np.int64)


def _run_pass(frames, open_session: OpenSession, plan: PromptPlan, clip_pass: ClipPass, emit: Callable[[FrameResult], T]) -> list[tuple[int, int, T]]:
    """One predictor session: the pass's query (or texts), then its steps. Each frame's result
    is relabelled to table ids and the label of the query that found each object, and handed
    to ``emit`` at once, so no pass holds a clip's masks."""
    out = []
    with open_session(frames) as session:
        _ask(session, plan, clip_pass)
        labels = np.array(plan.labels(), dtype=object)
        for result in session.propagate():
            det = result.detections
            queries = _queries_of(det, plan, clip_pass)
            relabelled = dataclasses.replace(det, object_ids=plan.table_id(queries, det.object_ids), prompts=labels[queries])
            out.append((result.clip_frame, clip_pass.pass_index, emit(FrameResult(result.clip_frame, relabelled))))
    return out


def _run_plan(frames, source_frames: range, open_session: OpenSession, plan: PromptPlan, emit, texts_together: bool = False) -> list:
    """Every pass over the clip; what ``emit`` made of each frame's results, in frame order
    (frames a pass skipped get an empty result)."""
    height, width = frames[0].shape[:2]
    emitted = []
    for clip_pass in clip_passes(plan, source_frames, texts_together):
        emitted += _run_pass(frames, open_session, plan, clip_pass, emit)
    covered = {frame for frame, _, _ in emitted}
    emitted += [(i, -1, emit(FrameResult(i, Detections.empty(height, width)))) for i in range(len(frames)) if i not in covered]
    return [item for _, _, item in sorted(emitted, key=lambda e: (e[0], e[1]))]


def segment_clip_frames(
    frames: Sequence[np.ndarray],
    source_frames: range,
    open_session: OpenSession,
    plan: PromptPlan,
    clip_id: str = "",
    on_retry: Callable[[str], None] | None = None,
    emit: Callable[[FrameResult], T] = lambda result: result,
    describe_device: Callable[[], str] | None = None,
    texts_together: bool = False,
) -> list[T]:
    """Every pass of ``plan`` over the clip (with ``texts_together``, every text query in one
    session: a backend with ``several_texts_per_session``); on out-of-memory, once more over
    its two halves.

    Returns ``emit(result)`` for each pass's result on each frame, ordered by clip frame
    (several per frame when there are several passes). After a split, ids of the second half
    are shifted past the first half's, so they stay unique within the clip, but an animal
    seen in both halves has two ids. ``describe_device`` names the device and its free
    memory in the failure.
    """
    try:
        return _run_plan(frames, source_frames, open_session, plan, emit, texts_together)
    except Exception as exc:
        if not is_out_of_memory(exc) or len(frames) < 2:
            raise
    half = len(frames) // 2
    if on_retry is not None:
        on_retry(f"clip {clip_id}: out of accelerator memory with {len(frames)} frames; retrying as {half} + {len(frames) - half}")
    largest = [-1]

    def emit_first(result: FrameResult):
        if len(result.detections):
            largest[0] = max(largest[0], int(result.detections.object_ids.max()) // plan.passes)
        return emit(result)

    def emit_second(result: FrameResult):
        shift = (1 + largest[0]) * plan.passes  # keeps each id in its pass
        det = result.detections
        return emit(FrameResult(result.clip_frame + half, dataclasses.replace(det, object_ids=det.object_ids + shift)))

    try:
        first = _run_plan(frames[:half], source_frames[:half], open_session, plan, emit_first, texts_together)
        second = _run_plan(frames[half:], source_frames[half:], open_session, plan, emit_second, texts_together)
    except Exception as exc:
        if is_out_of_memory(exc):
            where = f" on {describe_device()}" if describe_device is not None else ""
            raise ClipOutOfMemory(
                f"clip {clip_id}: out of accelerator memory even split into halves of {half} frames{where}; "
                "use shorter clips (frames_per_clip) or fewer objects at once (sam3 max_objects), or a larger GPU"
            ) from None
        raise
    return first + second


@dataclasses.dataclass
class SegmentationSummary:
    clips: int = 0
    rows: int = 0
    objects: int = 0
    tracks: int = 0
    frames_with_objects: int = 0
    incomplete_clips: list[str] = dataclasses.field(default_factory=list)
    #: seconds, for profiles: ``model`` (sessions on the caller's thread), ``wait_frames``
    #: (the caller waiting for the next clip's frames), ``wait_writer`` (the caller blocked
    #: handing results over), ``decode`` and ``prepare`` (the decode thread's work: frames
    #: out of the file, then made ready for the model), ``encode`` and ``write`` (the
    #: writer's work: rows with their RLE masks, then linking and Parquet) - all inline
    #: without prefetch; ``max_waiting_clips`` is the most clips seen queued
    timings: dict[str, float] = dataclasses.field(default_factory=dict)


Prepare = Callable[[list[np.ndarray]], Sequence[np.ndarray]]


@dataclasses.dataclass(frozen=True)
class MaskJob:
    """What ``segment_clips`` needs for one video.

    ``open_session`` opens a predictor session on one clip's frames (the segmenter
    resource's ``session``); ``prepare`` makes a clip's frames ready for it on the decode
    thread (the segmenter's ``prepare_frames``); ``scale``, when set, has the decoder
    deliver frames at that size instead of full-size RGB (the segmenter's ``frame_scale``:
    ``prepare`` then gets ``ScaledFrame``s). ``metadata`` (provenance: model,
    checkpoint, prompt, run, settings) goes into the Parquet schema's key-value metadata,
    with the ``link_settings`` that tuned the linking of objects across clips
    (``vitcow.link_settings``). ``prefetch``: clips decoded ahead of the model (0: decode,
    segment and write in turn on one thread); ``write_queue``: segmented clips waiting for
    the writer thread.
    """

    source: str | os.PathLike
    video_id: str
    clips: list[ClipWindow]
    plan: PromptPlan
    segmenter_name: str
    open_session: OpenSession
    out_path: str | os.PathLike
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    prepare: Prepare | None = None
    scale: FrameScale | None = None
    #: False for a backend that ignores prompts: the ``prompt`` column then says so (``NO_PROMPT``)
    prompt_used: bool = True
    prefetch: int = 1
    write_queue: int = 2
    link_settings: LinkSettings = LinkSettings()
    #: the device and its free memory, for an out-of-memory failure (``Segmenter.device_report``)
    describe_device: Callable[[], str] | None = None
    #: every text query in one session (``Segmenter.several_texts_per_session``: transformers' SAM3)
    texts_together: bool = False

    def __post_init__(self) -> None:
        if self.prefetch < 0 or self.write_queue < 1:
            raise ValueError(f"prefetch must be 0 or more and write_queue 1 or more, got {self.prefetch} and {self.write_queue}")


class _MaskWriter:
    """Turns each segmented clip into Parquet rows (RLE encoding and track linking
    included) and appends them to the sink, in clip order."""

    def __init__(self, job: MaskJob, sink: ParquetSink, summary: SegmentationSummary, timings: dict) -> None:
        self.job, self.sink, self.summary, self.timings = job, sink, summary, timings
        self.linker = TrackLinker(job.link_settings)

    def __call__(self, item: tuple[ClipWindow, list[FrameResult]]) -> None:
        started = time.perf_counter()
        clip, results = item
        batches = [mask_rows(self.job.video_id, clip, r.clip_frame, r.detections, self.job.segmenter_name) for r in results]
        encoded = time.perf_counter()
        self.timings["encode"] += encoded - started
        table = pa.Table.from_batches(batches, schema=MASKS_SCHEMA)
        if not self.job.prompt_used:
            table = set_prompt(table, NO_PROMPT)
        table = set_track_ids(table, self.linker.link(clip, ClipObservations.from_table(table)))
        self.sink.write(table)
        self.summary.rows += table.num_rows
        self.summary.objects += len(set(table["object_id"].to_pylist()))
        self.summary.frames_with_objects += len(set(table["clip_frame"].to_pylist()))
        self.timings["write"] += time.perf_counter() - encoded


def _decoded(stream: ClipFrameStream, prepare: Prepare | None, timings: dict):
    """Each complete clip with its frames, prepared for the model; decode and prepare
    times counted."""
    started = time.perf_counter()
    for clip, frames in stream.by_clip():
        decoded = time.perf_counter()
        timings["decode"] += decoded - started
        if prepare is not None:
            frames = prepare(frames)
            timings["prepare"] += time.perf_counter() - decoded
        yield clip, frames
        started = time.perf_counter()


def _segment_each(reader, writer, job: MaskJob, events: StageEvents, summary: SegmentationSummary, timings: dict) -> None:
    """The model's thread: take a clip, run its sessions, hand the results to the writer."""
    while True:
        started = time.perf_counter()
        item = next(reader, None)
        timings["wait_frames"] += time.perf_counter() - started
        if item is None:
            return
        clip, frames = item
        started = time.perf_counter()
        results = segment_clip_frames(
            frames, clip.source_frames, job.open_session, job.plan, clip.clip_id, events.warn, describe_device=job.describe_device,
            texts_together=job.texts_together,
        )
        del frames, item
        timings["model"] += time.perf_counter() - started
        started = time.perf_counter()
        writer.submit((clip, results))
        timings["wait_writer"] += time.perf_counter() - started
        del results
        summary.clips += 1
        events.report(summary.clips, len(job.clips))


def segment_clips(job: MaskJob, events: StageEvents | None = None) -> SegmentationSummary:
    """Segment every clip of ``job`` from one decode pass of its source into ``job.out_path``.

    The caller's thread only runs predictor sessions. With ``prefetch`` >= 1 a decode thread
    decodes and prepares the next clips (at most ``prefetch`` waiting or being decoded) and
    a writer thread writes the results (at most ``write_queue`` waiting), so the frames of at
    most ``prefetch + 1`` clips are in memory, and the masks (kept in their boxes) of at most
    ``write_queue + 2``; with ``prefetch=0`` everything runs in turn on the caller's thread.
    Both give the same rows. An error on any thread stops the others, closes the open
    session and leaves no table. ``events`` hears progress, out-of-memory retries and decode
    damage.
    """
    events = events if events is not None else StageEvents()
    summary = SegmentationSummary()
    timings = dict.fromkeys(("model", "wait_frames", "wait_writer", "decode", "prepare", "encode", "write"), 0.0)
    stream = ClipFrameStream(job.source, job.clips, damage=events.damage, scale=job.scale)
    schema = MASKS_SCHEMA.with_metadata({**job.metadata, LINK_SETTINGS_KEY: json.dumps(dataclasses.asdict(job.link_settings))})
    with ParquetSink(job.out_path, schema) as sink:
        write = _MaskWriter(job, sink, summary, timings)
        decoded = lambda: _decoded(stream, job.prepare, timings)  # noqa: E731 - made on the decode thread
        if job.prefetch > 0:
            reader = Prefetcher(decoded, depth=job.prefetch, name="vitcow-decode")
            writer = BackgroundWorker(write, depth=job.write_queue, name="vitcow-write")
        else:
            reader, writer = InlineIterator(decoded), InlineWorker(write)
        with writer, reader:
            _segment_each(reader, writer, job, events, summary, timings)
        if job.prefetch == 0:  # inline: the write time was counted inside the caller's waits
            timings["wait_writer"] -= timings["encode"] + timings["write"]
            timings["wait_frames"] -= timings["decode"] + timings["prepare"]
    timings["max_waiting_clips"] = float(max(reader.max_waiting, writer.max_waiting))
    summary.timings = timings
    summary.tracks = write.linker.tracks
    summary.incomplete_clips = [c.clip_id for c in stream.incomplete]
    return summary
