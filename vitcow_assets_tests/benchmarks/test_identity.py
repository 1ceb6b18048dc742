"""Smoke test of ``benchmarks/identity.py`` (one random-walker seed): it runs end to end, links
perfect detections perfectly, and the motion backend meets issue 20's identity target without
falling behind motion/v2 measured in the same run."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_identity_benchmark_runs_and_links_perfect_detections_perfectly():
    done = subprocess.run([sys.executable, "-m", "benchmarks.identity", "--seeds", "1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = dict(pair.split("=") for pair in done.stdout.strip().splitlines()[-1].split())
    assert float(figures["idf1_truth_overlap"]) == 1.0 and int(figures["tracks_truth_overlap"]) == 6
    assert float(figures["idf1_walkers_truth_overlap"]) == 1.0  # eight fast walkers, shared frames
    assert float(figures["idf1_truth_overlap_per_clip_ids"]) < 0.5  # per-clip ids alone are far off
    # the motion backend through the crossings (one inside a clip, one early in a clip) and
    # the animal that stands still for two clips: the target
    assert float(figures["idf1_motion_overlap"]) >= 0.9
    # no regression against the motion backend and linker before issue 20, measured in the same run
    assert float(figures["idf1_motion_overlap"]) >= float(figures["idf1_motion_v2_overlap"]) - 0.005
