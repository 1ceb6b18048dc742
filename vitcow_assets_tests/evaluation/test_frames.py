"""The frame-level export for image classifiers (the seed's YOLO baseline): every crop of the
same splits, the held-out farm still the test split, decoded into one JPEG per frame in the
classification layout, with a folder for every class; per-frame predictions over those files
come back through the importer."""

import dataclasses
import json

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from vitcow_assets.datasets.build import build_dataset
from vitcow_assets.evaluation.frames import frame_indices, frame_plan
from vitcow_assets.evaluation.inputs import read_dataset
from vitcow_assets.evaluation.predictions import FRAME_NAME
from vitcow_assets.evaluation.runs import check_predictions, export_frames
from vitcow_assets.media.video import VideoWriter
from vitcow_assets_tests.datasets.synthetic_labels import Scene, synthetic_catalog, synthetic_labels, synthetic_trims
from vitcow_assets_tests.evaluation.predictions_files import write_csv
from vitcow_assets_tests.evaluation.synthetic_site import SETTINGS, TEST_FARM, taxonomy

SIZE = 32


def _colour(crop_id: str, frame: int) -> tuple[int, int, int]:
    """A colour per crop and frame that survives JPEG (steps of 40 per channel)."""
    seed = int(crop_id[:6], 16)
    return (40 * (seed % 6), 40 * ((seed // 6) % 6), 40 * (frame % 6))


@pytest.fixture(scope="module")
def footage_export(tmp_path_factory):
    """A small dataset whose crops (and trimmed copies) are real video files."""
    home = tmp_path_factory.mktemp("framehome")
    scene = Scene(cameras=1, videos=1, tracks=3, root=str(home))
    catalog = synthetic_catalog(scene)
    labels = synthetic_labels(catalog, taxonomy(), labelled=1.0)
    out = home / "dataset"
    built = build_dataset(out, catalog, labels, taxonomy(), dataclasses.replace(SETTINGS, subset_sizes=()), catalog_path="/c", catalog_sha256="c" * 64,
                          code_version="t", trimmed=synthetic_trims(labels, root=str(home)))
    for row in built.splits.table.to_pylist():
        path = __import__("pathlib").Path(row["crop_path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with VideoWriter(path, SIZE, SIZE, 2.5) as writer:
            for f in range(row["frames"]):
                writer.write(np.full((SIZE, SIZE, 3), _colour(row["crop_id"], f), np.uint8))
    return out


def test_frame_indices_take_every_frame_or_an_even_spread():
    assert frame_indices(5, 0) == [0, 1, 2, 3, 4] and frame_indices(20, 4) == [0, 6, 13, 19] and frame_indices(3, 10) == [0, 1, 2]


def test_frames_are_exported_per_split_and_class_and_named_by_crop_and_frame(footage_export, tmp_path):
    export = read_dataset(footage_export)
    summary = export_frames(footage_export, tmp_path / "frames", 3, "t")
    plan = pq.read_table(tmp_path / "frames" / "frames.parquet")
    assert summary["images"] == plan.num_rows == 3 * export.splits.num_rows
    assert {r["split"] for r in plan.to_pylist() if r["crop_id"] in set(export.split("test")["crop_id"].to_pylist())} == {"test"}
    farms = dict(zip(export.splits["crop_id"].to_pylist(), export.splits["farm"].to_pylist()))
    assert {farms[r["crop_id"]] for r in plan.to_pylist() if r["split"] == "test"} == {TEST_FARM}
    for row in plan.to_pylist()[:: max(1, plan.num_rows // 12)]:
        image = cv2.imread(str(tmp_path / "frames" / row["image"]))[:, :, ::-1]
        assert np.abs(image.mean(axis=(0, 1)) - _colour(row["crop_id"], row["frame_index"])).max() < 12  # the right frame of the right crop
        found = FRAME_NAME.match(row["image"].rsplit("/", 1)[1])
        assert found["crop"] == row["crop_id"] and int(found["frame"]) == row["frame_index"]
    for split in ("train", "val", "test"):  # every class a folder, so folder order numbers the classes as class_mapping.txt
        assert sorted(p.name for p in (tmp_path / "frames" / split).iterdir()) == sorted(export.classes)
    assert (tmp_path / "frames" / "class_mapping.txt").read_text().split() == list(export.classes)
    assert json.loads((tmp_path / "frames" / "frames.json").read_text())["dataset"]["fingerprint"] == export.fingerprint


def test_predictions_over_the_exported_frames_score_per_crop(footage_export, tmp_path):
    export_frames(footage_export, tmp_path / "frames", 3, "t")
    plan = pq.read_table(tmp_path / "frames" / "frames.parquet").to_pylist()
    rows = [[str(tmp_path / "frames" / r["image"]), r["class_name"]] for r in plan if r["split"] == "test"]
    _, matched, form = check_predictions(write_csv(tmp_path / "yolo.csv", ["image_path", "y_pred"], rows), footage_export, "vote")
    assert form == "frame" and np.array_equal(matched.y_pred, matched.y_true)


def test_a_plan_row_per_frame_in_split_then_crop_order(footage_export):
    export = read_dataset(footage_export)
    plan = frame_plan(export.splits, export.classes, 0)
    assert plan.num_rows == sum(export.splits["frames"].to_pylist())
    keys = [(r["split"], r["crop_id"], r["frame_index"]) for r in plan.to_pylist()]
    assert keys == sorted(keys)
