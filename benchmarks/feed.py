"""The CPU side that feeds the GPU: can it keep up with SAM 3.1-class speeds (30+ model
frames per second)?

Run from the repository root::

    python -m benchmarks.feed [FOOTAGE] [--objects 16] [--sizes 1080p,4mp] [--threads 1,2] [--inputs DIR]

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
  clips use to RGB (``ClipFrameStream``, what the stage decodes), in model frames per
  second (a clip's frames; the frame two clips share counts twice, as the model sees it);
- ``feed_fps``: ``object_masks``' own path (``segment_clips``: the decode thread,
  SAM3's input preparation at 1008 px (``frames_to_input``), a session per clip, SAM3's
  outputs turned into ``Detections`` (``detections_from_outputs``), the writer thread's
  RLE masks, cross-clip linking and Parquet) with an instant stand-in model in place of
  SAM3: ``--objects`` animal-like masks per frame (ellipses of 6-12% of the frame width,
  moving), delivered as SAM3 delivers them: written into a fresh frame-sized ``bool``
  array per frame, as its ``.cpu().numpy()`` does;
- ``feed_vs_decode``: ``feed_fps / decode_fps`` (target >= 0.8 at 1080p with 16 objects:
  the pipeline adds at most a quarter to the unavoidable decoding);
- ``share_<step>``: seconds spent in each step over the feed's wall time (steps run on three
  threads at once, so shares may add up to more than 1): ``decode`` and ``prepare`` (decode
  thread), ``standin`` (the stand-in making its outputs) and ``to_detections`` (model
  thread), ``encode`` (RLE rows) and ``write`` (linking, Parquet) on the writer thread;
  ``wait_frames``: the model thread idle for want of frames.

Each configuration prints one ``key=value`` line; the last line printed is the last
configuration's.
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
    and std, the ``resize`` setting)."""
    from vitcow_assets.segmenters.sam3 import prepare_clip

    return lambda frames: prepare_clip(frames, IMAGE_SIZE, resize=resize)


# --------------------------------------------------------------------------------------------
# the measured passes (in a child confined to some CPUs)


def decode_pass(path: Path, clips) -> float:
    from vitcow_assets.stages.frames import ClipFrameStream

    started = time.perf_counter()
    for _ in ClipFrameStream(path, clips).by_clip():
        pass
    return time.perf_counter() - started


def feed_pass(path: Path, clips, objects: int, resize: str, out: Path) -> tuple[float, dict]:
    """``segment_clips`` with the stand-in; wall seconds and every step's seconds."""
    from vitcow_assets.core.prompts import text_plan
    from vitcow_assets.media.video import probe_video
    from vitcow_assets.stages.segmentation import MaskJob, segment_clips
    from vitcow_testbed.fakes import FakeSegmenter

    info = probe_video(path)
    steps = {"standin": 0.0, "to_detections": 0.0}
    fake = FakeSegmenter(detect=standin_detect(AnimalScene(info.width, info.height, objects), steps), name="standin/sam3-shaped")
    job = MaskJob(path, "feed", clips, text_plan(PROMPT), fake.name, fake.open_session, out, prepare=sam3_prepare(resize))
    started = time.perf_counter()
    summary = segment_clips(job)
    wall = time.perf_counter() - started
    if summary.rows != sum(c.frames for c in clips) * objects:
        raise RuntimeError(f"the stand-in's {objects} objects per frame did not all reach the table ({summary.rows} rows)")
    return wall, {**summary.timings, **steps}


def measure(path: Path, objects: int, resize: str, repeats: int, folder: Path) -> dict:
    """Decode and feed passes, interleaved, best of ``repeats``, after a one-clip warm-up."""
    from vitcow_assets.core.clips import ClipSettings, plan_clips
    from vitcow_assets.media.video import probe_video

    info = probe_video(path)
    clips = plan_clips(info.frame_count, info.fps, ClipSettings())
    frames = sum(c.frames for c in clips)
    decode_pass(path, clips[:1])
    feed_pass(path, clips[:1], objects, resize, folder / "warm.parquet")
    decode_s = feed_s = float("inf")
    for i in range(repeats):
        decode_s = min(decode_s, decode_pass(path, clips))
        wall, steps = feed_pass(path, clips, objects, resize, folder / f"feed-{i}.parquet")
        if wall < feed_s:
            feed_s, best = wall, steps
    result = {"model_frames": frames, "clips": len(clips), "feed_fps": frames / feed_s, "decode_fps": frames / decode_s}
    result["feed_vs_decode"] = result["feed_fps"] / result["decode_fps"]
    for step in ("decode", "prepare", "standin", "to_detections", "encode", "write", "wait_frames", "wait_writer"):
        result[f"share_{step}"] = best[step] / feed_s
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def ints(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v.strip()]

    p = argparse.ArgumentParser(prog="python -m benchmarks.feed", description=__doc__.splitlines()[0])
    p.add_argument("footage", nargs="?", default=str(DEFAULT_FOOTAGE))
    p.add_argument("--objects", type=int, default=16, help="stand-in masks per frame (default 16)")
    p.add_argument("--sizes", default="1080p,4mp", help="input sizes: 1080p (1920x1080), 4mp (2560x1440) or WxH")
    p.add_argument("--threads", type=ints, default=[len(os.sched_getaffinity(0))], help="CPU counts to run on (default: all)")
    p.add_argument("--resize", default="pil", help="SAM3 input resizes to run, comma-separated: pil, bilinear (default pil)")
    p.add_argument("--seconds", type=float, default=30.0, help="footage seconds encoded per input (default 30)")
    p.add_argument("--loops", type=int, default=4, help="times the encoded seconds are repeated (default 4)")
    p.add_argument("--repeats", type=int, default=2, help="interleaved passes, the best kept (default 2)")
    p.add_argument("--inputs", help="folder to make (or find) the inputs in, kept; default: a temporary folder")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    args.resize = [s.strip() for s in args.resize.split(",") if s.strip()]
    if not args.resize or any(r not in ("pil", "bilinear") for r in args.resize):
        p.error(f"--resize: choose from pil, bilinear, got {args.resize}")
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
            for resize in args.resize:
                for cpus in args.threads:
                    print(line(size, args.objects, resize, run_child(path, cpus, resize, args)), flush=True)
    finally:
        if not args.inputs:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
