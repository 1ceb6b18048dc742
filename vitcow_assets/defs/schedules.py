"""Nightly catch-up: register what the sensor missed, run the partitions whose crops are
missing or were made from other bytes than those now registered (a failed re-run), with the
sensor's back-pressure.

"Missed" files are found with the sensor's own rule (``core.settle``, two full sweeps a
second apart here, through the sensor's intake state) and registered as the sensor does
(``defs.sensors.Requests``), so both agree on what is new, changed or a duplicate of a
partition that already holds the bytes, and neither takes a file the other took.

Which partitions want a run (``core.catchup``) is asked of the instance in a few queries,
not one per partition: the partitions, the latest ``object_crops`` storage id of each (the
bytes each was made from are read once per materialization and remembered,
``footage.crop_origins``), the latest ``raw_video`` data version of each, the registry.
Like a sensor tick, an evaluation requests at most ``max_runs_per_tick`` runs, oldest
recording first, and none while ``max_pending_runs`` video runs are queued or in progress
(``defs.sensors.RunRoom``); the rest wait for the next evaluation (``VITCOW_CATCHUP_CRON``
may be more often than nightly). The UI is told how many wait: in the tick's skip reason or
log line, and as an observation of ``raw_video`` (``videos_without_crops``).
"""

import os
import time

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.events import DagsterEventType

from vitcow_assets.core.catchup import NO_CROPS, CatchupPlan, crops_current, plan_catchup
from vitcow_assets.core.intake_cursor import IntakeCursor
from vitcow_assets.defs.assets import object_crops, raw_video
from vitcow_assets.defs.dead_runs import UNFINISHED_STATUSES, release_dead_runs
from vitcow_assets.defs.jobs import INFO_RUN_CONFIG, process_video_job
from vitcow_assets.defs.metadata import SOURCE_SHA256, run_tags
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.sensors import BACKLOG_ASSET, Requests, RunRoom
from vitcow_assets.footage.crop_origins import CropOrigins
from vitcow_assets.footage.intake import IntakePolicy, watch_sources
from vitcow_assets.footage.provenance import backlog_seconds
from vitcow_assets.footage.registry import Registry

TIMEZONE_ENV = "VITCOW_TIMEZONE"
CRON_ENV = "VITCOW_CATCHUP_CRON"
DEFAULT_CRON = "0 2 * * *"
#: seconds between the catch-up's two looks at the landing folders
LOOK_GAP_S = 1.0
#: who the catch-up is in the intake state (its runs need no delivery check: it requests
#: every partition whose crops are missing)
CATCHUP_OWNER = "nightly_catchup"


#: seconds an evaluation spends at most reading crops materializations it has not read
#: before (the first evaluation over a big instance; what is left waits for the next)
READ_BUDGET_S = 20.0
#: crops materializations read per query
READ_BATCH = 500


def _sha_of(record) -> str | None:
    value = record.asset_materialization.metadata.get(SOURCE_SHA256)
    return None if value is None else str(value.value)


def crops_made_from(instance: dg.DagsterInstance, origins: CropOrigins, deadline: float) -> tuple[dict[str, str | None], set[str]]:
    """The sha256 each partition's latest ``object_crops`` recorded (None: none; partitions
    never materialized are absent), and the partitions not read yet for lack of time."""
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(object_crops.key, DagsterEventType.ASSET_MATERIALIZATION)
    known = origins.known()
    made = {key: known[key][1] for key, sid in latest.items() if known.get(key, (None,))[0] == sid}
    unread = sorted(sid for key, sid in latest.items() if key not in made)
    for start in range(0, len(unread), READ_BATCH):
        if time.monotonic() > deadline:
            break
        ids = unread[start : start + READ_BATCH]
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=object_crops.key, storage_ids=ids), limit=len(ids)).records
        rows = [(r.partition_key, r.storage_id, _sha_of(r)) for r in records if r.partition_key is not None]
        origins.remember(rows)
        made.update({key: sha for key, _, sha in rows})
    return made, set(latest) - set(made)


