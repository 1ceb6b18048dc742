"""The ``vitcow`` command line, as users and acceptance checks call it (a subprocess)."""

import json
import os
import re

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.core.tables import NO_PROMPT
from vitcow_assets.media.video import probe_video
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets_tests.helpers import age, run_cli
from vitcow_testbed.synthetic import write_video


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
    # the motion backend ignores prompts: the column says so, the metadata keeps what was asked
    assert row["prompt"] == NO_PROMPT and row["segmenter"] == MotionSegmenter.name and len(row["source_sha256"]) == 64
    assert row["model_checkpoint"] is None and row["model_checkpoint_sha256"] is None  # motion: no checkpoint, well defined
    meta = pq.read_schema(videos["second cam.mp4"]["masks_table"]).metadata
    assert meta[b"vitcow.prompt"] == b"cow" and set(pq.read_table(videos["second cam.mp4"]["masks_table"])["prompt"].to_pylist()) == {NO_PROMPT}
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
        (["--motion-min-area-ratio", "-1"], "--motion-min-area-ratio must be >= 0"),
        (["--motion-polarity", "sideways"], "--motion-polarity"),
        (["--sam3-max-objects", "-2"], "--sam3-max-objects must be 0"),
        (["--crop-size", "7"], "--crop-size must be an even number"),
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


def test_bare_vitcow_prints_usage(tmp_path):
    proc = run_cli([], tmp_path)
    assert proc.returncode == 2 and "usage: vitcow" in proc.stderr and "run" in proc.stderr and "label" in proc.stderr


def test_every_command_takes_the_same_path_spellings_and_a_folder(tmp_path):
    """`vitcow run FOLDER/` processes every video under it (sorted); `tracks` and
    `provenance` take the relative paths `run` took."""
    home = tmp_path / "home"
    footage = tmp_path / "footage"
    (footage / "pen b").mkdir(parents=True)
    age(write_video(footage / "pen b" / "cam2.mp4", frames=84))
    age(write_video(footage / "cam1.mp4", frames=84))
    (footage / "notes.txt").write_text("not footage")
    proc = run_cli(["run", "footage/", "--backend", "motion", "--json", "--no-progress"], home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["videos"]
    assert [v["path"] for v in report] == [str(footage / "cam1.mp4"), str(footage / "pen b" / "cam2.mp4")]
    tracks = run_cli(["tracks", "footage/../footage/cam1.mp4"], home, cwd=tmp_path)
    assert tracks.returncode == 0 and tracks.stdout.startswith(" track"), tracks.stderr
    crop = os.path.relpath(report[0]["crop_videos"][0], tmp_path)
    prov = run_cli(["provenance", crop], home, cwd=tmp_path)
    assert prov.returncode == 0 and json.loads(prov.stdout)["crop_path"] == report[0]["crop_videos"][0]


def test_the_same_bytes_under_another_name_are_skipped_unless_forced(tmp_path, synthetic_video):
    home = tmp_path / "home"
    first = run_cli(["run", str(synthetic_video), "--backend", "motion", "--json", "--no-progress"], home)
    assert first.returncode == 0, first.stderr
    (original,) = json.loads(first.stdout)["videos"]
    copy = tmp_path / "copy of the barn.mp4"
    copy.write_bytes(synthetic_video.read_bytes())
    age(copy)
    again = run_cli(["run", str(copy), "--backend", "motion", "--no-progress"], home)
    assert again.returncode == 0
    assert again.stdout.strip() == (
        f"skipped: {copy} -> {original['partition_key']}: same bytes as partition {original['partition_key']} "
        f"({synthetic_video}); not processed again (--force runs it)"
    )
    crops = pq.read_table(original["crops_manifest"])["run_id"].to_pylist()
    assert set(crops) == {original["run_id"]}  # nothing was re-run
    forced = run_cli(["run", str(copy), "--backend", "motion", "--json", "--no-progress", "--force"], home)
    (rerun,) = json.loads(forced.stdout)["videos"]
    assert rerun["status"] == "success" and rerun["partition_key"] == original["partition_key"] and rerun["run_id"] != original["run_id"]


def test_one_progress_bar_per_video_never_goes_backwards_and_warnings_stand_above_it(tmp_path, synthetic_video):
    proc = run_cli(["run", str(synthetic_video), "--backend", "motion"], tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    states = [s for s in re.split(r"[\r\n]", proc.stderr) if "barn cam 1.mp4:" in s]
    done = [tuple(map(int, m.groups())) for s in states for m in [re.search(r"\| *(\d+)/(\d+) ", s)] if m]
    assert done and all(total == done[-1][1] for _, total in done) and done[-1][0] == done[-1][1]
    assert [n for n, _ in done] == sorted(n for n, _ in done)  # never backwards
    warnings = [line for line in proc.stderr.splitlines() if "warning:" in line]
    assert warnings and all(line.startswith("warning: ") for line in warnings)  # on their own lines, not inside the bar


def test_a_file_refused_before_its_run_is_reported_in_the_ui(tmp_path):
    home = tmp_path / "home"
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert run_cli(["run", str(bad), "--no-progress"], home).returncode == 1
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    try:
        with dg.DagsterInstance.get() as instance:
            records = instance.fetch_observations(dg.AssetKey("raw_video"), limit=5).records
    finally:
        del os.environ["DAGSTER_HOME"]
    (record,) = records
    observation = record.asset_observation
    assert observation.metadata["refused"].value == str(bad) and "cannot open as video" in observation.metadata["reason"].value
