"""Object crops: one fixed-size H.264 video per (clip, object), from one decode pass of the
source whatever the number of objects, plus a Parquet manifest with each crop's provenance,
and the video's tracks table (every crop of one animal, by ``track_id``).

Windows come from ``core.crop_windows``: steady by default, and an object whose box jumps
further than the scene's animals move (an identity switch of the segmenter) is cut at the
jump into parts, one crop each, so no crop follows two animals. Each part keeps the
object's ``clip_id``, ``object_id`` and ``track_id``: its present frames are exactly its
own mask rows, and the parts of one object partition that object's mask rows. Part 0 is
``<clip>/objNNNN.mp4``; later parts are ``<clip>/objNNNN_pK.mp4``. So a crop is no longer
one per (clip, object): whatever pairs them (the ``crops_trace_to_masks`` rule, a crop id
made of the object id) must take the union of an object's parts, or the part with it.

Reproducible: every crop video is encoded by one single-threaded encoder from pixels that
do not depend on the machine (``media.video``); files are encoded several at once on a
small thread pool, which changes when a file is written, never its bytes; manifest rows are
written in clip and object order. May import ``core``, ``media``, ``stages.frames`` and
the storage layout; nothing of Dagster.
"""

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.core import crop_windows
from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.crop_windows import CropPlan, WindowSettings, jump_speed_model, speed_record
from vitcow_assets.core.geometry import extract_crop
from vitcow_assets.core.masks import decode_mask
from vitcow_assets.core.settings import check, setting
from vitcow_assets.core.speeds import Reach, SpeedModel, centre_moves
from vitcow_assets.core.tables import CROPS_SCHEMA, TracksBuilder
from vitcow_assets.media.files import atomic_dir
from vitcow_assets.media.parquet import ParquetSink, write_table
from vitcow_assets.media.video import DecodeDamage, EncoderSettings, VideoWriter
from vitcow_assets.stages.frames import ClipFrameStream
from vitcow_assets.footage.layout import VideoLayout

#: clips whose crops may wait for the encoders while the next clip is decoded
_PENDING_CLIPS = 2


@dataclasses.dataclass(frozen=True)
class CropSettings:
    crop_size: int = setting(224, "crop width = height, pixels (even)")
    margin: float = setting(0.1, "margin around the box on every side, as a fraction of its longer side")
    mask_background: bool = setting(False, "black out everything outside the animal's mask")
    steady: bool = setting(True, "steady windows: one fixed window per crop when the animal stays inside it, else a smoothed centre and size")
    steady_smooth_frames: int = setting(3, "frames either side that the smoothing of a moving animal's window looks at")
    steady_max_zoom_out: float = setting(1.25, "a fixed window may be at most this many times the typical per-frame window's side")

    def __post_init__(self) -> None:
        check("crop_size", self.crop_size >= 2 and self.crop_size % 2 == 0, f"crop_size must be an even number >= 2, got {self.crop_size}")
        check("margin", 0 <= self.margin <= 2, f"margin must be within [0, 2], got {self.margin}")
        check("steady_smooth_frames", self.steady_smooth_frames >= 1, f"steady_smooth_frames must be >= 1, got {self.steady_smooth_frames}")
        check("steady_max_zoom_out", 1 <= self.steady_max_zoom_out <= 4, f"steady_max_zoom_out must be within [1, 4], got {self.steady_max_zoom_out}")

    def windows(self) -> WindowSettings:
        return WindowSettings(self.crop_size, self.margin, self.steady, self.steady_smooth_frames, self.steady_max_zoom_out)


@dataclasses.dataclass(frozen=True)
class CropProvenance:
    video_id: str
    source_path: str
    source_sha256: str
    segmenter: str
    model_checkpoint: str | None
    code_version: str
    run_id: str
    #: sha256 of the checkpoint file's bytes (None without a checkpoint: the motion backend)
    model_checkpoint_sha256: str | None = None
    farm: str | None = None
    camera: str | None = None
    #: ISO date-time of the recording start (from the path), if known
    recorded_at: str | None = None
    source_uri: str | None = None


