"""Video probing, a streaming frame reader and an atomic H.264 writer (PyAV).

Frames are ``(H, W, 3) uint8`` RGB arrays. Frame indices count decoded frames from 0 in
presentation order. Nothing here holds more than the frame in hand.
"""

import dataclasses
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vitcow_assets.media.files import atomic_file


class VideoError(ValueError):
    """A file that cannot be used as video; the message is one line naming the file."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a probe learns of a video without decoding it."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    pix_fmt: str
    #: counter-clockwise display rotation in degrees (0, 90, 180, 270); width and height
    #: above are the displayed size, after rotation
    rotation: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _open(path: str | os.PathLike):
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        # FFmpeg's errors carry "[Errno <AVERROR code>] <text>: '<path>'": keep the text
        reason = getattr(exc, "strerror", None) or str(exc)
        raise VideoError(f"{Path(path).name}: cannot open as video ({reason})") from None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's stream parameters; count frames by demuxing when the header has none."""
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{Path(path).name}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        frame_count = int(stream.frames or 0)
        if frame_count <= 0:
            frame_count = sum(1 for packet in container.demux(stream) if packet.size)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = frame_count / fps if fps else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise VideoError(f"{Path(path).name}: video stream has no frame size")
        rotation = _first_frame_rotation(container, path)
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            path=str(path),
            container=container.format.name,
            codec=stream.codec_context.name,
            width=int(width),
            height=int(height),
            fps=fps,
            frame_count=frame_count,
            duration_s=duration,
            pix_fmt=stream.codec_context.pix_fmt or "",
            rotation=rotation,
        )


def _rotation_steps(frame) -> int:
    """Quarter turns (counter-clockwise) that the frame's display matrix asks for."""
    return int(round((frame.rotation or 0) / 90.0)) % 4


def _first_frame_rotation(container, path) -> int:
    """Decode the first frame: proves the stream decodes and reads its display rotation."""
    container.seek(0)
    try:
        for frame in container.decode(video=0):
            return _rotation_steps(frame) * 90
    except av.FFmpegError as exc:
        raise VideoError(f"{Path(path).name}: first frame does not decode ({type(exc).__name__})") from None
    raise VideoError(f"{Path(path).name}: no decodable video frame")


def frame_times(path: str | os.PathLike) -> np.ndarray | None:
    """Presentation time (seconds, from the first frame) of every frame, by demuxing only.

    None when the container gives packets without timestamps.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        times = []
        for packet in container.demux(stream):
            if not packet.size:
                continue
            if packet.pts is None:
                return None
            times.append(float(packet.pts * stream.time_base))
    if not times:
        return np.zeros(0)
    times = np.sort(np.asarray(times))
    return times - times[0]


def iter_frames(
    path: str | os.PathLike, wanted: Iterable[int] | None = None, native: bool = False
) -> Iterator[tuple[int, "np.ndarray | av.VideoFrame"]]:
    """Yield ``(frame_index, rgb)`` in order, decoding the file once, front to back.

    Frames are turned to their displayed orientation (rotation metadata applied). A file
    that ends early or breaks off mid-stream yields the frames that decode. With ``native``,
    frames that need no turning are yielded as decoded ``av.VideoFrame`` (no RGB conversion:
    for re-encoding). With ``wanted``, only those frames are converted to arrays and decoding stops after the
    last of them; frames in between are decoded (codecs need them) but never converted.
    """
    wanted_set = None if wanted is None else set(wanted)
    last = None if wanted_set is None else (max(wanted_set) if wanted_set else -1)
    if last == -1:
        return
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if wanted_set is None or index in wanted_set:
                    steps = _rotation_steps(frame)
                    if native and not steps:
                        yield index, frame
                        continue
                    rgb = frame.to_ndarray(format="rgb24")
                    yield index, (np.ascontiguousarray(np.rot90(rgb, steps)) if steps else rgb)
                if last is not None and index >= last:
                    return
        except av.FFmpegError as exc:
            if index < 0:
                raise VideoError(f"{Path(path).name}: decoding failed ({type(exc).__name__}: {exc})") from None
            # A damaged tail: keep what decoded; callers see which frames never came.


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """H.264 settings of every video the platform writes (browser-playable MP4).

    ``veryfast`` at CRF 20: visually lossless at crop size; ``medium`` costs 1.3-2.4x the
    encode time for a similar size, ``ultrafast`` saves ~30% but grows files ~50%.
    """

    codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = 20
    pix_fmt: str = "yuv420p"
    threads: int = 0  # 0 = encoder's choice


class VideoWriter:
    """Write RGB frames to an H.264 MP4, atomically: the file appears only on a clean exit.

    yuv420p needs even sizes; an odd width or height loses its last column or row.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: float,
        settings: EncoderSettings = EncoderSettings(),
    ) -> None:
        self.path = Path(path)
        self.width = width - width % 2
        self.height = height - height % 2
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"cannot encode a {width}x{height} video")
        self.fps = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self.settings = settings
        self.frames = 0
        self._atomic = atomic_file(self.path)

    def __enter__(self) -> "VideoWriter":
        tmp = self._atomic.__enter__()
        self._container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        stream = self._container.add_stream(self.settings.codec, rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.settings.pix_fmt
        stream.options = {"crf": str(self.settings.crf), "preset": self.settings.preset}
        if self.settings.threads:
            stream.codec_context.thread_count = self.settings.threads
        self._stream = stream
        return self

    def write(self, image: "np.ndarray | av.VideoFrame") -> None:
        """Append an RGB array, or a decoded frame of the same size (encoded without a trip
        through RGB; an odd-sized one is converted and cropped like an array)."""
        if isinstance(image, av.VideoFrame):
            if (image.width, image.height) == (self.width, self.height):
                image.pts = self.frames  # retimed to this file's rate
                image.time_base = 1 / self.fps
                for packet in self._stream.encode(image):
                    self._container.mux(packet)
                self.frames += 1
                return
            image = image.to_ndarray(format="rgb24")
        rgb = image
        if rgb.shape[0] != self.height or rgb.shape[1] != self.width:
            rgb = rgb[: self.height, : self.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
        finally:
            self._container.close()
        return bool(self._atomic.__exit__(exc_type, exc, tb))
