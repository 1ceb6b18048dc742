"""Segmenter backends behind one protocol (``base``), registered here by name.

Each backend is a name, its settings dataclass (the one place its settings are written:
environment variables ``VITCOW_<NAME>_<FIELD>``, flags ``--<name>-<field>``, the Dagster
config and the recorded metadata are derived from it, see ``core.settings``) and a loader.
Backends are imported only when loaded, so choosing ``motion`` never imports torch.
"""

import dataclasses
import importlib
from collections.abc import Callable

from vitcow_assets.core.checkpoint_kinds import CheckpointKind
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
    #: ``module:Class`` of the settings dataclass and ``module:function`` of the loader (which
    #: takes the settings, and ``device=`` the leased device's name for a backend with devices)
    settings_path: str
    loader_path: str
    #: ``module:function`` listing the devices a step may lease for the settings, or None
    #: where it leases none (see ``segmenters.model_pool``)
    devices_path: str | None = None
    #: whose settings it reads: the prefix of its environment variables, flags and Dagster
    #: config (two implementations of one model share them: ``sam3`` and ``sam3-transformers``)
    family: str = ""

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)

    @property
    def settings_class(self) -> type:
        return _attribute(self.settings_path)

    @property
    def load(self) -> Callable[..., Segmenter]:
        return _attribute(self.loader_path)

    def devices(self, settings) -> list | None:
        """The devices (``runtime.device_leases.Device``) a model for ``settings`` may be
        placed on, one model each; None: no lease (the model runs on the CPU it shares)."""
        return None if self.devices_path is None else _attribute(self.devices_path)(settings)


def _attribute(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


BACKENDS: dict[str, Backend] = {
    "motion": Backend("motion", "vitcow_assets.segmenters.motion:MotionSettings", "vitcow_assets.segmenters.motion:MotionSegmenter"),
    "sam3": Backend(
        "sam3", "vitcow_assets.segmenters.sam3:Sam3Settings", "vitcow_assets.segmenters.sam3:load_sam3",
        "vitcow_assets.segmenters.sam3:lease_candidates",
    ),
    "sam3-transformers": Backend(
        "sam3-transformers", "vitcow_assets.segmenters.sam3:Sam3Settings",
        "vitcow_assets.segmenters.sam3_transformers:load_sam3_transformers", "vitcow_assets.segmenters.sam3:lease_candidates",
        family="sam3",
    ),
}
CHOICES = ("auto", *BACKENDS)
#: each settings family once, with the settings class its backends read (flags, environment, config)
FAMILIES: dict[str, str] = {b.family: b.settings_path for b in BACKENDS.values()}


def family_settings(family: str) -> type:
    """The settings dataclass of a family (``motion``, ``sam3``)."""
    return _attribute(FAMILIES[family])


@dataclasses.dataclass(frozen=True)
class SegmenterSettings:
    """Which backend segments, with what default query, fed how far ahead; each backend's own
    settings are its settings class (``BACKENDS``)."""

    backend: str = setting(
        "auto", "sam3 (Meta's sam3 package, SAM3 or SAM 3.1), sam3-transformers (transformers' Sam3VideoModel), motion (CPU, no "
        "weights) or auto (with a SAM3 checkpoint: sam3-transformers for a transformers model, else sam3; without one: motion)",
        choices=CHOICES,
    )
    default_prompt: str = setting("cow", "text prompt when a video has no prompt file", env="VITCOW_PROMPT", flag="--prompt")
    prefetch_clips: int = setting(1, "clips decoded ahead of the model on a CPU thread (0: decode, segment and write in turn)")
    device_wait_s: float = setting(
        600.0, "seconds a step waits for a free device while every one holds another model (then it fails, naming the holders)"
    )
    device_locks: str | None = setting(
        None, "folder of the per-device lock files, shared by every process of the host (default: locks/devices under the storage root)"
    )

    def __post_init__(self) -> None:
        check("backend", self.backend in CHOICES, f"backend must be one of {', '.join(CHOICES)}, got {self.backend!r}")
        check("default_prompt", bool(self.default_prompt.strip()), "default_prompt must not be empty")
        check("prefetch_clips", self.prefetch_clips >= 0, f"prefetch_clips must be >= 0, got {self.prefetch_clips}")
        check("device_wait_s", self.device_wait_s >= 0, f"device_wait_s must be >= 0, got {self.device_wait_s}")


def resolve_backend(backend: str, sam3_checkpoint: str | None) -> str:
    """``auto`` is, with a SAM3 checkpoint configured, ``sam3-transformers`` when it is a
    transformers model (a folder with ``config.json``, or its ``model.safetensors``) and
    ``sam3`` otherwise (a file that cannot be told apart goes to ``sam3``, which says why it
    cannot load it); without a checkpoint, ``motion``."""
    if backend not in CHOICES:
        raise SegmenterConfigError(f"backend must be one of {', '.join(CHOICES)}, got {backend!r}", setting="backend")
    if backend == "auto":
        if not sam3_checkpoint:
            return "motion"
        return "sam3-transformers" if is_transformers_checkpoint(sam3_checkpoint) else "sam3"
    return backend


def is_transformers_checkpoint(path: str) -> bool:
    """Whether ``path`` holds transformers' SAM3 layout (told from its tensor names, once per
    file version)."""
    from vitcow_assets.segmenters.checkpoints import CheckpointError, kind_of

    try:
        return kind_of(path) is CheckpointKind.TRANSFORMERS
    except CheckpointError:
        return False


def load_segmenter(backend: str, settings=None) -> Segmenter:
    """Build the segmenter of ``backend`` (not ``auto``) from its settings (defaults if None)."""
    chosen = BACKENDS[backend]
    return chosen.load(settings if settings is not None else chosen.settings_class())


__all__ = [
    "BACKENDS",
    "CHOICES",
    "FAMILIES",
    "Backend",
    "FrameResult",
    "PromptError",
    "Segmenter",
    "SegmenterBase",
    "SegmenterConfigError",
    "SegmenterSession",
    "SegmenterSettings",
    "family_settings",
    "is_transformers_checkpoint",
    "load_segmenter",
    "resolve_backend",
]
