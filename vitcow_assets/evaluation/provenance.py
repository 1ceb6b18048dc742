"""What every evaluation result row names: the dataset build it was scored on (the
fingerprint of its ``dataset.json``), the checkpoint whose embeddings were used (sha256 of
its bytes; null for imported predictions, which name their file's sha256 instead) and the
code version that computed it.

Pure: pyarrow tables in, pyarrow tables out.
"""

import dataclasses

import pyarrow as pa

from vitcow_assets.core.tables import field

LINEAGE_FIELDS = [
    field("dataset_fingerprint", pa.string(), "the dataset build scored on: sha256[:16] of its dataset.json"),
    field("checkpoint_sha256", pa.string(), "sha256 of the checkpoint whose embeddings were used (null: imported predictions)", nullable=True),
    field("predictions_sha256", pa.string(), "sha256 of the imported predictions file (null: embeddings were used)", nullable=True),
    field("code_version", pa.string(), "vitcow_assets version that computed the row"),
]


@dataclasses.dataclass(frozen=True)
class Provenance:
    """The lineage one evaluation's rows carry."""

    dataset_fingerprint: str
    code_version: str
    checkpoint_sha256: str | None = None
    predictions_sha256: str | None = None

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in LINEAGE_FIELDS}


def schema_with_lineage(fields: list[pa.Field]) -> pa.Schema:
    """A result schema: the lineage columns first, then ``fields``."""
    return pa.schema(LINEAGE_FIELDS + list(fields))


def with_lineage(rows: list[dict], fields: list[pa.Field], provenance: Provenance) -> pa.Table:
    """``rows`` (dicts keyed by ``fields``' names) as a table with the lineage columns."""
    stamp = provenance.as_dict()
    return pa.Table.from_pylist([{**stamp, **r} for r in rows], schema=schema_with_lineage(fields))
