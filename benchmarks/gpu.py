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
- ``gpu_mem_gb_<L>``: peak memory over L consecutive frames (``--memory-lengths``, default
  20, 80, 320; the footage looped if short) processed as the stage does: clips of
  ``--frames-per-clip`` frames, one session at a time (target: 320 within 1.1x of 20);
  ``gpu_mem_gb_session_<L>``: the same L frames as one session (SAM3 keeps every frame of a
  session: this grows with L). On CUDA: ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats`` (model weights included). On CPU: the peak resident set size
  minus the resident set before (``VmHWM`` reset through ``/proc/self/clear_refs``, freed
  heap returned with ``malloc_trim`` first); ``mem_measure`` names which.
- ``gpu_mem_gb_obj<N>``, ``objects_obj<N>``, ``fps_obj<N>``: the same on one clip with the
  object cap ``max_objects`` set to N (``--objects``, default 1, 8, 32) and the detection
  thresholds at 0 so that the random model emits as many objects as it can;
  ``objects_obj<N>`` is the most objects it tracked on one frame and ``objects_clip_obj<N>``
  the distinct objects of the clip (the cap counts these; fewer than N: the random model did
  not emit that many).
- ``mem_growth_mb``: memory after the last of ``--growth-clips`` (50) consecutive clips
  minus after the first (CUDA: ``memory_allocated``; CPU: resident set after ``gc`` and
  ``malloc_trim``), each clip a session closed and released as in the stage.
- ``model_fps_fp32``: on CUDA, SAM3 alone with bfloat16 autocast turned off around its
  requests (SAM3 0.1.4 always runs under it; NaN, with the reason printed, if it cannot
  run without).
- ``model_fps_<variant>``, ``stage_fps_<variant>``, ``first_clip_s_<variant>`` (load and the
  warm-up clip): ``bilinear``, the ``resize: bilinear`` setting (the frames resized on the
  device); ``compile`` (CUDA only, ``--no-compile-check`` skips it), SAM3's ``torch.compile``
  on, whose first clip compiles (minutes).

``--profile`` also prints where the stage's time goes: the caller's (model) thread, its waits
for frames and for the writer, and the background threads' work, and a cProfile of the stage.
The last line printed is ``key=value`` pairs.
"""

import argparse
import contextlib
import ctypes
import cProfile
import dataclasses
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
    from vitcow_testbed.sam3_tiny import tiny_builder, write_tiny_checkpoint

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
    from vitcow_testbed.sam3_tiny import tiny_builder

    with tiny_builder(queries=TEST_QUERIES) if test_size else contextlib.nullcontext():
        return resource.segmenter


def bare_session(segmenter, frames: list, prompt: str, direct: bool = False) -> int:
    """SAM3 alone on one clip: start, text prompt, propagate, close. Returns frames out.
    ``segmenter`` is the loaded backend (its requests run in its device mode), or with
    ``direct`` SAM3's predictor itself (requests exactly as the caller's context has them)."""
    from PIL import Image

    request = segmenter.handle_request if direct else segmenter.request
    stream = segmenter.handle_stream_request if direct else segmenter.stream
    images = [Image.fromarray(f) for f in frames]  # what SAM3's API takes; cheap (no resize)
    session = request({"type": "start_session", "resource_path": images})["session_id"]
    out = 0
    try:
        request({"type": "add_prompt", "session_id": session, "frame_index": 0, "text": prompt})
        for _ in stream({"type": "propagate_in_video", "session_id": session, "propagation_direction": "both"}):
            out += 1
    finally:
        request({"type": "close_session", "session_id": session})
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
    folder = Path(tempfile.mkdtemp(prefix="vitcow-gpu-bench-"))
    try:
        bench = Bench(args, device, Memory(device), folder)
        bench.results.update(device=device, size="test" if args.test_size else "full", mem_measure=bench.memory.measure)
        _footage(bench)
        _load_model(bench, build_mode)
        _throughput(bench)
        frames = _memory_by_length(bench)
        _memory_growth(bench)
        _precision(bench)
        _memory_by_objects(bench, frames[: args.frames_per_clip])  # from here on, one model at a time
        _variants(bench)
        return bench.results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclasses.dataclass
class Bench:
    """One run's settings, scratch folder, inputs, model and results."""

    args: argparse.Namespace
    device: str
    memory: "Memory"
    folder: Path
    results: dict = dataclasses.field(default_factory=dict)
    footage: Path | None = None
    info: object = None
    clips: list = dataclasses.field(default_factory=list)
    checkpoint: Path | None = None
    resource: object = None
    segmenter: object = None

    @property
    def measured(self) -> list:
        return self.clips[1:]

    @property
    def frames_measured(self) -> int:
        return sum(c.frames for c in self.measured)


