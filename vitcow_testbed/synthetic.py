"""Synthetic footage with known ground truth: coloured shapes moving over a textured,
static background, encoded near-losslessly with H.264 through PyAV."""

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclasses.dataclass(frozen=True)
class MovingBox:
    """A filled rectangle of ``size`` (w, h) whose top-left moves from ``start`` by ``velocity`` px/frame."""

    start: tuple[float, float]
    velocity: tuple[float, float]
    size: tuple[int, int]
    colour: tuple[int, int, int]
    #: (width, height) of the frame to bounce inside, or None to fly straight on
    bounce: tuple[int, int] | None = None

    def xyxy(self, frame: int) -> tuple[int, int, int, int]:
        x = self.start[0] + self.velocity[0] * frame
        y = self.start[1] + self.velocity[1] * frame
        if self.bounce is not None:
            x = _reflect(x, self.bounce[0] - self.size[0])
            y = _reflect(y, self.bounce[1] - self.size[1])
        x, y = int(round(x)), int(round(y))
        return x, y, x + self.size[0], y + self.size[1]


def _reflect(position: float, limit: int) -> float:
    """Bounce ``position`` between 0 and ``limit``."""
    period = 2 * limit
    p = position % period
    return p if p <= limit else period - p


@dataclasses.dataclass(frozen=True)
class PathBox:
    """A filled rectangle of ``size`` (w, h) whose top-left follows ``waypoints``
    (``(frame, x, y)``, frames increasing), straight between them, still before the first
    and after the last."""

    waypoints: tuple[tuple[int, float, float], ...]
    size: tuple[int, int]
    colour: tuple[int, int, int]

    def xyxy(self, frame: int) -> tuple[int, int, int, int]:
        frames = [w[0] for w in self.waypoints]
        x = float(np.interp(frame, frames, [w[1] for w in self.waypoints]))
        y = float(np.interp(frame, frames, [w[2] for w in self.waypoints]))
        x, y = int(round(x)), int(round(y))
        return x, y, x + self.size[0], y + self.size[1]


#: Tracking scene for 320 frames (four default clips of 80 source frames), 320x240: six small
#: animals (14x10 to 18x12 px), two pairs crossing, one bouncing, and ``STILL`` (index 5),
#: which moves through clip 0, stands still through clips 1 and 2 (source frames 80-239) and
#: moves again in clip 3.
TRACKING_OBJECTS = (
    MovingBox(start=(10, 30), velocity=(0.9, 0.0), size=(16, 10), colour=(235, 220, 90)),
    MovingBox(start=(290, 40), velocity=(-0.9, 0.05), size=(16, 10), colour=(200, 240, 255)),
    MovingBox(start=(60, 200), velocity=(0.6, -0.45), size=(14, 12), colour=(250, 170, 170)),
    MovingBox(start=(230, 200), velocity=(-0.55, -0.45), size=(14, 12), colour=(170, 250, 170)),
    MovingBox(start=(150, 110), velocity=(1.3, 0.9), size=(18, 12), colour=(255, 255, 255), bounce=(320, 240)),
    PathBox(waypoints=((0, 40, 150), (70, 120, 140), (240, 120, 140), (320, 40, 100)), size=(16, 12), colour=(10, 10, 10)),
)
STILL = 5

DEFAULT_OBJECTS = (
    MovingBox(start=(10, 20), velocity=(3.0, 0.5), size=(40, 30), colour=(255, 230, 60)),
    MovingBox(start=(250, 150), velocity=(-2.5, -0.8), size=(32, 44), colour=(200, 235, 255)),
)


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth grey texture (so that differences are the objects, not noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 100, size=(height // 16 + 2, width // 16 + 2), dtype=np.uint8)
    tex = np.kron(coarse, np.ones((16, 16), np.uint8))[:height, :width]
    return np.repeat(tex[:, :, None], 3, axis=2)


def truth_mask(obj: MovingBox, frame: int, width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    x1, y1, x2, y2 = obj.xyxy(frame)
    mask[max(y1, 0) : max(min(y2, height), 0), max(x1, 0) : max(min(x2, width), 0)] = True
    return mask


def render(frame: int, width: int, height: int, objects=DEFAULT_OBJECTS, bg: np.ndarray | None = None) -> np.ndarray:
    img = (bg if bg is not None else background(width, height)).copy()
    for obj in objects:
        img[truth_mask(obj, frame, width, height)] = obj.colour
    return img


def write_video(
    path: Path,
    frames: int = 100,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    objects=DEFAULT_OBJECTS,
    codec: str = "libx264",
    pix_fmt: str = "yuv444p",
    rotation: int = 0,
    frame_pts: list[int] | None = None,
) -> Path:
    """Write the synthetic video; the container follows the file suffix.

    ``yuv444p`` at crf 0 keeps colours exact at the edges. ``rotation`` sets display
    rotation metadata (counter-clockwise degrees) on the stored, unrotated frames.
    ``frame_pts`` gives each frame's timestamp in units of 1/(fps*10) s (variable frame rate).
    """
    bg = background(width, height)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec in ("libx264", "libx265"):
            stream.options = {"crf": "0" if codec == "libx264" else "4", "preset": "ultrafast"}
            if codec == "libx265":
                stream.options = {**stream.options, "x265-params": "log-level=error"}
        elif codec in ("mpeg4", "msmpeg4v3", "mjpeg"):
            stream.options = {"qscale": "2"}
        if rotation:
            stream.set_display_rotation(rotation)
        if frame_pts is not None:
            stream.codec_context.time_base = Fraction(1, fps * 10)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(render(i, width, height, objects, bg), format="rgb24")
            if frame_pts is not None:
                frame.pts = frame_pts[i]
                frame.time_base = Fraction(1, fps * 10)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """A file with one AAC audio stream and no video."""
    rate = 44100
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = np.zeros((1, 1024), np.float32)
        for i in range(int(seconds * rate / 1024)):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
