"""SAM3 through the platform against SAM3 alone: throughput, load time and memory.

Run from the repository root::

    python -m benchmarks.gpu [FOOTAGE] [--device auto|cuda|cpu] [--test-size] [--clips N] ...

FOOTAGE defaults to ``../shared/footage/vtest.avi``; when it is absent the script says so and
exits 0. No checkpoint can be downloaded: the real SAM3 video model is built with random
weights (full size by default; ``--test-size``: the tests' tiny architecture, 112 px), its
state dict saved to a file, and that file loaded through the project's own checkpoint path
(the segmenter resource, ``load_segmenter``), exactly as a user's checkpoint. Everything is
written into one temporary folder, removed at the end whatever happens.

Measured in one run, on the same clips of the footage (``--clips`` clips of
``--frames-per-clip`` frames every ``--frame-step``-th source frame), after one warm-up clip:

- ``load_s``: building the predictor from the checkpoint file (the resource's first use).
- ``model_fps``: SAM3 alone: start a session on the clip's frames (PIL images, decoded
  beforehand and not timed), add the text prompt, propagate, close; nothing else.
- ``stage_fps``: the project's ``object_masks`` stage end to end (``segment_clips``: decode
  from the file, prefetch thread, sessions, writer thread, Parquet) on the same clips;
  ``stage_serial_fps`` the same with ``prefetch=0`` (everything on one thread).
- ``stage_vs_model``: ``stage_fps / model_fps`` (1.0: the platform adds nothing).
  The three throughput runs are repeated ``--repeats`` times, interleaved, keeping the best.
- ``gpu_mem_gb_<L>``: peak memory of one session on a clip of L frames (``--memory-lengths``,
  default 20, 80, 320; consecutive frames, the footage looped if short). On CUDA:
  ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (model weights
  included). On CPU: the peak resident set size during the session minus the resident set
  before it (``VmHWM`` reset through ``/proc/self/clear_refs``, freed heap returned with
  ``malloc_trim`` first); ``mem_measure`` names which.
- ``gpu_mem_gb_obj<N>``, ``objects_obj<N>``, ``fps_obj<N>``: the same on one clip with the
  object cap ``max_objects`` set to N (``--objects``, default 1, 8, 32) and the detection
  thresholds at 0 so that the random model emits as many objects as it can;
  ``objects_obj<N>`` is the most objects it tracked on one frame and ``objects_clip_obj<N>``
  the distinct objects of the clip (the cap counts these; fewer than N: the random model did
  not emit that many).
- ``mem_growth_mb``: memory after the last of ``--growth-clips`` (50) consecutive clips
  minus after the first (CUDA: ``memory_allocated``; CPU: resident set after ``gc`` and
  ``malloc_trim``), each clip a session closed and released as in the stage.

``--profile`` also prints where the stage's time goes: the caller's (model) thread, its waits
for frames and for the writer, and the background threads' work, and a cProfile of the stage.
The last line printed is ``key=value`` pairs.
"""

import argparse
import contextlib
import ctypes
import cProfile
import gc
import io
import math
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOOTAGE = REPO.parent / "shared" / "footage" / "vtest.avi"
PROMPT = "person"
TEST_QUERIES = 48  # object queries of the test-size detector (5 in the tests), so it can emit more objects


