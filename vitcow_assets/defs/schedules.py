"""Nightly catch-up: register what the sensor missed, run every partition without crops."""

import os
import time

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from vitcow_assets.defs.assets import object_crops
from vitcow_assets.defs.jobs import process_video_job
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.sensors import registration_request
from vitcow_assets.landing import is_settled, scan_landing

TIMEZONE_ENV = "VITCOW_TIMEZONE"


@dg.schedule(
    job=process_video_job,
    cron_schedule=os.environ.get("VITCOW_CATCHUP_CRON", "0 2 * * *"),
    execution_timezone=os.environ.get(TIMEZONE_ENV, "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Registers landed files the sensor has not, then requests every partition whose crops are missing.",
)
def nightly_catchup(context: dg.ScheduleEvaluationContext, storage: VitcowStorage):
    instance = context.instance
    now = time.time()
    changed = []
    for file in scan_landing(storage.landing()):
        if is_settled(file, None, now, storage.settle_seconds):
            request, new_partition = registration_request(storage, file.path, instance, context.log)
            if new_partition is not None:
                instance.add_dynamic_partitions(video_partitions.name, [new_partition])
            if request is not None:
                changed.append(request.partition_key)
    done = instance.get_materialized_partitions(object_crops.key)
    busy = {
        run.tags.get("dagster/partition")
        for run in instance.get_runs(filters=dg.RunsFilter(job_name=process_video_job.name, statuses=list(IN_PROGRESS_RUN_STATUSES)))
    }
    stamp = context.scheduled_execution_time.strftime("%Y%m%d") if context.scheduled_execution_time else "now"
    keys = [
        k
        for k in instance.get_dynamic_partitions(video_partitions.name)
        if (k in changed or k not in done) and k not in busy
    ]
    if not keys:
        return dg.SkipReason("every registered video has its crops")
    return [dg.RunRequest(partition_key=k, run_key=f"catchup:{stamp}:{k}") for k in keys]
