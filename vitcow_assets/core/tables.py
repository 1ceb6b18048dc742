"""Parquet schemas of the platform's tables and pure functions that build their rows.

Every table carries ``video_id`` (the partition key). Column descriptions live in the field
metadata (``description``) so that they travel with the files and show in the Dagster UI.
Pure: pyarrow in, pyarrow out; writing is done elsewhere.
"""

import numpy as np
import pyarrow as pa

from vitcow_assets.core.clips import ClipWindow, frame_time
from vitcow_assets.core.masks import encode_box_masks
from vitcow_assets.core.detections import Detections


def field(name: str, type_: pa.DataType, description: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


#: the ``prompt`` of objects a backend found without one (the motion backend ignores prompts;
#: the prompt asked for is in the masks table's metadata, ``vitcow.prompt``)
NO_PROMPT = "(no prompt)"

RLE_TYPE = pa.struct(
    [pa.field("size", pa.list_(pa.int32()), nullable=False), pa.field("counts", pa.string(), nullable=False)]
)

CLIPS_SCHEMA = pa.schema(
    [
        field("video_id", pa.string(), "partition key of the source video"),
        field("clip_id", pa.string(), "clip id, unique within the video (c + window index)"),
        field("clip_index", pa.int32(), "index of the clip's window in the video, counting dropped windows"),
        field("source_frame_start", pa.int64(), "first source-video frame of the clip"),
        field("source_frame_end", pa.int64(), "last source-video frame of the clip (inclusive)"),
        field("frame_step", pa.int32(), "the clip takes every frame_step-th source frame"),
        field("frames", pa.int32(), "number of frames in the clip"),
        field("start_time_s", pa.float64(), "time of the first frame in the source video, seconds"),
        field("end_time_s", pa.float64(), "time of the last frame in the source video, seconds"),
        field("fps", pa.float64(), "playback rate of the clip: source fps / frame_step"),
        field("clip_path", pa.string(), "H.264 MP4 of the clip, when clip files are written", nullable=True),
    ]
)

MASKS_SCHEMA = pa.schema(
    [
        field("video_id", pa.string(), "partition key of the source video"),
        field("clip_id", pa.string(), "clip the frame belongs to"),
        field("clip_frame", pa.int32(), "frame index within the clip, from 0"),
        field("source_frame", pa.int64(), "frame index within the source video, from 0"),
        field("object_id", pa.int64(), "object id, stable within the clip only"),
        field("track_id", pa.int64(), "animal id, stable through the video while clips are consecutive (see the tracks table)"),
        field("prompt", pa.string(), f"text prompt that found the object; {NO_PROMPT} where the backend finds objects without one (motion)"),
        field("score", pa.float32(), "detection confidence in [0, 1]"),
        field("x1", pa.float32(), "box left edge, source pixels"),
        field("y1", pa.float32(), "box top edge, source pixels"),
        field("x2", pa.float32(), "box right edge (exclusive), source pixels"),
        field("y2", pa.float32(), "box bottom edge (exclusive), source pixels"),
        field("area", pa.int64(), "mask area in pixels"),
        field("mask_rle", RLE_TYPE, "COCO RLE of the mask: size [height, width], compressed counts"),
        field("frame_width", pa.int32(), "width of the source frame, pixels"),
        field("frame_height", pa.int32(), "height of the source frame, pixels"),
        field("segmenter", pa.string(), "segmenter backend and model that produced the row"),
    ]
)

CROPS_SCHEMA = pa.schema(
    [
        field("crop_path", pa.string(), "absolute path of the crop video (H.264 MP4)"),
        field("video_id", pa.string(), "partition key of the source video"),
        field("source_path", pa.string(), "path the source video was registered from"),
        field("source_sha256", pa.string(), "sha256 of the source video's bytes"),
        field("clip_id", pa.string(), "clip the crop was cut from"),
        field("object_id", pa.int64(), "object id within the clip"),
        field("part", pa.int32(), "0, or the part of the object's frames after a jump no animal can make (each part its own crop, objNNNN_pK.mp4)"),
        field("track_id", pa.int64(), "animal id through the video: every crop of one animal shares it (tracks table)"),
        field("prompt", pa.string(), f"text prompt that found the object ({NO_PROMPT}: found without one, e.g. motion)"),
        field("source_frame_start", pa.int64(), "first source frame of the clip"),
        field("source_frame_end", pa.int64(), "last source frame of the clip (inclusive)"),
        field("frame_step", pa.int32(), "source frames between consecutive crop frames"),
        field("frames", pa.int32(), "frames in the crop video (= frames in the clip)"),
        field("frames_present", pa.int32(), "frames in which the object was found"),
        field("present", pa.list_(pa.bool_()), "per crop frame: object found (false = black frame)"),
        field(
            "window_xyxy",
            pa.list_(pa.list_(pa.int32(), 4)),
            "per crop frame: square crop window in source pixels (null where absent)",
        ),
        field("crop_size", pa.int32(), "crop width = height, pixels"),
        field("margin", pa.float64(), "margin around the box, fraction of its longer side"),
        field("mask_background", pa.bool_(), "pixels outside the object's mask are black"),
        field("fps", pa.float64(), "playback rate of the crop video"),
        field("segmenter", pa.string(), "segmenter backend and model"),
        field("model_checkpoint", pa.string(), "checkpoint file of the model, if any", nullable=True),
        field("model_checkpoint_sha256", pa.string(), "sha256 of the checkpoint file's bytes (null without a checkpoint: motion)", nullable=True),
        field("code_version", pa.string(), "vitcow_assets version that wrote the crop"),
        field("run_id", pa.string(), "Dagster run that wrote the crop"),
        field("farm", pa.string(), "farm the source came from (path pattern or source name)", nullable=True),
        field("camera", pa.string(), "camera of the source (path pattern)", nullable=True),
        field("recorded_at", pa.timestamp("s"), "recording start of the source (path pattern), camera-local time", nullable=True),
        field("source_uri", pa.string(), "URI the source was taken from (sftp://, s3:// or file://)"),
    ]
)

#: the crops manifest as published: every row also names where its crop video was uploaded
PUBLISHED_CROPS_SCHEMA = CROPS_SCHEMA.append(
    field("published_uri", pa.string(), "URI of the published crop video (destination/farm/video_id/...)")
)


def clip_rows(
    video_id: str, clips: list[ClipWindow], fps: float, clip_paths: list[str | None], times: np.ndarray | None = None
) -> pa.Table:
    """Clips manifest rows, one per clip; times from ``times`` (frame timestamps) when given."""
    if len(clip_paths) != len(clips):
        raise ValueError("one clip path (or None) per clip is needed")
    safe_fps = fps if fps > 0 else float("nan")
    return pa.Table.from_pydict(
        {
            "video_id": [video_id] * len(clips),
            "clip_id": [c.clip_id for c in clips],
            "clip_index": [c.clip_index for c in clips],
            "source_frame_start": [c.source_start for c in clips],
            "source_frame_end": [c.source_end for c in clips],
            "frame_step": [c.frame_step for c in clips],
            "frames": [c.frames for c in clips],
            "start_time_s": [frame_time(c.source_start, fps, times) for c in clips],
            "end_time_s": [frame_time(c.source_end, fps, times) for c in clips],
            "fps": [safe_fps / c.frame_step for c in clips],
            "clip_path": clip_paths,
        },
        schema=CLIPS_SCHEMA,
    )


def clips_from_table(table: pa.Table) -> list[ClipWindow]:
    """Clip windows back from a clips manifest."""
    cols = table.select(["clip_index", "source_frame_start", "frame_step", "frames"]).to_pydict()
    return [
        ClipWindow(i, s, step, n)
        for i, s, step, n in zip(cols["clip_index"], cols["source_frame_start"], cols["frame_step"], cols["frames"])
    ]


def mask_rows(
    video_id: str,
    clip: ClipWindow,
    clip_frame: int,
    detections: Detections,
    segmenter: str,
    track_ids: np.ndarray | None = None,
) -> pa.RecordBatch:
    """Mask-table rows for one frame's detections.

    ``track_ids`` (parallel to the detections) are usually not known yet when a frame's rows
    are made: they are then -1, and ``set_track_ids`` fills them once the clip is linked.
    """
    n = len(detections)
    height, width = detections.frame_size
    rles = encode_box_masks(detections.masks)  # from the box-local masks: no frame-sized array
    xyxy = detections.xyxy
    return pa.RecordBatch.from_pydict(
        {
            "video_id": [video_id] * n,
            "clip_id": [clip.clip_id] * n,
            "clip_frame": [clip_frame] * n,
            "source_frame": [clip.source_start + clip_frame * clip.frame_step] * n,
            "object_id": detections.object_ids,
            "track_id": np.full(n, -1, np.int64) if track_ids is None else np.asarray(track_ids, np.int64),
            "prompt": [str(p) for p in detections.prompts],
            "score": detections.scores,
            "x1": xyxy[:, 0],
            "y1": xyxy[:, 1],
            "x2": xyxy[:, 2],
            "y2": xyxy[:, 3],
            "area": detections.masks.areas(),
            "mask_rle": rles,
            "frame_width": [width] * n,
            "frame_height": [height] * n,
            "segmenter": [segmenter] * n,
        },
        schema=MASKS_SCHEMA,
    )


#: prefix of the masks table's provenance keys in its Parquet key-value metadata
MASKS_METADATA_PREFIX = "vitcow."

#: what in a table names the run that wrote it, not what it holds: the ``run_id`` column (crops,
#: catalog) and the masks table's ``vitcow.run_id`` key. A re-run that makes the same rows
#: differs from the first run here only (see ``without_run_ids``).
RUN_ID_COLUMNS = ("run_id",)
RUN_ID_KEYS = (f"{MASKS_METADATA_PREFIX}run_id".encode(),)


def without_run_ids(table: pa.Table | pa.RecordBatch) -> pa.Table | pa.RecordBatch:
    """The table (or batch) without the columns and metadata keys that name the run."""
    keep = [n for n in table.schema.names if n not in RUN_ID_COLUMNS]
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k not in RUN_ID_KEYS}
    return table.select(keep).replace_schema_metadata(metadata)


