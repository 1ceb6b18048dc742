"""A small synthetic evaluation site: a dataset export built by the real pipeline
(``datasets.build.build_dataset``) from the dataset tests' synthetic catalog and labels, and
embeddings tables of exactly the ``crop_embeddings`` contract shape with known structure.

Embedding kinds (``vectors``):

- ``separable``: each labelled crop at its class's corner (scale 4 on the class's axis) plus
  small noise: every nearest neighbour shares the class, a linear probe separates them;
- ``random``: i.i.d. normal, unrelated to anything;
- ``track``: one random vector per track (every crop of an animal the same point),
  unrelated to the class: a split that lets a query see its own track finds its class
  every time; a track split finds it at chance.

Unlabelled catalog crops get random vectors in every kind.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.taxonomy import parse_taxonomy
from vitcow_assets.datasets.build import DatasetSettings, build_dataset
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.labelling.taxonomy_file import default_taxonomy_text
from vitcow_assets.media.parquet import write_table
from vitcow_assets_tests.datasets.synthetic_labels import Scene, synthetic_catalog, synthetic_labels, synthetic_trims

SCENE = Scene(videos=3, tracks=8)
TEST_FARM = "FarmC"
SETTINGS = DatasetSettings(test_farms=(TEST_FARM,), subset_sizes=(30, 90, 100000), subset_repeats=2, subset_cap=True, hf=False)
DIM = 16
KINDS = ("separable", "random", "track")


def taxonomy():
    return parse_taxonomy(default_taxonomy_text(), "default taxonomy")


def build_export(out_dir: Path, settings: DatasetSettings = SETTINGS, scene: Scene = SCENE):
    """A dataset export of the synthetic scene in ``out_dir``; the ``Built`` result and the catalog."""
    tax = taxonomy()
    catalog = synthetic_catalog(scene)
    labels = synthetic_labels(catalog, tax)
    built = build_dataset(out_dir, catalog, labels, tax, settings, catalog_path="/srv/catalog.parquet", catalog_sha256="c" * 64,
                          code_version="0.1.0+gtest", trimmed=synthetic_trims(labels))
    return built, catalog


def vectors(catalog: pa.Table, splits: pa.Table, kind: str, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """One float32 row per catalog crop (catalog order) of the ``kind`` module docstring names."""
    rng = np.random.default_rng(seed)
    out = rng.normal(size=(catalog.num_rows, dim)).astype(np.float32)
    position = {c: i for i, c in enumerate(catalog["crop_id"].to_pylist())}
    rows = np.array([position[c] for c in splits["crop_id"].to_pylist()], dtype=np.int64)
    classes = np.array(splits["class_index"].to_pylist())
    if kind == "separable":
        out[rows] = (4.0 * np.eye(dim)[classes] + 0.3 * rng.normal(size=(rows.size, dim))).astype(np.float32)
    elif kind == "track":
        keys = [f"{v}/{t}" for v, t in zip(catalog["video_id"].to_pylist(), catalog["track_id"].to_pylist())]
        points = {k: rng.normal(size=dim).astype(np.float32) for k in sorted(set(keys))}
        out = np.stack([points[k] for k in keys])
    elif kind != "random":
        raise ValueError(kind)
    return out


def embeddings_table(crop_ids, crop_paths, matrix: np.ndarray, checkpoint_sha256: str, code_version: str = "0.1.0+gtest") -> pa.Table:
    """The ``crop_embeddings`` contract: crop_id, crop_path, checkpoint_sha256,
    frame_indices (list<int32>), embedding (fixed_size_list<float32>[D]), code_version;
    the encoder config as JSON in the schema metadata; rows by crop_id."""
    dim = matrix.shape[1]
    order = np.argsort(np.array(crop_ids, dtype=object), kind="stable")
    flat = pa.array(np.ascontiguousarray(matrix[order], np.float32).ravel(), pa.float32())
    schema = pa.schema([
        ("crop_id", pa.string()), ("crop_path", pa.string()), ("checkpoint_sha256", pa.string()), ("frame_indices", pa.list_(pa.int32())),
        ("embedding", pa.list_(pa.float32(), dim)), ("code_version", pa.string()),
    ], metadata={b"vitcow.encoder": json.dumps({"architecture": "synthetic", "dim": dim}).encode()})
    n = len(crop_ids)
    return pa.Table.from_arrays([
        pa.array([crop_ids[i] for i in order], pa.string()), pa.array([crop_paths[i] for i in order], pa.string()),
        pa.array([checkpoint_sha256] * n, pa.string()), pa.array([list(range(2, 18))] * n, pa.list_(pa.int32())),
        pa.FixedSizeListArray.from_arrays(flat, dim), pa.array([code_version] * n, pa.string()),
    ], schema=schema)


def checkpoint_sha(kind: str) -> str:
    return hashlib.sha256(f"synthetic checkpoint {kind}".encode()).hexdigest()


def write_embeddings(path: Path, catalog: pa.Table, splits: pa.Table, kind: str, seed: int = 0) -> str:
    """An embeddings table of ``kind`` for every catalog crop at ``path``; its checkpoint sha256."""
    sha = checkpoint_sha(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(path, embeddings_table(catalog["crop_id"].to_pylist(), catalog["crop_path"].to_pylist(), vectors(catalog, splits, kind, seed), sha))
    return sha


def read_splits(out_dir: Path) -> pa.Table:
    return pq.read_table(out_dir / "splits.parquet")


def make_site(home: Path) -> dict:
    """A storage root at ``home`` whose default export folder holds the synthetic dataset,
    with one embeddings table per kind (partition keys ``separable``, ``random``, ``track``)."""
    root = StorageRoot(home)
    out = root.datasets.default_export
    built, catalog = build_export(out)
    shas = {kind: write_embeddings(root.embeddings_table(kind), catalog, built.splits.table, kind) for kind in KINDS}
    return {"root": root, "export": out, "built": built, "catalog": catalog, "checkpoints": shas}
