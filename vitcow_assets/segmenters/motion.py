"""``motion``: a weight-free CPU segmenter for fixed cameras.

Per clip (one session):

1. Frames become grey (lightly blurred). The **background** is the per-pixel median of sample
   frames the segmenter kept from the same scene's earlier clips, leaving out the pixels where
   it had found objects, each filled to its convex hull (``core.background.BackgroundMemory``,
   ``fill_hulls``: an animal resting through a video's first clip is found only where the
   clip's own median does not hold it, and the memory must not learn the rest of its body
   as floor), so an animal that moved at some point and then stands still for a whole clip
   is still found; where the memory has too few samples (a video's first clip) the clip's
   own median stands in. The median is taken at half resolution on frames over 600,000
   pixels. A clip whose median disagrees with the
   memory (beyond a global brightness change) over more than ``new_scene_share`` of the frame
   (40%) is a new scene: the memory starts over.
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
   overrides it).
5. **Splitting** (``split_touching``, ``core.splitting``): each live track expects its last
   mask where its motion takes it. A blob on which several tracks' expected masks lie, and
   that is at least ``merge_ratio`` times the largest of those animals (their recent mask
   areas: the size model per track), holds them all: each pixel goes to the nearest
   expected mask, and each part is hinted to its track. On a clip's first frame, when it is
   the frame the previous clip ended on, the previous clip's final masks on that very image
   cut the blobs instead (whatever the areas), so both clips see the same objects on the
   frame they share and the cross-clip linker pairs them exactly. A blob that no such tracks
   explain but that is clearly larger than one animal (than the one track on it, or than the
   clip's typical object) is cut into as many compact parts (k-means on its pixel
   coordinates, seeded). When only the clip's typical size says the blob is more than one
   (no track on it, or one whose own area is not yet measured), the cut must also show a
   neck where the parts meet (``core.splitting.hull_gain`` at least ``neck_gain``): a
   straight cut through one convex body leaves parts whose hulls fill the body's hull, so an
   animal larger than the typical one stays whole (animals of one scene differ several-fold
   in area), while touching animals leave a notch (two touching ellipses: 0.14). Where a
   track's measured area or two tracks say so, size is evidence enough (two animals crossing
   head-on make one convex blob).
6. Ids within the clip come from ``IoUTracker`` (box IoU and centre shift with a
   constant-velocity prediction, the change in mask area, the split hints, Hungarian
   assignment, then a far-reaching second pass for animals that dart; when a clip starts on
   the frame the previous clip ended on, its tracks start with the motion the previous
   clip's tracks ended with). The scene's **speed model** (``core.speeds.SpeedModel``: the
   displacements between consecutive frames of animals tracked on blobs that nothing split
   or shared, over the scene's clips so far) gates it: no detection further from a track's
   last box than ``speed_margin`` × the ``speed_quantile`` of those displacements per frame
   elapsed continues that track; a part cut out of a blob for a track is measured, for that
   track, by the blob's box (where a cut falls moves with the cut, not with the animal).
   ``stitch_tracklets`` then joins, over the whole clip, the pieces of one track the online
   pass cut apart (within the gate; the parts' masks are merged where two pieces overlap),
   ``cut_jumps`` gives a new id from any frame where a track still jumps beyond the gate
   between two whole views (a crop follows one animal; parts cut out of a blob and blobs of
   several animals are not whole views), and ``absorb_fragments`` gives a track seen in at
   most a quarter of the clip's frames, always inside one other track's blob, back to that
   track (a cut through one animal, not a new one). Each mask stays with its id. A track
   whose median contrast stays under ``min_track_contrast`` thresholds (a reflection in
   glass) is dropped, and so is one seen in fewer than ``min_track_frames`` frames of the
   clip (one sighting is not a track: a splash, a flash of light, a blob cut differently for
   one frame; its crop would be black but for that frame).

It ignores text, box and point prompts (the stage records the query text); removals apply.
The segmenter keeps the scene's memory (background samples, typical size, speeds, the last
frame's tracks) between sessions (bounded: ``background_memory`` frames, a few thousand
displacements), guarded by a lock; ``reset_scene`` forgets it (the ``object_masks`` asset
calls it before each video, so one video's scene never leaks into another's and a re-run
gives the same masks); a session opened again on the same frames (a second prompt pass, a
retry) reuses that clip's background instead of adding its samples twice.

Imports numpy, OpenCV and the project's pure ``core`` modules; no torch, no file I/O.
"""

import dataclasses
import hashlib
import threading
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from vitcow_assets.core.background import BackgroundMemory, edge_support, fill_hulls, robust_sigma, split_count, typical_area
from vitcow_assets.core.detections import Detections
from vitcow_assets.core.geometry import box_centres
from vitcow_assets.core.masks import BoxMasks
from vitcow_assets.core.settings import check, setting
from vitcow_assets.core.splitting import claims, hull_gain, kmeans_split, split_by_masks
from vitcow_assets.core.speeds import Reach, SpeedModel
from vitcow_assets.core.tracks import IoUTracker, TrackedFrame, absorb_fragments, clean_steps, cut_jumps, stitch_tracklets
from vitcow_assets.segmenters.base import FrameResult, SegmenterBase

