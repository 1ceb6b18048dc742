"""Synthetic footage for identity across clips, with exact ground truth.

Several small coloured animals over the textured static background of ``synthetic.py``: two
that cross (partly occluding each other) exactly on a clip boundary, two that cross in the
middle of a clip, one that walks, stands still for two whole clips and walks on, and one
that wanders slowly. ``ground_truth_rows`` gives, per frame, each animal's visible box (what
is drawn on top hides what is below), so occlusion is in the truth too.

``ColourKeySegmenter`` is a segmenter test double that finds the animals by their exact
colours, with object ids shuffled per clip: a perfect detector whose ids say nothing across
clips, so only the cross-clip linker can make identities continuous.
"""

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from vitcow_assets.core.geometry import mask_to_xyxy
from vitcow_assets.core.detections import Detections
from vitcow_assets.segmenters.base import FrameResult, SegmenterBase
from vitcow_testbed.synthetic import truth_mask, write_video

WIDTH, HEIGHT, FPS = 320, 240, 10
#: clips used with this footage: 10 frames every 2nd source frame, so clips start every 18 frames
FRAMES_PER_CLIP, FRAME_STEP = 10, 2
CLIP_STRIDE = (FRAMES_PER_CLIP - 1) * FRAME_STEP
CLIPS = 6
FRAMES = CLIPS * CLIP_STRIDE + 2  # 6 full clips (the last ends at frame 108)


@dataclasses.dataclass(frozen=True)
class Waypoints:
    """A filled ``size`` (w, h) rectangle whose top-left follows ``keys`` ``(frame, x, y)``
    linearly (holding still before the first and after the last key)."""

    keys: tuple[tuple[int, float, float], ...]
    size: tuple[int, int]
    colour: tuple[int, int, int]

    def xyxy(self, frame: int) -> tuple[int, int, int, int]:
        frames = [k[0] for k in self.keys]
        x = float(np.interp(frame, frames, [k[1] for k in self.keys]))
        y = float(np.interp(frame, frames, [k[2] for k in self.keys]))
        x, y = int(round(x)), int(round(y))
        return x, y, x + self.size[0], y + self.size[1]


BOUNDARY = 2 * CLIP_STRIDE  # frame 36: last frame of clip 1, first of clip 2

ANIMALS = (
    # 0 and 1 cross head-on exactly on a clip boundary: 1 is drawn over 0 and hides it
    # completely on the frame the two clips share (so 0 is linked by the fallback)
    Waypoints(((0, 20, 52), (FRAMES, 20 + 3 * FRAMES, 52)), (18, 12), (255, 230, 60)),
    Waypoints(((0, 20 + 6 * BOUNDARY, 52), (FRAMES, 20 + 6 * BOUNDARY - 3 * FRAMES, 52)), (18, 12), (200, 235, 255)),
    # 2 and 3 cross in an X in the middle of clip 3 (frame 63)
    Waypoints(((0, 40, 110), (63, 160, 160), (FRAMES, 250, 196)), (14, 14), (255, 160, 255)),
    Waypoints(((0, 280, 110), (63, 160, 160), (FRAMES, 70, 196)), (14, 14), (160, 255, 160)),
    # 4 walks during clip 0, stands still through clips 1 and 2 (frames 18-54), then walks on
    Waypoints(((0, 250, 20), (CLIP_STRIDE, 280, 30), (3 * CLIP_STRIDE, 280, 30), (FRAMES, 200, 80)), (16, 12), (255, 255, 170)),
    # 5 wanders slowly near the bottom left
    Waypoints(((0, 12, 200), (40, 40, 214), (80, 20, 222), (FRAMES, 60, 206)), (16, 14), (180, 220, 255)),
)
STILL_ANIMAL = 4


def write_tracks_video(path: Path, frames: int = FRAMES, animals: Sequence[Waypoints] = ANIMALS) -> Path:
    """Write the footage (H.264 4:4:4, lossless), ``frames`` frames at 320x240, 10 fps."""
    return write_video(path, frames=frames, width=WIDTH, height=HEIGHT, fps=FPS, objects=animals)


def visible_masks(frame: int, animals: Sequence[Waypoints] = ANIMALS) -> list[np.ndarray]:
    """Each animal's visible mask on ``frame`` (later animals are drawn over earlier ones)."""
    masks = [truth_mask(a, frame, WIDTH, HEIGHT) for a in animals]
    covered = np.zeros((HEIGHT, WIDTH), bool)
    for k in range(len(masks) - 1, -1, -1):
        masks[k] = masks[k] & ~covered
        covered |= masks[k]
    return masks


