"""Identity across clips: one ``track_id`` per animal through a whole video.

Segmenters give object ids that hold within one clip. ``TrackLinker`` turns them into track
ids that hold through the video, one clip at a time, in source order, keeping only what the
next clip needs (each open track's last observation), so segmentation keeps streaming.

How a clip is linked to what came before it:

- Clips are *consecutive* when the next one starts at most one ``frame_step`` after the
  previous one ends. The clip planner overlaps consecutive windows by one frame (the last
  frame of clip k is the first of clip k+1), so the segmenter sees that source frame twice.
  Clips that are not consecutive (``max_clips`` sampling, a time-of-day window) are a gap:
  every track ends there, and the clip after it starts new tracks.
- **Shared frame** (exact): objects the previous clip has on its last frame and objects this
  clip has on its first frame are masks of the same image. They are paired by mask IoU
  (Hungarian assignment). A pair is allowed when its IoU is at least ``min_mask_iou``, or
  when one mask lies mostly inside the other (intersection over the smaller mask at least
  ``min_mask_cover``: a backend that splits or merges an animal on one side of the boundary,
  as a motion segmenter may, still continues the track with its best-overlapping piece).
- **Fallback**, for objects absent from that frame in one of the clips, and for clips one
  ``frame_step`` apart: an open track's last box, moved by the track's velocity (from its
  last observations) to the frame where an unclaimed object is first seen, against that
  object's first box. Allowed when at most ``max_gap_steps`` frame steps separate the two and
  the boxes overlap (``min_box_iou``) or their centres are close (``max_shift``, in units of
  the larger box diagonal); the cost is ``(1 - IoU) + shift``. Pairs that both have a mask
  on the shared frame were already judged by mask IoU and are not paired again.
- **Lost tracks**: a fixed camera's animals do not vanish or appear in the middle of the
  view. A track last seen away from the frame's edge that nothing continued stays claimable
  for ``max_lost_steps`` frame steps (an animal hidden, merged with another or lying still
  for a while); an object left unclaimed by both rules above whose first box is away from
  the edge continues the nearest such track whose last box it could have reached in the
  time elapsed (the speed gate) and whose mask area is within ``max_area_ratio`` of its own.
  Cost: the distance between the boxes as a share of that reach, plus ``|log area ratio|``.
  Without a measured speed gate (``speed_margin`` 0, or too few moves yet) nothing is
  re-linked: how far an animal gets in a long gap would be a guess.
- Only objects found by the same prompt are linked (a ``cow`` never continues a ``calf``).
- Objects left unclaimed start new tracks. Track ids count from 0 in order of first
  appearance (clip order, then object id).

Works on what every backend writes (boxes and COCO RLE masks per frame), so SAM3 and motion
outputs are linked the same way. Pure: numpy, scipy, pycocotools and pyarrow; no file I/O.
"""

import dataclasses
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
from scipy.optimize import linear_sum_assignment

from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.geometry import box_centres, box_diagonals, least_shift, paired_box_iou
from vitcow_assets.core.masks import rle_area, rle_iou
from vitcow_assets.core.settings import check, setting
from vitcow_assets.core.speeds import LAGS, Reach, SpeedModel

_NO = 1e6  # cost of a forbidden pair
_MAX_LOST = 256  # lost tracks remembered at most (the most recent), so memory stays bounded


