"""Importing a fine-tuned model's predictions: the seed's predictions_full.csv and a
crop_id-keyed form give the same scorecard against the dataset's test split; a bad file is
refused with one line per bad row and nothing is stored; per-frame predictions of an image
classifier are aggregated per crop (majority vote or mean score) through the same importer."""

import numpy as np
import pytest

from vitcow_assets.evaluation.inputs import EvaluationInputError, read_dataset
from vitcow_assets.evaluation.predictions import PredictionsError, aggregate_frames, match_predictions
from vitcow_assets.evaluation.runs import check_predictions, run_predictions
from vitcow_assets.evaluation.scorecard import score
from vitcow_assets.evaluation.store import read_predictions_csv, read_report, read_table
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets_tests.evaluation.predictions_files import predicted, seed_form, write_csv


@pytest.fixture(scope="module")
def export(site):
    return read_dataset(site["export"])


@pytest.fixture(scope="module")
def rows(export):
    return predicted(export.split("test"), len(export.classes))


def test_the_seeds_predictions_file_gives_the_scorecard_and_names_its_lineage(export, rows, tmp_path):
    path = seed_form(tmp_path / "predictions_full.csv", rows, len(export.classes))
    root = StorageRoot(tmp_path / "home")
    run = run_predictions(root, "videomae-ft", path, export.out_dir, "0.1.0+gtest")
    expected = score([r["y_true"] for r in rows], [r["y_pred"] for r in rows], export.classes, np.array([r["scores"] for r in rows]))
    assert run.scorecard.summary["accuracy"] == pytest.approx(expected.summary["accuracy"]) and run.scorecard.summary["accuracy"] == pytest.approx(0.8, abs=0.01)
    assert run.scorecard.summary["map_macro"] == pytest.approx(expected.summary["map_macro"], abs=1e-6)
    assert np.array_equal(run.scorecard.confusion, expected.confusion) and run.form == "crop"
    stored = read_table(run.layout, "scorecard").to_pylist()[0]
    assert stored["dataset_fingerprint"] == export.fingerprint and stored["checkpoint_sha256"] is None
    assert len(stored["predictions_sha256"]) == 64 and stored["code_version"] == "0.1.0+gtest"
    assert read_report(run.layout, "scorecard")["predictions"]["sha256"] == stored["predictions_sha256"]
    assert run.layout.chart("scorecard_confusion").read_bytes()[:4] == b"\x89PNG"
    assert read_table(run.layout, "predictions").num_rows == export.split("test").num_rows


def test_crop_id_keys_and_class_names_match_the_same_crops(export, rows, tmp_path):
    by_path = check_predictions(seed_form(tmp_path / "a.csv", rows, len(export.classes)), export.out_dir)[1]
    named = [[r["crop_id"], export.classes[r["y_pred"]]] for r in rows]
    by_id = check_predictions(write_csv(tmp_path / "b.csv", ["crop_id", "y_pred"], named), export.out_dir)[1]
    assert by_id.crop_ids == by_path.crop_ids and np.array_equal(by_id.y_pred, by_path.y_pred) and by_id.scores is None


def test_a_bad_file_gives_one_line_per_bad_row_and_stores_nothing(export, rows, tmp_path):
    n = len(export.classes)
    path = seed_form(tmp_path / "bad.csv", rows, n)
    lines = path.read_text().splitlines()
    body = [line.split(",") for line in lines[1:]]
    body[0][0] = "/elsewhere/crop.mp4"  # line 2: matches nothing
    body[1][1] = str((int(body[1][1]) + 1) % n)  # line 3: disagrees with the split's label
    body[2][:2] = body[3][:2]  # line 4: the crop of line 5 (and its label): line 5 predicts it twice; line 4's own crop left out
    body[5][4] = "abc"  # line 7: a score that is no number
    body[6][2] = "Flying"  # line 8: no such class
    del body[-1]  # the last test crop: no prediction
    path.write_text("\n".join([lines[0]] + [",".join(b) for b in body]) + "\n")
    root = StorageRoot(tmp_path / "home")
    with pytest.raises(PredictionsError) as caught:
        run_predictions(root, "bad", path, export.out_dir, "0.1.0+gtest")
    found = caught.value.lines
    assert len(found) == 6, found
    assert found[0].startswith("line 2 ") and "matches no crop of the test split" in found[0]
    assert found[1].startswith("line 3 ") and "disagrees with the split's label" in found[1]
    assert found[2].startswith("line 5 ") and "predicted twice" in found[2]
    assert found[3].startswith("line 7 ") and "not a number" in found[3]
    assert found[4].startswith("line 8 ") and "'Flying' is not a class" in found[4]
    assert found[5].startswith("3 of the ") and "have no prediction" in found[5]
    assert all("\n" not in line for line in found)
    assert not root.evaluation_dir.exists()


