"""``vitcow run`` with a prompt plan of two texts, in a fresh process, on both SAM3
implementations at test size: a transformers model folder (backend auto picks
sam3-transformers: both texts answered by one session per clip) and Meta's release
checkpoint (sam3: one session per text). In both, the masks table's ``prompt`` says which
text found each object, and its id says the same (id = session id * 2 + text index)."""

import importlib.util
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("sam3") is None:
    pytest.skip("transformers and sam3 are needed", allow_module_level=True)

from vitcow_assets_tests.helpers import cli_env, run_cli  # noqa: E402
from vitcow_testbed.synthetic import write_video  # noqa: E402

W, H = 160, 120
TWO_TEXTS = "prompts:\n  - text: cow\n  - text: calf\n"
LOW = {"VITCOW_SAM3_DEVICE": "cpu", "VITCOW_SAM3_SCORE_THRESHOLD": "0", "VITCOW_SAM3_NEW_OBJECT_THRESHOLD": "0"}


def _video(tmp_path):
    video = write_video(tmp_path / "pen.mp4", frames=12, width=W, height=H)
    (tmp_path / "pen.prompts.yaml").write_text(TWO_TEXTS)
    return video


def _table(stdout: str):
    (report,) = json.loads(stdout)["videos"]
    assert report["status"] == "success", report
    table = pq.read_table(report["masks_table"])
    return {k.decode(): v.decode() for k, v in table.schema.metadata.items()}, table.to_pylist()


def _each_object_labelled_by_its_text(rows) -> set:
    assert rows
    for row in rows:
        assert row["prompt"] == ("cow", "calf")[row["object_id"] % 2], row
    return {row["prompt"] for row in rows}


def test_a_transformers_folder_answers_both_texts_in_one_session_per_clip(tmp_path):
    from vitcow_testbed.sam3_hf_tiny import write_tiny_folder

    folder = tmp_path / "sam3-hf"
    write_tiny_folder(folder)
    video = _video(tmp_path)
    done = run_cli(["run", str(video), "--frames-per-clip", "3", "--json", "--no-progress"], tmp_path / "home",
                   {"VITCOW_SAM3_CHECKPOINT": str(folder), **LOW})
    assert done.returncode == 0, done.stderr[-3000:]
    meta, rows = _table(done.stdout)
    assert meta["vitcow.segmenter"] == meta["vitcow.sam3.implementation"] == "sam3-transformers/5.24.0"
    assert meta["vitcow.checkpoint"] == str(folder) and meta["vitcow.prompt"] == "cow, calf"
    assert _each_object_labelled_by_its_text(rows) == {"cow", "calf"}  # one pass found both texts' objects


def test_metas_predictor_runs_a_session_per_text_and_labels_each_object_by_its_text(tmp_path):
    from vitcow_assets.segmenters.sam3 import find_bpe_path
    from vitcow_assets.segmenters.sam3_cpu import cpu_mode, install
    from vitcow_testbed.sam3_tiny import tiny_builder, write_tiny_checkpoint

    install()
    checkpoint = tmp_path / "sam3.pt"
    with tiny_builder(), cpu_mode():
        write_tiny_checkpoint(checkpoint, find_bpe_path())
    video = _video(tmp_path)
    args = [sys.executable, "-m", "vitcow_assets_tests.tiny_sam3_cli", "run", str(video), "--frames-per-clip", "3", "--json", "--no-progress"]
    done = subprocess.run(args, env=cli_env(tmp_path / "home", {"VITCOW_SAM3_CHECKPOINT": str(checkpoint), **LOW}), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    meta, rows = _table(done.stdout)
    assert meta["vitcow.segmenter"].startswith("sam3/") and meta["vitcow.prompt"] == "cow, calf"
    assert _each_object_labelled_by_its_text(rows) == {"cow", "calf"}


def test_a_plan_transformers_cannot_run_fails_before_any_clip_in_one_line(tmp_path):
    from vitcow_testbed.sam3_hf_tiny import write_tiny_folder

    folder = tmp_path / "sam3-hf"
    write_tiny_folder(folder)
    video = write_video(tmp_path / "pen.mp4", frames=12, width=W, height=H)
    (tmp_path / "pen.prompts.yaml").write_text("prompts:\n  - text: cow\n  - box: [10, 10, 60, 50]\n    frame: 4\n")
    done = run_cli(["run", str(video), "--json", "--no-progress"], tmp_path / "home", {"VITCOW_SAM3_CHECKPOINT": str(folder), **LOW})
    assert done.returncode == 1
    (report,) = json.loads(done.stdout)["videos"]
    assert report["status"] == "failed" and "\n" not in report["error"]
    assert "pen.prompts.yaml: query 2 is a box exemplar: transformers' SAM3 video model takes text prompts only" in report["error"]
