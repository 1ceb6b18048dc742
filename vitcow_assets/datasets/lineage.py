"""What a dataset came from: the catalog file and its hash, the labels snapshot's and the
trimmed table's content fingerprints, the taxonomy, the code version, the settings, the
source videos; and ``dataset.json``'s document built from them.

A fingerprint hashes a table's rows whatever their order (rows sorted on every flat column,
columns by name), so the same labels give the same fingerprint from any query. Nothing in
the document depends on when it was made: the same inputs give the same bytes.

Pure: pyarrow in, dicts and strings out.
"""

import dataclasses
import hashlib
import json

import pyarrow as pa

from vitcow_assets.core.taxonomy import Taxonomy

MANIFEST_FORMAT = "vitcow-dataset/1"


def table_fingerprint(table: pa.Table) -> str:
    """sha256 (hex, 16 chars) of the table's rows, independent of row and column order."""
    table = table.select(sorted(table.column_names))
    flat = [n for n in table.column_names if not pa.types.is_nested(table.schema.field(n).type)]
    if table.num_rows and flat:
        table = table.sort_by([(n, "ascending") for n in flat])
    digest = hashlib.sha256(json.dumps(table.column_names).encode())
    for row in table.to_pylist():
        digest.update(json.dumps(row, sort_keys=True, default=str).encode() + b"\n")
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Lineage:
    """The inputs of one dataset build, as ``dataset.json`` records them."""

    catalog_path: str
    catalog_sha256: str
    labels_fingerprint: str
    labels_rows: int
    taxonomy: Taxonomy
    code_version: str
    trimmed_fingerprint: str | None = None
    #: the settings of selection, splits and subsets (JSON-able)
    settings: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, catalog_path: str, catalog_sha256: str, labels: pa.Table, taxonomy: Taxonomy, code_version: str, trimmed: pa.Table | None = None, settings: dict | None = None) -> "Lineage":
        return cls(
            catalog_path=str(catalog_path),
            catalog_sha256=catalog_sha256,
            labels_fingerprint=table_fingerprint(labels),
            labels_rows=labels.num_rows,
            taxonomy=taxonomy,
            code_version=code_version,
            trimmed_fingerprint=table_fingerprint(trimmed) if trimmed is not None else None,
            settings=dict(settings or {}),
        )


def sources(table: pa.Table) -> list[dict]:
    """The source videos of a splits table: video_id, source sha256 (when the table has
    it) and crops per split, sorted by video_id."""
    has_sha = "source_sha256" in table.column_names
    cols = table.select(["video_id", "split", *(["source_sha256"] if has_sha else [])]).to_pydict()
    out: dict[str, dict] = {}
    for k, video in enumerate(cols["video_id"]):
        entry = out.setdefault(video, {"video_id": video, **({"source_sha256": cols["source_sha256"][k]} if has_sha else {}), "crops": {}})
        entry["crops"][cols["split"][k]] = entry["crops"].get(cols["split"][k], 0) + 1
    return [out[v] for v in sorted(out)]


def manifest(lineage: Lineage, rows: dict[str, int], files: dict[str, str], root: str | None, extra: dict | None = None) -> dict:
    """The ``dataset.json`` document (``files``: name -> sha256 of the bytes written)."""
    tax = lineage.taxonomy
    return {
        "format": MANIFEST_FORMAT,
        "catalog": {"path": lineage.catalog_path, "sha256": lineage.catalog_sha256},
        "labels": {"fingerprint": lineage.labels_fingerprint, "rows": lineage.labels_rows},
        "trimmed": {"fingerprint": lineage.trimmed_fingerprint},
        "taxonomy": {"name": tax.name, "version": tax.version, "fingerprint": tax.fingerprint, "classes": list(tax.classes)},
        "code_version": lineage.code_version,
        "settings": lineage.settings,
        "paths": {"root": root, "relative": root is not None},
        "rows": dict(sorted(rows.items())),
        "files": dict(sorted(files.items())),
        **(extra or {}),
    }
