"""``vitcow run PATH...``: register each video as a partition of the instance at
``$DAGSTER_HOME`` and materialize all its assets and checks in this process (with a
segmenter on several devices: one such process per device, each over its share of the
videos, ``cli.parallel``).

The runs show in the Dagster UI of the same instance. One video failing never stops the
others; every video gets one line (or one JSON entry). A file whose bytes another partition
already holds is skipped, naming that partition, unless ``--force`` (the landing sensor and
the catch-up skip it too). A file refused before it could become a partition (not a video)
is recorded on ``raw_video`` as an observation, so the UI shows it with its reason.
"""

import argparse
import dataclasses
import json
import signal
import sys
import threading

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.cli.inputs import Input, expand
from vitcow_assets.cli.instance import ensure_dagster_home, open_instance
from vitcow_assets.cli.materialize import first_error
from vitcow_assets.cli.options import given
from vitcow_assets.cli.parallel import child_options, fan_out, gpu_pool_slots, videos_at_once
from vitcow_assets.cli.partition_lock import PartitionBusy, partition_lock
from vitcow_assets.cli.progress_bar import ProgressBar
from vitcow_assets.cli.queries import fail
from vitcow_assets.cli.run_guard import RunGuard
from vitcow_assets.core.clips import ClipSettings
from vitcow_assets.core.identity import LinkSettings
from vitcow_assets.core.settings import SettingError
from vitcow_assets.defs.dead_runs import live_runs_of_partition, owner_tags, release_dead_runs
from vitcow_assets.defs.metadata import run_tags
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.footage.layout import VideoLayout
from vitcow_assets.media.video import VideoError, probe_video
from vitcow_assets.runtime import progress
from vitcow_assets.segmenters import FAMILIES, SegmenterConfigError, family_settings
from vitcow_assets.stages.cropping import CropSettings


def one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


@dataclasses.dataclass
class Session:
    """What every video of one ``vitcow run`` shares."""

    args: argparse.Namespace
    resources: dict
    instance: dg.DagsterInstance
    job: dg.JobDefinition
    run_config: dict
    bar: ProgressBar

    @property
    def storage(self):
        return self.resources["storage"]


def _resources(args: argparse.Namespace) -> dict:
    """The resources, environment read now and flags winning (the model not loaded yet)."""
    from vitcow_assets.definitions import build_resources

    options = {family: given(args, family_settings(family), family) for family in FAMILIES}
    options["link"] = given(args, LinkSettings, "link")
    resources = build_resources(
        backend=args.backend, publish_to=args.publish, backend_options=options, prefetch_clips=args.prefetch_clips,
        device_wait_s=args.device_wait_s, device_locks=args.device_locks,
    )
    resources["segmenter"].link_settings()
    return resources


def _preload(resources: dict) -> None:
    """The model loaded once, before any video (on a device leased for this process), so a
    bad setting fails here in one line."""
    tell = lambda line: print(f"vitcow: {line}", file=sys.stderr, flush=True)  # noqa: E731 - while every device is busy
    resources["segmenter"].preload(resources["storage"].root(), on_wait=tell)


def _run_config(args: argparse.Namespace) -> dict:
    level = "DEBUG" if args.verbose else "CRITICAL"  # the CLI reports errors and warnings itself
    config: dict = {"loggers": {"console": {"config": {"log_level": level}}}}
    ops: dict = {}
    if args.prompt:
        ops["prompts"] = {"config": {"prompt": args.prompt}}
    clip_config = given(args, ClipSettings)
    if args.clip_files is False:
        clip_config["write_clip_files"] = False
    if clip_config:
        ops["clips"] = {"config": clip_config}
    crop_config = given(args, CropSettings)
    if crop_config:
        ops["object_crops"] = {"config": crop_config}
    if ops:
        config["ops"] = ops
    return config


def _outputs(layout: VideoLayout) -> dict:
    crops = pq.read_table(layout.crops_table, columns=["crop_path"])["crop_path"].to_pylist() if layout.crops_table.exists() else []
    return {
        "clips_manifest": str(layout.clips_table),
        "masks_table": str(layout.masks_table),
        "crops_manifest": str(layout.crops_table),
        "tracks_table": str(layout.tracks_table),
        "contact_sheet": str(layout.contact_sheet),
        "crop_videos": crops,
    }


