"""The build's steps as the assets keep them: each result written at the storage layout's
paths and read back equal to what ``build_dataset`` hands to the next step."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.datasets.build import DatasetSettings, describe_splits, draw_subsets, select_pretraining, split_labelled
from vitcow_assets.datasets.staged import (
    read_label_snapshot, read_pretraining, read_splits, read_splits_report, read_subsets, read_trimmed, write_pretraining, write_splits,
    write_stats, write_subsets,
)
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.media.parquet import write_table

SETTINGS = DatasetSettings(test_farms=("FarmA",), subset_sizes=(40, 80), subset_repeats=2, min_presence=0.6)


@pytest.fixture(scope="module")
def steps(catalog, labels, taxonomy, trims, tmp_path_factory):
    """Each step's result, from the catalog as the assets read it (from its Parquet file:
    ``recorded_at`` comes back in milliseconds)."""
    path = tmp_path_factory.mktemp("catalog") / "crops.parquet"
    write_table(path, catalog)
    catalog = pq.read_table(path)
    labelled = split_labelled(catalog, labels, taxonomy, SETTINGS, trims)
    return select_pretraining(catalog, SETTINGS), labelled, draw_subsets(labelled.table, SETTINGS)


def test_each_step_reads_back_as_it_was_written(steps, tmp_path):
    pretraining, labelled, subsets = steps
    layout = StorageRoot(tmp_path).datasets
    assert write_pretraining(layout, pretraining) == layout.pretraining_table
    table, report = read_pretraining(layout)
    assert table.equals(pretraining.table) and report == pretraining.report() and report["pretrain_filter_dropped"]["presence_ratio"] > 0
    write_splits(layout, labelled.table, labelled.report())
    assert read_splits(layout).equals(labelled.table)
    assert read_splits_report(layout) == labelled.report()
    write_subsets(layout, subsets)
    back = read_subsets(layout)
    assert back.table.equals(subsets.table) and (back.sizes, back.repeats, back.seed, back.notes) == (subsets.sizes, subsets.repeats, subsets.seed, subsets.notes)


def test_subsets_turned_off_remove_the_earlier_ones(steps, tmp_path):
    layout = StorageRoot(tmp_path).datasets
    write_subsets(layout, steps[2])
    assert layout.subsets_table.is_file() and layout.subsets_report.is_file()
    assert draw_subsets(steps[1].table, DatasetSettings()) is None
    assert write_subsets(layout, None) is None
    assert not layout.subsets_table.exists() and not layout.subsets_report.exists()


def test_statistics_and_chart_land_at_the_layouts_paths(steps, labels, taxonomy, tmp_path):
    layout = StorageRoot(tmp_path).datasets
    described = describe_splits(steps[1].table, labels, taxonomy)
    assert write_stats(layout, described) == layout.stats_chart
    assert layout.stats_chart.read_bytes() == described.chart.png() and layout.stats_chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.stem for p in layout.stats_dir.glob("*.parquet")} == set(described.stats.tables())


def test_the_label_inputs_come_from_the_layout_and_a_missing_snapshot_says_what_to_run(tmp_path):
    root = StorageRoot(tmp_path)
    assert read_trimmed(root) is None  # nothing trimmed yet is not an error
    with pytest.raises(FileNotFoundError, match="behaviour_labels.parquet is missing: materialize behaviour_labels"):
        read_label_snapshot(root)
    root.labels_dir.mkdir()
    pq.write_table(pa.table({"crop_id": ["a"]}), root.label_snapshot)
    assert read_label_snapshot(root)["crop_id"].to_pylist() == ["a"]