def _footage(bench: Bench) -> None:
    """The footage (scaled for test-size runs) and its clips: one warm-up, then ``--clips``."""
    from vitcow_assets.core.clips import ClipSettings, plan_clips
    from vitcow_assets.media.video import probe_video

    args = bench.args
    footage = Path(args.footage)
    original = probe_video(footage)
    if args.scale != 1:
        footage = scaled_copy(footage, args.scale, bench.folder)
    bench.footage, bench.info = footage, probe_video(footage)
    settings = ClipSettings(frames_per_clip=args.frames_per_clip, frame_step=args.frame_step)
    bench.clips = plan_clips(bench.info.frame_count, bench.info.fps, settings)[: args.clips + 1]
    if len(bench.clips) < 2:
        raise SystemExit(f"{footage}: too short for a warm-up clip and a measured clip")
    bench.results["frame_size"] = f"{bench.info.width}x{bench.info.height}"
    print(f"device {bench.device}, {bench.results['size']} size, footage {Path(args.footage).name} "
          f"({original.width}x{original.height}, used at {bench.info.width}x{bench.info.height}), "
          f"{len(bench.measured)} clips of {args.frames_per_clip} frames (+1 warm-up)")


def _load_model(bench: Bench, build_mode) -> None:
    """Random weights saved as a checkpoint file, loaded through the segmenter resource."""
    from vitcow_assets.segmenters.sam3 import find_bpe_path

    args = bench.args
    bench.checkpoint = bench.folder / "sam3_random.pt"
    started = time.perf_counter()
    with build_mode():
        write_random_checkpoint(bench.checkpoint, find_bpe_path(), args.test_size)
    print(f"random checkpoint: {bench.checkpoint.stat().st_size / 2**20:.0f} MB, built and saved in {time.perf_counter() - started:.1f} s")
    gc.collect()
    bench.resource = make_resource(str(bench.checkpoint), bench.device, **_thresholds(args))
    started = time.perf_counter()
    bench.segmenter = load(bench.resource, args.test_size)
    bench.memory.sync()
    bench.results["load_s"] = time.perf_counter() - started
    params = sum(p.numel() for p in bench.segmenter.predictor.model.parameters()) / 1e6
    print(f"load: {bench.results['load_s']:.2f} s ({bench.segmenter.name}, {params:.0f}M parameters)")


def _thresholds(args) -> dict:
    return {"score_threshold": args.score_threshold, "new_object_threshold": args.new_object_threshold}


def _timed(memory: "Memory", work) -> float:
    memory.sync()
    started = time.perf_counter()
    work()
    memory.sync()
    return time.perf_counter() - started


def _stage(bench: Bench, resource, segmenter, prefetch: int, name: str, profiler=None):
    """The stage on the measured clips after one on the warm-up clip: (seconds, summary)."""
    masks(bench.footage, bench.clips[:1], resource, segmenter, bench.folder / f"warm-{name}.parquet", prefetch)
    out: dict = {}
    with profiler or contextlib.nullcontext():
        seconds = _timed(bench.memory, lambda: out.update(summary=masks(bench.footage, bench.measured, resource, segmenter, bench.folder / f"{name}.parquet", prefetch)))
    return seconds, out["summary"]


