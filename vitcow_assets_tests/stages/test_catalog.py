"""The crop catalog rebuilt video by video: the bytes of the catalog built whole (in one
row group and in several), only new or changed videos' manifests read, a catalog that is
not what its index says rebuilt whole, repeated ids refused with nothing written."""

import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.core.catalog import catalog_rows, merge_catalogs
from vitcow_assets.footage.catalog_index import index_path, manifests_past_the_catalog, read_index
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.registry import Registry
from vitcow_assets.media.parquet import WRITER_OPTIONS, write_table
from vitcow_assets.stages.catalog import write_catalog
from vitcow_testbed.synthetic_registry import key_of, register_videos, write_video_tables


def whole(root: StorageRoot, path, row_group_size: int | None = None) -> bytes:
    """The catalog as the code before built it: every registered video's manifests read,
    merged in memory, written in one call."""
    parts = []
    for registration in Registry(root).all():
        layout = root.video(registration.key)
        if layout.crops_table.is_file():
            clips = pq.read_table(layout.clips_table, columns=["clip_id", "clip_path"]) if layout.clips_table.is_file() else None
            parts.append(catalog_rows(pq.read_table(layout.crops_table), clips))
    table = merge_catalogs(parts)
    if row_group_size is None:
        write_table(path, table)
    else:
        pq.write_table(table, path, row_group_size=row_group_size, **WRITER_OPTIONS)
    return path.read_bytes()


@pytest.fixture()
def root(tmp_path) -> StorageRoot:
    home = tmp_path / "home"
    register_videos(home, [3, 0, 7, 1, 5], clips=2, objects=3)  # registered out of order
    return StorageRoot(home)


def test_the_catalog_has_the_bytes_of_the_catalog_built_whole(root, tmp_path):
    summary = write_catalog(root)
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "whole.parquet")
    assert summary.rows == 30 and summary.videos == sorted(key_of(n) for n in (0, 1, 3, 5, 7)) and summary.videos_read == 5
    assert summary.farms == ["FARM_0", "FARM_1", "FARM_2", "FARM_3"]
    assert pq.ParquetFile(root.catalog_table).metadata.num_row_groups == 1

    write_catalog(root, row_group_rows=7)  # row groups that cut through videos
    assert pq.ParquetFile(root.catalog_table).metadata.num_row_groups == 5
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "groups.parquet", row_group_size=7)


def test_only_new_and_changed_videos_are_read_and_the_bytes_stay_those_of_a_whole_build(root, tmp_path):
    first = write_catalog(root, row_group_rows=7)
    again = write_catalog(root, row_group_rows=7)
    assert again.videos_read == 0 and again.fingerprint == first.fingerprint
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "same.parquet", row_group_size=7)

    register_videos(root.home, [4], clips=1, objects=2)  # new, between two others
    register_videos(root.home, [3], clips=3, objects=1, revision=2)  # new bytes, other crops
    (root.registry / f"{key_of(7)}.json").unlink()  # no longer registered
    changed = write_catalog(root, row_group_rows=7)
    assert changed.videos_read == 2 and changed.videos == sorted(key_of(n) for n in (0, 1, 3, 4, 5))
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "changed.parquet", row_group_size=7)
    assert changed.fingerprint != first.fingerprint


def test_the_fingerprint_follows_crop_ids_and_paths_only(root):
    first = write_catalog(root)
    manifest = pq.read_table(root.video(key_of(1)).crops_table)
    frames = manifest.column("frames_present").to_pylist()
    write_table(root.video(key_of(1)).crops_table, manifest.set_column(manifest.schema.get_field_index("frames_present"), "frames_present", [[f - 1 for f in frames]]))
    second = write_catalog(root)
    assert second.videos_read == 1 and second.fingerprint == first.fingerprint  # same crops, other presence


def test_a_catalog_that_is_not_what_its_index_says_is_rebuilt_whole(root, tmp_path):
    write_catalog(root)
    older = tmp_path / "older.parquet"
    shutil.copy2(root.catalog_table, older)
    register_videos(root.home, [9])
    write_catalog(root)
    os.replace(older, root.catalog_table)  # an older catalog put back: the index is not its
    assert read_index(root) is None
    rebuilt = write_catalog(root)
    assert rebuilt.videos_read == 6
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "whole.parquet")


