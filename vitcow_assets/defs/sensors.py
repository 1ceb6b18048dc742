"""The landing sensor: new footage becomes a partition and a run, once it has finished arriving."""

import json
import time
from pathlib import Path

import dagster as dg

from vitcow_assets.defs.jobs import process_video_job
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.footage.listing import is_settled, scan_landing
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.footage.prompt_files import video_stem_of_prompt_file
from vitcow_assets.footage.registry import RegisterOutcome, Registry
from vitcow_assets.footage.intake import remote_tick
from vitcow_assets.footage.remote_ingest import source_tags

SOURCE_SHA_TAG = "vitcow/source_sha256"


def registration_request(storage: VitcowStorage, path: str, instance: dg.DagsterInstance, log, run_key_prefix: str = "") -> tuple[dg.RunRequest | None, str | None]:
    """Register a settled file; return the run to request (if it is new footage) and the key
    to add as a partition (if the instance does not have it yet)."""
    outcome = Registry(storage.root()).register(path, sha256_file(path))
    return outcome_request(storage, outcome, path, instance, log, run_key_prefix)


def outcome_request(storage: VitcowStorage, outcome: RegisterOutcome, path: str, instance: dg.DagsterInstance, log, run_key_prefix: str = "") -> tuple[dg.RunRequest | None, str | None]:
    """The run (and partition to add) for a registration outcome; its source's farm and
    camera are run tags, so runs can be filtered by farm in the UI."""
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
        tags={SOURCE_SHA_TAG: reg.sha256, **source_tags(reg, storage.patterns())},
    )
    return request, new_partition


#: what an edited prompt file re-materializes: the plan and everything made from it
PROMPT_DOWNSTREAM = [dg.AssetKey(k) for k in ("prompts", "object_masks", "object_crops", "previews")]


def prompt_change_request(storage: VitcowStorage, path: str, instance: dg.DagsterInstance, requested: set[str], log) -> dg.RunRequest | None:
    """A run of the prompt plan and its downstream for the one video a prompt file belongs to."""
    stem = video_stem_of_prompt_file(path)
    folder = str(Path(path).parent)
    match = next(
        (r for r in Registry(storage.root()).all() if Path(r.source_path).stem == stem and str(Path(r.source_path).parent) == folder),
        None,
    )
    if match is None or match.key in requested or not instance.has_dynamic_partition(video_partitions.name, match.key):
        return None  # its video is not registered yet, or is about to run anyway
    log.info(f"{path}: prompts changed, re-running masks and crops of partition {match.key}")
    return dg.RunRequest(
        partition_key=match.key,
        run_key=f"{match.key}:prompts:{sha256_file(path)[:16]}",
        asset_selection=PROMPT_DOWNSTREAM,
    )


@dg.sensor(
    job=process_video_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers settled video files in the landing folder (and remote sources) and requests a run for each.",
)
def landing_sensor(context: dg.SensorEvaluationContext, storage: VitcowStorage) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, list[int]] = cursor.get("seen", {})
    done: dict[str, list[int]] = cursor.get("done", {})
    now = time.time()
    folders = storage.local_landing_folders()
    videos = [f for folder in folders for f in scan_landing(folder)]
    prompt_files = [f for folder in folders for f in scan_landing(folder, prompt_files=True)]
    waiting: dict[str, list[int]] = {}

    def arrived(files):
        """Files that changed since processed and have now settled (marked done)."""
        for file in files:
            if done.get(file.path) == file.signature:
                continue
            if file.path not in seen or not is_settled(file, seen[file.path], now, storage.settle_seconds):
                waiting[file.path] = file.signature
                continue
            done[file.path] = file.signature
            yield file

    requests, new_partitions = [], []
    for file in arrived(videos):
        try:
            request, new_partition = registration_request(storage, file.path, context.instance, context.log)
        except OSError as exc:  # unreadable, or gone since the scan: skip it, keep the tick
            context.log.warning(f"{file.path}: cannot read ({exc.strerror or exc}); skipped")
            done.pop(file.path, None)
            continue
        if request is not None:
            requests.append(request)
        if new_partition is not None and new_partition not in new_partitions:
            new_partitions.append(new_partition)
    arrivals, remote_state, remote_waiting = remote_tick(storage.root(), storage.sources(), cursor.get("remote", {}), now, storage.settle_seconds, context.log)
    for arrival in arrivals:
        request, new_partition = outcome_request(storage, arrival.outcome, arrival.file.uri, context.instance, context.log)
        if request is not None:
            requests.append(request)
        if new_partition is not None and new_partition not in new_partitions:
            new_partitions.append(new_partition)
    requested = {r.partition_key for r in requests}
    for file in arrived(prompt_files):
        try:
            request = prompt_change_request(storage, file.path, context.instance, requested, context.log)
        except OSError as exc:
            context.log.warning(f"{file.path}: cannot read ({exc.strerror or exc}); skipped")
            done.pop(file.path, None)
            continue
        if request is not None:
            requests.append(request)
    present = {f.path for f in videos + prompt_files}
    new_cursor = {"seen": waiting, "done": {p: sig for p, sig in done.items() if p in present}}
    if remote_state:
        new_cursor["remote"] = remote_state
    if remote_waiting:
        new_cursor["remote_waiting"] = remote_waiting
    new_cursor = json.dumps(new_cursor, sort_keys=True)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[video_partitions.build_add_request(new_partitions)] if new_partitions else [],
        cursor=new_cursor,
        skip_reason=_skip_reason(requests, waiting, seen, remote_waiting, cursor.get("remote_waiting", 0)),
    )


def _skip_reason(requests: list, waiting: dict, seen_before: dict, remote_waiting: int, remote_before: int) -> str | None:
    """A reason only when the files still arriving changed since the last tick: a quiet
    landing folder logs nothing every interval."""
    if requests or (set(waiting) == set(seen_before) and remote_waiting == remote_before):
        return None
    arriving = len(waiting) + remote_waiting
    return f"{arriving} file(s) still arriving" if arriving else None
