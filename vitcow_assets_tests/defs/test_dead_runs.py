"""A crash never wedges the instance. Real ``vitcow run`` processes, killed with SIGKILL,
interrupted with SIGTERM/SIGINT, or started twice on one file; a slow segmenter
(``slow_cli``) stands in for a long GPU step so that a run can be caught holding the pool."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from vitcow_assets.cli.instance import INSTANCE_YAML
from vitcow_assets.defs.dead_runs import HOST_TAG, PID_TAG, dead_runs_sensor, release_dead_runs
from vitcow_assets.runtime.processes import hostname
from vitcow_testbed.synthetic import write_video

SLOW_CLIP_S = "3"


def _video(path: Path, frames: int) -> Path:
    write_video(path, frames=frames, width=160, height=120)
    old = time.time() - 60  # not "still being written"
    os.utime(path, (old, old))
    return path


def _start(home: Path, *videos: Path, slow: bool = False) -> subprocess.Popen:
    env = {
        **os.environ,
        "VITCOW_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "VITCOW_TEST_SECONDS_PER_CLIP": SLOW_CLIP_S,
    }
    module = "vitcow_assets_tests.slow_cli" if slow else "vitcow_assets.cli"
    args = [sys.executable, "-m", module, "run", *map(str, videos), "--backend", "motion", "--json", "--no-progress"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home / "dagster_home"))


def _gpu_pool(home: Path) -> tuple[set[str], set[str]]:
    """(run ids holding a gpu slot, run ids waiting for one)."""
    if not list(home.glob("videos/*/clips/clips.parquet")):
        return set(), set()  # the first run has not even made its clips: the instance may be new
    with _instance(home) as instance:
        info = instance.event_log_storage.get_concurrency_info("gpu")
    holding = {p.run_id for p in info.pending_steps if p.assigned_timestamp is not None}
    waiting = {p.run_id for p in info.pending_steps if p.assigned_timestamp is None}
    return holding, waiting


def _wait_for(condition, what: str, procs: list[subprocess.Popen], timeout: float = 180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"process ended before {what}: {proc.communicate()[1][-2000:]}")
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture()
def processes():
    """Every process a test starts is killed at the end, whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=timeout)
    return json.loads(out), err


def _run_events(home: Path, run_id: str) -> list[str]:
    with _instance(home) as instance:
        return [e.message or "" for e in instance.all_logs(run_id)]


def test_a_run_killed_in_object_masks_does_not_keep_the_gpu_pool(tmp_path, processes):
    home = tmp_path / "home"
    first, second = _video(tmp_path / "first.mp4", 400), _video(tmp_path / "second.mp4", 90)
    holder = _start(home, first, slow=True)
    processes.append(holder)
    (held_by,) = _wait_for(lambda: _gpu_pool(home)[0], "the first run to hold the gpu slot", [holder])
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    assert _gpu_pool(home)[0] == {held_by}  # the dead run still holds the slot

    started = time.time()
    later = _start(home, second)
    processes.append(later)
    report, _ = _finish(later)
    took = time.time() - started
    assert report["videos"][0]["status"] == "success", report
    # it never waited on the pool: the dead holder was found and released first
    assert not any("blocked by limit for pool" in m for m in _run_events(home, report["videos"][0]["run_id"]))
    with _instance(home) as instance:
        dead = instance.get_run_by_id(held_by)
        assert dead.status == dg.DagsterRunStatus.FAILURE
        (failure,) = instance.all_logs(held_by, of_type=DagsterEventType.RUN_FAILURE)
        assert "is gone" in failure.message
    assert _gpu_pool(home) == (set(), set())
    print(f"second run after the kill: {took:.1f} s, no pool wait")