@dataclasses.dataclass
class CropSummary:
    """What ``write_crops`` did beyond the crop count (pass one in to have it filled)."""

    #: crop videos written
    crops: int = 0
    #: crops showing one fixed window
    fixed_windows: int = 0
    #: what the jump rule measured (``core.crop_windows.speed_record``), None when too few moves to measure
    scene_speed: dict | None = None
    #: jumps found: each started a new part (a crop of its own)
    jumps: int = 0
    #: objects whose frames held a jump, as ``<clip_id>/obj<NNNN>``: cut into parts
    split_objects: list[str] = dataclasses.field(default_factory=list)
    #: moves of the window centre between consecutive shown frames: count and total, px
    centre_steps: int = 0
    centre_travel_px: float = 0.0

    @property
    def jitter_px(self) -> float:
        """Mean move of the window centre between consecutive frames showing the animal."""
        return self.centre_travel_px / self.centre_steps if self.centre_steps else 0.0


def mask_groups_by_clip(masks_path: str | os.PathLike) -> dict[str, list[int]]:
    """Row groups of a masks table per clip id, from the footer statistics where possible."""
    handle = pq.ParquetFile(masks_path)
    column = handle.schema_arrow.get_field_index("clip_id")
    groups: dict[str, list[int]] = {}
    for i in range(handle.metadata.num_row_groups):
        stats = handle.metadata.row_group(i).column(column).statistics
        if stats is not None and stats.has_min_max and stats.min == stats.max:
            ids = [stats.min]
        else:
            ids = set(handle.read_row_group(i, columns=["clip_id"])["clip_id"].to_pylist())
        for clip_id in ids:
            groups.setdefault(clip_id if isinstance(clip_id, str) else clip_id.decode(), []).append(i)
    return groups


_BOX_COLUMNS = ["clip_id", "object_id", "clip_frame", "x1", "y1", "x2", "y2"]


def object_boxes(table: pa.Table) -> Iterator[tuple[str, int, np.ndarray, np.ndarray]]:
    """``(clip_id, object_id, clip_frames (m,), boxes (m, 4))`` of each object of mask rows."""
    clip_ids = table["clip_id"].to_numpy(zero_copy_only=False).astype(str)
    objects = table["object_id"].to_numpy()
    frames = table["clip_frame"].to_numpy()
    boxes = np.stack([table[c].to_numpy().astype(np.float64) for c in ("x1", "y1", "x2", "y2")], axis=1)
    clip_codes, clip_index = np.unique(clip_ids, return_inverse=True)
    keys = np.stack([clip_index, objects], axis=1)
    unique_keys, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for k, (clip_code, object_id) in enumerate(unique_keys):
        rows = np.flatnonzero(inverse == k)
        yield str(clip_codes[clip_code]), int(object_id), frames[rows], boxes[rows]


def measure_scene_speed(masks_path: str | os.PathLike) -> SpeedModel:
    """The crop stage's speed model (``core.crop_windows.jump_speed_model``) fed with the
    centre moves of every object of the video, from its masks table (row group by row group)."""
    masks = pq.ParquetFile(masks_path)
    model = jump_speed_model()
    for i in range(masks.metadata.num_row_groups):
        for _, _, frames, boxes in object_boxes(masks.read_row_group(i, columns=_BOX_COLUMNS)):
            model.add(centre_moves(frames, boxes))
    return model


def object_plans(clip: ClipWindow, rows: pa.Table, settings: CropSettings, reach: Reach | None) -> dict[int, list[CropPlan]]:
    """Each object's crops in ``clip`` from its mask rows (``object_id``, ``clip_frame``,
    ``x1..y2``): its frames cut at every jump beyond the scene's ``reach``, each part with its
    windows (``core.crop_windows.plan_object``). What ``write_crops`` cuts, without the pixels."""
    out = {}
    for _, object_id, frames, boxes in object_boxes(rows.select(_BOX_COLUMNS)) if rows.num_rows else ():
        per_frame = np.full((clip.frames, 4), np.nan)
        per_frame[frames] = boxes
        out[object_id] = crop_windows.plan_object(per_frame, settings.windows(), reach)
    return out


