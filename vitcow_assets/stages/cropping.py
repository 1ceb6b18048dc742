"""Object crops: one fixed-size H.264 video per (clip, object), from one decode pass of the
source whatever the number of objects, plus a Parquet manifest with each crop's provenance,
and the video's tracks table (every crop of one animal, by ``track_id``)."""

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.geometry import crop_window, extract_crop
from vitcow_assets.core.masks import decode_mask
from vitcow_assets.core.settings import check, setting
from vitcow_assets.core.tables import CROPS_SCHEMA, TracksBuilder
from vitcow_assets.media.files import atomic_dir
from vitcow_assets.media.parquet import ParquetSink, write_table
from vitcow_assets.media.video import DecodeDamage, EncoderSettings, VideoWriter
from vitcow_assets.stages.frames import ClipFrameStream
from vitcow_assets.footage.layout import VideoLayout


@dataclasses.dataclass(frozen=True)
class CropSettings:
    crop_size: int = setting(224, "crop width = height, pixels (even)")
    margin: float = setting(0.1, "margin around the box on every side, as a fraction of its longer side")
    mask_background: bool = setting(False, "black out everything outside the animal's mask")

    def __post_init__(self) -> None:
        check("crop_size", self.crop_size >= 2 and self.crop_size % 2 == 0, f"crop_size must be an even number >= 2, got {self.crop_size}")
        check("margin", 0 <= self.margin <= 2, f"margin must be within [0, 2], got {self.margin}")


@dataclasses.dataclass(frozen=True)
class CropProvenance:
    video_id: str
    source_path: str
    source_sha256: str
    segmenter: str
    model_checkpoint: str | None
    code_version: str
    run_id: str
    farm: str | None = None
    camera: str | None = None
    #: ISO date-time of the recording start (from the path), if known
    recorded_at: str | None = None
    source_uri: str | None = None


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


@dataclasses.dataclass
class _ObjectCrop:
    object_id: int
    track_id: int
    prompt: str
    by_frame: dict[int, tuple[np.ndarray, dict]]
    path: Path
    images: list[np.ndarray] = dataclasses.field(default_factory=list)
    present: list[bool] = dataclasses.field(default_factory=list)
    windows: list = dataclasses.field(default_factory=list)


class _ClipCrops:
    """Per-frame plan and crop images of every object of one clip.

    Crops are kept until the clip ends (crop size squared x 3 bytes per frame: 3 MB for 20
    frames at 224) and then encoded one object at a time, so one encoder is alive at a time
    however many animals a clip holds.
    """

    def __init__(self, clip: ClipWindow, rows: pa.Table, folder: Path, fps: float, encoder: EncoderSettings, size: int):
        self.clip = clip
        self.fps, self.encoder, self.size = fps, encoder, size
        self.objects: list[_ObjectCrop] = []
        cols = rows.select(["object_id", "track_id", "clip_frame", "prompt", "x1", "y1", "x2", "y2", "mask_rle"]).to_pydict()
        plans: dict[int, dict] = {}
        prompts: dict[int, str] = {}
        tracks: dict[int, int] = {}
        for i, object_id in enumerate(cols["object_id"]):
            xyxy = np.array([cols["x1"][i], cols["y1"][i], cols["x2"][i], cols["y2"][i]], np.float32)
            plans.setdefault(object_id, {})[cols["clip_frame"][i]] = (xyxy, cols["mask_rle"][i])
            prompts.setdefault(object_id, cols["prompt"][i])
            tracks.setdefault(object_id, cols["track_id"][i])
        for object_id in sorted(plans):
            path = folder / clip.clip_id / f"obj{object_id:04d}.mp4"
            self.objects.append(_ObjectCrop(object_id, tracks[object_id], prompts[object_id], plans[object_id], path))

    def finish(self) -> None:
        """Encode every object's crop video (each written atomically)."""
        for obj in self.objects:
            obj.path.parent.mkdir(parents=True, exist_ok=True)
            with VideoWriter(obj.path, self.size, self.size, self.fps, self.encoder) as writer:
                for image in obj.images:
                    writer.write(image)
            obj.images = []


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
) -> tuple[int, list[str]]:
    """Write the crops folder (videos and ``crops.parquet``), then the tracks table
    (``layout.tracks_table``, which ``crops.parquet``'s metadata names as ``vitcow.tracks_table``).

    ``clip_fps``: each clip's playback rate by clip id (the clips manifest's ``fps``).
    Returns the number of crops and the ids of clips the source did not deliver in full
    (their crops are discarded, never half-written).
    """
    groups = mask_groups_by_clip(masks_path)
    masks_file = pq.ParquetFile(masks_path)
    size = settings.crop_size
    black = np.zeros((size, size, 3), np.uint8)
    open_clips: dict[int, _ClipCrops] = {}
    done = 0
    tracks = TracksBuilder(provenance.video_id)
    schema = CROPS_SCHEMA.with_metadata({"vitcow.tracks_table": str(layout.tracks_table)})
    with atomic_dir(layout.crops_dir) as folder, ParquetSink(folder / layout.crops_table.name, schema) as sink:
        stream = ClipFrameStream(source, clips, damage=damage)
        for _, rgb, uses in stream:
            for position in stream.take_abandoned():  # a frame of it never decoded: no crops
                open_clips.pop(position, None)
            for position, clip_frame in uses:
                clip = clips[position]
                if clip_frame == 0:
                    rows = _clip_rows(masks_file, groups.get(clip.clip_id, []), clip.clip_id)
                    open_clips[position] = _ClipCrops(clip, rows, folder, clip_fps[clip.clip_id], encoder, size)
                state = open_clips[position]
                for obj in state.objects:
                    _add_object_frame(obj, clip_frame, rgb, settings, black)
                if clip_frame == clip.frames - 1:
                    open_clips.pop(position).finish()
                    rows = _manifest_rows(state, layout.crops_dir, folder, settings, state.fps, provenance)
                    sink.write(rows)
                    tracks.add(rows)
                    done += 1
                    if progress is not None:
                        progress(done, len(clips))
        incomplete = [c.clip_id for c in stream.incomplete]  # the source ended or broke inside them: no crops
        crops = sink.rows
    write_table(layout.tracks_table, tracks.table())
    return crops, incomplete


