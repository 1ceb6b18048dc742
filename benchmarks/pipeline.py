"""Benchmark of the CPU path (clips + crops) against a reference approach and FFmpeg limits.

Run from the repository root::

    python -m benchmarks.pipeline [FOOTAGE] [--repeats N] [--quick] [--profile-crops]

FOOTAGE defaults to ``../shared/footage/vtest.avi`` (beside the repository); when it is absent
the script says so and exits 0. Everything is written into one temporary folder that is removed
at the end, whatever happens.

What is timed, all on the same input (wall clock, ``time.perf_counter``, best of ``--repeats``):

1. The project's path: ``write_clips`` + ``write_crops`` with motion-backend detections computed
   once beforehand (not timed here), (a) without clip files and (b) with clip files.
2. A reference approach: OpenCV ``VideoCapture`` with a seek per clip, every ``frame_step``-th
   frame written to an ``mp4v`` clip file; then, per (clip, object), the clip file is decoded
   again and the same square window (``crop_window`` + ``extract_crop``) is written to an
   ``mp4v`` crop video.
3. Practical limits with the ``ffmpeg`` CLI: one decode of the source, one H.264 encode of as
   many crop frames as the project wrote (same encoder settings), and the clip-file work
   (decode, keep every ``frame_step``-th frame, encode H.264 clip files).
4. Peak RSS of the whole CPU path (motion segmenter included) in a child process, on the input
   and on the input concatenated ``--long-loops`` (20) times.
5. Motion segmenter throughput (``segment_clips``): sampled frames per second and multiple of
   real time.

The last line printed is ``key=value`` pairs for machines; the table above it is for people.
"""

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow.parquet as pq

from vitcow_assets.core.clips import ClipSettings, ClipWindow, plan_clips
from vitcow_assets.core.geometry import crop_window, extract_crop
from vitcow_assets.media.video import EncoderSettings, VideoInfo, probe_video
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets.stages.clipping import write_clips
from vitcow_assets.stages.cropping import CropProvenance, CropSettings, write_crops
from vitcow_assets.stages.frames import ClipFrameStream
from vitcow_assets.stages.segmentation import segment_clips
from vitcow_assets.storage import StorageRoot

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOOTAGE = REPO.parent / "shared" / "footage" / "vtest.avi"
VIDEO_ID = "bench"
PROMPT = "person"
QUICK_FRAMES = 300


# --------------------------------------------------------------------------------------------
# timing


@dataclasses.dataclass
class Sample:
    """Wall seconds and CPU seconds (user + system of this process and of waited children)."""

    wall: float
    cpu: float

    def __add__(self, other: "Sample") -> "Sample":
        return Sample(self.wall + other.wall, self.cpu + other.cpu)


