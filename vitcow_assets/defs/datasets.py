"""The training-set assets (unpartitioned): the pre-training list, the leakage-free behaviour
splits, efficiency subsets, statistics and the export a researcher trains from. Each reads
the catalog and the label snapshot and hands the work to ``datasets``; each table they write
carries the crop's lineage columns.

Settings come from the ``dataset`` resource (``datasets.build.DatasetSettings``: environment
``VITCOW_DATASET_<FIELD>``; ``vitcow dataset build`` flags). The test split is frozen
against the export folder's own ``splits.parquet``: re-building keeps it unless
``refreeze``, and new footage only adds to train and validation.
"""

import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pydantic

from vitcow_assets.core.settings import build, record
from vitcow_assets.datasets.build import DatasetSettings, previous_splits
from vitcow_assets.datasets.chart import class_chart
from vitcow_assets.datasets.exports import export_dataset
from vitcow_assets.datasets.lineage import Lineage, table_fingerprint
from vitcow_assets.datasets.selection import filter_crops, resolve_labels
from vitcow_assets.datasets.splits import behaviour_splits as split_crops, pretraining_split
from vitcow_assets.datasets.stats import dataset_stats as compute_stats
from vitcow_assets.datasets.subsets import Subsets, efficiency_subsets as draw_subsets
from vitcow_assets.defs.config import config_class, from_environment, setting_values
from vitcow_assets.defs.labels import LabelsResource, behaviour_labels, crop_catalog, label_taxonomy, trimmed_crops
from vitcow_assets.defs.metadata import crop_pages_metadata
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.lineage.builds import record_build
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.media.parquet import write_table
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
        return Path(self.out_dir).absolute() if self.out_dir else storage.root().datasets_dir / "export"


DatasetResource = config_class(
    DatasetSettings, "DatasetResource", base=_Dataset, doc=_Dataset.__doc__,
    extra={"out_dir": (str | None, pydantic.Field(default=None, description="export folder (default <home>/datasets/export); env VITCOW_DATASET_DIR"))},
)


def _path(storage: VitcowStorage, name: str) -> Path:
    return storage.root().datasets_dir / name


def _write(storage, name: str, table: pa.Table, report: dict | None = None) -> Path:
    path = _path(storage, f"{name}.parquet")
    write_table(path, table)
    if report is not None:
        with atomic_file(_path(storage, f"{name}.json")) as tmp:
            tmp.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
    return path


def _report(storage, name: str) -> dict:
    return json.loads(_path(storage, f"{name}.json").read_text())


def _labels(storage) -> pa.Table:
    return pq.read_table(storage.root().labels_dir / "behaviour_labels.parquet")


def _trimmed(storage) -> pa.Table | None:
    path = storage.root().labels_dir / "trimmed_crops.parquet"
    return pq.read_table(path) if path.is_file() else None


def _counts_md(counts: dict[str, int]) -> str:
    return " · ".join(f"**{v}** {k}" for k, v in counts.items())


@dg.asset(group_name=GROUP, kinds={"parquet"}, deps=[crop_catalog], code_version=code_version())
def pretraining_set(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource) -> dg.MaterializeResult:
    """Every catalog crop passing the filters (presence, farms, cameras, segmenters, time of
    day), with the held-out farm(s) as test: VideoMAE's pre-training lists."""
    settings = dataset.settings()
    filtered = filter_crops(read_catalog(storage.root()), settings.crop_filter())
    table = pretraining_split(filtered.table, settings.test_farms)
    path = _write(storage, "pretraining_set", table, {"pretrain_filter_dropped": filtered.dropped})
    counts = {s: int((pc.equal(table["split"], s)).to_numpy(zero_copy_only=False).sum()) for s in ("train", "test")}
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "dagster/row_count": table.num_rows, "summary": dg.MetadataValue.md(_counts_md(counts)),
                  "dropped_by_filter": dg.MetadataValue.json(filtered.dropped), "settings": dg.MetadataValue.json(record(settings))},
        data_version=dg.DataVersion(table_fingerprint(table)),
    )


def _class_md(report: dict) -> str:
    rows = ["| class | train | val | test | val share | target | note |", "|---|---|---|---|---|---|---|"]
    for c in report["classes"]:
        share = "" if c["realised"] is None else f"{c['realised']:.3f}"
        rows.append(f"| {c['class_name']} | {c['train']} | {c['val']} | {c['test']} | {share} | {c['target']:.3f} | {c['note']} |")
    return "\n".join(rows)


@dg.asset(group_name=GROUP, kinds={"parquet"}, deps=[crop_catalog, behaviour_labels, trimmed_crops, label_taxonomy], code_version=code_version())
def behaviour_splits(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource, labels: LabelsResource) -> dg.MaterializeResult:
    """Labelled crops mapped to training classes (Delete excluded, trimmed crops where a
    segment is marked), split with whole tracks on one side: test = the held-out farm(s),
    validation a stratified, seeded share of the rest; the test split is frozen."""
    settings = dataset.settings()
    catalog = read_catalog(storage.root())
    source = filter_crops(catalog, settings.crop_filter()).table if settings.filter_labelled else catalog
    resolution = resolve_labels(_labels(storage), source, labels.load_taxonomy(), _trimmed(storage))
    result = split_crops(resolution.crops, settings.split_settings(), previous_splits(dataset.export_dir(storage)))
    report = {"labels": resolution.summary(), "splits": result.report()}
    path = _write(storage, "behaviour_splits", result.table, report)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)), "dagster/row_count": result.table.num_rows,
            "summary": dg.MetadataValue.md(_counts_md(result.counts()) + f"; largest gap to the validation target {report['splits']['max_abs_deviation']}"),
            **crop_pages_metadata(storage.links(), labelled=1),
            "classes": dg.MetadataValue.md(_class_md(report["splits"])), "labels": dg.MetadataValue.json(report["labels"]),
            "frozen_from": dg.MetadataValue.path(str(dataset.export_dir(storage) / "splits.parquet")), "kept_from_frozen": result.kept,
        },
        data_version=dg.DataVersion(table_fingerprint(result.table)),
    )


