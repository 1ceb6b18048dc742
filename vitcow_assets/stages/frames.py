"""One ordered decode pass over a source video, handing out the frames clips need."""

import os
from collections.abc import Iterator

import numpy as np

from vitcow_assets.core.clips import ClipWindow, frame_assignments
from vitcow_assets.media.video import iter_frames


class ClipFrameStream:
    """Iterate ``(source_frame, rgb, [(clip_position, clip_frame), ...])`` for every frame a
    clip uses, in source order, from a single decode pass.

    After iteration, ``incomplete`` lists the clips whose frames the file did not deliver (a
    truncated file, a wrong header count).
    """

    def __init__(self, source: str | os.PathLike, clips: list[ClipWindow], native: bool = False) -> None:
        self.source = source
        self.native = native  # decoded av.VideoFrames instead of RGB arrays (see iter_frames)
        self.clips = clips
        self.assignments = frame_assignments(clips)
        self.incomplete: list[ClipWindow] = []

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, list[tuple[int, int]]]]:
        delivered = set()
        for index, rgb in iter_frames(self.source, self.assignments.keys(), native=self.native):
            delivered.add(index)
            yield index, rgb, self.assignments[index]
        self.incomplete = [c for c in self.clips if c.source_end not in delivered]

    def by_clip(self) -> Iterator[tuple[ClipWindow, list[np.ndarray]]]:
        """Yield each complete clip with its frames, holding at most the open clips' frames."""
        buffers: dict[int, list[np.ndarray]] = {}
        for _, rgb, uses in self:
            for position, clip_frame in uses:
                frames = buffers.setdefault(position, [])
                frames.append(rgb)
                clip = self.clips[position]
                if clip_frame == clip.frames - 1:
                    yield clip, buffers.pop(position)
