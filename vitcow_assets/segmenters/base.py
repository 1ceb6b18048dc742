"""The segmenter protocol: the shape of SAM3's video predictor.

A ``Segmenter`` is a loaded model. ``start_session(frames)`` opens a session on one clip
(frames are ``(H, W, 3) uint8`` RGB, decoded by the project); the caller adds prompts,
calls ``propagate()`` for per-frame results, and always closes the session (sessions are
context managers). Backends must not hold more than one clip's frames per session.
"""

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from vitcow_assets.core.tracks import Detections

BACKENDS = ("auto", "motion", "sam3")
CHECKPOINT_ENV = "VITCOW_SAM3_CHECKPOINT"


class SegmenterConfigError(ValueError):
    """A segmenter cannot be built from its settings; the message names the setting to fix."""


@dataclasses.dataclass(frozen=True)
class FrameResult:
    """Detections of one clip frame (``clip_frame`` counts from 0)."""

    clip_frame: int
    detections: Detections


class PromptError(ValueError):
    """A prompt the session cannot apply (e.g. an object id it does not have)."""


@runtime_checkable
class SegmenterSession(Protocol):
    """One clip. Coordinates are pixels of the clip's frames; ids are the session's own."""

    def add_text_prompt(self, text: str, clip_frame: int = 0) -> None:
        """Detect every instance of ``text`` (replaces the session's query)."""

    def add_box_prompt(self, xyxy: Sequence[float], clip_frame: int, text: str | None = None) -> None:
        """Detect things like the boxed one (a visual exemplar), optionally with text."""

    def add_point_prompt(self, points: Sequence[Sequence[float]], labels: Sequence[int], clip_frame: int, object_id: int) -> None:
        """Add (new id) or refine (existing id) one object with positive (1) / negative (0) clicks."""

    def remove_object(self, object_id: int) -> None: ...

    def reset(self) -> None:
        """Forget every prompt and object of the session."""

    def propagate(self) -> Iterator[FrameResult]:
        """Per-frame results over the whole clip, in clip order, with every prompt so far."""

    def close(self) -> None: ...

    def __enter__(self) -> "SegmenterSession": ...

    def __exit__(self, *exc) -> None: ...


@runtime_checkable
class Segmenter(Protocol):
    #: backend name and model, as written into tables (e.g. ``"motion/v1"``)
    name: str
    #: checkpoint file the weights came from, or None
    checkpoint: str | None
    #: whether the backend uses text prompts at all
    uses_text_prompts: bool

    def start_session(self, frames: Sequence[np.ndarray]) -> SegmenterSession: ...

    def release(self) -> None:
        """Free what the model holds (GPU memory included)."""


def resolve_backend(backend: str, checkpoint: str | None) -> str:
    """``auto`` is ``sam3`` when a checkpoint is configured, else ``motion``."""
    if backend not in BACKENDS:
        raise SegmenterConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "sam3" if checkpoint else "motion"
    return backend


def load_segmenter(backend: str, checkpoint: str | None = None, device: str = "auto", motion=None, **sam3_options) -> Segmenter:
    """Build the segmenter a backend name asks for (``motion``: a ``MotionSettings`` or None
    for its defaults; ``sam3_options``: see ``Sam3Settings``)."""
    resolved = resolve_backend(backend, checkpoint)
    if resolved == "motion":
        from vitcow_assets.segmenters.motion import MotionSegmenter, MotionSettings

        return MotionSegmenter(motion or MotionSettings())
    if not checkpoint:
        raise SegmenterConfigError(
            f"the sam3 backend needs a checkpoint: set {CHECKPOINT_ENV} (or the segmenter resource's "
            "sam3_checkpoint) to the path of a SAM3 .pt file"
        )
    if not os.path.isfile(checkpoint):
        raise SegmenterConfigError(
            f"SAM3 checkpoint {checkpoint!r} does not exist or is not a file: fix {CHECKPOINT_ENV}"
        )
    from vitcow_assets.segmenters.sam3 import load_sam3

    return load_sam3(checkpoint, device=device, **sam3_options)
