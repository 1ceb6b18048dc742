"""Video probing, a streaming frame reader and an atomic H.264 writer (PyAV).

Frames are ``(H, W, 3) uint8`` RGB arrays, or, where a model wants them smaller, scaled
straight from the decoded planes (``FrameScale``, ``ScaledFrame``: no full-size RGB frame
made). Frame indices count decoded frames from 0 in presentation order. Nothing here holds
more than the frame in hand. May import PyAV, numpy and ``media.files``; nothing of Dagster,
torch or the stages.

Reproducible by construction: the same input gives the same pixels and the same file bytes
on any machine, whatever its core count or SIMD level (measured, see ``EXACT_SWS_FLAGS``
and ``EncoderSettings``). Decoders are bit-exact already (the decoded planes of the shared
footage are identical with FFmpeg's SIMD on and forced off, on 1 core and on 2); what
was not is the colour conversion and the encoder's threading.
"""

import dataclasses
import functools
import heapq
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from vitcow_assets.media.files import atomic_file

#: swscale flags of every colour conversion (decoded YUV to RGB, RGB to the encoder's
#: format). swscale's default fast paths round differently per SIMD level: the same decoded
#: planes of vtest.avi gave other RGB bytes with FFmpeg's CPU flags forced off than with
#: AVX2, and so other masks and crops on another machine. With ACCURATE_RND | BITEXACT the
#: C and SIMD paths agree byte for byte (checked on vtest and the fish, 1 and 2 threads).
#: BILINEAR is the interpolation FFmpeg uses by default, so colours stay as they were.
EXACT_SWS_FLAGS = int(Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT)