def _throughput(bench: Bench) -> None:
    """SAM3 alone, the stage and the stage on one thread, interleaved, best of ``--repeats``."""
    args, results, segmenter = bench.args, bench.results, bench.segmenter
    decoded = clip_frames(bench.footage, bench.clips)
    bare_session(segmenter, decoded[0], PROMPT)  # warm-up (first-use costs)
    model_s = stage_s = serial_s = math.inf
    for _ in range(args.repeats):  # a shared machine's load hits all three alike
        model_s = min(model_s, _timed(bench.memory, lambda: [bare_session(segmenter, f, PROMPT) for f in decoded[1:]]))
        seconds, run_summary = _stage(bench, bench.resource, segmenter, args.prefetch, "stage")
        if seconds < stage_s:
            stage_s, summary = seconds, run_summary
        seconds, run_summary = _stage(bench, bench.resource, segmenter, 0, "serial")
        if seconds < serial_s:
            serial_s, serial = seconds, run_summary
    del decoded
    n = bench.frames_measured
    results.update(model_fps=n / model_s, stage_fps=n / stage_s, stage_serial_fps=n / serial_s, rows=summary.rows)
    results["stage_vs_model"] = results["stage_fps"] / results["model_fps"]
    for key, value in summary.timings.items():
        results[f"stage_{key}_s" if key != "max_waiting_clips" else "stage_max_waiting_clips"] = value
    print(f"best of {args.repeats}, interleaved:")
    print(f"SAM3 alone      {results['model_fps']:8.2f} frames/s  ({model_s:.2f} s for {n} frames)")
    print(f"stage           {results['stage_fps']:8.2f} frames/s  ({stage_s:.2f} s; {summary.rows} mask rows)")
    print(f"stage, 1 thread {results['stage_serial_fps']:8.2f} frames/s  ({serial_s:.2f} s)")
    print("stage time (s): " + ", ".join(f"{k} {v:.2f}" for k, v in summary.timings.items()))
    print("1-thread time (s): " + ", ".join(f"{k} {v:.2f}" for k, v in serial.timings.items()))
    if args.profile:
        profiler = cProfile.Profile()
        _stage(bench, bench.resource, segmenter, args.prefetch, "profile", profiler)
        print_profile(profiler, args.profile_lines)


def _variant(bench: Bench, label: str, **options) -> None:
    """The stage and SAM3 alone once more with other segmenter settings (``sam3`` options)."""
    from vitcow_assets.defs.resources import forget_cached_models

    resource = make_resource(str(bench.checkpoint), bench.device, **_thresholds(bench.args), **options)
    started = time.perf_counter()
    segmenter = load(resource, bench.args.test_size)
    decoded = clip_frames(bench.footage, bench.clips)
    bare_session(segmenter, decoded[0], PROMPT)  # warm-up; with compile: the compilation
    bench.results[f"first_clip_s_{label}"] = time.perf_counter() - started
    model_s = _timed(bench.memory, lambda: [bare_session(segmenter, f, PROMPT) for f in decoded[1:]])
    stage_s, _ = _stage(bench, resource, segmenter, bench.args.prefetch, label)
    n = bench.frames_measured
    bench.results.update({f"model_fps_{label}": n / model_s, f"stage_fps_{label}": n / stage_s})
    print(f"{label}: SAM3 alone {n / model_s:.2f} frames/s, stage {n / stage_s:.2f} frames/s "
          f"(load + first clip {bench.results[f'first_clip_s_{label}']:.1f} s)")
    del segmenter, resource, decoded
    forget_cached_models()


def _variants(bench: Bench) -> None:
    """The ``bilinear`` resize (on the GPU) and, on CUDA, ``compile`` on (the default is off)."""
    _variant(bench, "bilinear", resize="bilinear")
    if bench.device != "cuda":
        print("compile: not measured (CUDA only; on CPU the setting is ignored)")
    elif bench.args.compile_check:
        _variant(bench, "compile", compile=True)


def _precision(bench: Bench) -> None:
    """On CUDA, SAM3 alone with bfloat16 autocast off (``model_fps_fp32``; SAM3 always runs
    under it: NaN and the reason printed if it cannot run without)."""
    if bench.device == "cuda":
        bench.results["model_fps_fp32"] = _fp32_model_fps(bench)
    else:
        print("bf16 autocast off: not measured (CUDA only; on CPU everything is float32)")


def _fp32_model_fps(bench: Bench) -> float:
    """SAM3 alone with autocast turned off around every request (float32 weights)."""
    import torch

    decoded = clip_frames(bench.footage, bench.clips)
    try:
        with torch.autocast(device_type="cuda", enabled=False):
            bare_session(bench.segmenter.predictor, decoded[0], PROMPT, direct=True)
            seconds = _timed(bench.memory, lambda: [bare_session(bench.segmenter.predictor, f, PROMPT, direct=True) for f in decoded[1:]])
    except Exception as exc:  # noqa: BLE001 - SAM3 0.1.4 casts to bfloat16 assuming autocast
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        print(f"bf16 autocast off: fails ({type(exc).__name__}: {first})")
        return math.nan
    print(f"bf16 autocast off: SAM3 alone {bench.frames_measured / seconds:.2f} frames/s")
    return bench.frames_measured / seconds