@dataclasses.dataclass(frozen=True)
class LinkSettings:
    """Thresholds of the linker (see the module docstring): the segmenter resource's ``link``
    config, environment ``VITCOW_LINK_<FIELD>``, flags ``--link-<field>``."""

    min_mask_iou: float = setting(0.3, "shared frame: a pair's mask IoU must reach this ...")
    min_mask_cover: float = setting(0.8, "... or one mask must lie this much inside the other (intersection over the smaller mask)")
    min_box_iou: float = setting(0.1, "fallback: the track's last box moved on and the object's first box overlap at least this much ...")
    max_shift: float = setting(1.5, "... or their centres lie within this many (larger) box diagonals")
    max_gap_steps: int = setting(3, "fallback: at most this many frame steps between a track's last and an object's first observation")
    velocity_frames: int = setting(3, "observations (frames) of a track used to estimate its velocity")
    speed_quantile: float = setting(0.99, "quantile of the video's measured moves per source frame that the speed gate starts from")
    speed_margin: float = setting(1.5, "fallback and lost pairs further apart than this many times that quantile per frame elapsed are refused (0: no gate, no lost tracks)")
    max_lost_steps: int = setting(40, "lost tracks: frame steps a track that vanished away from the frame's edge stays claimable (0: off)")
    max_area_ratio: float = setting(2.0, "lost tracks: the two masks' areas differ by at most this factor")
    edge_px: int = setting(2, "lost tracks: a box within this many pixels of the frame's edge is at the edge (entering or leaving the view)")

    def __post_init__(self) -> None:
        check("min_mask_iou", 0 < self.min_mask_iou <= 1, f"min_mask_iou must be in (0, 1], got {self.min_mask_iou}")
        check("min_mask_cover", 0 < self.min_mask_cover <= 1, f"min_mask_cover must be in (0, 1], got {self.min_mask_cover}")
        check("min_box_iou", 0 <= self.min_box_iou <= 1, f"min_box_iou must be in [0, 1], got {self.min_box_iou}")
        check("max_shift", self.max_shift >= 0, f"max_shift must be >= 0, got {self.max_shift}")
        check("max_gap_steps", self.max_gap_steps >= 1, f"max_gap_steps must be >= 1, got {self.max_gap_steps}")
        check("velocity_frames", self.velocity_frames >= 2, f"velocity_frames must be >= 2, got {self.velocity_frames}")
        check("speed_quantile", 0 < self.speed_quantile <= 1, f"speed_quantile must be in (0, 1], got {self.speed_quantile}")
        check("speed_margin", self.speed_margin == 0 or self.speed_margin >= 1, f"speed_margin must be 0 (no gate) or >= 1, got {self.speed_margin}")
        check("max_lost_steps", self.max_lost_steps >= 0, f"max_lost_steps must be >= 0, got {self.max_lost_steps}")
        check("max_area_ratio", self.max_area_ratio >= 1, f"max_area_ratio must be >= 1, got {self.max_area_ratio}")
        check("edge_px", self.edge_px >= 0, f"edge_px must be >= 0, got {self.edge_px}")