def measure(fn: Callable, *args, **kwargs):
    """Run ``fn`` once; return ``(Sample, result)``."""
    t0 = os.times()
    w0 = time.perf_counter()
    result = fn(*args, **kwargs)
    w1 = time.perf_counter()
    t1 = os.times()
    cpu = (t1.user - t0.user) + (t1.system - t0.system)
    cpu += (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    return Sample(w1 - w0, cpu), result


def best_of(repeats: int, work: Path, name: str, run: Callable[[Path], tuple[dict[str, Sample], object]]):
    """Call ``run(fresh_folder)`` ``repeats`` times; keep the repeat with the least total wall time.

    ``run`` returns ``({stage: Sample}, info)``. Each repeat writes into a fresh folder that is
    removed after it (outside the timed code), so no repeat times the deletion of another's output.
    """
    best: tuple[dict[str, Sample], object] | None = None
    for i in range(repeats):
        folder = work / f"{name}-{i}"
        folder.mkdir(parents=True)
        try:
            stages, info = run(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        total = sum(s.wall for s in stages.values())
        if best is None or total < sum(s.wall for s in best[0].values()):
            best = (stages, info)
    return best


def total(stages: dict[str, Sample]) -> Sample:
    out = Sample(0.0, 0.0)
    for s in stages.values():
        out = out + s
    return out


# --------------------------------------------------------------------------------------------
# inputs


def remux(src: Path, dst: Path, loops: int = 1, max_packets: int | None = None) -> None:
    """Copy the video stream's packets (no re-encoding) into ``dst``: the first ``max_packets``
    of them, ``loops`` times one after the other with shifted timestamps. Used for the quick
    (truncated) input and for the long (concatenated) input; needs no ``ffmpeg`` CLI."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        ostream = out.add_stream_from_template(stream)
        offset = 0
        for _ in range(loops):
            inp.seek(0)
            last, count, duration = None, 0, 1
            for packet in inp.demux(stream):
                if packet.dts is None:
                    continue
                if max_packets is not None and count >= max_packets:
                    break
                last = packet.dts if last is None else max(last, packet.dts)
                duration = packet.duration or duration
                packet.stream = ostream
                packet.dts += offset
                if packet.pts is not None:
                    packet.pts += offset
                out.mux(packet)
                count += 1
            offset += (last or 0) + duration


@dataclasses.dataclass
class Input:
    path: Path
    info: VideoInfo
    clips: list[ClipWindow]
    settings: ClipSettings

    @property
    def clip_fps(self) -> float:
        return self.info.fps / self.settings.frame_step

    @property
    def sampled_frames(self) -> int:
        return sum(c.frames for c in self.clips)

    @property
    def decoded_frames(self) -> int:
        """Frames a front-to-back decode needs: up to the last frame a clip uses."""
        return max(c.source_end for c in self.clips) + 1


def load_input(path: Path, settings: ClipSettings) -> Input:
    info = probe_video(path)
    return Input(path, info, plan_clips(info.frame_count, info.fps, settings), settings)


def compute_masks(inp: Input, out: Path):
    """Motion-backend detections of every clip into ``out`` (``segment_clips``)."""
    segmenter = MotionSegmenter()

    @contextlib.contextmanager
    def open_session(frames):
        with segmenter.start_session(frames) as session:
            yield session

    return segment_clips(inp.path, VIDEO_ID, inp.clips, open_session, PROMPT, segmenter.name, out)


def provenance(inp: Input) -> CropProvenance:
    return CropProvenance(VIDEO_ID, str(inp.path), "0" * 64, MotionSegmenter.name, None, "bench", "bench-run")


def detection_plans(masks: Path) -> dict[str, dict[int, dict[int, np.ndarray]]]:
    """``clip_id -> object_id -> clip_frame -> xyxy`` from the masks table."""
    cols = pq.read_table(masks, columns=["clip_id", "clip_frame", "object_id", "x1", "y1", "x2", "y2"]).to_pydict()
    plans: dict[str, dict[int, dict[int, np.ndarray]]] = {}
    for i, clip_id in enumerate(cols["clip_id"]):
        xyxy = np.array([cols["x1"][i], cols["y1"][i], cols["x2"][i], cols["y2"][i]], np.float32)
        plans.setdefault(clip_id, {}).setdefault(cols["object_id"][i], {})[cols["clip_frame"][i]] = xyxy
    return plans


# --------------------------------------------------------------------------------------------
# 1. the project's path


def mp4_mb(folder: Path) -> float:
    """Total size of the MP4 files under ``folder``, MB."""
    return sum(p.stat().st_size for p in folder.rglob("*.mp4")) / 1e6


def crops_written(result) -> int:
    """``write_crops``'s crop count: it returns the count, or ``(count, incomplete clip ids)``."""
    if isinstance(result, tuple):
        count, incomplete = result
        if incomplete:
            raise RuntimeError(f"write_crops could not complete clips {incomplete}")
        return int(count)
    return int(result)


def run_project(inp: Input, masks: Path, crop: CropSettings, write_files: bool, folder: Path):
    layout = StorageRoot(folder / "home").video(VIDEO_ID)
    s_clips, (_, incomplete) = measure(write_clips, inp.path, VIDEO_ID, inp.clips, inp.info.fps, layout, write_files)
    if incomplete:
        raise RuntimeError(f"write_clips dropped {len(incomplete)} clips")
    s_crops, result = measure(write_crops, inp.path, inp.clips, inp.clip_fps, masks, layout, crop, provenance(inp))
    crops = crops_written(result)
    frames = pq.read_table(layout.crops_table, columns=["frames"])["frames"].to_pylist()
    info = {
        "crops": crops,
        "crop_frames": sum(frames),
        "crop_files": sum(1 for _ in layout.crops_dir.rglob("*.mp4")),
        "clip_files": sum(1 for _ in layout.clips_dir.glob("*.mp4")),
        "crop_mb": mp4_mb(layout.crops_dir),
        "clip_mb": mp4_mb(layout.clips_dir),
    }
    return {"clips": s_clips, "crops": s_crops}, info


# --------------------------------------------------------------------------------------------
# 2. the reference approach (OpenCV: seek per clip, re-decode the clip file per object)


def reference_clips(inp: Input, out: Path) -> tuple[dict[str, Path], int]:
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    paths: dict[str, Path] = {}
    written = 0
    cap = cv2.VideoCapture(str(inp.path))
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot open {inp.path}")
    try:
        for clip in inp.clips:
            cap.set(cv2.CAP_PROP_POS_FRAMES, clip.source_start)
            path = out / f"{clip.clip_id}.mp4"
            writer = None
            for offset in range(clip.source_end - clip.source_start + 1):
                ok, frame = cap.read()
                if not ok:
                    break
                if offset % clip.frame_step:
                    continue
                if writer is None:
                    height, width = frame.shape[:2]
                    writer = cv2.VideoWriter(str(path), fourcc, inp.clip_fps, (width, height))
                writer.write(frame)
                written += 1
            if writer is not None:
                writer.release()
                paths[clip.clip_id] = path
    finally:
        cap.release()
    return paths, written


def reference_crops(inp: Input, clip_paths: dict[str, Path], masks: Path, crop: CropSettings, out: Path) -> tuple[int, int]:
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    size = crop.crop_size
    black = np.zeros((size, size, 3), np.uint8)
    plans = detection_plans(masks)
    crops = frames = 0
    for clip in inp.clips:
        objects = plans.get(clip.clip_id, {})
        if clip.clip_id not in clip_paths:
            continue
        for object_id in sorted(objects):
            boxes = objects[object_id]
            path = out / clip.clip_id / f"obj{object_id:04d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            cap = cv2.VideoCapture(str(clip_paths[clip.clip_id]))
            writer = cv2.VideoWriter(str(path), fourcc, inp.clip_fps, (size, size))
            for clip_frame in range(clip.frames):
                ok, frame = cap.read()
                if not ok:
                    break
                xyxy = boxes.get(clip_frame)
                if xyxy is None:
                    writer.write(black)
                else:
                    writer.write(extract_crop(frame, crop_window(xyxy, size, crop.margin), size))
                frames += 1
            cap.release()
            writer.release()
            crops += 1
    return crops, frames


def run_reference(inp: Input, masks: Path, crop: CropSettings, folder: Path):
    (folder / "clips").mkdir(parents=True)
    (folder / "crops").mkdir()
    s_clips, (paths, clip_frames) = measure(reference_clips, inp, folder / "clips")
    s_crops, (crops, crop_frames) = measure(reference_crops, inp, paths, masks, crop, folder / "crops")
    info = {"clip_files": len(paths), "clip_frames": clip_frames, "crops": crops, "crop_frames": crop_frames,
            "clip_mb": mp4_mb(folder / "clips"), "crop_mb": mp4_mb(folder / "crops")}
    return {"clips": s_clips, "crops": s_crops}, info


# --------------------------------------------------------------------------------------------
# 3. FFmpeg CLI limits


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *map(str, args)], check=True)


