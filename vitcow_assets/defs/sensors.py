"""The landing sensor: new footage becomes a partition and a run, once it has finished arriving.

Each tick is one look at every landing source and one helping of the backlog
(``footage.intake.watch_sources``, with the settle rule of ``core.settle`` and the per-file
intake state); this module only turns what was taken into partitions and run requests, with
back-pressure: a tick asks for at most ``max_runs_per_tick`` runs, and none while
``max_pending_runs`` runs of the video job are queued or in progress. The cursor stays a
few hundred bytes (``core.intake_cursor``). The UI is told how many files wait: in the
tick's skip reason (shown on the sensor's page, per tick), in a one-line log of each tick
that requests runs, and as an observation of ``raw_video`` (``files_arriving``,
``files_waiting``: its Events tab) whenever those numbers change. ``Requests`` is shared
with the nightly catch-up.
"""

import functools
import time

import dagster as dg

from vitcow_assets.core.intake_cursor import IntakeCursor
from vitcow_assets.defs.jobs import INFO_RUN_CONFIG, process_video_job
from vitcow_assets.defs.metadata import run_tags
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.footage.intake import Arrival, IntakePolicy, PromptChange, Watch, prompt_change, watch_sources
from vitcow_assets.footage.intake_state import PROMPTS, FileRow, IntakeState
from vitcow_assets.footage.registry import Registration, Registry
from vitcow_assets.media.hashing import sha256_file

#: what an edited prompt file re-materializes: the plan and everything made from it
PROMPT_DOWNSTREAM = [dg.AssetKey(k) for k in ("prompts", "object_masks", "object_crops", "previews")]
#: runs that count against ``max_pending_runs``
PENDING_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
#: the asset whose observations say how many files wait
BACKLOG_ASSET = dg.AssetKey("raw_video")


class Requests:
    """Run requests and partitions to add, gathered over one evaluation."""

    def __init__(self, storage: VitcowStorage, instance: dg.DagsterInstance | None, log, run_key_prefix: str = "") -> None:
        self.storage, self.instance, self.log, self.prefix = storage, instance, log, run_key_prefix
        self.runs: list[dg.RunRequest] = []
        self.partitions: list[str] = []

    def add(self, arrival: Arrival) -> None:
        """The run (and partition) for newly registered footage; the same bytes under
        another name, or unchanged bytes, are not processed again."""
        reg, status = arrival.outcome.registration, arrival.outcome.status
        if status == "duplicate":
            self.log.info(f"{arrival.file.uri}: same bytes as partition {reg.key} ({reg.source_path}); not processed again")
            return
        if not arrival.wants_run:
            return
        self.log.info(f"{arrival.file.uri}: {status} footage, partition {reg.key}")
        self.add_registration(reg)

    def add_registration(self, reg: Registration) -> None:
        if reg.key in {r.partition_key for r in self.runs if r.asset_selection is None}:
            return
        if not self.instance.has_dynamic_partition(video_partitions.name, reg.key) and reg.key not in self.partitions:
            self.partitions.append(reg.key)
        self.runs.append(
            dg.RunRequest(
                partition_key=reg.key,
                run_key=f"{self.prefix}{reg.key}:r{reg.revision}:{reg.sha256[:16]}",
                tags=run_tags(reg, self.storage.patterns()),
                run_config=INFO_RUN_CONFIG,
            )
        )

    def add_prompt_change(self, change: PromptChange) -> None:
        """A run of the prompt plan and its downstream for the one video a prompt file belongs to."""
        key, file = change.partition_key, change.file
        if key is None or key in {r.partition_key for r in self.runs}:
            return  # its video is not registered yet, or is about to run anyway
        if not self.instance.has_dynamic_partition(video_partitions.name, key):
            return
        try:
            digest = sha256_file(file.fs_path)
        except OSError as exc:
            self.log.warning(f"{file.uri}: cannot read ({exc.strerror or exc}); skipped")
            return
        self.log.info(f"{file.uri}: prompts changed, re-running masks and crops of partition {key}")
        self.runs.append(dg.RunRequest(partition_key=key, run_key=f"{key}:prompts:{digest[:16]}", asset_selection=PROMPT_DOWNSTREAM, run_config=INFO_RUN_CONFIG))

    def add_again(self, state: IntakeState, rows: list[FileRow]) -> None:
        """The requests of a tick that was killed before Dagster got them (same run keys:
        Dagster launches each once)."""
        registry = Registry(self.storage.root())
        for row in rows:
            if row.kind == PROMPTS:
                change = prompt_change(state, self.storage.sources(), row)
                if change is not None:
                    self.add_prompt_change(change)
                continue
            reg = registry.get(row.partition_key) if row.partition_key else None
            if reg is not None:
                self.log.info(f"{row.uri}: requested again (the tick that took it did not finish)")
                self.add_registration(reg)

    def partition_requests(self) -> list:
        return [video_partitions.build_add_request(self.partitions)] if self.partitions else []


