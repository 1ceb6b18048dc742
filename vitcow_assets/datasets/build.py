"""One dataset build, start to end: filter the catalog, resolve the labels, split (frozen
against the previous splits), draw the efficiency subsets, compute the statistics and
write the export. What ``vitcow dataset build`` and the Dagster assets call.

The pieces stay separate (``selection``, ``splits``, ``subsets``, ``stats``, ``exports``)
so that assets can materialize them one by one; this module only strings them together.
The crop filter decides the pre-training set; labelled crops are used whatever their
presence ratio unless ``filter_labelled`` is set (a person looked at them).
"""

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.taxonomy import Taxonomy
from vitcow_assets.datasets.chart import Chart, class_chart
from vitcow_assets.datasets.exports import Exported, export_dataset
from vitcow_assets.datasets.lineage import Lineage
from vitcow_assets.datasets.selection import CropFilter, Resolution, filter_crops, resolve_labels
from vitcow_assets.datasets.splits import SplitResult, SplitSettings, behaviour_splits, pretraining_split
from vitcow_assets.datasets.stats import DatasetStats, dataset_stats
from vitcow_assets.datasets.subsets import Subsets, efficiency_subsets


@dataclasses.dataclass(frozen=True)
class DatasetSettings:
    test_farms: tuple[str, ...]
    val_fraction: float = 0.2
    seed: int = 42
    refreeze: bool = False
    crop_filter: CropFilter = CropFilter()
    filter_labelled: bool = False
    subset_sizes: tuple[int, ...] = ()
    subset_repeats: int = 3
    subset_cap: bool = False
    #: write paths relative to this folder (None: absolute)
    root: str | None = None
    hf: bool = True
    label_folders: bool = False

    def split_settings(self) -> SplitSettings:
        return SplitSettings(self.test_farms, self.val_fraction, self.seed, self.refreeze)

    def as_dict(self) -> dict:
        """The settings that decide the dataset's content (``refreeze`` and the output
        options are how it was written, not what it holds)."""
        return {
            "splits": {k: v for k, v in self.split_settings().as_dict().items() if k != "refreeze"},
            "crop_filter": self.crop_filter.as_dict(),
            "filter_labelled": self.filter_labelled,
            "subsets": {"sizes": sorted(self.subset_sizes), "repeats": self.subset_repeats, "cap": self.subset_cap} if self.subset_sizes else None,
        }


@dataclasses.dataclass(frozen=True)
class Built:
    resolution: Resolution
    splits: SplitResult
    pretrain: pa.Table
    subsets: Subsets | None
    stats: DatasetStats
    chart: Chart
    exported: Exported
    #: crops the filter kept out of the pre-training set, per filter
    dropped_by_filter: dict[str, int]

    @property
    def report(self) -> dict:
        return self.exported.manifest["report"]


def build_report(dropped: dict[str, int], resolution: Resolution, splits: SplitResult, subsets: Subsets | None, stats: DatasetStats) -> dict:
    """What ``dataset.json`` reports of a build (the same labels and settings give the same report)."""
    return {
        "pretrain_filter_dropped": dropped,
        "labels": resolution.summary(),
        "splits": splits.report(),
        "subsets": list(subsets.notes) if subsets is not None else None,
        "stats": stats.summary(),
    }


def previous_splits(out_dir) -> pa.Table | None:
    """The splits table an earlier export into ``out_dir`` wrote (what freezes the test split)."""
    path = Path(out_dir) / "splits.parquet"
    return pq.read_table(path) if path.is_file() else None


def build_dataset(out_dir, catalog: pa.Table, labels: pa.Table, taxonomy: Taxonomy, settings: DatasetSettings, *,
                  catalog_path: str, catalog_sha256: str, code_version: str, trimmed: pa.Table | None = None,
                  previous: pa.Table | None = None) -> Built:
    """Build and export one dataset into ``out_dir`` (see the module docstring)."""
    filtered = filter_crops(catalog, settings.crop_filter)
    pretrain = pretraining_split(filtered.table, settings.test_farms)
    resolution = resolve_labels(labels, filtered.table if settings.filter_labelled else catalog, taxonomy, trimmed)
    splits = behaviour_splits(resolution.crops, settings.split_settings(), previous)
    subsets = None
    if settings.subset_sizes:
        subsets = efficiency_subsets(splits.split("train"), settings.subset_sizes, settings.subset_repeats, settings.seed, settings.subset_cap)
    stats = dataset_stats(splits.table, taxonomy.classes, labels, taxonomy)
    chart = class_chart(stats.class_counts(), taxonomy.classes)
    lineage = Lineage.of(catalog_path, catalog_sha256, labels, taxonomy, code_version, trimmed, settings.as_dict())
    exported = export_dataset(
        out_dir, splits.table, taxonomy, lineage, pretrain=pretrain, subsets=subsets, chart=chart,
        report=build_report(filtered.dropped, resolution, splits, subsets, stats),
        root=settings.root, hf=settings.hf, label_folders=settings.label_folders,
    )
    return Built(resolution, splits, pretrain, subsets, stats, chart, exported, filtered.dropped)