def x264_args(enc: EncoderSettings, keyint: int) -> list[str]:
    """The project's ``EncoderSettings`` as ffmpeg options, with an IDR frame every ``keyint``
    frames (``keyint`` = frames of one output file, so each segment file starts with one, as each
    file the project writes does)."""
    args = ["-c:v", enc.codec, "-preset", enc.preset, "-crf", str(enc.crf), "-pix_fmt", enc.pix_fmt]
    if enc.threads:
        args += ["-threads", str(enc.threads)]
    if enc.codec == "libx264":
        args += ["-x264-params", f"keyint={keyint}:min-keyint={keyint}:scenecut=0"]
    return args


def segment_args(lengths: list[int], pattern: Path) -> list[str]:
    """Cut one encoded stream into one MP4 per ``lengths`` entry (frames each)."""
    cuts = np.cumsum(lengths)[:-1]
    args = ["-f", "segment", "-reset_timestamps", "1", "-segment_format", "mp4",
            "-segment_format_options", "movflags=+faststart"]
    if len(cuts):
        args += ["-segment_frames", ",".join(str(int(c)) for c in cuts)]
    return [*args, str(pattern)]


def ffmpeg_decode(inp: Input, folder: Path):
    # Decode the source front to back up to the last frame the clips use (as the project's one
    # decode pass does: it stops after its last wanted frame); `-f null` discards the frames.
    s, _ = measure(ffmpeg, "-i", inp.path, "-frames:v", str(inp.decoded_frames), "-f", "null", "-")
    return {"decode": s}, None


