"""The index of dataset builds (``lineage.builds``): a build is recorded under the sha256 of
its ``dataset.json``, names each crop's lists, split and class, keeps older builds of the
same folder (no longer current), and answers a fingerprint prefix."""

import hashlib
import json

import pyarrow as pa

from vitcow_assets.lineage.builds import build_members, builds_of, dataset_fingerprint, record_build, recorded_builds


def _export(out, classes=("Lying", "Standing"), rows=None):
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset.json").write_text(json.dumps({"taxonomy": {"classes": list(classes)}, "rows": rows or {}}, sort_keys=True))
    splits = pa.table({"crop_id": ["a1", "b2", "c3"], "split": ["train", "val", "test"], "class_name": ["Lying", "Standing", "Lying"],
                       "crop_path": ["/c/a1.mp4", "/t/b2_f00002-00005.mp4", "/c/c3.mp4"], "extra": [1, 2, 3]})
    pretrain = pa.table({"crop_id": ["a1", "c3", "d4"], "split": ["train", "test", "train"], "crop_path": ["/c/a1.mp4", "/c/c3.mp4", "/c/d4.mp4"]})
    return splits, pretrain


def test_a_build_is_recorded_by_its_dataset_json_and_lists_each_crop(tmp_path):
    out, index = tmp_path / "v1", tmp_path / "index"
    splits, pretrain = _export(out)
    fingerprint = record_build(index, out, splits, pretrain)
    assert fingerprint == hashlib.sha256((out / "dataset.json").read_bytes()).hexdigest()[:16] == dataset_fingerprint(out)
    assert recorded_builds(index) == [fingerprint]
    (a1,) = builds_of(index, "a1")
    assert a1 == {"fingerprint": fingerprint, "out_dir": str(out), "dataset_json": str(out / "dataset.json"), "current": True,
                  "lists": ["pretrain_train.csv", "train.csv"], "split": "train", "class_name": "Lying", "paths": ["/c/a1.mp4"]}
    (b2,) = builds_of(index, "b2")
    assert (b2["lists"], b2["split"], b2["paths"]) == (["val.csv"], "val", ["/t/b2_f00002-00005.mp4"])
    (d4,) = builds_of(index, "d4")
    assert (d4["lists"], d4["split"], d4["class_name"]) == (["pretrain_train.csv"], None, None)
    assert builds_of(index, "zz") == [] and builds_of(tmp_path / "nowhere", "a1") == []
    bytes_before = (index / f"{fingerprint}.parquet").read_bytes()
    assert record_build(index, out, splits, pretrain) == fingerprint and (index / f"{fingerprint}.parquet").read_bytes() == bytes_before


def test_a_later_build_into_the_same_folder_keeps_the_first_one_as_no_longer_current(tmp_path):
    out, index = tmp_path / "v1", tmp_path / "index"
    first = record_build(index, out, *_export(out))
    second = record_build(index, out, *_export(out, rows={"train": 1}))
    assert first != second and recorded_builds(index) == sorted([first, second])
    found = {b["fingerprint"]: b["current"] for b in builds_of(index, "c3")}
    assert found == {first: False, second: True}


def test_members_of_a_build_by_fingerprint_prefix_and_split(tmp_path):
    out, index = tmp_path / "v1", tmp_path / "index"
    fingerprint = record_build(index, out, *_export(out))
    assert build_members(index, fingerprint[:6]) == {"a1": ["pretrain_train.csv", "train.csv"], "b2": ["val.csv"],
                                                      "c3": ["pretrain_test.csv", "test.csv"], "d4": ["pretrain_train.csv"]}
    assert build_members(index, fingerprint, "test") == {"c3": ["pretrain_test.csv", "test.csv"]}
    assert build_members(index, "ffff" if not fingerprint.startswith("ffff") else "0000") is None
    assert build_members(index, "*") is None and build_members(index, "") is None