@dataclasses.dataclass
class ClipObservations:
    """Every (frame, object) row of one clip, as parallel arrays.

    - ``object_ids``: ``int64 (R,)`` the clip's own object ids.
    - ``source_frames``: ``int64 (R,)`` source-video frame of each row.
    - ``xyxy``: ``float32 (R, 4)`` pixel boxes.
    - ``rles``: ``R`` COCO RLE dicts (``size``, ``counts``) of the masks.
    - ``prompts``: ``(R,)`` the text that found each object.
    """

    object_ids: np.ndarray
    source_frames: np.ndarray
    xyxy: np.ndarray
    rles: list
    prompts: np.ndarray

    def __post_init__(self) -> None:
        self.object_ids = np.asarray(self.object_ids, dtype=np.int64).reshape(-1)
        self.source_frames = np.asarray(self.source_frames, dtype=np.int64).reshape(-1)
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.prompts = np.asarray(self.prompts, dtype=object).reshape(-1)
        n = len(self.object_ids)
        for name in ("source_frames", "xyxy", "rles", "prompts"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {n}")

    @classmethod
    def from_table(cls, table: pa.Table) -> "ClipObservations":
        """From masks-table rows (``object_id``, ``source_frame``, ``x1..y2``, ``mask_rle``, ``prompt``)."""
        cols = table.select(["object_id", "source_frame", "x1", "y1", "x2", "y2", "mask_rle", "prompt"]).to_pydict()
        xyxy = np.stack([np.asarray(cols[k], np.float32) for k in ("x1", "y1", "x2", "y2")], axis=1) if table.num_rows else np.zeros((0, 4))
        return cls(cols["object_id"], cols["source_frame"], xyxy, cols["mask_rle"], cols["prompt"])


@dataclasses.dataclass
class _Track:
    """What the linker remembers of an open track: its last observation and velocity."""

    track_id: int
    prompt: str
    last_frame: int
    last_xyxy: np.ndarray
    last_rle: dict
    velocity: np.ndarray  # centre shift per source frame, float64 (2,)


@dataclasses.dataclass
class _Object:
    """One object of the clip being linked: its first and last observations."""

    object_id: int
    prompt: str
    first_frame: int
    first_xyxy: np.ndarray
    first_rle: dict
    last_frame: int
    last_xyxy: np.ndarray
    last_rle: dict
    velocity: np.ndarray


def _objects(obs: ClipObservations, velocity_frames: int) -> list[_Object]:
    """First/last observation and end velocity of each object, by object id."""
    out = []
    for object_id in np.unique(obs.object_ids):
        rows = np.flatnonzero(obs.object_ids == object_id)
        rows = rows[np.argsort(obs.source_frames[rows], kind="stable")]
        first, last = rows[0], rows[-1]
        tail = rows[-velocity_frames:]
        velocity = np.zeros(2)
        span = obs.source_frames[tail[-1]] - obs.source_frames[tail[0]]
        if span > 0:
            velocity = (box_centres(obs.xyxy[tail[-1]]) - box_centres(obs.xyxy[tail[0]])) / span
        out.append(
            _Object(
                int(object_id), str(obs.prompts[first]),
                int(obs.source_frames[first]), obs.xyxy[first], obs.rles[first],
                int(obs.source_frames[last]), obs.xyxy[last], obs.rles[last],
                velocity,
            )
        )
    return out


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Hungarian assignment on ``cost``; pairs at the forbidden cost are dropped."""
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < _NO]


def _fallback_cost(
    tracks: list[_Track], objects: list[_Object], shared: int, frame_step: int, s: LinkSettings, reach: Reach | None
) -> np.ndarray:
    """``(tracks, objects)`` cost of the fallback: each track's last box moved by its velocity to
    the object's first frame, against the object's first box; forbidden pairs cost ``_NO``
    (``reach``: the speed gate in frame steps, or None)."""
    last = np.array([t.last_xyxy for t in tracks], np.float64)[:, None, :]  # (T, 1, 4)
    velocity = np.array([t.velocity for t in tracks], np.float64)  # (T, 2)
    last_frame = np.array([t.last_frame for t in tracks])[:, None]
    first = np.array([o.first_xyxy for o in objects], np.float64)[None, :, :]  # (1, O, 4)
    first_frame = np.array([o.first_frame for o in objects])[None, :]
    dt = first_frame - last_frame  # (T, O) source frames
    moved = last + np.tile(velocity, 2)[:, None, :] * dt[..., None]
    iou = paired_box_iou(moved, first)
    shift = np.linalg.norm(box_centres(moved) - box_centres(first), axis=-1)
    shift /= np.maximum(np.maximum(box_diagonals(moved), box_diagonals(first)), 1.0)
    same_prompt = np.array([[t.prompt == o.prompt for o in objects] for t in tracks], bool).reshape(dt.shape)
    # pairs both seen on the shared frame were judged by mask IoU already
    both_on_shared = (dt == 0) & (last_frame == shared)
    allowed = same_prompt & (dt >= 0) & (dt <= s.max_gap_steps * frame_step) & ~both_on_shared
    allowed &= (iou >= s.min_box_iou) | (shift <= s.max_shift)
    if reach is not None:
        # no animal of the video has been seen to cover the gap between the two boxes in that time
        allowed &= least_shift(last, first) <= reach(np.maximum(dt, frame_step) / frame_step)
    return np.where(allowed, (1.0 - iou) + shift, _NO)


def _steps(obs: ClipObservations, frame_step: int) -> dict[int, np.ndarray]:
    """``{lag: displacements}``: how far each object's box centre moved over ``lag`` frame
    steps (1 to ``LAGS``), what the speed gate is measured from."""
    out: dict[int, list[np.ndarray]] = {lag: [] for lag in range(1, LAGS + 1)}
    for object_id in np.unique(obs.object_ids):
        rows = np.flatnonzero(obs.object_ids == object_id)
        rows = rows[np.argsort(obs.source_frames[rows], kind="stable")]
        frames, centres = obs.source_frames[rows], box_centres(obs.xyxy[rows])
        lags = (frames[None, :] - frames[:, None]) / frame_step
        distance = np.linalg.norm(centres[None, :, :] - centres[:, None, :], axis=2)
        for lag in out:
            out[lag].append(distance[lags == lag])
    return {lag: np.concatenate(v) if v else np.zeros(0) for lag, v in out.items()}


def _shared_frame_pairs(tracks: list[_Track], objects: list[_Object], shared: int, s: LinkSettings) -> dict[int, int]:
    """``{object position: track position}`` of the pairs on the shared frame, by mask IoU."""
    t_on = [i for i, t in enumerate(tracks) if t.last_frame == shared]
    o_on = [j for j, o in enumerate(objects) if o.first_frame == shared]
    if not (t_on and o_on):
        return {}
    before = [tracks[i].last_rle for i in t_on]
    after = [objects[j].first_rle for j in o_on]
    iou = rle_iou(before, after)
    area_before = np.array([rle_area(r) for r in before], np.float64)[:, None]
    area_after = np.array([rle_area(r) for r in after], np.float64)[None, :]
    inter = iou * (area_before + area_after) / (1.0 + iou)
    cover = inter / np.maximum(np.minimum(area_before, area_after), 1.0)
    same_prompt = np.array([[tracks[i].prompt == objects[j].prompt for j in o_on] for i in t_on])
    allowed = same_prompt & ((iou >= s.min_mask_iou) | (cover >= s.min_mask_cover))
    return {o_on[c]: t_on[r] for r, c in _assign(np.where(allowed, 1.0 - iou, _NO))}


def _at_edge(xyxy: np.ndarray, rle: dict, edge_px: int) -> bool:
    """True when the box lies within ``edge_px`` of the frame's edge (the mask's RLE gives the frame's size)."""
    height, width = rle["size"]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return x1 <= edge_px or y1 <= edge_px or x2 >= width - 1 - edge_px or y2 >= height - 1 - edge_px


def _lost_cost(tracks: list[_Track], objects: list[_Object], frame_step: int, s: LinkSettings, reach: Reach) -> np.ndarray:
    """``(tracks, objects)`` cost of re-linking lost tracks: the least distance between a
    track's last box and an object's first box as a share of how far an animal of the video
    gets in the frame steps between them, plus ``|log area ratio|`` of their masks; pairs out
    of reach, of other sizes or of other prompts cost ``_NO``."""
    last = np.array([t.last_xyxy for t in tracks], np.float64)[:, None, :]
    first = np.array([o.first_xyxy for o in objects], np.float64)[None, :, :]
    steps = (np.array([o.first_frame for o in objects])[None, :] - np.array([t.last_frame for t in tracks])[:, None]) / frame_step
    share = least_shift(last, first) / np.maximum(reach(np.maximum(steps, 1.0)), 1e-9)
    area_t = np.array([max(rle_area(t.last_rle), 1) for t in tracks], np.float64)[:, None]
    area_o = np.array([max(rle_area(o.first_rle), 1) for o in objects], np.float64)[None, :]
    log_ratio = np.abs(np.log(area_o / area_t))
    same_prompt = np.array([[t.prompt == o.prompt for o in objects] for t in tracks], bool).reshape(steps.shape)
    allowed = same_prompt & (steps > 0) & (steps <= s.max_lost_steps) & (share <= 1.0) & (log_ratio <= np.log(s.max_area_ratio))
    return np.where(allowed, share + log_ratio, _NO)


class TrackLinker:
    """Gives each clip's objects video-wide track ids, one clip at a time in source order.

    ``link(clip, observations)`` returns ``{object_id: track_id}`` for every object of the
    clip. It keeps only the open tracks' last observations between calls.
    """

    def __init__(self, settings: LinkSettings = LinkSettings()) -> None:
        self.settings = settings
        self._open: list[_Track] = []
        #: tracks that vanished away from the frame's edge and may still be claimed
        self._lost: list[_Track] = []
        self._previous: ClipWindow | None = None
        self._next_id = 0
        self._speeds = SpeedModel(quantile=settings.speed_quantile, margin=max(settings.speed_margin, 1.0))

    @property
    def tracks(self) -> int:
        """Number of track ids given so far."""
        return self._next_id

    def consecutive(self, previous: ClipWindow | None, clip: ClipWindow) -> bool:
        """True when ``clip`` continues ``previous`` (shared frame, or one ``frame_step`` apart)."""
        if previous is None:
            return False
        gap = clip.source_start - previous.source_end
        return 0 <= gap <= clip.frame_step and previous.frame_step == clip.frame_step

    @property
    def reach(self) -> Reach | None:
        """The fallback's speed gate, in frame steps (None: off, or not measured yet)."""
        return self._speeds.reach() if self.settings.speed_margin > 0 else None

    def link(self, clip: ClipWindow, observations: ClipObservations) -> dict[int, int]:
        s = self.settings
        if self._previous is not None and clip.source_start <= self._previous.source_start:
            raise ValueError(f"clips must come in source order: {clip.clip_id} after {self._previous.clip_id}")
        if not self.consecutive(self._previous, clip):
            self._open, self._lost = [], []
        objects = _objects(observations, s.velocity_frames)
        self._speeds.add(_steps(observations, clip.frame_step))
        tracks = self._open
        # 1. The shared frame: masks of the same image, matched by mask IoU.
        claimed = _shared_frame_pairs(tracks, objects, clip.source_start, s)
        # 2. Fallback: the track's last box moved by its velocity against the object's first box.
        t_left = [i for i in range(len(tracks)) if i not in claimed.values()]
        o_left = [j for j in range(len(objects)) if j not in claimed]
        if t_left and o_left:
            cost = _fallback_cost([tracks[i] for i in t_left], [objects[j] for j in o_left], clip.source_start, clip.frame_step, s, self.reach)
            claimed.update({o_left[c]: t_left[r] for r, c in _assign(cost)})
        # 3. Lost tracks: an object that appears away from the edge continues a track that vanished.
        tracks = tracks + self._lost
        relinked = self._relink_lost(clip, tracks, objects, claimed)
        claimed.update(relinked)
        mapping = self._give_ids(clip, tracks, objects, claimed)
        self._previous = clip
        return mapping

    def _relink_lost(self, clip: ClipWindow, tracks: list[_Track], objects: list[_Object], claimed: dict[int, int]) -> dict[int, int]:
        """``{object position: track position}``: unclaimed objects that appear away from the
        frame's edge paired with unclaimed tracks that vanished away from it (``_lost_cost``)."""
        s, reach = self.settings, self.reach
        if s.max_lost_steps == 0 or reach is None:
            return {}
        carried = set(claimed.values())
        t_left = [i for i, t in enumerate(tracks) if i not in carried and not _at_edge(t.last_xyxy, t.last_rle, s.edge_px)]
        o_left = [j for j, o in enumerate(objects) if j not in claimed and not _at_edge(o.first_xyxy, o.first_rle, s.edge_px)]
        if not (t_left and o_left):
            return {}
        cost = _lost_cost([tracks[i] for i in t_left], [objects[j] for j in o_left], clip.frame_step, s, reach)
        return {o_left[c]: t_left[r] for r, c in _assign(cost)}

    def _give_ids(self, clip: ClipWindow, tracks: list[_Track], objects: list[_Object], claimed: dict[int, int]) -> dict[int, int]:
        """Track ids of the clip's objects; the open tracks become this clip's objects plus the
        recent unclaimed tracks, and the lost ones the older unclaimed tracks that vanished
        away from the frame's edge."""
        mapping: dict[int, int] = {}
        next_open = []
        for j, o in enumerate(objects):
            if j in claimed:
                track_id = tracks[claimed[j]].track_id
            else:
                track_id = self._next_id
                self._next_id += 1
            mapping[o.object_id] = track_id
            next_open.append(_Track(track_id, o.prompt, o.last_frame, o.last_xyxy, o.last_rle, o.velocity))
        s = self.settings
        carried = set(claimed.values())
        horizon = clip.source_end - s.max_gap_steps * clip.frame_step
        unclaimed = [t for i, t in enumerate(tracks) if i not in carried]
        next_open += [t for t in unclaimed if t.last_frame >= horizon]
        lost_horizon = clip.source_end - s.max_lost_steps * clip.frame_step
        lost = [t for t in unclaimed if lost_horizon <= t.last_frame < horizon and not _at_edge(t.last_xyxy, t.last_rle, s.edge_px)]
        self._open, self._lost = next_open, lost[-_MAX_LOST:] if s.max_lost_steps else []
        return mapping


def link_clips(
    clips: Iterable[tuple[ClipWindow, ClipObservations]], settings: LinkSettings = LinkSettings()
) -> dict[tuple[str, int], int]:
    """``{(clip_id, object_id): track_id}`` for clips given in source order."""
    linker = TrackLinker(settings)
    out: dict[tuple[str, int], int] = {}
    for clip, observations in clips:
        for object_id, track_id in linker.link(clip, observations).items():
            out[(clip.clip_id, object_id)] = track_id
    return out