def write_crop_frames_raw(inp: Input, masks: Path, crop: CropSettings, out: Path) -> list[int]:
    """The project's crop frames (same windows, same black frames where an object is absent), in
    the project's order (clip, object id, frame), as raw rgb24 into ``out``; return the frames of
    each crop. Untimed: it only makes the input of the FFmpeg crop encode."""
    size = crop.crop_size
    black = np.zeros((size, size, 3), np.uint8)
    plans = detection_plans(masks)
    lengths = []
    with open(out, "wb") as handle:
        for clip, frames in ClipFrameStream(inp.path, inp.clips).by_clip():
            objects = plans.get(clip.clip_id, {})
            for object_id in sorted(objects):
                boxes = objects[object_id]
                for clip_frame, rgb in enumerate(frames):
                    xyxy = boxes.get(clip_frame)
                    img = black if xyxy is None else extract_crop(rgb, crop_window(xyxy, size, crop.margin), size)
                    handle.write(np.ascontiguousarray(img).tobytes())
                lengths.append(len(frames))
    return lengths


def ffmpeg_crop_encode(inp: Input, raw: Path, lengths: list[int], crop: CropSettings, enc: EncoderSettings, folder: Path):
    # Choice: encode the REAL crop frames (the project's exact crop pixels, dumped beforehand as
    # raw rgb24 and read back from the page cache) rather than a synthetic testsrc2, so x264
    # sees the same content and does the same rgb24 -> yuv420p conversion as the project. One
    # ffmpeg process, one encoder, cut by the segment muxer into one MP4 per crop with an IDR
    # at every crop start: the same output files, without the per-file encoder start-up that a
    # per-crop process or encoder would add. This is the encode work that cannot be avoided.
    size = crop.crop_size
    s, _ = measure(
        ffmpeg,
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-framerate", f"{inp.clip_fps:g}", "-i", raw,
        *x264_args(enc, max(lengths)),
        *segment_args(lengths, folder / "crop%05d.mp4"),
    )
    files = sum(1 for _ in folder.glob("crop*.mp4"))
    return {"crop_encode": s}, {"crop_files": files, "crop_mb": mp4_mb(folder)}