def _published(layout: VideoLayout) -> dict:
    """Where ``published_crops`` put this video's crops (its published manifest)."""
    manifest = layout.root / "published" / "crops.parquet"
    if not manifest.exists():
        return {"published_crops": []}
    return {"published_crops": pq.read_table(manifest, columns=["published_uri"])["published_uri"].to_pylist()}


def _was_interrupted(result) -> bool:
    """The run ended because SIGINT/SIGTERM interrupted a step."""
    for event in result.all_events:
        error = getattr(getattr(event, "event_specific_data", None), "error", None)
        while error is not None:
            if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                return True
            error = error.cause
    return False


def record_refusal(instance: dg.DagsterInstance, shown: str, reason: str) -> None:
    """A file refused before it became a partition, shown on ``raw_video`` in the UI."""
    instance.report_runless_asset_event(
        dg.AssetObservation(asset_key="raw_video", description=f"refused: {reason}", metadata={"refused": shown, "reason": reason})
    )


def _execute(session: Session, key: str, registration) -> "dg.ExecuteInProcessResult":
    """Materialize partition ``key`` in this process, one run of it at a time."""
    instance = session.instance
    with partition_lock(session.storage.root(), key):
        release_dead_runs(instance)
        busy = live_runs_of_partition(instance, session.job.name, key)
        if busy:
            raise PartitionBusy(f"partition {key} has run {busy[0].run_id} {busy[0].status.value.lower()}; run again once it has finished")
        if not instance.has_dynamic_partition(video_partitions.name, key):
            try:
                instance.add_dynamic_partitions(video_partitions.name, [key])
            except Exception:  # another process added it at the same moment
                if not instance.has_dynamic_partition(video_partitions.name, key):
                    raise
        tags = {"vitcow/launched_by": "cli", **run_tags(registration, session.storage.patterns()), **owner_tags()}
        with RunGuard(instance) as guard:
            result = session.job.execute_in_process(
                run_config=session.run_config, instance=instance, partition_key=key, resources=session.resources, raise_on_error=False, tags=tags
            )
    if guard.interrupted or _was_interrupted(result):
        raise KeyboardInterrupt
    return result


def _register(session: Session, item: Input):
    """Probe (local files: a non-video fails in one line before it is hashed), then start
    the video's progress bar and register it (remote files are downloaded first)."""
    if item.file is not None and item.file.is_local:
        try:
            probe_video(item.file.fs_path)
        except VideoError as exc:
            record_refusal(session.instance, item.shown, str(exc))
            raise
    session.bar.start(item.name)
    return item.take(session.storage.root())


def process(session: Session, item: Input, reports: list[dict]) -> dict:
    """One video end to end; its report (``status``: success, skipped, waiting, failed or
    interrupted, with a one-line ``error``), also appended to ``reports`` if interrupted."""
    report: dict = {"path": item.shown, "partition_key": None, "status": "failed", "error": None}
    if item.waiting:
        return {**report, "status": "waiting", "error": item.error}
    try:
        outcome = _register(session, item)
        registration = outcome.registration
        report["partition_key"] = registration.key
        if outcome.status == "duplicate":
            report["duplicate_of"] = registration.source_path
            if not session.args.force:
                message = f"same bytes as partition {registration.key} ({registration.source_path}); not processed again (--force runs it)"
                report.update(status="skipped", error=message)
                return report
        result = _execute(session, registration.key, registration)
        report["run_id"] = result.run_id
        if not result.success:
            raise RuntimeError(first_error(result))
        layout = session.storage.video(registration.key)
        report.update(status="success", **_outputs(layout), **(_published(layout) if session.args.publish else {}))
    except KeyboardInterrupt:
        report.update(status="interrupted", error="interrupted (SIGINT or SIGTERM)")
        reports.append(report)
        raise
    except Exception as exc:  # one line per video, whatever went wrong; the batch goes on
        report["error"] = one_line(str(exc) or type(exc).__name__)
    finally:
        session.bar.stop(report["status"])
    return report


