"""The contents of a dataset's files, as bytes: VideoMAE lists, the class mapping, the
Hugging Face index and JSON.

- VideoMAE fine-tuning lists (``train.csv``, ``val.csv``, ``test.csv``): ``<path> <label
  index>`` per line; pre-training lists (``pretrain_*.csv``): ``<path> <frame count>``.
  Space-separated, no header, LF line ends, rows sorted by path. A path holding whitespace
  cannot be written (the readers split on spaces): a one-line error names it.
- ``class_mapping.txt``: one class per line, in index order (alphabetical).
- Hugging Face index: per split a Parquet table of ``video`` (path), ``label`` (index),
  ``label_name``, ``split``, ``crop_id``, rows sorted by path.
- Paths are absolute, or relative to ``root`` (every path must then lie under it).

Pure: tables in, bytes out (Parquet is written to memory).
"""

import json
import posixpath
import re

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.datasets.inputs import DatasetInputError, require

_WHITESPACE = re.compile(r"\s")
#: Hugging Face's split names (its loaders map ``validation.parquet`` to the validation split)
HF_SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}


def list_path(path: str, root: str | None = None) -> str:
    """``path`` as a list writes it: absolute (as given) or relative to ``root``."""
    if _WHITESPACE.search(path):
        raise DatasetInputError(f"crop path {path!r} holds whitespace, which space-separated lists cannot: move the storage root, or export relative to a root without it")
    if root is None:
        return path
    rel = posixpath.relpath(path, root)
    if rel == ".." or rel.startswith("../") or posixpath.isabs(rel):
        raise DatasetInputError(f"crop path {path!r} is not under the export root {root!r}")
    return rel


def _pairs(table: pa.Table, value_column: str, root: str | None) -> list[tuple[str, int]]:
    require(table, ("crop_path", value_column), "list rows")
    cols = table.select(["crop_path", value_column]).to_pydict()
    pairs = sorted((list_path(p, root), int(v)) for p, v in zip(cols["crop_path"], cols[value_column]))
    for (a, _), (b, _) in zip(pairs, pairs[1:]):
        if a == b:
            raise DatasetInputError(f"crop path {a!r} is listed twice")
    return pairs


def list_file(table: pa.Table, value_column: str, root: str | None = None) -> bytes:
    """``<path> <value>`` lines, sorted by path: ``value_column`` is ``class_index`` for the
    fine-tuning lists and ``frames`` for the pre-training lists."""
    return "".join(f"{p} {v}\n" for p, v in _pairs(table, value_column, root)).encode()


def class_mapping(classes) -> bytes:
    return "".join(f"{c}\n" for c in classes).encode()


def hf_table(table: pa.Table, split: str, classes, root: str | None = None) -> pa.Table:
    """The Hugging Face index of one split (``split`` as this package names it)."""
    require(table, ("crop_id", "crop_path", "class_index"), "splits")
    classes = list(classes)
    cols = table.select(["crop_path", "class_index", "crop_id"]).to_pydict()
    rows = sorted(zip((list_path(p, root) for p in cols["crop_path"]), cols["class_index"], cols["crop_id"]))
    schema = pa.schema(
        [("video", pa.string()), ("label", pa.int64()), ("label_name", pa.string()), ("split", pa.string()), ("crop_id", pa.string())],
        metadata={"vitcow.classes": json.dumps(classes), "vitcow.root": json.dumps(root)},
    )
    return pa.table(
        {
            "video": [r[0] for r in rows],
            "label": [int(r[1]) for r in rows],
            "label_name": [classes[r[1]] for r in rows],
            "split": [HF_SPLIT_NAMES[split]] * len(rows),
            "crop_id": [r[2] for r in rows],
        },
        schema=schema,
    )


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as Parquet (fixed writer options: the same table gives the same bytes)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    return sink.getvalue().to_pybytes()


def json_bytes(document) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