def ffmpeg_clip_files(inp: Input, enc: EncoderSettings, folder: Path):
    # The clip-file work in one ffmpeg process: decode, keep every frame_step-th frame (the
    # default plan's clips are back-to-back windows from frame 0, so the clips' frames are
    # exactly the multiples of frame_step below clips * span), retime to the clip rate, encode
    # with the project's x264 settings and cut every frames_per_clip frames into its own MP4 (one
    # encoder instead of one per clip, an IDR at each cut). The decode stays in YUV: no
    # RGB round trip.
    step = inp.settings.frame_step
    lengths = [c.frames for c in inp.clips]
    wanted = sorted({f for c in inp.clips for f in c.source_frames})
    if wanted != list(range(0, step * len(wanted), step)):
        raise RuntimeError("ffmpeg clip-file command assumes back-to-back clips from frame 0")
    vf = f"select='not(mod(n\\,{step}))',setpts=N/({inp.clip_fps:g}*TB)"
    s, _ = measure(
        ffmpeg,
        "-i", inp.path, "-vf", vf, "-r", f"{inp.clip_fps:g}", "-frames:v", str(len(wanted)),
        *x264_args(enc, max(lengths)),
        *segment_args(lengths, folder / "clip%05d.mp4"),
    )
    files = sum(1 for _ in folder.glob("clip*.mp4"))
    return {"clip_files": s}, {"clip_files": files, "clip_mb": mp4_mb(folder)}


# --------------------------------------------------------------------------------------------
# 4. peak RSS in a child process


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


def rss_child(source: str, folder: str, settings: ClipSettings, crop: CropSettings) -> None:
    """The whole CPU path (segment_clips + write_clips without files + write_crops) in this
    process; prints one JSON line of stage timings and the peak RSS seen after each stage."""
    report: dict[str, float] = {"rss_start_mb": peak_mb()}
    inp = load_input(Path(source), settings)
    layout = StorageRoot(Path(folder) / "home").video(VIDEO_ID)
    masks = Path(folder) / "masks.parquet"
    s, _ = measure(compute_masks, inp, masks)
    report.update(segment_s=s.wall, rss_after_segment_mb=peak_mb())
    s, _ = measure(write_clips, inp.path, VIDEO_ID, inp.clips, inp.info.fps, layout, False)
    report.update(clips_s=s.wall, rss_after_clips_mb=peak_mb())
    s, result = measure(write_crops, inp.path, inp.clips, inp.clip_fps, masks, layout, crop, provenance(inp))
    report.update(crops_s=s.wall, crops=crops_written(result), rss_after_crops_mb=peak_mb(), frames=inp.info.frame_count)
    report.update(rss_end_mb=_proc_status_mb("VmRSS") or float("nan"), peak_rss_mb=peak_mb())
    print(json.dumps(report), flush=True)


def measure_rss(source: Path, folder: Path, args) -> dict:
    """Run ``rss_child`` in a child process and return its report. The peak RSS is the one the
    child reads from its own ``VmHWM`` (see ``peak_mb``); ``wait4``'s ``ru_maxrss`` for that
    child alone is kept as ``wait4_maxrss_mb`` for comparison (on Linux it is at least the
    parent's RSS at the fork, so it overstates a small child started from this big parent)."""
    folder.mkdir(parents=True)
    cmd = [sys.executable, "-m", "benchmarks.pipeline", "--rss-child", str(source), str(folder),
           "--frames-per-clip", str(args.frames_per_clip), "--frame-step", str(args.frame_step),
           "--crop-size", str(args.crop_size)]
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


# --------------------------------------------------------------------------------------------
# report


def ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or b <= 0 or math.isnan(a) or math.isnan(b):
        return float("nan")
    return a / b


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


def fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def profile_crops(inp: Input, masks: Path, crop: CropSettings, work: Path) -> None:
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
        write_crops(inp.path, inp.clips, inp.clip_fps, masks, layout, crop, provenance(inp))
    finally:
        profiler.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print("=== pyinstrument profile of write_crops (one run) ===")
    print(profiler.output_text(unicode=False, color=False, show_all=False))


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("footage", nargs="?", default=str(DEFAULT_FOOTAGE), help="source video (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=2, help="repeats per timing, best kept (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help=f"use only the first {QUICK_FRAMES} frames (smoke run)")
    p.add_argument("--long-loops", type=int, default=20, help="copies of the input in the long RSS input (default: %(default)s)")
    p.add_argument("--frames-per-clip", type=int, default=20)
    p.add_argument("--frame-step", type=int, default=4)
    p.add_argument("--crop-size", type=int, default=224)
    p.add_argument("--profile-crops", action="store_true", help="print a pyinstrument profile of one write_crops run")
    p.add_argument("--rss-child", nargs=2, metavar=("SOURCE", "FOLDER"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.long_loops < 1:
        p.error("--long-loops must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = ClipSettings(frames_per_clip=args.frames_per_clip, frame_step=args.frame_step)
    crop = CropSettings(crop_size=args.crop_size)
    if args.rss_child:
        rss_child(*args.rss_child, settings, crop)
        return 0

    footage = Path(args.footage)
    if not footage.is_file():
        print(f"footage {footage} not found: nothing to benchmark (pass a video path)")
        return 0
    has_ffmpeg = shutil.which("ffmpeg") is not None
    if not has_ffmpeg:
        print("ffmpeg not found on PATH: the FFmpeg limits are skipped (apt-get install -y ffmpeg to get them)")
    encoder = EncoderSettings()
    n = args.repeats

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
        print(
            f"input: {footage.name}{' (quick: first %d frames)' % QUICK_FRAMES if args.quick else ''}: "
            f"{inp.info.width}x{inp.info.height} {inp.info.codec} {inp.info.fps:g} fps, {inp.info.frame_count} frames, "
            f"{inp.info.duration_s:.1f} s; {len(inp.clips)} clips x {settings.frames_per_clip} frames "
            f"(step {settings.frame_step}); crop {crop.crop_size}; repeats {n}; {os.cpu_count()} CPUs",
            flush=True,
        )
        load_start = os.getloadavg()[0]
        if load_start > 0.5:
            print(f"note: 1-min load average is {load_start:.1f} before the run: other work on this machine "
                  "inflates the wall times", flush=True)

        # Untimed warm-up on the first clip: lazy imports (scipy, pycocotools), codec and thread
        # pool start-up, page cache; so that even --repeats 1 times steady-state work.
        warm = dataclasses.replace(inp, clips=inp.clips[:1])
        compute_masks(warm, work / "warm-masks.parquet")
        run_project(warm, work / "warm-masks.parquet", crop, True, work / "warm")
        run_reference(warm, work / "warm-masks.parquet", crop, (work / "warm-ref").resolve())
        shutil.rmtree(work / "warm", ignore_errors=True)
        shutil.rmtree(work / "warm-ref", ignore_errors=True)

        # 5 + detections for 1/2/3: segment once into masks.parquet, repeat for the best time.
        masks = work / "masks.parquet"
        motion_best, summary = None, None
        for i in range(n):
            out = masks if i == 0 else work / f"masks-{i}.parquet"
            s, summ = measure(compute_masks, inp, out)
            summary = summary or summ
            if out != masks:
                out.unlink(missing_ok=True)
            if motion_best is None or s.wall < motion_best.wall:
                motion_best = s
        print(f"motion: {summary.clips} clips, {summary.objects} objects, {summary.rows} rows", flush=True)

        # 1. project path
        proj_a, info_a = best_of(n, work, "project-nofiles", lambda f: run_project(inp, masks, crop, False, f))
        proj_b, info_b = best_of(n, work, "project-files", lambda f: run_project(inp, masks, crop, True, f))
        print("project path timed", flush=True)

        # 2. reference
        ref, info_ref = best_of(n, work, "reference", lambda f: run_reference(inp, masks, crop, f))
        print("reference timed", flush=True)

        # 3. ffmpeg limits
        ff_dec = ff_crop = ff_clip = None
        info_ffc = info_ffk = {}
        if has_ffmpeg:
            raw = work / "crops.rgb"
            lengths = write_crop_frames_raw(inp, masks, crop, raw)
            if sum(lengths) != info_a["crop_frames"]:
                print(f"warning: raw crop frames {sum(lengths)} != project crop frames {info_a['crop_frames']}")
            ff_dec, _ = best_of(n, work, "ffmpeg-decode", lambda f: ffmpeg_decode(inp, f))
            ff_crop, info_ffc = best_of(n, work, "ffmpeg-crops", lambda f: ffmpeg_crop_encode(inp, raw, lengths, crop, encoder, f))
            raw.unlink()
            ff_clip, info_ffk = best_of(n, work, "ffmpeg-clips", lambda f: ffmpeg_clip_files(inp, encoder, f))
            print("ffmpeg timed", flush=True)

        if args.profile_crops:
            profile_crops(inp, masks, crop, work)

        # 4. peak RSS, short and long
        rss_short = measure_rss(source, work / "rss-short", args)
        print("RSS (short) measured", flush=True)
        long_src = work / f"long{footage.suffix}"
        remux(source, long_src, loops=args.long_loops)
        rss_long = measure_rss(long_src, work / "rss-long", args)
        long_src.unlink()
        print("RSS (long) measured", flush=True)

    # ---------------------------------------------------------------- numbers
    t_path = total(proj_a)                   # project, no clip files: write_clips + write_crops
    t_path_files = total(proj_b)             # project, with clip files
    t_ref = total(ref)                       # reference: clips + crops
    t_limit = None
    if has_ffmpeg:
        t_limit = ff_dec["decode"] + ff_crop["crop_encode"]

    path_speedup = ratio(t_ref.wall, t_path.wall)
    path_vs_limit = ratio(t_path.wall, t_limit.wall if t_limit else None)
    # clipfiles_time_vs_ffmpeg: the project's clip-file stage alone, write_clips(write_files=True)
    # (decode + RGB + every clip encoded to its own MP4), over the ffmpeg CLI doing the same
    # clip-file work (decode, select every frame_step-th frame, x264 into one MP4 per clip).
    clipfiles_vs_ffmpeg = ratio(proj_b["clips"].wall, ff_clip["clip_files"].wall if ff_clip else None)
    crops_speedup = ratio(ref["crops"].wall, proj_a["crops"].wall)
    sampled = inp.sampled_frames
    motion_fps = sampled / motion_best.wall
    motion_rt = inp.info.duration_s / motion_best.wall

    load_end = os.getloadavg()[0]
    table = Table()
    table.section(f"5. motion backend: segment_clips, {sampled} sampled frames of {inp.info.duration_s:.1f} s video")
    table.add("segment_clips (MotionSegmenter)", motion_best,
              f"{motion_fps:.1f} sampled frames/s, {motion_rt:.1f}x real time")
    table.section(f"1a. project path, no clip files ({info_a['crops']} crops, {info_a['crop_frames']} crop frames)")
    table.add("write_clips(write_files=False)", proj_a["clips"], "manifest only")
    table.add("write_crops", proj_a["crops"],
              f"{info_a['crop_frames'] / proj_a['crops'].wall:.0f} crop frames/s, {info_a['crop_mb']:.1f} MB of H.264")
    table.add("path total", t_path)
    table.section(f"1b. project path, with clip files ({info_b['clip_files']} clip files)")
    table.add("write_clips(write_files=True)", proj_b["clips"],
              f"{sampled / proj_b['clips'].wall:.0f} clip frames/s, {info_b['clip_mb']:.1f} MB of H.264")
    table.add("write_crops", proj_b["crops"])
    table.add("path total", t_path_files)
    table.section(f"2. reference: OpenCV seek + mp4v, crops re-decode clip files ({info_ref['crops']} crops)")
    table.add("clips (seek per clip, mp4v)", ref["clips"],
              f"{info_ref['clip_files']} files, {info_ref['clip_frames']} frames, {info_ref['clip_mb']:.1f} MB of MPEG-4 Part 2")
    table.add("crops (re-decode clip per object)", ref["crops"],
              f"{info_ref['crop_frames']} crop frames, {info_ref['crop_mb']:.1f} MB of MPEG-4 Part 2")
    table.add("reference total", t_ref)
    table.section(f"3. ffmpeg CLI limits ({encoder.codec} {encoder.preset} crf {encoder.crf} {encoder.pix_fmt})")
    if has_ffmpeg:
        table.add("ffmpeg decode (-f null)", ff_dec["decode"], f"{inp.decoded_frames} frames")
        table.add("ffmpeg encode crop frames", ff_crop["crop_encode"], f"{info_a['crop_frames']} real crop frames -> {info_ffc['crop_files']} files, {info_ffc['crop_mb']:.1f} MB")
        table.add("limit = decode + crop encode", t_limit)
        table.add("ffmpeg clip files", ff_clip["clip_files"], f"decode + select + x264 -> {info_ffk['clip_files']} files, {info_ffk['clip_mb']:.1f} MB")
    else:
        table.add("ffmpeg (not on PATH)", None)
    table.section("4. peak RSS, whole CPU path in a child (segment + clips + crops, no clip files)")
    for name, r in (("short", rss_short), (f"long ({args.long_loops}x)", rss_long)):
        table.text(
            f"{name}: {r['frames']} frames",
            f"{r['peak_rss_mb']:.0f} MB",
            f"after imports {r['rss_start_mb']:.0f} MB; segment {r['segment_s']:.1f} s, crops {r['crops_s']:.1f} s, {r['crops']} crops; peak after "
            f"segment {r['rss_after_segment_mb']:.0f} / clips {r['rss_after_clips_mb']:.0f} / crops {r['rss_after_crops_mb']:.0f} MB; "
            f"RSS at end {r['rss_end_mb']:.0f} MB (wait4 ru_maxrss {r['wait4_maxrss_mb']:.0f} MB)",
        )
    table.section("ratios")
    table.text("path speedup vs reference", fmt(path_speedup), "reference (clips+crops) / project path (no clip files)")
    table.text("path time vs limit", fmt(path_vs_limit), "project path (no clip files) / (ffmpeg decode + crop encode)")
    table.text("clip files time vs ffmpeg", fmt(clipfiles_vs_ffmpeg), "write_clips(write_files=True) / ffmpeg clip files")
    table.text("crops speedup vs reference", fmt(crops_speedup), "reference crops / write_crops")
    table.text("rss long vs short", fmt(ratio(rss_long["peak_rss_mb"], rss_short["peak_rss_mb"])))
    table.print()
    print(f"1-min load average: {load_start:.2f} at start, {load_end:.2f} at end ({os.cpu_count()} CPUs); "
          "cpu s = user + system seconds of this process and its ffmpeg children")

    pairs = {
        "path_speedup_vs_reference": path_speedup,
        "path_time_vs_limit": path_vs_limit,
        "clipfiles_time_vs_ffmpeg": clipfiles_vs_ffmpeg,
        "crops_speedup_vs_reference": crops_speedup,
        "peak_rss_mb": rss_long["peak_rss_mb"],
        "rss_long_vs_short": ratio(rss_long["peak_rss_mb"], rss_short["peak_rss_mb"]),
        "motion_fps": motion_fps,
        "motion_x_realtime": motion_rt,
        "project_path_s": t_path.wall,
        "project_path_clipfiles_s": t_path_files.wall,
        "reference_s": t_ref.wall,
        "limit_s": t_limit.wall if t_limit else float("nan"),
        "ffmpeg_clipfiles_s": ff_clip["clip_files"].wall if ff_clip else float("nan"),
        "crops": info_a["crops"],
        "crop_frames": info_a["crop_frames"],
        "load_avg_start": load_start,
        "load_avg_end": load_end,
    }
    print(" ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in pairs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
