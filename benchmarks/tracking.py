"""Tracking benchmark of the motion backend: on footage with a known number of animals, and
on synthetic scenes with exact ground truth.

Run from the repository root::

    python -m benchmarks.tracking FOOTAGE --animals N [--frames-per-clip 20] [--frame-step 4]
                                  [--max-clips K] [--backends v1,v2,now]
    python -m benchmarks.tracking --scenes school,herd,crowd [--seeds 3] [--backends v2,now]

The video is cut into the platform's clips (``plan_clips``; the platform defaults unless flags
say otherwise) and ``segment_clips`` (one decode pass, one segmenter session per clip, masks
written as Parquet, exactly what the ``object_masks`` asset does) runs over them once per
backend, in the same process: ``v1`` is the motion segmenter before issue 8
(``benchmarks.motion_v1``), ``v2`` the one before issue 20 (``benchmarks.motion_v2``); both
are linked across clips by the v2 linker (``TrackLinkerV2``), so "before" is before in both
respects; ``now`` is the package's segmenter and linker. Synthetic scenes
(``vitcow_testbed.synthetic_scenes``: N animals always in view) are written to a
temporary folder, one video per scene and seed.

Figures (``vitcow_testbed.trackscore``, run by ``vitcow_testbed.tracking_runs``):
``detections_per_frame`` (median), ``recall`` (mean over sampled frames of ``min(detections,
N) / N``), ``track_length_frac`` (median per (clip, object) of frames present / clip
frames), ``ids_per_clip`` (median; ideal N) and ``max_ids_per_clip``, ``tracks_per_video``
(distinct ``track_id``; ideal N), ``short_tracks`` (objects present in under half of their
clip: mostly black crops), ``jumps_over_100px`` (crops whose box jumps over 100 px between
consecutive frames), ``fps`` and ``x_realtime`` (sampled frames, and seconds of source
video, per wall second of ``segment_clips``). With ground truth also ``idf1`` (TrackEval),
``matched_recall`` (true boxes matched at IoU >= 0.5) and ``crop_switches`` (crops that
follow more than one animal), and, of the crops the crop stage cuts from the masks (objects
cut where their box jumps), ``crop_parts``, ``part_switches`` (crop videos that still follow
more than one animal), ``cuts_between_animals`` and ``cuts_within_animal`` (cuts that took a
switch out, and cuts of one animal's crop for nothing). Scenes print each seed and then the
mean over seeds (``ids_per_clip``, ``max_ids_per_clip`` and ``tracks_per_video`` also their
worst seed, as ``worst_*``).

The last line printed is ``key=value`` pairs: ``<backend>_<figure>`` for footage,
``<scene>_<backend>_<figure>`` for scenes. Wall times come from a shared machine: compare the
runs of one invocation, not runs of different days.
"""

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.motion_v1 import MotionSegmenterV1
from benchmarks.motion_v2 import MotionSegmenterV2, TrackLinkerV2
from vitcow_assets.core.clips import ClipSettings, plan_clips
from vitcow_assets.media.video import probe_video
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_testbed import synthetic_scenes as ss
from vitcow_testbed import tracking_runs

#: backend name -> (segmenter factory, linker factory or None for the package's own)
BACKENDS: dict[str, tuple[Callable, Callable | None]] = {
    "v1": (MotionSegmenterV1, TrackLinkerV2),
    "v2": (MotionSegmenterV2, TrackLinkerV2),
    "now": (MotionSegmenter, None),
}
WORST = ("ids_per_clip", "max_ids_per_clip", "tracks_per_video")


def figures(name: str, footage: Path, clips, duration_s: float, animals: int, workdir: Path, gt=None) -> dict:
    """``tracking_runs.figures`` of backend ``name``."""
    make_segmenter, make_linker = BACKENDS[name]
    return tracking_runs.figures(make_segmenter, make_linker, footage, clips, duration_s, animals, workdir / f"{name}.parquet", gt)


