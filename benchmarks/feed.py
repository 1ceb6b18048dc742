"""The CPU side that feeds the GPU: can it keep up with SAM 3.1-class speeds (30+ model
frames per second)?

Run from the repository root::

    python -m benchmarks.feed [FOOTAGE] [--objects 16] [--sizes 1080p,4mp] [--threads 1,2] [--resize swscale,pil] [--inputs DIR]

FOOTAGE defaults to ``../shared/footage/vtest.avi``; when it is absent the script says so and
exits 0. From it the benchmark makes its inputs (``--inputs`` keeps them between runs, else
a temporary folder is removed at the end): the first ``--seconds`` (30) scaled to 1920×1080
(``1080p``) and 2560×1440 (``4mp``, the seed's farm cameras) and encoded as H.264 the way
the platform writes video, then looped ``--loops`` (4) times by copying packets.

For each size and each CPU count of ``--threads`` (default: every CPU of the machine), a
child process confined to that many CPUs (``sched_setaffinity``: FFmpeg's automatic decoder
threads, OpenCV and torch follow it; ``cpu_threads`` in the output) times, interleaved,
best of ``--repeats``:

- ``decode_fps``: PyAV alone decoding the file front to back and converting the frames the
  clips use to full-size RGB (``ClipFrameStream``, what the stage decoded before the
  ``swscale`` resize), in model frames per second (a clip's frames; the frame two clips
  share counts twice, as the model sees it): the baseline of ``feed_vs_decode``;
- ``bare_decode_fps``: decoding alone, no frame converted at all (``ClipFrameStream`` with
  native frames): what no feed can beat;
- ``feed_fps``: ``object_masks``' own path (``segment_clips``: the decode thread,
  SAM3's input preparation at 1008 px by the ``--resize`` setting (``swscale``: the decoder
  scales each frame straight to 1008 px and ``prepare_clip`` gathers the clip's planes into
  one tensor, SAM3's scaling to float16 following on the device when a session starts, not
  measured here, as ``bilinear``'s resize; ``pil``: full-size RGB, then
  ``frames_to_input``), a session per clip, SAM3's
  outputs turned into ``Detections`` (``detections_from_outputs``), the writer thread's
  RLE masks, cross-clip linking and Parquet) with an instant stand-in model in place of
  SAM3: ``--objects`` animal-like masks per frame (ellipses of 6-12% of the frame width,
  moving), delivered as SAM3 delivers them: written into a fresh frame-sized ``bool``
  array per frame, as its ``.cpu().numpy()`` does;
- ``feed_vs_decode``: ``feed_fps / decode_fps`` (target >= 0.8 at 1080p and 2560x1440 with
  16 objects: the pipeline adds at most a quarter to decoding); ``feed_vs_bare_decode``:
  ``feed_fps / bare_decode_fps``;
- ``feed_cpu_ms``, ``decode_cpu_ms``, ``bare_decode_cpu_ms``: CPU milliseconds (the
  process's, every thread) per model frame of each pass, least of the repeats, and
  ``decode_vs_feed_cpu`` their ratio: what the feed costs the CPUs, which other processes
  on a shared machine disturb far less than the wall-clock figures;
- ``share_<step>``: seconds spent in each step over the feed's wall time (steps run on three
  threads at once, so shares may add up to more than 1): ``decode`` (with ``swscale``
  including the decoder's scaling to 1008 px) and ``prepare`` (decode thread), ``standin`` (the stand-in making its outputs) and ``to_detections`` (model
  thread), ``encode`` (RLE rows) and ``write`` (linking, Parquet) on the writer thread;
  ``wait_frames``: the model thread idle for want of frames.

Before the timings of each size, an ``input_difference`` line compares the model input of
``swscale`` with ``pil``'s (SAM3's own loader's values) on ``--difference-frames`` frames
(``input_difference``: max and mean absolute difference after SAM3's scaling, and in levels
of 255, with what the resize filters alone and a JPEG round trip make of the same frames).
Each configuration prints one ``key=value`` line. With several ``--resize`` values, a
``compare`` line per size and CPU count follows them: the first resize against each later one,
from the same run (``feed_fps_ratio``: its ``feed_fps`` over the other's; ``cpu_ratio``: the
other's ``feed_cpu_ms`` over its own), so ``--resize swscale,pil`` gives the new path against
SAM3's own loader's.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOOTAGE = REPO.parent / "shared" / "footage" / "vtest.avi"
SIZES = {"1080p": (1920, 1080), "4mp": (2560, 1440)}
IMAGE_SIZE = 1008  # SAM3's input size (hard-coded in its builder)
PROMPT = "cow"


# --------------------------------------------------------------------------------------------
# inputs


def scaled_footage(source: Path, out: Path, width: int, height: int, seconds: float) -> Path:
    """The first ``seconds`` of ``source`` scaled to ``width × height``, H.264 as the platform
    writes video (``VideoWriter``), written atomically."""
    import cv2

    from vitcow_assets.media.video import VideoWriter, iter_frames, probe_video

    info = probe_video(source)
    frames = max(1, int(round(seconds * info.fps)))
    with VideoWriter(out, width, height, info.fps) as writer:
        for _, rgb in iter_frames(source, range(frames)):
            writer.write(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR))
    return out


def loop_video(source: Path, out: Path, loops: int) -> Path:
    """``source``'s video packets ``loops`` times one after the other, no re-encoding: each
    pass is shifted by the first pass's span of decode timestamps (B-frames start below 0)."""
    import av

    from vitcow_assets.media.files import atomic_file

    with atomic_file(out) as tmp, av.open(str(source)) as inp, av.open(str(tmp), "w", format="mp4") as dst:
        stream = inp.streams.video[0]
        ostream = dst.add_stream_from_template(stream)
        span = 0
        for k in range(loops):
            inp.seek(0)
            first = last = None
            for packet in inp.demux(stream):
                if packet.dts is None:
                    continue
                first = packet.dts if first is None else first
                last = packet.dts + (packet.duration or 0)
                packet.dts += k * span
                if packet.pts is not None:
                    packet.pts += k * span
                packet.stream = ostream
                dst.mux(packet)
            span = span or (last - first)
    return out


