"""The dataset build's steps as the training-set assets keep them between materializations:
each step's result written under the storage root (``footage.layout.DatasetLayout``) by
the asset that makes it and read back, whole, by the assets after it; and the labelling
outputs the build reads (the label snapshot, the trimmed crops), at the layout's paths.

One writer and one reader per result, so what an asset reads back is what ``build_dataset``
hands from step to step (same tables, same reports): the export is the same bytes either way.
Reports are JSON (sorted keys); tables are written by ``media.parquet``. No Dagster here.
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.datasets.build import Described, PretrainingSet
from vitcow_assets.datasets.subsets import Subsets
from vitcow_assets.footage.layout import DatasetLayout, StorageRoot
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.parquet import write_table


def read_label_snapshot(root: StorageRoot) -> pa.Table:
    """The ``behaviour_labels`` snapshot (what the build resolves)."""
    try:
        return pq.read_table(root.label_snapshot)
    except FileNotFoundError:
        raise FileNotFoundError(f"{root.label_snapshot} is missing: materialize behaviour_labels first (vitcow labels snapshot)") from None


def read_trimmed(root: StorageRoot) -> pa.Table | None:
    """The ``trimmed_crops`` table, or None where no segment was ever trimmed."""
    return pq.read_table(root.trimmed_table) if root.trimmed_table.is_file() else None


def _write(table_path: Path, table: pa.Table, report_path: Path, report: dict) -> Path:
    write_table(table_path, table)
    with atomic_file(report_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
    return table_path


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def write_pretraining(layout: DatasetLayout, result: PretrainingSet) -> Path:
    """Step 1's table and report; the table's path."""
    return _write(layout.pretraining_table, result.table, layout.pretraining_report, result.report())


def read_pretraining(layout: DatasetLayout) -> tuple[pa.Table, dict]:
    """Step 1's table and its ``report()``, as written."""
    return pq.read_table(layout.pretraining_table), _report(layout.pretraining_report)


def write_splits(layout: DatasetLayout, table: pa.Table, report: dict) -> Path:
    """Step 2's table and its ``report()``; the table's path."""
    return _write(layout.splits_table, table, layout.splits_report, report)


def read_splits(layout: DatasetLayout) -> pa.Table:
    """Step 2's table (what steps 3 to 5 read)."""
    return pq.read_table(layout.splits_table)


def read_splits_report(layout: DatasetLayout) -> dict:
    """Step 2's ``report()``, as written."""
    return _report(layout.splits_report)


def write_subsets(layout: DatasetLayout, subsets: Subsets | None) -> Path | None:
    """Step 3's table and the parameters that drew it; with None (no subsets asked for) the
    earlier ones are removed. The table's path, or None."""
    if subsets is None:
        layout.subsets_table.unlink(missing_ok=True)
        layout.subsets_report.unlink(missing_ok=True)
        return None
    report = {"sizes": list(subsets.sizes), "repeats": subsets.repeats, "seed": subsets.seed, "notes": list(subsets.notes)}
    return _write(layout.subsets_table, subsets.table, layout.subsets_report, report)


def read_subsets(layout: DatasetLayout) -> Subsets:
    """Step 3's result, as ``write_subsets`` wrote it."""
    meta = _report(layout.subsets_report)
    return Subsets(pq.read_table(layout.subsets_table), tuple(meta["sizes"]), meta["repeats"], meta["seed"], tuple(meta["notes"]))


def write_stats(layout: DatasetLayout, described: Described) -> Path:
    """Step 4's tables and chart (PNG); the chart's path."""
    for name, table in described.stats.tables().items():
        write_table(layout.stats_table(name), table)
    with atomic_file(layout.stats_chart) as tmp:
        tmp.write_bytes(described.chart.png())
    return layout.stats_chart
