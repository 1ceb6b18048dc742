"""The training-set assets (unpartitioned): the pre-training list, the leakage-free behaviour
splits, efficiency subsets, statistics and the export a researcher trains from. Each is one
step of ``datasets.build`` (the same functions ``build_dataset`` runs in one call), keeps
its result with ``datasets.staged`` at the storage layout's paths, and reads the steps
before it from there; each table they write carries the crop's lineage columns.

Settings come from the ``dataset`` resource (``datasets.build.DatasetSettings``: environment
``VITCOW_DATASET_<FIELD>``; ``vitcow dataset build`` flags). The test split is frozen
against the export folder's own ``splits.parquet``: re-building keeps it unless
``refreeze``, and new footage only adds to train and validation.
"""

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pydantic

from vitcow_assets.core.settings import build, record
from vitcow_assets.datasets.build import (
    DatasetSettings, dataset_report, describe_splits, draw_subsets, previous_splits, select_pretraining, split_labelled, write_export,
)
from vitcow_assets.datasets.lineage import Lineage, table_fingerprint
from vitcow_assets.datasets.splits import empty_splits
from vitcow_assets.datasets.staged import (
    read_label_snapshot, read_pretraining, read_splits, read_splits_report, read_subsets, read_trimmed, write_pretraining, write_splits,
    write_stats, write_subsets,
)
from vitcow_assets.defs.code_versions import versioned_asset
from vitcow_assets.defs.config import config_class, from_environment, setting_values
from vitcow_assets.defs.labels import LabelsResource, behaviour_labels, crop_catalog, label_taxonomy, trimmed_crops
from vitcow_assets.defs.metadata import crop_pages_metadata
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.lineage.builds import record_build
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.runtime.version import code_version
from vitcow_assets.stages.catalog import read_catalog

GROUP = "datasets"


class _Dataset(dg.ConfigurableResource):
    """What the training sets hold and where the export goes (``DatasetSettings``)."""

    def settings(self) -> DatasetSettings:
        try:
            return build(DatasetSettings, setting_values(DatasetSettings, self), where=lambda name: f"dataset resource {name}")
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from None

    def export_dir(self, storage) -> Path:
        return Path(self.out_dir).absolute() if self.out_dir else storage.root().datasets.default_export


DatasetResource = config_class(
    DatasetSettings, "DatasetResource", base=_Dataset, doc=_Dataset.__doc__,
    extra={"out_dir": (str | None, pydantic.Field(default=None, description="export folder (default <home>/datasets/export); env VITCOW_DATASET_DIR"))},
)


def _labels(storage: VitcowStorage) -> pa.Table:
    return read_label_snapshot(storage.root())


def _counts_md(counts: dict[str, int]) -> str:
    return " · ".join(f"**{v}** {k}" for k, v in counts.items())


@versioned_asset(group_name=GROUP, kinds={"parquet"}, deps=[crop_catalog])
def pretraining_set(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource) -> dg.MaterializeResult:
    """Every catalog crop passing the filters (presence, farms, cameras, segmenters, time of
    day), with the held-out farm(s) as test: VideoMAE's pre-training lists."""
    settings, root = dataset.settings(), storage.root()
    result = select_pretraining(read_catalog(root), settings)
    path = write_pretraining(root.datasets, result)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "dagster/row_count": result.table.num_rows, "summary": dg.MetadataValue.md(_counts_md(result.counts())),
                  "dropped_by_filter": dg.MetadataValue.json(result.dropped), "settings": dg.MetadataValue.json(record(settings))},
        data_version=dg.DataVersion(table_fingerprint(result.table)),
    )


def _splits_md(counts: dict[str, int], report: dict) -> str:
    empty = "".join(f"; **{split} is empty**: {why}" for split, why in empty_splits(report).items())
    return _counts_md(counts) + f"; largest gap to the validation target {report['max_abs_deviation']}" + empty


def _class_md(report: dict) -> str:
    rows = ["| class | train | val | test | val share | target | note |", "|---|---|---|---|---|---|---|"]
    for c in report["classes"]:
        share = "" if c["realised"] is None else f"{c['realised']:.3f}"
        rows.append(f"| {c['class_name']} | {c['train']} | {c['val']} | {c['test']} | {share} | {c['target']:.3f} | {c['note']} |")
    return "\n".join(rows)


@versioned_asset(group_name=GROUP, kinds={"parquet"}, deps=[crop_catalog, behaviour_labels, trimmed_crops, label_taxonomy])
def behaviour_splits(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource, labels: LabelsResource) -> dg.MaterializeResult:
    """Labelled crops mapped to training classes (Delete excluded, trimmed crops where a
    segment is marked), split with whole tracks on one side: test = the held-out farm(s),
    validation a stratified, seeded share of the rest; the test split is frozen."""
    settings, root = dataset.settings(), storage.root()
    labelled = split_labelled(read_catalog(root), _labels(storage), labels.load_taxonomy(), settings, read_trimmed(root), previous_splits(dataset.export_dir(storage)))
    result, report = labelled.result, labelled.report()
    path = write_splits(root.datasets, result.table, report)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)), "dagster/row_count": result.table.num_rows,
            "summary": dg.MetadataValue.md(_splits_md(result.counts(), report["splits"])),
            **crop_pages_metadata(storage.links(), labelled=1),
            "classes": dg.MetadataValue.md(_class_md(report["splits"])), "labels": dg.MetadataValue.json(report["labels"]),
            "frozen_from": dg.MetadataValue.path(str(dataset.export_dir(storage) / "splits.parquet")), "kept_from_frozen": result.kept,
        },
        data_version=dg.DataVersion(table_fingerprint(result.table)),
    )


