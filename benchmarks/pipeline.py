"""Benchmark of the CPU path (clips + crops) against a reference approach and FFmpeg limits.

Run from the repository root::

    python -m benchmarks.pipeline [FOOTAGE] [--repeats N] [--quick] [--profile-crops]

FOOTAGE defaults to ``../shared/footage/vtest.avi`` (beside the repository); when it is absent
the script says so and exits 0. Everything is written into one temporary folder that is removed
at the end, whatever happens.

What is timed, all on the same input (wall clock, ``time.perf_counter``, best of ``--repeats``):

1. The project's path (``benchmarks.project``): ``write_clips`` + ``write_crops`` with
   motion-backend detections computed once beforehand (not timed here), (a) with clip files,
   as the assets write them by default, and (b) without.
2. A reference approach (``benchmarks.reference``): OpenCV seek per clip, ``mp4v`` clip files,
   each clip file decoded again per object, ``mp4v`` crops cut with the project's geometry.
3. Practical limits with the ``ffmpeg`` CLI (``benchmarks.ffmpeg_limit``): one decode, one
   H.264 encode of the project's crop frames, and the clip-file work.
4. Peak RSS of the whole CPU path in a child process (``benchmarks.memory``), on the input and
   on the input concatenated ``--long-loops`` (20) times.
5. Motion segmenter throughput (``segment_clips``): sampled frames per second and multiple of
   real time.

The last line printed is ``key=value`` pairs for machines, the like-for-like headline first
(``path_speedup_vs_reference``: the reference over the project's path, both writing clip
files); the table above it is for people.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import ffmpeg_limit
from benchmarks.detections import compute_masks
from benchmarks.inputs import Input, add_settings_args, load_input, remux, settings_of
from benchmarks.memory import measure_rss
from benchmarks.project import profile_crops, run_project
from benchmarks.reference import run_reference
from benchmarks.report import Results, print_report
from benchmarks.timing import best_of, measure
from vitcow_assets.core.clips import ClipSettings
from vitcow_assets.media.video import EncoderSettings
from vitcow_assets.stages.cropping import CropSettings

DEFAULT_FOOTAGE = Path(__file__).resolve().parents[2] / "shared" / "footage" / "vtest.avi"
QUICK_FRAMES = 300


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("footage", nargs="?", default=str(DEFAULT_FOOTAGE), help="source video (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=2, help="repeats per timing, best kept (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help=f"use only the first {QUICK_FRAMES} frames (smoke run)")
    p.add_argument("--long-loops", type=int, default=20, help="copies of the input in the long RSS input (default: %(default)s)")
    add_settings_args(p)
    p.add_argument("--profile-crops", action="store_true", help="print a pyinstrument profile of one write_crops run")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.long_loops < 1:
        p.error("--long-loops must be >= 1")
    return args


def describe(inp: Input, footage: Path, args: argparse.Namespace) -> str:
    quick = f" (quick: first {QUICK_FRAMES} frames)" if args.quick else ""
    info, settings = inp.info, inp.settings
    return (f"input: {footage.name}{quick}: {info.width}x{info.height} {info.codec} {info.fps:g} fps, "
            f"{info.frame_count} frames, {info.duration_s:.1f} s; {len(inp.clips)} clips x {settings.frames_per_clip} "
            f"frames (step {settings.frame_step}); crop {args.crop_size}; repeats {args.repeats}; {os.cpu_count()} CPUs")


def warm_up(inp: Input, crop: CropSettings, work: Path) -> None:
    """Untimed run of every path on the first clip: lazy imports, codec and thread pool
    start-up, page cache; so that even ``--repeats 1`` times steady-state work."""
    warm = inp.first_clip()
    masks = work / "warm-masks.parquet"
    compute_masks(warm, masks)
    run_project(warm, masks, crop, True, work / "warm")
    run_reference(warm, masks, crop, (work / "warm-ref").resolve())
    for name in ("warm", "warm-ref"):
        shutil.rmtree(work / name, ignore_errors=True)


def time_motion(inp: Input, repeats: int, masks: Path):
    """Segment ``repeats`` times (the first run's table kept in ``masks``); return the best sample."""
    best = summary = None
    for i in range(repeats):
        out = masks if i == 0 else masks.with_name(f"masks-{i}.parquet")
        s, summ = measure(compute_masks, inp, out)
        summary = summary or summ
        if out != masks:
            out.unlink(missing_ok=True)
        if best is None or s.wall < best.wall:
            best = s
    print(f"motion: {summary.clips} clips, {summary.objects} objects, {summary.rows} rows", flush=True)
    return best


def measure_memory(source: Path, work: Path, loops: int, settings: ClipSettings, crop: CropSettings) -> tuple[dict, dict]:
    """Peak RSS reports of the whole path on ``source`` and on ``source`` concatenated ``loops`` times."""
    short = measure_rss(source, work / "rss-short", settings, crop)
    print("RSS (short) measured", flush=True)
    long_src = work / f"long{source.suffix}"
    remux(source, long_src, loops=loops)
    try:
        long = measure_rss(long_src, work / "rss-long", settings, crop)
    finally:
        long_src.unlink()
    print("RSS (long) measured", flush=True)
    return short, long


def run_all(inp: Input, args, crop: CropSettings, work: Path, load_start: float) -> Results:
    """Every timed part on ``inp``."""
    n, masks = args.repeats, work / "masks.parquet"
    warm_up(inp, crop, work)
    motion = time_motion(inp, n, masks)
    project = best_of(n, work, "project-files", lambda f: run_project(inp, masks, crop, True, f))
    nofiles = best_of(n, work, "project-nofiles", lambda f: run_project(inp, masks, crop, False, f))
    print("project path timed", flush=True)
    reference = best_of(n, work, "reference", lambda f: run_reference(inp, masks, crop, f))
    print("reference timed", flush=True)
    limits = None
    if ffmpeg_limit.available():
        limits = ffmpeg_limit.measure_limits(inp, masks, crop, EncoderSettings(), n, work)
        if limits.crop_frames != project[1]["crop_frames"]:
            print(f"warning: raw crop frames {limits.crop_frames} != project crop frames {project[1]['crop_frames']}")
        print("ffmpeg timed", flush=True)
    if args.profile_crops:
        profile_crops(inp, masks, crop, work)
    rss_short, rss_long = measure_memory(inp.path, work, args.long_loops, inp.settings, crop)
    return Results(inp, crop, EncoderSettings(), motion, project, nofiles, reference, limits, rss_short, rss_long,
                   args.long_loops, load_start, os.getloadavg()[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings, crop = settings_of(args)
    footage = Path(args.footage)
    if not footage.is_file():
        print(f"footage {footage} not found: nothing to benchmark (pass a video path)")
        return 0
    if not ffmpeg_limit.available():
        print("ffmpeg not found on PATH: the FFmpeg limits are skipped (apt-get install -y ffmpeg to get them)")
    with tempfile.TemporaryDirectory(prefix="vitcow-bench-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        source = footage.resolve()
        if args.quick:
            source = work / f"quick{footage.suffix}"
            remux(footage, source, max_packets=QUICK_FRAMES)
        inp = load_input(source, settings)
        if not inp.clips:
            print(f"{footage}: no clips to cut ({inp.info.frame_count} frames)")
            return 0
        print(describe(inp, footage, args), flush=True)
        load_start = os.getloadavg()[0]
        if load_start > 0.5:
            print(f"note: 1-min load average is {load_start:.1f} before the run: other work on this machine "
                  "inflates the wall times", flush=True)
        results = run_all(inp, args, crop, work, load_start)
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
