"""The Dagster code location: assembles Definitions and nothing else."""

import os

import dagster as dg

from vitcow_assets.defs.assets import ASSETS, SOURCE_ASSETS
from vitcow_assets.defs.checks import CHECKS
from vitcow_assets.defs.datasets import DATASET_ASSETS, dataset_from_environment
from vitcow_assets.defs.dead_runs import dead_runs_sensor
from vitcow_assets.defs.evaluation import EVALUATION_ASSETS, EVALUATION_JOBS, probe_from_environment, retrieval_from_environment
from vitcow_assets.defs.execution import executor_from_env
from vitcow_assets.defs.jobs import JOBS
from vitcow_assets.defs.labels import LABEL_ASSETS, catalog_automation, labels_from_environment
from vitcow_assets.defs.publishing import published_crops
from vitcow_assets.defs.resources import segmenter_from_environment, storage_from_environment
from vitcow_assets.defs.schedules import nightly_catchup
from vitcow_assets.defs.sensors import landing_sensor


def build_resources(
    backend: str | None = None,
    home: str | None = None,
    publish_to: str | None = None,
    backend_options: dict | None = None,
    prefetch_clips: int | None = None,
    environ=None,
    device_wait_s: float | None = None,
    device_locks: str | None = None,
) -> dict:
    """Resources configured from the environment (`VITCOW_*`, read now), with overrides
    (not None) winning: e.g. the CLI's flags (`backend_options`: `{"motion": {...}, "link": {...}}`)."""
    environ = os.environ if environ is None else environ
    return {
        "storage": storage_from_environment(environ, home=home, publish_to=publish_to),
        "segmenter": segmenter_from_environment(
            environ, backend_options, backend=backend, prefetch_clips=prefetch_clips, device_wait_s=device_wait_s, device_locks=device_locks
        ),
        "labels": labels_from_environment(environ),
        "dataset": dataset_from_environment(environ),
        "retrieval": retrieval_from_environment(environ),
        "probe": probe_from_environment(environ),
    }


defs = dg.Definitions(
    assets=[*ASSETS, *SOURCE_ASSETS, published_crops, *LABEL_ASSETS, *DATASET_ASSETS, *EVALUATION_ASSETS],
    asset_checks=CHECKS,
    jobs=[*JOBS, *EVALUATION_JOBS],
    sensors=[landing_sensor, dead_runs_sensor, catalog_automation],
    schedules=[nightly_catchup],
    resources=build_resources(),
    executor=executor_from_env(),
)
