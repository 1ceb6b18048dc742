"""Where everything lives under the storage root (``VITCOW_HOME``).

```
<home>/landing/                 default landing folder watched by the sensor
<home>/registry/<key>.json      one registered source video per partition key (index/: by path and sha256)
<home>/intake/intake.db         the landing sensor's intake state (footage.intake_state), unless elsewhere
<home>/videos/<key>/            every output of one partition
    raw_video.json              probe + sha256 + where the source came from
    frame_times.npy             presentation time of every source frame (seconds)
    prompts.json                the prompt plan the masks were made with
    source.<ext>                the registered bytes (hard link or copy)
    clips/clips.parquet         clips manifest (+ cNNNNN.mp4 clip files when written)
    masks/object_masks.parquet  one row per (clip, frame, object)
    crops/crops.parquet         crop manifest (+ <clip_id>/objNNNN.mp4)
    tracks/tracks.parquet       one row per animal (track_id): its clips, frames and crops
    previews/contact_sheet.png  contact sheet with masks drawn
<home>/catalog/crops.parquet    the crop catalog (every video's crops)
<home>/labels/                  labels.db (the label database; see ``labelling.store``)
    behaviour_labels.parquet    the label snapshot (+ orphaned_labels.parquet beside it)
    taxonomy.json               the taxonomy in force when it was last materialized
    trimmed_crops.parquet       the trimmed copies of segment labels (+ trimmed/*.mp4)
<home>/datasets/                the training-set assets' tables (``DatasetLayout``)
    pretraining_set.parquet     + .json: the step's report (what the crop filter dropped)
    behaviour_splits.parquet    + .json: the label resolution and split reports
    efficiency_subsets.parquet  + .json: sizes, repeats, seed, notes
    stats/<table>.parquet       statistics tables, stats/classes.png the chart
    export/                     the default export folder
    builds/                     the index of dataset builds: <fingerprint>.parquet, the crops of each
<home>/embeddings/<checkpoint>/crop_embeddings.parquet   one checkpoint's embedding of every crop
<home>/evaluation/              scores (``EvaluationLayout``), per dataset build (its fingerprint)
    checkpoints/<checkpoint>/<fingerprint>/   retrieval and linear-probe results of a checkpoint
    predictions/<name>/<fingerprint>/         the scorecard of an imported predictions file
<home>/dagster/                 default DAGSTER_HOME
```
Partition keys are sanitised so that no key can name a path outside ``<home>``.
"""

import dataclasses
import hashlib
import os
import re
from pathlib import Path

from vitcow_assets.core.names import MAX_CHARS, plain_name

HOME_ENV = "VITCOW_HOME"
DEFAULT_HOME = "vitcow_home"
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts"})
_KEY_MAX = MAX_CHARS
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def partition_key_for(file_name: str) -> str:
    """Partition key from a file name: the stem, accents folded, anything else made ``_``.

    Names with nothing usable left get a short hash of the name, so every name gives a key.
    """
    stem = Path(file_name).stem
    key = plain_name(stem, _KEY_MAX)
    if not key:
        key = "video"
    if key != stem:
        # Different raw names may fold to the same text: keep them apart.
        key = f"{key}-{hashlib.sha256(stem.encode()).hexdigest()[:6]}"
    return key


def check_partition_key(key: str) -> str:
    if not _KEY_PATTERN.match(key) or len(key) > _KEY_MAX + 20:
        raise ValueError(f"invalid partition key {key!r}: letters, digits, '.', '_' and '-' only")
    return key


@dataclasses.dataclass(frozen=True)
class VideoLayout:
    """Paths of one partition's outputs."""

    root: Path

    @property
    def raw_video_json(self) -> Path:
        return self.root / "raw_video.json"

    @property
    def frame_times(self) -> Path:
        return self.root / "frame_times.npy"

    def source_copy(self, suffix: str) -> Path:
        return self.root / f"source{suffix.lower()}"

    @property
    def prompts_json(self) -> Path:
        return self.root / "prompts.json"

    @property
    def clips_dir(self) -> Path:
        return self.root / "clips"

    @property
    def clips_table(self) -> Path:
        return self.clips_dir / "clips.parquet"

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    @property
    def masks_table(self) -> Path:
        return self.masks_dir / "object_masks.parquet"

    @property
    def crops_dir(self) -> Path:
        return self.root / "crops"

    @property
    def crops_table(self) -> Path:
        return self.crops_dir / "crops.parquet"

    @property
    def tracks_dir(self) -> Path:
        return self.root / "tracks"

    @property
    def tracks_table(self) -> Path:
        return self.tracks_dir / "tracks.parquet"

    @property
    def previews_dir(self) -> Path:
        return self.root / "previews"

    @property
    def contact_sheet(self) -> Path:
        return self.previews_dir / "contact_sheet.png"


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """Paths of the training-set assets' tables: each step's table and its JSON report."""

    root: Path

    @property
    def pretraining_table(self) -> Path:
        return self.root / "pretraining_set.parquet"

    @property
    def pretraining_report(self) -> Path:
        return self.root / "pretraining_set.json"

    @property
    def splits_table(self) -> Path:
        return self.root / "behaviour_splits.parquet"

    @property
    def splits_report(self) -> Path:
        return self.root / "behaviour_splits.json"

    @property
    def subsets_table(self) -> Path:
        return self.root / "efficiency_subsets.parquet"

    @property
    def subsets_report(self) -> Path:
        return self.root / "efficiency_subsets.json"

    @property
    def stats_dir(self) -> Path:
        return self.root / "stats"

    def stats_table(self, name: str) -> Path:
        return self.stats_dir / f"{name}.parquet"

    @property
    def stats_chart(self) -> Path:
        return self.stats_dir / "classes.png"

    @property
    def default_export(self) -> Path:
        """Where an export goes when its settings name no folder."""
        return self.root / "export"


