"""Identity across clips on synthetic footage with exact ground truth (IDF1).

Run from the repository root::

    python -m benchmarks.identity [--keep DIR]

The footage (``vitcow_testbed/synthetic_tracks.py``): six small animals over a textured
background, 109 frames cut into 6 clips of 10 frames every 2nd frame: two cross head-on
exactly on a clip boundary (one hidden on the shared frame), two cross in an X inside a clip,
one walks, stands still for two whole clips and walks on, one wanders slowly.

Each detector runs through ``segment_clips`` (the project's streaming path, linking included)
and is scored with TrackEval's IDF1 (``vitcow_testbed/idscore.py``) over every sampled frame:

- ``truth``: ``ColourKeySegmenter``, a perfect detector whose object ids are shuffled per
  clip, so the score measures the cross-clip linker alone;
- ``motion``: the project's motion backend as it is (its misses and merges count);
- ``motion_v2``: the motion backend and linker before issue 20 (``benchmarks.motion_v2``,
  its masks relinked with ``TrackLinkerV2``), measured in the same run.

Each is scored with the project's clip planning (consecutive clips share a frame: ``overlap``),
with windows one ``frame_step`` apart (``gap``: the linker's box-prediction path only), and
with per-clip ids instead of track ids (``per_clip_ids``: what the tables had before
``track_id``). ``still_*`` say how much of the animal that stands still was found and under how
many track ids. ``link_ms_per_clip`` is the linker's own time per clip.

The last line printed is ``key=value`` pairs for machines.
"""

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.motion_v2 import MotionSegmenterV2, TrackLinkerV2
from vitcow_assets.core.clips import ClipSettings, ClipWindow, plan_clips
from vitcow_assets.core.geometry import box_iou
from vitcow_assets.core.identity import ClipObservations, TrackLinker
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets.core.prompts import text_plan
from vitcow_assets.stages.segmentation import MaskJob, segment_clips
from vitcow_testbed import synthetic_tracks as st
from vitcow_testbed.idscore import identity_scores
from vitcow_testbed.trackscore import relink


def _opener(segmenter):
    @contextlib.contextmanager
    def open_session(frames):
        with segmenter.start_session(frames) as session:
            yield session

    return open_session


