"""What a SAM3-family checkpoint is, told from the names of its tensors: pure.

The layouts seen in the wild (SAM3_NOTES.md, the sam3 repository, transformers):

- **SAM3 release** (``sam3.pt``, or the same tensors as ``.safetensors`` from mirrors): one
  flat state dict (or ``{"model": ...}``) with ``detector.*`` and ``tracker.*`` keys, which
  ``sam3``'s ``build_sam3_video_model`` loads;
- **transformers** (``model.safetensors`` with ``config.json``, for transformers'
  ``Sam3VideoModel``): ``detector_model.*``, ``tracker_model.*``, ``tracker_neck.*``;
- **SAM 3.1 multiplex** (``sam3.1_multiplex.pt``): ``detector.*`` with the tracker under
  ``tracker.model.*`` and the tri-neck's ``interactive_convs`` / ``propagation_convs``;
- anything else is not a SAM3 checkpoint.

``checkpoint_kind(keys)`` names the layout; ``key_differences(expected, found)`` lists the
first few missing and unexpected keys for a one-line message. No I/O, no torch: the caller
reads the names (``segmenters.checkpoints``).
"""

import enum
from collections.abc import Iterable

#: keys shown in a message, of each of missing and unexpected
SHOWN_KEYS = 3


class CheckpointKind(enum.Enum):
    SAM3_RELEASE = "SAM3 release checkpoint"
    TRANSFORMERS = "Hugging Face transformers SAM3 model"
    SAM31_MULTIPLEX = "SAM 3.1 multiplex checkpoint"
    NOT_SAM3 = "not a SAM3 checkpoint"


RELEASE_PREFIXES = ("detector.", "tracker.")
TRANSFORMERS_PREFIXES = ("detector_model.", "tracker_model.", "tracker_neck.")
#: what only SAM 3.1's multiplex layout has
MULTIPLEX_MARKS = ("tracker.model.", ".interactive_convs.", ".propagation_convs.", "multiplex")


def checkpoint_kind(keys: Iterable[str]) -> CheckpointKind:
    """The layout of a state dict with these tensor names (after unwrapping ``{"model": ...}``)."""
    names = list(keys)
    if any(name.startswith(TRANSFORMERS_PREFIXES[0]) for name in names):
        return CheckpointKind.TRANSFORMERS
    if any(name.startswith("tracker.model.") or any(mark in name for mark in MULTIPLEX_MARKS[1:]) for name in names):
        return CheckpointKind.SAM31_MULTIPLEX
    detector = any(name.startswith(RELEASE_PREFIXES[0]) for name in names)
    tracker = any(name.startswith(RELEASE_PREFIXES[1]) for name in names)
    return CheckpointKind.SAM3_RELEASE if detector and tracker else CheckpointKind.NOT_SAM3


def shown(keys: list[str], limit: int = SHOWN_KEYS) -> str:
    """``a, b, c (+12 more)``: the first few names of a sorted list, and how many are left."""
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def key_differences(expected: Iterable[str], found: Iterable[str]) -> str:
    """``missing ...; unexpected ...``: the first few of each, sorted; empty if none differ."""
    expected, found = set(expected), set(found)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    parts = ([f"missing {shown(missing)}"] if missing else []) + ([f"unexpected {shown(unexpected)}"] if unexpected else [])
    return "; ".join(parts)
