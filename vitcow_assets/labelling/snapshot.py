"""The ``behaviour_labels`` snapshot and the trimmed-crop plan, as pure functions.

``label_snapshot`` joins the current labels (one per crop and annotator, ``EVENT_SCHEMA``
rows from the store), the reviewers' decisions in force and the gold labels with the crop
catalog's provenance columns: each row says which source bytes, frames, model, prompt and
code version its crop came from. ``role`` says what a row is: ``annotator`` (an
annotator's current label), ``reviewer`` (the decision in force, ``annotator`` naming the
reviewer) or ``gold`` (the crop's reference label, ``annotator`` = ``(gold)``); what a
dataset makes of them is ``verdicts``' rule. Labels whose crop
is no longer in the catalog (its video re-run on new bytes, or removed) are *orphans*: they
are reported in a table of their own, never joined to another crop.

The snapshot holds fine labels only, never the training classes: the taxonomy's mapping is
applied by what builds datasets, so changing the mapping does not change this table. The
taxonomy in force is recorded in the table's metadata (``vitcow.taxonomy_fingerprint``,
name, version) with the labels it does not know.

A label with a segment (``start_frame..end_frame``) stands for a trimmed copy of its crop;
``trimmed_name`` names that file (the same crop and segment always give the same name) and
``trim_plan`` lists the copies to render.

Pure: pyarrow tables in, pyarrow tables out; no database, no files.
"""

import dataclasses
import json
import posixpath

import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.catalog import CATALOG_SCHEMA
from vitcow_assets.core.tables import field
from vitcow_assets.core.taxonomy import Taxonomy
from vitcow_assets.labelling.events import EVENT_SCHEMA
from vitcow_assets.labelling.verdicts import ANNOTATOR_ROLE, GOLD_ROLE, REVIEWER_ROLE

TAXONOMY_FINGERPRINT = "vitcow.taxonomy_fingerprint"
TAXONOMY_NAME = "vitcow.taxonomy_name"
TAXONOMY_VERSION = "vitcow.taxonomy_version"
UNKNOWN_LABELS = "vitcow.labels_not_in_taxonomy"

_LABEL_FIELDS = ["event_id", "crop_id", "annotator", "label", "start_frame", "end_frame", "labelled_at", "source", "unsure"]
#: the ``annotator`` of a gold row
GOLD_ANNOTATOR = "(gold)"
ROLE_FIELD = field(
    "role", pa.string(),
    "annotator (an annotator's current label), reviewer (the reviewer's decision in force: the crop's label) or gold (the crop's reference label)",
)
#: provenance copied from the catalog, in this order
PROVENANCE = [
    "crop_path", "video_id", "source_sha256", "source_path", "source_uri", "farm", "camera", "recorded_at", "clip_id",
    "object_id", "track_id", "source_frame_start", "source_frame_end", "frame_step", "frames", "frames_present",
    "presence_ratio", "fps", "segmenter", "model_checkpoint", "model_checkpoint_sha256", "prompt", "code_version", "run_id",
]

LABELS_SCHEMA = pa.schema(
    [EVENT_SCHEMA.field(n) for n in _LABEL_FIELDS]
    + [ROLE_FIELD]
    + [
        field("trimmed_path", pa.string(), "trimmed copy of the crop (frames start_frame..end_frame) that datasets use instead of the whole crop; null without a segment", nullable=True),
    ]
    + [CATALOG_SCHEMA.field(n) for n in PROVENANCE]
)

ORPHANS_SCHEMA = pa.schema([EVENT_SCHEMA.field(n) for n in _LABEL_FIELDS] + [ROLE_FIELD])

TRIM_SCHEMA = pa.schema(
    [
        field("crop_id", pa.string(), "crop to trim"),
        field("crop_path", pa.string(), "the whole crop video"),
        field("start_frame", pa.int32(), "first crop frame kept (inclusive)"),
        field("end_frame", pa.int32(), "last crop frame kept (inclusive)"),
        field("trimmed_path", pa.string(), "where the trimmed copy goes"),
    ]
)


def trimmed_name(crop_id: str, start_frame: int, end_frame: int) -> str:
    """File name of a crop's trimmed copy: ``<crop_id>_f<start>-<end>.mp4``."""
    return f"{crop_id}_f{start_frame:05d}-{end_frame:05d}.mp4"


@dataclasses.dataclass(frozen=True)
class LabelSnapshot:
    #: current labels of catalog crops (``LABELS_SCHEMA``), by video, clip, object, role, annotator
    labels: pa.Table
    #: current labels whose crop is not in the catalog (``ORPHANS_SCHEMA``), by crop, role, annotator
    orphans: pa.Table