@versioned_asset(group_name=GROUP, kinds={"parquet"}, deps=[behaviour_splits])
def efficiency_subsets(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource) -> dg.MaterializeResult:
    """Stratified training subsets of the given sizes × repeats, seeded and nested (each size
    inside the next), against the frozen test split. Off without `subset_sizes`."""
    layout = storage.root().datasets
    subsets = draw_subsets(read_splits(layout), dataset.settings())
    path = write_subsets(layout, subsets)
    if subsets is None:
        return dg.MaterializeResult(metadata={"summary": dg.MetadataValue.md("off: no `subset_sizes` set")})
    report = {"sizes": list(subsets.sizes), "repeats": subsets.repeats, "seed": subsets.seed, "notes": list(subsets.notes)}
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)), "dagster/row_count": subsets.table.num_rows, "subsets": dg.MetadataValue.json(report)})


def _table_value(table: pa.Table, limit: int = 50) -> dg.TableMetadataValue:
    """A small table for the UI: its first rows, with its columns."""
    schema = dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in table.schema])
    rows = [dg.TableRecord({k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in r.items()}) for r in table.slice(0, limit).to_pylist()]
    return dg.MetadataValue.table(records=rows, schema=schema)


@versioned_asset(group_name=GROUP, kinds={"png", "parquet"}, deps=[behaviour_splits])
def dataset_stats(context: dg.AssetExecutionContext, storage: VitcowStorage, labels: LabelsResource) -> dg.MaterializeResult:
    """Hours, crops and animals per split, farm and class; class balance; the presence-ratio
    histogram; annotators and their agreement where crops were double-labelled."""
    layout = storage.root().datasets
    described = describe_splits(read_splits(layout), _labels(storage), labels.load_taxonomy())
    png = write_stats(layout, described)
    tables = {f"stats_{name}": _table_value(table) for name, table in described.stats.tables().items() if name in ("by_split", "by_class", "agreement", "annotators")}
    return dg.MaterializeResult(
        metadata={"chart_path": dg.MetadataValue.path(str(png)), "chart": dg.MetadataValue.md(described.chart.thumbnail_markdown()),
                  "summary": dg.MetadataValue.json(described.stats.summary()), **tables}
    )


@versioned_asset(group_name=GROUP, kinds={"csv"}, deps=[behaviour_splits, pretraining_set, efficiency_subsets, dataset_stats])
def dataset_export(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource, labels: LabelsResource) -> dg.MaterializeResult:
    """The dataset folder a researcher trains from: VideoMAE's `train.csv`, `val.csv`,
    `test.csv` and `class_mapping.txt`, the pre-training lists, the Hugging Face index, the
    subsets' lists and `dataset.json` naming the catalog, labels, taxonomy and code version."""
    settings, root, taxonomy = dataset.settings(), storage.root(), labels.load_taxonomy()
    layout, snapshot = root.datasets, _labels(storage)
    pretrain, pretrain_report = read_pretraining(layout)
    splits = read_splits(layout)
    subsets = read_subsets(layout) if settings.subset_sizes else None
    described = describe_splits(splits, snapshot, taxonomy)
    report = dataset_report(pretrain_report, read_splits_report(layout), subsets, described.stats)
    lineage = Lineage.of(str(root.catalog_table), sha256_file(root.catalog_table), snapshot, taxonomy, code_version(), read_trimmed(root), settings.as_dict())
    out = dataset.export_dir(storage)
    exported = write_export(out, splits, taxonomy, lineage, settings, pretrain=pretrain, subsets=subsets, described=described, report=report)
    fingerprint = record_build(root.dataset_builds, out, splits, pretrain)
    return dg.MaterializeResult(
        metadata={"export_dir": dg.MetadataValue.path(str(out)), "manifest": dg.MetadataValue.path(str(out / "dataset.json")),
                  "dataset_fingerprint": fingerprint, **crop_pages_metadata(storage.links(), dataset=fingerprint),
                  "rows": dg.MetadataValue.json(exported.rows), "taxonomy_fingerprint": taxonomy.fingerprint}
    )


def dataset_from_environment(environ, **overrides) -> "DatasetResource":
    """The dataset resource from ``VITCOW_DATASET_<FIELD>`` (``VITCOW_DATASET_DIR``: the
    export folder); ``overrides`` (not None, e.g. the CLI's flags) win."""
    out_dir = overrides.pop("out_dir", None) or environ.get("VITCOW_DATASET_DIR") or None
    return from_environment(DatasetResource, DatasetSettings, environ, "dataset", out_dir=out_dir, **overrides)


DATASET_ASSETS = [pretraining_set, behaviour_splits, efficiency_subsets, dataset_stats, dataset_export]
