"""Resources: where files live, and the segmenter whose model is loaded once per process."""

import contextlib
import dataclasses
import gc
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import PrivateAttr

from vitcow_assets.segmenters import (
    Segmenter,
    SegmenterConfigError,
    SegmenterSession,
    load_segmenter,
    resolve_backend,
)
from vitcow_assets.core.source_paths import PathPattern, parse_patterns
from vitcow_assets.remote.locations import NamedSource, parse_sources
from vitcow_assets.segmenters.motion import MotionSettings
from vitcow_assets.segmenters.sam3 import Sam3Settings
from vitcow_assets.footage.layout import DEFAULT_HOME, StorageRoot, VideoLayout


class VitcowStorage(dg.ConfigurableResource):
    """The storage root and the landing folder the sensor watches.

    `home`: the storage root (relative paths are taken from the working directory).
    `landing_dir`: the watched folder (default `<home>/landing`). `landing_sources`: instead,
    one or several (local or remote) sources, as `VITCOW_LANDING` takes them (one URL or
    path, or `name=URL,...`). `settle_seconds`: a landed file is taken once its size and
    mtime have not changed for this long. `publish_to`: where `published_crops` uploads
    outputs (off when unset). `path_patterns`: how farm, camera and recording start are read
    from a path.
    """

    home: str = DEFAULT_HOME
    landing_dir: str | None = None
    landing_sources: str | None = None
    settle_seconds: float = 30.0
    publish_to: str | None = None
    path_patterns: str | None = None

    def sources(self) -> list[NamedSource]:
        """Every landing source; the local landing folder alone unless `landing_sources`."""
        return parse_sources(self.landing_sources, self.landing())

    def local_landing_folders(self) -> list[Path]:
        return [Path(s.location.path) for s in self.sources() if not s.location.is_remote]

    def patterns(self) -> tuple[PathPattern, ...]:
        return parse_patterns(self.path_patterns)

    def root(self) -> StorageRoot:
        return StorageRoot(Path(self.home))

    def landing(self) -> Path:
        return Path(self.landing_dir).absolute() if self.landing_dir else self.root().landing

    def video(self, key: str) -> VideoLayout:
        return self.root().video(key)


_MODELS: dict[tuple, Segmenter] = {}
_MODELS_LOCK = threading.Lock()


def _cached_segmenter(backend: str, checkpoint: str | None, device: str, options: tuple = ()) -> Segmenter:
    """One model per process and configuration (`options`: the backend's own settings, as
    `(name, value)` pairs): runs in the same process share it."""
    key = (backend, checkpoint, device, options)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_segmenter(backend, checkpoint, device, **dict(options))
        return _MODELS[key]


def release_accelerator_memory() -> None:
    """Return cached GPU memory to the driver, where torch is loaded and CUDA exists."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


#: segmenter setting named in a ``SegmenterConfigError`` -> the resource field that sets it
_FIELD_OF_SETTING = {"checkpoint": "sam3_checkpoint", "device": "device", "bpe_path": "sam3_bpe_path", "backend": "backend"}


class SegmenterResource(dg.ConfigurableResource):
    """Owns the segmenter: loaded once per process, one session per clip, always closed.

    `backend`: `auto` (SAM3 when a checkpoint is configured, else `motion`), `motion`
    or `sam3`. `sam3_checkpoint`: the SAM3 checkpoint file. `device`: `auto`,
    `cuda` or `cpu` (SAM3 on CPU is for tests and smoke runs). `sam3_gpus`: more than
    one GPU index gives SAM3's multi-GPU predictor. Thresholds and `sam3_hotstart_delay`:
    see `segmenters.sam3.Sam3Settings`, whose defaults these are, as for `sam3_max_objects`
    (SAM3's per-session object cap, 0: none) and `sam3_compile` (CUDA only).
    `prefetch_clips`: clips decoded and converted ahead of the model on a CPU thread (0:
    decode, segment and write in turn on one thread).
    `motion_*`: the motion backend's settings (`segmenters.motion.MotionSettings`, same
    names without the prefix, whose defaults these are).
    """

    backend: str = "auto"
    sam3_checkpoint: str | None = None
    device: str = Sam3Settings.device
    default_prompt: str = "cow"
    sam3_gpus: list[int] = []
    sam3_bpe_path: str | None = Sam3Settings.bpe_path
    sam3_score_threshold: float = Sam3Settings.score_threshold
    sam3_new_object_threshold: float = Sam3Settings.new_object_threshold
    sam3_hotstart_delay: int = Sam3Settings.hotstart_delay
    sam3_max_objects: int = Sam3Settings.max_objects
    sam3_compile: bool = Sam3Settings.compile
    prefetch_clips: int = 1
    motion_threshold_sigmas: float = MotionSettings.threshold_sigmas
    motion_min_contrast: float = MotionSettings.min_contrast
    motion_polarity: str = MotionSettings.polarity
    motion_min_area_ratio: float = MotionSettings.min_area_ratio
    motion_min_area_px: int = MotionSettings.min_area_px
    motion_min_track_contrast: float = MotionSettings.min_track_contrast
    motion_split_touching: bool = MotionSettings.split_touching
    motion_background_memory: int = MotionSettings.background_memory
    motion_background_samples: int = MotionSettings.background_samples
    _segmenter: Segmenter | None = PrivateAttr(default=None)

    def _backend_options(self) -> tuple:
        """The chosen backend's own settings, as `(name, value)` pairs."""
        if self.resolved_backend == "sam3":
            return (
                ("gpus", tuple(self.sam3_gpus)),
                ("bpe_path", self.sam3_bpe_path),
                ("score_threshold", self.sam3_score_threshold),
                ("new_object_threshold", self.sam3_new_object_threshold),
                ("hotstart_delay", self.sam3_hotstart_delay),
                ("max_objects", self.sam3_max_objects),
                ("compile", self.sam3_compile),
            )
        return tuple(dataclasses.asdict(self.motion_settings()).items())

    def _load(self) -> Segmenter:
        try:
            return _cached_segmenter(self.backend, self.sam3_checkpoint, self.device, self._backend_options())
        except SegmenterConfigError as exc:
            field = _FIELD_OF_SETTING.get(exc.setting or "")
            if field is None:
                raise
            where = ENVIRONMENT.get(field)
            raise SegmenterConfigError(
                f"{exc}: fix the segmenter resource's {field}" + (f" ({where})" if where else ""), exc.setting
            ) from None

    def motion_settings(self) -> MotionSettings:
        """The motion backend's settings from the `motion_*` fields."""
        prefix = "motion_"
        return MotionSettings(**{name[len(prefix):]: getattr(self, name) for name in type(self).model_fields if name.startswith(prefix)})

    @property
    def resolved_backend(self) -> str:
        return resolve_backend(self.backend, self.sam3_checkpoint)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Loaded on first use (object_masks), not in steps that only read settings (prompts):
        # under the multiprocess, Celery or Kubernetes executors each step is its own process.
        self._segmenter = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # The model stays in this process's cache for the next run; what a run leaves on the
        # accelerator (activations, session state) goes back to the driver.
        self._segmenter = None
        release_accelerator_memory()

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            self._segmenter = self._load()
        return self._segmenter

    def settings_record(self) -> dict[str, str]:
        """The segmenter's settings in effect (model settings and prefetch), as strings."""
        record = dict(getattr(self.segmenter, "settings_record", {}))
        record["prefetch_clips"] = str(self.prefetch_clips)
        return record

    @contextlib.contextmanager
    def session(self, frames: Sequence[np.ndarray]) -> Iterator[SegmenterSession]:
        """A predictor session on one clip's frames, closed and its memory freed on any exit."""
        session = self.segmenter.start_session(frames)
        try:
            yield session
        finally:
            try:
                session.close()
            finally:
                release_accelerator_memory()


