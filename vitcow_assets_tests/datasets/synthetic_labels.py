"""Synthetic crop catalogs, labels snapshots and trimmed-crop tables with known structure.

Farms hold cameras, cameras hold videos (path layout ``FARM/DNN/<stamp>_DNN.mp4``), videos
hold tracks (animals) that run through consecutive clips (one crop per clip, 20 frames of
every 4th source frame, as the pipeline cuts them). Each track has a behaviour drawn from
skewed class weights (many Lying, few Other), sometimes changing once along the track.
Labels come from annotator ``ann1``, some crops also from ``ann2`` (mostly agreeing), some
are ``Delete``; segment labels (``Standing_up``, ``Walking`` ...) mark frames and most of
them have a trimmed copy.
"""

import dataclasses
import datetime as dt
import hashlib

import numpy as np
import pyarrow as pa

from vitcow_assets.core.catalog import CATALOG_SCHEMA, crop_id
from vitcow_assets.core.taxonomy import Taxonomy

FARMS = ("FarmA", "FarmB", "FarmC")
ROOT = "/srv/vitcow_home"
#: relative weight of each class for a track's behaviour (skewed, as the seed data)
CLASS_WEIGHTS = {"Lying": 40, "Standing": 25, "Feeding": 12, "Walking": 8, "Drinking": 4, "Self-grooming": 4, "Scratching": 3, "Other": 2}
FRAMES, STEP, FPS = 20, 4, 2.5


@dataclasses.dataclass(frozen=True)
class Scene:
    """How much synthetic footage: per farm, cameras × videos × tracks."""

    farms: tuple[str, ...] = FARMS
    cameras: int = 2
    videos: int = 2
    tracks: int = 5
    max_clips: int = 5
    seed: int = 0
    #: offset added to the videos' recording days (new footage of the same farms)
    day: int = 0
    #: storage root the crop paths lie under
    root: str = ROOT


def _video_rows(farm: str, camera: str, stamp: dt.datetime, scene: Scene, rng: np.random.Generator) -> list[dict]:
    video_id = f"{farm}_{stamp:%Y%m%d%H%M}_{camera}"
    sha = hashlib.sha256(f"{video_id}:{scene.seed}".encode()).hexdigest()
    source = f"/landing/{farm}/{camera}/{stamp:%Y%m%d%H%M}_{camera}.mp4"
    rows = []
    clip_objects: dict[int, int] = {}
    for track in range(scene.tracks):
        first = int(rng.integers(0, 4))
        for clip in range(first, first + int(rng.integers(1, scene.max_clips + 1))):
            object_id = clip_objects.get(clip, 0)
            clip_objects[clip] = object_id + 1
            start = clip * (FRAMES - 1) * STEP
            present = int(rng.integers(0, FRAMES + 1))
            rows.append({
                "crop_id": crop_id(sha, start, STEP, FRAMES, "motion/v2", object_id),
                "crop_path": f"{scene.root}/videos/{video_id}/crops/c{clip:05d}/obj{object_id:04d}.mp4",
                "video_id": video_id, "source_sha256": sha, "source_path": source, "source_uri": f"file://{source}",
                "farm": farm, "camera": camera, "recorded_at": stamp, "clip_id": f"c{clip:05d}", "object_id": object_id,
                "track_id": track, "part": 0, "source_frame_start": start, "source_frame_end": start + (FRAMES - 1) * STEP,
                "frame_step": STEP, "frames": FRAMES, "frames_present": present, "presence_ratio": present / FRAMES,
                "fps": FPS, "duration_s": FRAMES / FPS, "segmenter": "motion/v2", "model_checkpoint": None, "prompt": "cow",
                "code_version": "0.1.0", "run_id": "r-" + video_id,
            })
    return rows


def synthetic_catalog(scene: Scene = Scene()) -> pa.Table:
    """A catalog (``CATALOG_SCHEMA``) of the scene's crops, sorted like ``merge_catalogs``."""
    rng = np.random.default_rng(scene.seed)
    rows = []
    for f, farm in enumerate(scene.farms):
        for c in range(scene.cameras):
            for v in range(scene.videos):
                stamp = dt.datetime(2025, 2, 1) + dt.timedelta(days=f + scene.day, hours=6 + 7 * v, minutes=10 * c)
                rows += _video_rows(farm, f"D{c + 1:02d}", stamp, scene, rng)
    table = pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)
    return table.sort_by([("video_id", "ascending"), ("clip_id", "ascending"), ("object_id", "ascending")])


def fine_labels_of(taxonomy: Taxonomy) -> dict[str, list[str]]:
    """class -> the fine labels that map to it."""
    out: dict[str, list[str]] = {c: [] for c in taxonomy.classes}
    for f in taxonomy.labels:
        if f.target is not None:
            out[f.target].append(f.label)
    return out


