"""Id bookkeeping within one clip: which detection of a frame continues which object.

Object ids are stable within a clip only: the same id in two clips says nothing about the
animal being the same. Pure: numpy and scipy only.

Why association is written here rather than taken from a tracking library (checked for
issue 8 with Roboflow's ``trackers`` 2.6.1; ``supervision`` 0.27+ no longer ships
ByteTrack): ``trackers`` requires ``opencv-python``, the GUI build, which installs a second
``cv2`` over the project's ``opencv-python-headless``; and on the same motion detections of
the 8-fish footage its ByteTrack and OC-SORT (IoU or DIoU, even followed by
``stitch_tracklets``) gave 12.5-16 ids per 20-frame clip and a median track of 0.5-0.78 of
the clip, against 10 and 0.95 here: thin animals sampled every 4th frame rarely overlap
their own box from one frame to the next, which IoU-first association needs. The motion
segmenter also splits touching animals using this tracker's predicted positions
(``predicted``), which the library does not expose per track.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from vitcow_assets.core.geometry import box_iou


def _centres(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2.0


def _diagonals(xyxy: np.ndarray) -> np.ndarray:
    return np.hypot(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])


class IoUTracker:
    """Gives detections ids that persist across the frames of one clip.

    Each live track predicts its box by constant velocity. Detections are matched to tracks
    by Hungarian assignment on ``(1 - IoU) + centre shift`` (shift in units of the larger box
    diagonal); a pair is allowed when IoU >= ``min_iou`` or the shift <= ``max_shift``.
    With ``far_shift`` set, tracks seen in the previous frame and detections left unmatched
    are then paired by centre shift alone, up to ``far_shift`` (same units), where the pair
    is unambiguous (each the other's only candidate within reach, areas within a factor 2):
    an animal that darts further than usual between two sampled frames keeps its id.
    Unmatched detections start new tracks; a track unmatched for more than ``max_missed``
    frames is retired. Ids count from 0 in order of first appearance.

    The velocity is the mean over the last ``velocity_frames`` observations: boxes cut from
    a blob of animals that touch have uncertain edges, and one badly cut frame must not turn
    a track around (two animals that cross would swap ids when they part).
    ``motion_state`` and ``inherit_motion`` carry that motion from one clip's tracker to the
    next one's when the clips share a frame.
    """

    def __init__(
        self, min_iou: float = 0.1, max_shift: float = 0.75, max_missed: int = 2, far_shift: float | None = None, velocity_frames: int = 3
    ) -> None:
        if velocity_frames < 2:
            raise ValueError(f"velocity_frames must be >= 2, got {velocity_frames}")
        self.min_iou = min_iou
        self.max_shift = max_shift
        self.max_missed = max_missed
        self.far_shift = far_shift
        self.velocity_frames = velocity_frames
        self._frame = 0
        #: per track id, its last observations ``(frame, box)``
        self._history: dict[int, list[tuple[int, np.ndarray]]] = {}
        self._boxes = np.zeros((0, 4), np.float32)
        self._velocity = np.zeros((0, 4), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._missed = np.zeros(0, np.int64)
        self._next_id = 0

    def predicted(self) -> np.ndarray:
        """``float32 (M, 4)``: where the live tracks are expected in the next frame."""
        return self._boxes + self._velocity * (1 + self._missed[:, None])

    def motion_state(self) -> list[tuple[np.ndarray, list[tuple[int, np.ndarray]]]]:
        """The tracks seen in the last frame: ``(box, history)``, the history's frames
        counted back from that frame (0 is the last frame, -1 the one before, ...)."""
        last = self._frame - 1
        return [
            (self._boxes[r].copy(), [(f - last, b.copy()) for f, b in self._history.get(int(i), [])])
            for r, i in enumerate(self._ids.tolist())
            if self._missed[r] == 0
        ]

    def inherit_motion(self, previous: list[tuple[np.ndarray, list[tuple[int, np.ndarray]]]], min_iou: float = 0.5) -> int:
        """Give the tracks of the frame just assigned the motion history of ``previous``
        (``motion_state`` of a tracker whose last frame was this very image: consecutive
        clips share a frame), pairing boxes by IoU (at least ``min_iou``, Hungarian). Ids are
        left as they are. Returns the number of tracks that inherited."""
        seen = np.nonzero(self._missed == 0)[0]
        if not len(previous) or not len(seen):
            return 0
        iou = box_iou(np.stack([b for b, _ in previous]), self._boxes[seen])
        rows, cols = linear_sum_assignment(-iou)
        now = self._frame - 1
        inherited = 0
        for r, c in zip(rows, cols):
            if iou[r, c] < min_iou:
                continue
            k = seen[c]
            history = [(now + f, b) for f, b in previous[r][1] if f < 0]
            history = (history + self._history.get(int(self._ids[k]), []))[-self.velocity_frames :]
            self._history[int(self._ids[k])] = history
            if len(history) >= 2:
                (f0, b0), (f1, b1) = history[0], history[-1]
                self._velocity[k] = (b1 - b0) / (f1 - f0)
            inherited += 1
        return inherited

    def assign(self, xyxy: np.ndarray) -> np.ndarray:
        """Ids (``int64 (N,)``) for this frame's ``(N, 4)`` boxes."""
        xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        ids = np.full(len(xyxy), -1, dtype=np.int64)
        matched = np.zeros(len(self._ids), dtype=bool)
        if len(xyxy) and len(self._ids):
            predicted = self.predicted()
            iou = box_iou(predicted, xyxy)
            shift = np.linalg.norm(_centres(predicted)[:, None] - _centres(xyxy)[None], axis=2)
            scale = np.maximum(_diagonals(predicted)[:, None], _diagonals(xyxy)[None, :])
            shift = shift / np.maximum(scale, 1.0)
            allowed = (iou >= self.min_iou) | (shift <= self.max_shift)
            cost = np.where(allowed, (1.0 - iou) + shift, 1e6)
            pairs = [(r, c) for r, c in zip(*linear_sum_assignment(cost)) if allowed[r, c]]
            if self.far_shift is not None:
                free_r = np.setdiff1d(np.arange(len(self._ids)), [r for r, _ in pairs])
                free_c = np.setdiff1d(np.arange(len(xyxy)), [c for _, c in pairs])
                if len(free_r) and len(free_c):
                    # only unambiguous pairs of tracks seen last frame and boxes of a like size:
                    # each the other's only candidate within reach
                    far = shift[np.ix_(free_r, free_c)]
                    area = lambda b: np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1.0)
                    ratio = area(self._boxes[free_r])[:, None] / area(xyxy[free_c])[None, :]
                    reach = (far <= self.far_shift) & (ratio > 0.5) & (ratio < 2.0) & (self._missed[free_r] == 0)[:, None]
                    unique = reach & (reach.sum(axis=0, keepdims=True) == 1) & (reach.sum(axis=1, keepdims=True) == 1)
                    pairs += [(free_r[r], free_c[c]) for r, c in zip(*np.nonzero(unique))]
            for r, c in pairs:
                ids[c] = self._ids[r]
                matched[r] = True
                box = xyxy[c]
                history = self._history.setdefault(int(self._ids[r]), [])
                history.append((self._frame, box.copy()))
                del history[: -self.velocity_frames]
                if len(history) >= 2:
                    (f0, b0), (f1, b1) = history[0], history[-1]
                    self._velocity[r] = (b1 - b0) / (f1 - f0)
                else:
                    self._velocity[r] = (box - self._boxes[r]) / (1 + self._missed[r])
                self._boxes[r] = box
        self._frame += 1
        self._missed = np.where(matched, 0, self._missed + 1)
        alive = self._missed <= self.max_missed
        for gone in self._ids[~alive].tolist():
            self._history.pop(gone, None)
        self._boxes, self._velocity = self._boxes[alive], self._velocity[alive]
        self._ids, self._missed = self._ids[alive], self._missed[alive]
        new = ids < 0
        n_new = int(new.sum())
        if n_new:
            ids[new] = np.arange(self._next_id, self._next_id + n_new)
            self._next_id += n_new
            self._boxes = np.concatenate([self._boxes, xyxy[new]])
            self._velocity = np.concatenate([self._velocity, np.zeros((n_new, 4), np.float32)])
            self._ids = np.concatenate([self._ids, ids[new]])
            for i, box in zip(ids[new].tolist(), xyxy[new]):
                self._history[i] = [(self._frame - 1, box.copy())]
            self._missed = np.concatenate([self._missed, np.zeros(n_new, np.int64)])
        return ids


