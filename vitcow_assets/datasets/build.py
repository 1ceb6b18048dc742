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

from vitcow_assets.core.settings import setting

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
    """What a dataset holds and how it is written (environment ``VITCOW_DATASET_<FIELD>``;
    ``vitcow dataset build`` flags). ``split_settings`` and ``crop_filter`` hand the pieces
    their share."""

    test_farms: tuple[str, ...] = setting((), "farm(s) held out as the test split, comma-separated", flag="--test-farm")
    val_fraction: float = setting(0.2, "validation share of each class, outside the test farms", flag="--val-fraction")
    seed: int = setting(42, "seed of the validation draw and the subsets", flag="--seed")
    refreeze: bool = setting(False, "draw the test split again (else a dataset keeps the one it was first made with)", flag="--refreeze")
    min_presence: float = setting(0.5, "pre-training set: crops present in at least this share of their frames", flag="--min-present")
    farms: tuple[str, ...] = setting((), "only crops of these farms (comma-separated; none: every farm)")
    cameras: tuple[str, ...] = setting((), "only crops of these cameras (none: every camera)")
    segmenters: tuple[str, ...] = setting((), "only crops of these segmenters, e.g. sam3/0.1.4 (none: every one)")
    day_start: str | None = setting(None, "HH:MM: only crops starting at or after this time of day (with day_end)")
    day_end: str | None = setting(None, "HH:MM: only crops starting before this time of day")
    filter_labelled: bool = setting(False, "apply the crop filters to labelled crops too (else only to the pre-training set)")
    drop_unsure: bool = setting(False, "leave out labels the annotator marked unsure (a crop with only unsure labels is then unused)")
    subset_sizes: tuple[int, ...] = setting((), "efficiency subsets: training-set sizes, comma-separated (none: no subsets)")
    subset_repeats: int = setting(3, "efficiency subsets: seeded repeats of each size")
    subset_cap: bool = setting(False, "efficiency subsets: cap sizes larger than the training split instead of refusing them")
    root: str | None = setting(None, "write list paths relative to this folder (default: absolute paths)")
    hf: bool = setting(True, "also write a Hugging Face datasets index (Parquet)")
    label_folders: bool = setting(False, "also write a folder-per-label layout of hard links")

    def split_settings(self) -> SplitSettings:
        return SplitSettings(self.test_farms, self.val_fraction, self.seed, self.refreeze)

    def crop_filter(self) -> CropFilter:
        return CropFilter(self.min_presence, self.farms or None, self.cameras or None, self.segmenters or None, self.day_start, self.day_end)

    def as_dict(self) -> dict:
        """The settings that decide the dataset's content (``refreeze`` and the output
        options are how it was written, not what it holds)."""
        return {
            "splits": {k: v for k, v in self.split_settings().as_dict().items() if k != "refreeze"},
            "crop_filter": self.crop_filter().as_dict(),
            "filter_labelled": self.filter_labelled,
            "drop_unsure": self.drop_unsure,
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
    filtered = filter_crops(catalog, settings.crop_filter())
    pretrain = pretraining_split(filtered.table, settings.test_farms)
    resolution = resolve_labels(labels, filtered.table if settings.filter_labelled else catalog, taxonomy, trimmed, settings.drop_unsure)
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
