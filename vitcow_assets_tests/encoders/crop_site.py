"""A small site of real crop videos behind a crop catalog, for the embedding tests: the
catalog rows of ``datasets.synthetic_labels`` (one farm) with each ``crop_path`` a small
H.264 file of its own content (a square moving over a coloured floor, seeded by the crop),
some shorter than the model's frames."""

from pathlib import Path

import pyarrow as pa

from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.media.parquet import write_table
from vitcow_assets_tests.datasets.synthetic_labels import Scene, synthetic_catalog
from vitcow_testbed.videomae_inputs import write_crop


def crop_site(home: Path, tracks: int = 4, day: int = 0, frames=lambda i: 20 if i % 3 else 3) -> pa.Table:
    """Write one video's crops under ``home`` and a catalog of them (``frames(i)`` frames for
    the i-th crop); the catalog (also written at the storage root's catalog path)."""
    catalog = crop_rows(home, tracks, day, frames)
    write_table(StorageRoot(home).catalog_table, catalog)
    return catalog


def crop_rows(home: Path, tracks: int, day: int, frames) -> pa.Table:
    """Catalog rows of one synthetic video (``day`` tells videos apart) with their crop files written."""
    scene = Scene(farms=("FarmA",), cameras=1, videos=1, tracks=tracks, max_clips=2, seed=day, day=day, root=str(home))
    catalog = synthetic_catalog(scene)
    for i, path in enumerate(catalog["crop_path"].to_pylist()):
        write_crop(Path(path), frames(i), seed=1000 * day + i)
    return catalog