def frame_size(size: str) -> tuple[int, int]:
    """``(width, height)`` of a size name (``1080p``, ``4mp``) or of ``WxH``."""
    if size in SIZES:
        return SIZES[size]
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 2 and int(height) >= 2):
        raise ValueError(f"unknown size {size!r}: {', '.join(SIZES)} or WIDTHxHEIGHT")
    return int(width), int(height)


def scaled_input(footage: Path, folder: Path, size: str, seconds: float) -> Path:
    """The first ``seconds`` of ``footage`` at one size, made once per folder."""
    once = folder / f"{footage.stem}_{size}_{seconds:g}s.mp4"
    if not once.is_file():
        scaled_footage(footage, once, *frame_size(size), seconds)
    return once


def make_input(footage: Path, folder: Path, size: str, seconds: float, loops: int) -> Path:
    """The looped, scaled input of one size, made once per folder."""
    looped = folder / f"{footage.stem}_{size}_{seconds:g}s_x{loops}.mp4"
    if not looped.is_file():
        loop_video(scaled_input(footage, folder, size, seconds), looped, loops)
    return looped


# --------------------------------------------------------------------------------------------
# the stand-in model


class AnimalScene:
    """``objects`` animal-like masks moving over a ``width × height`` frame, deterministic:
    ellipses (long axis 6-12% of the width, 2-3 times the short one, turned at random) that
    drift a few pixels per frame and turn back at the edges."""

    def __init__(self, width: int, height: int, objects: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        self.long = rng.uniform(0.06, 0.12, objects) * width / 2
        self.short = self.long / rng.uniform(2.0, 3.0, objects)
        self.angle = rng.uniform(0, 180, objects)
        self.start = rng.uniform(0.1, 0.9, (objects, 2)) * (width, height)
        self.velocity = rng.uniform(-0.004, 0.004, (objects, 2)) * width

    def centres(self, frame: int) -> np.ndarray:
        span = np.array([self.width, self.height], np.float64)
        lo, hi = self.long[:, None], span - self.long[:, None]
        travel = self.start + self.velocity * frame - lo
        period = 2 * (hi - lo)
        folded = np.mod(travel, period)
        return lo + np.where(folded > period / 2, period - folded, folded)

    def outputs(self, frame: int) -> dict:
        """What SAM3's predictor returns for one frame, masks in a fresh frame-sized array."""
        import cv2

        n = len(self.long)
        masks = np.empty((n, self.height, self.width), np.uint8)
        masks.fill(0)  # every byte written, as .cpu().numpy() writes its fresh array
        for i, (x, y) in enumerate(self.centres(frame)):
            axes = (int(self.long[i]), int(self.short[i]))
            cv2.ellipse(masks[i], (int(x), int(y)), axes, float(self.angle[i] + frame), 0, 360, 1, -1)
        return {
            "out_obj_ids": np.arange(n, dtype=np.int64),
            "out_probs": np.full(n, 0.9, np.float32),
            "out_binary_masks": masks.view(bool),
        }


def standin_detect(scene: AnimalScene, timings: dict):
    """A ``FakeSegmenter`` ``detect``: the scene's outputs for the clip frame, turned into
    ``Detections`` by the SAM3 backend's own conversion; both times counted."""
    from vitcow_assets.segmenters.sam3 import detections_from_outputs

    counter = {"frame": 0}

    def detect(frames, clip_frame: int):
        started = time.perf_counter()
        outputs = scene.outputs(counter["frame"])
        counter["frame"] += 1
        made = time.perf_counter()
        detections = detections_from_outputs(outputs, scene.height, scene.width)
        timings["standin"] += made - started
        timings["to_detections"] += time.perf_counter() - made
        return detections

    return detect


def sam3_prepare(resize: str):
    """SAM3's input for one clip, as ``Sam3Segmenter.prepare_frames`` makes it (its mean
    and std, the ``resize`` setting), and the frame scale it asks the decoder for
    (``Sam3Segmenter.frame_scale``)."""
    from vitcow_assets.media.video import FrameScale
    from vitcow_assets.segmenters.sam3 import SWSCALE_FILTER, prepare_clip

    scale = FrameScale(IMAGE_SIZE, IMAGE_SIZE, SWSCALE_FILTER) if resize == "swscale" else None
    return (lambda frames: prepare_clip(frames, IMAGE_SIZE, resize=resize)), scale


# --------------------------------------------------------------------------------------------
# the model's input: swscale against SAM3's own (pil)


def _model_input(clip):
    """What the model gets of a prepared clip (``swscale``'s planes scaled as on the device)."""
    from vitcow_assets.segmenters.sam3 import planes_to_input

    return planes_to_input(clip.tensor, (0.5,) * 3, (0.5,) * 3, "cpu") if clip.kind == "planes" else clip.tensor


def _levels(ours, theirs) -> tuple[float, float, np.ndarray, float]:
    """Max and mean absolute difference of two SAM3 inputs in levels of 255 (the inputs are
    ``(x / 255 - 0.5) / 0.5``), the mean signed difference per channel and the 99.9th
    percentile of the absolute difference."""
    diff = (ours.float() - theirs.float()).numpy() * 127.5
    return float(np.abs(diff).max()), float(np.abs(diff).mean()), diff.mean(axis=(0, 2, 3)), float(np.quantile(np.abs(diff), 0.999))


def input_difference(path: Path, frames: int) -> dict:
    """SAM3's input made by ``swscale`` against ``pil`` (its own loader's values) on
    ``frames`` frames spread over the file: ``max`` and ``mean`` absolute difference after
    SAM3's scaling to [-1, 1] (``*_levels``: in levels of 255), ``bias_levels`` the mean
    signed difference per channel (R, G, B), ``p999_levels`` the largest of the frames'
    99.9th percentiles; ``resize_only``: the same full-size RGB frames
    through swscale's bicubic instead of PIL's (the filters alone, no colour conversion);
    ``jpeg95``: the ``pil`` input after a JPEG round trip at quality 95 (SAM3's README feeds
    it a folder of JPEG frames), for scale."""
    import io

    from PIL import Image

    from vitcow_assets.media.video import FrameScale, iter_frames, probe_video
    from vitcow_assets.segmenters.sam3 import SWSCALE_FILTER, prepare_clip

    count = probe_video(path).frame_count
    wanted = sorted(set(np.linspace(0, count - 1, frames).astype(int).tolist()))
    scaled = iter_frames(path, wanted, scale=FrameScale(IMAGE_SIZE, IMAGE_SIZE, SWSCALE_FILTER))
    seen = {"swscale": [], "resize_only": [], "jpeg95": []}
    for (_, small), (_, rgb) in zip(scaled, iter_frames(path, wanted)):
        pil = prepare_clip([rgb], IMAGE_SIZE, resize="pil").tensor
        jpeg = io.BytesIO()
        Image.fromarray(rgb).save(jpeg, "JPEG", quality=95)
        rounded = np.asarray(Image.open(jpeg).convert("RGB"))
        seen["swscale"].append(_levels(_model_input(prepare_clip([small], IMAGE_SIZE, resize="swscale")), pil))
        seen["resize_only"].append(_levels(_model_input(prepare_clip([rgb], IMAGE_SIZE, resize="swscale")), pil))
        seen["jpeg95"].append(_levels(prepare_clip([rounded], IMAGE_SIZE, resize="pil").tensor, pil))
    out = {"frames": len(seen["swscale"])}
    for name, values in seen.items():
        top, mean = max(v[0] for v in values), float(np.mean([v[1] for v in values]))
        out.update({f"{name}_max": top / 127.5, f"{name}_mean": mean / 127.5, f"{name}_max_levels": top, f"{name}_mean_levels": mean})
    out["swscale_bias_levels"] = ",".join(f"{v:.2f}" for v in np.mean([v[2] for v in seen["swscale"]], axis=0))
    out["swscale_p999_levels"] = max(v[3] for v in seen["swscale"])
    return out


# --------------------------------------------------------------------------------------------
# the measured passes (in a child confined to some CPUs)


def decode_pass(path: Path, clips, convert: bool = True) -> tuple[float, float]:
    """Wall and CPU seconds (this process's, every thread) to decode the clips' frames,
    converted to full-size RGB (or, without ``convert``, left as decoded)."""
    from vitcow_assets.stages.frames import ClipFrameStream

    started, cpu = time.perf_counter(), time.process_time()
    for _ in ClipFrameStream(path, clips, native=not convert).by_clip():
        pass
    return time.perf_counter() - started, time.process_time() - cpu


def feed_pass(path: Path, clips, objects: int, resize: str, out: Path) -> tuple[float, float, dict]:
    """``segment_clips`` with the stand-in; wall seconds, CPU seconds (this process's,
    every thread) and every step's seconds."""
    from vitcow_assets.core.prompts import text_plan
    from vitcow_assets.media.video import probe_video
    from vitcow_assets.stages.segmentation import MaskJob, segment_clips
    from vitcow_testbed.fakes import FakeSegmenter

    info = probe_video(path)
    steps = {"standin": 0.0, "to_detections": 0.0}
    fake = FakeSegmenter(detect=standin_detect(AnimalScene(info.width, info.height, objects), steps), name="standin/sam3-shaped")
    prepare, scale = sam3_prepare(resize)
    job = MaskJob(path, "feed", clips, text_plan(PROMPT), fake.name, fake.open_session, out, prepare=prepare, scale=scale)
    started, cpu = time.perf_counter(), time.process_time()
    summary = segment_clips(job)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if summary.rows != sum(c.frames for c in clips) * objects:
        raise RuntimeError(f"the stand-in's {objects} objects per frame did not all reach the table ({summary.rows} rows)")
    return wall, cpu, {**summary.timings, **steps}


def measure(path: Path, objects: int, resize: str, repeats: int, folder: Path) -> dict:
    """Decode and feed passes, interleaved, best of ``repeats``, after a one-clip warm-up."""
    from vitcow_assets.core.clips import ClipSettings, plan_clips
    from vitcow_assets.media.video import probe_video

    info = probe_video(path)
    clips = plan_clips(info.frame_count, info.fps, ClipSettings())
    frames = sum(c.frames for c in clips)
    decode_pass(path, clips[:1])
    feed_pass(path, clips[:1], objects, resize, folder / "warm.parquet")
    wall = dict.fromkeys(("decode", "bare_decode", "feed"), float("inf"))
    cpu = dict(wall)
    for i in range(repeats):
        for name, convert in (("decode", True), ("bare_decode", False)):
            seconds, used = decode_pass(path, clips, convert)
            wall[name], cpu[name] = min(wall[name], seconds), min(cpu[name], used)
        seconds, used, steps = feed_pass(path, clips, objects, resize, folder / f"feed-{i}.parquet")
        cpu["feed"] = min(cpu["feed"], used)
        if seconds < wall["feed"]:
            wall["feed"], best = seconds, steps
    result = {"model_frames": frames, "clips": len(clips), "feed_fps": frames / wall["feed"], "decode_fps": frames / wall["decode"]}
    result["feed_vs_decode"] = result["feed_fps"] / result["decode_fps"]
    result["bare_decode_fps"] = frames / wall["bare_decode"]
    result["feed_vs_bare_decode"] = result["feed_fps"] / result["bare_decode_fps"]
    for name, seconds in cpu.items():
        result[f"{name}_cpu_ms"] = 1000 * seconds / frames
    result["decode_vs_feed_cpu"] = cpu["decode"] / cpu["feed"]
    for step in ("decode", "prepare", "standin", "to_detections", "encode", "write", "wait_frames", "wait_writer"):
        result[f"share_{step}"] = best[step] / wall["feed"]
    return result


def confine(cpus: int) -> int:
    """Confine this process to its first ``cpus`` CPUs (before any library starts threads)."""
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, allowed[:cpus])
    return len(os.sched_getaffinity(0))


