"""Clip planning: which source frames make up which clip.

A clip is ``frames_per_clip`` source frames taken every ``frame_step``-th frame, so it plays
at ``fps / frame_step``. Consecutive windows overlap by exactly one frame: the last frame of
clip k is the first frame of clip k+1 (windows start every ``(frames_per_clip - 1) *
frame_step`` source frames), so the segmenter sees that frame in both clips and objects can
be linked across clips by their masks on it (``core.identity``). With ``frames_per_clip`` 1
clips cannot share a frame and start every ``frame_step`` frames. Every window whose last
frame exists is a clip; a tail shorter than one window is dropped, except when the whole
video is shorter than one window: then the video gives one shorter clip with every
``frame_step``-th frame it has.

Pure: no file access. Times of day come from a ``datetime`` the caller parsed.
"""

import dataclasses
import datetime as dt
import re

import numpy as np

from vitcow_assets.core.settings import check, setting


@dataclasses.dataclass(frozen=True)
class ClipSettings:
    """How a video is cut into clips (see the module docstring for the windows).

    ``max_clips``/``seed``: keep at most this many clips, chosen uniformly with this seed
    (recorded in the manifest). ``day_start``/``day_end``: keep only clips that start inside
    this time-of-day window (a window may cross midnight), the video's start time parsed
    from its file name with ``name_time_regex`` and ``name_time_format``.
    """

    frames_per_clip: int = setting(20, "frames in a clip")
    frame_step: int = setting(4, "take every Nth source frame (the clip plays at fps / N)")
    max_clips: int | None = setting(None, "keep at most N clips per video, chosen with the seed (none: every clip)")
    seed: int = setting(0, "seed of the max_clips choice (recorded in the manifest)")
    day_start: str | None = setting(None, "HH:MM: keep only clips starting at or after this time of day (with day_end)")
    day_end: str | None = setting(None, "HH:MM: keep only clips starting before this time of day (exclusive)")
    name_time_regex: str = setting(r"(\d{12})", "regex (one group) finding the recording start in the file name")
    name_time_format: str = setting("%Y%m%d%H%M", "strptime format of that start time")

    def __post_init__(self) -> None:
        check("frames_per_clip", self.frames_per_clip >= 1, f"frames_per_clip must be >= 1, got {self.frames_per_clip}")
        check("frame_step", self.frame_step >= 1, f"frame_step must be >= 1, got {self.frame_step}")
        check("max_clips", self.max_clips is None or self.max_clips >= 1, f"max_clips must be >= 1 or unset, got {self.max_clips}")
        check("day_start", (self.day_start is None) == (self.day_end is None), "day_start and day_end must be set together")
        for name in ("day_start", "day_end"):
            value = getattr(self, name)
            check(name, value is None or _is_time_of_day(value), f"{name} must be HH:MM, got {value!r}")

    @property
    def uses_time_window(self) -> bool:
        return self.day_start is not None


@dataclasses.dataclass(frozen=True)
class ClipWindow:
    """One clip: source frames ``source_start, source_start + frame_step, ...`` (``frames`` of them).

    ``clip_index`` is the window's position in the video (stable whatever subset is kept);
    ``clip_id`` is derived from it.
    """

    clip_index: int
    source_start: int
    frame_step: int
    frames: int

    @property
    def clip_id(self) -> str:
        return f"c{self.clip_index:05d}"

    @property
    def source_end(self) -> int:
        """Last source frame of the clip (inclusive)."""
        return self.source_start + (self.frames - 1) * self.frame_step

    @property
    def source_frames(self) -> range:
        return range(self.source_start, self.source_end + 1, self.frame_step)


def _is_time_of_day(text: str) -> bool:
    try:
        parse_time_of_day(text)
    except ValueError:
        return False
    return True


def parse_time_of_day(text: str) -> dt.time:
    try:
        return dt.datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise ValueError(f"time of day must be HH:MM, got {text!r}") from None


def parse_start_time(file_name: str, settings: ClipSettings) -> dt.datetime:
    """Recording start time from a file name such as ``202502052200_D01.mp4``."""
    match = re.search(settings.name_time_regex, file_name)
    if match is None:
        raise ValueError(
            f"file name {file_name!r} has no start time matching {settings.name_time_regex!r}; "
            "unset day_start/day_end or fix name_time_regex"
        )
    text = match.group(1) if match.groups() else match.group(0)
    try:
        return dt.datetime.strptime(text, settings.name_time_format)
    except ValueError:
        raise ValueError(
            f"file name {file_name!r}: {text!r} does not parse as {settings.name_time_format!r}"
        ) from None


def _in_day_window(moment: dt.datetime, start: dt.time, end: dt.time) -> bool:
    t = moment.time()
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def plan_clips(
    frame_count: int,
    fps: float,
    settings: ClipSettings,
    start_time: dt.datetime | None = None,
    times: np.ndarray | None = None,
) -> list[ClipWindow]:
    """The clips of a video of ``frame_count`` frames at ``fps``, in source order.

    ``times`` (seconds of each frame from the first, e.g. from container timestamps) places
    clips in the day for variable-frame-rate video; without it frame / fps is used.
    """
    if frame_count < 0:
        raise ValueError(f"frame_count must be >= 0, got {frame_count}")
    stride = clip_stride(settings)
    last_frame_offset = (settings.frames_per_clip - 1) * settings.frame_step
    count = (frame_count - 1 - last_frame_offset) // stride + 1 if frame_count > last_frame_offset else 0
    windows = [ClipWindow(i, i * stride, settings.frame_step, settings.frames_per_clip) for i in range(count)]
    if not windows and frame_count > 0:
        windows = [ClipWindow(0, 0, settings.frame_step, -(-frame_count // settings.frame_step))]
    if settings.uses_time_window:
        if start_time is None:
            raise ValueError("a time-of-day window needs the video's start time")
        if times is None and fps <= 0:
            raise ValueError("a time-of-day window needs a positive fps or frame timestamps")
        start = parse_time_of_day(settings.day_start)
        end = parse_time_of_day(settings.day_end)
        windows = [
            w
            for w in windows
            if _in_day_window(start_time + dt.timedelta(seconds=frame_time(w.source_start, fps, times)), start, end)
        ]
    if settings.max_clips is not None and len(windows) > settings.max_clips:
        rng = np.random.default_rng(settings.seed)
        keep = np.sort(rng.choice(len(windows), size=settings.max_clips, replace=False))
        windows = [windows[i] for i in keep]
    return windows


def clip_stride(settings: ClipSettings) -> int:
    """Source frames from one clip's start to the next: consecutive clips share one frame."""
    return max(settings.frames_per_clip - 1, 1) * settings.frame_step


def frame_time(frame: int, fps: float, times: np.ndarray | None = None) -> float:
    """Seconds from the first frame: from ``times`` when known, else ``frame / fps``."""
    if times is not None and frame < len(times):
        return float(times[frame])
    return frame / fps if fps > 0 else float("nan")


def frame_assignments(clips: list[ClipWindow]) -> dict[int, list[tuple[int, int]]]:
    """Map each needed source frame to the ``(position in clips, clip_frame)`` pairs that use it."""
    needed: dict[int, list[tuple[int, int]]] = {}
    for position, clip in enumerate(clips):
        for clip_frame, source_frame in enumerate(clip.source_frames):
            needed.setdefault(source_frame, []).append((position, clip_frame))
    return needed
