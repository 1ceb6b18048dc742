"""The crop catalog: one row per crop across every video, and its stable ``crop_id``.

The catalog is what labelling and datasets read. Its rows come from each partition's crops
manifest (``core.tables.CROPS_SCHEMA``), reduced to what a person labelling a crop or a
researcher building a dataset needs, plus the provenance that ties a crop to its source.

``crop_id`` names a crop by what it is, not by where it was written: the sha256 of the
source bytes, the clip's frames (first source frame, step, count), the segmenter and the
object id. Re-running a partition on the same bytes with the same settings gives the same
ids (and so keeps every label); new bytes for the same file name give new ids.

The catalog is sorted by video, clip, object and part. Built whole (``merge_catalogs``) or
video by video (``sort_part`` each, in video order: the same rows in the same order, so the
same bytes), with a fingerprint of its crops made from each video's (``part_fingerprint``,
``catalog_fingerprint``) and repeated ids found from their bytes (``repeated_ids``).

Pure: pyarrow and numpy in, pyarrow and numpy out.
"""

import hashlib
import json
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.tables import CROPS_SCHEMA, field, with_added_columns

CROP_ID_CHARS = 20
#: what decides a catalog's rows from its manifests, besides ``CATALOG_SCHEMA``: raise it
#: when ``catalog_rows`` computes anything differently (catalogs built before are then
#: rebuilt whole, not video by video)
CATALOG_ROWS_VERSION = 1
#: the catalog's order
SORT_KEYS = [("video_id", "ascending"), ("clip_id", "ascending"), ("object_id", "ascending"), ("part", "ascending")]

CATALOG_SCHEMA = pa.schema(
    [
        field("crop_id", pa.string(), "stable id of the crop: hash of source sha256, clip frames, segmenter and object id"),
        field("crop_path", pa.string(), "absolute path of the crop video (H.264 MP4)"),
        field("video_id", pa.string(), "partition key of the source video"),
        field("source_sha256", pa.string(), "sha256 of the source video's bytes"),
        field("source_path", pa.string(), "path the source video was registered from"),
        field("source_uri", pa.string(), "URI the source was taken from (sftp://, s3:// or file://)"),
        field("farm", pa.string(), "farm the source came from (path pattern or source name)", nullable=True),
        field("camera", pa.string(), "camera of the source (path pattern)", nullable=True),
        field("recorded_at", pa.timestamp("s"), "recording start of the source (path pattern), camera-local time", nullable=True),
        field("clip_id", pa.string(), "clip the crop was cut from"),
        field("object_id", pa.int64(), "object id within the clip"),
        field("part", pa.int32(), "0, or the part of the object's frames after a jump (see the crops table)"),
        field("track_id", pa.int64(), "animal id through the video: every crop of one animal shares it"),
        field("source_frame_start", pa.int64(), "first source frame of the clip"),
        field("source_frame_end", pa.int64(), "last source frame of the clip (inclusive)"),
        field("frame_step", pa.int32(), "source frames between consecutive crop frames"),
        field("frames", pa.int32(), "frames in the crop video"),
        field("frames_present", pa.int32(), "frames in which the animal was found"),
        field("presence_ratio", pa.float64(), "frames_present / frames"),
        field("fps", pa.float64(), "playback rate of the crop video"),
        field("duration_s", pa.float64(), "length of the crop video, seconds (frames / fps)"),
        field("segmenter", pa.string(), "segmenter backend and model"),
        field("model_checkpoint", pa.string(), "checkpoint file of the model, if any", nullable=True),
        field("model_checkpoint_sha256", pa.string(), "sha256 of the checkpoint file's bytes (null without a checkpoint: motion)", nullable=True),
        field("prompt", pa.string(), "what found the object (see the masks table's prompt column)"),
        field("code_version", pa.string(), "vitcow_assets version that wrote the crop"),
        field("run_id", pa.string(), "Dagster run that wrote the crop"),
        field("clip_path", pa.string(), "the clip file the crop was cut from (its whole camera view; null when clip files are not written)", nullable=True),
    ]
)

#: catalog columns copied unchanged from the crops manifest
_FROM_CROPS = [n for n in CATALOG_SCHEMA.names if n in CROPS_SCHEMA.names]


def crop_id(source_sha256: str, source_frame_start: int, frame_step: int, frames: int, segmenter: str, object_id: int, part: int = 0) -> str:
    """The stable id of one crop (hex, ``CROP_ID_CHARS`` characters); a later part of an
    object cut at a jump (``part`` > 0) has its own."""
    text = f"{source_sha256}:{source_frame_start}:{frame_step}:{frames}:{segmenter}:{object_id}" + (f":{part}" if part else "")
    return hashlib.sha256(text.encode()).hexdigest()[:CROP_ID_CHARS]


