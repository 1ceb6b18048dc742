"""Segmenter backends behind one protocol (``base``), registered here by name.

Backends are imported only when loaded, so choosing ``motion`` never imports torch.
"""

from collections.abc import Callable

from vitcow_assets.segmenters.base import (
    FrameResult,
    PromptError,
    Segmenter,
    SegmenterConfigError,
    SegmenterSession,
)


def _load_motion(checkpoint: str | None, device: str, **options) -> Segmenter:
    from vitcow_assets.segmenters.motion import MotionSegmenter, MotionSettings

    return MotionSegmenter(MotionSettings(**options))


def _load_sam3(checkpoint: str | None, device: str, **options) -> Segmenter:
    from vitcow_assets.segmenters.sam3 import load_sam3

    return load_sam3(checkpoint, device=device, **options)


#: backend name -> loader(checkpoint, device, **backend options)
LOADERS: dict[str, Callable[..., Segmenter]] = {"motion": _load_motion, "sam3": _load_sam3}
BACKENDS = ("auto", *LOADERS)


def resolve_backend(backend: str, checkpoint: str | None) -> str:
    """``auto`` is ``sam3`` when a checkpoint is configured, else ``motion``."""
    if backend not in BACKENDS:
        raise SegmenterConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}", setting="backend")
    if backend == "auto":
        return "sam3" if checkpoint else "motion"
    return backend


def load_segmenter(backend: str, checkpoint: str | None = None, device: str = "auto", **options) -> Segmenter:
    """Build the segmenter a backend name asks for; ``options`` are the backend's own settings
    (``MotionSettings`` or ``Sam3Settings`` fields)."""
    return LOADERS[resolve_backend(backend, checkpoint)](checkpoint, device, **options)


__all__ = [
    "BACKENDS",
    "FrameResult",
    "PromptError",
    "Segmenter",
    "SegmenterConfigError",
    "SegmenterSession",
    "load_segmenter",
    "resolve_backend",
]
