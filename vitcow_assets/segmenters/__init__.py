"""Segmenter backends behind one protocol (``base``), registered here by name.

Each backend is a name, its settings dataclass (the one place its settings are written:
environment variables ``VITCOW_<NAME>_<FIELD>``, flags ``--<name>-<field>``, the Dagster
config and the recorded metadata are derived from it, see ``core.settings``) and a loader.
Backends are imported only when loaded, so choosing ``motion`` never imports torch.
"""

import dataclasses
import importlib
from collections.abc import Callable

from vitcow_assets.core.settings import check, setting

from vitcow_assets.segmenters.base import (
    FrameResult,
    PromptError,
    Segmenter,
    SegmenterBase,
    SegmenterConfigError,
    SegmenterSession,
)


@dataclasses.dataclass(frozen=True)
class Backend:
    name: str
    #: ``module:Class`` of the settings dataclass and ``module:function`` of the loader
    settings_path: str
    loader_path: str

    @property
    def settings_class(self) -> type:
        return _attribute(self.settings_path)

    @property
    def load(self) -> Callable[[object], Segmenter]:
        return _attribute(self.loader_path)


def _attribute(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


BACKENDS: dict[str, Backend] = {
    "motion": Backend("motion", "vitcow_assets.segmenters.motion:MotionSettings", "vitcow_assets.segmenters.motion:MotionSegmenter"),
    "sam3": Backend("sam3", "vitcow_assets.segmenters.sam3:Sam3Settings", "vitcow_assets.segmenters.sam3:load_sam3"),
}
CHOICES = ("auto", *BACKENDS)


@dataclasses.dataclass(frozen=True)
class SegmenterSettings:
    """Which backend segments, with what default query, fed how far ahead; each backend's own
    settings are its settings class (``BACKENDS``)."""

    backend: str = setting("auto", "sam3 (needs a SAM3 checkpoint), motion (CPU, no weights) or auto (sam3 when a checkpoint is set)", choices=CHOICES)
    default_prompt: str = setting("cow", "text prompt when a video has no prompt file", env="VITCOW_PROMPT", flag="--prompt")
    prefetch_clips: int = setting(1, "clips decoded ahead of the model on a CPU thread (0: decode, segment and write in turn)")

    def __post_init__(self) -> None:
        check("backend", self.backend in CHOICES, f"backend must be one of {', '.join(CHOICES)}, got {self.backend!r}")
        check("default_prompt", bool(self.default_prompt.strip()), "default_prompt must not be empty")
        check("prefetch_clips", self.prefetch_clips >= 0, f"prefetch_clips must be >= 0, got {self.prefetch_clips}")


def resolve_backend(backend: str, sam3_checkpoint: str | None) -> str:
    """``auto`` is ``sam3`` when a SAM3 checkpoint is configured, else ``motion``."""
    if backend not in CHOICES:
        raise SegmenterConfigError(f"backend must be one of {', '.join(CHOICES)}, got {backend!r}", setting="backend")
    if backend == "auto":
        return "sam3" if sam3_checkpoint else "motion"
    return backend


def load_segmenter(backend: str, settings=None) -> Segmenter:
    """Build the segmenter of ``backend`` (not ``auto``) from its settings (defaults if None)."""
    chosen = BACKENDS[backend]
    return chosen.load(settings if settings is not None else chosen.settings_class())


__all__ = [
    "BACKENDS",
    "CHOICES",
    "Backend",
    "FrameResult",
    "PromptError",
    "Segmenter",
    "SegmenterBase",
    "SegmenterConfigError",
    "SegmenterSession",
    "SegmenterSettings",
    "load_segmenter",
    "resolve_backend",
]