def _trimmed_paths(labels: pa.Table, trimmed_dir: str) -> pa.Array:
    cols = labels.select(["crop_id", "start_frame", "end_frame"]).to_pydict()
    paths = [
        None if s is None else posixpath.join(trimmed_dir, trimmed_name(c, s, e))
        for c, s, e in zip(cols["crop_id"], cols["start_frame"], cols["end_frame"])
    ]
    return pa.array(paths, pa.string())


def taxonomy_metadata(taxonomy: Taxonomy, labels_seen: list[str]) -> dict[bytes, bytes]:
    unknown = sorted(set(labels_seen) - set(taxonomy.label_names))
    return {
        TAXONOMY_FINGERPRINT.encode(): taxonomy.fingerprint.encode(),
        TAXONOMY_NAME.encode(): taxonomy.name.encode(),
        TAXONOMY_VERSION.encode(): str(taxonomy.version).encode(),
        UNKNOWN_LABELS.encode(): json.dumps(unknown).encode(),
    }


def _role_rows(current: pa.Table, decisions: pa.Table | None, gold: pa.Table | None) -> pa.Table:
    """Annotators' labels, decisions and gold labels as rows of ``_LABEL_FIELDS`` + role."""
    labels = current.filter(pc.equal(current["kind"], "label")).select(_LABEL_FIELDS)
    parts = [labels.append_column(ROLE_FIELD, pa.array([ANNOTATOR_ROLE] * labels.num_rows, pa.string()))]
    if decisions is not None and decisions.num_rows:
        d = decisions.filter(pc.equal(decisions["kind"], "decision"))
        parts.append(_as_rows(d, d["reviewer"], d["decided_at"], d["source"], REVIEWER_ROLE))
    if gold is not None and gold.num_rows:
        parts.append(_as_rows(gold, pa.array([GOLD_ANNOTATOR] * gold.num_rows), gold["marked_at"], pa.array(["import"] * gold.num_rows), GOLD_ROLE))
    return pa.concat_tables([p.cast(ORPHANS_SCHEMA) for p in parts])


def _as_rows(table: pa.Table, annotator, at, source, role: str) -> pa.Table:
    n = table.num_rows
    columns = {
        "event_id": table["event_id"], "crop_id": table["crop_id"], "annotator": annotator, "label": table["label"],
        "start_frame": table["start_frame"], "end_frame": table["end_frame"], "labelled_at": at, "source": source,
        "unsure": pa.array([False] * n), "role": pa.array([role] * n),
    }
    return pa.table(columns).cast(ORPHANS_SCHEMA)


def label_snapshot(current: pa.Table, catalog: pa.Table, taxonomy: Taxonomy, trimmed_dir: str,
                   decisions: pa.Table | None = None, gold: pa.Table | None = None) -> LabelSnapshot:
    """The snapshot of ``current`` labels (``EVENT_SCHEMA``, label events only), the
    ``decisions`` in force (``DECISION_SCHEMA``) and ``gold`` labels (``GOLD_SCHEMA``) against
    ``catalog`` (``CATALOG_SCHEMA``); ``trimmed_dir`` is the folder of trimmed copies."""
    current = _role_rows(current, decisions, gold)
    known = pc.is_in(current["crop_id"], value_set=catalog["crop_id"])
    orphans = current.filter(pc.invert(known)).cast(ORPHANS_SCHEMA)
    orphans = orphans.sort_by([("crop_id", "ascending"), ("role", "ascending"), ("annotator", "ascending")])
    joined = current.filter(known).join(catalog.select(["crop_id", *PROVENANCE]), keys="crop_id", join_type="inner")
    joined = joined.append_column("trimmed_path", _trimmed_paths(joined, trimmed_dir))
    order = [("video_id", "ascending"), ("clip_id", "ascending"), ("object_id", "ascending"), ("crop_id", "ascending"),
             ("role", "ascending"), ("annotator", "ascending")]
    labels = joined.select(LABELS_SCHEMA.names).cast(LABELS_SCHEMA).sort_by(order)
    metadata = taxonomy_metadata(taxonomy, current["label"].to_pylist())
    return LabelSnapshot(labels.replace_schema_metadata(metadata), orphans.replace_schema_metadata(metadata))


def trim_plan(labels: pa.Table) -> pa.Table:
    """The trimmed copies a snapshot's labels need (``TRIM_SCHEMA``), one per distinct
    (crop, segment), sorted by trimmed path."""
    with_segment = labels.filter(pc.is_valid(labels["trimmed_path"]))
    rows = {r["trimmed_path"]: r for r in with_segment.select(TRIM_SCHEMA.names).to_pylist()}
    return pa.Table.from_pylist([rows[k] for k in sorted(rows)], schema=TRIM_SCHEMA)