def with_added_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with every nullable column of ``schema`` it lacks added as nulls: a table
    written before such a column existed (e.g. ``model_checkpoint_sha256``) reads as today's."""
    for schema_field in schema:
        if schema_field.name not in table.schema.names and schema_field.nullable:
            table = table.append_column(schema_field, pa.nulls(table.num_rows, schema_field.type))
    return table


def masks_metadata(**provenance: str) -> dict[str, str]:
    """Parquet key-value metadata of a masks table (``segmenter``, ``checkpoint``, ``prompt``...)."""
    return {f"{MASKS_METADATA_PREFIX}{key}": str(value) for key, value in provenance.items()}


def masks_provenance(schema: pa.Schema) -> dict[str, str]:
    """What ``masks_metadata`` wrote, back from a masks table's schema (prefix removed)."""
    items = (schema.metadata or {}).items()
    return {
        k.decode()[len(MASKS_METADATA_PREFIX):]: v.decode() for k, v in items if k.decode().startswith(MASKS_METADATA_PREFIX)
    }


def clip_fps_by_id(table: pa.Table) -> dict[str, float]:
    """Playback rate of each clip, by clip id, from a clips manifest."""
    return dict(zip(table["clip_id"].to_pylist(), table["fps"].to_pylist()))


def schema_markdown(schema: pa.Schema) -> str:
    """The schema as a Markdown table (column, type, meaning): what the docs show."""
    rows = ["| column | type | meaning |", "|---|---|---|"]
    for name, type_, description in schema_descriptions(schema):
        cells = [f"`{name}`", type_.replace("<", "&lt;").replace(">", "&gt;"), description]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def schema_descriptions(schema: pa.Schema) -> list[tuple[str, str, str]]:
    """``(name, type, description)`` per column, for docs and UI metadata."""
    return [
        (f.name, str(f.type), (f.metadata or {}).get(b"description", b"").decode()) for f in schema
    ]


