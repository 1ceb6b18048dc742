"""Every device of a host busy, one model per device: real ``vitcow run`` processes with
SAM3 at test size on simulated devices (``VITCOW_SAM3_DEVICE=cpu``, ``VITCOW_SAM3_GPUS``:
leased exactly as GPUs are, run on the CPU). Each process holds its model until the test
lets it go (``tiny_sam3_cli``), so the processes are known to overlap."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

if importlib.util.find_spec("sam3") is None:
    pytest.skip("sam3 is not installed", allow_module_level=True)


from vitcow_assets.segmenters.sam3 import find_bpe_path  # noqa: E402
from vitcow_assets.segmenters.sam3_cpu import cpu_mode, install  # noqa: E402
from vitcow_assets_tests.helpers import cli_env  # noqa: E402
from vitcow_testbed.sam3_tiny import tiny_builder, write_tiny_checkpoint  # noqa: E402
from vitcow_testbed.synthetic import write_video  # noqa: E402

W, H = 160, 120
DEADLINE_S = 240


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("sam3") / "sam3.pt"
    install()
    with tiny_builder(), cpu_mode():
        write_tiny_checkpoint(path, find_bpe_path())
    return str(path)


def _run(tmp_path, name: str, checkpoint: str, marks, **env) -> subprocess.Popen:
    """``vitcow run`` on a video of its own (its own bytes: no duplicate is skipped); stderr
    also goes to ``<name>.err`` as it comes."""
    video = write_video(tmp_path / f"{name}.mp4", frames=12 + sum(map(ord, name)) % 7, width=W, height=H)
    settings = {"VITCOW_SAM3_CHECKPOINT": checkpoint, "VITCOW_SAM3_DEVICE": "cpu", "VITCOW_SAM3_SCORE_THRESHOLD": "0",
                "VITCOW_TEST_LOADED_DIR": str(marks), "OMP_NUM_THREADS": "1", **env}
    args = [sys.executable, "-m", "vitcow_assets_tests.tiny_sam3_cli", "run", str(video), "--backend", "sam3",
            "--frames-per-clip", "3", "--max-clips", "1", "--no-clip-files", "--json", "--no-progress"]
    err = open(tmp_path / f"{name}.err", "w")
    process = subprocess.Popen(args, env=cli_env(tmp_path / "home", settings), stdout=subprocess.PIPE, stderr=err, text=True)
    err.close()
    process.err_path = tmp_path / f"{name}.err"
    return process


def _loaded(marks, count: int, processes) -> dict[int, str]:
    """``{pid: device}`` once ``count`` models are loaded (every wait has a deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = {int(p.name.split("-")[0]): p.read_text() for p in marks.glob("*.loaded")}
        if len(found) >= count:
            return found
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"pid {process.pid} ended ({process.returncode}): {process.err_path.read_text()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"{count} models not loaded within {DEADLINE_S} s")


def _said(process: subprocess.Popen, text: str) -> None:
    """Return once ``process`` has written ``text`` to stderr (with a deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    while text not in process.err_path.read_text():
        assert process.poll() is None and time.monotonic() < deadline, process.err_path.read_text()[-3000:]
        time.sleep(0.1)


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, _ = process.communicate(timeout=DEADLINE_S)
    return process.returncode, out, process.err_path.read_text()


def _masks_device(out: str) -> dict:
    (video,) = json.loads(out)["videos"]
    meta = pq.read_schema(video["masks_table"]).metadata
    return {k.decode(): v.decode() for k, v in meta.items() if k in (b"vitcow.device", b"vitcow.device_id", b"vitcow.sam3.device")}


def test_two_runs_at_once_get_two_devices_recorded_in_the_masks(tiny_checkpoint, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    runs = [_run(tmp_path, name, tiny_checkpoint, marks, VITCOW_SAM3_GPUS="0,1") for name in ("pen_a", "pen_b")]
    try:
        loaded = _loaded(marks, 2, runs)
        assert sorted(loaded.values()) == ["cpu:0", "cpu:1"]  # both models loaded at once: one per device
        (marks / "go").touch()
        results = [_finish(run) for run in runs]
    finally:
        for run in runs:
            run.kill()
    assert all(code == 0 for code, _, _ in results), [err[-2000:] for _, _, err in results]
    recorded = [_masks_device(out) for _, out, _ in results]
    assert sorted(r["vitcow.device"] for r in recorded) == ["cpu:0", "cpu:1"]
    assert all(r["vitcow.sam3.device"] == r["vitcow.device"] for r in recorded)
    assert len({r["vitcow.device_id"] for r in recorded}) == 2


def test_a_run_waits_for_a_busy_device_bounded_and_gets_it_when_its_holder_is_killed(tiny_checkpoint, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    holder = _run(tmp_path, "pen_a", tiny_checkpoint, marks, VITCOW_SAM3_GPUS="0")
    waiter = None
    try:
        assert list(_loaded(marks, 1, [holder]).values()) == ["cpu:0"]
        # every device busy: a short wait ends in one line naming the holder (exit 2), never a second model there
        code, _, err = _finish(_run(tmp_path, "pen_b", tiny_checkpoint, marks, VITCOW_SAM3_GPUS="0", VITCOW_DEVICE_WAIT_S="1"))
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 2, err[-3000:]  # the wait announced, then its end
        assert lines[0].startswith(f"vitcow: waiting up to 1 s for a free device: every device is leased by another model (cpu:0 by pid {holder.pid} on ")
        assert lines[1].startswith(f"vitcow: every device is leased by another model (cpu:0 by pid {holder.pid} on ")
        assert lines[1].endswith("(device_wait_s; set VITCOW_DEVICE_WAIT_S to wait longer)")
        assert len(list(marks.glob("*.loaded"))) == 1
        # a patient run waits; the holder killed with SIGKILL frees the device for it
        waiter = _run(tmp_path, "pen_c", tiny_checkpoint, marks, VITCOW_SAM3_GPUS="0", VITCOW_DEVICE_WAIT_S="200")
        _said(waiter, "vitcow: waiting up to 200 s for a free device")
        assert len(list(marks.glob("*.loaded"))) == 1
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        loaded = _loaded(marks, 2, [waiter])
        assert loaded[waiter.pid] == "cpu:0"
        (marks / "go").touch()
        code, out, err = _finish(waiter)
        assert code == 0, err[-3000:]
        assert _masks_device(out)["vitcow.device"] == "cpu:0"
    finally:
        for process in (holder, waiter):
            if process is not None:
                process.kill()


def test_one_vitcow_run_over_several_videos_uses_every_device(tiny_checkpoint, tmp_path):
    """Two simulated devices: one ``vitcow run`` over three videos deals them to two
    processes, whose models are loaded at once, one on each device; the reports come back
    in the inputs' order."""
    marks = tmp_path / "marks"
    marks.mkdir()
    videos = [write_video(tmp_path / f"pen_{name}.mp4", frames=12 + i, width=W, height=H) for i, name in enumerate("abc")]
    settings = {"VITCOW_SAM3_CHECKPOINT": tiny_checkpoint, "VITCOW_SAM3_DEVICE": "cpu", "VITCOW_SAM3_GPUS": "0,1",
                "VITCOW_SAM3_SCORE_THRESHOLD": "0", "OMP_NUM_THREADS": "1", "VITCOW_TEST_LOADED_DIR": str(marks)}
    args = [sys.executable, "-m", "vitcow_assets_tests.tiny_sam3_cli", "run", *map(str, videos), "--backend", "sam3",
            "--frames-per-clip", "3", "--max-clips", "1", "--no-clip-files", "--json"]
    run = subprocess.Popen(args, env=cli_env(tmp_path / "home", settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        loaded = _loaded_by_others(marks, run)
        assert sorted(loaded.values()) == ["cpu:0", "cpu:1"] and run.pid not in loaded  # two child processes, two devices, at once
        (marks / "go").touch()
        out, err = run.communicate(timeout=DEADLINE_S)
    finally:
        run.kill()
    assert run.returncode == 0, err[-3000:]
    assert "vitcow: 3 videos on 2 devices, one vitcow run process each" in err
    assert "vitcow: the gpu pool has 1 slot(s): their object_masks steps take turns (`vitcow init --gpus 2 --force`" in err
    reports = json.loads(out)["videos"]
    assert [r["path"] for r in reports] == [str(v) for v in videos] and all(r["status"] == "success" for r in reports)
    devices = [{k.decode(): v.decode() for k, v in pq.read_schema(r["masks_table"]).metadata.items()}["vitcow.device"] for r in reports]
    assert devices[0] == devices[2] != devices[1] and sorted(set(devices)) == ["cpu:0", "cpu:1"]  # dealt in turn


def _loaded_by_others(marks, parent) -> dict[int, str]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = {int(p.name.split("-")[0]): p.read_text() for p in marks.glob("*.loaded")}
        if len(found) >= 2:
            return found
        assert parent.poll() is None, parent.stderr.read()[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"two models not loaded within {DEADLINE_S} s")