def frame_to_rgb(frame: "av.VideoFrame", reformatter: VideoReformatter | None = None) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB of a decoded frame, converted bit-exactly (``EXACT_SWS_FLAGS``).

    Pass the same ``reformatter`` for every frame of a pass: it keeps one swscale context
    (a frame's own reformatter builds a new one, with a thread pool, every time). One
    thread: the output does not depend on swscale's thread count (checked with 1, 2 and
    the machine's choice) and a context per frame with threads cost more than it saved.
    The array is a view of a new frame made by the conversion (or, for a frame already in
    rgb24, of the decoded frame itself). That is safe: FFmpeg's frame buffers are
    reference-counted and the array holds a reference, so neither the decoder's buffer pool
    (frame threading) nor the next conversion ever writes into pixels still in use."""
    reformatter = reformatter if reformatter is not None else VideoReformatter()
    return reformatter.reformat(frame, format="rgb24", interpolation=EXACT_SWS_FLAGS, threads=1).to_ndarray()


#: swscale filters a frame may be scaled with on its way out of the decoder (``FrameScale``).
#: When shrinking, swscale widens the filter by the scale factor, so the result is
#: antialiased as PIL's resize is.
SCALE_FILTERS = {"bicubic": Interpolation.BICUBIC, "bilinear": Interpolation.BILINEAR, "area": Interpolation.AREA}
#: the exact-rounding options of every scaled conversion (see ``EXACT_SWS_FLAGS``)
_EXACT_OPTIONS = Interpolation.ACCURATE_RND | Interpolation.BITEXACT


@dataclasses.dataclass(frozen=True)
class FrameScale:
    """Frames wanted at ``width × height`` (of the displayed frame) instead of the source's
    size, made in one swscale pass from the decoded planes straight to planar RGB
    (``gbrp``): no full-size RGB frame is ever made. ``filter`` names the swscale filter
    (``SCALE_FILTERS``); ``threads`` swscale's slice threads for each frame (the bytes do
    not depend on it, nor on the CPU's SIMD level: exact rounding, as ``EXACT_SWS_FLAGS``).

    The planar output takes swscale's full-chroma path: its colours are the BT.601 (or the
    frame's own matrix) conversion to within rounding, where the packed ``rgb24`` path of
    ``frame_to_rgb`` shares one chroma sample between two pixels and comes out about 1.1-1.8
    levels of 255 darker per channel (measured on the shared footage, see
    ``docs/performance.md``)."""

    width: int
    height: int
    filter: str = "bicubic"
    threads: int = 1

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"a frame scale needs a positive size, got {self.width}x{self.height}")
        if self.filter not in SCALE_FILTERS:
            raise ValueError(f"scale filter must be one of {', '.join(SCALE_FILTERS)}, got {self.filter!r}")
        if self.threads < 1:
            raise ValueError(f"scale threads must be 1 or more, got {self.threads}")


@dataclasses.dataclass(frozen=True)
class ScaledFrame:
    """A decoded frame scaled by a ``FrameScale``: its red, green and blue planes, each a
    ``(height, width) uint8`` array (a view of the frame swscale made, which it keeps
    alive; rows may be padded, so use them as arrays, not as raw buffers), and the size of
    the displayed source frame it was made from (coordinates of masks and prompts)."""

    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    source_height: int
    source_width: int


def _plane_array(plane, width: int, height: int) -> np.ndarray:
    """``(height, width) uint8`` view of one plane of an 8-bit frame (rows padded to its line size)."""
    return np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)[:, :width]


def frame_to_scaled(frame: "av.VideoFrame", scale: FrameScale, reformatter: VideoReformatter | None = None) -> ScaledFrame:
    """One swscale pass from a decoded frame (any pixel format) to ``scale``'s size as
    planar RGB, turned to its displayed orientation. Pass the same ``reformatter`` for every
    frame of a pass (one swscale context, see ``frame_to_rgb``). A quarter-turned frame is
    scaled to the turned size, then its planes turned (copies)."""
    reformatter = reformatter if reformatter is not None else VideoReformatter()
    steps = _rotation_steps(frame)
    turned = steps % 2 == 1
    width, height = (scale.height, scale.width) if turned else (scale.width, scale.height)
    flags = int(SCALE_FILTERS[scale.filter] | _EXACT_OPTIONS)
    out = reformatter.reformat(frame, width, height, format="gbrp", interpolation=flags, threads=scale.threads)
    green, blue, red = (_plane_array(p, width, height) for p in out.planes)
    planes = (red, green, blue)
    if steps:
        planes = tuple(np.ascontiguousarray(np.rot90(p, steps)) for p in planes)
    source_height, source_width = (frame.width, frame.height) if turned else (frame.height, frame.width)
    return ScaledFrame(planes, source_height, source_width)


def rgb_to_scaled(rgb: np.ndarray, scale: FrameScale) -> ScaledFrame:
    """``frame_to_scaled`` of an ``(H, W, 3) uint8`` RGB array (a frame already converted)."""
    return frame_to_scaled(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24"), scale)


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
    """Read a video's stream parameters; count frames by demuxing when the header has none.

    Any FFmpeg error becomes a one-line ``VideoError`` naming the file."""
    try:
        return _probe(path)
    except av.FFmpegError as exc:
        raise VideoError(f"{Path(path).name}: cannot read as video ({type(exc).__name__}: {exc})") from None


def _probe(path: str | os.PathLike) -> VideoInfo:
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{Path(path).name}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        frame_count = int(stream.frames or 0)
        if frame_count <= 0:
            frame_count = sum(1 for packet in _packets(container, stream, DecodeDamage()) if packet.size)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = frame_count / fps if fps else 0.0
        if stream.codec_context is None:
            raise VideoError(f"{Path(path).name}: no decoder for its video stream")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise VideoError(f"{Path(path).name}: video stream has no frame size")
        names = (container.format.name, stream.codec_context.name, stream.codec_context.pix_fmt or "")
    # The first frame is decoded once this container is closed: opening the file a second
    # time inside it made every later decode of that file leak ~24 KB (PyAV 18.1: 8,000
    # probes + decodes of 224 px crops grew the process by ~190 MB; opened after, ~15 MB).
    rotation = _first_frame_rotation(path)
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(
        path=str(path), container=names[0], codec=names[1], width=int(width), height=int(height), fps=fps,
        frame_count=frame_count, duration_s=duration, pix_fmt=names[2], rotation=rotation,
    )


def _rotation_steps(frame) -> int:
    """Quarter turns (counter-clockwise) that the frame's display matrix asks for."""
    return int(round((frame.rotation or 0) / 90.0)) % 4


def _first_frame_rotation(path) -> int:
    """Decode the first frame that decodes: proves the stream decodes and reads its display
    rotation. The file is opened again rather than rewound: seeking back fails on some
    damaged files (``[Errno 1] Operation not permitted``)."""
    damage = DecodeDamage()
    with _open(path) as container:
        for _, frame in _decoded_frames(container, container.streams.video[0], damage):
            return _rotation_steps(frame) * 90
    why = f" ({damage.first_error})" if damage else ""
    raise VideoError(f"{Path(path).name}: no decodable video frame{why}")


def frame_times(path: str | os.PathLike) -> np.ndarray | None:
    """Presentation time (seconds, from the first frame) of every frame, by demuxing only.

    None when the container gives packets without timestamps.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        times = []
        for packet in _packets(container, stream, DecodeDamage()):
            if not packet.size:
                continue
            if packet.pts is None:
                return None
            times.append(float(packet.pts * stream.time_base))
    if not times:
        return np.zeros(0)
    times = np.sort(np.asarray(times))
    return times - times[0]


@dataclasses.dataclass
class DecodeDamage:
    """What one decode pass met in a damaged file (filled in by ``iter_frames``)."""

    #: packets that failed to demux or decode
    damaged_packets: int = 0
    #: frames of the file's timeline that never decoded because of them
    frames_lost: int = 0
    #: the first error, as FFmpeg reported it
    first_error: str = ""

    def __bool__(self) -> bool:
        return self.damaged_packets > 0

    def note(self, exc: Exception) -> None:
        self.damaged_packets += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"

    def describe(self) -> str:
        return f"{self.frames_lost} frame(s) lost to {self.damaged_packets} damaged packet(s)"


#: consecutive demux failures after which the rest of a file is given up as unreadable
_MAX_DEMUX_FAILURES = 32


def _packets(container, stream, damage: DecodeDamage):
    """Demux ``stream``; a packet the container cannot read is counted and skipped."""
    failures = 0
    while failures <= _MAX_DEMUX_FAILURES:
        try:
            for packet in container.demux(stream):
                failures = 0
                yield packet
            return
        except av.FFmpegError as exc:
            damage.note(exc)
            failures += 1


class _Timeline:
    """Index of each decoded frame in the file's timeline (what ``frame_times`` lists).

    Until the first damaged packet, frames are counted as they come (0, 1, 2, ...). After
    one, a frame's index is its timestamp's rank among the packets' timestamps, so a frame
    that never decodes leaves a gap (and is counted as lost) instead of shifting every
    later frame to an earlier index.
    """

    def __init__(self, damage: DecodeDamage) -> None:
        self.damage = damage
        self.pending: list[int] = []  # heap of timestamps of demuxed, not yet decoded frames
        self.next_index = 0

    def demuxed(self, packet) -> None:
        if packet.size and packet.pts is not None:
            heapq.heappush(self.pending, packet.pts)

    def index_of(self, pts: int | None) -> int:
        if pts is not None:
            skipped = 0
            while self.pending and self.pending[0] < pts:
                heapq.heappop(self.pending)
                skipped += 1
            if self.pending and self.pending[0] == pts:
                heapq.heappop(self.pending)
            if self.damage and skipped:
                self.damage.frames_lost += skipped
                self.next_index += skipped
        index = self.next_index
        self.next_index += 1
        return index

    def finish(self) -> None:
        if self.damage:
            self.damage.frames_lost += len(self.pending)  # a damaged tail


def _decoded_frames(container, stream, damage: DecodeDamage) -> Iterator[tuple[int, "av.VideoFrame"]]:
    """``(timeline index, frame)`` of every frame that decodes; damaged packets are skipped
    (as FFmpeg's command line does), counted in ``damage``."""
    timeline = _Timeline(damage)
    for packet in _packets(container, stream, damage):
        timeline.demuxed(packet)
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            damage.note(exc)
            continue
        for frame in frames:
            yield timeline.index_of(frame.pts), frame
    try:  # the decoder may still hold frames when demuxing stopped early
        for frame in stream.codec_context.decode(None):
            yield timeline.index_of(frame.pts), frame
    except av.FFmpegError:
        pass
    timeline.finish()


def iter_frames(
    path: str | os.PathLike,
    wanted: Iterable[int] | None = None,
    native: bool = False,
    damage: DecodeDamage | None = None,
    scale: FrameScale | None = None,
) -> Iterator[tuple[int, "np.ndarray | av.VideoFrame | ScaledFrame"]]:
    """Yield ``(frame_index, rgb)`` in order, decoding the file once, front to back.

    Frames are turned to their displayed orientation (rotation metadata applied). A damaged
    packet is skipped and decoding goes on (``damage``, if given, counts damaged packets
    and lost frames; a lost frame's index is simply never yielded); a file that ends early
    yields the frames it has. With ``native``, frames that need no turning are yielded as
    decoded ``av.VideoFrame`` (no RGB conversion: for re-encoding). With ``scale``, frames
    are yielded as ``ScaledFrame`` (one swscale pass to that size, no full-size RGB frame:
    ``frame_to_scaled``). With ``wanted``, only
    those frames are converted to arrays and decoding stops after the last of them; frames
    in between are decoded (codecs need them) but never converted.
    """
    if native and scale is not None:
        raise ValueError("iter_frames: native frames and scaled frames exclude each other")
    wanted_set = None if wanted is None else set(wanted)
    last = None if wanted_set is None else (max(wanted_set) if wanted_set else -1)
    if last == -1:
        return
    damage = damage if damage is not None else DecodeDamage()
    reformatter = VideoReformatter()
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = 0
        for index, frame in _decoded_frames(container, stream, damage):
            decoded += 1
            if last is not None and index > last:
                return
            if wanted_set is None or index in wanted_set:
                steps = _rotation_steps(frame)
                if scale is not None:
                    yield index, frame_to_scaled(frame, scale, reformatter)
                elif native and not steps:
                    yield index, frame
                else:
                    rgb = frame_to_rgb(frame, reformatter)
                    yield index, (np.ascontiguousarray(np.rot90(rgb, steps)) if steps else rgb)
            if last is not None and index >= last:
                return
        if not decoded and damage:
            raise VideoError(f"{Path(path).name}: decoding failed ({damage.first_error})")


#: x264 SIMD levels a file may be capped at, each with the CPU flags (as Linux's
#: ``/proc/cpuinfo`` names them) of the code above it, which the cap switches off
X264_SIMD_CAPS = {"AVX2": frozenset({"avx512f"})}


@functools.cache
def cpu_simd_flags() -> frozenset[str]:
    """This CPU's flags from ``/proc/cpuinfo`` (empty where there is none: not Linux, or a
    CPU that names no x86 flags, where nothing is capped)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


#: values of ``EncoderSettings.thread_type``: threads cut each frame into slices, or encode
#: several frames at once
THREAD_TYPES = ("SLICE", "FRAME")


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """H.264 settings of every video the platform writes (browser-playable MP4).

    ``veryfast`` at CRF 20: visually lossless at crop size; ``medium`` costs 1.3-2.4x the
    encode time for a similar size, ``ultrafast`` saves ~30% but grows files ~50%.

    Everything that decides the bytes is here, so a file is a function of its frames and
    these settings (``describe`` adds the library versions). ``threads`` is a fixed count,
    never "as many as the machine has": x264's bitstream depends on its thread count (PyAV
    asks for slice threads, one slice per thread), so the old ``threads=0`` made every
    clip and crop differ between a 1-core and a 2-core run of the same input (86 of 86 files
    of vtest). One thread is as fast per file at crop size (20 frames of 224 px:
    27 ms per file with 1 thread or the machine's choice) and parallelism comes from encoding
    several files at once (``stages.cropping``), which cannot change any file's bytes.
    x264's output is the same for every SIMD level from SSSE3 up to AVX2 (checked with its
    ``asm`` mask), but not with its AVX-512 code, which on an AVX-512 CPU (AMD EPYC here)
    made other bytes and, from the same frames in the same process, not always the same ones
    (2 of 60 encodes of one crop differed, by where the process's memory lay; 0 of 300 at
    AVX2 or SSSE3): ``simd_cap`` holds x264 to AVX2 where the CPU has more (see
    ``x264_options``). ``x264_params`` can pin more (e.g. ``asm=...``, which then wins) and
    is recorded.
    """

    codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = 20
    pix_fmt: str = "yuv420p"
    #: encoder threads: a fixed count (>= 1); the bytes depend on it
    threads: int = 1
    #: how threads split the work (``THREAD_TYPES``); the bytes depend on it when threads > 1
    thread_type: str = "SLICE"
    #: extra x264 options (``key=value:key=value``), e.g. ``asm=...``; empty for none
    x264_params: str = ""
    #: the highest x264 SIMD level used (``X264_SIMD_CAPS``); None for whatever the CPU has
    simd_cap: str | None = "AVX2"

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(
                f"threads must be a fixed count >= 1, got {self.threads} (0 would let the encoder pick one per machine, and the bytes with it)"
            )
        if self.thread_type not in THREAD_TYPES:
            raise ValueError(f"thread_type must be one of {THREAD_TYPES}, got {self.thread_type!r}")
        if self.simd_cap is not None and self.simd_cap not in X264_SIMD_CAPS:
            raise ValueError(f"simd_cap must be one of {sorted(X264_SIMD_CAPS)} or None, got {self.simd_cap!r}")

    def x264_options(self, cpu_flags: frozenset[str] | None = None) -> str:
        """The ``x264-params`` this machine encodes with: ``x264_params``, plus ``asm=<cap>``
        where the CPU (``cpu_flags``, by default this one's, as Linux names them) has SIMD
        above ``simd_cap``. Only a level the CPU has is ever named, so the cap never asks
        for instructions the machine lacks; an ``asm`` in ``x264_params`` is left alone."""
        params = self.x264_params
        if self.simd_cap is None or "asm=" in params:
            return params
        above = X264_SIMD_CAPS[self.simd_cap]
        flags = cpu_flags if cpu_flags is not None else cpu_simd_flags()
        if not flags & above:
            return params
        return f"{params}:asm={self.simd_cap}" if params else f"asm={self.simd_cap}"

    def describe(self) -> dict:
        """The settings and the library versions that make the bytes (for metadata)."""
        return {
            **dataclasses.asdict(self),
            "sws_flags": EXACT_SWS_FLAGS,
            "pyav": av.__version__,
            "libavcodec": ".".join(str(v) for v in av.library_versions["libavcodec"]),
        }


class VideoWriter:
    """Write RGB frames to an H.264 MP4, atomically: the file appears only on a clean exit.

    yuv420p needs even sizes; an odd width or height loses its last column or row.
    Frames are converted to the encoder's format here, bit-exactly (``EXACT_SWS_FLAGS``),
    not by PyAV's encoder (whose conversion uses swscale's SIMD-dependent default).
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
        self._reformatter = VideoReformatter()

    def __enter__(self) -> "VideoWriter":
        tmp = self._atomic.__enter__()
        try:
            self._container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
            stream = self._container.add_stream(self.settings.codec, rate=self.fps)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.settings.pix_fmt
            options = {"crf": str(self.settings.crf), "preset": self.settings.preset}
            if x264_params := self.settings.x264_options():
                options["x264-params"] = x264_params
            stream.options = options
            stream.codec_context.thread_count = self.settings.threads
            stream.codec_context.thread_type = self.settings.thread_type
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._stream = stream
        return self

    def write(self, image: "np.ndarray | av.VideoFrame") -> None:
        """Append an RGB array, or a decoded frame of the same size (encoded without a trip
        through RGB; an odd-sized one is converted and cropped like an array)."""
        if isinstance(image, av.VideoFrame):
            if (image.width, image.height) == (self.width, self.height):
                self._encode(image)
                return
            image = frame_to_rgb(image, self._reformatter)
        rgb = image
        if rgb.shape[0] != self.height or rgb.shape[1] != self.width:
            rgb = rgb[: self.height, : self.width]
        self._encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24"))

    def _encode(self, frame: "av.VideoFrame") -> None:
        if frame.format.name != self.settings.pix_fmt:
            frame = self._reformatter.reformat(frame, format=self.settings.pix_fmt, interpolation=EXACT_SWS_FLAGS, threads=1)
        frame.pts = self.frames  # retimed to this file's rate
        frame.time_base = 1 / self.fps
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
