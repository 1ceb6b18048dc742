"""vitcow: process videos in-process against the Dagster instance, and look up provenance.

`vitcow run PATH...` registers each video as a partition of the instance at $DAGSTER_HOME
(default $VITCOW_HOME/dagster, created if missing) and materializes all its assets and
checks; the runs show in the Dagster UI of the same instance.
"""

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from vitcow_assets.footage.layout import HOME_ENV, default_home

INSTANCE_YAML = """\
# Written by vitcow on first use. Local SQLite storage; one GPU step at a time.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 2
    # one run per video at a time: a second run of the same partition waits in the queue
    tag_concurrency_limits:
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
# The daemon fails runs that never start or hang while canceling, and frees the pool slots
# of finished runs; the dead_runs_sensor fails runs whose process was killed.
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
"""


#: ``vitcow run --motion-*`` flags: MotionSettings name -> (type, help)
MOTION_FLAGS = {
    "threshold_sigmas": (float, "foreground threshold in robust noise standard deviations (default 5)"),
    "min_contrast": (float, "lowest foreground threshold, grey levels (default 10)"),
    "polarity": (str, "animals darker (dark) or brighter (bright) than the background, both, or auto (default)"),
    "min_area_ratio": (float, "smallest object as a fraction of the typical object area (default 0.3)"),
    "min_area_px": (int, "smallest object in pixels, replacing the derived size (default 0: derive)"),
    "min_track_contrast": (float, "drop tracks fainter than this many thresholds (default 2)"),
    "background_memory": (int, "background sample frames kept from earlier clips (default 48)"),
}


def dagster_home_path() -> Path:
    """``$DAGSTER_HOME``, defaulting to ``$VITCOW_HOME/dagster``."""
    return Path(os.environ.get("DAGSTER_HOME") or default_home() / "dagster").absolute()


