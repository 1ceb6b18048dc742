"""From footage to a VideoMAE-ready folder: the pipeline (motion backend) on synthetic
videos of three farms (``FARM/D01/<stamp>_D01.mp4``), the catalog from its crops
manifests, fabricated labels (one Delete, one double label, one marked segment with its
trimmed copy), the export; then the listed files are decoded and their frames counted."""

import dataclasses
import json
import os
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.core.catalog import catalog_rows, merge_catalogs
from vitcow_assets.core.taxonomy import parse_taxonomy
from vitcow_assets.datasets.build import DatasetSettings, build_dataset, previous_splits
from vitcow_assets.datasets.selection import CropFilter
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.labelling.taxonomy_file import default_taxonomy_text
from vitcow_assets.media.video import VideoWriter, iter_frames, probe_video
from vitcow_assets_tests.datasets.readers import read_list
from vitcow_assets_tests.helpers import materialize_partition, register
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, write_video

FARMS = ("FarmA", "FarmB", "FarmC")
SEGMENT = (2, 11)


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Each farm's video: 160 frames (two consecutive clips), two animals (two tracks)."""
    home = tmp_path_factory.mktemp("home")
    landing = tmp_path_factory.mktemp("landing")
    manifests = []
    with dg.instance_for_test() as instance:
        for day, farm in enumerate(FARMS, start=1):
            path = landing / farm / "D01" / f"202502{day:02d}0600_D01.mp4"
            path.parent.mkdir(parents=True)
            # different bytes per farm (the same bytes would be the same crops)
            objects = tuple(dataclasses.replace(o, start=(o.start[0] + 12 * day, o.start[1])) for o in DEFAULT_OBJECTS)
            write_video(path, frames=160, objects=objects)
            key = register(path, home, instance)
            assert materialize_partition(key, home, instance).success
            manifests.append(home / "videos" / key / "crops" / "crops.parquet")
    catalog = merge_catalogs([catalog_rows(pq.read_table(m)) for m in manifests])
    catalog_path = home / "catalog.parquet"
    pq.write_table(catalog, catalog_path)
    return {"home": home, "catalog": catalog, "catalog_path": catalog_path}


def _trim(crop_path: str, out: Path) -> int:
    """A trimmed copy of crop frames SEGMENT (inclusive), as the trimming stage cuts it."""
    info = probe_video(crop_path)
    with VideoWriter(out, info.width, info.height, info.fps) as writer:
        for _, rgb in iter_frames(crop_path, range(SEGMENT[0], SEGMENT[1] + 1)):
            writer.write(rgb)
    return writer.frames


def _labels(catalog: pa.Table, home: Path):
    """Track 0 of every video Standing, the other Lying; FarmB's first Lying crop Delete;
    a second annotator agreeing on FarmC's first crop; FarmC's last crop Standing_up with a
    marked segment, trimmed."""
    rows, trims = [], []
    crops = sorted(catalog.to_pylist(), key=lambda r: (r["farm"], r["clip_id"], r["object_id"]))
    track_zero = {r["video_id"]: min(x["track_id"] for x in crops if x["video_id"] == r["video_id"]) for r in crops}
    for r in crops:
        label = "Standing" if r["track_id"] == track_zero[r["video_id"]] else "Lying"
        rows.append({"crop_id": r["crop_id"], "label": label, "annotator": "ann1", "start_frame": None, "end_frame": None})
    farm_rows = lambda farm: [i for i, r in enumerate(crops) if r["farm"] == farm]  # noqa: E731
    deleted = next(i for i in farm_rows("FarmB") if rows[i]["label"] == "Lying")
    rows[deleted]["label"] = "Delete"
    first_c, last_c = farm_rows("FarmC")[0], farm_rows("FarmC")[-1]
    rows.append({**rows[first_c], "annotator": "ann2"})
    rows[last_c].update(label="Standing_up", start_frame=SEGMENT[0], end_frame=SEGMENT[1])
    out = home / "trimmed" / f"{crops[last_c]['crop_id']}.mp4"
    frames = _trim(crops[last_c]["crop_path"], out)
    trims.append({"crop_id": crops[last_c]["crop_id"], "start_frame": SEGMENT[0], "end_frame": SEGMENT[1], "trimmed_path": str(out), "frames": frames})
    return pa.Table.from_pylist(rows), pa.Table.from_pylist(trims), crops[deleted]["crop_id"], str(out)


