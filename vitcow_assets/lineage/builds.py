"""The index of dataset builds: which crops each build holds, and in which list and split.

A dataset build is known by its fingerprint: the first 16 hex characters of the sha256 of
its ``dataset.json`` (``sha256sum dataset.json`` checks it). The same inputs and settings
give the same ``dataset.json`` (``datasets.lineage``), so the same build has the same
fingerprint wherever it is written. ``record_build`` writes one Parquet file per build,
``<index>/<fingerprint>.parquet`` (``StorageRoot.dataset_builds``): one row per crop and list
file (``BUILD_SCHEMA``), with the export folder and ``dataset.json`` path in its key-value
metadata. A later build into the same folder gets a file of its own, so the index keeps
every build a crop was ever in, and whether the folder still holds it (``current``).

Reads and writes Parquet (atomically); no Dagster.
"""

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.core.tables import field
from vitcow_assets.media.parquet import write_table

DATASET_JSON = "dataset.json"
FINGERPRINT_CHARS = 16
OUT_DIR_KEY, MANIFEST_KEY, FINGERPRINT_KEY, CLASSES_KEY = b"vitcow.out_dir", b"vitcow.dataset_json", b"vitcow.fingerprint", b"vitcow.classes"

BUILD_SCHEMA = pa.schema(
    [
        field("crop_id", pa.string(), "crop in the build (the catalog's crop_id)"),
        field("list", pa.string(), "the list file that names it: train.csv, val.csv, test.csv, pretrain_train.csv or pretrain_test.csv"),
        field("split", pa.string(), "train, val or test"),
        field("class_name", pa.string(), "training class (behaviour lists); null in the pre-training lists", nullable=True),
        field("path", pa.string(), "absolute path of the video the list names (a trimmed copy where a label marks a segment)"),
    ]
)


def fingerprint_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:FINGERPRINT_CHARS]


def dataset_fingerprint(out_dir: str | Path) -> str | None:
    """The fingerprint of the build ``out_dir`` holds now (None: no ``dataset.json``)."""
    try:
        return fingerprint_bytes((Path(out_dir) / DATASET_JSON).read_bytes())
    except FileNotFoundError:
        return None


def _rows(table: pa.Table | None, prefix: str, class_column: str | None) -> list[dict]:
    if table is None:
        return []
    cols = table.to_pydict()
    return [
        {"crop_id": c, "list": f"{prefix}{s}.csv", "split": s, "class_name": cols[class_column][k] if class_column else None, "path": p}
        for k, (c, s, p) in enumerate(zip(cols["crop_id"], cols["split"], cols["crop_path"]))
    ]


def record_build(index_dir: str | Path, out_dir: str | Path, splits: pa.Table, pretrain: pa.Table | None = None) -> str:
    """Add the build now in ``out_dir`` to the index: its ``splits`` table (``crop_id``,
    ``split``, ``class_name``, ``crop_path``) and pre-training table (``crop_id``, ``split``,
    ``crop_path``), as the export wrote them. Returns the build's fingerprint; recording
    the same build again writes the same bytes."""
    out_dir = Path(out_dir).absolute()
    fingerprint = dataset_fingerprint(out_dir)
    if fingerprint is None:
        raise FileNotFoundError(f"{out_dir / DATASET_JSON} is missing: not a complete dataset export")
    classes = json.loads((out_dir / DATASET_JSON).read_text()).get("taxonomy", {}).get("classes", [])
    rows = _rows(splits, "", "class_name") + _rows(pretrain, "pretrain_", None)
    rows.sort(key=lambda r: (r["crop_id"], r["list"]))
    metadata = {OUT_DIR_KEY: str(out_dir).encode(), MANIFEST_KEY: str(out_dir / DATASET_JSON).encode(),
                FINGERPRINT_KEY: fingerprint.encode(), CLASSES_KEY: json.dumps(classes).encode()}
    write_table(Path(index_dir) / f"{fingerprint}.parquet", pa.Table.from_pylist(rows, schema=BUILD_SCHEMA.with_metadata(metadata)))
    return fingerprint


def _build(path: Path, rows: list[dict]) -> dict:
    meta = pq.read_schema(path).metadata or {}
    out_dir, fingerprint = meta.get(OUT_DIR_KEY, b"").decode(), meta.get(FINGERPRINT_KEY, path.stem.encode()).decode()
    return {
        "fingerprint": fingerprint,
        "out_dir": out_dir,
        "dataset_json": meta.get(MANIFEST_KEY, b"").decode(),
        "current": dataset_fingerprint(out_dir) == fingerprint if out_dir else False,
        "lists": [r["list"] for r in rows],
        "split": next((r["split"] for r in rows if not r["list"].startswith("pretrain_")), None),
        "class_name": next((r["class_name"] for r in rows if r["class_name"] is not None), None),
        "paths": sorted({r["path"] for r in rows}),
    }


def builds_of(index_dir: str | Path, crop_id: str) -> list[dict]:
    """Every recorded build holding ``crop_id``: fingerprint, export folder, whether the
    folder still holds that build (``current``), the lists naming the crop, its split and
    class in the behaviour lists (None when only pre-training lists hold it); by fingerprint."""
    folder = Path(index_dir)
    out = []
    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        rows = pq.read_table(path, filters=[("crop_id", "=", crop_id)]).to_pylist()
        if rows:
            out.append(_build(path, rows))
    return out


def build_members(index_dir: str | Path, fingerprint: str, split: str | None = None) -> dict[str, list[str]] | None:
    """crop_id -> the lists naming it, of the build ``fingerprint`` (a unique prefix does),
    in ``split`` only when given; None when no recorded build has that fingerprint."""
    folder = Path(index_dir)
    if not fingerprint or not set(fingerprint) <= set("0123456789abcdef"):
        return None
    matches = sorted(folder.glob(f"{fingerprint}*.parquet")) if folder.is_dir() else []
    if len(matches) != 1:
        return None
    table = pq.read_table(matches[0])
    if split:
        table = table.filter(pc.equal(table["split"], split))
    out: dict[str, list[str]] = {}
    for crop_id, name in zip(table["crop_id"].to_pylist(), table["list"].to_pylist()):
        out.setdefault(crop_id, []).append(name)
    return out


def recorded_builds(index_dir: str | Path) -> list[str]:
    """The fingerprints of every recorded build, sorted."""
    folder = Path(index_dir)
    return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []
