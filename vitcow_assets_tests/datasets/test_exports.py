"""The export folder: VideoMAE lists read the way VideoMAE reads them, the Hugging Face
index, hard-linked label folders, dataset.json, byte-identical rebuilds."""

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.datasets.build import DatasetSettings, build_dataset, previous_splits
from vitcow_assets.datasets.exports import DatasetExportError, write_label_folders
from vitcow_assets.datasets.inputs import DatasetInputError
from vitcow_assets_tests.datasets.conftest import SCENE
from vitcow_assets_tests.datasets.readers import read_list
from vitcow_assets_tests.datasets.synthetic_labels import shuffled, synthetic_catalog, synthetic_labels, synthetic_trims

SETTINGS = DatasetSettings(test_farms=("FarmA",), subset_sizes=(40, 80), subset_repeats=2)


def _build(out_dir, catalog, labels, taxonomy, trims, settings=SETTINGS, previous=None):
    return build_dataset(out_dir, catalog, labels, taxonomy, settings, catalog_path="/srv/catalog.parquet", catalog_sha256="c" * 64,
                         code_version="0.1.0+gtest", trimmed=trims, previous=previous)


@pytest.fixture(scope="module")
def built(catalog, labels, taxonomy, trims, tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    return out, _build(out, catalog, labels, taxonomy, trims)


def test_videomae_lists_hold_each_split_with_its_class_index(built, taxonomy):
    out, b = built
    mapping = (out / "class_mapping.txt").read_text().splitlines()
    assert mapping == list(taxonomy.classes)
    for split in ("train", "val", "test"):
        rows = read_list(out / f"{split}.csv")
        table = b.splits.split(split)
        expected = sorted(zip(table["crop_path"].to_pylist(), table["class_index"].to_pylist()))
        assert rows == expected and len(rows) == b.splits.counts()[split] > 0
        assert all(os.path.isabs(p) for p, _ in rows)
        names = dict(zip(table["crop_path"].to_pylist(), table["class_name"].to_pylist()))
        assert all(mapping[i] == names[p] for p, i in rows)
    raw = (out / "train.csv").read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw and not raw.startswith(b"path")


def test_pretraining_lists_carry_the_catalogs_frame_counts(built, catalog):
    out, b = built
    frames = dict(zip(catalog["crop_path"].to_pylist(), catalog["frames"].to_pylist()))
    farms = dict(zip(catalog["crop_path"].to_pylist(), catalog["farm"].to_pylist()))
    train, test = read_list(out / "pretrain_train.csv"), read_list(out / "pretrain_test.csv")
    assert {farms[p] for p, _ in test} == {"FarmA"} and "FarmA" not in {farms[p] for p, _ in train}
    assert all(n == frames[p] for p, n in train + test)
    assert len(train) + len(test) == sum(r >= 0.5 for r in catalog["presence_ratio"].to_pylist())
    assert pq.read_table(out / "pretrain.parquet").num_rows == len(train) + len(test)


def test_subset_lists_are_nested_training_crops(built):
    out, b = built
    train = set(read_list(out / "train.csv"))
    for repeat in (1, 2):
        small, big = (set(read_list(out / "subsets" / f"train_{n}_r{repeat}.csv")) for n in (40, 80))
        assert len(small) == 40 and len(big) == 80 and small < big <= train


def test_dataset_json_names_inputs_settings_and_every_files_hash(built, taxonomy, labels):
    out, b = built
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["catalog"] == {"path": "/srv/catalog.parquet", "sha256": "c" * 64}
    assert doc["labels"]["rows"] == labels.num_rows and len(doc["labels"]["fingerprint"]) == 16
    assert doc["taxonomy"] == {"name": taxonomy.name, "version": taxonomy.version, "fingerprint": taxonomy.fingerprint, "classes": list(taxonomy.classes)}
    assert doc["code_version"] == "0.1.0+gtest" and doc["settings"]["splits"] == {"test_farms": ["FarmA"], "val_fraction": 0.2, "seed": 42}
    assert doc["rows"]["train"] == b.splits.counts()["train"] and doc["paths"] == {"root": None, "relative": False}
    for name, digest in doc["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"dataset.json"}
    assert on_disk == set(doc["files"])
    assert {s["video_id"] for s in doc["sources"]} == set(b.splits.table["video_id"].to_pylist())
    assert doc["report"]["splits"]["rows"] == b.splits.counts()


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rebuilds_are_byte_identical_whatever_the_row_order(built, catalog, labels, taxonomy, trims, tmp_path):
    out, _ = built
    _build(tmp_path / "again", shuffled(catalog), shuffled(labels, 3), taxonomy, shuffled(trims, 4))
    assert _bytes(tmp_path / "again") == _bytes(out)
    # rebuilding in place, frozen against its own splits, changes nothing either
    _build(tmp_path / "again", catalog, labels, taxonomy, trims, previous=previous_splits(tmp_path / "again"))
    assert _bytes(tmp_path / "again") == _bytes(out)


def test_paths_relative_to_a_recorded_root(catalog, labels, taxonomy, trims, tmp_path):
    b = _build(tmp_path / "rel", catalog, labels, taxonomy, trims, dataclasses.replace(SETTINGS, root="/srv/vitcow_home"))
    rows = read_list(tmp_path / "rel" / "train.csv")
    assert all(not os.path.isabs(p) and os.path.join("/srv/vitcow_home", p) in set(b.splits.split("train")["crop_path"].to_pylist()) for p, _ in rows)
    assert json.loads((tmp_path / "rel" / "dataset.json").read_text())["paths"] == {"root": "/srv/vitcow_home", "relative": True}
    with pytest.raises(DatasetInputError, match="is not under the export root '/elsewhere'"):
        _build(tmp_path / "bad", catalog, labels, taxonomy, trims, dataclasses.replace(SETTINGS, root="/elsewhere"))


def test_a_path_with_whitespace_is_refused_and_nothing_is_written(taxonomy, tmp_path):
    catalog = synthetic_catalog(dataclasses.replace(SCENE, root="/srv/vitcow home"))
    labels = synthetic_labels(catalog, taxonomy)
    with pytest.raises(DatasetInputError, match="holds whitespace"):
        _build(tmp_path / "ws", catalog, labels, taxonomy, None)
    assert not (tmp_path / "ws").exists()


def test_hugging_face_index_loads_with_datasets(built, taxonomy, tmp_path, monkeypatch):
    out, b = built
    for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
        table = pq.read_table(out / "hf" / f"{name}.parquet")
        assert table.column_names == ["video", "label", "label_name", "split", "crop_id"]
        assert sorted(table["video"].to_pylist()) == sorted(b.splits.split(split)["crop_path"].to_pylist())
        assert all(taxonomy.classes[i] == n for i, n in zip(table["label"].to_pylist(), table["label_name"].to_pylist()))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_dir=str(out / "hf"), cache_dir=str(tmp_path / "cache"))
    assert {k: v.num_rows for k, v in loaded.items()} == {"train": b.splits.counts()["train"], "validation": b.splits.counts()["val"], "test": b.splits.counts()["test"]}
    classes = (out / "class_mapping.txt").read_text().splitlines()
    typed = loaded.cast_column("label", datasets.ClassLabel(names=classes)).cast_column("video", datasets.Video(decode=False))
    row = typed["validation"][0]
    assert typed["validation"].features["label"].int2str(row["label"]) == row["label_name"]
    assert row["video"]["path"] == pq.read_table(out / "hf" / "validation.parquet")["video"][0].as_py()


def _real_files(taxonomy, root: Path):
    catalog = synthetic_catalog(dataclasses.replace(SCENE, root=str(root)))
    labels = synthetic_labels(catalog, taxonomy)
    trims = synthetic_trims(labels, root=str(root))
    for path in catalog["crop_path"].to_pylist() + trims["trimmed_path"].to_pylist():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(path.encode())
    return catalog, labels, trims


def test_label_folders_are_hard_links_one_per_crop(taxonomy, tmp_path):
    catalog, labels, trims = _real_files(taxonomy, tmp_path / "home")
    b = _build(tmp_path / "out", catalog, labels, taxonomy, trims, dataclasses.replace(SETTINGS, label_folders=True))
    links = sorted(p for p in (tmp_path / "out" / "folders").rglob("*") if p.is_file())
    assert len(links) == b.splits.table.num_rows == b.exported.rows["folder_links"]
    by_name = {f"{r['video_id']}_{r['crop_id']}.mp4": r for r in b.splits.table.to_pylist()}
    for link in links:
        row = by_name[link.name]
        assert link.parent.parent.name == row["split"] and link.parent.name == row["class_name"]
        assert os.path.samefile(link, row["crop_path"]) and os.stat(link).st_nlink == 2  # linked, not copied
    # a later export without the layout takes it away
    _build(tmp_path / "out", catalog, labels, taxonomy, trims)
    assert not (tmp_path / "out" / "folders").exists()


def test_label_folders_across_file_systems_are_an_error_not_a_copy(taxonomy, tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second writable file system (/dev/shm) here")
    catalog, labels, trims = _real_files(taxonomy, tmp_path / "home")
    table = pa.Table.from_pylist([{"crop_id": "a1", "crop_path": catalog["crop_path"][0].as_py(), "class_index": 0, "split": "train", "video_id": "v"}])
    scratch = shm / f"vitcow-test-{os.getpid()}"
    try:
        with pytest.raises(DatasetExportError, match="on another file system"):
            write_label_folders(scratch / "folders", table, taxonomy.classes)
        assert not (scratch / "folders").exists()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
