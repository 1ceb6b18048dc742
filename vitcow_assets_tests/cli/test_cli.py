"""The ``vitcow`` command line, as users and acceptance checks call it (a subprocess)."""

import json
import os

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.media.video import probe_video
from vitcow_assets_tests.helpers import run_cli
from vitcow_assets_tests.synthetic import write_video


def test_run_batch_isolates_a_bad_file_and_reports_json(tmp_path, synthetic_video):
    bad = tmp_path / "broken.mp4"
    bad.write_text("this is not a video")
    other = write_video(tmp_path / "second cam.mp4", frames=90)
    home = tmp_path / "home"
    proc = run_cli(["run", str(synthetic_video), str(bad), str(other), "--backend", "motion", "--prompt", "cow", "--json"], home)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    videos = {os.path.basename(v["path"]): v for v in report["videos"]}
    assert report["failed"] == 1
    assert videos["broken.mp4"]["status"] == "failed"
    assert "broken.mp4" in videos["broken.mp4"]["error"] and "\n" not in videos["broken.mp4"]["error"]
    for name in ("barn cam 1.mp4", "second cam.mp4"):
        ok = videos[name]
        assert ok["status"] == "success" and ok["error"] is None
        assert pq.read_table(ok["crops_manifest"]).num_rows == len(ok["crop_videos"]) == 2
        assert pq.read_table(ok["masks_table"]).num_rows > 0
        assert all(probe_video(p).frame_count == 20 for p in ok["crop_videos"])

    # The runs are in the instance the UI reads.
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    try:
        with dg.DagsterInstance.get() as instance:
            done = instance.get_materialized_partitions(dg.AssetKey("object_crops"))
            assert done == {videos["barn cam 1.mp4"]["partition_key"], videos["second cam.mp4"]["partition_key"]}
    finally:
        del os.environ["DAGSTER_HOME"]

    crop = videos["second cam.mp4"]["crop_videos"][0]
    prov = run_cli(["provenance", crop], home)
    assert prov.returncode == 0, prov.stderr
    row = json.loads(prov.stdout)
    assert row["crop_path"] == crop and row["video_id"] == videos["second cam.mp4"]["partition_key"]
    assert row["prompt"] == "cow" and row["segmenter"] == "motion/v2" and len(row["source_sha256"]) == 64
    # compact: one line per column (per-frame lists stay on their line), exact decimals
    assert len(prov.stdout.strip().splitlines()) == len(row) + 2
    assert '"margin": 0.1,' in prov.stdout
    # the same crop named through "..", and its source path stored normalised
    roundabout = os.path.join(os.path.dirname(crop), "..", os.path.basename(os.path.dirname(crop)), os.path.basename(crop))
    again = run_cli(["provenance", roundabout], home)
    assert again.returncode == 0 and json.loads(again.stdout) == row
    assert ".." not in row["source_path"].split(os.sep)


def test_bad_options_fail_in_one_line_naming_the_option(tmp_path, synthetic_video):
    home = tmp_path / "home"
    for args, option in [
        (["--frame-step", "0"], "--frame-step"),
        (["--frames-per-clip", "-3"], "--frames-per-clip"),
        (["--max-clips", "0"], "--max-clips"),
        (["--frame-step", "two"], "--frame-step"),
        (["--backend", "yolo"], "--backend"),
        (["--prompt", " "], "--prompt"),
    ]:
        proc = run_cli(["run", str(synthetic_video), *args], home)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and option in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout == ""
    assert not (home / "videos").exists()


def test_missing_and_non_video_files_are_one_clean_line_each(tmp_path):
    home = tmp_path / "home"
    (tmp_path / "notes.mp4").write_text("not a video\n")
    missing = tmp_path / "nope" / "missing.mp4"
    proc = run_cli(["run", str(missing), str(tmp_path / "notes.mp4"), "--backend", "motion"], home)
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert lines == [
        f"failed: {missing}: no such file",
        "failed: notes.mp4: cannot open as video (Invalid data found when processing input)",
    ]
    assert "clip" not in proc.stderr  # no progress bar for a file that never started


def test_sam3_without_checkpoint_fails_in_one_line(tmp_path, synthetic_video):
    proc = run_cli(["run", str(synthetic_video), "--backend", "sam3"], tmp_path / "home")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "VITCOW_SAM3_CHECKPOINT" in proc.stderr
    assert not (tmp_path / "home" / "videos").exists()


def test_provenance_of_unknown_file(tmp_path):
    proc = run_cli(["provenance", str(tmp_path / "nope.mp4")], tmp_path)
    assert proc.returncode == 2 and "no crops.parquet" in proc.stderr
