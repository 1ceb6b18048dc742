"""Nightly catch-up: register what the sensor missed, run every partition whose crops are
missing or were made from other bytes than those now registered (a failed re-run)."""

import os
import time

import dagster as dg

from vitcow_assets.defs.assets import object_crops, raw_video
from vitcow_assets.defs.dead_runs import release_dead_runs
from vitcow_assets.defs.jobs import process_video_job
from vitcow_assets.defs.metadata import SOURCE_SHA256
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.sensors import registration_request
from vitcow_assets.footage.listing import is_settled, scan_landing
from vitcow_assets.footage.registry import Registry

TIMEZONE_ENV = "VITCOW_TIMEZONE"
#: a run in one of these may still write the partition's outputs
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUSPENDED,
    dg.DagsterRunStatus.CANCELING,
]


def _latest(instance: dg.DagsterInstance, asset_key: dg.AssetKey, key: str):
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1).records
    return records[0].asset_materialization if records else None


def _crops_are_current(instance: dg.DagsterInstance, key: str, registry: Registry) -> bool:
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


@dg.schedule(
    job=process_video_job,
    cron_schedule=os.environ.get("VITCOW_CATCHUP_CRON", "0 2 * * *"),
    execution_timezone=os.environ.get(TIMEZONE_ENV, "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Registers landed files the sensor has not, then requests every partition whose crops are missing or stale.",
)
def nightly_catchup(context: dg.ScheduleEvaluationContext, storage: VitcowStorage):
    instance = context.instance
    now = time.time()
    for file in [f for folder in storage.local_landing_folders() for f in scan_landing(folder)]:
        if is_settled(file, None, now, storage.settle_seconds):
            try:
                _, new_partition = registration_request(storage, file.path, instance, context.log)
            except OSError as exc:  # unreadable, or gone since the scan
                context.log.warning(f"{file.path}: cannot read ({exc.strerror or exc}); skipped")
                continue
            if new_partition is not None:
                instance.add_dynamic_partitions(video_partitions.name, [new_partition])
    release_dead_runs(instance, context.log)  # a crashed run must not keep its partition "busy"
    busy = {
        run.tags.get("dagster/partition")
        for run in instance.get_runs(filters=dg.RunsFilter(job_name=process_video_job.name, statuses=UNFINISHED))
    }
    registry = Registry(storage.root())
    stamp = context.scheduled_execution_time.strftime("%Y%m%d") if context.scheduled_execution_time else "now"
    keys = [
        k
        for k in instance.get_dynamic_partitions(video_partitions.name)
        if k not in busy and not _crops_are_current(instance, k, registry)
    ]
    if not keys:
        waiting = sorted(k for k in busy if k)
        return dg.SkipReason(
            f"every registered video has its crops or a run in progress ({', '.join(waiting)})" if waiting else "every registered video has its crops"
        )
    return [dg.RunRequest(partition_key=k, run_key=f"catchup:{stamp}:{k}") for k in keys]