def test_the_catalog_and_its_index_say_which_manifests_to_read_past_it(root):
    assert len(manifests_past_the_catalog(root)) == 5  # no catalog yet: every manifest
    write_catalog(root)
    assert manifests_past_the_catalog(root) == []
    write_video_tables(root.home, 5, clips=1, objects=1, revision=2)  # re-run since the catalog
    write_video_tables(root.home, 11)  # processed, not registered: never in the catalog
    assert manifests_past_the_catalog(root) == [root.video(key_of(5)).crops_table, root.video(key_of(11)).crops_table]


def test_repeated_crop_ids_are_refused_and_the_catalog_left_as_it_was(root):
    write_catalog(root)
    before = root.catalog_table.read_bytes()
    copy = root.video(key_of(0)).crops_table
    other = pq.read_table(root.video(key_of(1)).crops_table)
    write_table(copy, other.set_column(other.schema.get_field_index("video_id"), "video_id", [[key_of(0)] * other.num_rows]))
    with pytest.raises(ValueError, match="crop ids repeat across the catalog"):
        write_catalog(root)
    assert root.catalog_table.read_bytes() == before


def test_a_manifest_naming_another_video_is_built_whole_as_before(root, tmp_path):
    manifest = pq.read_table(root.video(key_of(5)).crops_table)
    write_table(root.video(key_of(5)).crops_table, manifest.set_column(manifest.schema.get_field_index("video_id"), "video_id", [["zz"] * manifest.num_rows]))
    summary = write_catalog(root)
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "whole.parquet")
    assert summary.videos_read == 5 and not index_path(root).exists()


def test_a_crash_between_the_catalog_and_its_index_leaves_an_index_that_counts_for_nothing(root, tmp_path, monkeypatch):
    import vitcow_assets.stages.catalog as stage

    write_catalog(root)
    register_videos(root.home, [2])
    write_video_tables(root.home, 5, clips=1, objects=1, revision=2)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed after the catalog was renamed into place, before its index")

    monkeypatch.setattr(stage, "write_index", crash)
    with pytest.raises(KeyboardInterrupt):
        write_catalog(root)
    monkeypatch.undo()
    assert read_index(root) is None  # the index left there is the old catalog's
    assert len(manifests_past_the_catalog(root)) == 6  # so readers look at every manifest
    rebuilt = write_catalog(root)
    assert rebuilt.videos_read == 6
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "whole.parquet")


def test_a_manifest_rewritten_with_the_same_size_and_time_is_read_again(root, tmp_path):
    crops = root.video(key_of(1)).crops_table
    manifest = pq.read_table(crops)
    write_table(crops, manifest)  # as read back, so that the rewrite below differs in the prompt only
    write_catalog(root)
    before = crops.stat()
    at = manifest.schema.get_field_index("prompt")
    write_table(crops, manifest.set_column(at, manifest.schema.field(at), pa.array(["cat"] * manifest.num_rows, manifest.schema.field(at).type)))
    assert crops.stat().st_size == before.st_size, "the test needs a rewrite of the same size"
    os.utime(crops, ns=(before.st_atime_ns, before.st_mtime_ns))  # within one tick of the clock
    assert manifests_past_the_catalog(root) == [crops]
    again = write_catalog(root)
    assert again.videos_read == 1
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "whole.parquet")
    assert "cat" in pq.read_table(root.catalog_table, columns=["prompt"])["prompt"].to_pylist()


def test_an_index_written_after_another_run_replaced_the_catalog_counts_for_nothing(root, tmp_path, monkeypatch):
    import vitcow_assets.stages.catalog as stage

    write_catalog(root)
    other = tmp_path / "other.parquet"
    shutil.copy2(root.catalog_table, other)  # another run's catalog, renamed into place ...
    register_videos(root.home, [2])
    real = stage.write_index

    def late(*args, **kwargs):
        os.replace(other, root.catalog_table)  # ... between this run's rename and its index
        real(*args, **kwargs)

    monkeypatch.setattr(stage, "write_index", late)
    write_catalog(root)
    assert read_index(root) is None  # this run's index describes a catalog no longer there
    monkeypatch.undo()
    assert write_catalog(root).videos_read == 6
    assert root.catalog_table.read_bytes() == whole(root, tmp_path / "whole.parquet")