def report_line(report: dict) -> str:
    """`success: PATH -> KEY`, `failed: PATH -> KEY: ERROR`, or `failed: ERROR` when the file
    never became a partition (the error names the file)."""
    if report["partition_key"] is None:
        return f"{report['status']}: {report['error']}"
    line = f"{report['status']}: {report['path']} -> {report['partition_key']}"
    return line + (f": {report['error']}" if report["error"] else "")


def _inputs(args: argparse.Namespace, storage):
    """What the PATH arguments name, as it comes (``cli.inputs.expand``)."""
    settings = storage.settings()
    tell = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731 - stdout holds the results
    return expand(args.paths, settings.settle_seconds, settings.settle_timeout_seconds, on_wait=tell)


def _process_all(session: Session, reports: list[dict], items=None) -> None:
    say = (lambda line: None) if session.args.json else print
    for item in _inputs(session.args, session.storage) if items is None else items:
        if item.error and not item.waiting:
            reports.append({"path": item.shown, "partition_key": None, "status": "failed", "error": item.error})
        else:
            reports.append(process(session, item, reports))
        say(report_line(reports[-1]))


def _finish(args: argparse.Namespace, reports: list[dict], interrupted: bool) -> int:
    """The JSON document (with ``--json``) and the exit status: 130 interrupted, 1 if a video failed."""
    failed = sum(r["status"] in ("failed", "interrupted") for r in reports)
    if args.json:
        print(json.dumps({"videos": reports, "failed": failed, **({"interrupted": True} if interrupted else {})}, indent=2))
    return 130 if interrupted else 1 if failed else 0


def _in_processes(args: argparse.Namespace, items: list[Input], jobs: int) -> int:
    """The videos dealt out to ``jobs`` ``vitcow run`` processes (``cli.parallel``); the
    inputs that are no video are reported here. Reports come in the inputs' order."""
    order = {item.shown: i for i, item in enumerate(items)}
    own = [{"path": i.shown, "partition_key": None, "status": "waiting" if i.waiting else "failed", "error": i.error} for i in items if i.error]
    videos = [item.shown for item in items if not item.error]
    print(f"vitcow: {len(videos)} videos on {jobs} devices, one vitcow run process each", file=sys.stderr, flush=True)
    slots = gpu_pool_slots(open_instance())
    if slots is not None and slots < jobs:
        print(f"vitcow: the gpu pool has {slots} slot(s): their object_masks steps take turns (`vitcow init --gpus {jobs} --force` lets {jobs} run at once)", file=sys.stderr, flush=True)
    shares = [videos[k::jobs] for k in range(jobs)]
    theirs, code = fan_out(shares, child_options(args.argv, args.paths), on_report=lambda report: None)
    reports = sorted(own + theirs, key=lambda r: order.get(r["path"], len(order)))
    if not args.json:
        for report in reports:
            print(report_line(report))
    if code == 2 and not theirs:
        return 2
    return _finish(args, reports, code == 130)


def cmd_run(args: argparse.Namespace) -> int:
    ensure_dagster_home()
    from vitcow_assets.definitions import defs

    items = None
    try:
        resources = _resources(args)
        jobs = args.jobs or videos_at_once(resources["segmenter"])
        if jobs > 1:
            items = list(_inputs(args, resources["storage"]))
            if sum(not item.error for item in items) > 1:
                return _in_processes(args, items, min(jobs, sum(not item.error for item in items)))
        _preload(resources)
    except (SegmenterConfigError, SettingError, ValueError) as exc:
        return fail(one_line(str(exc)))
    bar = ProgressBar(enabled=not args.no_progress)
    session = Session(args, resources, open_instance(), defs.resolve_job_def("process_video"), _run_config(args), bar)
    progress.set_listener(bar, None if args.verbose else bar.warn)
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if on_main else None  # ends a run like Ctrl-C
    reports: list[dict] = []
    interrupted = False
    try:
        _process_all(session, reports, items)
    except KeyboardInterrupt:
        interrupted = True
        if not args.json:
            print(f"interrupted: {reports[-1]['path']}" if reports else "interrupted")
    finally:
        progress.set_listener(None)
        if on_main:
            signal.signal(signal.SIGTERM, previous)
    return _finish(args, reports, interrupted)