def _memory_by_length(bench: Bench) -> list[np.ndarray]:
    """Peak memory over L consecutive frames, for each L of ``--memory-lengths``: processed as
    the stage does, in clips of ``--frames-per-clip`` one at a time (``gpu_mem_gb_<L>``), and
    as one session of L frames (``gpu_mem_gb_session_<L>``). Returns the longest run's frames."""
    args, results = bench.args, bench.results
    frames = consecutive_frames(bench.footage, max(args.memory_lengths))
    for length in args.memory_lengths:
        out: dict = {}
        with bench.memory.peak(out):
            for start in range(0, length, args.frames_per_clip):
                platform_session(bench.resource, frames[start : min(start + args.frames_per_clip, length)], PROMPT)
        results[f"gpu_mem_gb_{length}"] = out["gb"]
        with bench.memory.peak(out):
            platform_session(bench.resource, frames[:length], PROMPT)
        results[f"gpu_mem_gb_session_{length}"] = out["gb"]
    print(f"peak memory ({bench.memory.measure}), clips of {args.frames_per_clip} one at a time: "
          + ", ".join(f"{n} frames {results[f'gpu_mem_gb_{n}']:.3f} GB" for n in args.memory_lengths)
          + "; one session: " + ", ".join(f"{n} frames {results[f'gpu_mem_gb_session_{n}']:.3f} GB" for n in args.memory_lengths))
    return frames


def _memory_by_objects(bench: Bench, clip: list[np.ndarray]) -> None:
    """Memory and speed of one clip with the object cap at each of ``--objects`` (detection
    thresholds at 0, so that the random model emits as many objects as it can). The default
    model is let go first, so that only this one is in memory."""
    from vitcow_assets.defs.resources import forget_cached_models
    from vitcow_assets.segmenters.sam3 import set_max_objects

    results = bench.results
    bench.segmenter = bench.resource = None
    forget_cached_models()
    many = make_resource(str(bench.checkpoint), bench.device, score_threshold=0.0, new_object_threshold=0.0)
    model = load(many, bench.args.test_size).predictor.model
    for count in bench.args.objects:
        set_max_objects(model, count)  # what the max_objects setting does at load
        out: dict = {}
        started = time.perf_counter()
        with bench.memory.peak(out):
            most, distinct = platform_session(many, clip, PROMPT)
        results[f"fps_obj{count}"] = len(clip) / (time.perf_counter() - started)
        results.update({f"gpu_mem_gb_obj{count}": out["gb"], f"objects_obj{count}": most, f"objects_clip_obj{count}": distinct})
    print("by object cap: " + "; ".join(
        f"cap {n}: {results[f'objects_obj{n}']} objects on a frame ({results[f'objects_clip_obj{n}']} in the clip), "
        f"{results[f'gpu_mem_gb_obj{n}']:.3f} GB, {results[f'fps_obj{n}']:.2f} frames/s" for n in bench.args.objects))
    short = [n for n in bench.args.objects if results[f"objects_clip_obj{n}"] < n]
    if short:
        print(f"the random model emitted fewer objects than the cap for caps {short}: those rows measure fewer objects")
    del model, many
    bench.segmenter = bench.resource = None
    forget_cached_models()


def _memory_growth(bench: Bench) -> None:
    """Memory after each of ``--growth-clips`` consecutive clips through the stage."""
    from vitcow_assets.core.clips import ClipSettings, plan_clips

    args, info = bench.args, bench.info
    growth_clips = plan_clips(info.frame_count, info.fps, ClipSettings(frames_per_clip=args.growth_frames, frame_step=1))
    samples: list[float] = []
    done = 0
    while done < args.growth_clips:
        batch = growth_clips[: args.growth_clips - done]
        masks(bench.footage, batch, bench.resource, bench.segmenter, bench.folder / "growth.parquet", args.prefetch,
              progress=lambda i, n: samples.append(bench.memory.current_mb()))
        done += len(batch)
    bench.results.update(mem_growth_mb=samples[-1] - samples[0], mem_first_clip_mb=samples[0])
    print(f"memory over {len(samples)} consecutive clips of {args.growth_frames} frames: "
          f"{samples[0]:.1f} MB after the first, {samples[-1]:.1f} MB after the last, max {max(samples):.1f} MB "
          f"(growth {bench.results['mem_growth_mb']:+.1f} MB; {'memory_allocated' if bench.device == 'cuda' else 'RSS'})")


#: where the caller's (model) thread spends the stage's time: (label, file suffix, function)
PROFILE_PARTS = (
    ("whole stage", "segmentation.py", "segment_clips"),
    ("  waiting for the next clip's frames", "threads.py", "__next__"),
    ("  handing results to the writer", "threads.py", "submit"),
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
    parser.add_argument("--no-compile-check", dest="compile_check", action="store_false",
                        help="on CUDA, skip the run with compile on (its first clip compiles: minutes)")
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