def set_prompt(table: pa.Table, prompt: str) -> pa.Table:
    """``table`` (mask rows) with every row's ``prompt`` set to ``prompt``."""
    index = table.schema.get_field_index("prompt")
    return table.set_column(index, table.schema.field(index), pa.array([prompt] * table.num_rows, pa.string()))


def set_track_ids(table: pa.Table, track_of: dict[int, int]) -> pa.Table:
    """``table`` (mask rows of one clip) with ``track_id`` set from ``{object_id: track_id}``."""
    object_ids = table["object_id"].to_pylist()
    missing = sorted({o for o in object_ids if o not in track_of})
    if missing:
        raise ValueError(f"no track id for objects {missing}")
    column = pa.array([track_of[o] for o in object_ids], pa.int64())
    index = table.schema.get_field_index("track_id")
    return table.set_column(index, table.schema.field(index), column)


TRACKS_SCHEMA = pa.schema(
    [
        field("video_id", pa.string(), "partition key of the source video"),
        field("track_id", pa.int64(), "animal id through the video (track_id of the masks and crops tables)"),
        field("prompt", pa.string(), f"text prompt that found the animal ({NO_PROMPT}: found without one, e.g. motion)"),
        field("first_source_frame", pa.int64(), "first source frame in which the animal was found"),
        field("last_source_frame", pa.int64(), "last source frame in which the animal was found"),
        field("clips", pa.list_(pa.string()), "clips the track runs through, in source order"),
        field("object_ids", pa.list_(pa.int64()), "the animal's object id in each of those clips"),
        field("frames_present", pa.int64(), "source frames in which the animal was found (a frame two clips share counts once)"),
        field("crop_paths", pa.list_(pa.string()), "crop videos of the animal, one per clip, in source order"),
    ]
)