# --------------------------------------------------------------------------------------------
# memory


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Memory:
    """Peak and current memory of the device the model runs on."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.cuda = device == "cuda"
        self.measure = "cuda_max_memory_allocated" if self.cuda else "cpu_peak_rss_delta"

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    @contextlib.contextmanager
    def peak(self, out: dict):
        """``out["gb"]``: the block's peak (see the module's docstring)."""
        _trim()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            yield
            self.torch.cuda.synchronize()
            out["gb"] = self.torch.cuda.max_memory_allocated() / 2**30
        else:
            before = _status_kb("VmRSS")
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM to the current RSS
            yield
            out["gb"] = (_status_kb("VmHWM") - before) / 2**20

    def current_mb(self) -> float:
        _trim()
        if self.cuda:
            self.torch.cuda.synchronize()
            return self.torch.cuda.memory_allocated() / 2**20
        return _status_kb("VmRSS") / 1024


# --------------------------------------------------------------------------------------------
# model


def write_random_checkpoint(path: Path, bpe: str, test_size: bool) -> None:
    """The real builder with random weights (the tests' recipe), state dict saved to ``path``."""
    from vitcow_assets_tests.sam3_tiny import tiny_builder, write_tiny_checkpoint

    sizes = tiny_builder(queries=TEST_QUERIES) if test_size else contextlib.nullcontext()
    with sizes:
        write_tiny_checkpoint(path, bpe)  # builds with whatever sizes the builder has


def make_resource(checkpoint: str, device: str, **options):
    from vitcow_assets.defs.resources import segmenter_from_environment

    return segmenter_from_environment({}, {"sam3": {"checkpoint": checkpoint, "device": device, **options}}, backend="sam3")


def masks(footage, clips, resource, segmenter, out, prefetch: int, progress=None):
    """The ``object_masks`` stage on ``clips`` (``segment_clips``), as the asset runs it."""
    from vitcow_assets.core.prompts import text_plan
    from vitcow_assets.stages.events import StageEvents
    from vitcow_assets.stages.segmentation import MaskJob, segment_clips

    job = MaskJob(footage, "bench", clips, text_plan(PROMPT), segmenter.name, resource.session, out, prepare=segmenter.prepare_frames, prefetch=prefetch)
    return segment_clips(job, StageEvents(progress=progress))


def load(resource, test_size: bool):
    """The resource's model, built from its checkpoint file (the tiny sizes at test size)."""
    from vitcow_assets_tests.sam3_tiny import tiny_builder

    with tiny_builder(queries=TEST_QUERIES) if test_size else contextlib.nullcontext():
        return resource.segmenter


def bare_session(segmenter, frames: list, prompt: str) -> int:
    """SAM3 alone on one clip: start, text prompt, propagate, close. Returns frames out."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]  # what SAM3's API takes; cheap (no resize)
    session = segmenter.request({"type": "start_session", "resource_path": images})["session_id"]
    out = 0
    try:
        segmenter.request({"type": "add_prompt", "session_id": session, "frame_index": 0, "text": prompt})
        for _ in segmenter.stream({"type": "propagate_in_video", "session_id": session, "propagation_direction": "both"}):
            out += 1
    finally:
        segmenter.request({"type": "close_session", "session_id": session})
    return out


def platform_session(resource, frames: list, prompt: str) -> tuple[int, int]:
    """One clip through the project's session (prepared input, closed and released).
    Returns the most objects on one frame and the distinct objects of the clip."""
    most, ids = 0, set()
    with resource.session(resource.segmenter.prepare_frames(frames)) as session:
        session.add_text_prompt(prompt, 0)
        for result in session.propagate():
            most = max(most, len(result.detections))
            ids.update(result.detections.object_ids.tolist())
    return most, len(ids)


# --------------------------------------------------------------------------------------------
# footage


def clip_frames(footage: Path, clips) -> list[list[np.ndarray]]:
    from vitcow_assets.stages.frames import ClipFrameStream

    return [frames for _, frames in ClipFrameStream(footage, clips).by_clip()]


def scaled_copy(footage: Path, scale: float, folder: Path) -> Path:
    """The footage at ``scale`` of its size (H.264), for test-size runs: SAM3 post-processes
    masks at the frame's own size, which dominates a tiny model's time on CPU."""
    import cv2

    from vitcow_assets.media.video import VideoWriter, iter_frames, probe_video

    info = probe_video(footage)
    width, height = max(2, round(info.width * scale)), max(2, round(info.height * scale))
    out = folder / f"{footage.stem}_x{scale:g}.mp4"
    with VideoWriter(out, width, height, info.fps) as writer:
        for _, rgb in iter_frames(footage):
            writer.write(cv2.resize(rgb, (writer.width, writer.height), interpolation=cv2.INTER_AREA))
    return out


def consecutive_frames(footage: Path, count: int) -> list[np.ndarray]:
    """``count`` consecutive frames from the start, the footage looped if it is shorter."""
    from vitcow_assets.media.video import iter_frames

    frames: list[np.ndarray] = []
    while len(frames) < count:
        before = len(frames)
        for _, rgb in iter_frames(footage, range(count - len(frames))):
            frames.append(rgb)
        if len(frames) == before:
            raise RuntimeError(f"{footage}: no frames decoded")
    return frames


# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        from vitcow_assets.segmenters.sam3_cpu import cpu_mode, install

        install()
        if args.threads:
            torch.set_num_threads(args.threads)
        build_mode = cpu_mode
    else:
        build_mode = contextlib.nullcontext
    memory = Memory(device)
    folder = Path(tempfile.mkdtemp(prefix="vitcow-gpu-bench-"))
    try:
        return _measure(args, device, build_mode, memory, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _measure(args, device, build_mode, memory, folder: Path) -> dict:
    from vitcow_assets.core.clips import ClipSettings, plan_clips
    from vitcow_assets.media.video import probe_video
    from vitcow_assets.segmenters.sam3 import find_bpe_path, set_max_objects

    footage = Path(args.footage)
    original = probe_video(footage)
    if args.scale != 1:
        footage = scaled_copy(footage, args.scale, folder)
    info = probe_video(footage)
    settings = ClipSettings(frames_per_clip=args.frames_per_clip, frame_step=args.frame_step)
    clips = plan_clips(info.frame_count, info.fps, settings)[: args.clips + 1]
    if len(clips) < 2:
        raise SystemExit(f"{footage}: too short for a warm-up clip and a measured clip")
    warmup, measured = clips[0], clips[1:]
    frames_measured = sum(c.frames for c in measured)
    results: dict[str, object] = {"device": device, "size": "test" if args.test_size else "full", "mem_measure": memory.measure}
    print(f"device {device}, {'test' if args.test_size else 'full'} size, footage {Path(args.footage).name} "
          f"({original.width}x{original.height}, used at {info.width}x{info.height}), "
          f"{len(measured)} clips of {args.frames_per_clip} frames (+1 warm-up)")
    results["frame_size"] = f"{info.width}x{info.height}"
    checkpoint = folder / "sam3_random.pt"
    bpe = find_bpe_path()
    started = time.perf_counter()
    with build_mode():
        write_random_checkpoint(checkpoint, bpe, args.test_size)
    print(f"random checkpoint: {checkpoint.stat().st_size / 2**20:.0f} MB, built and saved in {time.perf_counter() - started:.1f} s")
    gc.collect()

    thresholds = {"score_threshold": args.score_threshold, "new_object_threshold": args.new_object_threshold}
    resource = make_resource(str(checkpoint), device, **thresholds)
    started = time.perf_counter()
    segmenter = load(resource, args.test_size)
    memory.sync()
    results["load_s"] = time.perf_counter() - started
    print(f"load: {results['load_s']:.2f} s ({segmenter.name}, {sum(p.numel() for p in segmenter.predictor.model.parameters()) / 1e6:.0f}M parameters)")

    # ---- throughput: SAM3 alone, then the stage, on the same clips ------------------
    decoded = clip_frames(footage, clips)
    bare_session(segmenter, decoded[0], PROMPT)  # warm-up (first-use costs)

    def bare() -> float:
        memory.sync()
        started = time.perf_counter()
        for frames in decoded[1:]:
            bare_session(segmenter, frames, PROMPT)
        memory.sync()
        return time.perf_counter() - started

    def stage(prefetch: int, name: str, profiler=None):
        masks(footage, [warmup], resource, segmenter, folder / f"warm-{name}.parquet", prefetch)
        memory.sync()
        started = time.perf_counter()
        with profiler or contextlib.nullcontext():
            summary = masks(footage, measured, resource, segmenter, folder / f"{name}.parquet", prefetch)
        memory.sync()
        return time.perf_counter() - started, summary

    # interleaved repeats, best of each: a shared machine's load hits all three alike
    model_s = stage_s = serial_s = math.inf
    for _ in range(args.repeats):
        model_s = min(model_s, bare())
        seconds, run_summary = stage(args.prefetch, "stage")
        if seconds < stage_s:
            stage_s, summary = seconds, run_summary
        seconds, run_summary = stage(0, "serial")
        if seconds < serial_s:
            serial_s, serial = seconds, run_summary
    del decoded
    results["model_fps"] = frames_measured / model_s
    results["stage_fps"] = frames_measured / stage_s
    results["stage_serial_fps"] = frames_measured / serial_s
    results["stage_vs_model"] = results["stage_fps"] / results["model_fps"]
    results["rows"] = summary.rows
    for key, value in summary.timings.items():
        results[f"stage_{key}_s" if key != "max_waiting_clips" else "stage_max_waiting_clips"] = value
    print(f"best of {args.repeats}, interleaved:")
    print(f"SAM3 alone      {results['model_fps']:8.2f} frames/s  ({model_s:.2f} s for {frames_measured} frames)")
    print(f"stage           {results['stage_fps']:8.2f} frames/s  ({stage_s:.2f} s; {summary.rows} mask rows)")
    print(f"stage, 1 thread {results['stage_serial_fps']:8.2f} frames/s  ({serial_s:.2f} s)")
    print("stage time (s): " + ", ".join(f"{k} {v:.2f}" for k, v in summary.timings.items()))
    print("1-thread time (s): " + ", ".join(f"{k} {v:.2f}" for k, v in serial.timings.items()))
    if args.profile:
        profiler = cProfile.Profile()
        stage(args.prefetch, "profile", profiler)
        print_profile(profiler, args.profile_lines)

    # ---- memory against clip length --------------------------------------------------
    longest = max(args.memory_lengths)
    frames = consecutive_frames(footage, longest)
    for length in args.memory_lengths:
        out: dict = {}
        with memory.peak(out):
            platform_session(resource, frames[:length], PROMPT)
        results[f"gpu_mem_gb_{length}"] = out["gb"]
    print(f"peak memory ({memory.measure}) by clip length: "
          + ", ".join(f"{n} frames {results[f'gpu_mem_gb_{n}']:.3f} GB" for n in args.memory_lengths))

    # ---- memory and speed against objects ---------------------------------------------
    many = make_resource(str(checkpoint), device, score_threshold=0.0, new_object_threshold=0.0)
    many_segmenter = load(many, args.test_size)
    model = many_segmenter.predictor.model
    clip = frames[: args.frames_per_clip]
    for count in args.objects:
        set_max_objects(model, count)  # what the max_objects setting does at load
        out = {}
        started = time.perf_counter()
        with memory.peak(out):
            most, distinct = platform_session(many, clip, PROMPT)
        results[f"fps_obj{count}"] = len(clip) / (time.perf_counter() - started)
        results[f"gpu_mem_gb_obj{count}"] = out["gb"]
        results[f"objects_obj{count}"] = most
        results[f"objects_clip_obj{count}"] = distinct
    print("by object cap: " + "; ".join(
        f"cap {n}: {results[f'objects_obj{n}']} objects on a frame ({results[f'objects_clip_obj{n}']} in the clip), {results[f'gpu_mem_gb_obj{n}']:.3f} GB, {results[f'fps_obj{n}']:.2f} frames/s"
        for n in args.objects))
    short = [n for n in args.objects if results[f"objects_clip_obj{n}"] < n]
    if short:
        print(f"the random model emitted fewer objects than the cap for caps {short}: those rows measure fewer objects")
    del many_segmenter, model, many
    _forget_cached_models()

    # ---- no growth over consecutive clips ---------------------------------------------
    growth_clips = plan_clips(info.frame_count, info.fps, ClipSettings(frames_per_clip=args.growth_frames, frame_step=1))
    samples: list[float] = []
    done = 0
    while done < args.growth_clips:
        batch = growth_clips[: args.growth_clips - done]
        masks(footage, batch, resource, segmenter, folder / "growth.parquet", args.prefetch, progress=lambda i, n: samples.append(memory.current_mb()))
        done += len(batch)
    results["mem_growth_mb"] = samples[-1] - samples[0]
    results["mem_first_clip_mb"] = samples[0]
    print(f"memory over {len(samples)} consecutive clips of {args.growth_frames} frames: "
          f"{samples[0]:.1f} MB after the first, {samples[-1]:.1f} MB after the last, max {max(samples):.1f} MB "
          f"(growth {results['mem_growth_mb']:+.1f} MB; {'memory_allocated' if device == 'cuda' else 'RSS'})")
    return results


#: where the caller's (model) thread spends the stage's time: (label, file suffix, function)
PROFILE_PARTS = (
    ("whole stage", "segmentation.py", "segment_clips"),
    ("  waiting for the next clip's frames", "background.py", "__next__"),
    ("  handing results to the writer", "background.py", "submit"),
    ("  SAM3 start_session (input to device, state)", "sam3_video_predictor.py", "start_session"),
    ("  SAM3 add_prompt (text, first frame)", "sam3_video_predictor.py", "add_prompt"),
    ("  SAM3 propagate: model, per frame", "sam3_video_inference.py", "_run_single_frame_inference"),
    ("  SAM3 post-processing (masks to frame size)", "sam3_video_inference.py", "_postprocess_output"),
    ("  project: SAM3 outputs to Detections", "sam3.py", "_detections"),
    ("  SAM3 close_session", "sam3_video_predictor.py", "close_session"),
    ("    of which gc.collect", "~", "<built-in method gc.collect>"),
    ("  release of accelerator memory", "resources.py", "release_accelerator_memory"),
)


def print_profile(profiler: cProfile.Profile, lines: int) -> None:
    """The caller thread's time by part (cumulative seconds), then the top functions."""
    stats = pstats.Stats(profiler)
    total: dict[str, float] = {}
    for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items():
        for label, suffix, function in PROFILE_PARTS:
            if name == function and filename.endswith(suffix):
                total[label] = total.get(label, 0.0) + cumulative
    whole = total.get("whole stage") or 1.0
    print("the stage's caller (model) thread, cumulative seconds (cProfile; nested parts overlap):")
    for label, _, _ in PROFILE_PARTS:
        seconds = total.get(label, 0.0)
        print(f"  {label:50s} {seconds:8.3f} s {100 * seconds / whole:6.1f}%")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(lines)
    print("top functions by own time:")
    print(text.getvalue())


def _forget_cached_models() -> None:
    from vitcow_assets.defs import resources

    resources.forget_cached_models()


KEYS = ("model_fps", "stage_fps", "stage_vs_model", "load_s")


def key_values(results: dict, lengths: list[int]) -> str:
    keys = list(KEYS) + [f"gpu_mem_gb_{n}" for n in lengths]
    keys += [k for k in results if k not in keys]
    return " ".join(f"{k}={_fmt(results[k])}" for k in keys)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def ints(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v.strip()]

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("footage", nargs="?", default=str(DEFAULT_FOOTAGE))
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--test-size", action="store_true", help="the tests' tiny SAM3 (112 px) instead of the full model")
    parser.add_argument("--clips", type=int, help="measured clips (default 8; 3 at test size)")
    parser.add_argument("--frames-per-clip", type=int, default=20)
    parser.add_argument("--frame-step", type=int, default=4)
    parser.add_argument("--memory-lengths", type=ints, default=[20, 80, 320], help="clip lengths for peak memory (default 20,80,320)")
    parser.add_argument("--objects", type=ints, default=[1, 8, 32], help="object caps (default 1,8,32)")
    parser.add_argument("--growth-clips", type=int, default=50, help="consecutive clips for the memory growth check")
    parser.add_argument("--growth-frames", type=int, help="frames per clip in the growth check (default 20; 4 at test size)")
    parser.add_argument("--repeats", type=int, default=2, help="throughput runs, interleaved; the best of each is kept (default 2)")
    parser.add_argument("--prefetch", type=int, default=1, help="the stage's prefetch depth")
    parser.add_argument("--score-threshold", type=float, default=0.0, help="detection threshold (random weights score low)")
    parser.add_argument("--new-object-threshold", type=float, default=1.01, help="new-object threshold (1.01: objects from the prompted frame only)")
    parser.add_argument("--scale", type=float, help="use the footage at this fraction of its size (default 1; 0.25 at test size)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (cpu only; default: 1 at test size)")
    parser.add_argument("--profile", action="store_true", help="print the stage's time split and a cProfile")
    parser.add_argument("--profile-lines", type=int, default=25)
    args = parser.parse_args(argv)
    if args.clips is None:
        args.clips = 3 if args.test_size else 8
    if args.growth_frames is None:
        args.growth_frames = 4 if args.test_size else 20
    if args.scale is None:
        args.scale = 0.25 if args.test_size else 1.0
    if args.threads is None and args.test_size:
        args.threads = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.footage).is_file():
        print(f"footage not found: {args.footage} (skipped)")
        return 0
    results = run(args)
    print(key_values(results, args.memory_lengths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
