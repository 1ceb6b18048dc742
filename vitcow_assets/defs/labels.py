"""The labelling assets (unpartitioned): the crop catalog across every video, the taxonomy,
the snapshot of the current labels with each crop's lineage, and the trimmed crops of
segment labels. The labels themselves live in the label database (``labelling.store``),
written by the labelling page and ``vitcow labels import``; these assets read it.

``crop_catalog`` is kept current by an automation condition: it is requested whenever any
partition's ``object_crops`` was materialized since the last evaluation (unlike Dagster's
``eager``, a partition whose crops are missing, say a failed video, does not hold it back). ``behaviour_labels`` is a snapshot taken
when it is materialized (the UI, ``vitcow labels snapshot``, ``vitcow dataset build``).
"""

import json

import dagster as dg
import pyarrow.parquet as pq
from pydantic import PrivateAttr

from vitcow_assets.core.catalog import CATALOG_SCHEMA
from vitcow_assets.core.settings import build
from vitcow_assets.defs.assets import object_crops
from vitcow_assets.defs.code_versions import versioned_asset
from vitcow_assets.defs.config import config_class, from_environment, setting_values
from vitcow_assets.defs.metadata import crop_pages_metadata, table_metadata
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.datasets.lineage import table_fingerprint
from vitcow_assets.labelling.settings import LabelSettings
from vitcow_assets.labelling.snapshot import LABELS_SCHEMA, label_snapshot, trim_plan
from vitcow_assets.labelling.store import LabelStore
from vitcow_assets.labelling.taxonomy_file import load_taxonomy
from vitcow_assets.labelling.trimming import render_trims
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.parquet import write_table
from vitcow_assets.stages.catalog import read_catalog, write_catalog

GROUP = "labelling"


class _Labels(dg.ConfigurableResource):
    """The label database and the taxonomy (see ``labelling.settings.LabelSettings``)."""

    _taxonomy = PrivateAttr(default=None)

    def settings(self) -> LabelSettings:
        return build(LabelSettings, setting_values(LabelSettings, self))

    def store(self, home) -> LabelStore:
        return LabelStore.open(self.db_url, home)

    def load_taxonomy(self):
        if self._taxonomy is None:
            self._taxonomy = load_taxonomy(self.taxonomy)
        return self._taxonomy


LabelsResource = config_class(LabelSettings, "LabelsResource", base=_Labels, doc=_Labels.__doc__)


def labels_from_environment(environ, **overrides) -> "LabelsResource":
    return from_environment(LabelsResource, LabelSettings, environ, **overrides)


@versioned_asset(
    group_name=GROUP, kinds={"parquet"}, deps=[object_crops],
    automation_condition=(dg.AutomationCondition.any_deps_updated() & ~dg.AutomationCondition.in_progress()).with_label("new crops anywhere"),
)
def crop_catalog(context: dg.AssetExecutionContext, storage: VitcowStorage) -> dg.MaterializeResult:
    """One row per crop across every video, with a stable `crop_id` and each crop's lineage:
    what labelling and datasets read."""
    root = storage.root()
    table, videos = write_catalog(root)
    farms = sorted({f or "" for f in table["farm"].to_pylist()})
    return dg.MaterializeResult(
        metadata={
            **table_metadata(root.catalog_table, CATALOG_SCHEMA, table.num_rows),
            "summary": dg.MetadataValue.md(f"**{table.num_rows} crops** of **{len(videos)} videos** from {len(farms)} farm(s)"),
            **crop_pages_metadata(storage.links()),
            "videos": len(videos),
            "farms": dg.MetadataValue.json(farms),
        },
        data_version=dg.DataVersion(table_fingerprint(table.select(["crop_id", "crop_path"]))),
    )