class TracksBuilder:
    """Builds the tracks table from crops-manifest rows given clip by clip in source order.

    Keeps one small record per track (no per-frame data), so it streams with the crops.
    """

    def __init__(self, video_id: str) -> None:
        self.video_id = video_id
        self._tracks: dict[int, dict] = {}

    def add(self, crops: pa.Table) -> None:
        """Take crops-manifest rows (``crop_path``, ``clip_id``, ``object_id``, ``track_id``,
        ``prompt``, ``source_frame_start``, ``frame_step``, ``present``)."""
        cols = ["crop_path", "clip_id", "object_id", "track_id", "prompt", "source_frame_start", "frame_step", "present"]
        for row in crops.select(cols).to_pylist():
            frames = [row["source_frame_start"] + i * row["frame_step"] for i, p in enumerate(row["present"]) if p]
            track = self._tracks.setdefault(
                row["track_id"],
                {"prompt": row["prompt"], "first": None, "last": None, "clips": [], "objects": [], "paths": [], "present": 0},
            )
            track["clips"].append(row["clip_id"])
            track["objects"].append(row["object_id"])
            track["paths"].append(row["crop_path"])
            if frames:
                last = track["last"]
                track["present"] += sum(1 for f in frames if last is None or f > last)
                track["first"] = frames[0] if track["first"] is None else min(track["first"], frames[0])
                track["last"] = frames[-1] if last is None else max(last, frames[-1])

    def __len__(self) -> int:
        return len(self._tracks)

    def table(self) -> pa.Table:
        ids = sorted(self._tracks)
        t = [self._tracks[i] for i in ids]
        return pa.Table.from_pydict(
            {
                "video_id": [self.video_id] * len(ids),
                "track_id": ids,
                "prompt": [r["prompt"] for r in t],
                "first_source_frame": [r["first"] if r["first"] is not None else -1 for r in t],
                "last_source_frame": [r["last"] if r["last"] is not None else -1 for r in t],
                "clips": [r["clips"] for r in t],
                "object_ids": [r["objects"] for r in t],
                "frames_present": [r["present"] for r in t],
                "crop_paths": [r["paths"] for r in t],
            },
            schema=TRACKS_SCHEMA,
        )
