"""The landing sensor: new footage becomes a partition and a run, once it has finished arriving."""

import json
import time

import dagster as dg

from vitcow_assets.defs.jobs import process_video_job
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.landing import is_settled, scan_landing
from vitcow_assets.media.files import sha256_file
from vitcow_assets.registry import Registry

SOURCE_SHA_TAG = "vitcow/source_sha256"


def registration_request(storage: VitcowStorage, path: str, instance: dg.DagsterInstance, log, run_key_prefix: str = "") -> tuple[dg.RunRequest | None, str | None]:
    """Register a settled file; return the run to request (if it is new footage) and the key
    to add as a partition (if the instance does not have it yet)."""
    outcome = Registry(storage.root()).register(path, sha256_file(path))
    reg = outcome.registration
    if outcome.status == "duplicate":
        log.info(f"{path}: same bytes as partition {reg.key} ({reg.source_path}); not processed again")
        return None, None
    if outcome.status == "unchanged":
        return None, None
    new_partition = None if instance.has_dynamic_partition(video_partitions.name, reg.key) else reg.key
    log.info(f"{path}: {outcome.status} footage, partition {reg.key}")
    request = dg.RunRequest(
        partition_key=reg.key,
        run_key=f"{run_key_prefix}{reg.key}:r{reg.revision}:{reg.sha256[:16]}",
        tags={SOURCE_SHA_TAG: reg.sha256},
    )
    return request, new_partition


@dg.sensor(
    job=process_video_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers settled video files in the landing folder and requests a run for each.",
)
def landing_sensor(context: dg.SensorEvaluationContext, storage: VitcowStorage) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, list[int]] = cursor.get("seen", {})
    done: dict[str, list[int]] = cursor.get("done", {})
    now = time.time()
    files = scan_landing(storage.landing())
    present = {f.path for f in files}
    requests, new_partitions, waiting = [], [], {}
    for file in files:
        if done.get(file.path) == file.signature:
            continue
        if file.path not in seen or not is_settled(file, seen[file.path], now, storage.settle_seconds):
            waiting[file.path] = file.signature
            continue
        request, new_partition = registration_request(storage, file.path, context.instance, context.log)
        done[file.path] = file.signature
        if request is not None:
            requests.append(request)
        if new_partition is not None and new_partition not in new_partitions:
            new_partitions.append(new_partition)
    new_cursor = json.dumps({"seen": waiting, "done": {p: s for p, s in done.items() if p in present}}, sort_keys=True)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[video_partitions.build_add_request(new_partitions)] if new_partitions else [],
        cursor=new_cursor,
        skip_reason=None if requests else f"{len(waiting)} file(s) still arriving, nothing new to process",
    )