POLARITIES = ("auto", "both", "dark", "bright")
_ONE_SIDED = 0.95  # auto polarity: share of contrast pixels on one side that makes it one-sided
_HALF_RES_PIXELS = 600_000
_GROW_STEPS = 4  # hysteresis reaches 4 × 2 px beyond the strong pixels
_CLIP_SAMPLES_ALONE = 10  # clip frames in the background of a scene's first clip
_CLIP_SAMPLES_WITH_MEMORY = 3  # ... and of later clips, beside the memory
_OPEN_FRACTION = 0.12  # opening kernel: this fraction of the typical animal's side (sqrt of its area)
_GRID = 7  # brightness and noise statistics read every 7th pixel in each direction
_FRAGMENT_SHARE = 4  # a track in at most 1/4 of the clip's frames, always inside another's blob, is a fragment
#: a part's confidence is its mean contrast in units of this many thresholds (capped at 1);
#: ``min_track_contrast`` is in thresholds, so a track's median confidence is scaled back by it
_CONFIDENT_THRESHOLDS = 4.0
#: the scene's typical object area is a running estimate: this much of it is kept per clip,
#: the rest is the new clip's own (one clip with few animals does not reset it)
_TYPICAL_AREA_KEPT = 0.7
#: blobs smaller than this many pixels, or this share of the frame, are noise whatever the footage
_NOISE_BLOB_PX, _NOISE_BLOB_SHARE = 9.0, 1e-5


@dataclasses.dataclass(frozen=True)
class MotionSettings:
    """What a user may tune (environment ``VITCOW_MOTION_<FIELD>``, flags ``--motion-<field>``);
    the defaults work on people (768×576) and small fish (1160×938)."""

    threshold_sigmas: float = setting(5.0, "foreground threshold in robust noise standard deviations")
    min_contrast: float = setting(10.0, "lowest foreground threshold, grey levels")
    polarity: str = setting("auto", "animals darker (dark) or brighter (bright) than the background, both, or auto", choices=POLARITIES)
    min_area_ratio: float = setting(0.3, "smallest object as a fraction of the typical object area")
    min_track_contrast: float = setting(2.0, "drop tracks fainter than this many thresholds (reflections in glass)")
    min_track_frames: int = setting(2, "drop tracks seen in fewer frames of a clip than this (one sighting is not a track)")
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
    merge_ratio: float = setting(1.25, "a blob several tracks expect is split among them when at least this many times the largest one's area")
    area_weight: float = setting(0.5, "weight of the change in mask area (|log ratio|) in the association cost")
    speed_quantile: float = setting(0.99, "quantile of the scene's measured per-frame moves that the speed gate starts from")
    speed_margin: float = setting(1.5, "the speed gate is this many times that quantile (0: no gate)")
    neck_gain: float = setting(0.02, "a blob cut by its size alone must show a neck: its convex hull this fraction larger than its parts' hulls (0: size alone)")
    ghost_edge_ratio: float = setting(0.7, "a blob whose outline shows less than this fraction as strongly as the background's is a ghost (0: keep all)")
    new_scene_share: float = setting(0.4, "a clip whose background differs from the memory's over more than this share of the frame is another scene: the memory starts over (1: never)")

    def __post_init__(self) -> None:
        for name in ("threshold_sigmas", "min_contrast", "min_area_ratio", "min_track_contrast", "min_iou", "max_shift", "far_shift", "area_weight", "neck_gain", "ghost_edge_ratio"):
            check(name, getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("background_memory", "background_samples", "merge_ratio"):
            check(name, getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_area_px", "blur_px", "open_px", "close_px", "max_missed", "min_track_frames"):
            check(name, getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        check("new_scene_share", 0 < self.new_scene_share <= 1, f"new_scene_share must be in (0, 1], got {self.new_scene_share}")
        check("speed_quantile", 0 < self.speed_quantile <= 1, f"speed_quantile must be in (0, 1], got {self.speed_quantile}")
        check("speed_margin", self.speed_margin == 0 or self.speed_margin >= 1, f"speed_margin must be 0 (no gate) or >= 1, got {self.speed_margin}")
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


@dataclasses.dataclass
class _Part:
    """One object's mask in one frame: ``mask`` (``bool (h, w)``, cut to its pixels) at
    ``(x, y)``; ``hint``: the track it was cut out of a blob for (-1: none); ``clean``: a
    blob that no split touched and at most one track expected (one animal for certain);
    ``merged``: a blob several tracks expected that was left whole (it holds them all)."""

    x: int
    y: int
    mask: np.ndarray
    hint: int = -1
    clean: bool = False
    confidence: float = 0.0
    merged: bool = False
    blob: tuple[int, int, int, int] | None = None

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.mask.shape[1], self.y + self.mask.shape[0]


@dataclasses.dataclass
class _Expected:
    """Where a track (``track`` id, -1 for the previous clip's objects) is expected in a frame:
    its last mask moved by its predicted motion, and its recent mask area (0: unknown)."""

    x: int
    y: int
    mask: np.ndarray
    track: int
    area: float

    @property
    def placed(self) -> tuple[int, int, np.ndarray]:
        return self.x, self.y, self.mask


@dataclasses.dataclass
class _Carry:
    """What a clip leaves for the next one, which starts on its last frame: the tracker's
    motion and the final masks on that frame."""

    motion: list
    masks: list[_Expected]


@dataclasses.dataclass
class _ClipModel:
    """What a session derives for its clip before looking for objects."""

    greys: np.ndarray  # uint8 (T, H, W)
    background: np.ndarray  # float32 (H, W)
    offsets: list[float]  # per frame, brightness offset from the background
    sigma: float
    threshold: float
    polarity: str
    open_px: int
    new_clip: bool
    from_memory: float


@dataclasses.dataclass
class _Sizes:
    """Object sizes of the clip: the clip's own typical area, the reference (blended with the
    scene's), the smallest object kept."""

    typical: float
    reference: float
    min_area: float


def _spread(n: int, k: int) -> list[int]:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(k, n))})


