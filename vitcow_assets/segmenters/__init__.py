"""Segmenter backends behind one protocol (``base``), chosen by name with ``load_segmenter``."""

from vitcow_assets.segmenters.base import (
    FrameResult,
    Segmenter,
    SegmenterConfigError,
    SegmenterSession,
    load_segmenter,
    resolve_backend,
)

__all__ = [
    "FrameResult",
    "Segmenter",
    "SegmenterConfigError",
    "SegmenterSession",
    "load_segmenter",
    "resolve_backend",
]
