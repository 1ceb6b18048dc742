"""Runs whose processes are gone (``kill -9``, a power cut): found, marked failed, and their
pool slots freed, so that a crash never keeps the ``gpu`` pool (or a partition) busy.

Dagster's own run monitoring (``run_monitoring`` in dagster.yaml) frees the slots of
*finished* runs after ``free_slots_after_run_end_seconds``, but a run whose process was
killed stays ``STARTED`` for ever under the default run launcher and the in-process
execution of ``vitcow run``: nothing ever finishes it. Here a run is judged by its
processes: the pid in its ``vitcow/pid`` tag (``vitcow run`` sets it) and the pids its engine
events record (the run worker, the multiprocess parent, each step process). A run is dead
when it ran on this host and none of those processes is alive.

Where the host of a run cannot be known (another host's run on shared Postgres, a
Kubernetes pod), nothing is decided here: that is the run launcher's and Dagster's run
monitoring's job.
"""

import dataclasses
import os

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import FINISHED_STATUSES

from vitcow_assets.runtime.processes import hostname, pid_alive

HOST_TAG = "vitcow/host"
PID_TAG = "vitcow/pid"

_STEP_WORKER_EVENTS = {DagsterEventType.STEP_WORKER_STARTING, DagsterEventType.STEP_WORKER_STARTED}
_PID_EVENTS = {DagsterEventType.ENGINE_EVENT, *_STEP_WORKER_EVENTS}
_IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
#: a run in one of these may still write its partition's outputs
UNFINISHED_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.SUSPENDED, *_IN_PROGRESS]


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a run executed here (``vitcow run``)."""
    return {HOST_TAG: hostname(), PID_TAG: str(os.getpid())}


def _single_host(instance: dg.DagsterInstance) -> bool:
    """A SQLite (or in-memory) instance lives on one host: every run ran here."""
    return "sqlite" in type(instance.run_storage).__name__.lower() or instance.is_ephemeral


def _on_this_host(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    host = run.tags.get(HOST_TAG)
    return host == hostname() if host is not None else _single_host(instance)


def run_processes(instance: dg.DagsterInstance, record, step_workers_only: bool = False) -> list[tuple[int, float]]:
    """``(pid, time by which it had started)`` of every process the run recorded (with
    ``step_workers_only``, only its step subprocesses)."""
    run = record.dagster_run
    found = []
    if run.tags.get(PID_TAG, "").isdigit() and not step_workers_only:
        found.append((int(run.tags[PID_TAG]), record.create_timestamp.timestamp()))
    kinds = _STEP_WORKER_EVENTS if step_workers_only else _PID_EVENTS
    for entry in instance.all_logs(run.run_id, of_type=kinds):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        value = getattr(pid, "value", pid)
        if value is not None and str(value).isdigit():
            found.append((int(value), entry.timestamp))
    return found


def run_is_dead(instance: dg.DagsterInstance, record) -> bool:
    """True when the run ran on this host, recorded its processes, and none is alive."""
    if not _on_this_host(instance, record.dagster_run):
        return False
    processes = run_processes(instance, record)
    return bool(processes) and not any(pid_alive(pid, started_by=t) for pid, t in processes)


@dataclasses.dataclass
class Released:
    #: runs marked failed because their processes are gone
    failed: list[str] = dataclasses.field(default_factory=list)
    #: runs (dead or finished) whose pool slots and queued claims were freed
    freed: list[str] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.failed or self.freed)

    def describe(self) -> str:
        return f"marked {len(self.failed)} dead run(s) failed, freed pool slots of {len(self.freed)} run(s)"


def release_dead_runs(instance: dg.DagsterInstance, log=None) -> Released:
    """Mark in-progress runs whose processes are gone as failed, and free the pool slots
    (held or waited for) of runs that are finished or gone. Safe to call from any process
    at any time; a run that is alive is never touched."""
    released = Released()
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_IN_PROGRESS)):
        run = record.dagster_run
        if not run_is_dead(instance, record):
            continue
        pids = ", ".join(str(pid) for pid, _ in run_processes(instance, record))
        message = f"the run's process (pid {pids} on {run.tags.get(HOST_TAG, hostname())}) is gone: killed or crashed"
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
        released.failed.append(run.run_id)
        if log is not None:
            log.warning(f"run {run.run_id}: {message}; marked failed")
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return released
    for run_id in sorted(storage.get_concurrency_run_ids()):
        record = next(iter(instance.get_run_records(filters=dg.RunsFilter(run_ids=[run_id]), limit=1)), None)
        if record is not None and not _finished_for_good(instance, record):
            continue
        storage.free_concurrency_slots_for_run(run_id)
        released.freed.append(run_id)
        if log is not None:
            log.info(f"freed the pool slots of run {run_id} ({record.dagster_run.status.value if record else 'deleted'})")
    return released


def _finished_for_good(instance: dg.DagsterInstance, record) -> bool:
    """A finished run of this host with no step subprocess still alive, so no step of it can
    still be using the GPU (a run executed in process ends its steps before it finishes)."""
    if record.dagster_run.status not in FINISHED_STATUSES or not _on_this_host(instance, record.dagster_run):
        return False
    return not any(pid_alive(pid, started_by=t) for pid, t in run_processes(instance, record, step_workers_only=True))


def live_runs_of_partition(instance: dg.DagsterInstance, job_name: str, partition_key: str) -> list[dg.DagsterRun]:
    """Queued or in-progress runs of ``job_name`` for ``partition_key`` that are not dead."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=job_name, statuses=UNFINISHED_STATUSES, tags={"dagster/partition": partition_key})
    )
    return [r.dagster_run for r in records if not run_is_dead(instance, r)]


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose processes died (kill -9, a crash) as failed and frees their gpu pool slots.",
)
def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    released = release_dead_runs(context.instance, context.log)
    return dg.SkipReason(released.describe() if released else "no dead runs")