def test_score_columns_must_be_one_per_class(export, rows, tmp_path):
    path = write_csv(tmp_path / "few.csv", ["crop_id", "y_pred", "score_class_0", "score_class_1"], [[r["crop_id"], r["y_pred"], 0.5, 0.5] for r in rows])
    with pytest.raises(PredictionsError, match="not one per class"):
        check_predictions(path, export.out_dir)


def test_a_file_that_is_no_predictions_file_is_one_line(export, tmp_path):
    with pytest.raises(EvaluationInputError, match="no such file"):
        check_predictions(tmp_path / "absent.csv", export.out_dir)
    path = write_csv(tmp_path / "odd.csv", ["name", "value"], [["a", 1]])
    with pytest.raises(PredictionsError, match="no crop_id or video_path column"):
        check_predictions(path, export.out_dir)


def _frames(rows, classes, per_crop=3):
    """Per-frame rows: the crop's first two frames right, its last wrong, or per ``rows``."""
    out = []
    for r in rows:
        for f in range(per_crop):
            pred = r["y_pred"] if f < 2 else (r["y_pred"] + 1) % len(classes)
            scores = [0.1] * len(classes)
            scores[pred] = 0.9
            out.append([f"test/{classes[r['y_true']]}/{r['crop_id']}_f{f:04d}.jpg", r["y_true"], pred, *scores])
    return out


def test_frame_predictions_are_aggregated_per_crop_by_vote_and_by_mean(export, rows, tmp_path):
    header = ["image_path", "y_true", "y_pred"] + [f"score_class_{c}" for c in range(len(export.classes))]
    path = write_csv(tmp_path / "frames.csv", header, _frames(rows, export.classes))
    for how in ("vote", "mean"):
        _, matched, form = check_predictions(path, export.out_dir, how)
        assert form == "frame" and np.array_equal(matched.y_pred, [r["y_pred"] for r in rows])  # 2 of 3 frames


def test_a_vote_tie_goes_to_the_best_mean_score_and_disagreeing_frames_are_refused():
    classes = ("a", "b")
    import pyarrow as pa

    table = pa.table({"crop_id": ["c1", "c1", "c2", "c2"], "frame_index": ["0", "1", "0", "1"], "y_true": ["0", "0", "1", "0"],
                      "y_pred": ["0", "1", "1", "1"], "score_class_0": ["0.6", "0.1", "0.1", "0.1"], "score_class_1": ["0.4", "0.9", "0.9", "0.9"]})
    with pytest.raises(PredictionsError, match="c2.*disagree on y_true"):
        aggregate_frames(table, classes, "vote")
    crops, lines = aggregate_frames(table.slice(0, 2), classes, "vote")
    assert crops["y_pred"].to_pylist() == ["1"] and lines == [2]  # tie 1-1: mean score 0.65 for b


def test_relative_paths_match_an_export_made_relative_to_a_root(tmp_path, site):
    import dataclasses

    from vitcow_assets_tests.evaluation.synthetic_site import SETTINGS, build_export

    built, _ = build_export(tmp_path / "rel", dataclasses.replace(SETTINGS, root="/srv/vitcow_home"))
    relative = read_dataset(tmp_path / "rel")
    assert relative.root == "/srv/vitcow_home"
    rows = predicted(relative.split("test"), len(relative.classes))
    for r in rows:
        r["crop_path"] = r["crop_path"].removeprefix("/srv/vitcow_home/")
    matched = check_predictions(seed_form(tmp_path / "rel.csv", rows, len(relative.classes)), relative.out_dir)[1]
    assert len(matched.crop_ids) == relative.split("test").num_rows


def test_rows_are_read_as_text_whatever_they_hold(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["crop_id", "y_pred"], [["0123", "1"], ["00ff", "2.0"]])
    table = read_predictions_csv(path)
    assert table["crop_id"].to_pylist() == ["0123", "00ff"] and table["y_pred"].to_pylist() == ["1", "2.0"]
    test = __import__("pyarrow").table({"crop_id": ["0123", "00ff"], "crop_path": ["/a.mp4", "/b.mp4"], "class_index": [1, 2]})
    matched = match_predictions(table, test, ("x", "y", "z"))
    assert matched.y_pred.tolist() == [2, 1]  # in crop_id order: 00ff, 0123