@dataclasses.dataclass
class _ObjectCrop:
    object_id: int
    track_id: int
    prompt: str
    plan: CropPlan
    #: mask RLE per shown clip frame
    masks: dict[int, dict]
    path: Path
    images: list[np.ndarray] = dataclasses.field(default_factory=list)

    @property
    def present(self) -> list[bool]:
        return self.plan.present.tolist()

    @property
    def windows(self) -> list:
        return [w.tolist() if p else None for w, p in zip(self.plan.windows, self.plan.present)]


class _ClipCrops:
    """Per-frame plan and crop images of every object (part) of one clip.

    Crops are kept until the clip ends (crop size squared x 3 bytes per frame: 3 MB for 20
    frames at 224) and then encoded, each file by one encoder.
    """

    def __init__(self, clip: ClipWindow, rows: pa.Table, folder: Path, fps: float, settings: CropSettings, reach: Reach | None):
        self.clip, self.fps = clip, fps
        self.objects: list[_ObjectCrop] = []
        self.split: list[str] = []
        cols = rows.select(["object_id", "track_id", "clip_frame", "prompt", "mask_rle"]).to_pydict()
        first = {}
        rle: dict[int, dict[int, dict]] = {}
        for i, object_id in enumerate(cols["object_id"]):
            first.setdefault(object_id, i)
            rle.setdefault(object_id, {})[cols["clip_frame"][i]] = cols["mask_rle"][i]
        plans_by_object = object_plans(clip, rows, settings, reach)
        for object_id in sorted(first):
            plans = plans_by_object[object_id]
            if len(plans) > 1:
                self.split.append(f"{clip.clip_id}/obj{object_id:04d}")
            for plan in plans:
                suffix = f"_p{plan.part}" if plan.part else ""
                path = folder / clip.clip_id / f"obj{object_id:04d}{suffix}.mp4"
                shown = {f: m for f, m in rle[object_id].items() if plan.present[f]}
                row = first[object_id]
                self.objects.append(_ObjectCrop(object_id, cols["track_id"][row], cols["prompt"][row], plan, shown, path))

    def add_frame(self, clip_frame: int, rgb: np.ndarray, settings: CropSettings, black: np.ndarray) -> None:
        for obj in self.objects:
            if not obj.plan.present[clip_frame]:
                obj.images.append(black)  # shared and never written to: the encoder copies it
                continue
            mask = decode_mask(obj.masks[clip_frame]) if settings.mask_background else None
            window = tuple(int(v) for v in obj.plan.windows[clip_frame])
            obj.images.append(extract_crop(rgb, window, settings.crop_size, mask))


def _encode(obj: _ObjectCrop, size: int, fps: float, encoder: EncoderSettings) -> None:
    """Write one crop video (atomically) and drop its frames."""
    with VideoWriter(obj.path, size, size, fps, encoder) as writer:
        for image in obj.images:
            writer.write(image)
    obj.images = []


class _Encoders:
    """Encodes finished clips' crop videos on worker threads and hands the clips back in the
    order they were given, each once all its files are written.

    PyAV releases the GIL while x264 encodes, so the workers run in parallel with each other
    and with the decode pass. At most ``_PENDING_CLIPS`` clips wait, which bounds memory.
    On an error the pending work is cancelled and waited for before the error goes on, so
    no worker writes into a folder that is being discarded.
    """

    def __init__(self, workers: int, size: int, encoder: EncoderSettings) -> None:
        self.size, self.encoder = size, encoder
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crop-encode")
        self._pending: collections.deque = collections.deque()

    def submit(self, state: _ClipCrops) -> list[_ClipCrops]:
        for obj in state.objects:
            obj.path.parent.mkdir(parents=True, exist_ok=True)
        futures = [self._pool.submit(_encode, obj, self.size, state.fps, self.encoder) for obj in state.objects]
        self._pending.append((state, futures))
        done = []
        while len(self._pending) > _PENDING_CLIPS:
            done.append(self._complete_oldest())
        return done

    def drain(self) -> list[_ClipCrops]:
        return [self._complete_oldest() for _ in range(len(self._pending))]

    def _complete_oldest(self) -> _ClipCrops:
        state, futures = self._pending.popleft()
        for future in futures:
            future.result()
        return state

    def __enter__(self) -> "_Encoders":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)


