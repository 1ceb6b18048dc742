"""``benchmarks/sam3_smoke.py`` at test size on CPU, on synthetic footage: both release layouts
go through ``vitcow run``, the checkpoint it keeps is the release layout and its sha256 is the
file's, and its last line carries the documented keys. (Figures are not asserted: the full-size
figures come from running the benchmark, docs/deployment.md.)"""

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from vitcow_testbed.synthetic import write_video

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sam3") is None, reason="sam3 is not installed")


def _smoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.sam3_smoke", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_the_smoke_runs_both_layouts_through_vitcow_run(tmp_path):
    video = write_video(tmp_path / "pen.mp4", frames=12, width=160, height=120)
    keep = tmp_path / "checkpoints"
    done = _smoke(str(video), "--test-size", "--frames-per-clip", "2", "--keep", str(keep))
    assert done.returncode == 0, done.stderr[-3000:]
    values = dict(pair.split("=", 1) for pair in done.stdout.strip().splitlines()[-1].split())
    assert list(values)[:5] == ["load_s", "s_per_frame", "peak_rss_gb", "layouts_ok", "checkpoint_sha256"]
    assert values["layouts_ok"] == "true" and values["masks_equal"] == "true"
    assert float(values["load_s"]) > 0 and float(values["load_s_wrapped"]) > 0
    assert float(values["s_per_frame"]) > 0 and float(values["peak_rss_gb"]) > 0.1
    assert values["frames"] == "2" and values["size"] == "test" and values["device"] == "cpu"

    flat, wrapped = keep / "sam3.pt", keep / "sam3_wrapped.pt"
    assert sorted(p.name for p in keep.iterdir()) == ["sam3.pt", "sam3_wrapped.pt"]
    assert values["checkpoint_sha256"] == hashlib.sha256(flat.read_bytes()).hexdigest()
    import torch

    state = torch.load(flat, map_location="cpu", weights_only=True)
    assert {key.split(".", 1)[0] for key in state} == {"detector", "tracker"}
    assert int(values["parameters"]) > 10**6
    outer = torch.load(wrapped, map_location="cpu", weights_only=True)
    assert list(outer) == ["model"] and list(outer["model"]) == list(state)
    assert all(torch.equal(outer["model"][k], state[k]) for k in state)


def test_footage_that_is_not_a_file_is_refused_in_one_line(tmp_path):
    done = _smoke(str(tmp_path / "missing.mp4"), "--test-size")
    assert done.returncode == 2
    assert done.stderr.strip() == f"sam3_smoke: {tmp_path / 'missing.mp4'} is not a file"