#: resource field -> environment variable that sets it (read through ``dg.EnvVar`` where
#: Dagster allows: strings and integers; floats and lists are parsed in ``from_environment``)
ENVIRONMENT = {
    "home": "VITCOW_HOME",
    "landing_sources": "VITCOW_LANDING",
    "settle_seconds": "VITCOW_SETTLE_SECONDS",
    "publish_to": "VITCOW_PUBLISH",
    "path_patterns": "VITCOW_PATH_PATTERNS",
    "backend": "VITCOW_BACKEND",
    "sam3_checkpoint": "VITCOW_SAM3_CHECKPOINT",
    "device": "VITCOW_DEVICE",
    "default_prompt": "VITCOW_PROMPT",
    "sam3_gpus": "VITCOW_SAM3_GPUS",
    "sam3_score_threshold": "VITCOW_SAM3_SCORE_THRESHOLD",
    "sam3_new_object_threshold": "VITCOW_SAM3_NEW_OBJECT_THRESHOLD",
    "sam3_hotstart_delay": "VITCOW_SAM3_HOTSTART_DELAY",
    "sam3_max_objects": "VITCOW_SAM3_MAX_OBJECTS",
    "sam3_compile": "VITCOW_SAM3_COMPILE",
    "prefetch_clips": "VITCOW_PREFETCH_CLIPS",
}


class EnvironmentValueError(ValueError):
    """An environment variable holds a value its setting cannot take; names the variable."""


def from_environment(resource: type[dg.ConfigurableResource], resolve: bool = False, **overrides):
    """`resource` with each field whose variable is set (see `ENVIRONMENT`) taken from the
    environment, the others at their defaults; `overrides` (not None) win.

    String and integer fields are `dg.EnvVar`s, read by Dagster when a run starts (and
    shown as such in the UI); with `resolve` (for use outside a Dagster run, e.g. the CLI)
    every value is read now.
    """
    fields: dict = {}
    for name, info in resource.model_fields.items():
        variable = ENVIRONMENT.get(name)
        if name in overrides and overrides[name] is not None:
            fields[name] = overrides[name]
        elif variable and os.environ.get(variable, "").strip():
            fields[name] = _env_value(variable, info.annotation, resolve)
    return resource(**fields)


def _env_value(variable: str, annotation, resolve: bool):
    raw = os.environ[variable].strip()
    try:
        if annotation is float:
            return float(raw)
        if annotation is bool:
            if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes", "on")
        if annotation == list[int]:
            return [int(part) for part in raw.split(",") if part.strip()]
        if annotation is int:
            value = int(raw)
            return value if resolve else dg.EnvVar.int(variable)
    except ValueError:
        raise EnvironmentValueError(f"{variable}={raw!r} is not a valid value") from None
    return raw if resolve else dg.EnvVar(variable)
