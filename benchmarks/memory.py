"""Peak RSS of the whole CPU path (motion segmenter, clips with clip files as the assets write
them by default, crops), measured in a child process so that nothing this benchmark holds
counts. ``python -m benchmarks.memory SOURCE FOLDER [...]`` is that child: it prints one JSON
line of stage timings and the peak RSS seen after each stage."""

import argparse
import json
import os
import shutil
import subprocess
import sys
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
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"RSS child failed with exit code {proc.returncode}")
    report = json.loads(out.strip().splitlines()[-1])
    report.update(wait4_maxrss_mb=usage.ru_maxrss / 1024, wall_s=time.perf_counter() - w0)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("source")
    p.add_argument("folder", help="scratch folder for the outputs")
    add_settings_args(p)
    p.add_argument("--no-clip-files", action="store_true", help="write the clips manifest only")
    args = p.parse_args(argv)
    settings, crop = settings_of(args)
    report = whole_path(Path(args.source), Path(args.folder), settings, crop, not args.no_clip_files)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