def _fmt(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def print_table(runs: dict[str, dict], title: str = "figure") -> None:
    names = list(next(iter(runs.values())))
    print(f"\n{title:<22}" + "".join(f"{k:>12}" for k in runs))
    for name in names:
        print(f"{name:<22}" + "".join(f"{_fmt(runs[k][name]):>12}" for k in runs))


def footage_main(args) -> list[str]:
    info = probe_video(args.footage)
    settings = ClipSettings(frames_per_clip=args.frames_per_clip, frame_step=args.frame_step, max_clips=args.max_clips, seed=0)
    clips = plan_clips(info.frame_count, info.fps, settings)
    # Real time covered: the clips' span of source video (every clip, or the sampled ones).
    duration_s = sum(c.frames * c.frame_step for c in clips) / info.fps
    print(f"{args.footage.name}: {info.width}x{info.height}, {info.fps:.2f} fps, {info.frame_count} frames; "
          f"{len(clips)} clips of {args.frames_per_clip} frames, step {args.frame_step} ({duration_s:.1f} s of video)", flush=True)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="vitcow-tracking-") as tmp:
        for name in args.backends:
            runs[name] = figures(name, args.footage, clips, duration_s, args.animals, Path(tmp))
            print(f"{name}: {runs[name]}", flush=True)
    print_table(runs)
    return [f"animals={args.animals}"] + [f"{b}_{k}={_fmt(v)}" for b, r in runs.items() for k, v in r.items()]


def _mean_over_seeds(per_seed: list[dict]) -> dict:
    out = {k: float(np.mean([r[k] for r in per_seed])) for k in per_seed[0]}
    out.update({f"worst_{k}": max(r[k] for r in per_seed) for k in WORST})
    return out


def scene_main(args) -> list[str]:
    pairs = []
    with tempfile.TemporaryDirectory(prefix="vitcow-scenes-") as tmp:
        for scene_name in args.scenes:
            spec = ss.SCENES[scene_name]
            per_seed: dict[str, list[dict]] = {b: [] for b in args.backends}
            for seed in range(args.seeds):
                case = ss.scene_case(scene_name, seed, Path(tmp))
                for name in args.backends:
                    result = figures(name, case.video, case.clips, case.duration_s, spec.animals, Path(tmp), case.truth)
                    per_seed[name].append(result)
                    print(f"{scene_name} seed {seed} {name}: " + " ".join(f"{k}={_fmt(v)}" for k, v in result.items()), flush=True)
            runs = {b: _mean_over_seeds(r) for b, r in per_seed.items()}
            print_table(runs, f"{scene_name} (N={spec.animals})")
            pairs += [f"{scene_name}_{b}_{k}={_fmt(v)}" for b, r in runs.items() for k, v in r.items()]
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracking", description=__doc__.splitlines()[0])
    parser.add_argument("footage", type=Path, nargs="?")
    parser.add_argument("--animals", type=int, help="animals present in every frame of FOOTAGE")
    defaults = ClipSettings()
    parser.add_argument("--frames-per-clip", type=int, default=defaults.frames_per_clip)
    parser.add_argument("--frame-step", type=int, default=defaults.frame_step)
    parser.add_argument("--max-clips", type=int, default=None, help="keep at most K clips (seed 0)")
    parser.add_argument("--scenes", type=lambda s: [x for x in s.split(",") if x], default=[], help="synthetic scenes, comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="videos per synthetic scene (default: %(default)s)")
    parser.add_argument("--backends", type=lambda s: [x for x in s.split(",") if x], default=list(BACKENDS), help="comma-separated: v1, v2, now")
    parser.add_argument("--no-before", action="store_true", help="only the package's backend (--backends now)")
    args = parser.parse_args(argv)
    args.backends = ["now"] if args.no_before else args.backends
    if unknown := [b for b in args.backends if b not in BACKENDS]:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    if unknown := [s for s in args.scenes if s not in ss.SCENES]:
        parser.error(f"unknown scene(s) {', '.join(unknown)}; choose from {', '.join(ss.SCENES)}")
    if args.footage is None and not args.scenes:
        parser.error("give FOOTAGE (with --animals) or --scenes")
    pairs = []
    if args.footage is not None:
        if not args.footage.is_file():
            print(f"{args.footage}: no such file; nothing to benchmark")
            return 0
        if args.animals is None or args.animals < 1:
            parser.error("--animals must be at least 1")
        pairs += footage_main(args)
    if args.scenes:
        pairs += scene_main(args)
    print(" ".join(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