def test_a_run_waiting_for_the_pool_continues_once_the_holder_is_killed(tmp_path, processes):
    home = tmp_path / "home"
    first, second = _video(tmp_path / "first.mp4", 400), _video(tmp_path / "second.mp4", 90)
    holder = _start(home, first, slow=True)
    processes.append(holder)
    _wait_for(lambda: _gpu_pool(home)[0], "the first run to hold the gpu slot", [holder])
    waiter = _start(home, second)
    processes.append(waiter)
    _wait_for(lambda: _gpu_pool(home)[1], "the second run to wait for the pool", [holder, waiter])
    killed = time.time()
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    report, _ = _finish(waiter)
    assert report["videos"][0]["status"] == "success", report
    assert report["videos"][0]["crop_videos"]
    print(f"waiting run finished {time.time() - killed:.1f} s after the holder was killed")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_run_waiting_for_the_pool_ends_on_sigterm_and_sigint(tmp_path, processes, signum):
    home = tmp_path / "home"
    first, second = _video(tmp_path / "first.mp4", 400), _video(tmp_path / "second.mp4", 90)
    holder = _start(home, first, slow=True)
    processes.append(holder)
    (held_by,) = _wait_for(lambda: _gpu_pool(home)[0], "the first run to hold the gpu slot", [holder])
    waiter = _start(home, second)
    processes.append(waiter)
    (waiting,) = _wait_for(lambda: _gpu_pool(home)[1], "the second run to wait for the pool", [holder, waiter])
    time.sleep(1)
    sent = time.time()
    os.kill(waiter.pid, signum)
    report, _ = _finish(waiter, timeout=30)
    took = time.time() - sent
    assert waiter.returncode == 130
    assert report["interrupted"] is True and report["videos"][0]["status"] == "interrupted"
    assert took < 15
    with _instance(home) as instance:
        assert instance.get_run_by_id(waiting).status == dg.DagsterRunStatus.FAILURE
    assert _gpu_pool(home) == ({held_by}, set())  # its place in the queue is gone, the holder goes on
    print(f"{signal.Signals(signum).name}: waiting run ended {took:.1f} s after the signal")


def test_two_runs_of_one_file_at_once_one_runs_the_other_fails_in_one_line(tmp_path, processes):
    home = tmp_path / "home"
    video = _video(tmp_path / "pen.mp4", 250)
    runs = [_start(home, video, slow=True), _start(home, video, slow=True)]
    processes.extend(runs)
    reports = [_finish(proc) for proc in runs]
    outcomes = sorted((r["videos"][0]["status"], r["videos"][0]["error"] or "") for r, _ in reports)
    assert [status for status, _ in outcomes] == ["failed", "success"], outcomes
    error = outcomes[0][1]
    assert "pen" in error and ("being processed" in error or "has run" in error) and "\n" not in error
    assert not any("Traceback" in err for _, err in reports)
    assert sorted(proc.returncode for proc in runs) == [0, 1]
    assert not list((home / "videos").rglob(".tmp-*"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _started_run(instance: dg.DagsterInstance, tags: dict) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="process_video", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags))
    return run_id


def test_dead_runs_sensor_fails_dead_runs_and_frees_their_slots_but_never_a_live_ones():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
            storage = instance.event_log_storage
            storage.set_concurrency_slots("gpu", 1)
            dead = _started_run(instance, {HOST_TAG: hostname(), PID_TAG: str(_dead_pid())})
            alive = _started_run(instance, {HOST_TAG: hostname(), PID_TAG: str(sleeper.pid)})
            elsewhere = _started_run(instance, {HOST_TAG: "another-host", PID_TAG: str(_dead_pid())})
            assert storage.claim_concurrency_slot("gpu", dead, "object_masks").is_claimed
            assert not storage.claim_concurrency_slot("gpu", alive, "object_masks").is_claimed

            with dg.build_sensor_context(instance=instance) as context:
                result = dead_runs_sensor(context)
            assert "marked 1 dead run(s) failed, freed pool slots of 1 run(s)" in result.skip_message
            assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
            assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED
            assert instance.get_run_by_id(elsewhere).status == dg.DagsterRunStatus.STARTED  # cannot tell: left alone
            # the live run waiting for the slot gets it
            assert storage.claim_concurrency_slot("gpu", alive, "object_masks").is_claimed
            assert not release_dead_runs(instance)  # nothing more to do; the live holder keeps its slot
            assert {s.run_id for s in storage.get_concurrency_info("gpu").claimed_slots} == {alive}
    finally:
        sleeper.kill()
        sleeper.wait()


def test_written_instance_frees_slots_and_queues_runs_per_partition(tmp_path):
    (tmp_path / "dagster.yaml").write_text(INSTANCE_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 30
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        assert instance.event_log_storage.get_pool_config().default_pool_limit == 1
