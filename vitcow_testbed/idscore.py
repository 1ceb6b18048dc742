"""Identity scores (IDF1, IDP, IDR) of predicted tracks against ground truth, with
TrackEval's ``Identity`` metric (Ristani et al. 2016, as the MOTChallenge uses it).

Rows are mappings with ``source_frame``, ``track_id`` and a box ``x1, y1, x2, y2`` (pixels):
the masks table's rows can be passed as they are. A predicted row matches a ground-truth row
of its frame when their box IoU is at least ``threshold`` (0.5, the MOTChallenge rule).
A source frame that two consecutive clips share appears twice in the masks table; it is
scored once, from the earlier clip (rows with a ``clip_id``).
"""

from collections.abc import Iterable, Mapping

import numpy as np

from vitcow_assets.core.geometry import box_iou


def _one_clip_per_frame(rows: list[Mapping]) -> list[Mapping]:
    if not rows or "clip_id" not in rows[0]:
        return rows
    first_clip: dict[int, str] = {}
    for row in rows:
        frame = row["source_frame"]
        if frame not in first_clip or row["clip_id"] < first_clip[frame]:
            first_clip[frame] = row["clip_id"]
    return [r for r in rows if r["clip_id"] == first_clip[r["source_frame"]]]


def _by_frame(rows: list[Mapping], ids: dict) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    grouped: dict[int, list[Mapping]] = {}
    for row in rows:
        grouped.setdefault(int(row["source_frame"]), []).append(row)
    return {
        frame: (
            np.array([ids.setdefault(r["track_id"], len(ids)) for r in group], np.int64),
            np.array([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in group], np.float64),
        )
        for frame, group in grouped.items()
    }


def identity_scores(gt_rows: Iterable[Mapping], pred_rows: Iterable[Mapping], threshold: float = 0.5) -> dict[str, float]:
    """``IDF1``, ``IDP``, ``IDR`` and the counts ``IDTP``, ``IDFN``, ``IDFP`` over all frames."""
    from trackeval.metrics import Identity

    gt_ids: dict = {}
    pred_ids: dict = {}
    gt = _by_frame(list(gt_rows), gt_ids)
    pred = _by_frame(_one_clip_per_frame(list(pred_rows)), pred_ids)
    frames = sorted(set(gt) | set(pred))
    empty = (np.zeros(0, np.int64), np.zeros((0, 4)))
    data = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for frame in frames:
        g_ids, g_boxes = gt.get(frame, empty)
        p_ids, p_boxes = pred.get(frame, empty)
        data["gt_ids"].append(g_ids)
        data["tracker_ids"].append(p_ids)
        data["similarity_scores"].append(box_iou(g_boxes, p_boxes))
    data.update(
        num_gt_ids=len(gt_ids),
        num_tracker_ids=len(pred_ids),
        num_gt_dets=sum(len(ids) for ids in data["gt_ids"]),
        num_tracker_dets=sum(len(ids) for ids in data["tracker_ids"]),
    )
    res = Identity({"THRESHOLD": threshold, "PRINT_CONFIG": False}).eval_sequence(data)
    return {k: float(v) for k, v in res.items()}


def idf1(gt_rows: Iterable[Mapping], pred_rows: Iterable[Mapping], threshold: float = 0.5) -> float:
    """IDF1 of ``pred_rows`` against ``gt_rows`` (see the module docstring)."""
    return identity_scores(gt_rows, pred_rows, threshold)["IDF1"]
