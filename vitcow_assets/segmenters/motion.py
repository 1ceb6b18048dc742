"""``motion``: a weight-free CPU segmenter for fixed cameras.

Per clip (one session):

1. Frames become grey (lightly blurred). The **background** is the per-pixel median of sample
   frames the segmenter kept from the same scene's earlier clips, leaving out the pixels where
   it had found objects (``core.background.BackgroundMemory``), so an animal that moved at
   some point and then stands still for a whole clip is still found; where the memory has too
   few samples (a video's first clip) the clip's own median stands in. The median is taken at
   half resolution on frames over 600,000 pixels. A clip whose median disagrees with the
   memory (beyond a global brightness change) over 40% of the frame is a new scene: the
   memory starts over.
2. Each frame's global **brightness** offset from the background (median difference over a
   grid of pixels) is removed, so illumination drift and exposure changes are not motion.
3. The **threshold** follows the footage's noise: ``threshold_sigmas`` × the robust (MAD)
   standard deviation of the clip's difference images, at least ``min_contrast`` grey
   levels. Pixels above it seed objects that grow over pixels above half of it (hysteresis),
   so faint tails and limbs stay attached. ``polarity`` keeps only objects darker
   (``dark``) or brighter (``bright``) than the background, or both; ``auto`` (the default)
   picks ``dark`` or ``bright`` when at least 95% of the scene's above-threshold pixels so
   far lie on that side (dark fish on a light tank), else ``both`` (people in mixed
   clothes). One-sided footage so loses the light "ghosts" a dark animal leaves where the
   background estimate still holds it.
4. The **minimum size** comes from the footage: blobs of at least ``min_area_ratio`` of the
   typical object area of the clip (``core.background.typical_area``; ``min_area_px``
   overrides it). A blob clearly larger than one typical object is **split** into as many
   parts (k-means on its pixel coordinates), so animals that touch or cross keep separate
   masks (``split_touching``).
5. Ids within the clip come from ``IoUTracker`` (box IoU and centre shift with a
   constant-velocity prediction, Hungarian assignment, then a far-reaching second pass for
   animals that dart; when a clip starts on the frame the previous clip ended on, as the
   clip planner makes consecutive clips do, its tracks start with the motion the previous
   clip's tracks ended with, so animals that cross early in a clip keep their course), and
   ``stitch_tracklets`` then joins, over the whole clip, the pieces
   of one track the online pass cut apart (the parts' masks are merged where two pieces
   overlap). Each mask stays with its id. A track whose median contrast stays under
   ``min_track_contrast`` thresholds (a reflection in glass) is dropped.

It ignores text, box and point prompts (the stage records the query text); removals apply.
The segmenter keeps the background memory between sessions (bounded: ``background_memory``
frames), guarded by a lock; ``reset_scene`` forgets it (the ``object_masks`` asset calls it
before each video, so one video's scene never leaks into another's and a re-run gives the
same masks); a session opened again on the same frames (a second prompt pass,
a retry) reuses that clip's background instead of adding its samples twice.
"""

import dataclasses
import hashlib
import threading
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from vitcow_assets.core.background import BackgroundMemory, robust_sigma, split_count, typical_area
from vitcow_assets.core.detections import Detections
from vitcow_assets.core.masks import BoxMasks
from vitcow_assets.core.settings import check, setting
from vitcow_assets.core.tracks import IoUTracker, stitch_tracklets
from vitcow_assets.segmenters.base import FrameResult, SegmenterBase

POLARITIES = ("auto", "both", "dark", "bright")
_ONE_SIDED = 0.95  # auto polarity: share of contrast pixels on one side that makes it one-sided
_HALF_RES_PIXELS = 600_000
_GROW_STEPS = 4  # hysteresis reaches 4 × 2 px beyond the strong pixels
_CLIP_SAMPLES_ALONE = 10  # clip frames in the background of a scene's first clip
_CLIP_SAMPLES_WITH_MEMORY = 3  # ... and of later clips, beside the memory
_OPEN_FRACTION = 0.12  # opening kernel: this fraction of the typical animal's side (sqrt of its area)
_GRID = 7  # brightness and noise statistics read every 7th pixel in each direction