def _scale_for(shape: tuple[int, ...]) -> int:
    return 2 if shape[-2] * shape[-1] > _HALF_RES_PIXELS else 1


class _SceneState:
    """The segmenter's memory of the scene: background samples, typical object area, the
    speed model, and what the latest clips left for the next ones."""

    def __init__(self, settings: MotionSettings) -> None:
        self.settings = settings
        self.memory = BackgroundMemory(settings.background_memory)
        self.typical_area = 0.0
        self.dark_bright = np.zeros(2)  # above-threshold grid pixels darker / brighter, so far
        self.speed = SpeedModel(quantile=settings.speed_quantile, margin=max(settings.speed_margin, 1.0))
        self.last: ClipBackground | None = None
        #: what the latest clips left for the next ones, by their last frame's digest
        self.motion_carry: dict[str, _Carry] = {}
        self.lock = threading.Lock()

    @staticmethod
    def fingerprint(greys: np.ndarray) -> str:
        digest = hashlib.sha1()
        digest.update(np.asarray(greys.shape, np.int64).tobytes())
        for grey in (greys[0], greys[len(greys) // 2], greys[-1]):
            digest.update(np.ascontiguousarray(grey[::16, ::16]).tobytes())
        return digest.hexdigest()

    def _another_scene(self, small: np.ndarray) -> bool:
        """True when the clip (``small``: its frames at the memory's scale) disagrees with the
        memory over more than ``new_scene_share`` of the frame beyond a global brightness change."""
        own = small[_spread(len(small), _CLIP_SAMPLES_WITH_MEMORY)]
        memory_only, count = self.memory.median(step=4)
        clip_median = np.median(own[:, ::4, ::4], axis=0)
        seen = count > 0
        diff = memory_only.astype(np.float32)[seen] - clip_median[seen]
        if not diff.size:
            return False
        return bool((np.abs(diff - np.median(diff)) > self.settings.min_contrast).mean() > self.settings.new_scene_share)

    def background_for(self, greys: np.ndarray) -> tuple[ClipBackground, bool]:
        """The clip's background; True when the clip is new (its samples are still to add)."""
        fingerprint = self.fingerprint(greys)
        if self.last is not None and self.last.fingerprint == fingerprint:
            return self.last, False
        height, width = greys.shape[1:]
        scale = _scale_for(greys.shape)
        small = greys[:, ::scale, ::scale]
        if self.memory.shape is not None and self.memory.shape != small.shape[1:]:
            self._forget()
        if len(self.memory) and self._another_scene(small):
            self._forget()  # another scene (camera moved, another video): start over
        # A few of the clip's frames beside the memory: an animal still through the clip is
        # outvoted by the memory's views of its spot without it.
        own = small[_spread(len(small), _CLIP_SAMPLES_WITH_MEMORY if len(self.memory) else _CLIP_SAMPLES_ALONE)]
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
        self.speed = SpeedModel(quantile=self.settings.speed_quantile, margin=max(self.settings.speed_margin, 1.0))

    def polarity(self) -> str:
        if self.settings.polarity != "auto":
            return self.settings.polarity
        total = self.dark_bright.sum()
        if total > 0 and self.dark_bright[0] >= _ONE_SIDED * total:
            return "dark"
        if total > 0 and self.dark_bright[1] >= _ONE_SIDED * total:
            return "bright"
        return "both"

    def reach(self, extra: dict[int, np.ndarray] | None = None) -> Reach | None:
        """The speed gate, or None without one (yet)."""
        return self.speed.reach(extra) if self.settings.speed_margin > 0 else None

    def remember(self, greys: np.ndarray, foreground: list[np.ndarray], typical: float, objects: int) -> None:
        """Add the clip's sample frames (object pixels, filled to each object's convex hull and
        dilated, left out) and its typical area."""
        s = self.settings
        scale = _scale_for(greys.shape)
        grow = _kernel(max(3, _odd(s.close_px * 2 + 1)))
        for i in _spread(len(greys), s.background_samples):
            # an animal found only in part (where it rested, the clip's own median holds it) is
            # kept out of the memory to the hull of what was found of it
            valid = cv2.dilate(fill_hulls(foreground[i], s.min_area_ratio * typical), grow) == 0
            self.memory.add(greys[i, ::scale, ::scale], valid[::scale, ::scale])
        if typical > 0 and objects:
            # a running estimate, so that one clip with few animals does not reset it
            kept = _TYPICAL_AREA_KEPT
            self.typical_area = typical if self.typical_area <= 0 else kept * self.typical_area + (1 - kept) * typical

    def carry(self, digest: str, carried: _Carry) -> None:
        self.motion_carry[digest] = carried
        while len(self.motion_carry) > 2:
            self.motion_carry.pop(next(iter(self.motion_carry)))


def _score(grey: np.ndarray, background: np.ndarray, offset: float, polarity: str) -> np.ndarray:
    """Frame minus background less the frame's brightness offset, with the polarity applied
    (larger = more object-like)."""
    diff = grey.astype(np.float32) - background
    diff -= offset
    if polarity == "dark":
        return -diff
    if polarity == "bright":
        return diff
    return np.abs(diff, out=diff)


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

    def add_text_prompts(self, texts, clip_frame: int = 0) -> None:
        """Ignored: motion finds whatever moves."""

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

    def _clip_model(self) -> _ClipModel:
        """Background, brightness offsets, noise threshold and polarity of the clip."""
        s = self._settings
        greys = np.stack([self._grey(f) for f in self._frames])
        with self._scene.lock:
            clip_bg, new_clip = self._scene.background_for(greys)
            prior_typical = self._scene.typical_area
        background = clip_bg.background
        # Each frame's brightness offset and the noise: medians over a grid of pixels.
        grid_bg = background[::_GRID, ::_GRID]
        grid = [g[::_GRID, ::_GRID].astype(np.float32) - grid_bg for g in greys]
        offsets = [float(np.median(d)) for d in grid]
        contrast = np.concatenate([(d - o).ravel() for d, o in zip(grid, offsets)])
        sigma = robust_sigma(contrast)
        threshold = max(s.min_contrast, s.threshold_sigmas * sigma)
        with self._scene.lock:
            if new_clip:
                self._scene.dark_bright += ((contrast < -threshold).sum(), (contrast > threshold).sum())
            polarity = self._scene.polarity()
        # Specks and thin moving things (tape, wires, grass) go: the opening grows with the
        # animals' size seen so far in the scene.
        open_px = max(s.open_px, _odd(int(_OPEN_FRACTION * np.sqrt(prior_typical)))) if s.open_px > 1 else s.open_px
        return _ClipModel(greys, background, offsets, sigma, threshold, polarity, open_px, new_clip, clip_bg.from_memory)

    def _sizes(self, stats: list[np.ndarray]) -> _Sizes:
        """The clip's typical object area (blended with the scene's) and the smallest object,
        from each frame's component statistics (``_components``' third item)."""
        s = self._settings
        height, width = self._frames[0].shape[:2]
        with self._scene.lock:
            prior = self._scene.typical_area
        floor = max(_NOISE_BLOB_PX, _NOISE_BLOB_SHARE * height * width)
        areas = np.concatenate([frame[1:, cv2.CC_STAT_AREA] for frame in stats]) if stats else np.zeros(0)
        typical = typical_area(areas, floor)
        reference = prior if prior > 0 else typical
        if prior > 0 and typical > 0:
            reference = float(np.sqrt(prior * typical))
        min_area = float(s.min_area_px) if s.min_area_px > 0 else max(floor, s.min_area_ratio * reference)
        return _Sizes(typical, reference, min_area)

    def _split_claimed(self, local: np.ndarray, x: int, y: int, claimed: list[_Expected], exact: bool, sizes: _Sizes) -> list[_Part] | None:
        """The blob cut among the tracks expected on it, or None when it holds one animal
        (not ``merge_ratio`` times the largest of them, unless ``exact``: masks of this very
        image) or no two of the parts would be animals."""
        area = float(local.sum())
        areas = [c.area if c.area > 0 else sizes.reference for c in claimed]
        if not exact and area < self._settings.merge_ratio * max(areas):
            return None
        chosen = claimed[: max(2, int(area / (0.5 * float(np.median(areas)))))]
        while len(chosen) >= 2:
            pieces = split_by_masks(local, x, y, [c.placed for c in chosen])
            small = [k for k, p in enumerate(pieces) if p.sum() < sizes.min_area]
            if not small:
                # room for an animal no track expected: the blob is larger than the chosen
                # tracks' animals by more than a typical one
                unexpected = not exact and area - sum(c.area if c.area > 0 else sizes.reference for c in chosen) >= sizes.reference
                if not unexpected:
                    return [_tight(x, y, p, hint=c.track) for p, c in zip(pieces, chosen)]
                return [part for p, c in zip(pieces, chosen) for part in self._excess(p, x, y, c, sizes)]
            chosen = [c for k, c in enumerate(chosen) if k not in small]
        return None

    def _excess(self, piece: np.ndarray, x: int, y: int, claimant: _Expected, sizes: _Sizes) -> list[_Part]:
        """A track's piece of a split blob; when it is clearly larger than the track's animal
        (an animal no track expected shares it) it is cut in as many compact parts, and the
        one overlapping the expected mask most keeps the track's hint."""
        own = claimant.area if claimant.area > 0 else sizes.reference
        count = split_count(float(piece.sum()), own)
        if count == 1:
            return [_tight(x, y, piece, hint=claimant.track)]
        pieces = [p for p in kmeans_split(piece, count, np.zeros((0, 2), np.float32)) if p.sum() >= sizes.min_area]
        if not pieces:
            return [_tight(x, y, piece, hint=claimant.track)]
        expected = _paste_mask(piece.shape, (x, y), claimant)
        best = int(np.argmax([(p & expected).sum() for p in pieces]))
        return [_tight(x, y, p, hint=claimant.track if k == best else -1) for k, p in enumerate(pieces)]

    def _cut_blob(self, local: np.ndarray, x: int, y: int, expected: list[_Expected], exact: bool, sizes: _Sizes) -> list[_Part]:
        """One blob as the objects it holds (see the module docstring, step 5), each knowing
        the blob's box."""
        parts = self._cut_parts(local, x, y, expected, exact, sizes)
        for part in parts:
            part.blob = (x, y, x + local.shape[1], y + local.shape[0])
        return parts

    def _cut_parts(self, local: np.ndarray, x: int, y: int, expected: list[_Expected], exact: bool, sizes: _Sizes) -> list[_Part]:
        if not self._settings.split_touching:
            return [_tight(x, y, local, clean=len(claims(local, x, y, [e.placed for e in expected])) <= 1)]
        claimed = [expected[k] for k in claims(local, x, y, [e.placed for e in expected])]
        if len(claimed) >= 2:
            parts = self._split_claimed(local, x, y, claimed, exact, sizes)
            if parts is not None:
                return parts
        # one track on it: clearly larger than that animal and than the typical one
        own = max(claimed[0].area, sizes.reference) if len(claimed) == 1 else sizes.reference
        count = split_count(float(local.sum()), own)
        if count == 1:
            return self._whole(x, y, local, claimed)
        seeds = np.array([box_centres(_placed_box(c)) for c in claimed], np.float32).reshape(-1, 2)
        seeds = seeds if len(seeds) == count else seeds[:0]
        pieces = [p for p in kmeans_split(local, count, seeds - (x, y)) if p.sum() >= sizes.min_area]
        if self._needs_neck(claimed) and len(pieces) >= 2 and hull_gain(local, pieces) < self._settings.neck_gain:
            # only the typical size says "more than one", and there is no neck where the parts
            # meet: slices of one convex body (a large animal), not animals
            return self._whole(x, y, local, claimed)
        return [_tight(x, y, p) for p in pieces]

    def _needs_neck(self, claimed: list[_Expected]) -> bool:
        """Whether a cut by size must show a neck: yes unless something measured says the blob
        holds more than one animal (two tracks on it, or one track whose own area was
        measured and that the blob clearly exceeds)."""
        measured = len(claimed) >= 2 or (len(claimed) == 1 and claimed[0].area > 0)
        return self._settings.neck_gain > 0 and not measured

    @staticmethod
    def _whole(x: int, y: int, local: np.ndarray, claimed: list[_Expected]) -> list[_Part]:
        part = _tight(x, y, local, clean=len(claimed) <= 1)
        part.merged = len(claimed) >= 2
        return [part]

    def _blobs(self, model: _ClipModel, clip_frame: int, component, sizes: _Sizes, ghosts: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
        """The frame's blobs ``(mask, x, y)`` of at least the minimum area that are not ghosts
        (outline weaker in the frame than in the background: ``ghost_edge_ratio``); the
        ghosts' pixels are set in ``ghosts`` (``uint8 (H, W)``)."""
        count, labels, stats, (x0, y0) = component
        height, width = model.greys.shape[1:]
        blobs = []
        for k in range(1, count):
            if stats[k, cv2.CC_STAT_AREA] < sizes.min_area:
                continue
            x, y, w, h = (int(stats[k, c]) for c in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
            local, fx, fy = labels[y : y + h, x : x + w] == k, x + x0, y + y0
            xa, ya, xb, yb = max(fx - 2, 0), max(fy - 2, 0), min(fx + w + 2, width), min(fy + h + 2, height)
            padded = np.zeros((yb - ya, xb - xa), bool)
            padded[fy - ya : fy - ya + h, fx - xa : fx - xa + w] = local
            support = edge_support(model.greys[clip_frame][ya:yb, xa:xb], model.background[ya:yb, xa:xb], padded)
            if support < self._settings.ghost_edge_ratio:
                ghosts[fy : fy + h, fx : fx + w] |= local.view(np.uint8)
                continue
            blobs.append((local, fx, fy))
        return blobs

    def _frame_parts(self, model: _ClipModel, clip_frame: int, blobs: list, expected: list[_Expected], exact: bool, sizes: _Sizes) -> list[_Part]:
        """The objects of one frame, each with its confidence (mean contrast over
        ``_CONFIDENT_THRESHOLDS`` thresholds, at most 1)."""
        parts: list[_Part] = []
        for local, x, y in blobs:
            parts += self._cut_blob(local, x, y, expected, exact, sizes)
        grey, offset = model.greys[clip_frame], model.offsets[clip_frame]
        for part in parts:
            window = (slice(part.y, part.y + part.mask.shape[0]), slice(part.x, part.x + part.mask.shape[1]))
            region = _score(grey[window], model.background[window], offset, model.polarity)[part.mask]
            part.confidence = min(1.0, float(region.mean()) / (_CONFIDENT_THRESHOLDS * model.threshold))
        return parts

    def _track(self, model: _ClipModel, blobs: list[list], sizes: _Sizes, gate: Reach | None) -> tuple[list[TrackedFrame], list[list[_Part]], IoUTracker]:
        """The online pass: per frame, the objects (cut as the live tracks expect) and their ids."""
        s = self._settings
        tracker = IoUTracker(
            min_iou=s.min_iou, max_shift=s.max_shift, max_missed=s.max_missed, far_shift=s.far_shift or None,
            reach=gate, area_weight=s.area_weight,
        )
        with self._scene.lock:
            carried = self._scene.motion_carry.get(_digest(model.greys[0]))
        shapes = _Shapes()
        tracked: list[TrackedFrame] = []
        per_frame: list[list[_Part]] = []
        for clip_frame, frame_blobs in enumerate(blobs):
            exact = clip_frame == 0 and carried is not None
            expected = carried.masks if exact else shapes.expected(clip_frame, tracker)
            parts = self._frame_parts(model, clip_frame, frame_blobs, expected, exact, sizes)
            xyxy = np.array([p.box for p in parts], np.float32).reshape(-1, 4)
            # only blobs of one animal for certain teach the tracker an animal's area
            areas = np.array([p.area if p.clean else 0 for p in parts], np.float64)
            hints = np.array([p.hint for p in parts], np.int64)
            regions = np.array([p.blob or p.box for p in parts], np.float32).reshape(-1, 4)
            ids = tracker.assign(xyxy, areas, hints, np.array([p.merged for p in parts], bool), regions)
            shapes.update(clip_frame, ids, parts)
            if exact:
                # the previous clip ended on this very frame: its tracks' motion carries on
                tracker.inherit_motion(carried.motion)
            tracked.append(TrackedFrame(ids, xyxy))
            per_frame.append(parts)
        return tracked, per_frame, tracker

    def _final_ids(self, tracked: list[TrackedFrame], per_frame: list[list[_Part]], gate: Reach | None) -> list[np.ndarray]:
        """Per frame, each object's final id (-1: dropped): pieces of one track stitched, tracks
        cut at impossible jumps, fragments given back to the animal they were cut from, faint
        tracks dropped, ids renumbered by first appearance."""
        s = self._settings
        roots = stitch_tracklets(
            tracked, max_gap=s.max_missed, max_overlap=2, max_shift=s.max_shift, gap_shift=max(s.max_shift, s.far_shift), reach=gate
        )
        rooted = [frame.relabelled([roots[i] for i in frame.ids.tolist()]) for frame in tracked]
        cut = cut_jumps(rooted, gate, [np.array([p.hint < 0 and not p.merged for p in parts], bool) for parts in per_frame])
        groups = [_blob_groups(parts) for parts in per_frame]
        whole = absorb_fragments(cut, groups, max(1, len(per_frame) // _FRAGMENT_SHARE))
        faint = self._faint(whole, per_frame) | _fleeting(whole, min(s.min_track_frames, len(per_frame)))
        renumber: dict[int, int] = {}
        for ids in whole:
            for i in ids.tolist():
                if i not in faint:
                    renumber.setdefault(i, len(renumber))
        return [np.array([renumber.get(i, -1) for i in ids.tolist()], np.int64) for ids in whole]

    def _faint(self, ids_per_frame: list[np.ndarray], per_frame: list[list[_Part]]) -> set[int]:
        """Faint tracks (reflections in glass, thin shadows): median contrast under
        ``min_track_contrast`` thresholds (confidence 1 is ``_CONFIDENT_THRESHOLDS`` thresholds)."""
        contrast: dict[int, list[float]] = {}
        for ids, parts in zip(ids_per_frame, per_frame):
            for i, part in zip(ids.tolist(), parts):
                contrast.setdefault(i, []).append(part.confidence)
        return {i for i, c in contrast.items() if _CONFIDENT_THRESHOLDS * float(np.median(c)) < self._settings.min_track_contrast}

    def propagate(self) -> Iterator[FrameResult]:
        if self._closed:
            raise RuntimeError("session is closed")
        model = self._clip_model()
        foreground = [self._foreground(_score(g, model.background, o, model.polarity), model.threshold, model.open_px) for g, o in zip(model.greys, model.offsets)]
        # Only the statistics of every frame are kept; each frame's label image (int32, as
        # large as the foreground's extent) is made again where its blobs are cut, so the
        # clip never holds them all (0.3 GB over 20 frames at 2560x1440).
        sizes = self._sizes([_components(fg)[2] for fg in foreground])
        with self._scene.lock:
            gate = self._scene.reach()
        ghosts = [np.zeros_like(fg) for fg in foreground]
        blobs = [self._blobs(model, t, _components(fg), sizes, g) for t, (fg, g) in enumerate(zip(foreground, ghosts))]
        tracked, per_frame, tracker = self._track(model, blobs, sizes, gate)
        steps = clean_steps(
            tracked, [np.array([p.clean for p in parts], bool) for parts in per_frame], [np.array([p.area for p in parts]) for parts in per_frame]
        )
        with self._scene.lock:
            clip_gate = self._scene.reach(steps)
        final = self._final_ids(tracked, per_frame, clip_gate)
        self._derive(model, sizes, clip_gate)
        height, width = model.greys.shape[1:]
        grouped = [_group(ids, parts, self._removed) for ids, parts in zip(final, per_frame)]
        for clip_frame, objects in enumerate(grouped):
            yield FrameResult(clip_frame, _frame_detections(height, width, objects))
        with self._scene.lock:
            self._scene.carry(_digest(model.greys[-1]), _Carry(tracker.motion_state(), _carried_masks(_group(final[-1], per_frame[-1], set()))))
            if model.new_clip:
                # ghosts are background: the memory learns it there again
                objects = [fg & (g == 0) for fg, g in zip(foreground, ghosts)]
                self._scene.remember(model.greys, objects, sizes.typical, sum(len(p) for p in per_frame))
                self._scene.speed.add(steps)

    def _derive(self, model: _ClipModel, sizes: _Sizes, gate: Reach | None) -> None:
        self.derived = {
            "noise_sigma": model.sigma,
            "threshold": model.threshold,
            "typical_area_px": sizes.reference,
            "min_area_px": sizes.min_area,
            "background_from_memory": model.from_memory,
            "polarity": model.polarity,
            "open_px": model.open_px,
            "dark_share": float(self._scene.dark_bright[0] / max(1, self._scene.dark_bright.sum())),
            "speed_limit_px": gate.limits[0] if gate is not None else 0.0,
        }

    def close(self) -> None:
        self._closed = True
        self._frames = ()

    def __enter__(self) -> "MotionSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fleeting(ids_per_frame: list[np.ndarray], min_frames: int) -> set[int]:
    """Tracks seen in fewer than ``min_frames`` frames."""
    frames: dict[int, int] = {}
    for ids in ids_per_frame:
        for i in set(ids.tolist()):
            frames[i] = frames.get(i, 0) + 1
    return {i for i, n in frames.items() if n < min_frames}


def _blob_groups(parts: list[_Part]) -> np.ndarray:
    """``int64 (N,)``: which blob of the frame each part was cut out of (parts of one blob share it)."""
    index: dict[tuple, int] = {}
    return np.array([index.setdefault(p.blob or p.box, len(index)) for p in parts], np.int64)


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


def _tight(x: int, y: int, part: np.ndarray, hint: int = -1, clean: bool = False) -> _Part:
    """A local mask cut to its pixels' bounding box, with its frame offset."""
    ys, xs = np.nonzero(part)
    return _Part(x + int(xs.min()), y + int(ys.min()), part[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], hint, clean)


def _placed_box(e: _Expected) -> np.ndarray:
    return np.array([e.x, e.y, e.x + e.mask.shape[1], e.y + e.mask.shape[0]], np.float64)


class _Shapes:
    """Each track's body as last seen whole (a clean part) and the motion of its centroid over
    its last whole views: what the splitting expects of the track in a later frame. A part cut
    out of a blob is only a piece of an animal, and a merged blob holds several: the whole
    view is the better guess of the body while it touches others."""

    def __init__(self) -> None:
        self._whole: dict[int, list[tuple[int, _Part]]] = {}
        self._last: dict[int, tuple[int, _Part]] = {}

    def update(self, clip_frame: int, ids: np.ndarray, parts: list[_Part]) -> None:
        for track, part in zip(ids.tolist(), parts):
            if part.merged and track in self._last:
                continue
            self._last[track] = (clip_frame, part)
            if part.clean:
                views = self._whole.setdefault(track, [])
                views.append((clip_frame, part))
                del views[:-3]

    def expected(self, clip_frame: int, tracker: IoUTracker) -> list[_Expected]:
        """Each live track's expected mask on ``clip_frame``: its last whole view moved on by
        its centroid's velocity (or, without two whole views, its last part moved on by the
        tracker's velocity)."""
        out = []
        for track, velocity, _, area, _ in zip(*tracker.live()):
            track = int(track)
            views, last = self._whole.get(track, []), self._last.get(track)
            if last is None:
                continue
            if len(views) >= 2:
                (f0, p0), (seen, part) = views[0], views[-1]
                velocity = (_centroid(part) - _centroid(p0)) / (seen - f0)
            else:
                seen, part = last
                velocity = box_centres(velocity)  # the centre's change per frame
            dx, dy = np.round(velocity * (clip_frame - seen)).astype(int)
            out.append(_Expected(part.x + int(dx), part.y + int(dy), part.mask, track, float(area)))
        return out


def _paste_mask(shape: tuple[int, int], origin: tuple[int, int], e: _Expected) -> np.ndarray:
    """``e``'s mask on a canvas of ``shape`` placed at ``origin`` in the frame."""
    out = np.zeros(shape, bool)
    dx, dy = e.x - origin[0], e.y - origin[1]
    h, w = e.mask.shape
    x1, y1, x2, y2 = max(dx, 0), max(dy, 0), min(dx + w, shape[1]), min(dy + h, shape[0])
    if x2 > x1 and y2 > y1:
        out[y1:y2, x1:x2] = e.mask[y1 - dy : y2 - dy, x1 - dx : x2 - dx]
    return out


def _centroid(part: _Part) -> np.ndarray:
    ys, xs = np.nonzero(part.mask)
    return np.array([part.x + xs.mean(), part.y + ys.mean()], np.float64)


def _group(ids: np.ndarray, parts: list[_Part], removed: set[int]) -> dict[int, list[_Part]]:
    """The parts of one frame by final id (dropped and removed ids left out)."""
    grouped: dict[int, list[_Part]] = {}
    for i, part in zip(ids.tolist(), parts):
        if i >= 0 and i not in removed:
            grouped.setdefault(i, []).append(part)
    return grouped


def _carried_masks(objects: dict[int, list[_Part]]) -> list[_Expected]:
    """The final objects of a clip's last frame, as masks the next clip expects on it."""
    out = []
    for track in sorted(objects):
        parts = objects[track]
        x1, y1 = min(p.x for p in parts), min(p.y for p in parts)
        x2, y2 = max(p.box[2] for p in parts), max(p.box[3] for p in parts)
        mask = np.zeros((y2 - y1, x2 - x1), bool)
        for p in parts:
            mask[p.y - y1 : p.box[3] - y1, p.x - x1 : p.box[2] - x1] |= p.mask
        out.append(_Expected(x1, y1, mask, -1, float(mask.sum())))
    return out


def _frame_detections(height: int, width: int, objects: dict[int, list[_Part]]) -> Detections:
    """One frame's ``Detections``: per object id, the union of its parts' masks and boxes and
    the best of their confidences."""
    keep = sorted(objects)
    if not keep:
        return Detections.empty(height, width)
    # each object's mask is the union of its parts, kept in its box (never frame-sized)
    masks = BoxMasks.from_parts([[(part.x, part.y, part.mask) for part in objects[k]] for k in keep], height, width)
    confidence = np.zeros(len(keep), np.float32)
    xyxy = np.zeros((len(keep), 4), np.float32)
    for n, k in enumerate(keep):
        confidence[n] = max(part.confidence for part in objects[k])
        boxes = np.array([part.box for part in objects[k]])
        xyxy[n] = (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
    return Detections(xyxy, masks, confidence, np.array(keep))


class MotionSegmenter(SegmenterBase):
    family = "motion"
    name = "motion/v3"
    checkpoint = None
    uses_text_prompts = False

    def __init__(self, settings: MotionSettings = MotionSettings()) -> None:
        self.settings = settings
        self._scene = _SceneState(settings)

    def start_session(self, frames: Sequence[np.ndarray]) -> MotionSession:
        return MotionSession(frames, self.settings, self._scene)

    def reset_scene(self) -> None:
        """Forget the scene's memory (e.g. before another camera's video)."""
        with self._scene.lock:
            self._scene = _SceneState(self.settings)