def stitch_tracklets(
    frames: list[tuple[np.ndarray, np.ndarray]], max_gap: int = 3, max_overlap: int = 2, max_shift: float = 1.0, gap_shift: float | None = None
) -> dict[int, int]:
    """Join the pieces of one animal's track that online association left apart.

    ``frames``: per frame of a clip, ``(ids int64 (N,), xyxy float32 (N, 4))``. A tracklet B
    continues tracklet A when B starts after A starts and ends after A ends, and either
    starts at most ``max_gap`` frames after A's end, where A's box carried on at its last
    velocity lies within ``gap_shift`` (default ``max_shift``) box diagonals of B's first
    box, or overlaps A by at
    most ``max_overlap`` frames with boxes within ``max_shift`` diagonals in each of them (one
    animal cut in two for a moment). Pairs are taken cheapest first; each tracklet gets at
    most one successor and one predecessor. Returns ``id -> id of the chain's first
    tracklet`` for every id seen (ids in overlapping frames then repeat: merge them).
    """
    spans: dict[int, dict[int, np.ndarray]] = {}
    for frame, (ids, xyxy) in enumerate(frames):
        for i, box in zip(np.asarray(ids).tolist(), np.asarray(xyxy, np.float32).reshape(-1, 4)):
            spans.setdefault(int(i), {})[frame] = box
    first = {i: min(f) for i, f in spans.items()}
    last = {i: max(f) for i, f in spans.items()}

    def shift(a: np.ndarray, b: np.ndarray) -> float:
        scale = max(np.hypot(*(a[2:] - a[:2])), np.hypot(*(b[2:] - b[:2])), 1.0)
        return float(np.hypot(*((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2)) / scale)

    candidates = []
    for a in spans:
        for b in spans:
            if first[b] <= first[a] or last[b] <= last[a]:
                continue
            gap = first[b] - last[a] - 1
            if gap > max_gap or -gap - 1 > max_overlap:
                continue
            if gap >= 0:
                end = spans[a][last[a]]
                before = spans[a].get(last[a] - 1)
                velocity = (end - before) if before is not None else np.zeros(4, np.float32)
                cost = shift(end + velocity * (gap + 1), spans[b][first[b]])
            else:
                common = [f for f in range(first[b], last[a] + 1) if f in spans[a] and f in spans[b]]
                pairs = [(spans[a][f], spans[b][f]) for f in common] or [(spans[a][last[a]], spans[b][first[b]])]
                cost = max(shift(x, y) for x, y in pairs)
            if cost <= (max_shift if gap < 0 or gap_shift is None else gap_shift):
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
