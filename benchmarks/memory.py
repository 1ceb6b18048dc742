"""Peak RSS of the whole CPU path (motion segmenter, clips with clip files as the assets write
them by default, crops), measured in a child process so that nothing this benchmark holds
counts. ``python -m benchmarks.memory SOURCE FOLDER [...]`` is that child: it prints one JSON
line of stage timings and the peak RSS seen after each stage.

``python -m benchmarks.memory FOOTAGE --sizes 1080p,4mp [--seconds 60] [--long-loops 20]
[--inputs DIR]`` measures at farm-camera sizes: FOOTAGE's first ``--seconds`` scaled to each
size (``benchmarks.feed``: 1920×1080, 2560×1440, or ``WxH``) and that looped
``--long-loops`` times (packets copied: the same frames again, 20 minutes by default), each
through the whole path above (``path_rss_mb``) and through ``vitcow run`` itself with fresh
``VITCOW_HOME`` and ``DAGSTER_HOME`` (``cli_rss_mb``: the child's peak resident set from
``wait4``, as ``/usr/bin/time -v`` reports it; Dagster included). One ``key=value`` line per
size: the short and long figures and ``long_vs_short`` (target: within 1.1). Targets of
``cli_rss_mb``: under 1 GiB at 1080p, under 1.5 GiB at 2560×1440. The long input takes as
long as it lasts to process (about real time on two cores; 25-30 minutes at 2560×1440):
``--long-loops 1`` skips it, ``--only cli`` (or ``path``) takes one of the two measures."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.detections import compute_masks
from benchmarks.inputs import VIDEO_ID, add_settings_args, load_input, settings_of
from benchmarks.project import project_clips, project_crops
from benchmarks.timing import measure
from vitcow_assets.core.clips import ClipSettings
from vitcow_assets.stages.cropping import CropSettings
from vitcow_assets.footage.layout import StorageRoot

REPO = Path(__file__).resolve().parents[1]


def _proc_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def peak_mb() -> float:
    """Peak RSS of this process in MB. On Linux this is ``VmHWM``: the high-water mark of this
    process's own address space. ``ru_maxrss`` is not used there because Linux carries it
    across fork + exec, so a child started by a big parent starts at the parent's RSS."""
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def whole_path(source: Path, folder: Path, settings: ClipSettings, crop: CropSettings, clip_files: bool) -> dict:
    """segment_clips + write_clips + write_crops in this process; the report of ``main``."""
    report: dict[str, float] = {"rss_start_mb": peak_mb()}
    inp = load_input(source, settings)
    layout = StorageRoot(folder / "home").video(VIDEO_ID)
    masks = folder / "masks.parquet"
    s, _ = measure(compute_masks, inp, masks)
    report.update(segment_s=s.wall, rss_after_segment_mb=peak_mb())
    s, fps = project_clips(inp, layout, clip_files)
    report.update(clips_s=s.wall, rss_after_clips_mb=peak_mb())
    s, crops = project_crops(inp, masks, crop, layout, fps)
    report.update(crops_s=s.wall, crops=crops, rss_after_crops_mb=peak_mb(), frames=inp.info.frame_count)
    report.update(rss_end_mb=_proc_status_mb("VmRSS") or float("nan"), peak_rss_mb=peak_mb())
    return report


def _output_and_usage(proc: subprocess.Popen, stream) -> tuple[str, "os.struct_rusage"]:
    """Read ``stream`` of ``proc`` to its end, then reap the child with ``wait4``: its output
    and its resource usage (``ru_maxrss``); ``proc.returncode`` is set. The child is killed if
    anything goes wrong on the way."""
    try:
        out = stream.read()
        stream.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return out, usage


def measure_rss(source: Path, folder: Path, settings: ClipSettings, crop: CropSettings, clip_files: bool = True) -> dict:
    """Run ``whole_path`` in a child process and return its report. The peak RSS is the one the
    child reads from its own ``VmHWM`` (see ``peak_mb``); ``wait4``'s ``ru_maxrss`` for that
    child alone is kept as ``wait4_maxrss_mb`` for comparison (on Linux it is at least the
    parent's RSS at the fork, so it overstates a small child started from this big parent)."""
    folder.mkdir(parents=True)
    cmd = [sys.executable, "-m", "benchmarks.memory", str(source), str(folder),
           "--frames-per-clip", str(settings.frames_per_clip), "--frame-step", str(settings.frame_step),
           "--crop-size", str(crop.crop_size), *([] if clip_files else ["--no-clip-files"])]
    w0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        out, usage = _output_and_usage(proc, proc.stdout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"RSS child failed with exit code {proc.returncode}")
    report = json.loads(out.strip().splitlines()[-1])
    report.update(wait4_maxrss_mb=usage.ru_maxrss / 1024, wall_s=time.perf_counter() - w0)
    return report


