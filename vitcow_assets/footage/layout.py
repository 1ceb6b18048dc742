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
<home>/labels/                  labels.db, behaviour_labels.parquet, trimmed/ (segment labels' crops)
<home>/datasets/                the training-set assets' tables
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
    def datasets_dir(self) -> Path:
        """The training-set assets' tables (exports go where their settings say)."""
        return self.home / "datasets"

    def video(self, key: str) -> VideoLayout:
        root = (self.videos / check_partition_key(key)).resolve()
        if self.videos.resolve() not in root.parents:
            raise ValueError(f"partition key {key!r} points outside the storage root")
        return VideoLayout(root)
