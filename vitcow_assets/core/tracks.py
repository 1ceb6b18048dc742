"""Id bookkeeping within one clip: which detection of a frame continues which object, the
offline repairs over a whole clip, and the moves that feed the scene's speed model, which
gates both (``core.speeds``: a detection further from a track's last box than the scene's
``Reach`` for the frames elapsed, measured by ``core.geometry.least_shift``, can never
continue it).

Object ids are stable within a clip only: the same id in two clips says nothing about the
animal being the same. Pure: numpy and scipy only.

- ``TrackedFrame``: one frame's detections with their track ids, what the offline passes
  below take per frame.
- ``IoUTracker``: online association, frame by frame.
- ``stitch_tracklets``: joins the pieces of one track that online association cut apart.
- ``cut_jumps``: gives a new id from the frame where a track jumps further than the gate
  allows (a crop must follow one animal: a jump no animal can make is a new object).
- ``absorb_fragments``: gives a track that lasts a moment and only ever shares a blob with
  one other track (a cut through one animal) to that track.
- ``clean_steps``: the displacements that feed the speed model.

Why association is written here rather than taken from a tracking library (checked for
issue 8 with Roboflow's ``trackers`` 2.6.1; ``supervision`` 0.27+ no longer ships
ByteTrack): ``trackers`` requires ``opencv-python``, the GUI build, which installs a second
``cv2`` over the project's ``opencv-python-headless``; and on the same motion detections of
the 8-fish footage its ByteTrack and OC-SORT (IoU or DIoU, even followed by
``stitch_tracklets``) gave 12.5-16 ids per 20-frame clip and a median track of 0.5-0.78 of
the clip, against 10 and 0.95 here: thin animals sampled every 4th frame rarely overlap
their own box from one frame to the next, which IoU-first association needs. The motion
segmenter also splits touching animals using this tracker's predicted positions
(``live``), which the library does not expose per track.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from vitcow_assets.core.geometry import box_centres, box_diagonals, least_shift, box_iou
from vitcow_assets.core.speeds import LAGS, Reach

_NO = 1e6  # cost of a forbidden pair
_HINT_BONUS = 2.0  # a detection cut out of a blob for a track goes to that track first


@dataclasses.dataclass(frozen=True)
class TrackedFrame:
    """One clip frame's detections with their track ids, as the offline passes take them:
    ``ids`` ``int64 (N,)`` and ``xyxy`` ``float32 (N, 4)`` pixel boxes, row for row (a track
    may have several rows in one frame: pieces of one animal)."""

    ids: np.ndarray
    xyxy: np.ndarray

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, np.int64).reshape(-1)
        xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        if len(ids) != len(xyxy):
            raise ValueError(f"{len(ids)} ids for {len(xyxy)} boxes")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "xyxy", xyxy)

    def relabelled(self, ids) -> "TrackedFrame":
        """The same boxes under other ids (``(N,)``)."""
        return TrackedFrame(ids, self.xyxy)


def _median_area(areas: list[float]) -> float:
    return float(np.median(areas)) if areas else 0.0


class IoUTracker:
    """Gives detections ids that persist across the frames of one clip.

    Each live track predicts its box by constant velocity. Detections are matched to tracks
    by Hungarian assignment on ``(1 - IoU) + centre shift`` (shift in units of the larger box
    diagonal), plus ``area_weight × |log(area ratio)|`` when areas are given (an animal keeps
    its size); a pair is allowed when IoU >= ``min_iou`` or the shift <= ``max_shift``, and,
    with ``reach`` (``core.speeds.Reach``: the scene's speed gate), only when the detection's box lies within
    ``reach(frames elapsed)`` pixels of the track's last box (``least_shift``). A detection
    hinted to a track (a part cut out of a blob for that track) goes to it when allowed; for
    that track the speed gate measures the piece by its blob's box (``regions``): where a cut
    falls inside a blob moves with the cut, not with the animal.
    With ``far_shift`` set, tracks seen in the previous frame and detections left unmatched
    are then paired by centre shift alone, up to ``far_shift`` (same units), where the pair
    is unambiguous (each the other's only candidate within reach, areas within a factor 2):
    an animal that darts further than usual between two sampled frames keeps its id.
    Unmatched detections start new tracks; a track unmatched for more than ``max_missed``
    frames is retired. Ids count from 0 in order of first appearance.

    The velocity is the mean over the last ``velocity_frames`` observations: boxes cut from
    a blob of animals that touch have uncertain edges, and one badly cut frame must not turn
    a track around (two animals that cross would swap ids when they part).
    ``motion_state`` and ``inherit_motion`` carry that motion (and the areas) from one clip's
    tracker to the next one's when the clips share a frame.
    """

    def __init__(
        self, min_iou: float = 0.1, max_shift: float = 0.75, max_missed: int = 2, far_shift: float | None = None,
        velocity_frames: int = 3, reach: Reach | None = None, area_weight: float = 0.0,
    ) -> None:
        if velocity_frames < 2:
            raise ValueError(f"velocity_frames must be >= 2, got {velocity_frames}")
        self.min_iou, self.max_shift, self.max_missed, self.far_shift = min_iou, max_shift, max_missed, far_shift
        self.velocity_frames, self.reach, self.area_weight = velocity_frames, reach, area_weight
        self._frame = 0
        #: per track id, its last observations ``(frame, box)`` and areas
        self._history: dict[int, list[tuple[int, np.ndarray]]] = {}
        self._areas: dict[int, list[float]] = {}
        self._boxes = np.zeros((0, 4), np.float32)
        self._velocity = np.zeros((0, 4), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._missed = np.zeros(0, np.int64)
        self._next_id = 0

    def predicted(self) -> np.ndarray:
        """``float32 (M, 4)``: where the live tracks are expected in the next frame."""
        return self._boxes + self._velocity * (1 + self._missed[:, None])

    def live(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The live tracks: ids ``(M,)``, velocities ``(M, 4)`` (box change per frame),
        predicted boxes ``(M, 4)``, median recent areas ``(M,)`` (0 where unknown) and frames
        missed since last seen ``(M,)``."""
        areas = np.array([_median_area(self._areas.get(int(i), [])) for i in self._ids], np.float64)
        return self._ids.copy(), self._velocity.copy(), self.predicted(), areas, self._missed.copy()

    def motion_state(self) -> list[tuple[np.ndarray, list[tuple[int, np.ndarray]], list[float]]]:
        """The tracks seen in the last frame: ``(box, history, areas)``, the history's frames
        counted back from that frame (0 is the last frame, -1 the one before, ...)."""
        last = self._frame - 1
        return [
            (self._boxes[r].copy(), [(f - last, b.copy()) for f, b in self._history.get(int(i), [])], list(self._areas.get(int(i), [])))
            for r, i in enumerate(self._ids.tolist())
            if self._missed[r] == 0
        ]

    def inherit_motion(self, previous: list, min_iou: float = 0.5) -> int:
        """Give the tracks of the frame just assigned the motion history of ``previous``
        (``motion_state`` of a tracker whose last frame was this very image: consecutive
        clips share a frame), pairing boxes by IoU (at least ``min_iou``, Hungarian). Ids are
        left as they are. Returns the number of tracks that inherited."""
        seen = np.nonzero(self._missed == 0)[0]
        if not len(previous) or not len(seen):
            return 0
        iou = box_iou(np.stack([p[0] for p in previous]), self._boxes[seen])
        rows, cols = linear_sum_assignment(-iou)
        now = self._frame - 1
        inherited = 0
        for r, c in zip(rows, cols):
            if iou[r, c] < min_iou:
                continue
            k, track = seen[c], int(self._ids[seen[c]])
            history = [(now + f, b) for f, b in previous[r][1] if f < 0]
            self._history[track] = (history + self._history.get(track, []))[-self.velocity_frames :]
            if len(previous[r]) > 2:
                self._areas[track] = (list(previous[r][2]) + self._areas.get(track, []))[-5:]
            self._set_velocity(k, track)
            inherited += 1
        return inherited

    def _set_velocity(self, row: int, track: int) -> None:
        history = self._history.get(track, [])
        if len(history) >= 2:
            (f0, b0), (f1, b1) = history[0], history[-1]
            self._velocity[row] = (b1 - b0) / (f1 - f0)

    def _cost(self, xyxy: np.ndarray, areas: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cost, allowed, shift)`` of every (live track, detection) pair."""
        predicted = self.predicted()
        iou = box_iou(predicted, xyxy)
        shift = np.linalg.norm(box_centres(predicted)[:, None] - box_centres(xyxy)[None], axis=2)
        scale = np.maximum(box_diagonals(predicted)[:, None], box_diagonals(xyxy)[None, :])
        shift = shift / np.maximum(scale, 1.0)
        allowed = (iou >= self.min_iou) | (shift <= self.max_shift)
        allowed &= self.reachable(xyxy)
        cost = (1.0 - iou) + shift
        if areas is not None and self.area_weight > 0:
            known = np.array([_median_area(self._areas.get(int(i), [])) for i in self._ids])
            ratio = np.abs(np.log(np.maximum(areas[None, :], 1.0) / np.maximum(known[:, None], 1.0)))
            cost = cost + self.area_weight * np.where(known[:, None] > 0, np.minimum(ratio, 2.0), 0.0)
        return np.where(allowed, cost, _NO), allowed, shift

    def reachable(self, xyxy: np.ndarray) -> np.ndarray:
        """``bool (M, N)``: which detections each live track could have reached under the
        speed gate (all, without ``reach``)."""
        xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        if self.reach is None:
            return np.ones((len(self._ids), len(xyxy)), bool)
        return least_shift(self._boxes[:, None, :], xyxy[None, :, :]) <= self.reach(1 + self._missed)[:, None]

    def _far_pairs(self, xyxy: np.ndarray, shift: np.ndarray, pairs: list, reach_ok: np.ndarray) -> list[tuple[int, int]]:
        """Unambiguous pairs of tracks seen last frame and boxes of a like size left
        unmatched: each the other's only candidate within ``far_shift``."""
        free_r = np.setdiff1d(np.arange(len(self._ids)), [r for r, _ in pairs])
        free_c = np.setdiff1d(np.arange(len(xyxy)), [c for _, c in pairs])
        if not (len(free_r) and len(free_c)):
            return []
        far = shift[np.ix_(free_r, free_c)]
        area = lambda b: np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1.0)
        ratio = area(self._boxes[free_r])[:, None] / area(xyxy[free_c])[None, :]
        reach = (far <= self.far_shift) & (ratio > 0.5) & (ratio < 2.0) & (self._missed[free_r] == 0)[:, None]
        reach &= reach_ok[np.ix_(free_r, free_c)]
        unique = reach & (reach.sum(axis=0, keepdims=True) == 1) & (reach.sum(axis=1, keepdims=True) == 1)
        return [(free_r[r], free_c[c]) for r, c in zip(*np.nonzero(unique))]

    def _hinted(self, hints: np.ndarray | None) -> list[tuple[int, int]]:
        """``(row, detection)`` of each detection hinted to a live track."""
        if hints is None:
            return []
        row_of = {int(i): r for r, i in enumerate(self._ids.tolist())}
        return [(row_of[h], c) for c, h in enumerate(np.asarray(hints).tolist()) if h in row_of]

    def _pairs(self, xyxy: np.ndarray, areas: np.ndarray | None, hints: np.ndarray | None, regions: np.ndarray) -> list[tuple[int, int]]:
        cost, allowed, shift = self._cost(xyxy, areas)
        hinted = self._hinted(hints)
        if hinted:
            # a piece cut for a track: the gate measures it by its blob (where the cut falls
            # inside the blob moves with the cut, not with the animal)
            blob_ok = self.reachable(regions)
            for r, c in hinted:
                allowed[r, c] |= blob_ok[r, c]
                if allowed[r, c]:
                    cost[r, c] = min(cost[r, c], 2.0) - _HINT_BONUS
        pairs = [(r, c) for r, c in zip(*linear_sum_assignment(cost)) if allowed[r, c]]
        if self.far_shift is not None:
            pairs += self._far_pairs(xyxy, shift, pairs, self.reachable(xyxy))
        return pairs

    def _observe(self, row: int, box: np.ndarray, area: float | None, merged: bool = False) -> None:
        track = int(self._ids[row])
        if merged:
            # a blob of several animals: where this one is inside it is unknown, so the track
            # goes on as predicted (it is seen, not lost) and its motion stays its own
            self._boxes[row] = self._boxes[row] + self._velocity[row] * (1 + self._missed[row])
            return
        history = self._history.setdefault(track, [])
        history.append((self._frame, box.copy()))
        del history[: -self.velocity_frames]
        if len(history) >= 2:
            self._set_velocity(row, track)
        else:
            self._velocity[row] = (box - self._boxes[row]) / (1 + self._missed[row])
        self._boxes[row] = box
        if area is not None and area > 0:
            self._areas.setdefault(track, []).append(float(area))
            del self._areas[track][:-5]

    def _retire_and_start(self, ids: np.ndarray, matched: np.ndarray, xyxy: np.ndarray, areas: np.ndarray | None) -> None:
        self._missed = np.where(matched, 0, self._missed + 1)
        alive = self._missed <= self.max_missed
        for gone in self._ids[~alive].tolist():
            self._history.pop(gone, None)
            self._areas.pop(gone, None)
        self._boxes, self._velocity = self._boxes[alive], self._velocity[alive]
        self._ids, self._missed = self._ids[alive], self._missed[alive]
        new = np.flatnonzero(ids < 0)
        if not len(new):
            return
        ids[new] = np.arange(self._next_id, self._next_id + len(new))
        self._next_id += len(new)
        self._boxes = np.concatenate([self._boxes, xyxy[new]])
        self._velocity = np.concatenate([self._velocity, np.zeros((len(new), 4), np.float32)])
        self._ids = np.concatenate([self._ids, ids[new]])
        self._missed = np.concatenate([self._missed, np.zeros(len(new), np.int64)])
        for c in new.tolist():
            self._history[int(ids[c])] = [(self._frame - 1, xyxy[c].copy())]
            if areas is not None and areas[c] > 0:
                self._areas[int(ids[c])] = [float(areas[c])]

    def assign(
        self, xyxy: np.ndarray, areas: np.ndarray | None = None, hints: np.ndarray | None = None, merged: np.ndarray | None = None,
        regions: np.ndarray | None = None,
    ) -> np.ndarray:
        """Ids (``int64 (N,)``) for this frame's ``(N, 4)`` boxes; ``areas (N,)``: their mask
        areas (optional, 0 where not to learn from); ``hints (N,)``: a track id each detection
        was cut out for, or -1; ``merged (N,)``: detections known to hold several animals (the
        track that takes one keeps its own predicted box and motion); ``regions (N, 4)``: a box
        each detection's animal lies in for certain (the blob a piece was cut out of: where
        the cut falls is uncertain), which the speed gate measures (default ``xyxy``)."""
        xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        areas = None if areas is None else np.asarray(areas, np.float64).reshape(-1)
        ids = np.full(len(xyxy), -1, dtype=np.int64)
        matched = np.zeros(len(self._ids), dtype=bool)
        if len(xyxy) and len(self._ids):
            regions = xyxy if regions is None else np.asarray(regions, np.float32).reshape(-1, 4)
            for r, c in self._pairs(xyxy, areas, hints, regions):
                ids[c] = self._ids[r]
                matched[r] = True
                self._observe(r, xyxy[c], None if areas is None else areas[c], merged is not None and bool(merged[c]))
        self._frame += 1
        self._retire_and_start(ids, matched, xyxy, areas)
        return ids


def _spans(frames: Sequence[TrackedFrame]) -> dict[int, dict[int, np.ndarray]]:
    """``id -> {frame: box}`` (the union box where an id has several boxes in one frame)."""
    spans: dict[int, dict[int, np.ndarray]] = {}
    for frame, tracked in enumerate(frames):
        for i, box in zip(tracked.ids.tolist(), tracked.xyxy):
            own = spans.setdefault(int(i), {})
            old = own.get(frame)
            own[frame] = box.copy() if old is None else np.concatenate([np.minimum(old[:2], box[:2]), np.maximum(old[2:], box[2:])])
    return spans


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    """Centre distance of two boxes in units of the larger diagonal."""
    scale = max(float(box_diagonals(a)), float(box_diagonals(b)), 1.0)
    return float(np.hypot(*(box_centres(a) - box_centres(b)))) / scale


def _stitch_cost(a: dict[int, np.ndarray], b: dict[int, np.ndarray], gap: int, reach: Reach | None) -> float | None:
    """How well tracklet ``b`` continues ``a`` (``gap`` frames between them; negative: they
    overlap), or None when the speed gate forbids it."""
    last_a, first_b = max(a), min(b)
    if gap >= 0:
        end = a[last_a]
        before = a.get(last_a - 1)
        velocity = (end - before) if before is not None else np.zeros(4, np.float32)
        if reach is not None and float(least_shift(end, b[first_b])) > float(reach(gap + 1)):
            return None
        return _shift(end + velocity * (gap + 1), b[first_b])
    common = [f for f in range(first_b, last_a + 1) if f in a and f in b]
    pairs = [(a[f], b[f]) for f in common] or [(a[last_a], b[first_b])]
    return max(_shift(x, y) for x, y in pairs)


def stitch_tracklets(
    frames: Sequence[TrackedFrame], max_gap: int = 3, max_overlap: int = 2, max_shift: float = 1.0,
    gap_shift: float | None = None, reach: Reach | None = None,
) -> dict[int, int]:
    """Join the pieces of one animal's track that online association left apart.

    ``frames``: one ``TrackedFrame`` per frame of a clip. A tracklet B continues tracklet A
    when B starts after A starts and ends after A ends, and either starts at most
    ``max_gap`` frames after A's end, where A's box carried on at its last velocity lies
    within ``gap_shift`` (default ``max_shift``) box diagonals of B's first box (and, with
    ``reach``, B's first box lies within ``reach(gap + 1)`` pixels of A's last box:
    ``core.geometry.least_shift``), or overlaps A by at most ``max_overlap`` frames with
    boxes within ``max_shift`` diagonals in each of them (one animal cut in two for a moment).
    Pairs are taken cheapest first; each tracklet gets at most one successor and one
    predecessor. Returns ``id -> id of the chain's first tracklet`` for every id seen (ids
    in overlapping frames then repeat: merge them).
    """
    spans = _spans(frames)
    candidates = []
    for a, span_a in spans.items():
        for b, span_b in spans.items():
            if min(span_b) <= min(span_a) or max(span_b) <= max(span_a):
                continue
            gap = min(span_b) - max(span_a) - 1
            if gap > max_gap or -gap - 1 > max_overlap:
                continue
            cost = _stitch_cost(span_a, span_b, gap, reach)
            if cost is not None and cost <= (max_shift if gap < 0 or gap_shift is None else gap_shift):
                candidates.append((cost, a, b))
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _, a, b in sorted(candidates):
        if a not in successor and b not in predecessor:
            successor[a], predecessor[b] = b, a
    mapping = {}
    for i in spans:
        root = i
        while root in predecessor:
            root = predecessor[root]
        mapping[i] = root
    return mapping


def cut_jumps(
    frames: Sequence[TrackedFrame], reach: Reach | None, whole: Sequence[np.ndarray] | None = None
) -> list[np.ndarray]:
    """Per frame, the ids of ``frames`` (one ``TrackedFrame`` per frame) with each track cut where
    it jumps: where its box moves further between two views than ``reach`` allows for the
    frames elapsed (``core.geometry.least_shift``), the rest of the track has a new id (ids
    past the largest one, in order of the cuts), from the frame after the earlier view.
    ``whole`` (``bool (N,)`` per frame): the views to measure between (default all); a piece
    cut out of a blob, or a blob of several animals, has a box that moves with the cut, not
    with the animal. Without a gate (None) the ids are returned as they are."""
    out = [tracked.ids.copy() for tracked in frames]
    if reach is None:
        return out
    if whole is not None:
        frames = [tracked.relabelled(np.where(np.asarray(ok, bool), tracked.ids, -1)) for tracked, ok in zip(frames, whole)]
    spans = _spans(frames)
    spans.pop(-1, None)
    next_id = 1 + max((int(i.max()) for i in out if len(i)), default=-1)
    for track in sorted(spans):
        order = sorted(spans[track])
        cuts = [before + 1 for before, frame in zip(order, order[1:])
                if float(least_shift(spans[track][before], spans[track][frame])) > float(reach(frame - before))]
        for k, cut in enumerate(cuts):
            until = cuts[k + 1] if k + 1 < len(cuts) else len(out)
            for f in range(cut, until):
                out[f][out[f] == track] = next_id
            next_id += 1
    return out


def absorb_fragments(ids: list[np.ndarray], groups: list[np.ndarray], max_frames: int) -> list[np.ndarray]:
    """Per frame, ``ids`` (``int64 (N,)`` per frame) with each *fragment* given to the track it
    was cut from: a fragment is a track seen in at most ``max_frames`` frames that, in every
    one of them, shares its group (``groups``: ``int (N,)`` per frame, e.g. the blob each
    detection was cut out of) with detections of one other track, the same one throughout. An
    animal of a fixed camera does not appear for a moment inside another one: a piece that
    does not last was a cut through one animal, and its pixels belong to it. A fragment inside
    a blob of several tracks is left as it is (whose piece it is, is not known)."""
    frames_of: dict[int, list[int]] = {}
    for frame, own in enumerate(ids):
        for i in set(np.asarray(own).tolist()):
            frames_of.setdefault(int(i), []).append(frame)
    mapping: dict[int, int] = {}
    for track, frames in frames_of.items():
        if track < 0 or len(frames) > max_frames:
            continue
        partners = set()
        for frame in frames:
            own, group = np.asarray(ids[frame]), np.asarray(groups[frame])
            partners.add(frozenset(own[np.isin(group, group[own == track])].tolist()) - {track, -1})
        if len(partners) == 1 and len(only := next(iter(partners))) == 1:
            mapping[track] = next(iter(only))
    return [np.array([_final(mapping, i) for i in np.asarray(own).tolist()], np.int64) for own in ids]


def _final(mapping: dict[int, int], track: int) -> int:
    seen = set()
    while track in mapping and track not in seen:
        seen.add(track)
        track = mapping[track]
    return track


#: a displacement counts only between two views of a track whose areas differ less than this factor
SAME_SIZE = 1.3


def clean_steps(
    frames: Sequence[TrackedFrame], clean: Sequence[np.ndarray], areas: Sequence[np.ndarray] | None = None, lags: int = LAGS
) -> dict[int, np.ndarray]:
    """``{lag: displacements (pixels, float64)}``: how far each track of ``frames`` moved
    over ``lag`` frames (1 to ``lags``), between frames in which its detection is ``clean``
    (``bool (N,)`` per frame: one animal for certain, e.g. a blob that no split touched) and,
    with ``areas`` (per frame, ``(N,)``), of about the same size (within ``SAME_SIZE``: a
    blob that grew or shrank took in or lost something, and its box centre moved with it)."""
    seen: dict[int, list[tuple[int, np.ndarray, float]]] = {}
    for frame, (tracked, ok) in enumerate(zip(frames, clean)):
        boxes = tracked.xyxy.astype(np.float64)
        sizes = np.ones(len(boxes)) if areas is None else np.asarray(areas[frame], np.float64).reshape(-1)
        for i, box, good, size in zip(tracked.ids.tolist(), boxes, np.asarray(ok, bool).tolist(), sizes.tolist()):
            if good:
                seen.setdefault(int(i), []).append((frame, box_centres(box), max(size, 1e-9)))
    out: dict[int, list[float]] = {lag: [] for lag in range(1, lags + 1)}
    for views in seen.values():
        for k, (f0, c0, a0) in enumerate(views):
            for f1, c1, a1 in views[k + 1 :]:
                if f1 - f0 > lags:
                    break
                if max(a0, a1) < SAME_SIZE * min(a0, a1):
                    out[f1 - f0].append(float(np.hypot(*(c1 - c0))))
    return {lag: np.array(v, np.float64) for lag, v in out.items()}