def raw_versions(instance: dg.DagsterInstance) -> dict[str, str]:
    """The data version (the sha256 of its bytes) of each partition's latest ``raw_video``."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(raw_video.key, DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG])
    return {key: found[DATA_VERSION_TAG] for key, found in tags.items() if DATA_VERSION_TAG in found}


def register_missed(storage: VitcowStorage, instance: dg.DagsterInstance, log) -> None:
    """Register the settled files of the local landing folders, adding new partitions: two
    full sweeps a second apart through the intake state the sensor keeps, taking at most
    ``max_registrations_per_tick`` files (the sensor takes the rest, oldest first)."""
    sources = [s for s in storage.sources() if not s.location.is_remote]
    policy = IntakePolicy.from_settings(storage.settings(), storage.patterns())
    requests = Requests(storage, instance, log)
    with storage.intake_state() as state:
        cursor = IntakeCursor(owner=CATCHUP_OWNER)
        first = watch_sources(storage.root(), sources, state, cursor, time.time(), policy, log, force_full=True, track_requests=False)
        time.sleep(LOOK_GAP_S)
        second = watch_sources(storage.root(), sources, state, first.cursor, time.time(), policy, log, force_full=True, track_requests=False)
    for arrival in first.arrivals + second.arrivals:
        requests.add(arrival)
    if requests.partitions:
        instance.add_dynamic_partitions(video_partitions.name, requests.partitions)


def busy_partitions(instance: dg.DagsterInstance) -> set[str]:
    """Partitions with a run that may still write their outputs."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=process_video_job.name, statuses=UNFINISHED_STATUSES))
    return {run.tags.get("dagster/partition") for run in runs} - {None}


class Backlog:
    """The partitions without current crops and no run under way, with what the registry
    holds of each (one read per partition: the evaluation's biggest cost at 100,000)."""

    def __init__(self, storage: VitcowStorage, instance: dg.DagsterInstance, busy: set[str]) -> None:
        registry, raws = Registry(storage.root()), raw_versions(instance)
        with_origins = CropOrigins.open(storage.intake_db, storage.root().home)
        made, self.unread = crops_made_from(instance, with_origins, time.monotonic() + READ_BUDGET_S)
        self.registrations, self.stale = {}, []
        for key in instance.get_dynamic_partitions(video_partitions.name):
            if key in busy or key in self.unread:
                continue
            registration = self.registrations[key] = registry.get(key)
            if not crops_current(made.get(key, NO_CROPS), registration.sha256 if registration else None, raws.get(key)):
                self.stale.append(key)

    def plan(self, room: int, patterns) -> CatchupPlan:
        recorded = {k: backlog_seconds(self.registrations[k], patterns) for k in self.stale if self.registrations[k] is not None}
        return plan_catchup(self.stale, recorded, room)


def _unread_note(backlog: Backlog) -> str:
    return f"; the crops of {len(backlog.unread)} video(s) not read yet (the next evaluation goes on)" if backlog.unread else ""


def _observe(instance: dg.DagsterInstance, plan: CatchupPlan) -> None:
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=BACKLOG_ASSET,
            description="videos without current crops, as the nightly catch-up found them",
            metadata={"videos_without_crops": dg.MetadataValue.int(plan.wanted), "videos_requested": dg.MetadataValue.int(len(plan.requested))},
        )
    )


@dg.schedule(
    job=process_video_job,
    cron_schedule=os.environ.get(CRON_ENV, DEFAULT_CRON),
    execution_timezone=os.environ.get(TIMEZONE_ENV, "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Registers landed files the sensor has not, then requests the partitions whose crops are missing or stale: oldest first, within the sensor's caps.",
)
def nightly_catchup(context: dg.ScheduleEvaluationContext, storage: VitcowStorage):
    instance = context.instance
    register_missed(storage, instance, context.log)
    release_dead_runs(instance, context.log)  # a crashed run must not keep its partition "busy"
    busy = busy_partitions(instance)
    backlog, room = Backlog(storage, instance, busy), RunRoom(context, storage)
    plan = backlog.plan(room() if backlog.stale else 0, storage.patterns())
    _observe(instance, plan)
    stamp = context.scheduled_execution_time.strftime("%Y%m%d") if context.scheduled_execution_time else "now"
    if plan.requested:
        context.log.info(
            f"{len(plan.requested)} of {plan.wanted} video(s) without current crops requested, oldest recording first; "
            f"{plan.waiting} wait for the next evaluation ({room.line}){_unread_note(backlog)}"
        )
        registered = backlog.registrations
        return [
            dg.RunRequest(
                partition_key=k, run_key=f"catchup:{stamp}:{k}", run_config=INFO_RUN_CONFIG,
                tags=run_tags(registered[k], storage.patterns()) if registered.get(k) else {},
            )
            for k in plan.requested
        ]
    if plan.waiting:
        return dg.SkipReason(f"{plan.waiting} video(s) wait for their crops: the run queue is full ({room.line}){_unread_note(backlog)}")
    running = f"every registered video has its crops or a run in progress ({', '.join(sorted(busy))})"
    return dg.SkipReason((running if busy else "every registered video has its crops") + _unread_note(backlog))
