"""Smoke test of ``benchmarks/gpu.py`` at test size on CPU, on synthetic footage: it runs end
to end and its last line carries every key with a sane value. (Figures are not asserted:
speed goals live in the benchmark, not in unit tests.)"""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

from vitcow_testbed.synthetic import write_video

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sam3") is None, reason="sam3 is not installed")


def test_gpu_benchmark_runs_at_test_size_on_cpu(tmp_path):
    video = write_video(tmp_path / "pen.mp4", frames=40, width=160, height=120)
    command = [
        sys.executable, "-m", "benchmarks.gpu", str(video), "--device", "cpu", "--test-size", "--scale", "1",
        "--clips", "1", "--repeats", "1", "--frames-per-clip", "4", "--frame-step", "2", "--memory-lengths", "2,6",
        "--objects", "1,2", "--growth-clips", "3", "--growth-frames", "2",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    values = dict(pair.split("=", 1) for pair in last.split())
    assert list(values)[:6] == ["model_fps", "stage_fps", "stage_vs_model", "load_s", "gpu_mem_gb_2", "gpu_mem_gb_6"]
    numbers = {k: float(v) for k, v in values.items() if k not in ("device", "size", "mem_measure", "frame_size")}
    assert all(math.isfinite(v) for v in numbers.values())
    assert numbers["model_fps"] > 0 and numbers["stage_fps"] > 0 and numbers["load_s"] > 0
    assert numbers["stage_vs_model"] == pytest.approx(numbers["stage_fps"] / numbers["model_fps"], rel=0.01)
    assert numbers["rows"] > 0  # the stage wrote masks
    assert values["device"] == "cpu" and values["mem_measure"] == "cpu_peak_rss_delta"
    assert numbers["objects_clip_obj1"] <= 1 and numbers["objects_clip_obj2"] <= 2  # the cap holds
    assert "mem_growth_mb" in numbers and "stage_wait_frames_s" in numbers
