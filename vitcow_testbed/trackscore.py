"""Tracking figures of a masks table: ids per clip, tracks per video, recall, jumps, and, where
the ground truth is known, IDF1, matched recall and identity switches inside crops.

Rows are masks-table rows (``clip_id``, ``clip_frame``, ``source_frame``, ``object_id``,
``track_id``, ``x1..y2``; a ``part`` where the crop stage's cuts are given:
``tracking_runs.crop_rows``); ground-truth rows are ``source_frame``, ``track_id``, ``x1..y2``
(``vitcow_testbed.idscore``'s format). A source frame that two clips share is scored once, from
the earlier clip, wherever a figure is per frame; per-clip figures (ids, crops) use every row
of the clip. ``relink`` recomputes the track ids of a table with another linker, so a baseline
segmenter can be scored with the linker of its own time.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.optimize import linear_sum_assignment

from vitcow_testbed.idscore import identity_scores
from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.geometry import box_iou
from vitcow_assets.core.identity import ClipObservations
from vitcow_assets.core.tables import set_track_ids

#: the issue's measure of a crop that cannot be one animal: its box centre jumps this far
#: (pixels) between two consecutive frames where it is present
JUMP_PX = 100.0


def relink(table: pa.Table, clips: Sequence[ClipWindow], linker) -> pa.Table:
    """``table`` with ``track_id`` recomputed clip by clip (source order) by ``linker``
    (anything with ``link(clip, ClipObservations) -> {object_id: track_id}``)."""
    parts = []
    for clip in clips:
        rows = table.filter(pc.equal(table["clip_id"], clip.clip_id))
        parts.append(set_track_ids(rows, linker.link(clip, ClipObservations.from_table(rows))))
    return pa.concat_tables(parts) if parts else table


def _centre(row: Mapping) -> np.ndarray:
    return np.array([(row["x1"] + row["x2"]) / 2, (row["y1"] + row["y2"]) / 2], np.float64)


def _boxes(rows: Sequence[Mapping]) -> np.ndarray:
    return np.array([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in rows], np.float64).reshape(-1, 4)


def count_figures(rows: Sequence[Mapping], clips: Sequence[ClipWindow], animals: int) -> dict:
    """Figures that need only the number of animals present in every frame."""
    per_frame: dict[tuple[str, int], int] = {}
    per_object: dict[tuple[str, int], int] = {}
    for r in rows:
        per_frame[(r["clip_id"], r["clip_frame"])] = per_frame.get((r["clip_id"], r["clip_frame"]), 0) + 1
        per_object[(r["clip_id"], r["object_id"])] = per_object.get((r["clip_id"], r["object_id"]), 0) + 1
    counts = np.array([per_frame.get((c.clip_id, f), 0) for c in clips for f in range(c.frames)], float)
    frames_of = {c.clip_id: c.frames for c in clips}
    fractions = np.array([n / frames_of[clip_id] for (clip_id, _), n in per_object.items()], float)
    ids = np.array([sum(1 for (cid, _) in per_object if cid == c.clip_id) for c in clips], float)
    return {
        "detections_per_frame": float(np.median(counts)) if len(counts) else 0.0,
        "recall": float(np.mean(np.minimum(counts, animals) / animals)) if len(counts) else 0.0,
        "track_length_frac": float(np.median(fractions)) if len(fractions) else 0.0,
        "ids_per_clip": float(np.median(ids)) if len(ids) else 0.0,
        "max_ids_per_clip": int(ids.max()) if len(ids) else 0,
        "tracks_per_video": len({r["track_id"] for r in rows}),
        "short_tracks": int((fractions < 0.5).sum()),
        "jumps_over_100px": crop_jumps(rows),
    }


def crop_jumps(rows: Sequence[Mapping], jump_px: float = JUMP_PX) -> int:
    """Crops (clip, object, and part where rows have a ``part``: ``tracking_runs.crop_rows``)
    whose box centre moves more than ``jump_px`` between two consecutive clip frames where the
    object is present."""
    by_crop: dict[tuple[str, int, int], list[tuple[int, float, float]]] = {}
    for r in rows:
        centre = ((r["x1"] + r["x2"]) / 2, (r["y1"] + r["y2"]) / 2)
        by_crop.setdefault((r["clip_id"], r["object_id"], r.get("part", 0)), []).append((r["clip_frame"], *centre))
    jumps = 0
    for points in by_crop.values():
        points.sort()
        xy = np.array([p[1:] for p in points])
        if len(xy) > 1 and np.hypot(*np.diff(xy, axis=0).T).max() > jump_px:
            jumps += 1
    return jumps


def jumps_between_animals(rows: Sequence[Mapping], gt: Sequence[Mapping], jump_px: float = JUMP_PX) -> int:
    """Crops (as ``crop_jumps`` groups them) whose box centre moves more than ``jump_px``
    between two consecutive present frames matched (box IoU >= 0.5) to two different true
    animals: a jump no animal made. A long move of one animal (a fast one, unseen for a few
    frames) does not count."""
    animal_of = _matches(rows, gt)
    by_crop: dict[tuple[str, int, int], list[tuple[int, int]]] = {}
    for i, r in enumerate(rows):
        by_crop.setdefault((r["clip_id"], r["object_id"], r.get("part", 0)), []).append((r["clip_frame"], i))
    jumps = 0
    for views in by_crop.values():
        views.sort()
        for (_, a), (_, b) in zip(views, views[1:]):
            moved = np.hypot(*(_centre(rows[b]) - _centre(rows[a])))
            if moved > jump_px and a in animal_of and b in animal_of and animal_of[a] != animal_of[b]:
                jumps += 1
                break
    return jumps


def _first_clip_rows(rows: Sequence[Mapping]) -> list[Mapping]:
    first: dict[int, str] = {}
    for r in rows:
        if r["source_frame"] not in first or r["clip_id"] < first[r["source_frame"]]:
            first[r["source_frame"]] = r["clip_id"]
    return [r for r in rows if r["clip_id"] == first[r["source_frame"]]]


def _matches(rows: Sequence[Mapping], gt: Sequence[Mapping], threshold: float = 0.5) -> dict[int, int]:
    """Row index -> true animal, by per-frame Hungarian matching on box IoU (>= threshold)."""
    gt_by_frame: dict[int, list[Mapping]] = {}
    for g in gt:
        gt_by_frame.setdefault(g["source_frame"], []).append(g)
    by_frame: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(rows):
        by_frame.setdefault((r["clip_id"], r["source_frame"]), []).append(i)
    out = {}
    for (_, frame), index in by_frame.items():
        truth = gt_by_frame.get(frame, [])
        if not truth:
            continue
        iou = box_iou(_boxes([rows[i] for i in index]), _boxes(truth))
        for r, c in zip(*linear_sum_assignment(-iou)):
            if iou[r, c] >= threshold:
                out[index[r]] = truth[c]["track_id"]
    return out


def truth_figures(rows: Sequence[Mapping], gt: Sequence[Mapping]) -> dict:
    """Figures against ground truth: ``idf1``, ``matched_recall`` (true boxes matched at box
    IoU >= 0.5, each frame once) and ``crop_switches`` (crops that follow more than one animal)."""
    once = _first_clip_rows(rows)
    matched_once = _matches(once, gt)
    matches = _matches(rows, gt)
    followed: dict[tuple[str, int], set[int]] = {}
    for i, r in enumerate(rows):
        if i in matches:
            followed.setdefault((r["clip_id"], r["object_id"]), set()).add(matches[i])
    return {
        "idf1": identity_scores(gt, rows)["IDF1"],
        "matched_recall": len(matched_once) / max(len(gt), 1),
        "crop_switches": sum(1 for animals in followed.values() if len(animals) > 1),
    }


def part_figures(rows: Sequence[Mapping], gt: Sequence[Mapping]) -> dict:
    """Figures of the crops the crop stage cuts (rows with a ``part``:
    ``tracking_runs.crop_rows``) against ground truth: ``crop_parts`` (crop videos),
    ``part_switches`` (crops that still follow more than one animal), ``cuts_between_animals``
    (cuts where the animal before and after differ: a switch taken out) and
    ``cuts_within_animal`` (cuts where it is the same animal on both sides: one animal's crop
    cut in two for nothing); a cut with an unmatched side counts in neither."""
    matches = _matches(rows, gt)
    views: dict[tuple[str, int], dict[int, list[tuple[int, int | None]]]] = {}
    for i, r in enumerate(rows):
        views.setdefault((r["clip_id"], r["object_id"]), {}).setdefault(r["part"], []).append((r["clip_frame"], matches.get(i)))
    parts = switches = between = within = 0
    for by_part in views.values():
        parts += len(by_part)
        switches += sum(1 for seen in by_part.values() if len({a for _, a in seen if a is not None}) > 1)
        ordered = [sorted(by_part[p]) for p in sorted(by_part)]
        for before, after in zip(ordered, ordered[1:]):
            last = next((a for _, a in reversed(before) if a is not None), None)
            first = next((a for _, a in after if a is not None), None)
            if last is not None and first is not None:
                between += last != first
                within += last == first
    return {"crop_parts": parts, "part_switches": switches, "cuts_between_animals": between, "cuts_within_animal": within}
