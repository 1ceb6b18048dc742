"""Resources: where files live, and the segmenter whose model is loaded once per process
(on a device it leases, where the backend has devices).

Both are derived from settings dataclasses (``footage.settings.StorageSettings``,
``segmenters.SegmenterSettings`` and each backend's settings class), so their fields,
defaults, descriptions and environment variables are written once (``core.settings``).
The segmenter resource holds one nested config per backend and one for the linker across
clips (``core.identity.LinkSettings``): ``segmenter: {config: {backend: motion, motion:
{min_contrast: 12}, link: {max_lost_steps: 20}}}`` in the launchpad,
``VITCOW_MOTION_MIN_CONTRAST=12`` and ``VITCOW_LINK_MAX_LOST_STEPS=20`` in the environment.
"""

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import numpy as np
import pydantic
from pydantic import PrivateAttr

from vitcow_assets.core.identity import LinkSettings
from vitcow_assets.core.settings import SettingError, build, describe, from_environ, record
from vitcow_assets.core.source_paths import PathPattern, parse_patterns
from vitcow_assets.defs.config import config_class, from_environment, setting_values
from vitcow_assets.footage.intake_state import IntakeState
from vitcow_assets.footage.layout import StorageRoot, VideoLayout, default_home
from vitcow_assets.footage.settings import StorageSettings
from vitcow_assets.lineage.links import Links
from vitcow_assets.media.hash_cache import cached_folder_sha256, cached_sha256
from vitcow_assets.remote.locations import NamedSource, parse_sources
from vitcow_assets.runtime.device_leases import DevicesBusy
from vitcow_assets.segmenters import (
    BACKENDS,
    FAMILIES,
    Segmenter,
    SegmenterConfigError,
    SegmenterSession,
    SegmenterSettings,
    family_settings,
    resolve_backend,
)
from vitcow_assets.segmenters.model_pool import MODELS, PlacedModel


class _Storage(dg.ConfigurableResource):
    """The storage root, the landing sources the sensor watches, the settle rule, where
    outputs are published (see ``footage.settings.StorageSettings`` for each field)."""

    def settings(self) -> StorageSettings:
        return build(StorageSettings, setting_values(StorageSettings, self))

    def sources(self) -> list[NamedSource]:
        """Every landing source; the local landing folder alone unless `landing_sources`."""
        return parse_sources(self.landing_sources, self.root().landing)

    def local_landing_folders(self) -> list[Path]:
        return [Path(s.location.path) for s in self.sources() if not s.location.is_remote]

    def patterns(self) -> tuple[PathPattern, ...]:
        return parse_patterns(self.path_patterns)

    def root(self) -> StorageRoot:
        return StorageRoot(Path(self.home))

    def intake_state(self) -> IntakeState:
        """The per-file intake state (`intake_db`, else the instance's Postgres, else SQLite
        under the storage root); close it after use."""
        return IntakeState.open(self.intake_db, self.root().home)

    def video(self, key: str) -> VideoLayout:
        return self.root().video(key)

    def url_of(self, path: Path) -> str | None:
        """The http(s) URL of a file under the storage root, where ``public_url`` serves it."""
        if not self.public_url:
            return None
        relative = Path(path).absolute().relative_to(self.root().home)
        return self.public_url.rstrip("/") + "/" + "/".join(quote(part) for part in relative.parts)

    def links(self) -> Links:
        """The addresses of the crop pages (``pages_url``) and the Dagster UI (``dagster_url``)."""
        return Links(self.pages_url, self.dagster_url)


VitcowStorage = config_class(StorageSettings, "VitcowStorage", base=_Storage, doc=_Storage.__doc__)

#: the segmenter resource's nested settings: one per settings family (``motion``, ``sam3``:
#: both SAM3 implementations read it), and the linker's (``link``)
NESTED_SETTINGS = {**{family: family_settings(family) for family in FAMILIES}, "link": LinkSettings}
#: what each nested config holds, where ``settings of the <name> backend`` would not say it
_NESTED_DESCRIPTIONS = {"link": "the linker across clips", "sam3": "settings of the sam3 and sam3-transformers backends"}
#: one config class per nested settings dataclass
NESTED_CONFIGS = {name: config_class(cls, f"{name.capitalize()}Config") for name, cls in NESTED_SETTINGS.items()}