@dataclasses.dataclass(frozen=True)
class EvaluationLayout:
    """Paths of one evaluation's results on one dataset build: a checkpoint's retrieval and
    probe, or an imported predictions file's scorecard. Each table is Parquet, each chart a
    PNG, each report JSON (settings, notes, what was read)."""

    root: Path

    def table(self, name: str) -> Path:
        """A result table: ``retrieval``, ``probe_runs``, ``probe_classes``, ``probe_confusion``,
        ``probe_curve``, ``scorecard``, ``scorecard_classes``, ``scorecard_confusion``, ``predictions``."""
        return self.root / f"{name}.parquet"

    def chart(self, name: str) -> Path:
        """A chart: ``retrieval`` (Hit@k), ``probe_curve``, ``probe_confusion``, ``scorecard_confusion``."""
        return self.root / f"{name}.png"

    def report(self, name: str) -> Path:
        """What an evaluation read and noticed: ``retrieval``, ``probe`` or ``scorecard``."""
        return self.root / f"{name}.json"


@dataclasses.dataclass(frozen=True)
class StorageRoot:
    home: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).absolute())

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def registry(self) -> Path:
        return self.home / "registry"

    @property
    def videos(self) -> Path:
        return self.home / "videos"

    @property
    def catalog_table(self) -> Path:
        """The crop catalog: one row per crop across every video."""
        return self.home / "catalog" / "crops.parquet"

    @property
    def labels_dir(self) -> Path:
        """The label database (SQLite), its snapshots and the trimmed crops."""
        return self.home / "labels"

    @property
    def label_snapshot(self) -> Path:
        """The ``behaviour_labels`` snapshot: the current labels, each with its crop's lineage."""
        return self.labels_dir / "behaviour_labels.parquet"

    @property
    def orphaned_labels(self) -> Path:
        """Labels whose crop is no longer in the catalog, kept apart by the snapshot."""
        return self.labels_dir / "orphaned_labels.parquet"

    @property
    def taxonomy_snapshot(self) -> Path:
        """The taxonomy in force (``label_taxonomy``), as JSON."""
        return self.labels_dir / "taxonomy.json"

    @property
    def trimmed_table(self) -> Path:
        """One row per trimmed copy of a segment-labelled crop (``trimmed_crops``)."""
        return self.labels_dir / "trimmed_crops.parquet"

    @property
    def trimmed_dir(self) -> Path:
        """The trimmed copies themselves."""
        return self.labels_dir / "trimmed"

    @property
    def datasets_dir(self) -> Path:
        """The training-set assets' tables (exports go where their settings say)."""
        return self.home / "datasets"

    @property
    def dataset_builds(self) -> Path:
        """The index of dataset builds (``lineage.builds``): one Parquet file per build."""
        return self.datasets_dir / "builds"

    @property
    def datasets(self) -> DatasetLayout:
        return DatasetLayout(self.datasets_dir)

    @property
    def embeddings_dir(self) -> Path:
        """The ``crop_embeddings`` tables, one folder per checkpoint partition."""
        return self.home / "embeddings"

    def embeddings_table(self, key: str) -> Path:
        """One checkpoint's embeddings of the catalog's crops (partition ``key``)."""
        return self.embeddings_dir / check_partition_key(key) / "crop_embeddings.parquet"

    @property
    def evaluation_dir(self) -> Path:
        return self.home / "evaluation"

    def checkpoint_evaluation(self, key: str, fingerprint: str) -> EvaluationLayout:
        """Retrieval and probe results of checkpoint partition ``key`` on dataset build ``fingerprint``."""
        return EvaluationLayout(self.evaluation_dir / "checkpoints" / check_partition_key(key) / check_partition_key(fingerprint))

    def predictions_evaluation(self, key: str, fingerprint: str) -> EvaluationLayout:
        """The scorecard of predictions partition ``key`` on dataset build ``fingerprint``."""
        return EvaluationLayout(self.evaluation_dir / "predictions" / check_partition_key(key) / check_partition_key(fingerprint))

    @property
    def device_locks(self) -> Path:
        """One lock file per device a model holds (``runtime.device_leases``)."""
        return self.home / "locks" / "devices"

    @property
    def checksums(self) -> Path:
        """The sha256 of model checkpoints, by file version (``media.hash_cache``)."""
        return self.home / "cache" / "checksums"

    def video(self, key: str) -> VideoLayout:
        root = (self.videos / check_partition_key(key)).resolve()
        if self.videos.resolve() not in root.parents:
            raise ValueError(f"partition key {key!r} points outside the storage root")
        return VideoLayout(root)
