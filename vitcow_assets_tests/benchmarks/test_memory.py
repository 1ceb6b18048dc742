"""Smoke test of ``benchmarks/memory.py --sizes`` on small synthetic footage: the scaled
short input and its loop, each through the whole path and through ``vitcow run``, one line
per size with every key. (Figures are not asserted: memory goals live in the benchmark.)"""

import subprocess
import sys
from pathlib import Path

import pytest

from vitcow_testbed.synthetic import write_video

REPO = Path(__file__).resolve().parents[2]


def test_memory_benchmark_measures_short_and_long_at_a_size(tmp_path):
    video = write_video(tmp_path / "pen.mp4", frames=50, width=320, height=240)
    command = [sys.executable, "-m", "benchmarks.memory", str(video), "--sizes", "192x144", "--seconds", "4",
               "--long-loops", "3", "--inputs", str(tmp_path / "inputs")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    values = dict(pair.split("=", 1) for pair in done.stdout.strip().splitlines()[-1].split())
    assert values["size"] == "192x144"
    numbers = {k: float(v) for k, v in values.items() if k != "size"}
    assert numbers["frames"] == 40 and numbers["long_frames"] == 120  # the loop holds the frames three times
    for key in ("path_rss_mb", "cli_rss_mb", "long_path_rss_mb", "long_cli_rss_mb"):
        assert numbers[key] > 50  # a Python process with numpy, PyAV, Dagster: tens of MB at least
    assert numbers["long_vs_short"] == pytest.approx(numbers["long_cli_rss_mb"] / numbers["cli_rss_mb"], rel=0.01)


def test_memory_benchmark_takes_only_the_measure_asked_for(tmp_path):
    video = write_video(tmp_path / "pen.mp4", frames=30, width=320, height=240)
    command = [sys.executable, "-m", "benchmarks.memory", str(video), "--sizes", "192x144", "--seconds", "2",
               "--long-loops", "2", "--inputs", str(tmp_path / "inputs"), "--only", "path"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    values = dict(pair.split("=", 1) for pair in done.stdout.strip().splitlines()[-1].split())
    assert {"path_rss_mb", "long_path_rss_mb", "long_vs_short_path"} <= set(values)
    assert not any(key.startswith(("cli_", "long_cli_")) or key == "long_vs_short" for key in values), values