def default_encode_workers() -> int:
    """Crop files encoded at once: the cores this process may use, at most 4 (files are
    20 frames of 224 px; more workers mostly hold more clips in memory)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def crops_metadata(settings: CropSettings, encoder: EncoderSettings, scene_speed: dict | None, tracks_table: Path) -> dict[str, str]:
    """Key-value metadata of the crops manifest: the settings that made its windows and bytes
    (``scene_speed``: ``core.crop_windows.speed_record``)."""
    return {
        "vitcow.tracks_table": str(tracks_table),
        "vitcow.crop_settings": json.dumps(dataclasses.asdict(settings), sort_keys=True),
        "vitcow.scene_speed": json.dumps(scene_speed, sort_keys=True),
        "vitcow.encoder": json.dumps(encoder.describe(), sort_keys=True),
    }


def write_crops(
    source: str | os.PathLike,
    clips: list[ClipWindow],
    clip_fps: Mapping[str, float],
    masks_path: str | os.PathLike,
    layout: VideoLayout,
    settings: CropSettings,
    provenance: CropProvenance,
    encoder: EncoderSettings = EncoderSettings(),
    progress: Callable[[int, int], None] | None = None,
    damage: DecodeDamage | None = None,
    summary: CropSummary | None = None,
    encode_workers: int | None = None,
) -> tuple[int, list[str]]:
    """Write the crops folder (videos and ``crops.parquet``), then the tracks table
    (``layout.tracks_table``, which ``crops.parquet``'s metadata names as ``vitcow.tracks_table``).

    ``clip_fps``: each clip's playback rate by clip id (the clips manifest's ``fps``).
    ``summary``, if given, is filled in (steady windows, the scene's speed, objects cut at
    jumps). ``encode_workers``: files encoded at once (default ``default_encode_workers()``;
    the bytes never depend on it). Returns the number of crops and the ids of clips the
    source did not deliver in full (their crops are discarded, never half-written).
    """
    summary = summary if summary is not None else CropSummary()
    model = measure_scene_speed(masks_path)
    reach = model.line_reach()
    summary.scene_speed = speed_record(model)
    groups = mask_groups_by_clip(masks_path)
    masks_file = pq.ParquetFile(masks_path)
    black = np.zeros((settings.crop_size, settings.crop_size, 3), np.uint8)
    open_clips: dict[int, _ClipCrops] = {}
    schema = CROPS_SCHEMA.with_metadata(crops_metadata(settings, encoder, summary.scene_speed, layout.tracks_table))
    workers = encode_workers or default_encode_workers()
    with atomic_dir(layout.crops_dir) as folder, ParquetSink(folder / layout.crops_table.name, schema) as sink:
        out = _Manifest(sink, TracksBuilder(provenance.video_id), summary, layout.crops_dir, folder, settings, provenance)
        with _Encoders(workers, settings.crop_size, encoder) as encoders:
            stream = ClipFrameStream(source, clips, damage=damage)
            for _, rgb, uses in stream:
                for position in stream.take_abandoned():  # a frame of it never decoded: no crops
                    open_clips.pop(position, None)
                for position, clip_frame in uses:
                    clip = clips[position]
                    if clip_frame == 0:
                        rows = _clip_rows(masks_file, groups.get(clip.clip_id, []), clip.clip_id)
                        open_clips[position] = _ClipCrops(clip, rows, folder, clip_fps[clip.clip_id], settings, reach)
                    open_clips[position].add_frame(clip_frame, rgb, settings, black)
                    if clip_frame == clip.frames - 1:
                        out.add(encoders.submit(open_clips.pop(position)), progress, len(clips))
            out.add(encoders.drain(), progress, len(clips))
        incomplete = [c.clip_id for c in stream.incomplete]  # the source ended or broke inside them: no crops
        crops = sink.rows
    write_table(layout.tracks_table, out.tracks.table())
    return crops, incomplete


@dataclasses.dataclass
class _Manifest:
    """Where encoded clips go, in clip order: manifest rows, the tracks table, the summary."""

    sink: ParquetSink
    tracks: TracksBuilder
    summary: CropSummary
    final_folder: Path
    temp_folder: Path
    settings: CropSettings
    provenance: CropProvenance
    clips_done: int = 0

    def add(self, states: list[_ClipCrops], progress: Callable[[int, int], None] | None, total: int) -> None:
        for state in states:
            rows = _manifest_rows(state, self.final_folder, self.temp_folder, self.settings, self.provenance)
            self.sink.write(rows)
            self.tracks.add(rows)
            _count(self.summary, state)
            self.clips_done += 1
            if progress is not None:
                progress(self.clips_done, total)


def _count(summary: CropSummary, state: _ClipCrops) -> None:
    summary.crops += len(state.objects)
    summary.split_objects.extend(state.split)
    summary.jumps += sum(o.plan.part > 0 for o in state.objects)
    for obj in state.objects:
        summary.fixed_windows += obj.plan.fixed
        steps = crop_windows.centre_steps(obj.plan.windows, obj.plan.present)
        summary.centre_steps += len(steps)
        summary.centre_travel_px += float(steps.sum())


def _clip_rows(masks_file: pq.ParquetFile, row_groups: list[int], clip_id: str) -> pa.Table:
    if not row_groups:
        return masks_file.schema_arrow.empty_table()
    table = masks_file.read_row_groups(row_groups)
    return table.filter(pc.equal(table["clip_id"], clip_id))


def _manifest_rows(state: _ClipCrops, final_folder: Path, temp_folder: Path, settings: CropSettings, prov: CropProvenance) -> pa.Table:
    clip = state.clip
    n = len(state.objects)
    present = [o.present for o in state.objects]
    return pa.Table.from_pydict(
        {
            "crop_path": [str(final_folder / o.path.relative_to(temp_folder)) for o in state.objects],
            "video_id": [prov.video_id] * n,
            "source_path": [prov.source_path] * n,
            "source_sha256": [prov.source_sha256] * n,
            "clip_id": [clip.clip_id] * n,
            "object_id": [o.object_id for o in state.objects],
            "part": [o.plan.part for o in state.objects],
            "track_id": [o.track_id for o in state.objects],
            "prompt": [o.prompt for o in state.objects],
            "source_frame_start": [clip.source_start] * n,
            "source_frame_end": [clip.source_end] * n,
            "frame_step": [clip.frame_step] * n,
            "frames": [len(p) for p in present],
            "frames_present": [sum(p) for p in present],
            "present": present,
            "window_xyxy": [o.windows for o in state.objects],
            "crop_size": [settings.crop_size] * n,
            "margin": [settings.margin] * n,
            "mask_background": [settings.mask_background] * n,
            "fps": [state.fps] * n,
            "segmenter": [prov.segmenter] * n,
            "model_checkpoint": [prov.model_checkpoint] * n,
            "model_checkpoint_sha256": [prov.model_checkpoint_sha256] * n,
            "code_version": [prov.code_version] * n,
            "run_id": [prov.run_id] * n,
            "farm": [prov.farm] * n,
            "camera": [prov.camera] * n,
            "recorded_at": [dt.datetime.fromisoformat(prov.recorded_at) if prov.recorded_at else None] * n,
            "source_uri": [prov.source_uri or Path(prov.source_path).absolute().as_uri()] * n,
        },
        schema=CROPS_SCHEMA,
    )
