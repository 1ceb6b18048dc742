"""Nightly catch-up: register what the sensor missed, run every partition whose crops are
missing or were made from other bytes than those now registered (a failed re-run)."""

import os
import time

import dagster as dg

from vitcow_assets.defs.assets import object_crops
from vitcow_assets.defs.jobs import process_video_job
from vitcow_assets.defs.metadata import SOURCE_SHA256
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.sensors import registration_request
from vitcow_assets.landing import is_settled, scan_landing
from vitcow_assets.registry import Registry

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


def _crops_are_current(instance: dg.DagsterInstance, key: str, registry: Registry) -> bool:
    """The partition's latest crops were made from the bytes now registered for it."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=object_crops.key, asset_partitions=[key]), limit=1
    ).records
    if not records:
        return False
    registration = registry.get(key)
    made_from = records[0].asset_materialization.metadata.get(SOURCE_SHA256)
    return registration is None or (made_from is not None and made_from.value == registration.sha256)


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
            _, new_partition = registration_request(storage, file.path, instance, context.log)
            if new_partition is not None:
                instance.add_dynamic_partitions(video_partitions.name, [new_partition])
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
        return dg.SkipReason("every registered video has its crops")
    return [dg.RunRequest(partition_key=k, run_key=f"catchup:{stamp}:{k}") for k in keys]
