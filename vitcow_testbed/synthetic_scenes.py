"""Harder synthetic fixed-camera scenes with exact ground truth, for tracking benchmarks and
tests: N animals always in view, of varied sizes, speeds and shapes, that touch, cross and
rest, over a textured background, with sensor noise, slow illumination drift and a camera's
lossy H.264.

A ``SceneSpec`` says how a scene looks and moves; ``SCENES`` holds the scene types
(``school``: thin dark fish on a light tank, bending as they turn and schooling, so they touch
and cross all the time; ``herd``: large light animals on a dark floor that walk slowly and
rest for long spells; ``crowd``: ten animals of three-fold different sizes and ten-fold
different speeds, some darker and some lighter than the background). ``simulate(spec, seed)``
moves the animals (deterministic for a seed) and gives a ``Scene``: per frame, each animal's
spine (a curve of points with a half-width each), from which ``Scene.masks(frame)`` draws the
visible masks (animals drawn later hide those drawn earlier) and ``Scene.render(frame)`` the
RGB image. ``write_scene`` encodes it; ``Scene.ground_truth_rows`` lists each visible
animal's box per frame (the rows ``vitcow_testbed.idscore`` takes). ``scene_case`` does all
of it for one scene and seed: the video, the platform's clips of it and the truth on their
frames.

The numbers in ``SCENES`` are the scenes' own physics (what an animal of the scene does);
nothing in the segmenter or the linker knows them. Pure numpy and OpenCV, except
``write_scene`` and ``scene_case``, which write the file.
"""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vitcow_assets.core.clips import ClipSettings, ClipWindow, plan_clips
from vitcow_assets.core.geometry import mask_to_xyxy

#: the platform's default clips: 20 frames every 4th source frame, a clip every 76 frames
FRAMES_PER_CLIP, FRAME_STEP = 20, 4
CLIPS = 5
FRAMES = CLIPS * (FRAMES_PER_CLIP - 1) * FRAME_STEP + 1
SPINE_POINTS = 9


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """How a synthetic scene looks and how its animals move (lengths in pixels, speeds in
    pixels per source frame, grey levels 0-255)."""

    name: str
    animals: int
    length: tuple[float, float]  # body length range; each animal draws its own
    aspect: float  # body width / length
    bend: float  # 0: a rigid body along its heading; 1: the body follows the path the head took
    speed: tuple[float, float]  # cruising speed range
    burst: float = 0.0  # chance per frame of a burst (three times the cruising speed for ~6 frames)
    rest: float = 0.0  # chance per frame that a moving animal stops to rest
    rest_frames: int = 60  # mean length of a rest
    cohesion: float = 0.0  # steering towards the others' centre (schooling: touching, crossing)
    turn: float = 0.12  # random turning, radians per frame (standard deviation)
    polarity: str = "dark"  # animals "dark"er, "bright"er than the background, or "mixed"
    background: int = 180
    contrast: float = 70.0
    texture: float = 12.0  # amplitude of the background's smooth texture
    noise: float = 2.5  # sensor noise (standard deviation)
    drift: float = 0.06  # illumination: the gain wanders by up to this fraction
    width: int = 480
    height: int = 360
    fps: float = 25.0
    frames: int = FRAMES


SCENES = {
    "school": SceneSpec(
        "school", animals=8, length=(24, 36), aspect=0.17, bend=0.9, speed=(1.2, 3.2), burst=0.01, rest=0.002,
        rest_frames=25, cohesion=0.5, turn=0.15, polarity="dark", background=185, contrast=75, noise=2.5, drift=0.06,
    ),
    "herd": SceneSpec(
        "herd", animals=5, length=(44, 66), aspect=0.45, bend=0.25, speed=(0.3, 1.0), rest=0.01, rest_frames=120,
        cohesion=0.15, turn=0.06, polarity="bright", background=60, contrast=80, texture=14, noise=3.5, drift=0.12,
    ),
    "crowd": SceneSpec(
        "crowd", animals=10, length=(16, 48), aspect=0.35, bend=0.4, speed=(0.4, 4.0), burst=0.005, rest=0.004,
        rest_frames=50, cohesion=0.2, turn=0.12, polarity="mixed", background=120, contrast=60, texture=16, noise=4.0, drift=0.1,
    ),
}


