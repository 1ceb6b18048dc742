"""Nightly catch-up: register what the sensor missed, run every partition whose crops are
missing or were made from other bytes than those now registered (a failed re-run).

"Missed" files are found with the sensor's own rule (``core.settle``, two full sweeps a
second apart here, through the sensor's intake state) and registered as the sensor does
(``defs.sensors.Requests``), so both agree on what is new, changed or a duplicate of a
partition that already holds the bytes, and neither takes a file the other took.
"""

import os
import time

import dagster as dg

from vitcow_assets.defs.assets import object_crops, raw_video
from vitcow_assets.defs.dead_runs import UNFINISHED_STATUSES, release_dead_runs
from vitcow_assets.defs.jobs import INFO_RUN_CONFIG, process_video_job
from vitcow_assets.defs.metadata import SOURCE_SHA256
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.sensors import Requests
from vitcow_assets.core.intake_cursor import IntakeCursor
from vitcow_assets.footage.intake import IntakePolicy, watch_sources
from vitcow_assets.footage.registry import Registry

TIMEZONE_ENV = "VITCOW_TIMEZONE"
CRON_ENV = "VITCOW_CATCHUP_CRON"
DEFAULT_CRON = "0 2 * * *"
#: seconds between the catch-up's two looks at the landing folders
LOOK_GAP_S = 1.0
#: who the catch-up is in the intake state (its runs need no delivery check: it requests
#: every partition whose crops are missing)
CATCHUP_OWNER = "nightly_catchup"


def _latest(instance: dg.DagsterInstance, asset_key: dg.AssetKey, key: str):
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1).records
    return records[0].asset_materialization if records else None


def crops_are_current(instance: dg.DagsterInstance, key: str, registry: Registry) -> bool:
    """The partition has materialized crops (an ``object_crops`` materialization, not a file
    or registry record), made from the bytes it should have now: those registered for it,
    else those its latest ``raw_video`` materialized (its data version)."""
    crops = _latest(instance, object_crops.key, key)
    if crops is None:
        return False
    registration = registry.get(key)
    if registration is not None:
        current = registration.sha256
    else:
        raw = _latest(instance, raw_video.key, key)
        current = raw.tags.get("dagster/data_version") if raw is not None else None
    if current is None:
        return True  # nothing known of the partition's bytes to compare the crops with
    made_from = crops.metadata.get(SOURCE_SHA256)
    return made_from is not None and made_from.value == current


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


@dg.schedule(
    job=process_video_job,
    cron_schedule=os.environ.get(CRON_ENV, DEFAULT_CRON),
    execution_timezone=os.environ.get(TIMEZONE_ENV, "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Registers landed files the sensor has not, then requests every partition whose crops are missing or stale.",
)
def nightly_catchup(context: dg.ScheduleEvaluationContext, storage: VitcowStorage):
    instance = context.instance
    register_missed(storage, instance, context.log)
    release_dead_runs(instance, context.log)  # a crashed run must not keep its partition "busy"
    busy = busy_partitions(instance)
    registry = Registry(storage.root())
    stamp = context.scheduled_execution_time.strftime("%Y%m%d") if context.scheduled_execution_time else "now"
    keys = [k for k in instance.get_dynamic_partitions(video_partitions.name) if k not in busy and not crops_are_current(instance, k, registry)]
    if keys:
        return [dg.RunRequest(partition_key=k, run_key=f"catchup:{stamp}:{k}", run_config=INFO_RUN_CONFIG) for k in keys]
    waiting = sorted(busy)
    return dg.SkipReason(
        f"every registered video has its crops or a run in progress ({', '.join(waiting)})" if waiting else "every registered video has its crops"
    )