def cached_segmenter(backend: str, settings) -> Segmenter:
    """The process's one model for a backend and settings that lease no device (motion,
    SAM3 on the CPU): runs in the same process share it."""
    return MODELS.take(backend, settings, locks="", wait_s=0).model


def forget_cached_models() -> None:
    """Drop every loaded model of this process and free its devices (benchmarks that load
    several in turn)."""
    MODELS.clear()


def release_accelerator_memory() -> None:
    """Return cached GPU memory to the driver, where torch is loaded and CUDA exists."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def _naming_the_setting(message: str, nested: str, name: str | None) -> str:
    """A refusal of a backend's (or the linker's, or the segmenter's own) settings, saying
    where the setting is set; ``nested`` is a backend, a settings family or ``link``."""
    nested = BACKENDS[nested].family if nested in BACKENDS else nested
    found = next((s for s in describe(NESTED_SETTINGS[nested], nested) if s.name == name), None)
    if found is None:
        found = next((s for s in describe(SegmenterSettings) if s.name == name), None)
    return message if found is None else f"{message} (set {found.env} or {found.flag})"


class _Segmenter(dg.ConfigurableResource):
    """Owns the segmenter: loaded once per process (on first use, in `object_masks`), one
    session per clip, always closed and its accelerator memory freed, errors included.
    A backend with devices (SAM3 on GPUs) places each model on a device it leases for the
    model's life (`segmenters.model_pool`): up to one `object_masks` step per device at
    once, never two models on one device; the step takes the model and gives it back at
    its end. `backend`, `default_prompt`, `prefetch_clips`, `device_wait_s`, `device_locks`:
    see `segmenters.SegmenterSettings`; one nested config per settings family (`motion`;
    `sam3`, read by both SAM3 implementations) holds those backends' settings, and `link` the thresholds of the linker across clips
    (`core.identity.LinkSettings`)."""

    _segmenter: Segmenter | None = PrivateAttr(default=None)
    _placed: PlacedModel | None = PrivateAttr(default=None)

    @property
    def resolved_backend(self) -> str:
        return resolve_backend(self.backend, self.sam3.checkpoint)

    def backend_settings(self):
        """The chosen backend's settings dataclass; a refused value names the field."""
        backend = self.resolved_backend
        cls = BACKENDS[backend].settings_class
        try:
            family = BACKENDS[backend].family
            return build(cls, setting_values(cls, getattr(self, family)), where=lambda name: f"{family}.{name}")
        except SettingError as exc:
            raise SegmenterConfigError(str(exc), exc.setting) from None

    def link_settings(self) -> LinkSettings:
        """The linker's settings; a refused value is a one-line error naming ``link.<field>``."""
        try:
            return build(LinkSettings, setting_values(LinkSettings, self.link), where=lambda name: f"link.{name}")
        except SettingError as exc:
            raise SegmenterConfigError(_naming_the_setting(str(exc), "link", exc.setting), exc.setting) from None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Loaded on first use (object_masks), not in steps that only read settings (prompts):
        # under the multiprocess, Celery or Kubernetes executors each step is its own process.
        self._segmenter = self._placed = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # The model stays in this process's pool (on its leased device) for the next run;
        # what a run leaves on the accelerator (activations, session state) goes back to the driver.
        self.give_back()
        release_accelerator_memory()

    def load(self, root: StorageRoot | None = None, on_wait: Callable[[str], None] | None = None) -> Segmenter:
        """The model for this run: the process's idle one, or loaded now on a device leased
        under ``root``'s lock folder (default: the storage root of ``VITCOW_HOME``), waiting
        up to ``device_wait_s`` for one (``on_wait`` hears why). Every refusal is one line
        naming the setting to fix."""
        if self._segmenter is None:
            backend = self.resolved_backend
            try:
                settings = self.backend_settings()
                if BACKENDS[backend].devices(settings) is None:
                    self._segmenter = cached_segmenter(backend, settings)
                else:
                    locks = self.device_locks or (root or StorageRoot(default_home())).device_locks
                    self._placed = MODELS.take(backend, settings, locks, self.device_wait_s, on_wait)
                    self._segmenter = self._placed.model
            except SegmenterConfigError as exc:
                raise SegmenterConfigError(_naming_the_setting(str(exc), backend, exc.setting), exc.setting) from None
            except DevicesBusy as exc:
                raise SegmenterConfigError(f"{exc} (device_wait_s; set VITCOW_DEVICE_WAIT_S to wait longer)", "device_wait_s") from None
        return self._segmenter

    @property
    def segmenter(self) -> Segmenter:
        return self.load()

    def devices(self) -> list | None:
        """The devices a model of the chosen backend may be placed on (None: no lease); a
        refusal (CUDA asked for but missing, say) is one line naming the setting."""
        backend = self.resolved_backend
        try:
            return BACKENDS[backend].devices(self.backend_settings())
        except SegmenterConfigError as exc:
            raise SegmenterConfigError(_naming_the_setting(str(exc), backend, exc.setting), exc.setting) from None

    def give_back(self) -> None:
        """The model back to the process's pool (its device stays leased while it lives)."""
        if self._placed is not None:
            MODELS.give_back(self._placed)
        self._segmenter = self._placed = None

    def preload(self, root: StorageRoot | None = None, on_wait: Callable[[str], None] | None = None) -> None:
        """Load the model now (a bad setting fails here, in one line), then leave it idle in
        the pool for the runs to take."""
        self.load(root, on_wait)
        self.give_back()

    def device_record(self) -> dict[str, str]:
        """The device the loaded model runs on and, where leased, the device's identity."""
        model = self.segmenter
        key = self._placed.device_key if self._placed is not None else None
        return {"device": model.device, **({"device_id": key} if key else {})}

    def checkpoint_sha256(self, root: StorageRoot | None = None) -> str | None:
        """The sha256 of the chosen backend's checkpoint file or model folder (None without
        one), computed once per file version for every process (``media.hash_cache``, under
        ``root``)."""
        path = getattr(self.backend_settings(), "checkpoint", None)
        cache = (root or StorageRoot(default_home())).checksums
        if path and os.path.isdir(path):  # a transformers model folder
            return cached_folder_sha256(path, cache)
        if not path or not os.path.isfile(path):
            return None
        return cached_sha256(path, cache)

    def settings_record(self) -> dict[str, str]:
        """The segmenter's settings in effect, its device and the prefetch depth, as strings."""
        return {**self.segmenter.settings_record(), **self.device_record(), "prefetch_clips": str(self.prefetch_clips)}

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


