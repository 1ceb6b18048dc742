"""Reading what an evaluation scores: a dataset export folder (``vitcow dataset build``) and
a checkpoint's embeddings table (``crop_embeddings``), checked, each problem one line.

A dataset folder is read through its ``dataset.json``: it must be there (a folder without it
is an interrupted export), ``class_mapping.txt`` must be there (the classes, by line) and
agree with the taxonomy ``dataset.json`` names, and ``splits.parquet`` and, where the build
drew them, ``subsets/subsets.parquet`` must hold the bytes ``dataset.json`` lists for them (a
file changed after the export is refused). The build's fingerprint is the first 16 hex
characters of the sha256 of ``dataset.json`` (``lineage.builds``).

An embeddings table (``<home>/embeddings/<checkpoint>/crop_embeddings.parquet``) has the
columns ``EMBEDDING_COLUMNS``, one ``checkpoint_sha256``, unique crop ids and a fixed-size
float32 ``embedding``; every crop of the dataset must have a row.

Reads files; no Dagster, no torch.
"""

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.lineage.builds import DATASET_JSON, fingerprint_bytes

CLASS_MAPPING, SPLITS, SUBSETS = "class_mapping.txt", "splits.parquet", "subsets/subsets.parquet"
SPLIT_COLUMNS = ("crop_id", "crop_path", "class_index", "split", "farm", "video_id", "track_id")
EMBEDDING_COLUMNS = ("crop_id", "crop_path", "checkpoint_sha256", "frame_indices", "embedding", "code_version")
#: crop ids named in a "missing" message
SHOWN = 3


class EvaluationInputError(ValueError):
    """A dataset folder, embeddings table or predictions file that cannot be scored; the
    message is one line naming the file."""


@dataclasses.dataclass(frozen=True)
class DatasetExport:
    """A dataset export folder, as an evaluation reads it."""

    out_dir: Path
    fingerprint: str
    classes: tuple[str, ...]
    #: ``splits.parquet``: one row per labelled crop, sorted by crop_id
    splits: pa.Table
    #: ``subsets/subsets.parquet`` (None: the build drew no subsets)
    subsets: pa.Table | None
    #: where the lists' paths are relative to (None: absolute)
    root: str | None
    manifest: dict

    def split(self, name: str) -> pa.Table:
        return self.splits.filter(pc.equal(self.splits["split"], name))


def _checked_bytes(out_dir: Path, name: str, manifest: dict) -> bytes:
    path = out_dir / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EvaluationInputError(f"{path} is missing: not a complete dataset export (vitcow dataset build {out_dir})") from None
    listed = manifest.get("files", {}).get(name)
    if listed is not None and hashlib.sha256(data).hexdigest() != listed:
        raise EvaluationInputError(f"{path} is not the file {out_dir / DATASET_JSON} lists (changed after the export): build the dataset again")
    return data


def _classes(out_dir: Path, manifest: dict) -> tuple[str, ...]:
    text = _checked_bytes(out_dir, CLASS_MAPPING, manifest).decode()
    classes = tuple(line.strip() for line in text.splitlines() if line.strip())
    named = tuple(manifest.get("taxonomy", {}).get("classes", ()))
    if not classes:
        raise EvaluationInputError(f"{out_dir / CLASS_MAPPING} names no class")
    if named and named != classes:
        raise EvaluationInputError(f"{out_dir / CLASS_MAPPING} ({', '.join(classes)}) disagrees with the taxonomy {out_dir / DATASET_JSON} names ({', '.join(named)})")
    return classes


def _table(out_dir: Path, name: str, manifest: dict) -> pa.Table:
    return pq.read_table(pa.BufferReader(_checked_bytes(out_dir, name, manifest)))


