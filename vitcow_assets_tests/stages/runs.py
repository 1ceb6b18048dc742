"""``vitcow run`` as a user runs it (a real process), for the stage tests."""

import json
from pathlib import Path

from vitcow_assets_tests.helpers import run_cli
from vitcow_testbed.synthetic_tracks import FRAME_STEP, FRAMES_PER_CLIP

CLIP_ARGS = ["--frames-per-clip", str(FRAMES_PER_CLIP), "--frame-step", str(FRAME_STEP)]


def vitcow_run(video: Path, home: Path, *extra: str) -> dict:
    proc = run_cli(["run", str(video), "--backend", "motion", "--json", "--no-progress", *extra], home)
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    (report,) = json.loads(proc.stdout)["videos"]
    assert report["status"] == "success", report
    return report


def partition(home: Path, report: dict) -> Path:
    return home / "videos" / report["partition_key"]