def ground_truth_rows(frames: Sequence[int], animals: Sequence[Waypoints] = ANIMALS) -> list[dict]:
    """``{"source_frame", "track_id" (animal index), "x1", "y1", "x2", "y2"}`` per visible animal."""
    rows = []
    for frame in frames:
        for k, mask in enumerate(visible_masks(frame, animals)):
            box = mask_to_xyxy(mask)
            if box is not None:
                rows.append({"source_frame": frame, "track_id": k, **dict(zip(("x1", "y1", "x2", "y2"), box.tolist()))})
    return rows


class _ColourKeySession:
    def __init__(self, frames: Sequence[np.ndarray], colours: np.ndarray, ids: np.ndarray, tolerance: int) -> None:
        self._frames, self._colours, self._ids, self._tolerance = frames, colours, ids, tolerance
        self._text = ""
        self.closed = False

    def add_text_prompt(self, text: str, clip_frame: int = 0) -> None:
        self._text = text

    def add_box_prompt(self, xyxy, clip_frame: int, text: str | None = None) -> None:
        self._text = text or "visual"

    def add_point_prompt(self, points, labels, clip_frame: int, object_id: int) -> None:
        pass

    def remove_object(self, object_id: int) -> None:
        pass

    def reset(self) -> None:
        self._text = ""

    def propagate(self) -> Iterator[FrameResult]:
        for clip_frame, rgb in enumerate(self._frames):
            height, width = rgb.shape[:2]
            found = []
            for colour, object_id in zip(self._colours, self._ids):
                mask = (np.abs(rgb.astype(np.int16) - colour).max(axis=2) <= self._tolerance)
                if mask.sum() >= 4:
                    found.append((object_id, mask))
            if not found:
                yield FrameResult(clip_frame, Detections.empty(height, width))
                continue
            masks = np.stack([m for _, m in found])
            xyxy = np.stack([mask_to_xyxy(m) for m in masks])
            ids = [i for i, _ in found]
            yield FrameResult(clip_frame, Detections(xyxy, masks, np.ones(len(ids)), ids, [self._text] * len(ids)))

    def close(self) -> None:
        self.closed = True
        self._frames = ()

    def __enter__(self) -> "_ColourKeySession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclasses.dataclass(frozen=True)
class ColourKeySettings:
    tolerance: int = 12
    seed: int = 0


class ColourKeySegmenter(SegmenterBase):
    """Finds each animal of ``animals`` by its colour; object ids are a fresh random
    permutation per session (clip), so the same id in two clips means nothing."""

    family = "colour-key"
    name = "colour-key/v0"
    checkpoint = None
    uses_text_prompts = True

    def __init__(self, animals: Sequence[Waypoints] = ANIMALS, tolerance: int = 12, seed: int = 0) -> None:
        self.colours = np.array([a.colour for a in animals], np.int16)
        self.tolerance = tolerance
        self.settings = ColourKeySettings(tolerance, seed)
        self._rng = np.random.default_rng(seed)
        self._sessions = itertools.count()
        self.opened = 0

    def start_session(self, frames: Sequence[np.ndarray]) -> _ColourKeySession:
        self.opened += 1
        ids = self._rng.permutation(len(self.colours)) * 3 + next(self._sessions) % 3
        return _ColourKeySession(frames, self.colours, ids.astype(np.int64), self.tolerance)

    def release(self) -> None:
        pass


WALKER_COLOURS = (
    (255, 230, 60), (200, 235, 255), (255, 160, 255), (160, 255, 160),
    (255, 255, 170), (180, 220, 255), (255, 140, 90), (120, 200, 255),
)


def random_walkers(
    count: int = 8, frames: int = FRAMES, speed: float = 3.0, turn_every: int = 6, seed: int = 0, size: tuple[int, int] = (14, 10)
) -> tuple[Waypoints, ...]:
    """``count`` (at most 8) animals wandering at ``speed`` px/frame, turning to a random
    direction every ``turn_every`` frames and bouncing off the frame edges, so they meet and
    cross often, on clip boundaries too. Deterministic for a ``seed``."""
    if not 1 <= count <= len(WALKER_COLOURS):
        raise ValueError(f"count must be 1..{len(WALKER_COLOURS)}")
    rng = np.random.default_rng(seed)
    animals = []
    limit = (WIDTH - size[0], HEIGHT - size[1])
    for k in range(count):
        x, y = rng.uniform(0, limit[0]), rng.uniform(0, limit[1])
        keys = [(0, x, y)]
        for start in range(0, frames, turn_every):
            angle = rng.uniform(0, 2 * np.pi)
            for frame in range(start + 1, min(start + turn_every, frames) + 1):
                x, y = x + speed * np.cos(angle), y + speed * np.sin(angle)
                if not 0 <= x <= limit[0]:
                    angle = np.pi - angle
                    x = min(max(x, 0), limit[0])
                if not 0 <= y <= limit[1]:
                    angle = -angle
                    y = min(max(y, 0), limit[1])
                keys.append((frame, x, y))
        animals.append(Waypoints(tuple(keys), size, WALKER_COLOURS[k]))
    return tuple(animals)
