"""What the benchmark prints: a table for people, then one line of ``key=value`` pairs."""

import dataclasses
import math
import os

from benchmarks.ffmpeg_limit import Limits
from benchmarks.inputs import Input
from benchmarks.timing import Sample, Stages, total
from vitcow_assets.media.video import EncoderSettings
from vitcow_assets.stages.cropping import CropSettings

Run = tuple[Stages, dict]  # the best repeat's stages and what it wrote


def ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or b <= 0 or math.isnan(a) or math.isnan(b):
        return float("nan")
    return a / b


def fmt(x) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.3g}"
    return str(x)


@dataclasses.dataclass
class Results:
    inp: Input
    crop: CropSettings
    encoder: EncoderSettings
    motion: Sample
    project: Run  # with clip files, as the assets write them by default
    project_noclipfiles: Run
    reference: Run
    limits: Limits | None
    rss_short: dict
    rss_long: dict
    long_loops: int
    load_start: float
    load_end: float

    def ratios(self) -> dict[str, float]:
        path, path_nofiles, ref = (total(r[0]).wall for r in (self.project, self.project_noclipfiles, self.reference))
        lim = self.limits
        return {
            "path_speedup_vs_reference": ratio(ref, path),
            "path_noclipfiles_speedup_vs_reference": ratio(ref, path_nofiles),
            "path_time_vs_limit": ratio(path_nofiles, lim.path.wall if lim else None),
            "path_clipfiles_time_vs_limit": ratio(path, lim.path_with_clip_files.wall if lim else None),
            # write_clips(write_files=True) alone (decode + RGB + one MP4 per clip) over the ffmpeg
            # CLI doing the same clip-file work.
            "clipfiles_time_vs_ffmpeg": ratio(self.project[0]["clips"].wall, lim.clip_files.wall if lim else None),
            "crops_speedup_vs_reference": ratio(self.reference[0]["crops"].wall, self.project[0]["crops"].wall),
            "rss_long_vs_short": ratio(self.rss_long["peak_rss_mb"], self.rss_short["peak_rss_mb"]),
        }


RATIO_NOTES = {
    "path_speedup_vs_reference": "reference (clip files + crops) / project path with clip files (the assets' default)",
    "path_noclipfiles_speedup_vs_reference": "reference (clip files + crops) / project path without clip files",
    "path_time_vs_limit": "project path without clip files / (ffmpeg decode + crop encode)",
    "path_clipfiles_time_vs_limit": "project path with clip files / (ffmpeg decode + crop encode + clip files)",
    "clipfiles_time_vs_ffmpeg": "write_clips(write_files=True) / ffmpeg clip files",
    "crops_speedup_vs_reference": "reference crops / write_crops",
    "rss_long_vs_short": "peak RSS on the long input / on the input",
}


def key_values(r: Results) -> dict[str, float | int]:
    """The machine-readable figures, the like-for-like headline first."""
    lim = r.limits
    nan = float("nan")
    return {
        **r.ratios(),
        "peak_rss_mb": r.rss_long["peak_rss_mb"],
        "motion_fps": r.inp.sampled_frames / r.motion.wall,
        "motion_x_realtime": r.inp.info.duration_s / r.motion.wall,
        "project_path_s": total(r.project_noclipfiles[0]).wall,
        "project_path_clipfiles_s": total(r.project[0]).wall,
        "reference_s": total(r.reference[0]).wall,
        "limit_s": lim.path.wall if lim else nan,
        "limit_clipfiles_s": lim.path_with_clip_files.wall if lim else nan,
        "ffmpeg_clipfiles_s": lim.clip_files.wall if lim else nan,
        "crops": r.project[1]["crops"],
        "crop_frames": r.project[1]["crop_frames"],
        "load_avg_start": r.load_start,
        "load_avg_end": r.load_end,
    }


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def section(self, title: str) -> None:
        self.rows.append((f"[{title}]", "", "", ""))

    def add(self, label: str, sample: Sample | None, note: str = "") -> None:
        if sample is None:
            self.rows.append((label, "skipped", "", note))
        else:
            self.rows.append((label, f"{sample.wall:8.3f}", f"{sample.cpu:7.2f}", note))

    def text(self, label: str, value: str, note: str = "") -> None:
        self.rows.append((label, value, "", note))

    def print(self) -> None:
        w = max(len(r[0]) for r in self.rows if not r[0].startswith("["))
        print(f"{'stage':<{w}}  {'wall s':>8}  {'cpu s':>7}  notes")
        print("-" * (w + 40))
        for label, wall, cpu, note in self.rows:
            if label.startswith("["):
                print(label)
            else:
                print(f"{label:<{w}}  {wall:>8}  {cpu:>7}  {note}")


