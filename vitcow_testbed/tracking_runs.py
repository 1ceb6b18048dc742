"""A segmenter run over a video's clips as the ``object_masks`` asset runs it, and its tracking
figures (``trackscore``): what ``benchmarks.tracking`` prints per backend and what the
motion backend's tests hold to their targets.

``segment_and_link`` runs ``segment_clips`` (one decode pass, one segmenter session per clip,
masks written as Parquet, linked across clips by the package's linker) with the segmenter
``make_segmenter()`` gives, then, where ``make_linker`` is given, recomputes the track ids
with that linker instead (a baseline scored with the linker of its own time). ``figures``
adds the counts, the ground-truth figures where a truth is given, and the speed.
``crop_rows`` says which crop (part) the crop stage puts each mask row in.
"""

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.prompts import text_plan
from vitcow_assets.stages.cropping import CropSettings, measure_scene_speed, object_plans
from vitcow_assets.stages.segmentation import MaskJob, segment_clips
from vitcow_testbed.trackscore import count_figures, part_figures, relink, truth_figures

#: the text prompt of every run (the motion backend ignores it; the tables record it)
PROMPT = "animal"


def segment_and_link(
    make_segmenter: Callable, make_linker: Callable | None, footage: Path, clips: Sequence[ClipWindow], out: Path
) -> tuple[list[dict], float, list[ClipWindow]]:
    """The masks rows (without masks) of ``clips`` of ``footage``, the wall seconds of
    ``segment_clips`` and the clips it segmented; the masks table is written to ``out``."""
    segmenter = make_segmenter()

    @contextlib.contextmanager
    def open_session(frames):
        with segmenter.start_session(frames) as session:
            yield session

    start = time.perf_counter()
    summary = segment_clips(MaskJob(footage, "bench", list(clips), text_plan(PROMPT), segmenter.name, open_session, out))
    wall = time.perf_counter() - start
    done = list(clips[: summary.clips])
    table = pq.read_table(out)
    if make_linker is not None:
        table = relink(table, done, make_linker())
    return table.drop(["mask_rle"]).to_pylist(), wall, done


def figures(
    make_segmenter: Callable, make_linker: Callable | None, footage: Path, clips: Sequence[ClipWindow], duration_s: float,
    animals: int, out: Path, truth: Sequence[Mapping] | None = None,
) -> dict:
    """``trackscore.count_figures`` (and, with ``truth`` rows, ``truth_figures`` and the
    ``part_figures`` of the crops the crop stage would cut) of one run, plus ``fps`` (sampled frames per wall second) and ``x_realtime`` (``duration_s`` of source
    video per wall second)."""
    rows, wall, done = segment_and_link(make_segmenter, make_linker, footage, clips, out)
    result = count_figures(rows, done, animals)
    if truth is not None:
        result.update(truth_figures(rows, truth))
        result.update(part_figures(crop_rows(out, done), truth))
    result["fps"] = sum(c.frames for c in done) / wall
    result["x_realtime"] = duration_s / wall
    return result


def crop_rows(masks_path: Path, clips: Sequence[ClipWindow], settings: CropSettings = CropSettings()) -> list[dict]:
    """The rows of a masks table (without masks), each with the ``part`` of its object that
    the crop stage shows it in: objects cut where their box jumps further than the scene's
    measured speed allows (``stages.cropping.object_plans``, the scene's speed measured from
    the same table as ``write_crops`` measures it)."""
    reach = measure_scene_speed(masks_path).line_reach()
    table = pq.read_table(masks_path).drop(["mask_rle"])
    out = []
    for clip in clips:
        rows = table.filter(pc.equal(table["clip_id"], clip.clip_id))
        plans = object_plans(clip, rows, settings, reach)
        for row in rows.to_pylist():
            part = next(p.part for p in plans[row["object_id"]] if p.present[row["clip_frame"]])
            out.append({**row, "part": part})
    return out
