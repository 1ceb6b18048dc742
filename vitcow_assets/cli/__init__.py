"""vitcow: process videos in-process against the Dagster instance, and look up provenance.

`vitcow run PATH...` registers each video as a partition of the instance at $DAGSTER_HOME
(default $VITCOW_HOME/dagster, created if missing) and materializes all its assets and
checks; the runs show in the Dagster UI of the same instance.

The package: ``parser`` (here), ``run`` (the run command), ``init``, ``queries``
(provenance, tracks), ``inputs`` (what PATH arguments name), ``options`` (flags derived
from the settings classes), ``instance`` (the Dagster instance and its dagster.yaml),
``run_guard`` and ``partition_lock`` (a run never waits for ever, one writer per partition),
``evaluate`` (the ``eval`` group: retrieval, probe, predictions, frames), ``embed``
(``vitcow eval embed``: one checkpoint's embeddings of every crop).
"""

import argparse
import signal
import sys
import threading

from vitcow_assets.cli import dataset, embed, evaluate, labels
from vitcow_assets.cli.options import add_setting_flags, check_given
from vitcow_assets.core.clips import ClipSettings
from vitcow_assets.core.identity import LinkSettings
from vitcow_assets.datasets.build import DatasetSettings
from vitcow_assets.encoders.settings import EncoderSettings
from vitcow_assets.segmenters import CHOICES, FAMILIES, family_settings


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (`vitcow: ...`, exit 2), not usage text plus the error."""

    def error(self, message: str):
        self.exit(2, f"vitcow: {message}\n")


def _run_parser(sub) -> None:
    from vitcow_assets.stages.cropping import CropSettings

    run = sub.add_parser("run", help="process videos end to end")
    run.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders (every video under them), or sftp://user@host:port/path and s3://bucket/key URLs (ending in / : every video under it)")
    run.add_argument("--publish", metavar="URL", help="upload each finished video's crops, manifests and tables to URL/<farm>/<video_id>/ (default: $VITCOW_PUBLISH)")
    run.add_argument("--prompt", help="text prompt for this run, instead of prompt files and the default ($VITCOW_PROMPT or 'cow')")
    run.add_argument("--backend", choices=CHOICES, help="segmenter (default $VITCOW_BACKEND or auto: sam3 when a SAM3 checkpoint is set, else motion)")
    run.add_argument("--prefetch-clips", type=int, metavar="N", help="clips decoded ahead of the model (default $VITCOW_PREFETCH_CLIPS or 1; 0: none)")
    run.add_argument("--jobs", type=int, metavar="N", help="videos processed at once, one vitcow run process each (default: one per device the segmenter leases, e.g. per GPU; else 1)")
    run.add_argument("--device-wait-s", type=float, metavar="S", help="seconds to wait for a free device while every one holds another model (default $VITCOW_DEVICE_WAIT_S or 600)")
    run.add_argument("--device-locks", metavar="DIR", help="folder of the per-device lock files (default $VITCOW_DEVICE_LOCKS or <home>/locks/devices)")
    run.add_argument("--force", action="store_true", help="also process files whose bytes another partition already holds")
    add_setting_flags(run, ClipSettings, title="clips", from_env=False)
    run.add_argument("--clip-files", dest="clip_files", action=argparse.BooleanOptionalAction, default=None, help="write each clip as an H.264 file (default on)")
    add_setting_flags(run, CropSettings, title="crops", from_env=False)
    for family in FAMILIES:
        add_setting_flags(run, family_settings(family), prefix=family, title=f"{family} backends" if family == "sam3" else f"{family} backend")
    add_setting_flags(run, LinkSettings, prefix="link", title="linking objects across clips")
    run.add_argument("--json", action="store_true", help="print one JSON document with every video's outcome")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=_lazy("vitcow_assets.cli.run:cmd_run"))


def _lazy(path: str):
    """A command loaded when it runs: `vitcow --help` never imports Dagster."""

    def command(args: argparse.Namespace) -> int:
        import importlib

        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)(args)

    return command


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vitcow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    init = sub.add_parser("init", help="create VITCOW_HOME and DAGSTER_HOME; print their exports")
    init.add_argument("--postgres", metavar="URL", help="instance on Postgres: postgresql://USER@HOST[:PORT]/DB (password from $DAGSTER_PG_PASSWORD)")
    init.add_argument("--gpus", type=int, default=1, help="object_masks steps at a time: the gpu pool's slots, one per GPU (default 1)")
    init.add_argument("--force", action="store_true", help="replace an existing dagster.yaml")
    init.set_defaults(func=_lazy("vitcow_assets.cli.init:cmd_init"))
    _run_parser(sub)
    prov = sub.add_parser("provenance", help="print a crop's manifest row, its crop id and its page's address, as JSON")
    prov.add_argument("crop", help="a crop video (or a trimmed copy of one, as a dataset's lists name it), or a crop id (or its first 6+ characters)")
    prov.set_defaults(func=_lazy("vitcow_assets.cli.queries:cmd_provenance"))
    tracks = sub.add_parser("tracks", help="list a video's tracks (animals), or the crop videos of one track")
    tracks.add_argument("video", help="partition key, or the path of a registered video")
    tracks.add_argument("--track", type=int, help="print the crop paths of this track_id, one per line")
    tracks.add_argument("--json", action="store_true", help="print the tracks table rows as JSON")
    tracks.set_defaults(func=_lazy("vitcow_assets.cli.queries:cmd_tracks"))
    labels.add_parsers(sub, _lazy)
    dataset.add_parsers(sub, _lazy)
    embed.add_parsers(evaluate.add_parsers(sub, _lazy), _lazy)
    return parser


def _check_run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`vitcow run`'s settings checked now, by their own classes, naming the flag."""
    from vitcow_assets.stages.cropping import CropSettings

    if args.prompt is not None and not args.prompt.strip():
        parser.error("--prompt must not be empty")
    if args.prefetch_clips is not None and args.prefetch_clips < 0:
        parser.error(f"--prefetch-clips must be >= 0, got {args.prefetch_clips}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.device_wait_s is not None and args.device_wait_s < 0:
        parser.error(f"--device-wait-s must be >= 0, got {args.device_wait_s}")
    try:
        check_given(args, ClipSettings)
        check_given(args, CropSettings)
        for family in FAMILIES:
            check_given(args, family_settings(family), family)
        check_given(args, LinkSettings, "link")
    except ValueError as exc:
        parser.error(str(exc))


def console() -> int:
    """The ``vitcow`` program (console script and ``python -m vitcow_assets.cli``): ``main``
    in a process of its own, where a closed pipe ends it quietly (``vitcow tracks ... | head``).
    Only here: ``main`` called in another program's process (a test run, a notebook) leaves
    that process's SIGPIPE as Python set it, so a socket closed under it raises instead of
    killing it."""
    if hasattr(signal, "SIGPIPE") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return main()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `vitcow run` hands its options on to its processes
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "run":
        _check_run(parser, args)
    if args.command == "dataset":
        try:
            check_given(args, DatasetSettings, "dataset")
        except ValueError as exc:
            parser.error(str(exc))
    if args.command == "eval":
        evaluate.check_args(parser, args)
    if args.command == "eval" and args.eval_command == "embed":
        try:
            check_given(args, EncoderSettings, "encoder")
        except ValueError as exc:
            parser.error(str(exc))
    return args.func(args)


__all__ = ["build_parser", "main"]