def _splits(storage) -> pa.Table:
    return pq.read_table(_path(storage, "behaviour_splits.parquet"))


@dg.asset(group_name=GROUP, kinds={"parquet"}, deps=[behaviour_splits], code_version=code_version())
def efficiency_subsets(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource) -> dg.MaterializeResult:
    """Stratified training subsets of the given sizes × repeats, seeded and nested (each size
    inside the next), against the frozen test split. Off without `subset_sizes`."""
    settings = dataset.settings()
    if not settings.subset_sizes:
        _path(storage, "efficiency_subsets.parquet").unlink(missing_ok=True)
        return dg.MaterializeResult(metadata={"summary": dg.MetadataValue.md("off: no `subset_sizes` set")})
    splits = _splits(storage)
    subsets = draw_subsets(splits.filter(pc.equal(splits["split"], "train")), settings.subset_sizes, settings.subset_repeats, settings.seed, settings.subset_cap)
    report = {"sizes": list(subsets.sizes), "repeats": subsets.repeats, "seed": subsets.seed, "notes": list(subsets.notes)}
    path = _write(storage, "efficiency_subsets", subsets.table, report)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)), "dagster/row_count": subsets.table.num_rows, "subsets": dg.MetadataValue.json(report)})


def _stats(storage, labels: LabelsResource):
    taxonomy = labels.load_taxonomy()
    stats = compute_stats(_splits(storage), taxonomy.classes, _labels(storage), taxonomy)
    return stats, class_chart(stats.class_counts(), taxonomy.classes)


def _table_value(table: pa.Table, limit: int = 50) -> dg.TableMetadataValue:
    """A small table for the UI: its first rows, with its columns."""
    schema = dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in table.schema])
    rows = [dg.TableRecord({k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in r.items()}) for r in table.slice(0, limit).to_pylist()]
    return dg.MetadataValue.table(records=rows, schema=schema)


@dg.asset(group_name=GROUP, kinds={"png", "parquet"}, deps=[behaviour_splits], code_version=code_version())
def dataset_stats(context: dg.AssetExecutionContext, storage: VitcowStorage, labels: LabelsResource) -> dg.MaterializeResult:
    """Hours, crops and animals per split, farm and class; class balance; the presence-ratio
    histogram; annotators and their agreement where crops were double-labelled."""
    stats, chart = _stats(storage, labels)
    for name, table in stats.tables().items():
        write_table(_path(storage, f"stats/{name}.parquet"), table)
    png = _path(storage, "stats/classes.png")
    with atomic_file(png) as tmp:
        tmp.write_bytes(chart.png())
    tables = {f"stats_{name}": _table_value(table) for name, table in stats.tables().items() if name in ("by_split", "by_class", "agreement")}
    return dg.MaterializeResult(
        metadata={"chart_path": dg.MetadataValue.path(str(png)), "chart": dg.MetadataValue.md(chart.thumbnail_markdown()),
                  "summary": dg.MetadataValue.json(stats.summary()), **tables}
    )


@dg.asset(group_name=GROUP, kinds={"csv"}, deps=[behaviour_splits, pretraining_set, efficiency_subsets, dataset_stats], code_version=code_version())
def dataset_export(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource, labels: LabelsResource) -> dg.MaterializeResult:
    """The dataset folder a researcher trains from: VideoMAE's `train.csv`, `val.csv`,
    `test.csv` and `class_mapping.txt`, the pre-training lists, the Hugging Face index, the
    subsets' lists and `dataset.json` naming the catalog, labels, taxonomy and code version."""
    settings, root = dataset.settings(), storage.root()
    taxonomy = labels.load_taxonomy()
    subsets = None
    if settings.subset_sizes:
        meta = _report(storage, "efficiency_subsets")
        subsets = Subsets(pq.read_table(_path(storage, "efficiency_subsets.parquet")), tuple(meta["sizes"]), meta["repeats"], meta["seed"], tuple(meta["notes"]))
    stats, chart = _stats(storage, labels)
    report = {**_report(storage, "pretraining_set"), **_report(storage, "behaviour_splits"), "subsets": subsets.notes if subsets else None, "stats": stats.summary()}
    lineage = Lineage.of(str(root.catalog_table), sha256_file(root.catalog_table), _labels(storage), taxonomy, code_version(), _trimmed(storage), settings.as_dict())
    out = dataset.export_dir(storage)
    exported = export_dataset(
        out, _splits(storage), taxonomy, lineage, pretrain=pq.read_table(_path(storage, "pretraining_set.parquet")), subsets=subsets, chart=chart,
        report=report, root=settings.root, hf=settings.hf, label_folders=settings.label_folders,
    )
    fingerprint = record_build(root.dataset_builds, out, _splits(storage), pq.read_table(_path(storage, "pretraining_set.parquet")))
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
