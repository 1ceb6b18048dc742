"""The ``crop_embeddings`` table: one row per catalog crop with one checkpoint's encoder
embedding of it, and the rules that decide its rows.

The contract readers code against (``<home>/embeddings/<partition_key>/crop_embeddings.parquet``):

- columns ``EMBEDDING_COLUMNS`` (``embeddings_schema``): ``crop_id``, ``crop_path`` (the file
  embedded: a trimmed copy where the crop's label marks a segment), ``checkpoint_sha256``,
  ``frame_indices`` (the crop-file frames sampled, in order), ``embedding``
  (``fixed_size_list<float32>[D]``), ``code_version`` (the package version and commit that
  embedded the row); rows sorted by ``crop_id``, one per crop of the catalog;
- schema metadata, each a JSON object: ``vitcow.encoder`` (``core.videomae_layout.EncoderSpec``:
  architecture, layout, kind, depth, dim, heads, patch, tubelet, frames, image size, pooling,
  normalisation, and where each value came from), ``vitcow.sampling`` (the frame and pixel
  rule), ``vitcow.runtime`` (device, batch size, threads, library versions: what the bytes
  depend on), ``vitcow.checkpoint`` (sha256, layout, files) and ``vitcow.embedding_version``
  (the code version of the computation).

Frame sampling (``centre_frames``): the model's ``frames`` consecutive frames at the centre of
the crop file. Crops are cut at a fixed frame step (every 4th source frame by default), so
consecutive crop frames keep the clip's time spacing; a crop shorter than the model's frames
repeats its first and last frames (indices clamped to the crop), and the indices say so.
Pixels: each frame whole (crops are square, centred on the animal), resized to the model's
image size only where it differs (area resampling down, bilinear up, then a centre crop for a
non-square frame), RGB scaled to [0, 1] and normalised by the checkpoint's mean and standard
deviation (VideoMAE's ImageNet values unless a transformers folder says otherwise).

Pure: pyarrow tables and plain values in and out.
"""

import json

import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.tables import field

#: rows per Parquet row group: the table's bytes depend on this, never on the batch size
ROW_GROUP_ROWS = 1024
ENCODER_KEY = "vitcow.encoder"
SAMPLING_KEY = "vitcow.sampling"
RUNTIME_KEY = "vitcow.runtime"
CHECKPOINT_KEY = "vitcow.checkpoint"
VERSION_KEY = "vitcow.embedding_version"
#: every metadata key whose value must match for an earlier table's rows to be kept
RECIPE_KEYS = (ENCODER_KEY, SAMPLING_KEY, RUNTIME_KEY, CHECKPOINT_KEY, VERSION_KEY)
SAMPLING_RULE = "centre"
EMBEDDING_COLUMNS = ("crop_id", "crop_path", "checkpoint_sha256", "frame_indices", "embedding", "code_version")


class EmbeddingInputError(ValueError):
    """An input table the embedding cannot use; the message is one line."""


def embeddings_schema(dim: int, metadata: dict[str, str] | None = None) -> pa.Schema:
    """The table's schema for ``dim``-wide embeddings, with ``metadata`` (key -> JSON text)."""
    schema = pa.schema(
        [
            field("crop_id", pa.string(), "crop the row embeds (the catalog's crop_id)"),
            field("crop_path", pa.string(), "the file embedded: the crop video, or its trimmed copy where its label marks a segment"),
            field("checkpoint_sha256", pa.string(), "sha256 of the checkpoint's bytes (a folder: of its files' names and digests)"),
            field("frame_indices", pa.list_(pa.int32()), "frames of crop_path sampled, in the order the encoder saw them (repeats: a crop shorter than the model's frames)"),
            field("embedding", pa.list_(pa.float32(), dim), f"the encoder's pooled output ({dim} float32; pooling in the vitcow.encoder metadata)"),
            field("code_version", pa.string(), "vitcow_assets version that embedded the row"),
        ]
    )
    return schema.with_metadata({k.encode(): v.encode() for k, v in (metadata or {}).items()})