@pytest.fixture(scope="module")
def exported(footage, tmp_path_factory):
    taxonomy = parse_taxonomy(default_taxonomy_text(), "default taxonomy")
    labels, trims, deleted, trimmed_path = _labels(footage["catalog"], footage["home"])
    settings = DatasetSettings(test_farms=("FarmA",), min_presence=0.5, label_folders=True)
    out = tmp_path_factory.mktemp("out")

    def build(target=out, previous=None):
        return build_dataset(target, footage["catalog"], labels, taxonomy, settings, catalog_path=str(footage["catalog_path"]),
                             catalog_sha256=sha256_file(footage["catalog_path"]), code_version="test", trimmed=trims, previous=previous)

    return {"out": out, "built": build(), "build": build, "deleted": deleted, "trimmed": trimmed_path, "taxonomy": taxonomy}


def test_catalog_has_two_tracks_per_video_through_both_clips(footage):
    rows = footage["catalog"].to_pylist()
    assert {r["farm"] for r in rows} == set(FARMS) and {r["camera"] for r in rows} == {"D01"}
    for farm in FARMS:
        mine = [r for r in rows if r["farm"] == farm]
        assert len({r["track_id"] for r in mine}) == 2 and len({r["clip_id"] for r in mine}) == 2 and len(mine) == 4


def test_splits_follow_the_rules_on_real_crops(exported, footage):
    b = exported["built"]
    rows = b.splits.table.to_pylist()
    assert {r["farm"] for r in rows if r["split"] == "test"} == {"FarmA"}
    sides = {}
    for r in rows:
        sides.setdefault((r["video_id"], r["track_id"]), set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    val_classes = {r["class_name"] for r in rows if r["split"] == "val"}
    assert {"Standing", "Lying"} <= val_classes  # each on two tracks outside test
    assert exported["deleted"] not in {r["crop_id"] for r in rows}
    assert b.resolution.excluded == 1 and b.resolution.summary()["trimmed"] == 1


def test_listed_files_decode_and_frame_counts_are_the_files(exported):
    out = exported["out"]
    listed = []
    for name in ("train.csv", "val.csv", "test.csv"):
        listed += read_list(out / name)
    paths = [p for p, _ in listed]
    assert exported["trimmed"] in paths and len(paths) == exported["built"].splits.table.num_rows
    for path in paths[:2] + paths[-2:] + [exported["trimmed"]]:
        index, rgb = next(iter_frames(path))
        assert index == 0 and rgb.shape == (224, 224, 3) and rgb.any()
    frames = dict(zip(exported["built"].splits.table["crop_path"].to_pylist(), exported["built"].splits.table["frames"].to_pylist()))
    assert all(probe_video(p).frame_count == frames[p] for p in paths)
    assert frames[exported["trimmed"]] == SEGMENT[1] - SEGMENT[0] + 1
    for name in ("pretrain_train.csv", "pretrain_test.csv"):
        for path, count in read_list(out / name):
            assert probe_video(path).frame_count == count


def test_label_folders_load_as_a_video_folder(exported, tmp_path, monkeypatch):
    out = exported["out"]
    links = [p for p in (out / "folders").rglob("*.mp4")]
    assert len(links) == exported["built"].splits.table.num_rows and all(os.stat(p).st_nlink >= 2 for p in links)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    folder = datasets.load_dataset("videofolder", data_dir=str(out / "folders"), cache_dir=str(tmp_path / "cache"), drop_labels=False)
    counts = exported["built"].splits.counts()
    assert {k: v.num_rows for k, v in folder.items()} == {"train": counts["train"], "validation": counts["val"], "test": counts["test"]}


def test_rebuild_is_byte_identical_and_dataset_json_traces_the_sources(exported, footage, tmp_path):
    out = exported["out"]
    again = tmp_path / "again"
    exported["build"](again, previous=previous_splits(out))
    files = lambda d: {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and "folders" not in p.parts}  # noqa: E731
    assert files(again) == files(out)
    doc = json.loads((out / "dataset.json").read_text())
    shas = {r["video_id"]: r["source_sha256"] for r in footage["catalog"].to_pylist()}
    assert {s["video_id"]: s["source_sha256"] for s in doc["sources"]} == shas
    assert doc["catalog"]["path"] == str(footage["catalog_path"]) and doc["files"]["folders/"]
