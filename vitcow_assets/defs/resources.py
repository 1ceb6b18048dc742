"""Resources: where files live, and the segmenter whose model is loaded once per process."""

import contextlib
import gc
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import PrivateAttr

from vitcow_assets.segmenters import Segmenter, SegmenterSession, load_segmenter, resolve_backend
from vitcow_assets.storage import StorageRoot, VideoLayout, default_home


class VitcowStorage(dg.ConfigurableResource):
    """The storage root (``VITCOW_HOME``) and the landing folder the sensor watches."""

    home: str = str(default_home())
    landing_dir: str | None = None
    settle_seconds: float = 30.0

    def root(self) -> StorageRoot:
        return StorageRoot(Path(self.home))

    def landing(self) -> Path:
        return Path(self.landing_dir).absolute() if self.landing_dir else self.root().landing

    def video(self, key: str) -> VideoLayout:
        return self.root().video(key)


_MODELS: dict[tuple, Segmenter] = {}
_MODELS_LOCK = threading.Lock()


def _cached_segmenter(backend: str, checkpoint: str | None, device: str, sam3_options: tuple = ()) -> Segmenter:
    """One model per process and configuration: runs in the same process share it."""
    key = (backend, checkpoint, device, sam3_options)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_segmenter(backend, checkpoint, device, **dict(sam3_options))
        return _MODELS[key]


def release_accelerator_memory() -> None:
    """Return cached GPU memory to the driver, where torch is loaded and CUDA exists."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


class SegmenterResource(dg.ConfigurableResource):
    """Owns the segmenter: loaded once per process, one session per clip, always closed.

    ``backend``: ``auto`` (SAM3 when a checkpoint is configured, else ``motion``), ``motion``
    or ``sam3``. ``sam3_checkpoint`` defaults to ``$VITCOW_SAM3_CHECKPOINT``. ``device``:
    ``auto``, ``cuda`` or ``cpu`` (SAM3 on CPU is for tests and smoke runs). ``sam3_gpus``:
    more than one GPU index gives SAM3's multi-GPU predictor. Thresholds and
    ``sam3_hotstart_delay``: see ``segmenters.sam3.Sam3Settings``.
    """

    backend: str = "auto"
    sam3_checkpoint: str | None = None
    device: str = "auto"
    default_prompt: str = "cow"
    sam3_gpus: list[int] = []
    sam3_bpe_path: str | None = None
    sam3_score_threshold: float = 0.5
    sam3_new_object_threshold: float = 0.7
    sam3_hotstart_delay: int = 0
    _segmenter: Segmenter | None = PrivateAttr(default=None)

    def _load(self) -> Segmenter:
        options = ()
        if self.resolved_backend == "sam3":
            options = (
                ("gpus", tuple(self.sam3_gpus)),
                ("bpe_path", self.sam3_bpe_path),
                ("score_threshold", self.sam3_score_threshold),
                ("new_object_threshold", self.sam3_new_object_threshold),
                ("hotstart_delay", self.sam3_hotstart_delay),
            )
        return _cached_segmenter(self.backend, self.sam3_checkpoint, self.device, options)

    @property
    def resolved_backend(self) -> str:
        return resolve_backend(self.backend, self.sam3_checkpoint)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Loaded on first use (object_masks), not in steps that only read settings (prompts):
        # under the multiprocess, Celery or Kubernetes executors each step is its own process.
        self._segmenter = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._segmenter = None
        release_accelerator_memory()

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            self._segmenter = self._load()
        return self._segmenter

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
