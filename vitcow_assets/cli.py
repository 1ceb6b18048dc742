"""``vitcow``: process videos in-process against the Dagster instance, and look up provenance.

``vitcow run PATH...`` registers each video as a partition of the instance at
``$DAGSTER_HOME`` (default ``$VITCOW_HOME/dagster``, created if missing) and materializes
all its assets and checks; the runs show in the Dagster UI of the same instance.
"""

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from vitcow_assets.storage import HOME_ENV, default_home

INSTANCE_YAML = """\
# Written by vitcow on first use. Local SQLite storage; one GPU step at a time.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 2
"""


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME``, defaulting to ``$VITCOW_HOME/dagster``; created with a dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or default_home() / "dagster").absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


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


def _outputs(layout) -> dict:
    import pyarrow.parquet as pq

    crops = pq.read_table(layout.crops_table, columns=["crop_path"])["crop_path"].to_pylist() if layout.crops_table.exists() else []
    return {
        "clips_manifest": str(layout.clips_table),
        "masks_table": str(layout.masks_table),
        "crops_manifest": str(layout.crops_table),
        "contact_sheet": str(layout.contact_sheet),
        "crop_videos": crops,
    }


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
    import dagster as dg

    from vitcow_assets import progress
    from vitcow_assets.definitions import build_resources, defs
    from vitcow_assets.defs.jobs import process_video_job
    from vitcow_assets.defs.partitions import video_partitions
    from vitcow_assets.media.files import sha256_file
    from vitcow_assets.media.video import VideoError, probe_video
    from vitcow_assets.registry import Registry
    from vitcow_assets.segmenters import SegmenterConfigError

    resources = build_resources(backend=args.backend)
    storage = resources["storage"]
    try:
        resources["segmenter"].segmenter  # load once, before any video: a bad setting fails here
    except SegmenterConfigError as exc:
        print(f"vitcow: {exc}", file=sys.stderr)
        return 2
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def(process_video_job.name)
    registry = Registry(storage.root())
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING" if not args.verbose else "DEBUG"}}}}
    ops: dict = {}
    if args.prompt:
        ops["prompts"] = {"config": {"prompt": args.prompt}}
    clip_config = {k: v for k, v in (("frames_per_clip", args.frames_per_clip), ("frame_step", args.frame_step), ("max_clips", args.max_clips)) if v is not None}
    if args.no_clip_files:
        clip_config["write_clip_files"] = False
    if clip_config:
        ops["clips"] = {"config": clip_config}
    if ops:
        run_config["ops"] = ops
    bar = _Bar(enabled=not args.no_progress)
    progress.set_listener(bar)
    reports, failed = [], 0
    try:
        for raw_path in args.paths:
            path = Path(raw_path)
            report: dict = {"path": str(path.absolute()), "partition_key": None, "status": "failed", "error": None}
            reports.append(report)
            bar.start(path.name)
            try:
                if not path.is_file():
                    raise VideoError(f"{path}: no such file")
                if still_being_written(path):
                    raise VideoError(f"{path.name}: still being written; run again once the copy has finished")
                probe_video(path)
                outcome = registry.register(path, sha256_file(path))
                key = outcome.registration.key
                report["partition_key"] = key
                if outcome.status == "duplicate":
                    report["duplicate_of"] = outcome.registration.source_path
                if not instance.has_dynamic_partition(video_partitions.name, key):
                    instance.add_dynamic_partitions(video_partitions.name, [key])
                result = job.execute_in_process(
                    run_config=run_config,
                    instance=instance,
                    partition_key=key,
                    resources=resources,
                    raise_on_error=False,
                    tags={"vitcow/launched_by": "cli", "vitcow/source_sha256": outcome.registration.sha256},
                )
                report["run_id"] = result.run_id
                if not result.success:
                    raise RuntimeError(_run_error(result))
                report["status"] = "success"
                report.update(_outputs(storage.video(key)))
            except (VideoError, OSError, RuntimeError, ValueError) as exc:
                failed += 1
                report["error"] = _one_line(str(exc))
            bar.stop(report["status"])
            if not args.json:
                line = f"{report['status']}: {path} -> {report['partition_key']}"
                print(line + (f" ({report['error']})" if report["error"] else ""))
    finally:
        progress.set_listener(None)
    if args.json:
        print(json.dumps({"videos": reports, "failed": failed}, indent=2))
    return 1 if failed else 0


def cmd_provenance(args: argparse.Namespace) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    crop = Path(args.crop_path).absolute()
    manifest = next((p / "crops.parquet" for p in crop.parents if (p / "crops.parquet").is_file()), None)
    if manifest is None:
        print(f"vitcow: no crops.parquet found above {crop}", file=sys.stderr)
        return 2
    table = pq.read_table(manifest)
    rows = table.filter(pc.equal(table["crop_path"], str(crop))).to_pylist()
    if not rows:
        print(f"vitcow: {crop} is not listed in {manifest}", file=sys.stderr)
        return 2
    print(json.dumps(rows[0], indent=2, default=str))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Create the storage root, landing folder and Dagster instance; print shell exports."""
    home = default_home()
    (home / "landing").mkdir(parents=True, exist_ok=True)
    if args.postgres:
        from vitcow_assets.instance_config import InstanceConfigError, postgres_instance_yaml

        config = Path(os.environ.get("DAGSTER_HOME") or home / "dagster").absolute() / "dagster.yaml"
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
        from vitcow_assets.instance_config import InstanceConfigError, create_tables

        try:
            create_tables(str(dagster_home))
        except InstanceConfigError as exc:
            print(f"vitcow: {dagster_home / 'dagster.yaml'} written, but {exc}", file=sys.stderr)
            return 2
    print(f"export {HOME_ENV}={shlex.quote(str(home))}")
    print(f"export DAGSTER_HOME={shlex.quote(str(dagster_home))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitcow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create VITCOW_HOME and DAGSTER_HOME; print their exports")
    init.add_argument("--postgres", metavar="URL", help="instance on Postgres: postgresql://USER@HOST[:PORT]/DB (password from $DAGSTER_PG_PASSWORD)")
    init.add_argument("--gpus", type=int, default=1, help="with --postgres: object_masks steps at a time (default 1)")
    init.add_argument("--force", action="store_true", help="with --postgres: replace an existing dagster.yaml")
    init.set_defaults(func=cmd_init)
    run = sub.add_parser("run", help="process videos end to end")
    run.add_argument("paths", nargs="+", metavar="PATH")
    run.add_argument("--prompt", help="text prompt for the segmenter (default: $VITCOW_PROMPT or 'cow')")
    run.add_argument("--backend", choices=["auto", "motion", "sam3"], default=os.environ.get("VITCOW_BACKEND", "auto"))
    run.add_argument("--frames-per-clip", type=int, help="frames in a clip (default 20)")
    run.add_argument("--frame-step", type=int, help="take every Nth source frame (default 4)")
    run.add_argument("--max-clips", type=int, help="keep at most N clips per video (seeded)")
    run.add_argument("--no-clip-files", action="store_true", help="write the clips manifest only, no clip videos")
    run.add_argument("--json", action="store_true", help="print one JSON document with every video's outcome")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=cmd_run)
    prov = sub.add_parser("provenance", help="print a crop's manifest row as JSON")
    prov.add_argument("crop_path")
    prov.set_defaults(func=cmd_provenance)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
