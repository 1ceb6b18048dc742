"""The models of this process, each on a device it leases (``runtime.device_leases``): a step
takes a model for its whole life and gives it back at its end.

Loading SAM3 costs tens of seconds, so a model outlives the step that loaded it and serves
the process's later steps; its device stays leased while it lives, so that **one device
never holds two models**, whichever processes want it:

- a step takes this process's idle model for the same backend and settings if there is one;
- else, if an idle model of other settings holds a device, that model is dropped and its
  device serves the new one;
- else it leases a free device (every visible GPU is a candidate, in order) and loads a
  model there, waiting up to ``wait_s`` while every device is leased (then ``DevicesBusy``);
- ``give_back`` makes the model idle again; ``clear`` drops every model and frees every
  device. A process that ends frees its devices whatever way it ends.

Backends without devices (the motion backend, SAM3 on the CPU) keep one shared model per
settings, as before: nothing is leased. No Dagster: the segmenter resource calls this.
"""

import dataclasses
import gc
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from vitcow_assets.runtime.device_leases import DeviceLease, Waiting, lease_free_device
from vitcow_assets.segmenters import BACKENDS
from vitcow_assets.segmenters.base import Segmenter


@dataclasses.dataclass(eq=False)
class PlacedModel:
    """A loaded model and the device lease it lives under (None: no lease)."""

    backend: str
    settings: object
    model: Segmenter
    lease: DeviceLease | None
    busy: bool = False

    @property
    def device(self) -> str:
        return self.lease.device.name if self.lease is not None else getattr(self.model, "device", "cpu")

    @property
    def device_key(self) -> str | None:
        """The leased device's identity (a GPU's UUID), None without a lease."""
        return self.lease.device.key if self.lease is not None else None


class ModelPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._placed: list[PlacedModel] = []

    def take(self, backend: str, settings, locks: str | Path, wait_s: float, on_wait: Callable[[str], None] | None = None) -> PlacedModel:
        """A model for ``backend`` and ``settings``, this caller's until ``give_back``."""
        chosen = BACKENDS[backend]
        devices = chosen.devices(settings)
        if devices is None:
            return self._shared(backend, settings)
        waiting = Waiting(devices, locks, wait_s, on_wait)
        while True:  # this process's idle models first, then a free device, until the wait ends
            idle, spare = self._reserve(backend, settings, devices)
            if idle is not None:
                return idle
            lease = self._drop(spare) if spare is not None else lease_free_device(devices, locks)
            if lease is not None:
                break
            waiting.check()
        try:
            model = load_model(backend, settings, lease.device.name)
        except BaseException:
            lease.release()
            raise
        placed = PlacedModel(backend, settings, model, lease, busy=True)
        with self._lock:
            self._placed.append(placed)
        return placed

    def _reserve(self, backend: str, settings, devices) -> tuple[PlacedModel | None, PlacedModel | None]:
        """An idle model of these settings, else an idle model of others on one of ``devices``
        (whose device the new model can have): reserved, so no other caller takes it meanwhile."""
        with self._lock:
            idle = [p for p in self._placed if not p.busy and p.lease is not None]
            same = next((p for p in idle if (p.backend, p.settings) == (backend, settings)), None)
            spare = None if same is not None else next((p for p in idle if p.lease.device in devices), None)
            for found in (same, spare):
                if found is not None:
                    found.busy = True
            return same, spare

    def _shared(self, backend: str, settings) -> PlacedModel:
        """The one model of this process for ``settings`` without a device (loaded once)."""
        with self._lock:
            found = next((p for p in self._placed if p.lease is None and (p.backend, p.settings) == (backend, settings)), None)
            if found is None:
                found = PlacedModel(backend, settings, load_model(backend, settings), None)
                self._placed.append(found)
            return found

    def _drop(self, placed: PlacedModel) -> DeviceLease:
        """Forget ``placed``'s model (its memory goes with the last reference); its lease stays held."""
        with self._lock:
            self._placed.remove(placed)
        lease, placed.model = placed.lease, None
        _release_accelerator_memory()
        return lease

    def give_back(self, placed: PlacedModel) -> None:
        with self._lock:
            placed.busy = False

    def placed(self) -> list[PlacedModel]:
        with self._lock:
            return list(self._placed)

    def clear(self) -> None:
        """Drop every model and free every device (benchmarks that load several in turn)."""
        with self._lock:
            placed, self._placed = self._placed, []
        for item in placed:
            item.model = None
        _release_accelerator_memory()
        for item in placed:
            if item.lease is not None:
                item.lease.release()


def load_model(backend: str, settings, device: str | None = None) -> Segmenter:
    """The one call that builds a model: ``backend``'s loader on ``settings`` (and on
    ``device``, the leased device's name, for a backend with devices)."""
    load = BACKENDS[backend].load
    return load(settings) if device is None else load(settings, device=device)


def _release_accelerator_memory() -> None:
    """Collect a dropped model (SAM3 freezes what is alive after loading, ``gc.freeze``: a
    dropped model's reference cycles are collected only once unfrozen) and return cached GPU
    memory to the driver, where torch is loaded and CUDA exists."""
    gc.unfreeze()
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


#: the pool of this process
MODELS = ModelPool()