def child(args: argparse.Namespace) -> int:
    threads = confine(args.child)
    import cv2
    import torch

    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="vitcow-feed-") as tmp:
        result = measure(Path(args.footage), args.objects, args.resize[0], args.repeats, Path(tmp))
    print(json.dumps({"cpu_threads": threads, **result}), flush=True)
    return 0


# --------------------------------------------------------------------------------------------


def run_child(path: Path, cpus: int, resize: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "benchmarks.feed", str(path), "--child", str(cpus), "--resize", resize,
               "--objects", str(args.objects), "--repeats", str(args.repeats)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"feed child ({cpus} CPUs) failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def line(size: str, objects: int, resize: str, result: dict) -> str:
    first = ["feed_fps", "decode_fps", "feed_vs_decode", "cpu_threads"]
    values = {"size": size, "objects": objects, "resize": resize, **result}
    keys = first + [k for k in values if k not in first]
    return " ".join(f"{k}={values[k]:.4g}" if isinstance(values[k], float) else f"{k}={values[k]}" for k in keys)


def comparisons(size: str, resizes: list[str], threads: list[int], results: dict) -> list[str]:
    """A ``compare`` line per CPU count and later resize: the first resize's feed against
    that one's, from the same run (``feed_fps_ratio``: first over other, above 1 when the
    first is faster; ``cpu_ratio``: the other's CPU per model frame over the first's, above 1
    when the first takes less)."""
    first, out = resizes[0], []
    for other in resizes[1:]:
        for cpus in threads:
            ours, theirs = results[first, cpus], results[other, cpus]
            values = {"size": size, "cpu_threads": ours["cpu_threads"], "resize": first, "baseline": other,
                      "feed_fps_ratio": ours["feed_fps"] / theirs["feed_fps"], "cpu_ratio": theirs["feed_cpu_ms"] / ours["feed_cpu_ms"],
                      "feed_vs_decode": ours["feed_vs_decode"], "baseline_feed_vs_decode": theirs["feed_vs_decode"]}
            out.append("compare " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def ints(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v.strip()]

    from vitcow_assets.segmenters.sam3 import RESIZES

    p = argparse.ArgumentParser(prog="python -m benchmarks.feed", description=__doc__.splitlines()[0])
    p.add_argument("footage", nargs="?", default=str(DEFAULT_FOOTAGE))
    p.add_argument("--objects", type=int, default=16, help="stand-in masks per frame (default 16)")
    p.add_argument("--sizes", default="1080p,4mp", help="input sizes: 1080p (1920x1080), 4mp (2560x1440) or WxH")
    p.add_argument("--threads", type=ints, default=[len(os.sched_getaffinity(0))], help="CPU counts to run on (default: all)")
    p.add_argument("--resize", default="swscale", help=f"SAM3 input resizes to run, comma-separated: {', '.join(RESIZES)} (default swscale)")
    p.add_argument("--seconds", type=float, default=30.0, help="footage seconds encoded per input (default 30)")
    p.add_argument("--loops", type=int, default=4, help="times the encoded seconds are repeated (default 4)")
    p.add_argument("--repeats", type=int, default=2, help="interleaved passes, the best kept (default 2)")
    p.add_argument("--difference-frames", type=int, default=24,
                   help="frames (spread over each input) on which swscale's model input is compared with pil's (default 24; 0: none)")
    p.add_argument("--inputs", help="folder to make (or find) the inputs in, kept; default: a temporary folder")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    args.resize = [s.strip() for s in args.resize.split(",") if s.strip()]
    if not args.resize or any(r not in RESIZES for r in args.resize):
        p.error(f"--resize: choose from {', '.join(RESIZES)}, got {args.resize}")
    for size in args.sizes:
        try:
            frame_size(size)
        except ValueError as exc:
            p.error(f"--sizes: {exc}")
    if args.objects < 1 or args.repeats < 1 or args.loops < 1 or min(args.threads, default=0) < 1:
        p.error("--objects, --repeats, --loops and --threads must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child(args)
    footage = Path(args.footage)
    if not footage.is_file():
        print(f"footage not found: {footage} (skipped)")
        return 0
    folder = Path(args.inputs) if args.inputs else Path(tempfile.mkdtemp(prefix="vitcow-feed-inputs-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for size in args.sizes:
            path = make_input(footage, folder, size, args.seconds, args.loops)
            print(f"{size}: {path.name}", flush=True)
            if args.difference_frames:
                values = {"size": size, **input_difference(path, args.difference_frames)}
                print("input_difference " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()), flush=True)
            results = {}
            for resize in args.resize:
                for cpus in args.threads:
                    results[resize, cpus] = run_child(path, cpus, resize, args)
                    print(line(size, args.objects, resize, results[resize, cpus]), flush=True)
            for text in comparisons(size, args.resize, args.threads, results):
                print(text, flush=True)
    finally:
        if not args.inputs:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