SegmenterResource = config_class(
    SegmenterSettings,
    "SegmenterResource",
    base=_Segmenter,
    doc=_Segmenter.__doc__,
    extra={
        name: (config, pydantic.Field(default_factory=config, description=_NESTED_DESCRIPTIONS.get(name, f"settings of the {name} backend")))
        for name, config in NESTED_CONFIGS.items()
    },
)


def storage_from_environment(environ: Mapping[str, str] | None = None, **overrides) -> "VitcowStorage":
    """The storage resource from the environment (``VITCOW_*``); ``overrides`` (not None) win."""
    return from_environment(VitcowStorage, StorageSettings, os.environ if environ is None else environ, **overrides)


def segmenter_from_environment(environ: Mapping[str, str] | None = None, backend_options: Mapping[str, dict] | None = None, **overrides):
    """The segmenter resource from the environment; ``overrides`` (resource fields) and
    ``backend_options`` (``{"motion": {...}, "link": {...}}``: nested settings, e.g. from the
    CLI) win over it."""
    environ = os.environ if environ is None else environ
    values = {**from_environ(SegmenterSettings, environ), **{k: v for k, v in overrides.items() if v is not None}}
    for name, cls in NESTED_SETTINGS.items():
        values[name] = from_environment(NESTED_CONFIGS[name], cls, environ, name, **(backend_options or {}).get(name, {}))
    return SegmenterResource(**values)


def settings_metadata(settings) -> dict:
    """A settings dataclass as a JSON metadata value (an object in the UI, not a string)."""
    return dg.MetadataValue.json(record(settings))
