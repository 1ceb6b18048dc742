"""Smoke test of ``benchmarks/feed.py`` on small synthetic footage: it makes its input, runs
its confined child and prints one line per configuration with every key and consistent
values. (Figures are not asserted: speed goals live in the benchmark, not in unit tests.)"""

import subprocess
import sys
from pathlib import Path

import pytest

from vitcow_testbed.synthetic import write_video

REPO = Path(__file__).resolve().parents[2]


def _values(line: str) -> dict:
    return dict(pair.split("=", 1) for pair in line.split())


def test_feed_benchmark_prints_a_line_per_configuration(tmp_path):
    video = write_video(tmp_path / "pen.mp4", frames=60, width=320, height=240)
    command = [sys.executable, "-m", "benchmarks.feed", str(video), "--sizes", "256x192", "--threads", "1",
               "--seconds", "5", "--loops", "2", "--objects", "3", "--repeats", "1", "--resize", "pil,bilinear",
               "--inputs", str(tmp_path / "inputs")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [_values(line) for line in done.stdout.splitlines() if line.startswith("feed_fps=")]
    assert [v["resize"] for v in lines] == ["pil", "bilinear"]
    for values in lines:
        assert list(values)[:4] == ["feed_fps", "decode_fps", "feed_vs_decode", "cpu_threads"]
        numbers = {k: float(v) for k, v in values.items() if k not in ("size", "resize")}
        assert numbers["cpu_threads"] == 1 and numbers["objects"] == 3 and numbers["model_frames"] == 20
        assert numbers["feed_fps"] > 0 and numbers["decode_fps"] > 0
        assert numbers["feed_vs_decode"] == pytest.approx(numbers["feed_fps"] / numbers["decode_fps"], rel=0.01)
        shares = {k: v for k, v in numbers.items() if k.startswith("share_")}
        assert set(shares) >= {"share_decode", "share_prepare", "share_standin", "share_to_detections", "share_encode", "share_write"}
        assert all(v >= 0 for v in shares.values()) and shares["share_decode"] > 0
    made = sorted(p.name for p in (tmp_path / "inputs").iterdir())
    assert made == ["pen_256x192_5s.mp4", "pen_256x192_5s_x2.mp4"]  # kept for the next run


def test_feed_benchmark_skips_without_footage(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.feed", str(tmp_path / "absent.avi")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "skipped" in done.stdout
