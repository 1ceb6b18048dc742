"""The steps of a dataset build, each one function over tables, and ``build_dataset`` that
runs them all in one call.

The Dagster assets (``defs.datasets``, which ``vitcow dataset build`` materializes) call the
same step functions one per asset, keeping each result between materializations with
``datasets.staged``; ``build_dataset`` hands each result straight to the next step. Both
therefore write the same bytes from the same inputs and settings.

1. ``select_pretraining`` (asset ``pretraining_set``): the crop filter over the catalog, and
   the held-out farm(s) as test: VideoMAE's pre-training lists.
2. ``split_labelled`` (``behaviour_splits``): the labels resolved to one class per crop and
   split train/val/test by track, frozen against the previous splits.
3. ``draw_subsets`` (``efficiency_subsets``): nested training subsets, when sizes are set.
4. ``describe_splits`` (``dataset_stats``): the statistics and the chart.
5. ``write_export`` (``dataset_export``): the export folder and its ``dataset.json``, whose
   report ``dataset_report`` assembles from the steps' reports.

The pieces themselves stay in their modules (``selection``, ``splits``, ``subsets``,
``stats``, ``exports``). The crop filter decides the pre-training set; labelled crops are
used whatever their presence ratio unless ``filter_labelled`` is set (a person looked at them).
"""

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
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
class PretrainingSet:
    """Step 1's result: every catalog crop the filter keeps, with ``split`` (train, or test
    for a held-out farm), and how many crops each filter removed."""

    table: pa.Table
    dropped: dict[str, int]

    def counts(self) -> dict[str, int]:
        return {s: _count(self.table, s) for s in ("train", "test")}

    def report(self) -> dict:
        """What ``dataset.json`` reports of this step."""
        return {"pretrain_filter_dropped": self.dropped}


@dataclasses.dataclass(frozen=True)
class LabelledSplits:
    """Step 2's result: the labels resolved to one class per crop (``resolution``) and those
    crops split (``result``; its ``table`` is what steps 3 to 5 read)."""

    resolution: Resolution
    result: SplitResult

    @property
    def table(self) -> pa.Table:
        return self.result.table

    def report(self) -> dict:
        """What ``dataset.json`` reports of this step."""
        return {"labels": self.resolution.summary(), "splits": self.result.report()}


@dataclasses.dataclass(frozen=True)
class Described:
    """Step 4's result: the statistics of the splits and their chart."""

    stats: DatasetStats
    chart: Chart


def _count(table: pa.Table, split: str) -> int:
    return int(pc.sum(pc.equal(table["split"], split)).as_py() or 0)


def select_pretraining(catalog: pa.Table, settings: DatasetSettings) -> PretrainingSet:
    """Step 1: the catalog crops that pass ``settings.crop_filter()``, each marked ``train``,
    or ``test`` when its farm is one of ``settings.test_farms``."""
    filtered = filter_crops(catalog, settings.crop_filter())
    return PretrainingSet(pretraining_split(filtered.table, settings.test_farms), filtered.dropped)


def split_labelled(catalog: pa.Table, labels: pa.Table, taxonomy: Taxonomy, settings: DatasetSettings,
                   trimmed: pa.Table | None = None, previous: pa.Table | None = None) -> LabelledSplits:
    """Step 2: ``labels`` (the label snapshot) resolved through ``taxonomy`` to one class per
    crop of ``catalog`` (filtered first only with ``filter_labelled``), trimmed copies where a
    segment is marked, then split by track; ``previous`` (``previous_splits``) freezes the
    splits it assigned unless ``refreeze``."""
    source = filter_crops(catalog, settings.crop_filter()).table if settings.filter_labelled else catalog
    resolution = resolve_labels(labels, source, taxonomy, trimmed, settings.drop_unsure)
    return LabelledSplits(resolution, behaviour_splits(resolution.crops, settings.split_settings(), previous))


def draw_subsets(splits: pa.Table, settings: DatasetSettings) -> Subsets | None:
    """Step 3: the efficiency subsets of the training rows of ``splits`` (step 2's table);
    None when ``settings.subset_sizes`` is empty."""
    if not settings.subset_sizes:
        return None
    train = splits.filter(pc.equal(splits["split"], "train"))
    return efficiency_subsets(train, settings.subset_sizes, settings.subset_repeats, settings.seed, settings.subset_cap)


def describe_splits(splits: pa.Table, labels: pa.Table, taxonomy: Taxonomy) -> Described:
    """Step 4: statistics of ``splits`` (step 2's table) per split, farm and class, with the
    annotators' agreement from ``labels``, and the class chart."""
    stats = dataset_stats(splits, taxonomy.classes, labels, taxonomy)
    return Described(stats, class_chart(stats.class_counts(), taxonomy.classes))


def dataset_report(pretraining: dict, labelled: dict, subsets: Subsets | None, stats: DatasetStats) -> dict:
    """What ``dataset.json`` reports of a build, from step 1's and step 2's ``report()``
    (as returned, or as ``datasets.staged`` read them back), the subsets and the statistics."""
    return {**pretraining, **labelled, "subsets": list(subsets.notes) if subsets is not None else None, "stats": stats.summary()}


def write_export(out_dir, splits: pa.Table, taxonomy: Taxonomy, lineage: Lineage, settings: DatasetSettings, *,
                 pretrain: pa.Table, subsets: Subsets | None, described: Described, report: dict) -> Exported:
    """Step 5: the export folder (``exports.export_dataset``) with the output options of
    ``settings`` (``root``, ``hf``, ``label_folders``)."""
    return export_dataset(
        out_dir, splits, taxonomy, lineage, pretrain=pretrain, subsets=subsets, chart=described.chart,
        report=report, root=settings.root, hf=settings.hf, label_folders=settings.label_folders,
    )


@dataclasses.dataclass(frozen=True)
class Built:
    """Every step's result of ``build_dataset``."""

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


def previous_splits(out_dir) -> pa.Table | None:
    """The splits table an earlier export into ``out_dir`` wrote (what freezes the test split)."""
    path = Path(out_dir) / "splits.parquet"
    return pq.read_table(path) if path.is_file() else None


def build_dataset(out_dir, catalog: pa.Table, labels: pa.Table, taxonomy: Taxonomy, settings: DatasetSettings, *,
                  catalog_path: str, catalog_sha256: str, code_version: str, trimmed: pa.Table | None = None,
                  previous: pa.Table | None = None) -> Built:
    """Every step in turn, each result handed straight to the next, and the export written
    into ``out_dir`` (see the module docstring)."""
    pretraining = select_pretraining(catalog, settings)
    labelled = split_labelled(catalog, labels, taxonomy, settings, trimmed, previous)
    subsets = draw_subsets(labelled.table, settings)
    described = describe_splits(labelled.table, labels, taxonomy)
    lineage = Lineage.of(catalog_path, catalog_sha256, labels, taxonomy, code_version, trimmed, settings.as_dict())
    report = dataset_report(pretraining.report(), labelled.report(), subsets, described.stats)
    exported = write_export(out_dir, labelled.table, taxonomy, lineage, settings, pretrain=pretraining.table, subsets=subsets,
                            described=described, report=report)
    return Built(labelled.resolution, labelled.result, pretraining.table, subsets, described.stats, described.chart, exported, pretraining.dropped)