def read_dataset(out_dir) -> DatasetExport:
    """The dataset export in ``out_dir``, checked (module docstring)."""
    out_dir = Path(out_dir).absolute()
    try:
        raw = (out_dir / DATASET_JSON).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise EvaluationInputError(f"{out_dir / DATASET_JSON} is missing: {out_dir} is not a dataset export (vitcow dataset build {out_dir})") from None
    manifest = json.loads(raw)
    classes = _classes(out_dir, manifest)
    splits = _table(out_dir, SPLITS, manifest)
    missing = [c for c in SPLIT_COLUMNS if c not in splits.column_names]
    if missing:
        raise EvaluationInputError(f"{out_dir / SPLITS}: missing column(s) {', '.join(missing)}")
    indices = splits["class_index"].to_numpy(zero_copy_only=False)
    if indices.size and (indices.min() < 0 or indices.max() >= len(classes)):
        raise EvaluationInputError(f"{out_dir / SPLITS}: a class_index outside the {len(classes)} classes of {CLASS_MAPPING}")
    subsets = _table(out_dir, SUBSETS, manifest) if SUBSETS in manifest.get("files", {}) else None
    root = manifest.get("paths", {}).get("root")
    return DatasetExport(out_dir, fingerprint_bytes(raw), classes, splits.sort_by("crop_id"), subsets, root, manifest)


@dataclasses.dataclass(frozen=True)
class Embeddings:
    """One checkpoint's embeddings of the crops asked for, row-aligned with them."""

    path: Path
    checkpoint_sha256: str
    #: (crops, D) float32, in the order the crops were asked for
    vectors: np.ndarray
    #: the table's key-value metadata (encoder, sampling ...), decoded
    metadata: dict[str, str]


def _vectors(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    kind = column.type
    if not pa.types.is_fixed_size_list(kind) or not pa.types.is_float32(kind.value_type):
        raise EvaluationInputError(f"{path}: embedding is {kind}, not a fixed-size list of float32")
    if column.null_count:
        raise EvaluationInputError(f"{path}: {column.null_count} crop(s) have no embedding")
    flat = pa.concat_arrays([chunk.flatten() for chunk in column.chunks]) if column.num_chunks else pa.array([], pa.float32())
    return flat.to_numpy(zero_copy_only=False).reshape(len(column), kind.list_size)


def read_embeddings(path, crop_ids) -> Embeddings:
    """The embeddings at ``path`` of ``crop_ids`` (in that order), checked (module docstring)."""
    path = Path(path)
    try:
        table = pq.read_table(path, columns=["crop_id", "checkpoint_sha256", "embedding"])
    except FileNotFoundError:
        raise EvaluationInputError(f"{path} is missing: embed the crops first (vitcow eval embed CHECKPOINT)") from None
    except (pa.ArrowInvalid, KeyError, OSError) as exc:
        raise EvaluationInputError(f"{path}: not an embeddings table ({str(exc).splitlines()[0]})") from None
    checkpoints = pc.unique(table["checkpoint_sha256"]).to_pylist()
    if len(checkpoints) != 1 or not checkpoints[0]:
        raise EvaluationInputError(f"{path}: holds {len(checkpoints)} checkpoints' embeddings, not one")
    ids = table["crop_id"].to_pylist()
    position = {c: i for i, c in enumerate(ids)}
    if len(position) != len(ids):
        raise EvaluationInputError(f"{path}: a crop_id appears more than once")
    wanted = list(crop_ids)
    lacking = [c for c in wanted if c not in position]
    if lacking:
        raise EvaluationInputError(
            f"{path}: no embedding of {len(lacking)} of the dataset's {len(wanted)} crops ({', '.join(lacking[:SHOWN])}"
            f"{' ...' if len(lacking) > SHOWN else ''}): materialize crop_embeddings for this checkpoint again"
        )
    vectors = _vectors(table["embedding"], path)[np.array([position[c] for c in wanted], dtype=np.int64)]
    metadata = {k.decode(): v.decode() for k, v in (pq.read_schema(path).metadata or {}).items() if not k.startswith(b"ARROW")}
    return Embeddings(path, checkpoints[0], vectors, metadata)
