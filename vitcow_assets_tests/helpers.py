"""Shared test plumbing: register and materialize a partition in-process, run the CLI as a
subprocess, land synthetic files, score masks against synthetic ground truth."""

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.core.masks import decode_mask
from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.footage.registry import Registry
from vitcow_assets.footage.layout import StorageRoot
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, truth_mask, write_video


def register(video: Path, home: Path, instance: dg.DagsterInstance) -> str:
    key = Registry(StorageRoot(home)).register(video, sha256_file(video)).registration.key
    if not instance.has_dynamic_partition("videos", key):
        instance.add_dynamic_partitions("videos", [key])
    return key


def materialize_partition(key: str, home: Path, instance: dg.DagsterInstance, run_config: dict | None = None, raise_on_error: bool = True):
    job = defs.resolve_job_def("process_video")
    return job.execute_in_process(
        run_config=run_config or {},
        instance=instance,
        partition_key=key,
        resources=build_resources(backend="motion", home=str(home)),
        raise_on_error=raise_on_error,
    )


def run_with_segmenter(segmenter, video: Path, home: Path, monkeypatch) -> tuple[str, object]:
    """Materialize ``video``'s partition with ``segmenter`` (a test double) as the loaded model."""
    monkeypatch.setattr("vitcow_assets.defs.resources.cached_segmenter", lambda *args: segmenter)
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        return key, materialize_partition(key, home, instance, raise_on_error=False)


def cli_env(home: Path, extra_env: dict | None = None) -> dict:
    """The environment of a `vitcow` subprocess with its own storage root and instance."""
    env = {**os.environ, "VITCOW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    env.setdefault("VITCOW_SETTLE_SECONDS", "1")  # files the tests just wrote have arrived after a second
    env.pop("VITCOW_SAM3_CHECKPOINT", None)
    env.update(extra_env or {})
    return env


def run_cli(args: list[str], home: Path, extra_env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`vitcow ARGS` as a user runs it, in a subprocess; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "vitcow_assets.cli", *args], env=cli_env(home, extra_env), capture_output=True, text=True, timeout=300, **kwargs
    )


def start_cli(args: list[str], home: Path) -> subprocess.Popen:
    """`vitcow ARGS` started in its own process group (so a test can kill it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "vitcow_assets.cli", *args],
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def landed_video(path: Path, frames: int = 30, objects=DEFAULT_OBJECTS, age_s: float | None = 60) -> Path:
    """A small synthetic video at `path` (any extension), its mtime `age_s` in the past
    (settled) or left as written (None)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".mp4", ".avi", ".mkv", ".mov"}:
        write_video(path, frames=frames, width=64, height=48, objects=objects)
    else:  # video bytes under another extension (PyAV picks the container from the name)
        write_video(path.with_name(path.name + ".tmp.mp4"), frames=frames, width=64, height=48, objects=objects).rename(path)
    return age(path, age_s) if age_s is not None else path


def age(path: Path, seconds: float = 60) -> Path:
    """Set `path`'s mtime `seconds` in the past (well over the settle time)."""
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def truth_recall(masks, objects, width: int, height: int, min_iou: float = 0.5) -> dict[int, float]:
    """Per ground-truth object (index in `objects`): the fraction of frames in the masks
    table where some mask overlaps the object's true mask with IoU >= `min_iou`. Frames
    where the object is outside the picture are not counted."""
    by_frame: dict[int, list] = {}
    for row in masks.select(["source_frame", "mask_rle"]).to_pylist():
        by_frame.setdefault(row["source_frame"], []).append(decode_mask(row["mask_rle"]))
    frames = sorted(set(masks["source_frame"].to_pylist()))
    recall = {}
    for k, obj in enumerate(objects):
        hits = counted = 0
        for frame in frames:
            truth = truth_mask(obj, frame, width, height)
            if not truth.any():
                continue
            counted += 1
            hits += any(mask_iou(m, truth) >= min_iou for m in by_frame.get(frame, []))
        recall[k] = hits / counted if counted else 1.0
    return recall