def centre_frames(available: int, wanted: int) -> list[int]:
    """The ``wanted`` consecutive frame indices at the centre of ``available`` frames; where
    ``available < wanted``, the same window clamped to the crop (edge frames repeated)."""
    if available < 1 or wanted < 1:
        raise EmbeddingInputError(f"cannot sample {wanted} frame(s) from {available}")
    start = (available - wanted) // 2
    return [min(max(start + i, 0), available - 1) for i in range(wanted)]


def sampling_record(frames: int, image_size: int, mean, std) -> dict:
    """The sampling rule as recorded in the table's metadata."""
    return {
        "rule": SAMPLING_RULE,
        "frames": frames,
        "description": f"{frames} consecutive frames at the centre of the crop file; a shorter crop repeats its first and last frames (indices clamped)",
        "spatial": f"the whole frame, resized to {image_size}x{image_size} only where it differs (area down, bilinear up; centre crop if not square)",
        "image_size": image_size,
        "scale": "RGB / 255",
        "mean": list(mean),
        "std": list(std),
    }


def recipe_metadata(encoder: dict, sampling: dict, runtime: dict, checkpoint: dict, embedding_version: str) -> dict[str, str]:
    """The table's metadata (key -> JSON text, keys sorted): what its rows were made with."""
    values = {ENCODER_KEY: encoder, SAMPLING_KEY: sampling, RUNTIME_KEY: runtime, CHECKPOINT_KEY: checkpoint, VERSION_KEY: embedding_version}
    return {k: json.dumps(v, sort_keys=True) for k, v in values.items()}


def same_recipe(previous: dict[bytes, bytes] | None, current: dict[str, str]) -> bool:
    """True when an earlier table's metadata matches ``current`` on every ``RECIPE_KEYS``."""
    if not previous:
        return False
    return all(previous.get(k.encode(), b"").decode() == current[k] for k in RECIPE_KEYS)


def embedding_targets(catalog: pa.Table, trimmed: pa.Table | None) -> pa.Table:
    """``crop_id`` and the ``crop_path`` to embed of every catalog crop, sorted by crop id:
    its trimmed copy where the trimmed-crops table has one, else the crop video."""
    for name in ("crop_id", "crop_path"):
        if name not in catalog.column_names:
            raise EmbeddingInputError(f"catalog: missing column {name}")
    targets = catalog.select(["crop_id", "crop_path"])
    if len(pc.unique(targets["crop_id"])) != targets.num_rows:
        raise EmbeddingInputError("catalog: a crop_id appears more than once")
    if trimmed is not None and trimmed.num_rows:
        copies = _trimmed_copies(trimmed)
        paths = [copies.get(c, p) for c, p in zip(targets["crop_id"].to_pylist(), targets["crop_path"].to_pylist())]
        targets = targets.set_column(1, targets.schema.field(1), pa.array(paths, pa.string()))
    return targets.sort_by([("crop_id", "ascending")])


def _trimmed_copies(trimmed: pa.Table) -> dict[str, str]:
    for name in ("crop_id", "trimmed_path"):
        if name not in trimmed.column_names:
            raise EmbeddingInputError(f"trimmed crops: missing column {name}")
    copies: dict[str, str] = {}
    for crop, path in zip(trimmed["crop_id"].to_pylist(), trimmed["trimmed_path"].to_pylist()):
        if crop in copies and copies[crop] != path:
            raise EmbeddingInputError(f"trimmed crops: crop {crop} has two trimmed copies ({copies[crop]}, {path}); its labels mark two segments")
        copies[crop] = path
    return copies


def kept_mask(previous: pa.Table, targets: pa.Table) -> pa.ChunkedArray:
    """For each row of ``targets`` (``crop_id``, ``crop_path``, sorted by crop id): True where
    the earlier table (``previous``: ``crop_id``, ``crop_path``) embedded the file the crop is
    embedded from now, so its row is copied, not computed again."""
    earlier = previous.select(["crop_id", "crop_path"]).append_column("kept", pa.array([True] * previous.num_rows, pa.bool_()))
    joined = targets.select(["crop_id", "crop_path"]).join(earlier, keys=["crop_id", "crop_path"], join_type="left outer")
    joined = joined.sort_by([("crop_id", "ascending")])
    return pc.fill_null(joined["kept"], False)