def ensure_dagster_home() -> Path:
    """``dagster_home_path()``, created with a dagster.yaml if it has none."""
    home = dagster_home_path()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _open_instance():
    """The instance at ``$DAGSTER_HOME``; two first uses at once would both create its
    SQLite schema (and one would fail), so creating it is serialised by a lock file."""
    import fcntl

    import dagster as dg

    with open(Path(os.environ["DAGSTER_HOME"]) / ".vitcow-open.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return dg.DagsterInstance.get()


def still_being_written(path: Path, watch_seconds: float = 1.0, recent_seconds: float = 3.0) -> bool:
    """True when a recently modified file changes size or mtime while watched."""
    before = path.stat()
    if time.time() - before.st_mtime > recent_seconds:
        return False
    time.sleep(watch_seconds)
    after = path.stat()
    return (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _run_error(result) -> str:
    for event in result.all_events:
        data = getattr(event, "event_specific_data", None)
        error = getattr(data, "error", None)
        if error is not None:
            cause = error
            while getattr(cause, "cause", None) is not None and "Error occurred while" in cause.message:
                cause = cause.cause
            return _one_line(cause.message)
    return "run failed"


def _report_line(report: dict) -> str:
    """`success: PATH -> KEY`, `failed: PATH -> KEY: ERROR`, or `failed: ERROR` when the file
    never became a partition (the error names the file)."""
    if report["partition_key"] is None:
        return f"{report['status']}: {report['error']}"
    line = f"{report['status']}: {report['path']} -> {report['partition_key']}"
    return line + (f": {report['error']}" if report["error"] else "")


def _was_interrupted(result) -> bool:
    """The run ended because SIGINT/SIGTERM interrupted a step."""
    for event in result.all_events:
        error = getattr(getattr(event, "event_specific_data", None), "error", None)
        while error is not None:
            if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                return True
            error = error.cause
    return False


def _outputs(layout) -> dict:
    import pyarrow.parquet as pq

    crops = pq.read_table(layout.crops_table, columns=["crop_path"])["crop_path"].to_pylist() if layout.crops_table.exists() else []
    return {
        "clips_manifest": str(layout.clips_table),
        "masks_table": str(layout.masks_table),
        "crops_manifest": str(layout.crops_table),
        "tracks_table": str(layout.tracks_table),
        "contact_sheet": str(layout.contact_sheet),
        "crop_videos": crops,
    }


def _published(layout) -> dict:
    """Where ``published_crops`` put this video's crops (its published manifest)."""
    import pyarrow.parquet as pq

    manifest = layout.root / "published" / "crops.parquet"
    if not manifest.exists():
        return {"published_crops": []}
    return {"published_crops": pq.read_table(manifest, columns=["published_uri"])["published_uri"].to_pylist()}


class _Bar:
    """A tqdm bar per video that stages move along (stderr)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def start(self, name: str) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=1, desc=name, unit="clip", file=sys.stderr, leave=True)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(stage)
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def stop(self, status: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(status)
            self.bar.close()
            self.bar = None


def cmd_run(args: argparse.Namespace) -> int:
    ensure_dagster_home()
    from vitcow_assets.runtime import progress
    from vitcow_assets.definitions import build_resources, defs
    from vitcow_assets.defs.dead_runs import live_runs_of_partition, owner_tags, release_dead_runs
    from vitcow_assets.defs.jobs import process_video_job
    from vitcow_assets.defs.partitions import video_partitions
    from vitcow_assets.defs.resources import EnvironmentValueError
    from vitcow_assets.media.hashing import sha256_file
    from vitcow_assets.media.video import VideoError, probe_video
    from vitcow_assets.cli.partition_lock import PartitionBusy, partition_lock
    from vitcow_assets.footage.registry import Registry
    from vitcow_assets.footage.remote_ingest import source_tags
    from vitcow_assets.cli.inputs import RemoteInput, expand_url
    from vitcow_assets.remote.locations import is_url
    from vitcow_assets.cli.run_guard import RunGuard
    from vitcow_assets.segmenters import SegmenterConfigError

    try:
        # resolve the environment now (the runs get the same values) and load the model once,
        # before any video: a bad setting fails here, in one line
        resources = build_resources(
            backend=args.backend,
            publish_to=args.publish,
            segmenter_options={
                "sam3_max_objects": args.max_objects,
                "sam3_score_threshold": args.score_threshold,
                "sam3_new_object_threshold": args.new_object_threshold,
                "sam3_compile": True if args.compile else None,
                "prefetch_clips": args.prefetch_clips,
                **{f"motion_{name}": getattr(args, f"motion_{name}") for name in MOTION_FLAGS},
                "motion_split_touching": False if args.no_motion_split else None,
            },
            resolve=True,
        )
        resources["segmenter"].segmenter
    except (SegmenterConfigError, EnvironmentValueError) as exc:
        print(f"vitcow: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    storage = resources["storage"]
    instance = _open_instance()
    job = defs.resolve_job_def(process_video_job.name)
    registry = Registry(storage.root())
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING" if not args.verbose else "DEBUG"}}}}
    ops: dict = {}
    if args.prompt:
        ops["prompts"] = {"config": {"prompt": args.prompt}}
    if args.clip_config:
        ops["clips"] = {"config": args.clip_config}
    if ops:
        run_config["ops"] = ops
    bar = _Bar(enabled=not args.no_progress)
    progress.set_listener(bar)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler) if on_main_thread else None  # ends a run like Ctrl-C
    reports, failed = [], 0
    try:
        inputs = [i for p in args.paths for i in (expand_url(p, storage.settle_seconds) if is_url(p) else [p])]
        for item in inputs:
            path = Path(os.path.normpath(Path(item).absolute())) if isinstance(item, str) else None
            report: dict = {"path": item.uri if path is None else str(path), "partition_key": None, "status": "failed", "error": None}
            reports.append(report)
            if isinstance(item, RemoteInput) and item.waiting:
                report.update(status="waiting", error=item.error)
                if not args.json:
                    print(f"waiting: {item.uri} ({item.error})")
                continue
            try:
                if path is None:
                    bar.start(item.name)
                    outcome = item.stage(storage.root())
                else:
                    if not path.is_file():
                        raise VideoError(f"{item}: no such file" if not path.exists() else f"{item}: not a file")
                    if still_being_written(path):
                        raise VideoError(f"{path.name}: still being written; run again once the copy has finished")
                    probe_video(path)
                    bar.start(path.name)
                    outcome = registry.register(path, sha256_file(path))
                key = outcome.registration.key
                report["partition_key"] = key
                if outcome.status == "duplicate":
                    report["duplicate_of"] = outcome.registration.source_path
                with partition_lock(storage.root(), key):
                    release_dead_runs(instance)
                    busy = live_runs_of_partition(instance, job.name, key)
                    if busy:
                        raise PartitionBusy(
                            f"partition {key} has run {busy[0].run_id} {busy[0].status.value.lower()}; run again once it has finished"
                        )
                    _add_partition(instance, video_partitions.name, key)
                    with RunGuard(instance) as guard:
                        result = job.execute_in_process(
                            run_config=run_config,
                            instance=instance,
                            partition_key=key,
                            resources=resources,
                            raise_on_error=False,
                            tags={
                                "vitcow/launched_by": "cli",
                                "vitcow/source_sha256": outcome.registration.sha256,
                                **source_tags(outcome.registration, storage.patterns()),
                                **owner_tags(),
                            },
                        )
                report["run_id"] = result.run_id
                if guard.interrupted or _was_interrupted(result):
                    raise KeyboardInterrupt
                if not result.success:
                    raise RuntimeError(_run_error(result))
                report["status"] = "success"
                report.update(_outputs(storage.video(key)))
                if args.publish:
                    report.update(_published(storage.video(key)))
            except KeyboardInterrupt:
                report["status"], report["error"] = "interrupted", "interrupted (SIGINT or SIGTERM)"
                failed += 1
                bar.stop(report["status"])
                raise
            except Exception as exc:  # one line per video, whatever went wrong; the batch goes on
                failed += 1
                report["error"] = _one_line(str(exc) or type(exc).__name__)
            bar.stop(report["status"])
            if not args.json:
                print(_report_line(report))
    except KeyboardInterrupt:
        if not args.json:
            print(f"interrupted: {reports[-1]['path']}" if reports else "interrupted")
        interrupted = True
    else:
        interrupted = False
    finally:
        progress.set_listener(None)
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)
    if args.json:
        print(json.dumps({"videos": reports, "failed": failed, **({"interrupted": True} if interrupted else {})}, indent=2))
    return 130 if interrupted else 1 if failed else 0


def _add_partition(instance, partitions_name: str, key: str) -> None:
    """Add the partition; another process adding it at the same moment is not an error."""
    if instance.has_dynamic_partition(partitions_name, key):
        return
    try:
        instance.add_dynamic_partitions(partitions_name, [key])
    except Exception:
        if not instance.has_dynamic_partition(partitions_name, key):
            raise


def cmd_provenance(args: argparse.Namespace) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    crop = Path(os.path.normpath(Path(args.crop_path).absolute()))
    manifest = next((p / "crops.parquet" for p in crop.parents if (p / "crops.parquet").is_file()), None)
    if manifest is None:
        print(f"vitcow: no crops.parquet found above {crop}", file=sys.stderr)
        return 2
    table = pq.read_table(manifest)
    rows = table.filter(pc.equal(table["crop_path"], str(crop))).to_pylist()
    if not rows:
        print(f"vitcow: {crop} is not listed in {manifest}", file=sys.stderr)
        return 2
    print(compact_json(rows[0]))
    return 0


def compact_json(row: dict) -> str:
    """One key per line; lists (per-frame values) stay on their key's line."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value, default=str, separators=(', ', ': '))}" for key, value in row.items()]
    return "{\n" + ",\n".join(lines) + "\n}"
def _video_key(video: str, storage) -> str | None:
    """Partition key of a registered video file, or ``video`` itself taken as a key."""
    from vitcow_assets.footage.registry import Registry
    from vitcow_assets.footage.layout import check_partition_key

    path = Path(video)
    if path.is_file():
        source = str(path.absolute())
        return next((r.key for r in Registry(storage).all() if r.source_path == source), None)
    try:
        return check_partition_key(video)
    except ValueError:
        return None


def cmd_tracks(args: argparse.Namespace) -> int:
    """List a video's tracks (one animal each), or every crop of one track."""
    import pyarrow.parquet as pq

    from vitcow_assets.footage.layout import StorageRoot

    storage = StorageRoot(default_home())
    key = _video_key(args.video, storage)
    if key is None:
        print(f"vitcow: {args.video} is neither a registered video nor a partition key", file=sys.stderr)
        return 2
    table = storage.video(key).tracks_table
    if not table.is_file():
        print(f"vitcow: no tracks table for {key} ({table}): process the video first (vitcow run)", file=sys.stderr)
        return 2
    rows = pq.read_table(table).to_pylist()
    if args.track is not None:
        rows = [r for r in rows if r["track_id"] == args.track]
        if not rows:
            print(f"vitcow: {key} has no track {args.track}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(rows[0], indent=2))
        else:
            print("\n".join(rows[0]["crop_paths"]))
        return 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'track':>6} {'prompt':<12} {'first':>8} {'last':>8} {'frames':>7} {'clips':>6}")
    for r in rows:
        print(f"{r['track_id']:>6} {r['prompt'][:12]:<12} {r['first_source_frame']:>8} {r['last_source_frame']:>8} "
              f"{r['frames_present']:>7} {len(r['clips']):>6}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Create the storage root, landing folder and Dagster instance; print shell exports."""
    home = default_home()
    (home / "landing").mkdir(parents=True, exist_ok=True)
    if args.postgres:
        from vitcow_assets.cli.instance import InstanceConfigError, postgres_instance_yaml

        config = dagster_home_path() / "dagster.yaml"
        if config.exists() and not args.force:
            print(f"vitcow: {config} exists; pass --force to replace it", file=sys.stderr)
            return 2
        try:
            text = postgres_instance_yaml(INSTANCE_YAML, args.postgres, args.gpus)
        except InstanceConfigError as exc:
            print(f"vitcow: {exc}", file=sys.stderr)
            return 2
        from vitcow_assets.media.files import atomic_file

        with atomic_file(config) as tmp:
            tmp.write_text(text)
    dagster_home = ensure_dagster_home()
    if args.postgres:
        from vitcow_assets.cli.instance import InstanceConfigError, create_tables

        try:
            create_tables(str(dagster_home))
        except InstanceConfigError as exc:
            print(f"vitcow: {dagster_home / 'dagster.yaml'} written, but {exc}", file=sys.stderr)
            return 2
    print(f"export {HOME_ENV}={shlex.quote(str(home))}")
    print(f"export DAGSTER_HOME={shlex.quote(str(dagster_home))}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (`vitcow: ...`, exit 2), not usage text plus the error."""

    def error(self, message: str):
        self.exit(2, f"vitcow: {message}\n")


#: `vitcow run` options checked by a settings class -> the settings field they set
_CLIP_OPTIONS = {"frames_per_clip": "--frames-per-clip", "frame_step": "--frame-step", "max_clips": "--max-clips"}


def clip_settings_from_args(args: argparse.Namespace) -> dict:
    """The `clips` run config the options ask for, checked by `ClipSettings` (the same check
    as the launchpad's): a bad value is a `ValueError` naming the option."""
    from vitcow_assets.core.clips import ClipSettings

    given = {field: getattr(args, field) for field in _CLIP_OPTIONS if getattr(args, field) is not None}
    try:
        ClipSettings(**given)
    except ValueError as exc:
        message = str(exc)
        for field, option in _CLIP_OPTIONS.items():
            message = message.replace(field, option)
        raise ValueError(message) from None
    if args.no_clip_files:
        given["write_clip_files"] = False
    return given


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vitcow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create VITCOW_HOME and DAGSTER_HOME; print their exports")
    init.add_argument("--postgres", metavar="URL", help="instance on Postgres: postgresql://USER@HOST[:PORT]/DB (password from $DAGSTER_PG_PASSWORD)")
    init.add_argument("--gpus", type=int, default=1, help="with --postgres: object_masks steps at a time (default 1)")
    init.add_argument("--force", action="store_true", help="with --postgres: replace an existing dagster.yaml")
    init.set_defaults(func=cmd_init)
    run = sub.add_parser("run", help="process videos end to end")
    run.add_argument("paths", nargs="+", metavar="PATH", help="video files, or sftp://user@host:port/path and s3://bucket/key URLs (ending in / : every video under it)")
    run.add_argument("--publish", metavar="URL", help="upload each finished video's crops, manifests and tables to URL/<farm>/<video_id>/ (default: $VITCOW_PUBLISH)")
    run.add_argument("--prompt", help="text prompt for the segmenter (default: $VITCOW_PROMPT or 'cow')")
    run.add_argument(
        "--backend",
        choices=["auto", "motion", "sam3"],
        help="segmenter: sam3 (needs $VITCOW_SAM3_CHECKPOINT), motion (CPU, no weights) or auto "
        "(sam3 when a checkpoint is set); default $VITCOW_BACKEND or auto",
    )
    run.add_argument("--frames-per-clip", type=int, help="frames in a clip (default 20)")
    run.add_argument("--frame-step", type=int, help="take every Nth source frame (default 4)")
    run.add_argument("--max-clips", type=int, help="keep at most N clips per video (seeded)")
    run.add_argument("--no-clip-files", action="store_true", help="write the clips manifest only, no clip videos")
    run.add_argument("--max-objects", type=int, help="SAM3: at most N objects per clip and query (default $VITCOW_SAM3_MAX_OBJECTS or 0: no cap)")
    run.add_argument("--score-threshold", type=float, help="SAM3: detection score to keep (default $VITCOW_SAM3_SCORE_THRESHOLD or 0.5)")
    run.add_argument("--new-object-threshold", type=float, help="SAM3: score to start a new object (default $VITCOW_SAM3_NEW_OBJECT_THRESHOLD or 0.7)")
    run.add_argument("--compile", action="store_true", help="SAM3: torch.compile the model (CUDA only; default $VITCOW_SAM3_COMPILE)")
    run.add_argument("--prefetch-clips", type=int, help="clips decoded ahead of the model (default $VITCOW_PREFETCH_CLIPS or 1; 0: none)")
    for name, (kind, text) in MOTION_FLAGS.items():
        extra = {"choices": ["auto", "both", "dark", "bright"]} if name == "polarity" else {}
        run.add_argument(f"--motion-{name.replace('_', '-')}", dest=f"motion_{name}", type=kind, help=f"motion backend: {text}", **extra)
    run.add_argument("--no-motion-split", action="store_true", help="motion backend: do not split blobs holding several animals")
    run.add_argument("--json", action="store_true", help="print one JSON document with every video's outcome")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=cmd_run)
    prov = sub.add_parser("provenance", help="print a crop's manifest row as JSON")
    prov.add_argument("crop_path", help="a crop video listed in a crops.parquet above it")
    prov.set_defaults(func=cmd_provenance)
    tracks = sub.add_parser("tracks", help="list a video's tracks (animals), or the crop videos of one track")
    tracks.add_argument("video", help="partition key, or the path of a registered video")
    tracks.add_argument("--track", type=int, help="print the crop paths of this track_id, one per line")
    tracks.add_argument("--json", action="store_true", help="print the tracks table rows as JSON")
    tracks.set_defaults(func=cmd_tracks)
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `vitcow tracks ... | head` ends quietly
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.prompt is not None and not args.prompt.strip():
            parser.error("--prompt must not be empty")
        try:
            args.clip_config = clip_settings_from_args(args)
        except ValueError as exc:
            parser.error(str(exc))
    return args.func(args)

