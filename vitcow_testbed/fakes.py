"""The one segmenter test double: ``FakeSegmenter``.

It finds what ``detect(frames, clip_frame)`` says on each frame (nothing by default), or,
with ``inner``, whatever a real segmenter finds (the motion backend, say), and counts the
sessions it opened and closed. Faults on purpose: ``fail_on`` (the N-th session's
``propagate`` raises ``error``), ``fits`` (a session of more frames raises torch's real
``torch.cuda.OutOfMemoryError``), ``delay_s`` (each session sleeps first: a slow GPU step).

Unit tests of stages and assets use it; the real backends are tested on their own
(``segmenters/``) and end to end.
"""

import contextlib
import time
from collections.abc import Callable, Sequence

import numpy as np

from vitcow_assets.core.detections import Detections
from vitcow_assets.segmenters.base import FrameResult, SegmenterBase

Detect = Callable[[Sequence[np.ndarray], int], Detections]


def one_box(xyxy, score: float = 1.0) -> Detect:
    """A ``detect`` giving one object (id 0) with a box-shaped mask at ``xyxy`` on every frame."""

    def detect(frames, clip_frame: int) -> Detections:
        h, w = frames[0].shape[:2]
        x1, y1, x2, y2 = (int(v) for v in xyxy)
        masks = np.zeros((1, h, w), bool)
        masks[0, max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
        return Detections([xyxy], masks, [score], [0])

    return detect


class FakeSession:
    def __init__(self, owner: "FakeSegmenter", frames: Sequence[np.ndarray], number: int) -> None:
        self.owner, self.frames, self.number = owner, frames, number
        self.inner = owner.inner.start_session(frames) if owner.inner is not None else None
        self.prompts: list = []
        self.closed = False

    def add_text_prompt(self, text: str, clip_frame: int = 0) -> None:
        self.prompts.append(("text", text, clip_frame))

    def add_text_prompts(self, texts, clip_frame: int = 0) -> None:
        self.prompts.append(("texts", tuple(texts), clip_frame))

    def add_box_prompt(self, xyxy, clip_frame: int, text: str | None = None) -> None:
        self.prompts.append(("box", tuple(xyxy), clip_frame))

    def add_point_prompt(self, points, labels, clip_frame: int, object_id: int) -> None:
        self.prompts.append(("points", object_id, clip_frame))

    def remove_object(self, object_id: int) -> None:
        self.prompts.append(("remove", object_id))
        if self.inner is not None:
            self.inner.remove_object(object_id)

    def reset(self) -> None:
        self.prompts.clear()

    def propagate(self):
        owner = self.owner
        time.sleep(owner.delay_s)
        if owner.fits is not None and len(self.frames) > owner.fits:
            import torch

            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.number == owner.fail_on:
            raise owner.error
        if self.inner is not None:
            yield from self.inner.propagate()
            return
        for i in range(len(self.frames)):
            yield FrameResult(i, owner.detect(self.frames, i))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.owner.closed += 1
            if self.inner is not None:
                self.inner.close()

    def __enter__(self) -> "FakeSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FakeSegmenter(SegmenterBase):
    family = "fake"
    checkpoint = None
    uses_text_prompts = True

    def __init__(self, detect: Detect | None = None, inner=None, fail_on: int | None = None, error: BaseException | None = None, fits: int | None = None, delay_s: float = 0.0, name: str | None = None) -> None:
        self.detect = detect or (lambda frames, i: Detections.empty(*frames[0].shape[:2]))
        self.inner, self.fail_on, self.fits, self.delay_s = inner, fail_on, fits, delay_s
        self.name = name or (inner.name if inner is not None else "fake/v0")
        self.error = error if error is not None else RuntimeError("model failed")
        self.opened = self.closed = 0
        self.sessions: list[FakeSession] = []
        if inner is not None:
            self.uses_text_prompts = inner.uses_text_prompts

    @property
    def open_now(self) -> int:
        return self.opened - self.closed

    def start_session(self, frames: Sequence[np.ndarray]) -> FakeSession:
        self.opened += 1
        session = FakeSession(self, frames, self.opened)
        self.sessions.append(session)
        return session

    @contextlib.contextmanager
    def open_session(self, frames: Sequence[np.ndarray]):
        """``start_session`` as the stage opens sessions (``MaskJob.open_session``)."""
        with self.start_session(frames) as session:
            yield session

    def reset_scene(self) -> None:
        if self.inner is not None:
            self.inner.reset_scene()

    def settings_record(self) -> dict[str, str]:
        return self.inner.settings_record() if self.inner is not None else {"fake.settings": "{}"}
