"""The landing sensor: new footage becomes a partition and a run, once it has finished arriving.

Each tick is one look at every landing source (``footage.intake.watch_sources``, with the
settle rule of ``core.settle``); this module only turns what arrived into partitions and
run requests. ``requests_for`` is shared with the nightly catch-up.
"""

import json
import time
from pathlib import Path

import dagster as dg

from vitcow_assets.defs.jobs import INFO_RUN_CONFIG, process_video_job
from vitcow_assets.defs.metadata import run_tags
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.footage.intake import Arrival, watch_sources
from vitcow_assets.footage.listing import SourceFile
from vitcow_assets.footage.prompt_files import video_stem_of_prompt_file
from vitcow_assets.footage.registry import Registry
from vitcow_assets.media.hashing import sha256_file

#: what an edited prompt file re-materializes: the plan and everything made from it
PROMPT_DOWNSTREAM = [dg.AssetKey(k) for k in ("prompts", "object_masks", "object_crops", "previews")]


class Requests:
    """Run requests and partitions to add, gathered over one evaluation."""

    def __init__(self, storage: VitcowStorage, instance: dg.DagsterInstance, log, run_key_prefix: str = "") -> None:
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
        if status == "unchanged":
            return
        if not self.instance.has_dynamic_partition(video_partitions.name, reg.key) and reg.key not in self.partitions:
            self.partitions.append(reg.key)
        self.log.info(f"{arrival.file.uri}: {status} footage, partition {reg.key}")
        self.runs.append(
            dg.RunRequest(
                partition_key=reg.key,
                run_key=f"{self.prefix}{reg.key}:r{reg.revision}:{reg.sha256[:16]}",
                tags=run_tags(reg, self.storage.patterns()),
                run_config=INFO_RUN_CONFIG,
            )
        )

    def add_prompt_change(self, file: SourceFile) -> None:
        """A run of the prompt plan and its downstream for the one video a prompt file belongs to."""
        stem, folder = video_stem_of_prompt_file(file.uri), str(Path(file.uri).parent)
        match = next(
            (r for r in Registry(self.storage.root()).all() if Path(r.source_path).stem == stem and str(Path(r.source_path).parent) == folder),
            None,
        )
        if match is None or match.key in {r.partition_key for r in self.runs}:
            return  # its video is not registered yet, or is about to run anyway
        if not self.instance.has_dynamic_partition(video_partitions.name, match.key):
            return
        try:
            digest = sha256_file(file.fs_path)
        except OSError as exc:
            self.log.warning(f"{file.uri}: cannot read ({exc.strerror or exc}); skipped")
            return
        self.log.info(f"{file.uri}: prompts changed, re-running masks and crops of partition {match.key}")
        self.runs.append(dg.RunRequest(partition_key=match.key, run_key=f"{match.key}:prompts:{digest[:16]}", asset_selection=PROMPT_DOWNSTREAM, run_config=INFO_RUN_CONFIG))

    def partition_requests(self) -> list:
        return [video_partitions.build_add_request(self.partitions)] if self.partitions else []


@dg.sensor(
    job=process_video_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers settled video files in the landing folder (and remote sources) and requests a run for each.",
)
def landing_sensor(context: dg.SensorEvaluationContext, storage: VitcowStorage) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    settings = storage.settings()
    watch = watch_sources(storage.root(), storage.sources(), cursor.get("sources", {}), time.time(), settings.settle_seconds, context.log)
    requests = Requests(storage, context.instance, context.log)
    for arrival in watch.arrivals:
        requests.add(arrival)
    for file in watch.prompt_files:
        requests.add_prompt_change(file)
    changed = watch.waiting != cursor.get("waiting", 0)
    quiet = requests.runs or not changed  # a quiet landing folder logs nothing every interval
    return dg.SensorResult(
        run_requests=requests.runs,
        dynamic_partitions_requests=requests.partition_requests(),
        cursor=json.dumps({"sources": watch.cursors, "waiting": watch.waiting}, sort_keys=True),
        skip_reason=None if quiet else (f"{watch.waiting} file(s) still arriving" if watch.waiting else None),
    )