def _clip_paths(crops: pa.Table, clips: pa.Table | None) -> pa.Array:
    """Each crop's clip file from the clips manifest (``clip_id`` -> ``clip_path``), or null."""
    paths = dict(zip(clips["clip_id"].to_pylist(), clips["clip_path"].to_pylist())) if clips is not None else {}
    return pa.array([paths.get(c) for c in crops["clip_id"].to_pylist()], pa.string())


def catalog_rows(crops: pa.Table, clips: pa.Table | None = None) -> pa.Table:
    """Catalog rows (``CATALOG_SCHEMA``) of one crops manifest, in its row order (a manifest
    from before a nullable column existed gives nulls there); ``clips``, the same video's
    clips manifest, names each crop's clip file."""
    crops = with_added_columns(crops, CROPS_SCHEMA)
    cols = crops.select(["source_sha256", "source_frame_start", "frame_step", "frames", "segmenter", "object_id", "part"]).to_pydict()
    ids = [crop_id(*values) for values in zip(*cols.values())]
    frames = pc.cast(crops["frames"], pa.float64())
    ratio = pc.divide(pc.cast(crops["frames_present"], pa.float64()), pc.max_element_wise(frames, 1.0))
    columns = {
        "crop_id": pa.array(ids, pa.string()),
        **{name: crops[name] for name in _FROM_CROPS},
        "presence_ratio": ratio,
        "duration_s": pc.divide(frames, crops["fps"]),
        "clip_path": _clip_paths(crops, clips),
    }
    return pa.table({name: columns[name] for name in CATALOG_SCHEMA.names}).cast(CATALOG_SCHEMA)


def merge_catalogs(parts: list[pa.Table]) -> pa.Table:
    """One catalog from per-video parts, sorted by video, clip and object (a stable order
    whatever order the parts come in); a crop id seen twice is an error."""
    table = pa.concat_tables([p.cast(CATALOG_SCHEMA) for p in parts]) if parts else CATALOG_SCHEMA.empty_table()
    table = table.sort_by(SORT_KEYS)
    if len(pc.unique(table["crop_id"])) != table.num_rows:
        counts = pc.value_counts(table["crop_id"]).to_pylist()
        repeated = sorted(c["values"] for c in counts if c["counts"] > 1)
        raise ValueError(f"crop ids repeat across the catalog: {repeated[:5]}")
    return table


def sort_part(part: pa.Table) -> pa.Table:
    """One video's catalog rows in catalog order. Parts of distinct videos, each sorted here
    and concatenated in video order, hold the rows ``merge_catalogs`` gives (its sort is
    stable, and no two parts share a video)."""
    return part.cast(CATALOG_SCHEMA).sort_by(SORT_KEYS)


def _rows_digest(table: pa.Table) -> "hashlib._Hash":
    digest = hashlib.sha256()
    pairs = sorted(zip(table["crop_id"].to_pylist(), table["crop_path"].to_pylist()))
    for crop, path in pairs:
        digest.update(json.dumps([crop, path]).encode() + b"\n")
    return digest


def part_fingerprint(part: pa.Table) -> str:
    """sha256 (hex) of one video's crops: their ids and paths, whatever their order."""
    return _rows_digest(part).hexdigest()


def catalog_fingerprint(parts: Iterable[tuple[str, str]]) -> str:
    """sha256 (hex, 16 chars) of a catalog's crops from ``(video_id, part_fingerprint)`` of
    each video: it changes when a crop id or path does, and only then."""
    digest = hashlib.sha256(b"crop_id, crop_path by video\n")
    for video_id, fingerprint in sorted(parts):
        digest.update(f"{video_id} {fingerprint}\n".encode())
    return digest.hexdigest()[:16]


def crop_id_bytes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The crop ids of ``column`` as fixed-width bytes (``repeated_ids`` sorts them)."""
    return np.asarray(column.to_pylist(), dtype=f"S{CROP_ID_CHARS}")


def repeated_ids(ids: list[np.ndarray], shown: int = 5) -> list[str]:
    """The first ``shown`` crop ids (sorted) that occur more than once in ``ids``."""
    every = np.sort(np.concatenate(ids)) if ids else np.empty(0, dtype=f"S{CROP_ID_CHARS}")
    twice = every[1:][every[1:] == every[:-1]]
    return [b.decode() for b in np.unique(twice)[:shown]]
