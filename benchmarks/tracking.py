"""Tracking benchmark of the motion backend on footage with a known number of animals.

Run from the repository root::

    python -m benchmarks.tracking FOOTAGE --animals N [--frames-per-clip 20] [--frame-step 4]
                                  [--max-clips K] [--no-before]

The video is cut into the platform's clips (``plan_clips`` with the given settings, the
platform defaults unless flags say otherwise) and ``segment_clips`` (one decode pass, one
segmenter session per clip, masks written as Parquet, exactly what the ``object_masks`` asset
does) runs over them twice, in the same process: first with the motion segmenter as it was
before issue 8 (``benchmarks.motion_v1``, the baseline), then with the current one. Figures,
from the masks table each run wrote:

- ``detections_per_frame``: median over every sampled frame (frames with none count as 0).
- ``recall``: mean over sampled frames of ``min(detections, N) / N`` (extra boxes do not count).
- ``track_length_frac``: median over (clip, object id) of frames present / clip frames.
- ``ids_per_clip``: median number of object ids per clip (ideal: N).
- ``tracks_per_video``: distinct ``track_id`` values (animals linked across clips)
- ``short_tracks``: (clip, object id) pairs present in fewer than half of the clip's frames
  (each is a crop video that is mostly black).
- ``fps``: sampled frames per wall second of ``segment_clips`` (decode + segment + write).
- ``x_realtime``: seconds of source video per wall second of ``segment_clips``.

The last line printed is ``key=value`` pairs (the current segmenter's figures, then the
baseline's with a ``before_`` prefix); the table above it is for people. Wall times come from a
shared machine: compare the two runs of one invocation, not runs of different days.
"""

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from vitcow_assets.core.clips import ClipSettings, plan_clips
from vitcow_assets.core.prompts import text_plan
from vitcow_assets.media.video import probe_video
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets.stages.segmentation import segment_clips
from benchmarks.motion_v1 import MotionSegmenterV1

PROMPT = "animal"


@dataclasses.dataclass
class Figures:
    detections_per_frame: float
    recall: float
    track_length_frac: float
    ids_per_clip: float
    tracks_per_video: int
    short_tracks: int
    fps: float
    x_realtime: float

    def pairs(self, prefix: str = "") -> list[str]:
        return [f"{prefix}{k}={_fmt(v)}" for k, v in dataclasses.asdict(self).items()]


def _fmt(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def score_masks(masks_path: Path, clips, animals: int) -> dict:
    """Detection and track figures of a masks table against ``animals`` present in every frame."""
    table = pq.read_table(masks_path)
    cols = table.select(["clip_id", "clip_frame", "object_id"]).to_pydict()
    per_frame: dict[tuple[str, int], int] = {}
    per_object: dict[tuple[str, int], int] = {}
    for clip_id, frame, obj in zip(cols["clip_id"], cols["clip_frame"], cols["object_id"]):
        per_frame[(clip_id, frame)] = per_frame.get((clip_id, frame), 0) + 1
        per_object[(clip_id, obj)] = per_object.get((clip_id, obj), 0) + 1
    counts = np.array([per_frame.get((c.clip_id, f), 0) for c in clips for f in range(c.frames)], float)
    frames_of = {c.clip_id: c.frames for c in clips}
    fractions = np.array([n / frames_of[clip_id] for (clip_id, _), n in per_object.items()], float)
    ids = np.array([sum(1 for (cid, _) in per_object if cid == c.clip_id) for c in clips], float)
    tracks = len(set(table["track_id"].to_pylist()))  # animals through the video (linked across clips)
    return {
        "detections_per_frame": float(np.median(counts)) if len(counts) else 0.0,
        "recall": float(np.mean(np.minimum(counts, animals) / animals)) if len(counts) else 0.0,
        "track_length_frac": float(np.median(fractions)) if len(fractions) else 0.0,
        "ids_per_clip": float(np.median(ids)) if len(ids) else 0.0,
        "tracks_per_video": tracks,
        "short_tracks": int((fractions < 0.5).sum()),
    }


def run_backend(segmenter, footage: Path, clips, duration_s: float, animals: int, workdir: Path) -> Figures:
    @contextlib.contextmanager
    def open_session(frames):
        with segmenter.start_session(frames) as session:
            yield session

    out = workdir / f"{segmenter.name.replace('/', '_')}.parquet"
    start = time.perf_counter()
    summary = segment_clips(footage, "bench", clips, open_session, text_plan(PROMPT), segmenter.name, out)
    wall = time.perf_counter() - start
    sampled = sum(c.frames for c in clips[: summary.clips])
    return Figures(**score_masks(out, clips[: summary.clips], animals), fps=sampled / wall, x_realtime=duration_s / wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracking", description=__doc__.splitlines()[0])
    parser.add_argument("footage", type=Path)
    parser.add_argument("--animals", type=int, required=True, help="animals present in every frame")
    defaults = ClipSettings()
    parser.add_argument("--frames-per-clip", type=int, default=defaults.frames_per_clip)
    parser.add_argument("--frame-step", type=int, default=defaults.frame_step)
    parser.add_argument("--max-clips", type=int, default=None, help="keep at most K clips (seed 0)")
    parser.add_argument("--no-before", action="store_true", help="skip the baseline (motion/v1) run")
    args = parser.parse_args(argv)
    if not args.footage.is_file():
        print(f"{args.footage}: no such file; nothing to benchmark")
        return 0
    if args.animals < 1:
        parser.error("--animals must be at least 1")
    info = probe_video(args.footage)
    settings = ClipSettings(frames_per_clip=args.frames_per_clip, frame_step=args.frame_step, max_clips=args.max_clips, seed=0)
    clips = plan_clips(info.frame_count, info.fps, settings)
    # Real time covered: the clips' span of source video (every clip, or the sampled ones).
    duration_s = sum(c.frames * c.frame_step for c in clips) / info.fps
    print(f"{args.footage.name}: {info.width}x{info.height}, {info.fps:.2f} fps, {info.frame_count} frames; "
          f"{len(clips)} clips of {args.frames_per_clip} frames, step {args.frame_step} ({duration_s:.1f} s of video)", flush=True)
    runs: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="vitcow-tracking-") as tmp:
        if not args.no_before:
            runs["before"] = run_backend(MotionSegmenterV1(), args.footage, clips, duration_s, args.animals, Path(tmp))
            print(f"before: {runs['before']}", flush=True)
        runs["after"] = run_backend(MotionSegmenter(), args.footage, clips, duration_s, args.animals, Path(tmp))
        print(f"after:  {runs['after']}", flush=True)
    names = list(dataclasses.asdict(runs["after"]))
    print(f"\n{'figure':<22}" + "".join(f"{k:>12}" for k in runs))
    for name in names:
        print(f"{name:<22}" + "".join(f"{_fmt(getattr(runs[k], name)):>12}" for k in runs))
    pairs = runs["after"].pairs() + (runs["before"].pairs("before_") if "before" in runs else [])
    print(" ".join([f"animals={args.animals}"] + pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
