"""The project's CPU path as the assets run it: ``write_clips`` (with or without clip files),
then ``write_crops`` at the clip rates of the manifest ``write_clips`` wrote."""

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.inputs import VIDEO_ID, Input
from benchmarks.timing import Sample, Stages, measure, mp4_count, mp4_mb
from vitcow_assets.core.tables import clip_fps_by_id
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets.stages.clipping import write_clips
from vitcow_assets.stages.cropping import CropProvenance, CropSettings, write_crops
from vitcow_assets.footage.layout import StorageRoot, VideoLayout


def provenance(inp: Input) -> CropProvenance:
    return CropProvenance(VIDEO_ID, str(inp.path), "0" * 64, MotionSegmenter.name, None, "bench", "bench-run")


def project_clips(inp: Input, layout: VideoLayout, clip_files: bool) -> tuple[Sample, dict[str, float]]:
    """Time ``write_clips``; return the sample and each clip's rate from the manifest it wrote."""
    s, (table, incomplete) = measure(write_clips, inp.path, VIDEO_ID, inp.clips, inp.info.fps, layout, clip_files)
    if incomplete:
        raise RuntimeError(f"write_clips dropped {len(incomplete)} clips")
    return s, clip_fps_by_id(table)


def project_crops(inp: Input, masks: Path, crop: CropSettings, layout: VideoLayout, fps: dict[str, float]) -> tuple[Sample, int]:
    """Time ``write_crops``; return the sample and the crop count."""
    s, (crops, incomplete) = measure(write_crops, inp.path, inp.clips, fps, masks, layout, crop, provenance(inp))
    if incomplete:
        raise RuntimeError(f"write_crops could not complete clips {incomplete}")
    return s, crops


def project_path(inp: Input, masks: Path, crop: CropSettings, layout: VideoLayout, clip_files: bool) -> tuple[Stages, int]:
    """Time ``write_clips`` then ``write_crops`` into ``layout``; return the stages and the crop count."""
    s_clips, fps = project_clips(inp, layout, clip_files)
    s_crops, crops = project_crops(inp, masks, crop, layout, fps)
    return {"clips": s_clips, "crops": s_crops}, crops


def run_project(inp: Input, masks: Path, crop: CropSettings, clip_files: bool, folder: Path) -> tuple[Stages, dict]:
    """One timed run of the project's path into ``folder``, with what it wrote."""
    layout = StorageRoot(folder / "home").video(VIDEO_ID)
    stages, crops = project_path(inp, masks, crop, layout, clip_files)
    frames = pq.read_table(layout.crops_table, columns=["frames"])["frames"].to_pylist()
    info = {
        "crops": crops,
        "crop_frames": sum(frames),
        "crop_files": mp4_count(layout.crops_dir),
        "clip_files": mp4_count(layout.clips_dir),
        "crop_mb": mp4_mb(layout.crops_dir),
        "clip_mb": mp4_mb(layout.clips_dir),
    }
    return stages, info


def profile_crops(inp: Input, masks: Path, crop: CropSettings, work: Path) -> None:
    """Print a pyinstrument profile of one ``write_crops`` run (when pyinstrument is installed)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("--profile-crops: pyinstrument is not installed (pip install pyinstrument); no profile")
        return
    folder = work / "profile"
    layout = StorageRoot(folder / "home").video(VIDEO_ID)
    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        write_crops(inp.path, inp.clips, inp.fps_by_clip, masks, layout, crop, provenance(inp))
    finally:
        profiler.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print("=== pyinstrument profile of write_crops (one run) ===")
    print(profiler.output_text(unicode=False, color=False, show_all=False))