@dataclasses.dataclass
class Scene:
    """A simulated scene: ``spines float32 (frames, animals, SPINE_POINTS, 2)`` (x, y from
    head to tail), ``radii float32 (animals, SPINE_POINTS)``, ``greys float32 (animals,)``
    (each animal's grey level before illumination), the background image and the gain per
    frame."""

    spec: SceneSpec
    seed: int
    spines: np.ndarray
    radii: np.ndarray
    greys: np.ndarray
    backdrop: np.ndarray
    gain: np.ndarray

    def body_mask(self, frame: int, animal: int) -> np.ndarray:
        """The whole body of one animal on ``frame`` (``bool (H, W)``), hidden parts included."""
        mask = np.zeros((self.spec.height, self.spec.width), np.uint8)
        points, radii = self.spines[frame, animal], self.radii[animal]
        for k in range(SPINE_POINTS):
            centre = tuple(int(round(v)) for v in points[k])
            cv2.circle(mask, centre, max(1, int(round(radii[k]))), 1, -1)
            if k:
                start = tuple(int(round(v)) for v in points[k - 1])
                thickness = max(1, int(round(radii[k] + radii[k - 1])))
                cv2.line(mask, start, centre, 1, thickness)
        return mask.astype(bool)

    def masks(self, frame: int) -> list[np.ndarray]:
        """Each animal's visible mask on ``frame`` (later animals are drawn over earlier ones)."""
        masks = [self.body_mask(frame, a) for a in range(self.spec.animals)]
        covered = np.zeros((self.spec.height, self.spec.width), bool)
        for k in range(len(masks) - 1, -1, -1):
            masks[k] = masks[k] & ~covered
            covered |= masks[k]
        return masks

    def render(self, frame: int) -> np.ndarray:
        """``uint8 (H, W, 3)`` RGB: the backdrop, the animals, the gain and the sensor noise."""
        image = self.backdrop.copy()
        for a in range(self.spec.animals):
            image[self.body_mask(frame, a)] = self.greys[a]
        image *= self.gain[frame]
        rng = np.random.default_rng((self.seed, frame, 7))
        image += rng.normal(0.0, self.spec.noise, image.shape).astype(np.float32)
        grey = np.clip(np.round(image), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)

    def ground_truth_rows(self, frames: Sequence[int]) -> list[dict]:
        """``{"source_frame", "track_id" (animal index), "x1", "y1", "x2", "y2"}`` per visible animal."""
        rows = []
        for frame in frames:
            for k, mask in enumerate(self.masks(frame)):
                box = mask_to_xyxy(mask)
                if box is not None and mask.sum() >= 4:
                    rows.append({"source_frame": frame, "track_id": k, **dict(zip(("x1", "y1", "x2", "y2"), box.tolist()))})
        return rows