def cli_peak_rss(source: Path, folder: Path) -> dict:
    """``vitcow run`` (motion backend) on ``source`` in a child with a fresh ``VITCOW_HOME``
    and ``DAGSTER_HOME`` under ``folder``: its peak RSS (``wait4``) and wall time."""
    home = folder / "vitcow_home"
    env = {**os.environ, "VITCOW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    cmd = [sys.executable, "-m", "vitcow_assets.cli", "run", str(source), "--backend", "motion", "--prompt", "person", "--no-progress", "--json"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        err, usage = _output_and_usage(proc, proc.stderr)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"vitcow run on {source.name} failed with exit code {proc.returncode}: {err.strip()[-500:]}")
    return {"cli_rss_mb": usage.ru_maxrss / 1024, "cli_s": time.perf_counter() - started}


def measure_size(footage: Path, inputs: Path, size: str, args: argparse.Namespace) -> dict:
    """Both measures on the short input of one size and, with ``--long-loops`` > 1, the long."""
    from benchmarks.feed import loop_video, scaled_input

    settings, crop = settings_of(args)
    short = scaled_input(footage, inputs, size, args.seconds)
    inputs_to_measure = {"": short}
    if args.long_loops > 1:
        long = inputs / f"{short.stem}_x{args.long_loops}.mp4"
        inputs_to_measure["long_"] = long if long.is_file() else loop_video(short, long, args.long_loops)
    out: dict = {"size": size}
    for prefix, source in inputs_to_measure.items():
        with tempfile.TemporaryDirectory(prefix="vitcow-mem-") as tmp:
            if args.only != "cli":
                path = measure_rss(source, Path(tmp) / "path", settings, crop)
                out.update({f"{prefix}path_rss_mb": path["peak_rss_mb"], f"{prefix}frames": path["frames"]})
            if args.only != "path":
                out.update({f"{prefix}{k}": v for k, v in cli_peak_rss(source, Path(tmp)).items()})
        print(f"{size} {'long' if prefix else 'short'} measured", flush=True)
    if args.long_loops > 1:
        for name, key in (("long_vs_short", "cli_rss_mb"), ("long_vs_short_path", "path_rss_mb")):
            if key in out:
                out[name] = out[f"long_{key}"] / out[key]
    return out


def sizes_main(args: argparse.Namespace) -> int:
    footage = Path(args.source)
    if not footage.is_file():
        print(f"footage not found: {footage} (skipped)")
        return 0
    inputs = Path(args.inputs) if args.inputs else Path(tempfile.mkdtemp(prefix="vitcow-mem-inputs-"))
    inputs.mkdir(parents=True, exist_ok=True)
    try:
        for size in args.sizes.split(","):
            values = measure_size(footage, inputs, size.strip(), args)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()), flush=True)
    finally:
        if not args.inputs:
            shutil.rmtree(inputs, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("source")
    p.add_argument("folder", nargs="?", help="scratch folder for the outputs (the child)")
    add_settings_args(p)
    p.add_argument("--no-clip-files", action="store_true", help="write the clips manifest only")
    p.add_argument("--sizes", help="measure at these sizes (1080p, 4mp, WxH), see above")
    p.add_argument("--seconds", type=float, default=60.0, help="with --sizes: seconds of footage in the short input (default 60)")
    p.add_argument("--long-loops", type=int, default=20, help="with --sizes: the long input is the short one this many times (default 20)")
    p.add_argument("--inputs", help="with --sizes: folder to make (or find) the inputs in, kept")
    p.add_argument("--only", choices=("cli", "path"), help="with --sizes: take only this measure (a 20-minute input at 2560x1440 takes about an hour each)")
    args = p.parse_args(argv)
    if args.sizes:
        return sizes_main(args)
    if args.folder is None:
        p.error("the child needs SOURCE and FOLDER (or measure at sizes with --sizes)")
    settings, crop = settings_of(args)
    report = whole_path(Path(args.source), Path(args.folder), settings, crop, not args.no_clip_files)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
