"""The landing sensor at farm scale: a cursor that does not grow with the tree, a backlog
taken oldest recording first within the per-tick caps and the run queue's room, an old
cursor moved into the intake state once, a tick killed half-way (a real process, killed)
that loses no file, and two sensors on one intake database (two real processes, on SQLite
and on PostgreSQL) that never take the same file."""

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

from vitcow_assets.core.intake_cursor import IntakeCursor
from vitcow_assets.core.settle import ARRIVED, TAKEN
from vitcow_assets.footage import intake_state
from vitcow_assets.footage.intake_state import IntakeState
from vitcow_assets_tests.defs.test_sensors import Landing, added_keys, state_of

REPO = Path(__file__).resolve().parents[2]
#: seconds a test waits for a child process to reach a point or to finish
CHILD_TIMEOUT_S = 120


def put(path: Path, age_s: float = 3600) -> Path:
    """A small file with its own bytes (registering hashes it; nothing here decodes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"{path.name}\n".encode() * 16)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def farm_files(root: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` recordings in the farm layout, written in a shuffled order with modification
    times that do not follow their recording times."""
    names = [root / f"FARM_{i % 2}" / f"D0{i % 3 + 1}" / f"2024{1 + i // 28:02d}{1 + i % 28:02d}0800_D0{i % 3 + 1}.mp4" for i in range(count)]
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return [put(names[i], age_s=3600 + 60 * rank) for rank, i in enumerate(order)]


def stamp_of(key: str) -> str:
    return key.split("_")[0]


@pytest.fixture()
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def drain(landing: Landing, max_ticks: int = 40) -> list[dg.SensorResult]:
    """Ticks until a tick takes nothing and nothing waits."""
    results = []
    for _ in range(max_ticks):
        result = landing.tick()
        results.append(result)
        with landing.storage.intake_state() as state:
            settled = all(r.mark.state == TAKEN for r in state.rows())
        if not result.run_requests and settled and len(results) > 1:
            return results
    raise AssertionError(f"the backlog was not taken in {max_ticks} ticks")


def test_the_cursor_stays_the_same_size_whatever_the_tree_holds(tmp_path, instance):
    sizes = {}
    for count in (12, 240):
        (tmp_path / str(count)).mkdir()
        landing = Landing(tmp_path / str(count), instance)
        farm_files(landing.dir, count)
        results = drain(landing)
        sizes[count] = max(len(r.cursor) for r in results)
        assert sum(len(r.run_requests) for r in results) == count
        assert len(state_of(landing)["done"]) == count  # what is known of each file is in the intake state
    assert sizes[240] <= 300 and abs(sizes[240] - sizes[12]) <= 4, sizes


def test_a_backlog_is_taken_oldest_recording_first_within_the_caps(tmp_path, instance):
    landing = Landing(tmp_path, instance)
    landing.configure(max_registrations_per_tick=4, max_runs_per_tick=4)
    paths = farm_files(landing.dir, 30)
    results = drain(landing)
    per_tick = [[r.partition_key for r in result.run_requests] for result in results]
    assert per_tick[0] == [] and all(len(keys) <= 4 for keys in per_tick)
    requested = [stamp_of(k) for keys in per_tick for k in keys]
    assert requested == sorted(stamp_of(p.stem) for p in paths)  # recording time from the path, not mtime
    assert len(set(requested)) == 30


def queue_runs(instance: dg.DagsterInstance, count: int) -> list[str]:
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("vitcow_assets"), "__repository__"), job_name="process_video"
    )
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for run_id in ids:
        instance.add_run(dg.DagsterRun(job_name="process_video", run_id=run_id, status=dg.DagsterRunStatus.QUEUED, remote_job_origin=origin))
    return ids


def test_no_runs_are_requested_while_the_run_queue_is_full_and_the_ui_says_how_many_wait(tmp_path, instance):
    landing = Landing(tmp_path, instance)
    landing.configure(max_pending_runs=2, max_runs_per_tick=2)
    queue = instance.get_concurrency_config().run_queue_config
    limit = max(2, queue.max_concurrent_runs if queue else -1)  # the run queue's own limit wins when higher
    farm_files(landing.dir, 6)
    queued = queue_runs(instance, limit)

    first = landing.tick()
    observed = {e.metadata["files_arriving"].value for e in first.asset_events}
    assert observed == {6}  # the UI is told: 6 files still arriving
    full = landing.tick()
    assert full.run_requests == []
    assert full.skip_message == f"6 file(s) waiting to be taken: the run queue is full ({limit} video run(s) queued or in progress (limit {limit}, {queue.max_concurrent_runs} at a time))"
    (observation,) = full.asset_events
    assert observation.asset_key == dg.AssetKey("raw_video") and observation.metadata["files_waiting"].value == 6
    assert landing.tick().asset_events == []  # said once, while nothing changes

    for run_id in queued[:1]:
        instance.delete_run(run_id)
    resumed = landing.tick()
    assert len(resumed.run_requests) == 1  # one place in the queue: one run
    assert resumed.asset_events[0].metadata["files_waiting"].value == 5


