"""The same input, settings and code give the same bytes: run twice with ``vitcow run`` in two
fresh homes, re-run and published again, and on what looks like another machine (one core,
no SIMD). Synthetic footage always; the shared vtest.avi too when it is present."""

import json
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from vitcow_assets_tests.stages.runs import CLIP_ARGS, partition as _partition, vitcow_run as _vitcow_run
from vitcow_assets_tests.stages.outputs import differences, files_under


def test_two_runs_in_fresh_homes_write_the_same_bytes(first_run, tracks_video, tmp_path):
    home_a, report_a = first_run
    home_b = tmp_path / "home_b"
    report_b = _vitcow_run(tracks_video, home_b, *CLIP_ARGS)
    assert report_a["run_id"] != report_b["run_id"]
    folder_a, folder_b = _partition(home_a, report_a), _partition(home_b, report_b)
    names = files_under(folder_a)
    assert sum(n.startswith("crops/") and n.endswith(".mp4") for n in names) >= 12
    assert sum(n.startswith("clips/") and n.endswith(".mp4") for n in names) == 6
    assert "previews/contact_sheet.png" in names
    assert differences(folder_a, home_a, folder_b, home_b) == []


def test_vtest_twice_in_fresh_homes_writes_the_same_bytes(vtest_avi, tmp_path):
    runs = []
    for name in ("a", "b"):
        home = tmp_path / name
        runs.append((home, _vitcow_run(vtest_avi, home, "--max-clips", "3")))
    (home_a, report_a), (home_b, report_b) = runs
    folder_a = _partition(home_a, report_a)
    assert sum(n.endswith(".mp4") and n.startswith("crops/") for n in files_under(folder_a)) >= 6
    assert differences(folder_a, home_a, _partition(home_b, report_b), home_b) == []


def _crop_child(cfg: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "vitcow_assets_tests.stages.crop_child", json.dumps(cfg)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bytes_do_not_depend_on_cores_simd_or_encode_workers(first_run, tracks_video, tmp_path):
    """Clip files, crops, tables and the contact sheet, written from the same clips and masks
    tables in child processes: 4 encode workers, 1 worker, and 1 worker on one core with
    FFmpeg's and OpenCV's SIMD off and x264 held to SSE4.2. The root is the same path each
    time (moved aside in between), so even the tables' paths agree."""
    home, report = first_run
    partition = _partition(home, report)
    root = tmp_path / "root"
    cfg = {"source": str(tracks_video), "clips": str(partition / "clips/clips.parquet"), "masks": str(partition / "masks/object_masks.parquet"), "root": str(root)}
    written = {}
    for name, workers, other in [("four_workers", 4, False), ("one_worker", 1, False), ("other_machine", 1, True)]:
        forced = _crop_child({**cfg, "workers": workers, "other_machine": other})
        written[name] = shutil.move(root, tmp_path / name)
        if other:
            assert forced["cores"] == 1 and forced["opencv_optimized"] is False
            if forced.get("ffmpeg_cpu_flags") is None:
                pytest.skip("FFmpeg's libavutil was not found: its CPU flags could not be forced")
            assert forced["ffmpeg_cpu_flags"] == 0
    base = files_under(Path(written["four_workers"]))
    assert sum(n.endswith(".mp4") for n in base) >= 18
    for name in ("one_worker", "other_machine"):
        other = files_under(Path(written[name]))
        assert sorted(other) == sorted(base)
        for rel, path in base.items():
            if name == "other_machine" and rel.endswith("crops.parquet"):  # its vitcow.encoder names the asm mask
                a, b = pq.read_table(path), pq.read_table(other[rel])
                meta = lambda t: {k: v for k, v in t.schema.metadata.items() if k != b"vitcow.encoder"}  # noqa: E731
                assert a.equals(b) and meta(a) == meta(b), rel
                continue
            assert path.read_bytes() == other[rel].read_bytes(), f"{name}: {rel}"


def test_publishing_a_rerun_uploads_nothing(tracks_video, tmp_path):
    """``vitcow run --publish`` twice to one destination: the second run, which made the same
    crops, clips and tables (its run id aside), uploads nothing, not even the index. A table is
    compared by its rows without run ids (``table_content_sha256``), so the published tables keep
    the first run's id; the raw-video record keeps its first registration time."""
    home, dest = tmp_path / "home", tmp_path / "published"
    first = _vitcow_run(tracks_video, home, *CLIP_ARGS, "--publish", str(dest))
    uri = first["published_crops"][0]  # <dest>/<farm>/<key>/crops/<clip>/objNNNN.mp4
    target = Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path)).parents[2]
    assert target.parent.parent == dest
    before = {rel: (p.stat().st_ino, p.stat().st_mtime_ns) for rel, p in files_under(target).items()}
    assert sum(rel.endswith(".mp4") for rel in before) >= 12
    assert {"crops/crops.parquet", "masks/object_masks.parquet", "raw_video.json", "published.json"} <= set(before)
    second = _vitcow_run(tracks_video, home, *CLIP_ARGS, "--publish", str(dest))
    assert second["run_id"] != first["run_id"]
    after = files_under(target)
    assert sorted(after) == sorted(before)
    replaced = sorted(rel for rel, p in after.items() if (p.stat().st_ino, p.stat().st_mtime_ns) != before[rel])
    assert replaced == [], replaced
    published_runs = set(pq.read_table(after["crops/crops.parquet"], columns=["run_id"])["run_id"].to_pylist())
    assert published_runs == {first["run_id"]}
    local_runs = set(pq.read_table(_partition(home, second) / "crops" / "crops.parquet", columns=["run_id"])["run_id"].to_pylist())
    assert local_runs == {second["run_id"]}