def _backdrop(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    """A smooth grey texture around ``spec.background`` (``float32 (H, W)``)."""
    coarse = rng.normal(0.0, 1.0, (spec.height // 24 + 2, spec.width // 24 + 2)).astype(np.float32)
    smooth = cv2.resize(coarse, (spec.width, spec.height), interpolation=cv2.INTER_CUBIC)
    smooth = cv2.GaussianBlur(smooth, (0, 0), 6)
    smooth /= max(float(np.abs(smooth).max()), 1e-6)
    return (spec.background + spec.texture * smooth).astype(np.float32)


def _greys(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    signs = {"dark": -np.ones(spec.animals), "bright": np.ones(spec.animals)}.get(spec.polarity)
    if signs is None:  # mixed: alternate, so both kinds are always present
        signs = np.where(np.arange(spec.animals) % 2 == 0, -1.0, 1.0)
    levels = spec.background + signs * spec.contrast * rng.uniform(0.8, 1.2, spec.animals)
    return np.clip(levels, 5, 250).astype(np.float32)


def _gain(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    """Slow illumination drift: a sum of two slow sines, at most ``drift`` away from 1."""
    t = np.arange(spec.frames, dtype=np.float64)
    phases = rng.uniform(0, 2 * np.pi, 2)
    wave = 0.6 * np.sin(2 * np.pi * t / (1.3 * spec.frames) + phases[0]) + 0.4 * np.sin(2 * np.pi * t / (0.45 * spec.frames) + phases[1])
    return (1.0 + spec.drift * wave).astype(np.float32)


def _steer(pos: np.ndarray, heading: np.ndarray, spec: SceneSpec, lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """New headings: random turning, towards the others' centre (cohesion), away from walls."""
    heading = heading + rng.normal(0.0, spec.turn, len(pos))
    if spec.cohesion > 0 and len(pos) > 1:
        centre = (pos.sum(axis=0)[None, :] - pos) / (len(pos) - 1)
        towards = np.arctan2(centre[:, 1] - pos[:, 1], centre[:, 0] - pos[:, 0])
        heading = heading + 0.08 * spec.cohesion * np.sin(towards - heading)
    margin = 1.2 * lengths
    limits = np.array([spec.width, spec.height], np.float64)
    near = (pos < margin[:, None]) | (pos > limits[None, :] - margin[:, None])
    to_middle = np.arctan2(limits[1] / 2 - pos[:, 1], limits[0] / 2 - pos[:, 0])
    wall = near.any(axis=1)
    heading[wall] = heading[wall] + 0.25 * np.sin(to_middle[wall] - heading[wall])
    return heading


def _speeds(speed: np.ndarray, cruise: np.ndarray, resting: np.ndarray, bursting: np.ndarray) -> np.ndarray:
    target = np.where(resting > 0, 0.0, cruise * np.where(bursting > 0, 3.0, 1.0))
    return speed + 0.25 * (target - speed)


def _trajectories(spec: SceneSpec, rng: np.random.Generator, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head positions ``(frames, animals, 2)`` and headings ``(frames, animals)``."""
    n = spec.animals
    margin = lengths[:, None] + 4
    limits = np.array([spec.width, spec.height], np.float64)
    pos = rng.uniform(margin, limits[None, :] - margin)
    heading = rng.uniform(0, 2 * np.pi, n)
    cruise = rng.uniform(*spec.speed, n)
    speed, resting, bursting = cruise.copy(), np.zeros(n), np.zeros(n)
    positions, headings = np.zeros((spec.frames, n, 2)), np.zeros((spec.frames, n))
    for frame in range(spec.frames):
        positions[frame], headings[frame] = pos, heading
        heading = _steer(pos, heading, spec, lengths, rng)
        resting = np.where(resting > 0, resting - 1, np.where(rng.random(n) < spec.rest, rng.exponential(spec.rest_frames, n), 0))
        bursting = np.where(bursting > 0, bursting - 1, np.where(rng.random(n) < spec.burst, 6, 0))
        speed = _speeds(speed, cruise, resting, bursting)
        step = speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        low, high = lengths[:, None] * 0.6 + 2, limits[None, :] - lengths[:, None] * 0.6 - 2
        new = pos + step
        bounced = (new < low) | (new > high)
        heading = np.where(bounced[:, 0], np.pi - heading, heading)
        heading = np.where(bounced[:, 1], -heading, heading)
        pos = np.clip(new, low, high)
    return positions, headings


def _spines(spec: SceneSpec, positions: np.ndarray, headings: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each animal's spine per frame: a straight body along the heading blended with one that
    follows the path the head took (``bend``), clipped to the frame."""
    frames, n, _ = positions.shape
    spines = np.zeros((frames, n, SPINE_POINTS, 2), np.float32)
    along = np.linspace(0.0, 1.0, SPINE_POINTS)
    for a in range(n):
        path = positions[:, a]
        steps = np.r_[0.0, np.hypot(*np.diff(path, axis=0).T)]
        travelled = np.cumsum(steps)
        for frame in range(frames):
            back = travelled[frame] - along * lengths[a]
            followed = np.stack([np.interp(back, travelled[: frame + 1], path[: frame + 1, c]) for c in (0, 1)], axis=1)
            # before the start of the path (or while resting) the body lies along the heading
            missing = np.clip(-back, 0, None)
            direction = np.array([np.cos(headings[frame, a]), np.sin(headings[frame, a])])
            straight = path[frame][None, :] - along[:, None] * lengths[a] * direction[None, :]
            followed = followed - missing[:, None] * direction[None, :]
            spines[frame, a] = (1 - spec.bend) * straight + spec.bend * followed
    spines[..., 0] = np.clip(spines[..., 0], 1, spec.width - 2)
    spines[..., 1] = np.clip(spines[..., 1], 1, spec.height - 2)
    return spines


def simulate(spec: SceneSpec, seed: int = 0) -> Scene:
    """Move the animals of ``spec`` for ``spec.frames`` frames (deterministic for a seed)."""
    rng = np.random.default_rng((seed, spec.animals, len(spec.name)))
    lengths = rng.uniform(*spec.length, spec.animals)
    positions, headings = _trajectories(spec, rng, lengths)
    profile = np.sin(np.pi * np.clip(np.linspace(0.06, 1.0, SPINE_POINTS), 0, 1) ** 0.6) * 0.85 + 0.15
    radii = (spec.aspect * lengths[:, None] / 2.0 * profile[None, :]).astype(np.float32)
    return Scene(spec, seed, _spines(spec, positions, headings, lengths), radii, _greys(spec, rng), _backdrop(spec, rng), _gain(spec, rng))


def write_scene(path: Path, scene: Scene) -> Path:
    """Encode the scene as H.264 (yuv420p, CRF 18: a camera's lossy compression) at its fps."""
    from vitcow_assets.media.video import EncoderSettings, VideoWriter

    settings = EncoderSettings(preset="ultrafast", crf=18)
    with VideoWriter(path, scene.spec.width, scene.spec.height, scene.spec.fps, settings) as writer:
        for frame in range(scene.spec.frames):
            writer.write(scene.render(frame))
    return path


@dataclasses.dataclass(frozen=True)
class SceneCase:
    """One scene written as a video, the platform's clips of it (``FRAMES_PER_CLIP`` every
    ``FRAME_STEP``-th frame) and the ground-truth rows of every frame those clips sample."""

    spec: SceneSpec
    video: Path
    clips: list[ClipWindow]
    truth: list[dict]

    @property
    def duration_s(self) -> float:
        return self.spec.frames / self.spec.fps


def scene_case(name: str, seed: int, folder: Path) -> SceneCase:
    """Scene ``name`` of ``SCENES`` simulated with ``seed`` and written to
    ``folder/<name>-<seed>.mp4``, with its clips and truth."""
    spec = SCENES[name]
    scene = simulate(spec, seed)
    video = write_scene(Path(folder) / f"{name}-{seed}.mp4", scene)
    clips = plan_clips(spec.frames, spec.fps, ClipSettings(frames_per_clip=FRAMES_PER_CLIP, frame_step=FRAME_STEP))
    return SceneCase(spec, video, clips, scene.ground_truth_rows(sorted({f for c in clips for f in c.source_frames})))