@versioned_asset(group_name=GROUP, kinds={"yaml"})
def label_taxonomy(context: dg.AssetExecutionContext, storage: VitcowStorage, labels: LabelsResource) -> dg.MaterializeResult:
    """The behaviour taxonomy in force: fine labels, their keys and the training classes they
    map to. Its data version is the taxonomy's fingerprint: a changed mapping makes the
    training sets stale, never the labels."""
    taxonomy = labels.load_taxonomy()
    path = storage.root().taxonomy_snapshot
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(taxonomy.as_dict(), indent=2, sort_keys=True))
    rows = [{"label": f.label, "key": f.key, "class": f.target or "(excluded)", "segment": f.segment} for f in taxonomy.labels]
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "fingerprint": taxonomy.fingerprint,
            "classes": dg.MetadataValue.json(list(taxonomy.classes)),
            "labels": dg.MetadataValue.md("\n".join(["| label | key | class | segment |", "|---|---|---|---|"] + [f"| {r['label']} | `{r['key']}` | {r['class']} | {'yes' if r['segment'] else ''} |" for r in rows])),
        },
        data_version=dg.DataVersion(taxonomy.fingerprint),
    )


@versioned_asset(group_name=GROUP, kinds={"parquet"}, deps=[crop_catalog])
def behaviour_labels(context: dg.AssetExecutionContext, storage: VitcowStorage, labels: LabelsResource) -> dg.MaterializeResult:
    """The current behaviour labels (one per crop and annotator), the reviewers' decisions in
    force and the gold labels (`role`), each with its crop's lineage from the catalog;
    labels whose crop is no longer in the catalog are kept apart as orphans. The taxonomy's
    fingerprint is recorded in the table's metadata."""
    root = storage.root()
    with labels.store(root.home) as store:
        current, decisions, gold = store.current_labels(), store.current_decisions(), store.gold_labels()
    taxonomy = labels.load_taxonomy()
    snapshot = label_snapshot(current, read_catalog(root), taxonomy, str(root.trimmed_dir), decisions, gold)
    path, orphans = root.label_snapshot, root.orphaned_labels
    write_table(path, snapshot.labels)
    write_table(orphans, snapshot.orphans)
    if snapshot.orphans.num_rows:
        context.log.warning(f"{snapshot.orphans.num_rows} label(s) name crops no longer in the catalog (new bytes?): kept in {orphans}")
    roles = snapshot.labels.select(["annotator", "role"]).to_pylist()
    annotators = sorted({r["annotator"] for r in roles if r["role"] == "annotator"})
    return dg.MaterializeResult(
        metadata={
            **table_metadata(path, LABELS_SCHEMA, snapshot.labels.num_rows),
            **crop_pages_metadata(storage.links(), labelled=1),
            "annotators": dg.MetadataValue.json(annotators),
            "decisions": sum(r["role"] == "reviewer" for r in roles),
            "gold_labels": sum(r["role"] == "gold" for r in roles),
            "orphaned_labels": snapshot.orphans.num_rows,
            "orphans_path": dg.MetadataValue.path(str(orphans)),
            "taxonomy_fingerprint": taxonomy.fingerprint,
        },
        data_version=dg.DataVersion(table_fingerprint(snapshot.labels)),
    )


@versioned_asset(group_name=GROUP, kinds={"video", "parquet"}, deps=[behaviour_labels])
def trimmed_crops(context: dg.AssetExecutionContext, storage: VitcowStorage) -> dg.MaterializeResult:
    """A trimmed copy (H.264, frame-exact) of every crop whose label marks a segment: what
    datasets use instead of the whole crop."""
    root = storage.root()
    plan = trim_plan(pq.read_table(root.label_snapshot))
    trimmed = render_trims(plan, skip_existing=True)
    path = root.trimmed_table
    write_table(path, trimmed)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "dagster/row_count": trimmed.num_rows, "trimmed_dir": dg.MetadataValue.path(str(root.trimmed_dir))},
        data_version=dg.DataVersion(table_fingerprint(trimmed)),
    )


LABEL_ASSETS = [crop_catalog, label_taxonomy, behaviour_labels, trimmed_crops]

#: Evaluates the catalog's automation condition. Dagster's own default sensor for automation
#: conditions starts stopped (a toggle in the UI); this one runs from the start, so new crops
#: reach the catalog (and the labelling page) with nobody switching anything on.
catalog_automation = dg.AutomationConditionSensorDefinition(
    "catalog_automation",
    target=dg.AssetSelection.assets(crop_catalog),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Brings crop_catalog up to date when any video's crops change.",
)
