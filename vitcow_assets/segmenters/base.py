"""The segmenter protocol: the shape of SAM3's video predictor.

A ``Segmenter`` is a loaded model, kept for the life of the process (loading SAM3 costs
tens of seconds); what a clip needs lives in its session. ``start_session(frames)`` opens a session on one clip
(frames are ``(H, W, 3) uint8`` RGB, decoded by the project); the caller adds prompts,
calls ``propagate()`` for per-frame results, and always closes the session (sessions are
context managers). Backends must not hold more than one clip's frames per session.
A backend may ask the decoder for frames at its model's input size instead
(``frame_scale``) and make its session input from those (``prepare_frames``); prompts and
results stay in pixels of the source frame.
"""

import dataclasses
import json
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from vitcow_assets.core.detections import Detections
from vitcow_assets.core.prompts import PromptPlan
from vitcow_assets.core.settings import record
from vitcow_assets.media.video import FrameScale


class SegmenterConfigError(ValueError):
    """A segmenter cannot be built from its settings.

    ``setting`` names the setting to fix (``checkpoint``, ``device``, ...), so that the edge
    that reads configuration (resource, CLI, environment) can say where it comes from.
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


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

    def add_text_prompts(self, texts: Sequence[str], clip_frame: int = 0) -> None:
        """Detect every instance of each of ``texts`` in this one session (replaces the
        session's query); each object's ``Detections.prompts`` entry names the text that found
        it. Only segmenters with ``several_texts_per_session`` take more than one text."""

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
    """A loaded model. Every method the pipeline calls is declared here; ``SegmenterBase``
    gives the ones a backend may have nothing to do for."""

    #: backend name and model, as written into tables (e.g. ``"motion/v3"``)
    name: str
    #: checkpoint file the weights came from, or None
    checkpoint: str | None
    #: whether the backend uses text, box and point prompts at all
    uses_text_prompts: bool
    #: whether one session answers several text queries (``add_text_prompts``): transformers' SAM3
    several_texts_per_session: bool
    #: the backend's settings dataclass (``MotionSettings``, ``Sam3Settings``)
    settings: object
    #: the device the model runs on (``cpu``, ``cuda:1``; ``cpu:0`` a simulated one in tests)
    device: str

    def start_session(self, frames: Sequence[np.ndarray]) -> SegmenterSession: ...

    def frame_scale(self) -> FrameScale | None:
        """The size the decoder should deliver frames at (``ScaledFrame``s, made in one pass
        from the decoded planes, handed to ``prepare_frames``), or None for full-size RGB
        frames."""

    def prepare_frames(self, frames: list[np.ndarray]) -> Sequence[np.ndarray]:
        """One clip's frames (as ``frame_scale`` asked for them) made ready for
        ``start_session``, on the decode thread (so the accelerator's thread only runs the
        model)."""

    def check_plan(self, plan: PromptPlan) -> None:
        """Refuse, before any clip is decoded, a prompt plan the backend cannot run
        (``PromptError``, one line naming the step)."""

    def reset_scene(self) -> None:
        """Forget what was learnt of a scene (called before each video)."""

    def settings_record(self) -> dict[str, str]:
        """The settings in effect, as strings, for the masks table's metadata."""

    def device_report(self) -> str:
        """The device, and on a GPU its free and total memory, for messages."""


class SegmenterBase:
    """Defaults for ``Segmenter``'s optional steps: frames are decoded at full size and go as
    they are, every plan can run, one text per session, there is no scene to forget, the model
    runs on the CPU, and the record is the settings dataclass as JSON (``<family>.settings``)."""

    #: the settings family: the prefix of environment variables, flags and records
    family: str = ""
    settings: object = None
    device: str = "cpu"
    several_texts_per_session: bool = False

    def frame_scale(self) -> FrameScale | None:
        return None

    def prepare_frames(self, frames: list[np.ndarray]) -> Sequence[np.ndarray]:
        return frames

    def check_plan(self, plan: PromptPlan) -> None:
        return None

    def reset_scene(self) -> None:
        return None

    def settings_record(self) -> dict[str, str]:
        return {f"{self.family}.settings": json.dumps(record(self.settings), sort_keys=True)}

    def device_report(self) -> str:
        return self.device