def _clip_rows(masks_file: pq.ParquetFile, row_groups: list[int], clip_id: str) -> pa.Table:
    if not row_groups:
        return masks_file.schema_arrow.empty_table()
    table = masks_file.read_row_groups(row_groups)
    return table.filter(pc.equal(table["clip_id"], clip_id))


def _add_object_frame(obj: _ObjectCrop, clip_frame: int, rgb: np.ndarray, settings: CropSettings, black: np.ndarray) -> None:
    found = obj.by_frame.get(clip_frame)
    if found is None:
        obj.images.append(black)
        obj.present.append(False)
        obj.windows.append(None)
        return
    xyxy, rle = found
    window = crop_window(xyxy, settings.crop_size, settings.margin)
    mask = decode_mask(rle) if settings.mask_background else None
    obj.images.append(extract_crop(rgb, window, settings.crop_size, mask))
    obj.present.append(True)
    obj.windows.append(list(window))


def _manifest_rows(
    state: _ClipCrops, final_folder: Path, temp_folder: Path, settings: CropSettings, fps: float, prov: CropProvenance
) -> pa.Table:
    clip = state.clip
    n = len(state.objects)
    return pa.Table.from_pydict(
        {
            "crop_path": [str(final_folder / o.path.relative_to(temp_folder)) for o in state.objects],
            "video_id": [prov.video_id] * n,
            "source_path": [prov.source_path] * n,
            "source_sha256": [prov.source_sha256] * n,
            "clip_id": [clip.clip_id] * n,
            "object_id": [o.object_id for o in state.objects],
            "track_id": [o.track_id for o in state.objects],
            "prompt": [o.prompt for o in state.objects],
            "source_frame_start": [clip.source_start] * n,
            "source_frame_end": [clip.source_end] * n,
            "frame_step": [clip.frame_step] * n,
            "frames": [len(o.present) for o in state.objects],
            "frames_present": [sum(o.present) for o in state.objects],
            "present": [o.present for o in state.objects],
            "window_xyxy": [o.windows for o in state.objects],
            "crop_size": [settings.crop_size] * n,
            "margin": [settings.margin] * n,
            "mask_background": [settings.mask_background] * n,
            "fps": [fps] * n,
            "segmenter": [prov.segmenter] * n,
            "model_checkpoint": [prov.model_checkpoint] * n,
            "code_version": [prov.code_version] * n,
            "run_id": [prov.run_id] * n,
            "farm": [prov.farm] * n,
            "camera": [prov.camera] * n,
            "recorded_at": [dt.datetime.fromisoformat(prov.recorded_at) if prov.recorded_at else None] * n,
            "source_uri": [prov.source_uri or Path(prov.source_path).absolute().as_uri()] * n,
        },
        schema=CROPS_SCHEMA,
    )

