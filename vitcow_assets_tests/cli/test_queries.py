"""`vitcow tracks` and `vitcow provenance` at farm scale: a video found by its path through
the registry's index (no record listed), a crop id found in the catalog a column at a time
and past it only in the manifests the catalog does not reflect."""

import argparse

import pyarrow.parquet as pq
import pytest

from vitcow_assets.cli.queries import cmd_tracks, video_key
from vitcow_assets.core.catalog import catalog_rows
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.registry import Registry
from vitcow_assets.lineage.records import find_by_id
from vitcow_assets.stages.catalog import write_catalog
from vitcow_testbed.synthetic_registry import key_of, register_videos, source_path, write_video_tables


@pytest.fixture()
def root(tmp_path, monkeypatch) -> StorageRoot:
    home = tmp_path / "home"
    register_videos(home, range(6))
    monkeypatch.setenv("VITCOW_HOME", str(home))
    return StorageRoot(home)


def no_listing(monkeypatch) -> None:
    def listed(self):
        raise AssertionError("every registry record read")

    monkeypatch.setattr(Registry, "all", listed)


def test_a_video_is_found_by_its_path_or_key_without_reading_every_record(root, monkeypatch, capsys):
    no_listing(monkeypatch)
    assert video_key(source_path(4), root) == key_of(4)
    assert video_key(source_path(4).replace("/farm/", "/farm/./"), root) == key_of(4)  # another spelling, normalised
    assert video_key(key_of(2), root) == key_of(2)
    assert video_key("/farm/elsewhere.mp4", root) is None
    assert cmd_tracks(argparse.Namespace(video=source_path(3), track=None, json=False)) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["track", "prompt", "first", "last", "frames", "clips"]


def test_a_crop_id_past_the_catalog_is_found_in_the_manifests_the_catalog_does_not_reflect(root, monkeypatch):
    write_catalog(root)
    write_video_tables(root.home, 5, clips=1, objects=1, revision=2)  # re-run since the catalog: new ids
    new_id = catalog_rows(pq.read_table(root.video(key_of(5)).crops_table))["crop_id"][0].as_py()
    read, real = [], pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda path, *a, **k: read.append(str(path)) or real(path, *a, **k))
    row, count = find_by_id(root, new_id[:8])
    assert count == 1 and row["video_id"] == key_of(5) and row["crop_id"] == new_id
    manifests = [p for p in read if p.startswith(str(root.videos))]
    assert manifests == [str(root.video(key_of(5)).crops_table)]  # the other five videos' manifests were not read
    assert find_by_id(root, "0123456789") == (None, 0)