def test_an_old_cursor_is_moved_into_the_intake_state_once(tmp_path, instance):
    landing = Landing(tmp_path, instance)
    done = put(landing.dir / "FARM_A" / "taken.mp4")
    seen = put(landing.dir / "FARM_A" / "arriving.mp4")
    signature = lambda p: [p.stat().st_size, p.stat().st_mtime_ns]  # noqa: E731
    old = {"sources": {"landing": {"done": {str(done): signature(done)}, "seen": {str(seen): signature(seen)}}, "landing:prompts": {"done": {}, "seen": {}}}, "waiting": 1}

    result = landing.tick(cursor=json.dumps(old))
    assert [r.partition_key for r in result.run_requests] == ["arriving"]  # seen before: settled at this look
    assert len(result.cursor) < 300 and json.loads(result.cursor)["v"] == 2
    assert state_of(landing)["done"] == {str(done): signature(done), str(seen): signature(seen)}
    assert landing.tick().run_requests == []  # the old cursor's taken file is not taken again


def child(tmp_path: Path, name: str, landing: Landing, dagster_home: Path, **config) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / f"{name}.jsonl"
    fields = {k: v for k, v in landing.storage.model_dump().items() if v is not None}
    settings = {"dagster_home": str(dagster_home), "storage": fields, "out": str(out), "ticks": 1, "cursor": None, **config}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(settings))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "vitcow_assets_tests.defs.sensor_child", str(path)], cwd=REPO, env=env, stderr=subprocess.PIPE)
    return process, out


def wait_until(check, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not check():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the child ended ({process.returncode}) before {what}: {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {CHILD_TIMEOUT_S} s")
        time.sleep(0.02)


def test_a_killed_tick_loses_no_file_and_requests_none_twice(tmp_path, monkeypatch):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        landing = Landing(tmp_path, instance)
        paths = farm_files(landing.dir, 8)
        assert landing.tick().run_requests == []  # seen once
        start = landing.cursor
        blocked = tmp_path / "blocked"
        process, _ = child(tmp_path, "killed", landing, dagster_home, cursor=start, block_at_take=3, blocked=str(blocked))
        try:
            wait_until(blocked.exists, "third take", process)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=CHILD_TIMEOUT_S)
        with IntakeState.open(None, landing.home) as state:
            rows = {Path(r.fs_path).name: r for r in state.rows()}
        assert sum(r.mark.state == TAKEN for r in rows.values()) == 2  # committed one by one
        assert rows[Path(blocked.read_text()).name].mark.state == "claimed"  # registered, not yet marked
        assert len(landing.registry().all()) == 3

        monkeypatch.setattr(intake_state, "CLAIM_LEASE_S", 0.0)  # as if the dead tick's claim had lapsed
        landing.cursor = start  # Dagster never stored the killed tick: its cursor is the one before
        requested = []
        for result in drain(landing):
            requested += [r.partition_key for r in result.run_requests]
            assert added_keys(result) == sorted(set(added_keys(result)))
    assert sorted(requested) == sorted(p.stem for p in paths)  # every file once: none lost, none twice


@pytest.fixture(params=["sqlite", "postgresql"])
def intake_db(request, tmp_path):
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"intake_{uuid.uuid4().hex[:8]}").replace("postgresql://", "postgresql+psycopg2://")


def test_two_sensors_on_one_intake_database_never_take_the_same_file(tmp_path, intake_db):
    homes = [tmp_path / "dagster_a", tmp_path / "dagster_b"]
    for home in homes:
        home.mkdir()
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(homes[0]))) as instance:
        landing = Landing(tmp_path, instance)
        landing.configure(intake_db=intake_db, max_registrations_per_tick=2, max_runs_per_tick=2)
        paths = farm_files(landing.dir, 24)
        go = tmp_path / "go"
        racers = [
            child(tmp_path, f"sensor_{i}", landing, home, ticks=14, pause_s=0.05, go=str(go), ready=str(tmp_path / f"ready_{i}"))
            for i, home in enumerate(homes)
        ]
        for i, (process, _) in enumerate(racers):
            wait_until((tmp_path / f"ready_{i}").exists, f"sensor {i} ready", process)
        go.touch()  # both start together
        for process, _ in racers:
            process.wait(timeout=CHILD_TIMEOUT_S)
            assert process.returncode == 0, process.stderr.read().decode()[-2000:]
    taken = [[key for line in out.read_text().splitlines() for key in json.loads(line)["runs"]] for _, out in racers]
    assert taken[0] and taken[1]  # both took some
    assert not set(taken[0]) & set(taken[1])
    assert sorted(taken[0] + taken[1]) == sorted(p.stem for p in paths)
    with IntakeState.open(intake_db, landing.home) as state:
        assert {r.mark.state for r in state.rows()} == {TAKEN} and len(state.rows()) == 24
        assert state.counts([state.rows()[0].source])[ARRIVED] == 0


def test_a_file_changed_in_an_old_folder_is_found_by_the_next_full_sweep(tmp_path, instance):
    landing = Landing(tmp_path, instance)
    landing.configure(full_sweep_seconds=4)
    old = put(landing.dir / "FARM_A" / "D01" / "2024-01-01" / "202401010800_D01.mp4", age_s=30 * 86400)
    put(landing.dir / "FARM_A" / "D01" / "2024-03-01" / "202403010800_D01.mp4")
    first = [r.partition_key for r in drain(landing)[1].run_requests]
    assert sorted(first) == ["202401010800_D01", "202403010800_D01"]
    folder_time = old.parent.stat().st_mtime_ns
    old.write_bytes(b"new bytes, same name, same folder\n" * 8)  # in place: the folder keeps its time
    os.utime(old, (time.time() - 86400, time.time() - 86400))
    assert old.parent.stat().st_mtime_ns == folder_time
    assert landing.tick().run_requests == []  # a quick look passes the old folder by

    time.sleep(4)
    requested = [r.partition_key for r in landing.ticks(2)[0]]
    assert requested == ["202401010800_D01"]
    assert landing.registry().get("202401010800_D01").revision == 2