def plans(frames: int = st.FRAMES, frames_per_clip: int = st.FRAMES_PER_CLIP, frame_step: int = st.FRAME_STEP) -> dict[str, list[ClipWindow]]:
    """The project's planning (clips share a frame) and windows one ``frame_step`` apart."""
    overlap = plan_clips(frames, st.FPS, ClipSettings(frames_per_clip=frames_per_clip, frame_step=frame_step))
    span = frames_per_clip * frame_step
    gap = [ClipWindow(i, i * span, frame_step, frames_per_clip) for i in range(frames // span)]
    return {"overlap": overlap, "gap": gap}


def walkers(work: Path, seeds: int, results: dict) -> None:
    """Eight random walkers (3 px/frame, new direction every 6 frames), clips of 10 frames
    every 4th frame: many meetings, some on clip boundaries. Perfect detections; mean IDF1
    over ``seeds`` videos with each planning."""
    frames, per_clip, step = 220, 10, 4
    scores: dict[str, list[float]] = {"overlap": [], "gap": []}
    for seed in range(seeds):
        animals = st.random_walkers(8, frames, seed=seed)
        video = st.write_tracks_video(work / f"walkers-{seed}.mp4", frames, animals)
        for plan_name, clips in plans(frames, per_clip, step).items():
            segmenter = st.ColourKeySegmenter(animals, seed=seed)
            masks = work / f"masks-walkers-{seed}-{plan_name}.parquet"
            segment_clips(MaskJob(video, "walkers", clips, text_plan("animal"), segmenter.name, _opener(segmenter), masks))
            rows = pq.read_table(masks).drop(["mask_rle"]).to_pylist()
            gt = st.ground_truth_rows(sorted({f for c in clips for f in c.source_frames}), animals)
            scores[plan_name].append(identity_scores(gt, rows)["IDF1"])
    for plan_name, values in scores.items():
        results[f"idf1_walkers_truth_{plan_name}"] = round(sum(values) / len(values), 4)
        results[f"idf1_walkers_truth_{plan_name}_min"] = round(min(values), 4)
        print(f"walkers truth {plan_name:8s} {seeds} videos: IDF1 mean {sum(values) / len(values):.3f}, "
              f"min {min(values):.3f}", flush=True)


def still_animal(gt: list[dict], rows: list[dict]) -> tuple[float, int]:
    """Fraction of the still animal's frames found (box IoU >= 0.5) and its distinct track ids."""
    truth = [g for g in gt if g["track_id"] == st.STILL_ANIMAL]
    found, tracks = 0, set()
    for g in truth:
        frame_rows = [r for r in rows if r["source_frame"] == g["source_frame"]]
        if not frame_rows:
            continue
        iou = box_iou([[g["x1"], g["y1"], g["x2"], g["y2"]]], [[r["x1"], r["y1"], r["x2"], r["y2"]] for r in frame_rows])[0]
        best = int(iou.argmax())
        if iou[best] >= 0.5:
            found += 1
            tracks.add(frame_rows[best]["track_id"])
    return found / max(len(truth), 1), len(tracks)


def link_time_ms(masks_path: Path, clips: list[ClipWindow]) -> float:
    """Mean time of ``TrackLinker.link`` per clip, on the masks already written."""
    table = pq.read_table(masks_path)
    per_clip = [table.filter(pc.equal(table["clip_id"], clip.clip_id)) for clip in clips]
    linker = TrackLinker()
    start = time.perf_counter()
    for clip, rows in zip(clips, per_clip):
        linker.link(clip, ClipObservations.from_table(rows))
    return (time.perf_counter() - start) * 1000 / max(len(clips), 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", type=Path, help="write the footage and masks tables here instead of a temporary folder")
    p.add_argument("--seeds", type=int, default=5, help="random-walker videos to score (default: %(default)s; 0 skips them)")
    args = p.parse_args(argv)
    results: dict[str, float | int] = {}
    with tempfile.TemporaryDirectory(prefix="vitcow-identity-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        video = st.write_tracks_video(work / "tracks.mp4")
        results["true_animals"] = len(st.ANIMALS)
        detectors = (("truth", st.ColourKeySegmenter, None), ("motion", MotionSegmenter, None), ("motion_v2", MotionSegmenterV2, TrackLinkerV2))
        for detector, make, linker in detectors:
            for plan_name, clips in plans().items():
                segmenter = make()
                masks = work / f"masks-{detector}-{plan_name}.parquet"
                summary = segment_clips(MaskJob(video, "synthetic", clips, text_plan("animal"), segmenter.name, _opener(segmenter), masks))
                table = pq.read_table(masks) if linker is None else relink(pq.read_table(masks), clips[: summary.clips], linker())
                rows = table.drop(["mask_rle"]).to_pylist()
                if linker is not None:
                    summary.tracks = len({r["track_id"] for r in rows})
                gt = st.ground_truth_rows(sorted({f for c in clips for f in c.source_frames}))
                scores = identity_scores(gt, rows)
                per_clip = [{**r, "track_id": (r["clip_id"], r["object_id"])} for r in rows]
                key = f"{detector}_{plan_name}"
                results[f"idf1_{key}"] = round(scores["IDF1"], 4)
                results[f"tracks_{key}"] = summary.tracks
                results[f"idf1_{key}_per_clip_ids"] = round(identity_scores(gt, per_clip)["IDF1"], 4)
                recall, tracks = still_animal(gt, rows)
                results[f"still_recall_{key}"] = round(recall, 3)
                results[f"still_tracks_{key}"] = tracks
                print(f"{detector:7s} {plan_name:8s} clips {len(clips)}  IDF1 {scores['IDF1']:.3f} (IDP {scores['IDP']:.3f}, "
                      f"IDR {scores['IDR']:.3f})  per-clip ids {results[f'idf1_{key}_per_clip_ids']:.3f}  "
                      f"tracks {summary.tracks} (true {len(st.ANIMALS)})  still animal: found {recall:.0%} under {tracks} id(s)",
                      flush=True)
                if (detector, plan_name) == ("truth", "overlap"):
                    results["link_ms_per_clip"] = round(link_time_ms(masks, clips), 3)
        if args.seeds > 0:
            walkers(work, args.seeds, results)
    print(" ".join(f"{k}={v}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
