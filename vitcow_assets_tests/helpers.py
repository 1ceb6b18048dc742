"""Shared test plumbing: register a video and materialize its partition in-process."""

from pathlib import Path

import dagster as dg

from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.media.files import sha256_file
from vitcow_assets.registry import Registry
from vitcow_assets.storage import StorageRoot


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
    monkeypatch.setattr("vitcow_assets.defs.resources._cached_segmenter", lambda *args: segmenter)
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        return key, materialize_partition(key, home, instance, raise_on_error=False)
