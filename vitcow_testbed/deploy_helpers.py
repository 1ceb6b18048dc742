"""Plumbing of the deployment tests: a daemon (or worker) subprocess that is always stopped,
the event log's step intervals, and a Postgres instance made by ``vitcow init --postgres``."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def deploy_env(home: Path, dagster_home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VITCOW_", "DAGSTER_"))}
    env.update(
        VITCOW_HOME=str(home),
        DAGSTER_HOME=str(dagster_home),
        DAGSTER_PG_PASSWORD="",  # the test cluster trusts loopback; the variable must exist
        VITCOW_BACKEND="motion",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def init_postgres_instance(env: dict, url: str) -> dg.DagsterInstance:
    done = subprocess.run(
        [sys.executable, "-m", "vitcow_assets.cli", "init", "--postgres", url], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    os.environ["DAGSTER_PG_PASSWORD"] = env["DAGSTER_PG_PASSWORD"]
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"]))


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextlib.contextmanager
def background(args: list[str], env: dict, log: Path, cwd: Path = ROOT) -> Iterator[subprocess.Popen]:
    """A process (and everything it starts) that is stopped on exit, whatever happens."""
    import psutil

    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            family = [proc.pid]
            with contextlib.suppress(psutil.Error):
                family += [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
            for pid in reversed(family):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(_alive(p) for p in family):
                time.sleep(0.2)
            for pid in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def step_intervals(instance: dg.DagsterInstance, run_id: str, step_key: str) -> list[tuple[float, float]]:
    """(start, end) of every execution of ``step_key`` in the run, from its event log."""
    start = None
    intervals = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key != step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            start = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE) and start is not None:
            intervals.append((start, entry.timestamp))
            start = None
    return intervals


def overlapping(intervals: list[tuple[float, float]]) -> list[tuple]:
    ordered = sorted(intervals)
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b[0] < a[1]]


def wait_for_runs(instance: dg.DagsterInstance, partitions: list[str], timeout_s: float, proc: subprocess.Popen, log: Path) -> list:
    """The runs of ``partitions`` once each has one that finished and no run at all is in progress.

    Other runs may come and go meanwhile (the crop catalog's automation launches one of its own
    once crops change); they are waited for but not returned."""
    finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        ours = [r for r in runs if r.tags.get("dagster/partition") in partitions]
        if {r.tags["dagster/partition"] for r in ours} == set(partitions) and all(r.status in finished for r in runs):
            return ours
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(1)
    states = [(r.job_name, r.tags.get("dagster/partition"), r.status.value) for r in instance.get_runs()]
    raise AssertionError(f"runs did not finish in {timeout_s:.0f} s: {states}\n{log.read_text()[-3000:]}")
