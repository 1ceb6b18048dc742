"""The ``vitcow`` command line, as users and acceptance checks call it (a subprocess)."""

import json
import os
import subprocess
import sys

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.media.video import probe_video
from vitcow_assets_tests.synthetic import write_video


def _vitcow(args, home, **kwargs):
    env = {**os.environ, "VITCOW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    env.pop("VITCOW_SAM3_CHECKPOINT", None)
    return subprocess.run([sys.executable, "-m", "vitcow_assets.cli", *args], env=env, capture_output=True, text=True, timeout=300, **kwargs)


def test_run_batch_isolates_a_bad_file_and_reports_json(tmp_path, synthetic_video):
    bad = tmp_path / "broken.mp4"
    bad.write_text("this is not a video")
    other = write_video(tmp_path / "second cam.mp4", frames=90)
    home = tmp_path / "home"
    proc = _vitcow(["run", str(synthetic_video), str(bad), str(other), "--backend", "motion", "--prompt", "cow", "--json"], home)
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
    prov = _vitcow(["provenance", crop], home)
    assert prov.returncode == 0, prov.stderr
    row = json.loads(prov.stdout)
    assert row["crop_path"] == crop and row["video_id"] == videos["second cam.mp4"]["partition_key"]
    assert row["prompt"] == "cow" and row["segmenter"] == "motion/v2" and len(row["source_sha256"]) == 64


def test_sam3_without_checkpoint_fails_in_one_line(tmp_path, synthetic_video):
    proc = _vitcow(["run", str(synthetic_video), "--backend", "sam3"], tmp_path / "home")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "VITCOW_SAM3_CHECKPOINT" in proc.stderr
    assert not (tmp_path / "home" / "videos").exists()


def test_provenance_of_unknown_file(tmp_path):
    proc = _vitcow(["provenance", str(tmp_path / "nope.mp4")], tmp_path)
    assert proc.returncode == 2 and "no crops.parquet" in proc.stderr