def _motion(t: Table, r: Results) -> None:
    sampled, duration = r.inp.sampled_frames, r.inp.info.duration_s
    t.section(f"5. motion backend: segment_clips, {sampled} sampled frames of {duration:.1f} s video")
    t.add("segment_clips (MotionSegmenter)", r.motion,
          f"{sampled / r.motion.wall:.1f} sampled frames/s, {duration / r.motion.wall:.1f}x real time")


def _project(t: Table, r: Results) -> None:
    (files, info), (nofiles, info_nf) = r.project, r.project_noclipfiles
    t.section(f"1a. project path, with clip files as the assets' default ({info['clip_files']} clip files, "
              f"{info['crops']} crops, {info['crop_frames']} crop frames)")
    t.add("write_clips(write_files=True)", files["clips"],
          f"{r.inp.sampled_frames / files['clips'].wall:.0f} clip frames/s, {info['clip_mb']:.1f} MB of H.264")
    t.add("write_crops", files["crops"],
          f"{info['crop_frames'] / files['crops'].wall:.0f} crop frames/s, {info['crop_mb']:.1f} MB of H.264")
    t.add("path total", total(files))
    t.section("1b. project path, no clip files")
    t.add("write_clips(write_files=False)", nofiles["clips"], "manifest only")
    t.add("write_crops", nofiles["crops"], f"{info_nf['crop_frames'] / nofiles['crops'].wall:.0f} crop frames/s")
    t.add("path total", total(nofiles))


def _reference(t: Table, r: Results) -> None:
    stages, info = r.reference
    t.section(f"2. reference: OpenCV seek + mp4v, crops re-decode clip files ({info['crops']} crops)")
    t.add("clips (seek per clip, mp4v)", stages["clips"],
          f"{info['clip_files']} files, {info['clip_frames']} frames, {info['clip_mb']:.1f} MB of MPEG-4 Part 2")
    t.add("crops (re-decode clip per object)", stages["crops"],
          f"{info['crop_frames']} crop frames, {info['crop_mb']:.1f} MB of MPEG-4 Part 2")
    t.add("reference total", total(stages))


def _limits(t: Table, r: Results) -> None:
    enc, lim = r.encoder, r.limits
    t.section(f"3. ffmpeg CLI limits ({enc.codec} {enc.preset} crf {enc.crf} {enc.pix_fmt})")
    if lim is None:
        t.add("ffmpeg (not on PATH)", None)
        return
    t.add("ffmpeg decode (-f null)", lim.decode, f"{r.inp.decoded_frames} frames")
    t.add("ffmpeg encode crop frames", lim.crop_encode,
          f"{lim.crop_frames} real crop frames -> {lim.crops['crop_files']} files, {lim.crops['crop_mb']:.1f} MB")
    t.add("limit = decode + crop encode", lim.path)
    t.add("ffmpeg clip files", lim.clip_files,
          f"decode + select + x264 -> {lim.clips['clip_files']} files, {lim.clips['clip_mb']:.1f} MB")
    t.add("limit with clip files", lim.path_with_clip_files)


def _rss(t: Table, r: Results) -> None:
    t.section("4. peak RSS, whole CPU path in a child (segment + clips with clip files + crops)")
    for name, m in (("short", r.rss_short), (f"long ({r.long_loops}x)", r.rss_long)):
        t.text(
            f"{name}: {m['frames']} frames",
            f"{m['peak_rss_mb']:.0f} MB",
            f"after imports {m['rss_start_mb']:.0f} MB; segment {m['segment_s']:.1f} s, clips {m['clips_s']:.1f} s, "
            f"crops {m['crops_s']:.1f} s, {m['crops']} crops; peak after segment {m['rss_after_segment_mb']:.0f} / "
            f"clips {m['rss_after_clips_mb']:.0f} / crops {m['rss_after_crops_mb']:.0f} MB; RSS at end "
            f"{m['rss_end_mb']:.0f} MB (wait4 ru_maxrss {m['wait4_maxrss_mb']:.0f} MB)",
        )


def print_report(r: Results) -> None:
    """The table, the load line, then the ``key=value`` line (last)."""
    table = Table()
    for section in (_motion, _project, _reference, _limits, _rss):
        section(table, r)
    table.section("ratios")
    for key, value in r.ratios().items():
        table.text(key, fmt(value), RATIO_NOTES[key])
    table.print()
    print(f"1-min load average: {r.load_start:.2f} at start, {r.load_end:.2f} at end ({os.cpu_count()} CPUs); "
          "cpu s = user + system seconds of this process and its ffmpeg children")
    print(" ".join(f"{k}={fmt(v)}" for k, v in key_values(r).items()))
