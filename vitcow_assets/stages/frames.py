"""One ordered decode pass over a source video, handing out the frames clips need."""

import bisect
import os
from collections.abc import Iterator

import numpy as np

from vitcow_assets.core.clips import ClipWindow, frame_assignments
from vitcow_assets.media.video import DecodeDamage, FrameScale, iter_frames


class ClipFrameStream:
    """Iterate ``(source_frame, rgb, [(clip_position, clip_frame), ...])`` for every frame a
    clip uses, in source order, from a single decode pass. ``rgb`` is the frame as
    ``iter_frames`` gives it: an RGB array at the source's size, the decoded frame itself
    (``native``) or, with ``scale``, a ``ScaledFrame`` made straight from the decoded planes.

    After iteration, ``incomplete`` lists the
    clips whose frames the file did not deliver (a truncated file, a wrong header count, a
    damaged packet inside the clip) and ``damage`` says what a damaged file cost. A clip
    that misses a frame is never handed out whole: once a frame of it is found missing, no
    further frame of it is yielded, and ``take_abandoned()`` names it so that callers can
    drop what they hold of it.
    """

    def __init__(
        self, source: str | os.PathLike, clips: list[ClipWindow], native: bool = False, damage: DecodeDamage | None = None, scale: FrameScale | None = None
    ) -> None:
        self.source = source
        self.native = native  # decoded av.VideoFrames instead of RGB arrays (see iter_frames)
        self.scale = scale  # ScaledFrames at this size instead of full-size RGB arrays
        self.clips = clips
        self.assignments = frame_assignments(clips)
        self.incomplete: list[ClipWindow] = []
        self.damage = damage if damage is not None else DecodeDamage()
        self._abandoned: set[int] = set()
        self._newly_abandoned: list[int] = []

    def take_abandoned(self) -> list[int]:
        """Positions of clips found to miss a frame since the last call."""
        taken, self._newly_abandoned = self._newly_abandoned, []
        return taken

    def _abandon_skipped(self, wanted: list[int], after: int, before: int) -> None:
        """Clips using a frame strictly between ``after`` and ``before`` (never decoded)."""
        lo, hi = bisect.bisect_right(wanted, after), bisect.bisect_left(wanted, before)
        for frame in wanted[lo:hi]:
            for position, _ in self.assignments[frame]:
                if position not in self._abandoned:
                    self._abandoned.add(position)
                    self._newly_abandoned.append(position)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, list[tuple[int, int]]]]:
        wanted = sorted(self.assignments)
        previous = -1
        for index, rgb in iter_frames(self.source, self.assignments.keys(), native=self.native, damage=self.damage, scale=self.scale):
            if index > previous + 1:
                self._abandon_skipped(wanted, previous, index)
            previous = index
            uses = [use for use in self.assignments[index] if use[0] not in self._abandoned]
            if uses:
                yield index, rgb, uses
        self._abandon_skipped(wanted, previous, (wanted[-1] + 1) if wanted else 0)
        self.incomplete = [c for i, c in enumerate(self.clips) if i in self._abandoned]

    def by_clip(self) -> Iterator[tuple[ClipWindow, list[np.ndarray]]]:
        """Yield each complete clip with its frames, holding at most the open clips' frames."""
        buffers: dict[int, list[np.ndarray]] = {}
        for _, rgb, uses in self:
            for position in self.take_abandoned():
                buffers.pop(position, None)
            for position, clip_frame in uses:
                frames = buffers.setdefault(position, [])
                frames.append(rgb)
                clip = self.clips[position]
                if clip_frame == clip.frames - 1:
                    yield clip, buffers.pop(position)