class RunRoom:
    """How many runs this tick may request (``room()``), and a line saying why not more;
    asked of the instance once, and only when files wait (opening the instance in a sensor
    evaluation costs a tenth of a second)."""

    def __init__(self, context: dg.SensorEvaluationContext, storage: VitcowStorage) -> None:
        self.context, self.storage = context, storage

    @functools.cached_property
    def _measured(self) -> tuple[int, str]:
        instance, settings = self.context.instance, self.storage.settings()
        queue = instance.get_concurrency_config().run_queue_config
        concurrent = queue.max_concurrent_runs if queue is not None else -1
        limit = max(settings.max_pending_runs, concurrent)
        pending = instance.get_runs_count(dg.RunsFilter(job_name=process_video_job.name, statuses=PENDING_STATUSES))
        allowed = f", {concurrent} at a time" if concurrent >= 0 else ""
        return max(0, min(settings.max_runs_per_tick, limit - pending)), f"{pending} video run(s) queued or in progress (limit {limit}{allowed})"

    def __call__(self) -> int:
        return self._measured[0]

    @property
    def line(self) -> str:
        return self._measured[1]


def _said(watch: Watch) -> tuple[int, int]:
    return (watch.waiting, watch.backlog)


def _summary(watch: Watch, runs: int, room: RunRoom) -> str:
    oldest = f"; {watch.backlog} file(s) waiting to be taken" if watch.backlog else ""
    return f"{len(watch.arrivals)} taken, {runs} run(s) requested; {watch.waiting} file(s) still arriving{oldest}; {room.line}"


def _skip_reason(watch: Watch, room: RunRoom, changed: bool) -> str | None:
    if watch.backlog and room() == 0:
        return f"{watch.backlog} file(s) waiting to be taken: the run queue is full ({room.line})"
    if not changed:
        return None  # a quiet landing folder says nothing of its own, tick after tick
    parts = [f"{watch.waiting} file(s) still arriving"] if watch.waiting else []
    parts += [f"{watch.backlog} file(s) waiting to be taken"] if watch.backlog else []
    return "; ".join(parts) or None


def _observation(watch: Watch) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=BACKLOG_ASSET,
        description="landing files not processed yet",
        metadata={"files_arriving": dg.MetadataValue.int(watch.waiting), "files_waiting": dg.MetadataValue.int(watch.backlog)},
    )


@dg.sensor(
    job=process_video_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers settled video files in the landing folder (and remote sources), oldest first, and requests a run for each.",
)
def landing_sensor(context: dg.SensorEvaluationContext, storage: VitcowStorage) -> dg.SensorResult:
    cursor, room = IntakeCursor.parse(context.cursor), RunRoom(context, storage)
    policy = IntakePolicy.from_settings(storage.settings(), storage.patterns())
    with storage.intake_state() as state:
        watch = watch_sources(storage.root(), storage.sources(), state, cursor, time.time(), policy, context.log, room=room)
        # the instance is opened only when there is something to ask it (a quiet tick never)
        busy = watch.arrivals or watch.again or watch.prompt_changes
        requests = Requests(storage, context.instance if busy else None, context.log)
        requests.add_again(state, watch.again)
    for arrival in watch.arrivals:
        requests.add(arrival)
    for change in watch.prompt_changes:
        requests.add_prompt_change(change)
    changed = _said(watch) != tuple(cursor.reported)
    watch.cursor.reported = _said(watch)
    if watch.arrivals or requests.runs:
        context.log.info(_summary(watch, len(requests.runs), room))
    return dg.SensorResult(
        run_requests=requests.runs,
        dynamic_partitions_requests=requests.partition_requests(),
        cursor=watch.cursor.dumps(),
        skip_reason=None if requests.runs else _skip_reason(watch, room, changed),
        asset_events=[_observation(watch)] if changed else [],
    )