def _track_classes(catalog: pa.Table, rng: np.random.Generator) -> dict[tuple, list[str]]:
    """Per (video_id, track_id): the class of each of its crops in clip order."""
    names = sorted(CLASS_WEIGHTS)
    weights = np.array([CLASS_WEIGHTS[n] for n in names], float)
    tracks: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(catalog["video_id"].to_pylist(), catalog["track_id"].to_pylist())):
        tracks.setdefault(key, []).append(i)
    out = {}
    for key in sorted(tracks):
        first = names[rng.choice(len(names), p=weights / weights.sum())]
        seq = [first] * len(tracks[key])
        if len(seq) > 2 and rng.random() < 0.2:  # the animal changes behaviour along the track
            second = names[rng.choice(len(names), p=weights / weights.sum())]
            seq[len(seq) // 2 :] = [second] * (len(seq) - len(seq) // 2)
        out[key] = list(zip(tracks[key], seq))
    return out


def _label_row(crop: dict, label: str, annotator: str, taxonomy: Taxonomy, rng: np.random.Generator, at: dt.datetime) -> dict:
    segment = taxonomy.get(label).segment and rng.random() < 0.85
    start = int(rng.integers(0, 8)) if segment else None
    return {
        "crop_id": crop["crop_id"], "label": label, "annotator": annotator, "labelled_at": at,
        "start_frame": start, "end_frame": start + int(rng.integers(6, 12)) if segment else None,
        **{k: crop[k] for k in ("crop_path", "video_id", "farm", "camera", "track_id", "frames", "fps", "source_sha256", "segmenter", "prompt")},
    }


def synthetic_labels(catalog: pa.Table, taxonomy: Taxonomy, seed: int = 1, labelled: float = 0.9, double: float = 0.2, agree: float = 0.85, delete: float = 0.05) -> pa.Table:
    """A labels snapshot of ``catalog``: one row per (crop, annotator)."""
    rng = np.random.default_rng(seed)
    fine = fine_labels_of(taxonomy)
    crops = catalog.to_pylist()
    rows = []
    at = dt.datetime(2025, 3, 1, 12, 0)
    for key, members in _track_classes(catalog, rng).items():
        for i, cls in members:
            if rng.random() > labelled:
                continue
            label = "Delete" if rng.random() < delete else fine[cls][int(rng.integers(len(fine[cls])))]
            rows.append(_label_row(crops[i], label, "ann1", taxonomy, rng, at))
            if rng.random() < double:
                other = label
                if rng.random() > agree:
                    choices = [f.label for f in taxonomy.labels if taxonomy.class_of(f.label) != taxonomy.class_of(label)]
                    other = choices[int(rng.integers(len(choices)))]
                second = _label_row(crops[i], other, "ann2", taxonomy, rng, at)
                if other == label:  # the same segment where both marked the same label
                    second["start_frame"], second["end_frame"] = rows[-1]["start_frame"], rows[-1]["end_frame"]
                rows.append(second)
    schema = pa.schema([("crop_id", pa.string()), ("label", pa.string()), ("annotator", pa.string()), ("labelled_at", pa.timestamp("s", tz="UTC")),
                        ("start_frame", pa.int64()), ("end_frame", pa.int64())] + [CATALOG_SCHEMA.field(n) for n in ("crop_path", "video_id", "farm", "camera", "track_id", "frames", "fps", "source_sha256", "segmenter", "prompt")])
    return pa.Table.from_pylist(rows, schema=schema)


def synthetic_trims(labels: pa.Table, seed: int = 2, missing: float = 0.1, root: str = ROOT) -> pa.Table:
    """Trimmed copies for the marked segments (one per crop), except a fraction ``missing``."""
    rng = np.random.default_rng(seed)
    done, rows = set(), []
    for r in labels.to_pylist():
        if r["start_frame"] is None or r["crop_id"] in done or rng.random() < missing:
            continue
        done.add(r["crop_id"])
        frames = r["end_frame"] - r["start_frame"] + 1
        rows.append({"crop_id": r["crop_id"], "start_frame": r["start_frame"], "end_frame": r["end_frame"],
                     "trimmed_path": f"{root}/trimmed/{r['crop_id']}.mp4", "frames": frames})
    schema = pa.schema([("crop_id", pa.string()), ("start_frame", pa.int64()), ("end_frame", pa.int64()), ("trimmed_path", pa.string()), ("frames", pa.int32())])
    return pa.Table.from_pylist(rows, schema=schema)


def shuffled(table: pa.Table, seed: int = 7) -> pa.Table:
    return table.take(np.random.default_rng(seed).permutation(table.num_rows))