@dataclasses.dataclass(frozen=True)
class MotionSettings:
    """What a user may tune (environment ``VITCOW_MOTION_<FIELD>``, flags ``--motion-<field>``);
    the defaults work on people (768×576) and small fish (1160×938)."""

    threshold_sigmas: float = setting(5.0, "foreground threshold in robust noise standard deviations")
    min_contrast: float = setting(10.0, "lowest foreground threshold, grey levels")
    polarity: str = setting("auto", "animals darker (dark) or brighter (bright) than the background, both, or auto", choices=POLARITIES)
    min_area_ratio: float = setting(0.3, "smallest object as a fraction of the typical object area")
    min_track_contrast: float = setting(2.0, "drop tracks fainter than this many thresholds (reflections in glass)")
    min_area_px: int = setting(0, "smallest object in pixels, replacing the derived size (0: derive)")
    split_touching: bool = setting(True, "split blobs that hold several typical objects")
    background_memory: int = setting(48, "background sample frames kept from earlier clips (the background's horizon)")
    background_samples: int = setting(6, "sample frames each clip adds to that memory")
    blur_px: int = setting(3, "Gaussian blur before differencing, pixels")
    open_px: int = setting(3, "opening (speck removal) kernel, pixels")
    close_px: int = setting(5, "closing kernel, pixels")
    min_iou: float = setting(0.1, "within a clip: box IoU that allows a match")
    max_shift: float = setting(1.0, "within a clip: centre shift that allows a match, in box diagonals")
    max_missed: int = setting(8, "within a clip: frames a track may go unseen before it ends")
    far_shift: float = setting(2.0, "within a clip: reach of the far-reaching second pass, in box diagonals (0: off)")

    def __post_init__(self) -> None:
        for name in ("threshold_sigmas", "min_contrast", "min_area_ratio", "min_track_contrast", "min_iou", "max_shift", "far_shift"):
            check(name, getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("background_memory", "background_samples"):
            check(name, getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_area_px", "blur_px", "open_px", "close_px", "max_missed"):
            check(name, getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        check("polarity", self.polarity in POLARITIES, f"polarity must be one of {', '.join(POLARITIES)}, got {self.polarity!r}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _kernel(px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (px, px))


def _odd(px: int) -> int:
    return px if px % 2 else px + 1


@dataclasses.dataclass
class ClipBackground:
    """What the segmenter worked out for one clip."""

    fingerprint: str
    background: np.ndarray  # float32 (H, W)
    from_memory: float  # fraction of pixels whose background came from earlier clips


def _spread(n: int, k: int) -> list[int]:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(k, n))})


class _SceneState:
    """The segmenter's memory of the scene: background samples, typical object area."""

    def __init__(self, settings: MotionSettings) -> None:
        self.settings = settings
        self.memory = BackgroundMemory(settings.background_memory)
        self.typical_area = 0.0
        self.dark_bright = np.zeros(2)  # above-threshold grid pixels darker / brighter, so far
        self.last: ClipBackground | None = None
        #: the tracker's motion at the end of the latest clips, by their last frame's digest
        self.motion_carry: dict[str, list] = {}
        self.lock = threading.Lock()

    @staticmethod
    def fingerprint(greys: np.ndarray) -> str:
        digest = hashlib.sha1()
        digest.update(np.asarray(greys.shape, np.int64).tobytes())
        for grey in (greys[0], greys[len(greys) // 2], greys[-1]):
            digest.update(np.ascontiguousarray(grey[::16, ::16]).tobytes())
        return digest.hexdigest()

    def background_for(self, greys: np.ndarray) -> tuple[ClipBackground, bool]:
        """The clip's background; True when the clip is new (its samples are still to add)."""
        fingerprint = self.fingerprint(greys)
        if self.last is not None and self.last.fingerprint == fingerprint:
            return self.last, False
        height, width = greys.shape[1:]
        scale = 2 if height * width > _HALF_RES_PIXELS else 1
        small = greys[:, ::scale, ::scale]
        if self.memory.shape is not None and self.memory.shape != small.shape[1:]:
            self._forget()
        if len(self.memory):
            # A few of the clip's frames beside the memory: an animal still through the clip
            # is outvoted by the memory's views of its spot without it.
            own = small[_spread(len(small), _CLIP_SAMPLES_WITH_MEMORY)]
            memory_only, count = self.memory.median(step=4)
            clip_median = np.median(own[:, ::4, ::4], axis=0)
            seen = count > 0
            diff = memory_only.astype(np.float32)[seen] - clip_median[seen]
            disagree = np.abs(diff - np.median(diff)) > self.settings.min_contrast if diff.size else np.zeros(0, bool)
            if disagree.size and disagree.mean() > 0.4:
                self._forget()  # another scene (camera moved, another video): start over
        if not len(self.memory):
            own = small[_spread(len(small), _CLIP_SAMPLES_ALONE)]
        background, from_memory = self.memory.estimate(own)
        if scale > 1:
            background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
        self.last = ClipBackground(fingerprint, background.astype(np.float32), from_memory)
        return self.last, True

    def _forget(self) -> None:
        self.memory.clear()
        self.motion_carry.clear()
        self.typical_area = 0.0
        self.dark_bright = np.zeros(2)

    def polarity(self) -> str:
        if self.settings.polarity != "auto":
            return self.settings.polarity
        total = self.dark_bright.sum()
        if total > 0 and self.dark_bright[0] >= _ONE_SIDED * total:
            return "dark"
        if total > 0 and self.dark_bright[1] >= _ONE_SIDED * total:
            return "bright"
        return "both"

    def remember(self, greys: np.ndarray, foreground: list[np.ndarray], typical: float, objects: int) -> None:
        """Add the clip's sample frames (object pixels, dilated, left out) and its typical area."""
        s = self.settings
        height, width = greys.shape[1:]
        scale = 2 if height * width > _HALF_RES_PIXELS else 1
        picks = _spread(len(greys), s.background_samples)
        grow = _kernel(max(3, _odd(s.close_px * 2 + 1)))
        for i in picks:
            valid = cv2.dilate(foreground[i], grow) == 0
            self.memory.add(greys[i, ::scale, ::scale], valid[::scale, ::scale])
        if typical > 0 and objects:
            # a running estimate, so that one clip with few animals does not reset it
            self.typical_area = typical if self.typical_area <= 0 else 0.7 * self.typical_area + 0.3 * typical


class MotionSession:
    def __init__(self, frames: Sequence[np.ndarray], settings: MotionSettings, scene: _SceneState) -> None:
        if len(frames) == 0:
            raise ValueError("a session needs at least one frame")
        self._frames = frames
        self._settings = settings
        self._scene = scene
        self._removed: set[int] = set()
        self._closed = False
        #: what the last ``propagate`` derived: threshold, minimum area, typical area, ...
        self.derived: dict[str, float | str] = {}

    def add_text_prompt(self, text: str, clip_frame: int = 0) -> None:
        """Ignored: motion finds whatever moves (the stage records the query text)."""

    def add_box_prompt(self, xyxy, clip_frame: int, text: str | None = None) -> None:
        """Ignored: motion finds whatever moves."""

    def add_point_prompt(self, points, labels, clip_frame: int, object_id: int) -> None:
        """Ignored: motion has no notion of clicks."""

    def remove_object(self, object_id: int) -> None:
        self._removed.add(int(object_id))

    def reset(self) -> None:
        self._removed.clear()

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        k = _odd(self._settings.blur_px)
        return cv2.GaussianBlur(grey, (k, k), 0) if k > 1 else grey

    @staticmethod
    def _score(grey: np.ndarray, background: np.ndarray, offset: float, polarity: str) -> np.ndarray:
        """Frame minus background less the frame's brightness offset, with the polarity
        applied (larger = more object-like)."""
        diff = grey.astype(np.float32) - background
        diff -= offset
        if polarity == "dark":
            return -diff
        if polarity == "bright":
            return diff
        return np.abs(diff, out=diff)

    def _foreground(self, score: np.ndarray, threshold: float, open_px: int) -> np.ndarray:
        """Pixels above ``threshold`` (specks removed by opening), grown by a few steps over
        the pixels above half of it (hysteresis), then closed; ``uint8 (H, W)`` of 0/1."""
        s = self._settings
        fg = (score > threshold).astype(np.uint8)
        if open_px > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _kernel(open_px))
        weak = (score > threshold / 2).astype(np.uint8)
        grow = _kernel(5)
        for _ in range(_GROW_STEPS):
            fg = cv2.dilate(fg, grow) & weak
        if s.close_px > 1:
            fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, _kernel(s.close_px))
        return fg

    def propagate(self) -> Iterator[FrameResult]:
        if self._closed:
            raise RuntimeError("session is closed")
        s = self._settings
        greys = np.stack([self._grey(f) for f in self._frames])
        height, width = greys.shape[1:]
        with self._scene.lock:
            clip_bg, new_clip = self._scene.background_for(greys)
            prior_typical = self._scene.typical_area
        background = clip_bg.background
        # Each frame's brightness offset and the noise: medians over a grid of pixels.
        grid_bg = background[::_GRID, ::_GRID]
        grid = [g[::_GRID, ::_GRID].astype(np.float32) - grid_bg for g in greys]
        offsets = [float(np.median(d)) for d in grid]
        sigma = robust_sigma(np.concatenate([(d - o).ravel() for d, o in zip(grid, offsets)]))
        threshold = max(s.min_contrast, s.threshold_sigmas * sigma)
        if new_clip:
            contrast = np.concatenate([(d - o).ravel() for d, o in zip(grid, offsets)])
            with self._scene.lock:
                self._scene.dark_bright += ((contrast < -threshold).sum(), (contrast > threshold).sum())
        with self._scene.lock:
            polarity = self._scene.polarity()
        # Specks and thin moving things (tape, wires, grass) go: the opening grows with the
        # animals' size seen so far in the scene.
        open_px = max(s.open_px, _odd(int(_OPEN_FRACTION * np.sqrt(prior_typical)))) if s.open_px > 1 else s.open_px
        foreground = [self._foreground(self._score(g, background, o, polarity), threshold, open_px) for g, o in zip(greys, offsets)]
        components = [_components(fg) for fg in foreground]
        floor = max(9.0, 1e-5 * height * width)
        areas = np.concatenate([stats[1:, cv2.CC_STAT_AREA] for _, _, stats, _ in components]) if components else np.zeros(0)
        typical = typical_area(areas, floor)
        reference = prior_typical if prior_typical > 0 else typical
        if prior_typical > 0 and typical > 0:
            reference = float(np.sqrt(prior_typical * typical))
        min_area = float(s.min_area_px) if s.min_area_px > 0 else max(floor, s.min_area_ratio * reference)
        self.derived = {
            "noise_sigma": sigma,
            "threshold": threshold,
            "typical_area_px": reference,
            "min_area_px": min_area,
            "background_from_memory": clip_bg.from_memory,
            "polarity": polarity,
            "open_px": open_px, "dark_share": float(self._scene.dark_bright[0] / max(1, self._scene.dark_bright.sum())),
        }
        tracker = IoUTracker(min_iou=s.min_iou, max_shift=s.max_shift, max_missed=s.max_missed, far_shift=s.far_shift or None)
        with self._scene.lock:
            carried = self._scene.motion_carry.get(_digest(greys[0]))
        per_frame: list[list[tuple[int, int, np.ndarray, float]]] = []  # (x, y, local mask, confidence)
        tracked: list[tuple[np.ndarray, np.ndarray]] = []  # (ids, xyxy) per frame
        for clip_frame, (count, labels, stats, (x0, y0)) in enumerate(components):
            masks = []
            centres = _centres(tracker.predicted())
            for k in range(1, count):
                if stats[k, cv2.CC_STAT_AREA] < min_area:
                    continue
                x, y, w, h = (int(stats[k, c]) for c in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
                local = labels[y : y + h, x : x + w] == k
                x, y = x + x0, y + y0
                seeds = np.zeros((0, 2), np.float32)
                parts = 1
                if s.split_touching:
                    # as many parts as tracks expected on the blob, or as its area says
                    seeds = _seeds_inside(centres, local, x, y)
                    area = stats[k, cv2.CC_STAT_AREA]
                    parts = split_count(area, reference)
                    if len(seeds) >= max(2, parts) and area >= 1.3 * reference:
                        # (never more parts than the area allows: spurious tracks must not
                        # keep cutting one animal in pieces)
                        parts = min(len(seeds), int(area // (0.6 * reference)))
                    seeds = seeds if parts == len(seeds) else seeds[:0]
                for part in _split(local, parts, seeds - (x, y)):
                    if part.sum() >= min_area or parts == 1:
                        masks.append(_tight(x, y, part))
            xyxy = np.array([(x, y, x + m.shape[1], y + m.shape[0]) for x, y, m in masks], np.float32).reshape(-1, 4)
            frame_items = []
            for x, y, part in masks:
                window = (slice(y, y + part.shape[0]), slice(x, x + part.shape[1]))
                region = self._score(greys[clip_frame][window], background[window], offsets[clip_frame], polarity)[part]
                frame_items.append((x, y, part, min(1.0, float(region.mean()) / (4.0 * threshold))))
            per_frame.append(frame_items)
            tracked.append((tracker.assign(xyxy), xyxy))
            if clip_frame == 0 and carried:
                # the previous clip ended on this very frame: its tracks' motion carries on
                tracker.inherit_motion(carried)
        with self._scene.lock:
            carry = self._scene.motion_carry
            carry[_digest(greys[-1])] = tracker.motion_state()
            while len(carry) > 2:
                carry.pop(next(iter(carry)))
        found = sum(len(items) for items in per_frame)
        # Offline within the clip: join the pieces of a track that online association cut.
        roots = stitch_tracklets(tracked, max_gap=s.max_missed, max_overlap=2, max_shift=s.max_shift, gap_shift=max(s.max_shift, s.far_shift))
        # Faint tracks (reflections in glass, thin shadows): median contrast under
        # ``min_track_contrast`` thresholds (score 4 thresholds = 1).
        contrast: dict[int, list[float]] = {}
        for (ids, _), items in zip(tracked, per_frame):
            for i, item in zip(ids.tolist(), items):
                contrast.setdefault(roots[i], []).append(item[3])
        faint = {r for r, c in contrast.items() if 4.0 * float(np.median(c)) < s.min_track_contrast}
        renumber: dict[int, int] = {}
        for ids, _ in tracked:
            for i in ids.tolist():
                if roots[i] not in faint:
                    renumber.setdefault(roots[i], len(renumber))
        for clip_frame, ((ids, _), items) in enumerate(zip(tracked, per_frame)):
            grouped: dict[int, list] = {}
            for i, item in zip(ids.tolist(), items):
                if roots[i] not in faint:
                    grouped.setdefault(renumber[roots[i]], []).append(item)
            keep = sorted(k for k in grouped if k not in self._removed)
            if not keep:
                yield FrameResult(clip_frame, Detections.empty(height, width))
                continue
            # each object's mask is the union of its parts, kept in its box (never frame-sized)
            masks = BoxMasks.from_parts([[(x, y, part) for x, y, part, _ in grouped[k]] for k in keep], height, width)
            confidence = np.array([max(score for *_, score in grouped[k]) for k in keep], np.float32)
            xyxy = np.array([_box(grouped[k]) for k in keep], np.float32)
            yield FrameResult(clip_frame, Detections(xyxy, masks, confidence, np.array(keep)))
        if new_clip:
            with self._scene.lock:
                self._scene.remember(greys, foreground, typical, found)

    def close(self) -> None:
        self._closed = True
        self._frames = ()

    def __enter__(self) -> "MotionSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _digest(grey: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(grey).tobytes()).hexdigest()


def _components(fg: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, tuple[int, int]]:
    """Connected components (8-connected) of the foreground's bounding region:
    ``(count, labels, stats, (x0, y0))``, labels and stats relative to ``(x0, y0)``."""
    x0, y0, w, h = cv2.boundingRect(fg)
    if w == 0 or h == 0:
        return 1, np.zeros((1, 1), np.int32), np.zeros((1, 5), np.int32), (0, 0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg[y0 : y0 + h, x0 : x0 + w], connectivity=8)
    return count, labels, stats, (x0, y0)


def _tight(x: int, y: int, part: np.ndarray) -> tuple[int, int, np.ndarray]:
    """A local mask cut to its pixels' bounding box, with its frame offset."""
    ys, xs = np.nonzero(part)
    return x + int(xs.min()), y + int(ys.min()), part[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _box(items: list) -> tuple[int, int, int, int]:
    """The box (x1, y1, x2 exclusive, y2 exclusive) around local masks ``(x, y, mask, ...)``."""
    return (
        min(x for x, _, _, _ in items),
        min(y for _, y, _, _ in items),
        max(x + m.shape[1] for x, _, m, _ in items),
        max(y + m.shape[0] for _, y, m, _ in items),
    )


def _centres(xyxy: np.ndarray) -> np.ndarray:
    return ((xyxy[:, :2] + xyxy[:, 2:]) / 2.0).astype(np.float32)


def _seeds_inside(centres: np.ndarray, local: np.ndarray, x: int, y: int) -> np.ndarray:
    """The predicted track centres (frame pixels) that fall on the blob ``local`` at ``(x, y)``,
    or within a few pixels of it."""
    if len(centres) == 0:
        return centres
    h, w = local.shape
    near = cv2.dilate(local.astype(np.uint8), _kernel(7))
    col = np.round(centres[:, 0] - x).astype(int)
    row = np.round(centres[:, 1] - y).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    inside[inside] = near[row[inside], col[inside]] > 0
    return centres[inside]


def _split(local: np.ndarray, parts: int, seeds: np.ndarray) -> list[np.ndarray]:
    """``local`` (one blob's bool mask) as ``parts`` masks: k-means on its pixel coordinates,
    started from ``seeds`` (blob coordinates, one per part) when given."""
    if parts <= 1:
        return [local]
    ys, xs = np.nonzero(local)
    if len(xs) < parts * 4:
        return [local]
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    if len(seeds) == parts:
        # one Lloyd start from the predicted centres: each part stays with its track
        labels = np.argmin(((points[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2), axis=1).astype(np.int32)[:, None]
        _, assignment, _ = cv2.kmeans(points, parts, labels, criteria, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    else:
        cv2.setRNGSeed(0)
        _, assignment, _ = cv2.kmeans(points, parts, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    assignment = assignment.ravel()
    out = []
    for p in range(parts):
        mask = np.zeros_like(local)
        mask[ys[assignment == p], xs[assignment == p]] = True
        if mask.any():
            out.append(mask)
    return out


class MotionSegmenter(SegmenterBase):
    family = "motion"
    name = "motion/v2"
    checkpoint = None
    uses_text_prompts = False

    def __init__(self, settings: MotionSettings = MotionSettings()) -> None:
        self.settings = settings
        self._scene = _SceneState(settings)

    def start_session(self, frames: Sequence[np.ndarray]) -> MotionSession:
        return MotionSession(frames, self.settings, self._scene)

    def reset_scene(self) -> None:
        """Forget the background memory (e.g. before another camera's video)."""
        with self._scene.lock:
            self._scene = _SceneState(self.settings)
