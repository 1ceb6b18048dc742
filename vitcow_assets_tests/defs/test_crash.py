"""kill -9 in the middle of the crops stage: nothing looks complete that is not, and a
re-run gives the same tables as an uninterrupted run."""

import json
import os
import signal
import time

import pyarrow.parquet as pq
import pytest

from vitcow_assets_tests.helpers import start_cli
from vitcow_testbed.synthetic import MovingBox, write_video

BOUNCING = (
    MovingBox(start=(10, 20), velocity=(6.0, 2.0), size=(40, 30), colour=(255, 230, 60), bounce=(320, 240)),
    MovingBox(start=(250, 150), velocity=(-5.0, -3.0), size=(32, 44), colour=(200, 235, 255), bounce=(320, 240)),
)


def _start(video, home):
    return start_cli(["run", str(video), "--backend", "motion", "--json", "--no-progress"], home)


def _finish(video, home):
    proc = _start(video, home)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)["videos"][0]


def _tables(report, home):
    def relative(values):
        return [v.replace(str(home), "<home>") if isinstance(v, str) else v for v in values]

    clips = pq.read_table(report["clips_manifest"]).to_pydict()
    clips["clip_path"] = relative(clips["clip_path"])
    masks = pq.read_table(report["masks_table"]).to_pydict()
    crops = pq.read_table(report["crops_manifest"]).drop(["run_id"]).to_pydict()
    crops["crop_path"] = relative(crops["crop_path"])
    return clips, masks, crops


def test_kill_during_crops_then_rerun_matches_an_uninterrupted_run(tmp_path):
    video = write_video(tmp_path / "long pen.mp4", frames=1200, objects=BOUNCING)
    killed_home, clean_home = tmp_path / "killed", tmp_path / "clean"
    proc = _start(video, killed_home)
    deadline = time.time() + 240
    staging = []
    while time.time() < deadline and proc.poll() is None:
        staging = list((killed_home / "videos").glob("*/.tmp-*-crops/c0000[1-9]"))
        if staging:
            break
        time.sleep(0.01)
    if not staging:
        proc.kill()
        pytest.fail("the crops stage was never caught in progress")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    layout_root = staging[0].parent.parent
    # Nothing of the crops stage looks complete: only the staging folder exists.
    assert not (layout_root / "crops").exists()
    assert (layout_root / "masks" / "object_masks.parquet").exists()  # the stage before had finished

    rerun = _finish(video, killed_home)
    assert rerun["status"] == "success"
    assert not list(killed_home.rglob(".tmp-*"))
    reference = _finish(video, clean_home)
    assert _tables(rerun, killed_home) == _tables(reference, clean_home)
    assert len(rerun["crop_videos"]) == len(reference["crop_videos"]) > 10

    # Re-running a finished partition replaces its outputs instead of adding to them.
    again = _finish(video, clean_home)
    assert _tables(again, clean_home) == _tables(reference, clean_home)
    assert sorted(again["crop_videos"]) == sorted(reference["crop_videos"])
    assert sorted(p.name for p in (clean_home / "videos").rglob("*.mp4") if "crops" in p.parts) == sorted(
        os.path.basename(p) for p in reference["crop_videos"]
    )
